"""perflayer's own parts as the default canonical of each category, with their API mapping.

The analyzer never imports the runtime layer; this table describes it (its capability names are
the ones the detectors emit), so the report can say what a duplicate maps to, e.g.
``CacheManager.get -> perflayer.Cache.get``.
"""

from __future__ import annotations

from dataclasses import dataclass

from perflayer.analyze._facts import split_ident

__all__ = ["PERFLAYER", "CanonicalPart", "map_api"]


@dataclass(frozen=True, slots=True)
class CanonicalPart:
    """A perflayer part: its name, capabilities and method synonyms -> its API."""

    name: str
    capabilities: frozenset[str]
    api: tuple[tuple[frozenset[str], str], ...]
    field_api: tuple[tuple[frozenset[str], str], ...] = ()


def _w(*words: str) -> frozenset[str]:
    return frozenset(words)


PERFLAYER: dict[str, CanonicalPart] = {
    "cache": CanonicalPart(
        "perflayer.Cache",
        frozenset(
            {
                "store",
                "get_set",
                "invalidation",
                "ttl",
                "eviction",
                "lru",
                "stats",
                "async",
                "tiers",
                "backend",
                "persistence",
                "thread_safe",
                "memoize",
            }
        ),
        (
            (_w("get", "fetch", "lookup", "retrieve", "load", "read", "getitem"), "get"),
            (_w("set", "put", "store", "save", "add", "write", "insert", "setitem"), "set"),
            (_w("delete", "remove", "invalidate", "evict", "pop", "delitem", "discard"), "delete"),
            (_w("clear", "flush", "purge", "reset", "wipe"), "flushdb"),
            (_w("exists", "has", "contains"), "exists"),
            (_w("stats", "statistics", "info", "metrics", "hit", "rate"), "stats"),
            (_w("expire", "expiry", "ttl", "touch"), "expire"),
            (_w("cleanup", "expired", "sweep", "prune"), "expire_now"),
            (_w("memoize", "cached", "decorator", "memo", "wrapper"), "cached"),
            (_w("size", "len", "count", "keys"), "dbsize"),
            (_w("warm", "preload", "prefetch"), "warm"),
            (_w("shrink", "resize", "trim"), "shrink"),
        ),
    ),
    "memory": CanonicalPart(
        "perflayer.MemoryGuard",
        frozenset(
            {
                "rss",
                "gc",
                "object_size",
                "tracemalloc",
                "pool",
                "thresholds",
                "weakref",
                "background",
                "streaming",
            }
        ),
        (
            (_w("usage", "rss", "memory", "footprint", "mb", "bytes"), "rss"),
            (_w("check", "pressure", "level", "status", "critical", "threshold"), "check"),
            (_w("admit", "allow", "can", "reserve", "budget"), "admit"),
            (
                _w("collect", "gc", "garbage", "optimize", "cleanup", "free"),
                "perflayer.memory.gc_tuned",
            ),
            (
                _w("leak", "leaks", "tracemalloc", "snapshot", "allocations"),
                "perflayer.memory.leak_check",
            ),
            (_w("acquire", "borrow", "take", "checkout"), "perflayer.memory.ObjectPool.acquire"),
            (
                _w("release", "return", "give", "checkin", "recycle"),
                "perflayer.memory.ObjectPool.release",
            ),
            (_w("start", "monitor", "watch", "begin"), "start"),
            (_w("stop", "shutdown", "close", "end"), "stop"),
            (_w("register", "callback", "on", "subscribe"), "on_change"),
            (
                _w("stream", "chunk", "chunks", "chunked", "batch", "batches"),
                "perflayer.memory.process_in_chunks",
            ),
        ),
    ),
    "response": CanonicalPart(
        "perflayer.Response",
        frozenset(
            {
                "envelope",
                "status",
                "payload",
                "error",
                "timing",
                "meta",
                "serialization",
                "priority",
                "timeouts",
                "concurrency",
            }
        ),
        (
            (_w("success", "ok", "succeed", "succeeded"), "success"),
            (_w("error", "fail", "failure", "failed", "exception"), "failure"),
            (_w("submit", "optimize", "schedule", "execute"), "perflayer.ResponseOptimizer.submit"),
            (_w("dict", "json", "serialize", "dump", "as"), "to_dict"),
            (_w("from", "parse", "load", "loads"), "from_dict"),
            (_w("unwrap", "value", "result", "get"), "unwrap"),
        ),
        (
            (_w("success", "ok", "succeeded", "is_success", "successful", "status"), "ok"),
            (
                _w("data", "result", "results", "content", "payload", "body", "value", "output"),
                "value",
            ),
            (
                _w("error", "errors", "error_message", "message", "exception", "err", "error_code"),
                "error",
            ),
            (
                _w(
                    "processing_time",
                    "response_time",
                    "duration",
                    "elapsed",
                    "latency",
                    "execution_time",
                    "took",
                    "time_ms",
                    "duration_ms",
                    "elapsed_ms",
                    "latency_ms",
                    "timing",
                    "processing_time_ms",
                    "response_time_ms",
                    "execution_time_ms",
                    "timestamp",
                ),
                "latency_ms",
            ),
            (_w("metadata", "meta", "request_id", "trace_id", "source", "cached"), "metadata"),
        ),
    ),
    "monitoring": CanonicalPart(
        "perflayer.Monitor",
        frozenset(
            {
                "timing",
                "counters",
                "history",
                "percentiles",
                "running_average",
                "alerts",
                "system_metrics",
                "export",
                "background",
                "decorator",
                "metrics_record",
            }
        ),
        (
            (_w("increment", "inc", "count", "counter", "incr"), "counter().inc"),
            (
                _w(
                    "record", "observe", "track", "timing", "time", "latency", "duration", "measure"
                ),
                "histogram().observe",
            ),
            (_w("gauge", "set", "update", "usage"), "gauge().set"),
            (_w("percentile", "percentiles", "quantile", "p95", "p99"), "histogram().quantile"),
            (
                _w("alert", "alerts", "threshold", "thresholds", "notify", "warn"),
                "perflayer.monitor.AlertRule",
            ),
            (
                _w("metrics", "stats", "summary", "report", "export", "snapshot", "get"),
                "exposition",
            ),
            (_w("start", "begin", "run", "loop"), "serve"),
            (_w("timer", "timed", "decorator", "wrapper"), "histogram().time"),
        ),
    ),
}


def map_api(category: str, symbol: str, methods: list[str], fields: list[str]) -> dict[str, str]:
    """Map a duplicate's public methods (or envelope fields) to perflayer's API."""
    part = PERFLAYER.get(category)
    if part is None:
        return {}
    out: dict[str, str] = {}
    base = symbol.split(".", 1)[0]
    prefix = part.name

    def target(api: str) -> str:
        return api if api.startswith("perflayer.") or " " in api else f"{prefix}.{api}"

    names = [
        m
        for m in methods
        if not m.startswith("_")
        or m in ("__getitem__", "__setitem__", "__delitem__", "__contains__")
    ]
    if not methods:
        names = [symbol.rsplit(".", 1)[-1]]
        base = ""
    words, fwords = _index(part)
    for name in names:
        # The last word names the thing (get_stats -> stats, force_gc -> gc): try words from
        # the end, so a leading verb like "get" only decides when nothing else matches.
        found = None
        for word in reversed(split_ident(name.strip("_"))):
            found = words.get(word)
            if found is not None:
                break
        if found is not None:
            out[f"{base}.{name}" if base else name] = target(found)
    for fname in fields:
        api = fwords.get(fname.lower())
        if api is not None:
            out[f"{base}.{fname}"] = target(api)
    return out


_indexes: dict[int, tuple[CanonicalPart, dict[str, str], dict[str, str]]] = {}


def _index(part: CanonicalPart) -> tuple[dict[str, str], dict[str, str]]:
    """Return word -> API of the first synonym set holding it, for methods and for fields."""
    # why: a big tree maps thousands of duplicates; one dict lookup per word replaces a scan
    # of every synonym set.
    got = _indexes.get(id(part))
    if got is None or got[0] is not part:
        words: dict[str, str] = {}
        for syns, api in part.api:
            for w in syns:
                words.setdefault(w, api)
        fwords: dict[str, str] = {}
        for syns, api in part.field_api:
            for w in syns:
                fwords.setdefault(w, api)
        got = _indexes[id(part)] = (part, words, fwords)
    return got[1], got[2]
