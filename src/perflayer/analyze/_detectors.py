"""Role detectors: decide from evidence whether a class or function is a cache, memory tool,
response envelope/scheduler or monitor, and reject the tempting look-alikes with a reason.

Design: names alone never make a finding. Each detector scores *behaviour* read from
:class:`~perflayer.analyze._facts.Facts` (a dict keyed and read in two places, a comparison
against ``time.time()``, ``psutil``/``gc``/``tracemalloc`` calls, success/data/error fields, a
running average, a percentile index, ...). A name that hints at the role only adds weight. Before
scoring, each detector checks for its known decoys (a "memory" that stores conversations, a file
watcher named Monitor, a business metrics calculator, an empty Protocol, an import-fallback stub)
and returns a rejection with the reason instead.

New categories plug in with :func:`register_detector`; a detector is any object with a
``category`` string and a ``detect(unit, level)`` method (see :class:`Detector`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from perflayer.analyze._facts import Facts, Unit, split_ident
from perflayer.analyze._model import Evidence

__all__ = [
    "Detector",
    "Verdict",
    "detectors",
    "register_detector",
    "unregister_detector",
]


@dataclass(slots=True)
class Verdict:
    """A detector's answer for one unit: flagged or not, its score, evidence and capabilities."""

    category: str
    score: float
    flagged: bool
    capabilities: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    reason: str | None = None

    @property
    def confidence(self) -> float:
        """Return a confidence in [0, 1) that grows with the evidence score."""
        return round(1.0 - math.exp(-self.score / 4.0), 3)


@runtime_checkable
class Detector(Protocol):
    """A role detector: reads a unit's facts and returns a :class:`Verdict` or None."""

    category: str

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        """Judge ``unit``; ``level`` is ``class``, ``function`` or ``method``."""


class _Acc:
    __slots__ = ("caps", "category", "evidence", "score")

    def __init__(self, category: str) -> None:
        self.category = category
        self.score = 0.0
        self.caps: list[str] = []
        self.evidence: list[Evidence] = []

    def add(self, cap: str | None, weight: float, kind: str, detail: str, line: int) -> None:
        if cap is not None and cap not in self.caps:
            self.caps.append(cap)
        self.score += weight
        self.evidence.append(Evidence(kind, detail, line, weight))

    def verdict(self, flagged: bool, reason: str | None = None) -> Verdict:
        return Verdict(
            self.category, round(self.score, 2), flagged, sorted(self.caps), self.evidence, reason
        )


# ---------------------------------------------------------------------------- shared helpers


def _first(d: dict[str, int], keys: Iterable[str]) -> tuple[str, int] | None:
    best: tuple[str, int] | None = None
    for k in keys:
        line = d.get(k)
        if line is not None and (best is None or line < best[1]):
            best = (k, line)
    return best


def _calls_matching(f: Facts, prefixes: tuple[str, ...]) -> tuple[str, int] | None:
    blob = f.call_blob()
    if not any(("\n" + p) in blob for p in prefixes):
        return None
    best: tuple[str, int] | None = None
    for name, line in f.calls.items():
        if name.startswith(prefixes) and (best is None or line < best[1]):
            best = (name, line)
    return best


def _tails_matching(f: Facts, names: Iterable[str]) -> tuple[str, int] | None:
    return _first(f.tails, names)


def _name_words(unit: Unit) -> set[str]:
    # A method's own name only: every method of a class called ...Cache is not a cache.
    return set(split_ident(unit.name))


def _method_names(unit: Unit) -> set[str]:
    return {m.name for m in unit.methods}


def _line(unit: Unit) -> int:
    return unit.node.lineno


def _is_interface(unit: Unit) -> bool:
    if unit.kind != "class":
        return False
    bases = {b.rsplit(".", 1)[-1] for b in unit.bases}
    if bases & {"Protocol", "ABC", "ABCMeta"} and all(m.trivial for m in unit.methods):
        return True
    return unit.trivial and bool(unit.methods)


def _stub_reason(unit: Unit) -> str | None:
    """Return why ``unit`` is a stub (import fallback or empty interface), else None."""
    if unit.in_import_fallback and (unit.trivial or unit.lines <= 10):
        return "import-fallback stub defined in an `except ImportError:` block"
    if _is_interface(unit):
        bases = {b.rsplit(".", 1)[-1] for b in unit.bases}
        if "Protocol" in bases:
            return "Protocol with no implementation (interface only)"
        return "interface with no implementation (every method is a stub)"
    if unit.trivial:
        return "empty body (placeholder with no implementation)"
    return None


_CACHE_WORDS = frozenset({"cache", "cached", "caching", "memo", "memoize", "memoized", "lru"})
_MEMORY_WORDS = frozenset(
    {"memory", "mem", "gc", "garbage", "leak", "leaks", "footprint", "allocation", "rss"}
)
_RESPONSE_WORDS = frozenset({"response", "result", "reply", "envelope", "outcome", "answer"})
_MONITOR_WORDS = frozenset(
    {
        "monitor",
        "monitoring",
        "metrics",
        "metric",
        "stats",
        "statistics",
        "telemetry",
        "tracker",
        "profiler",
        "benchmark",
        "timer",
        "perf",
        "performance",
        "instrumentation",
        "collector",
    }
)
_DOMAIN_STORE_WORDS = frozenset(
    {
        "conversation",
        "conversations",
        "message",
        "messages",
        "chat",
        "history",
        "session",
        "sessions",
        "dialog",
        "dialogue",
        "turn",
        "turns",
        "recall",
        "remember",
        "memories",
        "knowledge",
        "embedding",
        "embeddings",
        "vector",
        "episode",
        "episodic",
        "semantic",
        "persona",
        "fact",
        "facts",
        "insight",
        "insights",
        "decision",
        "decisions",
        "strategic",
        "stakeholder",
        "stakeholders",
        "context",
    }
)
_PERF_VOCAB = frozenset(
    {
        "latency",
        "latencies",
        "duration",
        "durations",
        "elapsed",
        "throughput",
        "qps",
        "rps",
        "cpu",
        "uptime",
        "perf",
        "performance",
        "ms",
        "timing",
        "timings",
        "response",
        "requests",
        "request",
        "errors",
        "error",
        "operation",
        "operations",
        "calls",
        "hits",
        "misses",
        "rss",
        "memory",
        "slow",
        "execution",
        "seconds",
    }
)
_STRONG_PERF = frozenset(
    {
        "latency",
        "latencies",
        "duration",
        "durations",
        "elapsed",
        "throughput",
        "qps",
        "rps",
        "cpu",
        "uptime",
        "ms",
        "timing",
        "timings",
        "seconds",
        "rss",
        "memory",
        "slow",
        "perf",
        "performance",
        "p95",
        "p99",
        "p50",
        "percentile",
    }
)
_FS_TAILS = frozenset(
    {
        "getmtime",
        "getctime",
        "getsize",
        "stat",
        "scandir",
        "listdir",
        "walk",
        "glob",
        "rglob",
        "iterdir",
        "Observer",
        "schedule",
        "inotify",
        "add_watch",
    }
)
_FS_TOKENS = frozenset({"file", "files", "path", "paths", "directory", "dir", "folder", "mtime"})
_BUSINESS_WORDS = frozenset(
    {
        "revenue",
        "sales",
        "customer",
        "customers",
        "price",
        "prices",
        "order",
        "orders",
        "velocity",
        "roi",
        "profit",
        "budget",
        "cost",
        "team",
        "teams",
        "story",
        "points",
        "sprint",
        "churn",
        "retention",
        "engagement",
        "conversion",
        "satisfaction",
        "okr",
        "kpi",
        "stakeholder",
        "initiative",
        "initiatives",
        "portfolio",
        "quarter",
        "quarterly",
        "invoice",
        "employees",
        "headcount",
        "score",
        "scores",
        "grade",
        "business",
        "investment",
        "market",
    }
)


# ------------------------------------------------------------------------------------ cache

_GET_NAMES = frozenset({"get", "fetch", "lookup", "load", "retrieve", "__getitem__", "read"})
_SET_NAMES = frozenset({"set", "put", "store", "save", "add", "__setitem__", "write", "insert"})
_INVALIDATE = frozenset(
    {"delete", "invalidate", "remove", "evict", "expire", "purge", "clear", "__delitem__", "pop"}
)
_CONTAINER_KINDS = frozenset({"dict", "ordereddict", "weakdict"})
_CONNECTION_WORDS = frozenset(
    {"connection", "connections", "socket", "thread", "threads", "worker", "workers", "executor"}
)


def _cache_stores(f: Facts, unit: Unit) -> list[tuple[str, int]]:
    """Return containers both written and read by key (``sub:<name>`` in stores and loads)."""
    out: list[tuple[str, int]] = []
    for key, line in f.stores.items():
        if not key.startswith("sub:"):
            continue
        if key not in f.loads:
            continue
        name = key[4:]
        kind = f.attr_kinds.get(name)
        words = set(split_ident(name))
        if kind in _CONTAINER_KINDS or words & (_CACHE_WORDS | {"store", "entries", "data"}):
            out.append((name, line))
    return out


def _method_role_names(unit: Unit) -> set[str]:
    names: set[str] = set()
    for m in unit.methods:
        names.add(m.name)
        names.update(split_ident(m.name))
    if unit.kind != "class":
        names.add(unit.name)
        names.update(split_ident(unit.name))
    return names


class CacheDetector:
    """Caches: keyed stores read and written, with TTL, eviction, stats, tiers or memoization."""

    category = "cache"

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        """Score cache behaviour of ``unit``."""
        f = unit.facts
        words = _name_words(unit)
        name_hint = bool(words & _CACHE_WORDS)
        if (
            not name_hint
            and "redis" not in f.tokens
            and not any(k.startswith("sub:") for k in f.loads)
            and not (level == "class" and unit.bases)
        ):
            return None  # no keyed container read, no cache name: nothing to score
        acc = _Acc(self.category)
        stores = _cache_stores(f, unit)
        if level == "method" and unit.parent is not None:
            touched = (
                {k[4:] for k in f.loads if k.startswith("sub:")}
                | {k[4:] for k in f.stores if k.startswith("sub:")}
                | {k[5:] for k in f.loads if k.startswith("self.")}
                | {name for name in (s[7:] for s in f.signals if s.startswith("delete:"))}
            )
            stores = [s for s in _cache_stores(unit.parent.facts, unit.parent) if s[0] in touched]
        redis_like = _tails_matching(f, ("setex", "psetex", "hset", "hget"))
        if redis_like is None and "redis" in f.tokens:
            redis_like = _calls_matching(
                f, ("redis.", "self.redis.", "self._redis.", "self.client.")
            )
        cache_named_store = [s for s in stores if set(split_ident(s[0])) & _CACHE_WORDS]
        if level != "class" and not cache_named_store and not name_hint:
            # A method or function touching some dict is not a cache unless the dict or the
            # function is one by name *and* behaviour.
            stores = []
        if stores:
            name, line = stores[0]
            acc.add("store", 2.5, "keyed-store", f"`{name}` written and read by key", line)
        elif level == "class" and any(
            set(split_ident(b.rsplit(".", 1)[-1])) & _CACHE_WORDS for b in unit.bases
        ):
            stores = [("(inherited)", _line(unit))]
            acc.add("store", 2.5, "extends-cache", "extends a cache class", _line(unit))
        if redis_like:
            acc.add("backend", 2.0, "redis-store", f"calls `{redis_like[0]}`", redis_like[1])
        wrapper = level != "class" and "returns_wrapper" in f.signals
        if wrapper and (stores or name_hint):
            acc.add(
                "memoize",
                3.0,
                "memoize-decorator",
                "wraps a function and stores its results by arguments",
                f.signals["returns_wrapper"],
            )
        if level == "class":
            # The public API of a cache, by exact method name (a private `_get_cached` helper
            # does not make its class a cache).
            api = {m.name for m in unit.methods}
            roles = api | {n.lstrip("_") for n in api if n.startswith("__")}
            has_get = bool(api & _GET_NAMES)
            has_set = bool(api & _SET_NAMES)
            if has_get and has_set:
                acc.add("get_set", 1.5, "api", "get-like and set-like methods", _line(unit))
            if roles & _INVALIDATE:
                acc.add("invalidation", 0.5, "api", "delete/invalidate/clear methods", _line(unit))
        tc = f.signals.get("time_compare")
        if tc is not None and (stores or redis_like or name_hint):
            acc.add("ttl", 2.0, "ttl-check", "entry age compared against the clock or a TTL", tc)
        elif f.tokens & {"ttl", "expire", "expires", "expiry", "expiration"} and (
            stores or redis_like
        ):
            acc.add("ttl", 1.0, "ttl-name", "TTL/expiry parameters", _line(unit))
        ev = _first(f.signals, ("fifo_evict", "lru_touch", "popitem", "len_bound"))
        if ev is not None and (stores or name_hint):
            acc.add("eviction", 1.5, "eviction", f"bounded store ({ev[0]})", ev[1])
            if ev[0] in ("lru_touch",) or "lru" in f.tokens:
                acc.add("lru", 0.5, "eviction", "LRU order", ev[1])
        elif f.tokens & {"evict", "eviction", "maxsize", "capacity", "lru"} and stores:
            acc.add("eviction", 0.75, "eviction-name", "size bound parameters", _line(unit))
        hits = _first(f.incr, [k for k in f.incr if "hit" in k or "miss" in k])
        if hits is None and {"hits", "misses"} & (f.dict_keys | f.strings):
            hits = ("hits", _line(unit))
        if hits is not None and (stores or name_hint or redis_like):
            acc.add("stats", 1.0, "hit-miss-stats", f"counts `{hits[0]}`", hits[1])
        if (unit.is_async or "await" in f.signals) and (stores or name_hint):
            acc.add("async", 0.5, "async", "async methods", f.signals.get("await", _line(unit)))
        backends = f.tokens & {"redis", "disk", "file", "sqlite", "database", "db", "memcached"}
        if (stores or name_hint) and (
            len(backends) >= 2 or f.tokens & {"tier", "tiers", "l1", "l2"}
        ):
            acc.add(
                "tiers",
                1.0,
                "tiers",
                "several storage levels: " + ", ".join(sorted(backends)),
                _line(unit),
            )
        ser = _calls_matching(f, ("pickle.", "json.dump", "json.load", "marshal."))
        if ser is not None and (stores or name_hint):
            acc.add("persistence", 0.5, "serialization", f"calls `{ser[0]}`", ser[1])
        lock = "lock" in f.attr_kinds.values() or _tails_matching(f, ("Lock", "RLock"))
        if lock and (stores or name_hint):
            acc.add("thread_safe", 0.5, "lock", "guards the store with a lock", _line(unit))
        if name_hint and acc.score > 0:
            acc.add(None, 1.5, "name", f"name `{unit.name}` says cache", _line(unit))
        if acc.score == 0:
            return None
        hard = bool(stores or redis_like or "memoize" in acc.caps)
        behaves = bool({"ttl", "stats"} & set(acc.caps)) or any(
            e.kind == "eviction" for e in acc.evidence
        )
        if hard and not redis_like and "memoize" not in acc.caps and not behaves:
            # A keyed store is a cache only if it behaves like one (TTL, stats, eviction);
            # a class *named* cache may rely on its get/set API, a method never.
            hard = level == "class" and name_hint
        threshold = 4.5 if level == "class" else 4.0
        flagged = hard and acc.score >= threshold
        if flagged and not name_hint and words & _DOMAIN_STORE_WORDS:
            return acc.verdict(
                False, "stores domain records (sessions/conversations), not a cache of results"
            )
        if flagged and level == "class" and words & _CONNECTION_WORDS:
            return acc.verdict(False, "connection/worker registry, not a cache of results")
        if not flagged:
            return acc.verdict(False, "no keyed store with cache behaviour (TTL, eviction, stats)")
        return acc.verdict(True)


# ----------------------------------------------------------------------------------- memory


class MemoryDetector:
    """Memory tools: RSS/psutil, gc, getsizeof, tracemalloc, object pools, memory budgets."""

    category = "memory"

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        """Score memory-management behaviour of ``unit``."""
        f = unit.facts
        words = _name_words(unit)
        own_words = set(split_ident(unit.name))
        name_hint = bool(own_words & _MEMORY_WORDS) or (
            level == "class" and bool(words & _MEMORY_WORDS)
        )
        blob = f.call_blob()
        if (
            not name_hint
            and not any(
                p in blob
                for p in ("psutil", "\ngc.", "getsizeof", "tracemalloc", "resource.", "memory_")
            )
            and not (level == "class" and "acquire" in {m.name for m in unit.methods})
        ):
            return None  # nothing measures or manages memory here
        acc = _Acc(self.category)
        rss = _calls_matching(
            f,
            (
                "psutil.virtual_memory",
                "psutil.swap_memory",
                "resource.getrusage",
            ),
        ) or _tails_matching(
            f, ("memory_info", "memory_full_info", "memory_percent", "virtual_memory")
        )
        if rss is not None:
            acc.add("rss", 3.0, "process-memory", f"calls `{rss[0]}`", rss[1])
        gc_call = _calls_matching(
            f, ("gc.collect", "gc.get_", "gc.set_threshold", "gc.freeze", "gc.disable")
        )
        if gc_call is not None:
            acc.add("gc", 2.5, "garbage-collector", f"calls `{gc_call[0]}`", gc_call[1])
        size = _calls_matching(f, ("sys.getsizeof", "asizeof", "pympler."))
        if size is None:
            size = _tails_matching(f, ("getsizeof",))
        if size is not None:
            acc.add("object_size", 2.0, "object-size", f"calls `{size[0]}`", size[1])
        tm = _calls_matching(f, ("tracemalloc.",))
        if tm is not None:
            acc.add("tracemalloc", 3.0, "tracemalloc", f"calls `{tm[0]}`", tm[1])
        if level == "class":
            roles = {m.name for m in unit.methods}
            pool_pair = (roles & {"acquire", "borrow", "get_object", "checkout", "take"}) and (
                roles & {"release", "give_back", "return_object", "checkin", "put_back", "recycle"}
            )
            pool_store = [
                a for a, k in f.attr_kinds.items() if k in ("list", "deque", "queue", "set")
            ]
            # An object pool hands out stored objects and takes them back: acquire pops from
            # the free list, release appends its argument. Locks and semaphores also have
            # acquire/release but store waiters, not reusable objects.
            hands_out = any(
                m.name in ("acquire", "borrow", "get_object", "checkout", "take")
                and ({"pop", "popleft", "get_nowait"} & set(m.facts.tails))
                for m in unit.methods
            )
            takes_back = any(
                m.name
                in ("release", "give_back", "return_object", "checkin", "put_back", "recycle")
                and (
                    any(k.startswith("append:") for k in m.facts.stores)
                    or bool({"put", "put_nowait", "add"} & set(m.facts.tails))
                )
                for m in unit.methods
            )
            sync = own_words & {
                "lock",
                "semaphore",
                "condition",
                "mutex",
                "event",
                "barrier",
                "limiter",
                "capacity",
                "token",
                "tokens",
            }
            if (
                pool_pair
                and pool_store
                and hands_out
                and takes_back
                and not (own_words & _CONNECTION_WORDS)
                and not sync
            ):
                acc.add("pool", 4.0, "object-pool", "acquire/release over a free list", _line(unit))
        chunky = f.tokens & {"chunk", "chunks", "batch", "stream", "streaming"}
        if "yield" in f.signals and chunky and (acc.score or name_hint):
            acc.add("streaming", 1.5, "streaming", "yields chunks", f.signals["yield"])
        thr = f.signals.get("threshold_compare")
        limits = f.tokens & {"threshold", "limit", "pressure", "critical", "budget"}
        if thr is not None and limits and acc.score:
            acc.add("thresholds", 1.0, "threshold", "compares usage against limits", thr)
        wr = _calls_matching(f, ("weakref.",))
        if wr is not None and (acc.score or name_hint):
            acc.add("weakref", 1.0, "weakref", f"calls `{wr[0]}`", wr[1])
        if acc.score and _tails_matching(f, ("Thread", "create_task", "start_new_thread")):
            acc.add("background", 0.5, "background", "samples in the background", _line(unit))
        if name_hint and acc.score > 0:
            acc.add(None, 1.5, "name", f"name `{unit.name}` says memory", _line(unit))
        hard = any(c in acc.caps for c in ("rss", "gc", "object_size", "tracemalloc", "pool"))
        if not hard:
            if name_hint and level == "class" and words & _DOMAIN_STORE_WORDS:
                return _Acc(self.category).verdict(
                    False,
                    "stores conversation/session data (a domain 'memory'), no process-memory "
                    "management (no psutil, gc, getsizeof, tracemalloc or pooling)",
                )
            return None
        threshold = 4.0 if level == "class" else 3.0
        return acc.verdict(acc.score >= threshold, None if acc.score >= threshold else "weak")


# --------------------------------------------------------------------------------- response

_GROUPS: dict[str, frozenset[str]] = {
    "status": frozenset({"success", "ok", "succeeded", "is_success", "successful", "status"}),
    "payload": frozenset(
        {"data", "result", "results", "content", "payload", "body", "value", "response", "output"}
    ),
    "error": frozenset(
        {"error", "errors", "error_message", "message", "exception", "err", "error_code"}
    ),
    "timing": frozenset(
        {
            "processing_time",
            "response_time",
            "duration",
            "elapsed",
            "latency",
            "execution_time",
            "timestamp",
            "took",
            "time_ms",
            "duration_ms",
            "elapsed_ms",
            "latency_ms",
            "timing",
            "processing_time_ms",
            "response_time_ms",
            "execution_time_ms",
        }
    ),
    "meta": frozenset({"metadata", "meta", "request_id", "trace_id", "source", "cached"}),
}
_DATA_METHODS = frozenset(
    {
        "to_dict",
        "from_dict",
        "to_json",
        "from_json",
        "dict",
        "json",
        "as_dict",
        "success",
        "error",
        "ok",
        "fail",
        "failure",
        "is_success",
        "is_error",
        "model_dump",
    }
)


def _groups(names: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for n in names:
        low = n.lower()
        for g, members in _GROUPS.items():
            if g not in found and low in members:
                found[g] = low
    return found


class ResponseDetector:
    """Response envelopes (success/data/error/timing) and home-grown response schedulers."""

    category = "response"

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        """Score response-envelope or response-scheduler behaviour of ``unit``."""
        f = unit.facts
        own_words = set(split_ident(unit.name))
        name_hint = bool(own_words & _RESPONSE_WORDS)
        acc = _Acc(self.category)
        if level == "class":
            groups = _groups(f.fields)
            behaviour = [
                m
                for m in unit.methods
                if not (m.name.startswith("__") and m.name.endswith("__"))
                and m.name not in _DATA_METHODS
                and not m.trivial
                and m.facts.statements > 3
            ]
            envelope = (
                ("status" in groups or "error" in groups)
                and "payload" in groups
                and len(groups) >= 3
            )
            if envelope and len(behaviour) <= 3:
                line = min(f.fields[v] for v in f.fields if v.lower() in groups.values())
                acc.add(
                    "envelope",
                    3.0,
                    "envelope-fields",
                    "fields " + ", ".join(sorted(groups.values())),
                    line,
                )
                for g in sorted(groups):
                    acc.add(
                        g, 0.5, "field-group", f"{g}: `{groups[g]}`", f.fields.get(groups[g], line)
                    )
                if {m.name for m in unit.methods} & {"to_dict", "to_json", "as_dict", "dict"}:
                    acc.add("serialization", 0.5, "to_dict", "serializes itself", _line(unit))
            else:
                self._scheduler(unit, acc)
        else:
            groups = _groups(f.dict_keys)
            envelope = (
                ("status" in groups or "error" in groups)
                and "payload" in groups
                and len(groups) >= 3
            )
            if envelope and (own_words & (_RESPONSE_WORDS | {"success", "error", "fail", "ok"})):
                acc.add(
                    "envelope",
                    3.0,
                    "envelope-dict",
                    "builds dicts with " + ", ".join(sorted(groups.values())),
                    _line(unit),
                )
                for g in sorted(groups):
                    acc.add(g, 0.5, "field-group", f"{g}: `{groups[g]}`", _line(unit))
        if name_hint and acc.score > 0:
            acc.add(None, 1.0, "name", f"name `{unit.name}` says response", _line(unit))
        if acc.score == 0:
            if name_hint and level == "class" and len(unit.methods) > 3:
                return acc.verdict(
                    False,
                    "a protocol/response object with behaviour, not a result envelope",
                )
            return None
        flagged = acc.score >= 4.0
        return acc.verdict(flagged, None if flagged else "weak")

    def _scheduler(self, unit: Unit, acc: _Acc) -> None:
        f = unit.facts
        words = set(split_ident(unit.name))
        if not words & {"response", "request", "responses", "requests"}:
            return
        features: list[tuple[str, str, int]] = []
        pr = _calls_matching(f, ("heapq.", "asyncio.PriorityQueue", "queue.PriorityQueue"))
        if pr is None and _tails_matching(f, ("PriorityQueue", "heappush")) is not None:
            pr = _tails_matching(f, ("PriorityQueue", "heappush"))
        if pr is not None or "priority" in f.tokens:
            features.append(("priority", "priorities", pr[1] if pr else _line(unit)))
        to = _calls_matching(f, ("asyncio.wait_for", "asyncio.timeout"))
        if to is not None:
            features.append(("timeouts", f"calls `{to[0]}`", to[1]))
        sem = _tails_matching(f, ("Semaphore", "BoundedSemaphore"))
        if sem is not None:
            features.append(("concurrency", "bounds concurrency", sem[1]))
        comp = _calls_matching(f, ("gzip.", "zlib.", "brotli.", "lz4."))
        if comp is not None:
            features.append(("compression", f"calls `{comp[0]}`", comp[1]))
        if f.tokens & {"batch", "batching", "coalesce"}:
            features.append(("batching", "batches requests", _line(unit)))
        if "time_delta" in f.signals:
            features.append(("timing", "times responses", f.signals["time_delta"]))
        if (len(features) >= 2 and "optimizer" in words | {"optimizer"} & f.tokens) or len(
            features
        ) >= 3:
            for cap, detail, line in features:
                acc.add(cap, 1.25, "scheduler", detail, line)


# ------------------------------------------------------------------------------- monitoring


class MonitoringDetector:
    """Monitors: counters, timings, samples, percentiles, running averages, alert thresholds."""

    category = "monitoring"

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        """Score performance-monitoring behaviour of ``unit``."""
        f = unit.facts
        words = _name_words(unit)
        own_words = set(split_ident(unit.name))
        name_hint = bool(own_words & _MONITOR_WORDS)
        sig = f.signals
        if (
            not name_hint
            and not f.incr
            and "time_delta" not in sig
            and "percentile" not in sig
            and "running_avg" not in sig
            and "sorted" not in f.calls
            and not any(k.startswith("append:") for k in f.stores)
        ):
            return None  # nothing counted, timed or sampled
        acc = _Acc(self.category)
        timing = f.signals.get("time_delta")
        if timing is not None:
            acc.add("timing", 1.5, "timing", "measures elapsed time", timing)
        counters = [
            (k, line)
            for k, line in f.incr.items()
            if set(k.split("_"))
            & {
                "count",
                "total",
                "requests",
                "errors",
                "calls",
                "hits",
                "misses",
                "failures",
                "successes",
                "ops",
                "num",
                "operations",
                "counter",
                "sum",
                "time",
                "latency",
                "duration",
                "bytes",
                "slow",
                "timeouts",
            }
        ]
        roles = _method_role_names(unit)
        record_methods = roles & {
            "increment",
            "inc",
            "record",
            "track",
            "observe",
            "count",
            "record_metric",
            "record_request",
            "track_request",
        }
        if counters:
            acc.add(
                "counters",
                2.0,
                "counter",
                f"increments `{counters[0][0]}`",
                min(c[1] for c in counters),
            )
        elif record_methods and level == "class":
            acc.add("counters", 1.0, "record-api", "record/increment/observe methods", _line(unit))
        samples = [
            (k[7:], line)
            for k, line in f.stores.items()
            if k.startswith("append:")
            and (
                set(split_ident(k[7:]))
                & {
                    "latencies",
                    "durations",
                    "times",
                    "samples",
                    "timings",
                    "measurements",
                    "latency",
                    "duration",
                    "observations",
                    "elapsed",
                }
                or (name_hint and set(split_ident(k[7:])) & {"history", "metrics", "values"})
            )
        ]
        if samples:
            acc.add("history", 1.5, "samples", f"keeps samples in `{samples[0][0]}`", samples[0][1])
        pct = f.signals.get("percentile")
        pct_call = _calls_matching(
            f, ("statistics.quantiles", "np.percentile", "numpy.percentile", "np.quantile")
        )
        if (
            pct is None
            and "sorted" in f.calls
            and f.tokens & {"percentile", "percentiles", "p95", "p99", "p90", "p50", "quantile"}
        ):
            pct = f.calls["sorted"]
        if pct is None and pct_call is not None:
            pct = pct_call[1]
        if pct is not None:
            acc.add("percentiles", 2.0, "percentile", "computes percentiles", pct)
        elif f.tokens & {"p95", "p99", "p50", "percentile", "percentiles"} and acc.score:
            acc.add("percentiles", 1.0, "percentile-name", "reports percentiles", _line(unit))
        avg = f.signals.get("running_avg")
        if avg is not None:
            acc.add("running_average", 2.0, "running-average", "updates a running average", avg)
        alert = roles & {"alert", "alerts", "notify", "warn", "trigger", "alarm"}
        alerting = alert or f.tokens & {"alert", "alerts", "alarm"}
        if alerting and "threshold_compare" in f.signals and acc.score:
            acc.add(
                "alerts",
                2.0,
                "alert-threshold",
                "compares metrics against thresholds",
                f.signals["threshold_compare"],
            )
        sysm = _calls_matching(
            f,
            (
                "psutil.cpu_percent",
                "psutil.virtual_memory",
                "psutil.disk_",
                "psutil.net_io",
                "psutil.Process",
            ),
        )
        if sysm is not None and acc.score:
            acc.add("system_metrics", 1.0, "system-metrics", f"samples `{sysm[0]}`", sysm[1])
        if acc.score and (
            roles
            & {
                "get_metrics",
                "get_stats",
                "summary",
                "report",
                "snapshot",
                "export",
                "get_summary",
                "get_report",
                "to_prometheus",
            }
            or f.tokens & {"prometheus", "exposition", "statsd"}
        ):
            acc.add("export", 1.0, "export", "reports/exports its metrics", _line(unit))
        if acc.score and _tails_matching(f, ("Thread", "create_task")) and "sleep" in f.tails:
            acc.add("background", 0.5, "background", "samples in a background loop", _line(unit))
        if acc.score and level != "class" and "wrapper_def" in f.signals and timing is not None:
            acc.add(
                "decorator",
                1.5,
                "timing-decorator",
                "wraps calls and times them",
                f.signals["wrapper_def"],
            )
        if level == "class" and name_hint:
            # A metrics record: a data class whose fields are performance measurements
            # (response_time, cpu_percent, memory_usage_mb, p95_latency, ...).
            perf_fields = sorted(name for name in f.fields if set(split_ident(name)) & _STRONG_PERF)
            if len(perf_fields) >= 2:
                acc.add(
                    "metrics_record",
                    3.0,
                    "metrics-fields",
                    "performance fields " + ", ".join(perf_fields[:5]),
                    min(f.fields[n] for n in perf_fields),
                )
        if name_hint and acc.score > 0:
            acc.add(None, 1.5, "name", f"name `{unit.name}` says monitoring", _line(unit))
        core = any(
            c in acc.caps
            for c in (
                "timing",
                "counters",
                "history",
                "percentiles",
                "running_average",
                "metrics_record",
            )
        )
        # Without a clock reading, counters must be about performance (latency, cpu, ...), not
        # about lint errors, test outcomes or business events.
        perf_vocab = timing is not None or bool(f.tokens & _STRONG_PERF)
        fs = [t for t in f.tails if t in _FS_TAILS] + [
            c for c in f.calls if c.startswith(("watchdog", "inotify", "pyinotify"))
        ]
        monitorish = own_words & (_MONITOR_WORDS | {"watcher", "watch", "observer"})
        measures = timing is not None or "percentiles" in acc.caps or "running_average" in acc.caps
        if monitorish and fs and (f.tokens & _FS_TOKENS) and not measures:
            return _Acc(self.category).verdict(
                False,
                "file-system watcher (polls/observes files: "
                + ", ".join(sorted(set(fs))[:3])
                + "), not performance monitoring",
            )
        no_perf = not (f.tokens & (_PERF_VOCAB - {"response", "error", "errors"}))
        business = f.tokens & _BUSINESS_WORDS or own_words & {"calculator", "analytics", "kpi"}
        if monitorish and not timing and no_perf and business:
            return _Acc(self.category).verdict(
                False,
                "business metrics calculator (computes figures from domain data; no timing, "
                "latency or operation counters)",
            )
        if acc.score == 0:
            return None
        if own_words & {"calculator"} or (
            words & _BUSINESS_WORDS
            and timing is None
            and not (f.tokens & {"latency", "duration", "elapsed", "cpu"})
        ):
            return acc.verdict(
                False,
                "business metrics calculator (computes figures from domain data; no timing, "
                "latency or operation counters)",
            )
        threshold = 4.5 if level == "class" else 3.5
        flagged = core and perf_vocab and acc.score >= threshold
        if (
            flagged
            and level != "class"
            and not (
                {"timing", "history", "percentiles", "running_average", "alerts"} & set(acc.caps)
            )
        ):
            flagged = False  # a function that only counts is not a monitor
        if flagged and level != "class" and not name_hint and not record_methods:
            # A method that times itself and counts retries is not a monitor: it needs samples,
            # percentiles, a running average, alerts or a timing decorator to be one.
            flagged = bool(
                {"history", "percentiles", "running_average", "alerts", "decorator"} & set(acc.caps)
            )
        return acc.verdict(flagged, None if flagged else "weak")


_REGISTRY: dict[str, Detector] = {}


def register_detector(detector: Detector) -> None:
    """Add (or replace) the detector of ``detector.category``."""
    if not isinstance(detector, Detector):
        raise TypeError(f"detector {detector!r} lacks a `category` or a `detect` method")
    if not isinstance(detector.category, str) or not detector.category:
        raise ValueError(f"detector category must be a non-empty str, got {detector.category!r}")
    _REGISTRY[detector.category] = detector


def unregister_detector(category: str) -> None:
    """Remove the detector of ``category``; raise KeyError naming it if there is none."""
    if category not in _REGISTRY:
        raise KeyError(f"no detector registered for category {category!r}")
    del _REGISTRY[category]


def detectors() -> list[Detector]:
    """Return the registered detectors in registration order."""
    return list(_REGISTRY.values())


_BUILTIN: tuple[Detector, ...] = (
    CacheDetector(),
    MemoryDetector(),
    ResponseDetector(),
    MonitoringDetector(),
)
for _d in _BUILTIN:
    register_detector(_d)


def only_builtin() -> bool:
    """Return True while the registry holds exactly the built-in detectors."""
    return len(_REGISTRY) == len(_BUILTIN) and all(_REGISTRY.get(d.category) is d for d in _BUILTIN)
