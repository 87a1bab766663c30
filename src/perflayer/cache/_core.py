"""The in-process cache: redis-py's string/keyspace commands over a dict of entries.

Layout: ``_data`` maps each key (always ``str``; bytes keys are decoded with UTF-8 +
surrogateescape, so ``b"a"`` and ``"a"`` are one key as in Redis) to an ``_Entry``. The policy
(``make_policy``) owns only the eviction order. Expiry is Redis': lazy on access, plus an
amortized active step on every locked write (inserts, deletes, INCR, ...) that pops a few due
keys from a heap of deadlines (no thread); ``AsyncCache.start_expiry()`` adds an optional
asyncio task. New keys stored with a TTL while the cache evicts reach the schedule in batches
(``_fold_fresh``), those of a cache still filling up at once; a deadline no earlier than the
last one scheduled joins the *run* (two deques in deadline order, no tuple per key), an earlier
one the heap. One float (``_due``, a lower bound on every scheduled deadline) tells a write
whether a step is due.

Concurrency: writes take one lock (``threading.Lock``, or its C twin ``_fastpath_c.Lock``). A
read hit takes none: a dict lookup, an expiry check against the clock (only for keys with a
TTL), an int-slot increment of the level's hit counter and the policy's ``hit``, which the
Policy protocol requires to be lock-free. An overwrite that keeps the value's weight, level and
tags is lock-free too (see ``set``). Both rely on the GIL: no call runs between their checks and
their slot stores.
"""

from __future__ import annotations

import datetime
import heapq
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from perflayer.cache._levels import CacheLevel
from perflayer.cache._native import native_enabled
from perflayer.cache._protocols import Policy
from perflayer.cache._size import (
    ENTRY_OVERHEAD,
    SCALAR_SIZE,
    entry_weight,
    estimate,
    key_size,
)
from perflayer.cache._strings import (
    ERR_NOT_INT,
    ERR_OVERFLOW,
    ERR_WRONGTYPE,
    INT64_MAX,
    INT64_MIN,
    as_bytes,
    expiry_arg,
    glob_match,
    incr_float,
    parse_int64,
    to_redis_int,
)
from perflayer.errors import CacheKeyError, CacheValueTooLarge, ConfigError, ResponseError

__all__ = ["Cache", "LevelStats"]

_time = time.time
_MISSING: Any = object()
_ENTRY_OVERHEAD = ENTRY_OVERHEAD
_SCALAR_SIZE = SCALAR_SIZE
_BIG = 2**62
_NEG_BIG = -_BIG  # (a constant: ``-_BIG`` in the hot path allocates a new int per call)
_getsizeof = sys.getsizeof
_heappush = heapq.heappush
_NEVER = float("inf")
# why: keys inserted with a TTL wait in a plain list (``Cache._fresh``) and join the deadline
# heap in batches of up to this many, skipping those evicted meanwhile; see ``_fold_fresh``.
_FRESH_MAX = 1024


def _now_ms() -> int:
    """Return wall-clock milliseconds, as Redis' ``mstime()``."""
    return int(_time() * 1000)


class LevelStats:
    """The int counters of one level; ``Cache.stats()`` and the monitor read these."""

    __slots__ = (
        "bytes",
        "entries",
        "evicted_deleted",
        "evicted_expired",
        "evicted_size",
        "hits",
        "level",
        "misses",
    )

    def __init__(self, level: CacheLevel) -> None:
        self.level = level
        self.hits = 0
        self.misses = 0
        self.evicted_size = 0
        self.evicted_expired = 0
        self.evicted_deleted = 0
        self.entries = 0
        self.bytes = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as a dict (the shape of ``stats()``)."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / lookups if lookups else 0.0,
            "evictions": {
                "size": self.evicted_size,
                "expired": self.evicted_expired,
                "deleted": self.evicted_deleted,
            },
            "entries": self.entries,
            "bytes": self.bytes,
        }


class _PyEntry:
    """One stored value with its expiry, level, weight and tags (the pure-Python entry).

    ``expire`` is the deadline in ms since the epoch as a float (0.0: none); a float, because
    the hot path compares it with ``time.time() * 1000`` and float/float comparison is about
    50 ns cheaper than int/float in CPython 3.11. The plain ``set(k, v, ex=n)`` path keeps the
    clock's sub-ms fraction (Redis' deadline is its floor): comparisons with an integer ms clock
    and ``int(expire)`` give Redis' answers, and EXPIRE's GT/LT floor it before comparing.
    """

    __slots__ = ("expire", "key", "lvl", "plain_vw", "tags", "value", "weight")

    def __init__(
        self,
        key: str,
        value: Any,
        expire: float,
        lvl: LevelStats,
        weight: int,
        tags: tuple[str, ...] | None,
        plain_vw: int,
    ) -> None:
        self.key = key
        self.value = value
        self.expire = float(expire)
        self.lvl = lvl
        self.weight = weight
        self.tags = tags
        # the value's weight when the entry is in the default level without tags, else -2:
        # what the lock-free SET overwrite compares in one step
        self.plain_vw = plain_vw


# why: the C twin of _PyEntry (perflayer.cache._fastpath_c.Entry: the same attributes and
# constructor) is born untracked by the cyclic GC while its value, key, tags and level can refer
# to nothing that leads back to it, and tracks itself when one that can is stored (as CPython's
# dicts do). Every _PyEntry is tracked, so each new key brought its share of the collector's
# traversals: ~930 instructions a new-key set of a filling cache (callgrind), more in wall time.
# Chosen once, when this module is imported (PERFLAYER_PURE_PYTHON then picks the Python class).
if TYPE_CHECKING:
    _Entry = _PyEntry
else:
    _Entry = _PyEntry
    if native_enabled():
        try:
            from perflayer.cache._fastpath_c import Entry as _Entry
        except ImportError:  # not compiled at install time: the Python class
            pass


def _new_lock() -> threading.Lock:
    """Return a new cache lock: ``_fastpath_c.Lock`` where built and enabled, else threading's.

    Why: the C twin has threading.Lock's API and semantics (the Python paths use it as they
    would a threading.Lock), and the C fast paths take it with one non-blocking C call instead
    of calling its ``acquire``/``release`` methods: ~850 instructions and ~25 instruction-cache
    misses less per new-key set (callgrind; see _fastpath_c.c, "the lock").
    """
    if native_enabled():
        try:
            from perflayer.cache._fastpath_c import Lock
        except ImportError:  # not compiled at install time
            pass
        else:
            return cast("threading.Lock", Lock())
    return threading.Lock()


def _bad_key(name: object) -> CacheKeyError:
    return CacheKeyError(f"cache keys must be str or bytes, got {type(name).__name__}: {name!r}")


def _key(name: object) -> str:
    """Return the canonical str key for ``name`` or raise CacheKeyError."""
    cls = name.__class__
    if cls is str:
        return name  # type: ignore[return-value]
    if isinstance(name, (bytes, bytearray, memoryview)):
        return bytes(name).decode("utf-8", "surrogateescape")
    if isinstance(name, str):
        return str(name)
    raise _bad_key(name)


def _list_or_args(keys: Any, args: tuple[Any, ...]) -> list[Any]:
    """Mirror redis-py's ``list_or_args``."""
    if isinstance(keys, (str, bytes)):
        out = [keys]
    else:
        try:
            out = list(keys)
        except TypeError:
            out = [keys]
    out.extend(args)
    return out


class _Exclusive:
    """The cache lock, plus a flag that tells the lock-free SET path a locked command is running.

    A locked command may read an entry, call out, and write it back (INCR, APPEND, SET GET, ...);
    the lock-free overwrite in ``Cache.set`` checks ``_rmw`` and takes the lock instead while it
    is set, so it can never land between such a read and write.
    """

    __slots__ = ("_cache", "_lock")

    def __init__(self, cache: Cache, lock: threading.Lock) -> None:
        self._cache = cache
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        self._cache._rmw = True

    def __exit__(self, *exc: object) -> None:
        self._cache._rmw = False
        self._lock.release()


class Cache:
    """An in-process, thread-safe cache with redis-py's string and keyspace commands.

    Values are any Python object. ``decode_responses=None`` (the default) returns values as
    stored; ``False``/``True`` make str, bytes, int and float values behave byte-for-byte like
    a redis-py client with that setting (stored as bytes / str).

    >>> c = Cache(max_entries=1000)
    >>> c.set("user:1", {"name": "Ada"}, ex=60, level=CacheLevel.MCP_RESPONSES)
    True
    >>> c.get("user:1")
    {'name': 'Ada'}
    >>> c.incr("hits"), c.incrby("hits", 5)
    (1, 6)
    """

    def __init__(
        self,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        *,
        policy: str = "auto",
        decode_responses: bool | None = None,
        levels: Iterable[CacheLevel] = (),
        name: str = "default",
        monitor: Any = None,
        metrics: bool = True,
    ) -> None:
        for bound_name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 1
            ):
                raise ConfigError(f"{bound_name} must be a positive int or None, got {bound!r}")
        if decode_responses not in (None, True, False):
            raise ConfigError(
                f"decode_responses must be None, True or False, got {decode_responses!r}"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError(f"cache name must be a non-empty str, got {name!r}")
        from perflayer.cache._policy import make_policy

        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.policy_name = policy
        self._policy: Policy = make_policy(policy, max_entries, max_bytes)
        self._decode = decode_responses
        self._lock = _new_lock()
        self._rmw = False
        self._exclusive = _Exclusive(self, self._lock)
        self._data: dict[str, _Entry] = {}
        self._expiry_heap: list[tuple[float, str]] = []
        # why: the deadlines of a cache whose keys share a TTL arrive in order, so they need no
        # heap: the run holds them as two deques (keys, deadlines; deadlines nondecreasing),
        # appended and popped at the ends, the key and the entry's own float stored as they are.
        # A heap item instead allocates a tuple (a GC-tracked one, so it also brings the cyclic
        # collector round) and pays a sift; see _fold_fresh for the numbers. ``_run_tail`` is
        # the last deadline in the run (-inf: empty), which a deadline must reach to join it.
        self._run_keys: deque[str] = deque()
        self._run_when: deque[float] = deque()
        self._run_tail = -_NEVER
        # keys stored with a TTL by the new-key paths, not yet in the heap (see _fold_fresh)
        self._fresh: list[str] = []
        # why: a lower bound on every deadline in the heap and the fresh list (inf: none), so a
        # write asks "is anything due?" with one comparison; every push lowers it, every
        # active-expiry step and rebuild sets it to the heap's head.
        self._due = _NEVER
        self._tags: dict[str, set[str]] = {}
        self._levels: dict[str, LevelStats] = {}
        for preset in CacheLevel.presets():
            self._levels[preset.name] = LevelStats(preset)
        for lvl in levels:
            self._level_stats(lvl)
        self._default = self._levels["default"]
        self._scans: dict[int, list[str]] = {}
        self._scan_seq = 0
        # why: bound once, so the hot paths do a local call instead of two attribute loads.
        self._policy_hit = self._policy.hit
        self._policy_miss = self._policy.miss
        self._policy_add = self._policy.add
        if metrics:
            from perflayer.cache._metrics import register_cache

            register_cache(self, monitor)
        # why: the C twins of get and the plain set (perflayer.cache._fastpath_c, the same
        # answers: tests/cache/test_fastpath_c.py) cost 0.54x and 0.79x a cachetools get-hit and
        # new-key set, where these Python methods cost 0.77x and 1.4x (callgrind,
        # benchmarks/cache_latency.py). Bound per instance, last, and only where a subclass
        # overrides neither method; the binding is a cycle (cache -> bound builtin -> cache)
        # that the cyclic GC frees.
        if native_enabled() and type(self).get is Cache.get and type(self).set is Cache.set:
            try:
                from perflayer.cache._fastpath_c import fast_get, fast_set
            except ImportError:  # not compiled at install time: the Python methods
                pass
            else:
                self.get = fast_get(self)  # type: ignore[method-assign,assignment]
                self.set = fast_set(self)  # type: ignore[method-assign]

    # ------------------------------------------------------------------ internals

    def _norm(self, value: Any) -> Any:
        """Return ``value`` as stored: unchanged, or as bytes/str in redis-mirror mode."""
        decode = self._decode
        if decode is None:
            return value
        raw = as_bytes(value)
        if raw is None:
            if isinstance(value, bool):
                raise ConfigError(
                    "Invalid input of type: 'bool'. Convert to a bytes, string, int or float "
                    f"first: {value!r}"
                )
            return value
        if decode:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        return raw

    def _out_key(self, key: str) -> str | bytes:
        """Return a key as KEYS/SCAN report it (bytes when decode_responses=False)."""
        if self._decode is False:
            return key.encode("utf-8", "surrogateescape")
        return key

    def _out_str(self, text: str) -> str | bytes:
        if self._decode is False:
            return text.encode()
        return text

    def _level_stats(self, level: CacheLevel | str | None) -> LevelStats:
        """Return the stats of ``level``, registering a new CacheLevel on first use."""
        if level is None:
            return self._default
        if isinstance(level, CacheLevel):
            ls = self._levels.get(level.name)
            if ls is None:
                ls = LevelStats(level)
                self._levels[level.name] = ls
            elif ls.level != level:
                raise ConfigError(
                    f"level name {level.name!r} is already defined as {ls.level!r}, got {level!r}"
                )
            return ls
        if isinstance(level, str):
            ls = self._levels.get(level)
            if ls is None:
                raise ConfigError(
                    f"unknown cache level {level!r}; known levels: {sorted(self._levels)}"
                )
            return ls
        raise ConfigError(f"level must be a CacheLevel or a level name, got {level!r}")

    def add_level(self, level: CacheLevel) -> None:
        """Register a user-defined level so it can be named by string in ``set(level=...)``."""
        if not isinstance(level, CacheLevel):
            raise ConfigError(f"add_level() takes a CacheLevel, got {level!r}")
        self._level_stats(level)

    def _unlink(self, key: str, e: _Entry) -> None:
        """Remove ``e`` from the dict, tag index and level counters (lock held)."""
        del self._data[key]
        lvl = e.lvl
        lvl.entries -= 1
        lvl.bytes -= e.weight
        if e.tags:
            tags = self._tags
            for t in e.tags:
                s = tags.get(t)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del tags[t]

    def _remove(self, key: str, e: _Entry, reason: str) -> None:
        """Remove a resident entry for ``reason`` ("expired" or "deleted"; lock held)."""
        self._unlink(key, e)
        self._policy.remove(key)
        if reason == "expired":
            e.lvl.evicted_expired += 1
        else:
            e.lvl.evicted_deleted += 1

    def _evict(self, victims: list[Hashable]) -> None:
        """Drop keys the policy chose to evict for size (lock held)."""
        data = self._data
        for k in victims:
            e = data.get(k)  # type: ignore[call-overload]
            if e is not None:
                self._unlink(k, e)  # type: ignore[arg-type]
                e.lvl.evicted_size += 1

    def _live(self, key: str, now: int | None = None) -> _Entry | None:
        """Return the live entry of ``key``, expiring it lazily (lock held)."""
        e = self._data.get(key)
        if e is None:
            return None
        exp = e.expire
        if exp:
            if now is None:
                now = _now_ms()
            if exp < now:
                self._remove(key, e, "expired")
                return None
        return e

    def _fold_fresh(self) -> None:
        """Move the fresh keys' deadlines to the run or heap, skipping keys gone (lock held).

        Why a list first: most new keys of a full W-TinyLFU cache are evicted before the next
        fold and never get an item. Why the run: a deadline no earlier than the run's last one
        (every key of a cache whose keys share a TTL) is appended as it is, where a heap item
        cost a tuple (GC-tracked, so it also brought the cyclic collector round), a sift, and
        its share of the rebuilds. Callgrind, new-key ``set(k, v, ex=3600)`` per call (scratch
        harness of benchmarks/cache_latency.py's shape): full LRU cache 20,443 -> 18,209,
        filling LRU 17,169 -> 15,762, full W-TinyLFU 13,865 -> 13,602, filling W-TinyLFU
        14,823 -> 13,398. A key stored twice meanwhile gets one item per fold (stale items
        are skipped when they come due).
        """
        fresh = self._fresh
        if fresh:
            data = self._data
            heap = self._expiry_heap
            run_keys = self._run_keys
            run_when = self._run_when
            tail = self._run_tail
            for key in fresh:
                e = data.get(key)
                if e is not None:
                    when = e.expire
                    if when:
                        if when >= tail:
                            run_keys.append(key)
                            run_when.append(when)
                            tail = when
                        else:
                            _heappush(heap, (when, key))
            self._run_tail = tail
            fresh.clear()
            if len(heap) + len(run_keys) > self._schedule_bound():
                self._rebuild_heap()

    def _active_expire(self, now: int, budget: int = 16) -> int:
        """Pop up to ``budget`` due deadlines and expire their keys (lock held)."""
        if self._fresh:
            self._fold_fresh()
        heap = self._expiry_heap
        data = self._data
        done = 0
        while heap and heap[0][0] < now and done < budget:
            when, key = heapq.heappop(heap)
            done += self._expire_item(data, heap, key, when, now)
        run_when = self._run_when
        if run_when and run_when[0] < now and done < budget:
            run_keys = self._run_keys
            while run_when and run_when[0] < now and done < budget:
                done += self._expire_item(data, heap, run_keys.popleft(), run_when.popleft(), now)
            if not run_when:
                self._run_tail = -_NEVER
        if len(heap) + len(self._run_keys) > self._schedule_bound():
            self._rebuild_heap()
        else:
            self._due = self._first_deadline()
        return done

    def _expire_item(
        self,
        data: dict[str, _Entry],
        heap: list[tuple[float, str]],
        key: str,
        when: float,
        now: int,
    ) -> int:
        """Act on one due schedule item; return 1 if it expired a key (lock held).

        Stale items (the key left, or lost its TTL) are dropped; a deadline moved later since
        the item was scheduled is rescheduled on the heap (it may precede the run's tail).
        """
        e = data.get(key)
        if e is None or not e.expire:
            return 0
        if e.expire <= when or e.expire < now:
            self._remove(key, e, "expired")
            return 1
        heapq.heappush(heap, (e.expire, key))
        return 0

    def _first_deadline(self) -> float:
        """Return the earliest deadline in the heap and the run (inf: none; lock held)."""
        due = self._expiry_heap[0][0] if self._expiry_heap else _NEVER
        run_when = self._run_when
        if run_when and run_when[0] < due:
            due = run_when[0]
        return due

    def _rebuild_heap(self) -> None:
        """Rebuild the deadline schedule from the live entries, all into the run (lock held).

        Stale items (keys evicted for size, deleted, overwritten or persisted) are skipped
        lazily, so without this a cache that keeps inserting new keys with a TTL would grow the
        heap and the run (and keep evicted key strings alive) without bound. The writes that
        schedule call this when the heap and the run together pass three times the live keys
        plus 1,024, so a rebuild (O(n log n) at worst, about O(n) for deadlines that arrived in
        order) runs at most once per 2n + 1,024 pushes; a cache that is only filling up (no
        stale items) never passes it.
        """
        # why: no tuple per key; the indices are sorted by one snapshot of the deadlines, so a
        # lock-free overwrite raising a deadline meanwhile cannot unsort the run (its item is
        # early, which only reschedules it). 1,423 instructions per live key in callgrind,
        # against 1,721 for the heap's tuples + heapify (and those tuples stayed GC-tracked).
        ents = [e for e in self._data.values() if e.expire]
        whens = [e.expire for e in ents]
        order = sorted(range(len(whens)), key=whens.__getitem__)
        self._run_keys = deque([ents[i].key for i in order])
        self._run_when = run_when = deque([whens[i] for i in order])
        self._run_tail = run_when[-1] if run_when else -_NEVER
        self._expiry_heap = []
        self._fresh.clear()
        self._due = run_when[0] if run_when else _NEVER

    def _schedule_bound(self) -> int:
        """Return how many deadline items the schedule may hold before a rebuild (lock held).

        Three times the live keys plus 1,024: stale items (evicted, deleted, overwritten keys)
        are dropped lazily, and a rebuild (O(n log n) at worst) then runs at most once per
        2n + 1,024 schedulings. The C fold (``_fastpath_c.c``, ``fold_fresh``) mirrors it.
        """
        return 3 * len(self._data) + 1024

    def _shrink_heap(self) -> None:
        """Rebuild the deadline schedule once deletes leave it mostly stale (lock held).

        Pushes check the bound (three times the live keys plus 1,024) only when they schedule;
        deletes lower the live count without touching the schedule, so after mass deletes it
        would keep up to three times the peak. A rebuild here costs O(live) <= a third of the
        schedule, amortized O(1) per delete.
        """
        scheduled = len(self._expiry_heap) + len(self._run_keys) + len(self._fresh)
        if scheduled > self._schedule_bound():
            self._rebuild_heap()

    def _deadline_keys(self) -> list[str]:
        """Return the keys of every scheduled deadline: heap, run, fresh list (lock held; tests)."""
        return [k for _, k in self._expiry_heap] + list(self._run_keys) + self._fresh

    def _store(
        self,
        key: str,
        value: Any,
        expire: float,
        lvl: LevelStats,
        tags: tuple[str, ...] | None,
        weight: int,
        existing: _Entry | None,
        vw: int | None = None,
    ) -> None:
        """Write one entry and run eviction + the active expiry step (lock held)."""
        if tags is None and lvl is self._default:
            plain_vw = weight - _ENTRY_OVERHEAD - key_size(key) if vw is None else vw
        else:
            plain_vw = -2
        if existing is not None:
            if existing.tags and existing.tags != tags:
                self._untag(key, existing.tags)
            old = existing.lvl
            if old is not lvl:
                old.entries -= 1
                old.bytes -= existing.weight
                lvl.entries += 1
                lvl.bytes += weight
            else:
                lvl.bytes += weight - existing.weight
            old_weight = existing.weight
            old_expire = existing.expire
            existing.expire = float(expire)
            existing.lvl = lvl
            existing.weight = weight
            existing.tags = tags
            existing.plain_vw = plain_vw
            # why: last, so a ``__del__`` run by dropping the old value (which may switch
            # threads) sees a finished entry, as the lock-free SET path relies on.
            existing.value = value
            if weight == old_weight:
                # why: an overwrite that keeps the weight changes no bound, so to the policy it
                # is only a use of the key: one O(1) hit instead of update()'s bookkeeping.
                self._policy_hit(key)
                victims: list[Hashable] = []
            else:
                victims = self._policy.update(key, weight)
        else:
            old_expire = 0
            e = _Entry(key, value, expire, lvl, weight, tags, plain_vw)
            self._data[key] = e
            lvl.entries += 1
            lvl.bytes += weight
            victims = self._policy.add(key, weight)
        if tags:
            index = self._tags
            for t in tags:
                s = index.get(t)
                if s is None:
                    index[t] = {key}
                else:
                    s.add(key)
        if victims:
            self._evict(victims)
        if expire and (not old_expire or expire < old_expire):
            self._push_deadline(expire, key)
        due = self._due
        if due < _NEVER and due < _time() * 1000.0:
            self._active_expire(_now_ms())

    def _push_deadline(self, when: float, key: str) -> None:
        """Schedule ``key``'s deadline ``when``, lower ``_due`` and keep the schedule bounded."""
        self._schedule(when, key)
        if when < self._due:
            self._due = when
        if len(self._expiry_heap) + len(self._run_keys) > self._schedule_bound():
            self._rebuild_heap()

    def _schedule(self, when: float, key: str) -> None:
        """Put ``key``'s deadline ``when`` in the run if no earlier than its tail, else the heap."""
        if when >= self._run_tail:
            self._run_keys.append(key)
            self._run_when.append(when)
            self._run_tail = when
        else:
            heapq.heappush(self._expiry_heap, (when, key))

    def _untag(self, key: str, tags: tuple[str, ...]) -> None:
        index = self._tags
        for t in tags:
            s = index.get(t)
            if s is not None:
                s.discard(key)
                if not s:
                    del index[t]

    def _weigh(self, key: str, value: Any) -> int:
        """Return the weight of an entry, or raise CacheValueTooLarge before anything changes."""
        w = entry_weight(key, value)
        mb = self.max_bytes
        if mb is not None and w > mb:
            raise CacheValueTooLarge(
                f"value for key {key!r} is ~{w} bytes (estimated), over max_bytes={mb}"
            )
        return w

    @staticmethod
    def _check_tags(tags: Iterable[str] | None) -> tuple[str, ...] | None:
        if tags is None:
            return None
        if isinstance(tags, (str, bytes)):
            raise ConfigError(f"tags must be an iterable of str, not a single string: {tags!r}")
        out = tuple(tags)
        for t in out:
            if not isinstance(t, str):
                raise ConfigError(f"tags must be str, got {t!r}")
        return out or None

    def _level_expire(self, lvl: LevelStats, now: int) -> float:
        ttl = lvl.level.ttl
        return float(now + int(ttl * 1000)) if ttl is not None else 0.0

    # ------------------------------------------------------------------ reads

    def get(self, name: Any) -> Any:
        """Return the value at ``name``, or None (GET)."""
        try:
            e = self._data.get(name)
        except TypeError:  # unhashable: _get_miss raises CacheKeyError naming it
            return self._get_miss(name)
        # why: .get, not [] in a try: a hit costs the same, and a miss no longer raises and
        # catches a KeyError (~1 us on this VM, 4x a cachetools miss; a quarter of a
        # cache-aside workload's reads are misses).
        if e is None:
            if name.__class__ is str:  # _get_miss's common case, inlined
                self._default.misses += 1
                self._policy_miss(name)
                return None
            return self._get_miss(name)
        exp = e.expire
        # why: entries without a TTL skip the clock read entirely.
        if exp and exp < _time() * 1000.0:
            return self._get_expired(name)
        # why: no lock on a hit. ``+=`` on an int slot runs no Python code, so under the GIL it
        # cannot interleave with another thread's; policy.hit is lock-free by the Policy contract.
        e.lvl.hits += 1
        try:
            self._policy_hit(name)
        except KeyError:  # the key left (another thread) between the lookup and the hit
            pass
        return e.value

    def _get_miss(self, name: Any) -> Any:
        if name.__class__ is not str:
            key = _key(name)
            if key in self._data:
                return self.get(key)
            name = key
        self._default.misses += 1
        self._policy_miss(name)
        return None

    def _get_expired(self, name: str) -> Any:
        with self._exclusive:
            live = self._live(name)
            if live is not None:  # rewritten by another thread meanwhile
                live.lvl.hits += 1
                self._policy_hit(name)
                return live.value
            self._default.misses += 1
            self._policy_miss(name)
        return None

    def _peek(self, key: str, lvl: LevelStats | None = None) -> Any:
        """Return the value or ``_MISSING``; a miss counts on ``lvl`` (memoize's lookup)."""
        with self._exclusive:
            e = self._live(key)
            if e is not None:
                e.lvl.hits += 1
                self._policy_hit(key)
                return e.value
            (lvl or self._default).misses += 1
            self._policy_miss(key)
        return _MISSING

    def _quiet(self, key: str) -> Any:
        """Return the live value or ``_MISSING`` without counting a hit or a miss."""
        with self._exclusive:
            e = self._live(key)
            return _MISSING if e is None else e.value

    def mget(self, keys: Any, *args: Any) -> list[Any]:
        """Return the values at ``keys`` (None for missing ones) (MGET)."""
        names = _list_or_args(keys, args)
        return [self.get(_key(k)) for k in names]

    def exists(self, *names: Any) -> int:
        """Return how many of ``names`` exist, counting repeats (EXISTS)."""
        if not names:
            raise ResponseError("wrong number of arguments for 'exists' command")
        keys = [_key(n) for n in names]
        with self._exclusive:
            now = _now_ms()
            return sum(1 for k in keys if self._live(k, now) is not None)

    def ttl(self, name: Any) -> int:
        """Return the remaining seconds to live, -1 without expiry, -2 if missing (TTL)."""
        pttl = self.pttl(name)
        if pttl < 0:
            return pttl
        return (pttl + 500) // 1000

    def pttl(self, name: Any) -> int:
        """Return the remaining milliseconds to live, -1 / -2 as TTL (PTTL)."""
        key = _key(name)
        with self._exclusive:
            now = _now_ms()
            e = self._live(key, now)
            if e is None:
                return -2
            if not e.expire:
                return -1
            return max(0, int(e.expire) - now)

    def strlen(self, name: Any) -> int:
        """Return the length in bytes of the string value at ``name`` (STRLEN)."""
        key = _key(name)
        with self._exclusive:
            e = self._live(key)
            if e is None:
                return 0
            raw = as_bytes(e.value)
        if raw is None:
            raise ResponseError(ERR_WRONGTYPE)
        return len(raw)

    def type(self, name: Any) -> str | bytes:
        """Return "string" for str/bytes/int/float values, "object" for others, "none" (TYPE)."""
        key = _key(name)
        with self._exclusive:
            e = self._live(key)
        if e is None:
            return self._out_str("none")
        return self._out_str("string" if as_bytes(e.value) is not None else "object")

    def dbsize(self) -> int:
        """Return the number of live keys (DBSIZE; expired keys are purged first)."""
        with self._exclusive:
            self._purge_expired()
            return len(self._data)

    def __len__(self) -> int:
        """Return the number of stored keys (expired ones not yet purged included)."""
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        """Return True if ``name`` is a live key."""
        try:
            key = _key(name)
        except CacheKeyError:
            return False
        with self._exclusive:
            return self._live(key) is not None

    def _purge_expired(self) -> int:
        now = _now_ms()
        dead = [k for k, e in self._data.items() if e.expire and e.expire < now]
        for k in dead:
            self._remove(k, self._data[k], "expired")
        return len(dead)

    def keys(self, pattern: Any = "*") -> list[str | bytes]:
        """Return every live key matching the Redis glob ``pattern`` (KEYS)."""
        pat = _pattern(pattern)
        with self._exclusive:
            self._purge_expired()
            keys = list(self._data)
        return [self._out_key(k) for k in keys if _match(pat, k)]

    def scan(
        self,
        cursor: int = 0,
        match: Any = None,
        count: int | None = None,
        _type: Any = None,
        **kwargs: Any,
    ) -> tuple[int, list[str | bytes]]:
        """Return ``(next_cursor, keys)``; cursor 0 ends a full iteration (SCAN).

        Every key present for the whole iteration is returned exactly once; the cursor walks
        a snapshot of the key list taken at cursor 0, skipping keys deleted since.
        """
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ResponseError("invalid cursor")
        step = 10 if count is None else count
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ResponseError("syntax error" if step == 0 else ERR_NOT_INT)
        pat = None if match is None else _pattern(match)
        with self._exclusive:
            scan_id, pos = cursor >> 32, cursor & 0xFFFFFFFF
            snap = self._scans.get(scan_id) if cursor else None
            if snap is None:
                self._purge_expired()
                self._scan_seq += 1
                scan_id = self._scan_seq
                snap = list(self._data)
                self._scans[scan_id] = snap
                # why: bound the snapshots kept for abandoned iterations.
                while len(self._scans) > 32:
                    del self._scans[next(iter(self._scans))]
                if not cursor:
                    pos = 0
            chunk = snap[pos : pos + step]
            pos += len(chunk)
            now = _now_ms()
            live = [k for k in chunk if self._live(k, now) is not None]
            if pos >= len(snap):
                self._scans.pop(scan_id, None)
                next_cursor = 0
            else:
                next_cursor = (scan_id << 32) | pos
        if _type is not None:
            t = _type.decode() if isinstance(_type, (bytes, bytearray)) else str(_type)
            if t.lower() != "string":
                live = []
        if pat is not None:
            live = [k for k in live if _match(pat, k)]
        return next_cursor, [self._out_key(k) for k in live]

    def scan_iter(
        self,
        match: Any = None,
        count: int | None = None,
        _type: str | None = None,
        **kwargs: Any,
    ) -> Iterator[str | bytes]:
        """Yield every key matching ``match`` with repeated SCAN calls."""
        cursor = -1
        while cursor != 0:
            cursor, keys = self.scan(max(cursor, 0), match, count, _type)
            yield from keys

    # ------------------------------------------------------------------ writes

    def set(
        self,
        name: Any,
        value: Any,
        ex: int | datetime.timedelta | None = None,
        px: int | datetime.timedelta | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
        get: bool = False,
        exat: int | datetime.datetime | None = None,
        pxat: int | datetime.datetime | None = None,
        level: CacheLevel | str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Any:
        """Set ``name`` to ``value``; True, or None when NX/XX blocked it (SET).

        ``level`` picks a level (its TTL applies when no expiry is given) and ``tags`` attach
        invalidation tags; pass both by keyword (they are not keyword-only because a
        keyword-only default costs ~30 ns per call in CPython 3.11). With ``get=True`` return
        the old value instead.
        """
        # why: the plain SET (optionally with an int ``ex``) is the common case; it skips option
        # parsing and, on an overwrite that keeps the entry's weight, the generic store.
        if (
            nx
            or xx
            or keepttl
            or get
            or px is not None
            or exat is not None
            or pxat is not None
            or level is not None
            or tags is not None
        ):
            return self._set_slow(
                _key(name), value, ex, px, nx, xx, keepttl, get, exat, pxat, level, tags
            )
        if ex is None:
            expire = 0.0
        elif ex.__class__ is int and 0 < ex <= 9_223_372_036_854_775:  # INT64_MAX // 1000
            # why: float-only arithmetic, and no floor: Redis' deadline is mstime() + ex * 1000
            # (integral ms); ours keeps the clock's fraction, which every comparison with an
            # integer ms clock, PTTL's int() and EXPIRE GT/LT (which floor it) see as the same
            # deadline. Flooring (``// 1.0``) cost ~100 ns of a ~3 us call on this VM. ``now`` is
            # kept for the new-key path's active-expiry check (one clock read a call).
            now = _time() * 1000.0
            expire = now + ex * 1000.0
        else:
            return self._set_slow(
                _key(name), value, ex, px, nx, xx, keepttl, get, exat, pxat, level, tags
            )
        if self._decode is not None:
            value = self._norm(value)
        # why: the scalar rules of _size.estimate, inlined (sys.getsizeof costs as much as a
        # hit); -1 sends odd scalars to the general path, which weighs them properly. Other
        # values (records, lists, objects) are weighed here, once, so that they too get the
        # lock-free overwrite and the inlined new-key insert below.
        cls = value.__class__
        if cls is str:
            vw = 49 + len(value) if value.isascii() else -1
        elif cls is int:
            vw = _SCALAR_SIZE if _NEG_BIG < value < _BIG else -1
        elif cls is float:
            vw = _SCALAR_SIZE
        elif cls is bytes:
            vw = 33 + len(value)
        elif cls is bool or cls is complex or cls is bytearray:
            vw = -1
        else:
            vw = estimate(value)
        try:
            e = self._data.get(name)
        except TypeError:  # unhashable: _set_plain raises CacheKeyError naming it
            e = None
        # why: an overwrite that keeps the value's weight (``plain_vw`` is -2 for entries with a
        # level or tags) and needs no new heap item changes no bound, counter or index: two slot
        # stores and a lock-free policy hit, no lock, no key weighing. No call runs between the
        # checks and the stores (so no other thread can), ``value`` is stored last so a
        # ``__del__`` of the old value sees a finished write, and ``_rmw`` defers to a running
        # locked read-modify-write (INCR, APPEND, SET GET, ...).
        if e is not None:
            if (
                vw == e.plain_vw
                and not self._rmw
                and (not expire or (e.expire and expire >= e.expire))
            ):
                e.expire = expire
                e.value = value
                try:
                    self._policy_hit(name)
                except KeyError:  # removed by another thread meanwhile: set-then-delete order
                    pass
                # (no active-expiry step here: an overwrite frees nothing; locked writes run it)
                return True
            return self._set_plain(name, value, expire, vw)
        if vw < 0 or name.__class__ is not str or not name.isascii():
            return self._set_plain(name, value, expire, vw)
        # A new str key with a scalar value: the miss-then-fill path of every cache-aside
        # reader, inlined (no _set_plain/_evict/_unlink frames). The entry is built before the
        # lock (it is published only by the dict store under it), so the lock covers just the
        # dict, the counters, the policy and the deadline heap.
        weight = _ENTRY_OVERHEAD + 49 + vw + len(name)
        mb = self.max_bytes
        if mb is not None and weight > mb:
            return self._set_plain(name, value, expire, vw)  # raises CacheValueTooLarge
        dflt = self._default
        new = _Entry(name, value, expire, dflt, weight, None, vw)
        data = self._data
        lock = self._lock
        # why: acquire + try/finally is 200-400 ns cheaper than ``with lock:`` on this VM (no
        # __enter__/__exit__ special-method calls); nothing between acquire and try can raise.
        lock.acquire()
        try:
            if name in data:  # another thread stored it since the lookup above
                self._store(name, value, expire, dflt, None, weight, data[name], vw)
                return True
            data[name] = new
            victims = self._policy_add(name, weight)
            n = 1
            if victims:
                # _evict() and _unlink(), inlined for the size eviction of a full cache
                for k in victims:
                    old = data.pop(k, None)  # type: ignore[call-overload]
                    if old is not None:
                        lvl = old.lvl
                        lvl.evicted_size += 1
                        # why: a victim of the default level cancels the new key's entry count
                        # (the steady state of a full cache): one bytes update, no entries ones
                        if lvl is dflt:
                            weight -= old.weight
                            n -= 1
                        else:
                            lvl.entries -= 1
                            lvl.bytes -= old.weight
                        if old.tags:
                            self._untag(k, old.tags)  # type: ignore[arg-type]
            if n:
                dflt.entries += n
            dflt.bytes += weight
            if expire:
                if not victims:
                    # why: nothing left the cache (it is filling), so the deadline is scheduled
                    # now, while the key, entry and float are in the CPU cache: the fresh list's
                    # fold would look each key up again ~500 inserts later, cold in a large dict
                    # (~0.1x of a cachetools set in CPU time, filling; benchmarks-cache-latency.md).
                    # No bound check: this insert adds one item and one live key, so a schedule
                    # within 3 x live + 1,024 stays within it (the checking paths rebuild the rest).
                    self._schedule(expire, name)
                else:
                    # (see _fold_fresh for why a list, not the heap, while keys leave)
                    fresh = self._fresh
                    fresh.append(name)
                    if len(fresh) >= _FRESH_MAX:
                        self._fold_fresh()
                due = self._due
                # why: reuse this call's clock read, not a second ~100 ns one.
                if due < now:
                    self._active_expire(_now_ms())  # (its fold takes this key along)
                elif expire < due:
                    self._due = expire
            else:
                due = self._due
                if due < _NEVER and due < _time() * 1000.0:
                    self._active_expire(_now_ms())
        finally:
            lock.release()
        return True

    def _set_plain(self, name: Any, value: Any, expire: float, vw: int) -> bool:
        """Store a plain SET (no options but ``ex``) under the lock; ``vw`` < 0: not weighed."""
        key = name if name.__class__ is str else _key(name)
        if vw < 0:
            vw = estimate(value)
        weight = _ENTRY_OVERHEAD + vw + (49 + len(key) if key.isascii() else _getsizeof(key))
        mb = self.max_bytes
        if mb is not None and weight > mb:
            self._weigh(key, value)  # raises CacheValueTooLarge naming the key
        dflt = self._default
        lock = self._lock
        lock.acquire()  # (not ``with``: see set())
        try:
            e = self._data.get(key)
            if e is not None:
                self._store(key, value, expire, dflt, None, weight, e, vw)
                return True
            # why: a new plain key is the miss-then-fill path of every cache-aside reader;
            # it skips _store's overwrite and tag branches.
            self._data[key] = _Entry(key, value, expire, dflt, weight, None, vw)
            dflt.entries += 1
            dflt.bytes += weight
            victims = self._policy.add(key, weight)
            if victims:
                self._evict(victims)
            if expire:
                self._push_deadline(expire, key)
            due = self._due
            if due < _NEVER and due < _time() * 1000.0:
                self._active_expire(_now_ms())
        finally:
            lock.release()
        return True

    def _expiry_from_options(
        self,
        cmd: str,
        ex: Any,
        px: Any,
        exat: Any,
        pxat: Any,
        now: int,
    ) -> int | None:
        """Return the absolute expiry in ms for ex/px/exat/pxat, or None if none was given."""
        invalid = ResponseError(f"invalid expire time in '{cmd}' command")
        if ex is not None:
            secs = expiry_arg(ex, 1000, "ex")
            if secs <= 0 or secs > INT64_MAX // 1000:
                raise invalid
            when = now + secs * 1000
        elif px is not None:
            ms = expiry_arg(px, 1, "px")
            if ms <= 0:
                raise invalid
            when = now + ms
        elif exat is not None:
            if isinstance(exat, datetime.datetime):
                exat = int(exat.timestamp())
            secs = to_redis_int(exat)
            if secs <= 0 or secs > INT64_MAX // 1000:
                raise invalid
            when = secs * 1000
        elif pxat is not None:
            if isinstance(pxat, datetime.datetime):
                pxat = int(pxat.timestamp() * 1000)
            when = to_redis_int(pxat)
            if when <= 0:
                raise invalid
        else:
            return None
        if when > INT64_MAX:
            raise invalid
        return when

    def _set_slow(
        self,
        key: str,
        value: Any,
        ex: Any,
        px: Any,
        nx: bool,
        xx: bool,
        keepttl: bool,
        get: bool,
        exat: Any,
        pxat: Any,
        level: CacheLevel | str | None,
        tags: Iterable[str] | None,
    ) -> Any:
        if sum(x is not None for x in (ex, px, exat, pxat)) + bool(keepttl) > 1:
            raise ConfigError(
                "``ex``, ``px``, ``exat``, ``pxat``, and ``keepttl`` are mutually exclusive."
            )
        if nx and xx:
            raise ConfigError(
                "``nx``, ``xx``, ``ifeq``, ``ifne``, ``ifdeq``, ``ifdne`` are mutually exclusive."
            )
        if self._decode is not None:
            value = self._norm(value)
        lvl = self._level_stats(level)
        tag_tuple = self._check_tags(tags)
        now = _now_ms()
        given = self._expiry_from_options("set", ex, px, exat, pxat, now)
        weight = self._weigh(key, value)
        with self._exclusive:
            now = _now_ms()
            e = self._live(key, now)
            old = e.value if e is not None else None
            if (nx and e is not None) or (xx and e is None):
                return old if get else None
            when: float
            if given is not None:
                when = float(given)
            elif keepttl and e is not None:
                when = e.expire
            else:
                when = self._level_expire(lvl, now)
            if when and when <= now:
                # an absolute time in the past: Redis stores then expires the key at once
                if e is not None:
                    self._remove(key, e, "expired")
                return old if get else True
            self._store(key, value, when, lvl, tag_tuple, weight, e)
        return old if get else True

    def mset(self, mapping: Mapping[Any, Any]) -> bool:
        """Set every key of ``mapping`` atomically (MSET)."""
        items = self._prepare_many(mapping, "mset")
        with self._exclusive:
            for key, value, weight in items:
                self._store(key, value, 0, self._default, None, weight, self._live(key))
        return True

    def msetnx(self, mapping: Mapping[Any, Any]) -> bool:
        """Set every key of ``mapping`` only if none exists; return whether it did (MSETNX)."""
        items = self._prepare_many(mapping, "msetnx")
        with self._exclusive:
            now = _now_ms()
            if any(self._live(k, now) is not None for k, _, _ in items):
                return False
            for key, value, weight in items:
                self._store(key, value, 0, self._default, None, weight, self._live(key, now))
        return True

    def _prepare_many(self, mapping: Mapping[Any, Any], cmd: str) -> list[tuple[str, Any, int]]:
        if not mapping:
            raise ResponseError(f"wrong number of arguments for '{cmd}' command")
        out: dict[str, tuple[str, Any, int]] = {}
        for name, value in mapping.items():
            key = _key(name)
            v = self._norm(value)
            out[key] = (key, v, self._weigh(key, v))
        return list(out.values())

    def getdel(self, name: Any) -> Any:
        """Return the value at ``name`` and delete the key (GETDEL)."""
        key = _key(name)
        with self._exclusive:
            e = self._live(key)
            if e is None:
                self._default.misses += 1
                return None
            e.lvl.hits += 1
            self._remove(key, e, "deleted")
            self._shrink_heap()
            return e.value

    def getex(
        self,
        name: Any,
        ex: Any = None,
        px: Any = None,
        exat: Any = None,
        pxat: Any = None,
        persist: bool = False,
    ) -> Any:
        """Return the value at ``name`` and set or clear its expiry (GETEX)."""
        if sum(x is not None for x in (ex, px, exat, pxat)) + bool(persist) > 1:
            raise ConfigError(
                "``ex``, ``px``, ``exat``, ``pxat``, and ``persist`` are mutually exclusive."
            )
        key = _key(name)
        with self._exclusive:
            now = _now_ms()
            e = self._live(key, now)
            if e is None:
                self._default.misses += 1
                return None
            when = self._expiry_from_options("getex", ex, px, exat, pxat, now)
            e.lvl.hits += 1
            value = e.value
            if when is not None:
                if when <= now:
                    self._remove(key, e, "expired")
                else:
                    if not e.expire or when < e.expire:
                        self._push_deadline(when, key)
                    e.expire = float(when)
            elif persist:
                e.expire = 0.0
            return value

    def delete(self, *names: Any) -> int:
        """Delete ``names``; return how many existed (DEL)."""
        return self._delete(names, "del")

    def unlink(self, *names: Any) -> int:
        """Delete ``names``; return how many existed (UNLINK; same as DEL in-process)."""
        return self._delete(names, "unlink")

    def _delete(self, names: tuple[Any, ...], cmd: str) -> int:
        if not names:
            raise ResponseError(f"wrong number of arguments for '{cmd}' command")
        keys = [_key(n) for n in names]
        n = 0
        with self._exclusive:
            now = _now_ms()
            for k in keys:
                e = self._live(k, now)
                if e is not None:
                    self._remove(k, e, "deleted")
                    n += 1
            if n:
                self._shrink_heap()
        return n

    def _expire_generic(
        self,
        cmd: str,
        name: Any,
        when_fn: Callable[[int], int],
        nx: bool,
        xx: bool,
        gt: bool,
        lt: bool,
    ) -> bool:
        key = _key(name)
        if nx and (xx or gt or lt):
            raise ResponseError("NX and XX, GT or LT options at the same time are not compatible")
        if gt and lt:
            raise ResponseError("GT and LT options at the same time are not compatible")
        with self._exclusive:
            now = _now_ms()
            when = when_fn(now)
            e = self._live(key, now)
            if e is None:
                return False
            cur = e.expire // 1.0  # the integral ms deadline Redis compares (see set())
            if nx and cur:
                return False
            if xx and not cur:
                return False
            if gt and (not cur or when <= cur):
                return False
            if lt and cur and when >= cur:
                return False
            if when <= now:
                self._remove(key, e, "expired")
                return True
            if not cur or when < cur:
                self._push_deadline(when, key)
            e.expire = float(when)
            return True

    def _rel_when(self, cmd: str, amount: Any, unit: int) -> Callable[[int], int]:
        if isinstance(amount, datetime.timedelta):
            amount = int(amount.total_seconds() * (1000 if unit == 1 else 1))
        n = to_redis_int(amount)
        invalid = ResponseError(f"invalid expire time in '{cmd}' command")
        if unit == 1000 and (n > INT64_MAX // 1000 or n < INT64_MIN // 1000):
            raise invalid
        delta = n * unit

        def when(now: int) -> int:
            w = now + delta
            if w > INT64_MAX or w < INT64_MIN:
                raise invalid
            return w

        return when

    def _abs_when(self, cmd: str, at: Any, unit: int) -> Callable[[int], int]:
        if isinstance(at, datetime.datetime):
            at = int(at.timestamp() * (1000 if unit == 1 else 1))
        n = to_redis_int(at)
        if unit == 1000 and (n > INT64_MAX // 1000 or n < INT64_MIN // 1000):
            raise ResponseError(f"invalid expire time in '{cmd}' command")
        w = n * unit
        return lambda now: w

    def expire(
        self,
        name: Any,
        time: Any,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> bool:
        """Set a TTL of ``time`` seconds on ``name`` (EXPIRE; NX/XX/GT/LT as Redis 7)."""
        return self._expire_generic(
            "expire", name, self._rel_when("expire", time, 1000), nx, xx, gt, lt
        )

    def pexpire(
        self,
        name: Any,
        time: Any,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> bool:
        """Set a TTL of ``time`` milliseconds on ``name`` (PEXPIRE)."""
        return self._expire_generic(
            "pexpire", name, self._rel_when("pexpire", time, 1), nx, xx, gt, lt
        )

    def expireat(
        self,
        name: Any,
        when: Any,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> bool:
        """Expire ``name`` at unix time ``when`` in seconds (EXPIREAT)."""
        return self._expire_generic(
            "expireat", name, self._abs_when("expireat", when, 1000), nx, xx, gt, lt
        )

    def pexpireat(
        self,
        name: Any,
        when: Any,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> bool:
        """Expire ``name`` at unix time ``when`` in milliseconds (PEXPIREAT)."""
        return self._expire_generic(
            "pexpireat", name, self._abs_when("pexpireat", when, 1), nx, xx, gt, lt
        )

    def persist(self, name: Any) -> bool:
        """Remove the expiry of ``name``; return whether it had one (PERSIST)."""
        key = _key(name)
        with self._exclusive:
            e = self._live(key)
            if e is None or not e.expire:
                return False
            e.expire = 0.0
            return True

    def _rewrite(self, key: str, e: _Entry | None, value: Any) -> None:
        """Store a string command's result, keeping the key's TTL, level and tags (lock held)."""
        v = self._norm(value)
        weight = entry_weight(key, v)
        mb = self.max_bytes
        if mb is not None and weight > mb:
            raise CacheValueTooLarge(
                f"value for key {key!r} would be ~{weight} bytes (estimated), over max_bytes={mb}"
            )
        if e is None:
            self._store(key, v, 0, self._default, None, weight, None)
        else:
            self._store(key, v, e.expire, e.lvl, e.tags, weight, e)

    def incrby(self, name: Any, amount: Any = 1) -> int:
        """Add ``amount`` to the integer at ``name`` (0 if missing); return it (INCRBY)."""
        key = _key(name)
        delta = to_redis_int(amount)
        with self._exclusive:
            e = self._live(key)
            if e is None:
                cur = 0
            else:
                v = e.value
                if v.__class__ is int:
                    if not INT64_MIN <= v <= INT64_MAX:
                        raise ResponseError(ERR_NOT_INT)
                    cur = v
                else:
                    raw = as_bytes(v)
                    if raw is None:
                        raise ResponseError(ERR_WRONGTYPE)
                    parsed = parse_int64(raw)
                    if parsed is None:
                        raise ResponseError(ERR_NOT_INT)
                    cur = parsed
            total = cur + delta
            if total > INT64_MAX or total < INT64_MIN:
                raise ResponseError(ERR_OVERFLOW)
            self._rewrite(key, e, total)
            return total

    incr = incrby

    def decrby(self, name: Any, amount: Any = 1) -> int:
        """Subtract ``amount`` from the integer at ``name``; return it (DECRBY)."""
        delta = to_redis_int(amount)
        if delta == INT64_MIN:
            raise ResponseError("decrement would overflow")
        return self.incrby(name, -delta)

    decr = decrby

    def incrbyfloat(self, name: Any, amount: Any = 1.0) -> float:
        """Add the float ``amount`` to the value at ``name``; return it (INCRBYFLOAT)."""
        key = _key(name)
        with self._exclusive:
            e = self._live(key)
            raw: bytes | None = None
            if e is not None:
                raw = as_bytes(e.value)
                if raw is None:
                    raise ResponseError(ERR_WRONGTYPE)
            new = incr_float(raw, amount)
            result = float(new)
            stored: Any = new if self._decode is not None else result
            self._rewrite(key, e, stored)
            return result

    def append(self, key: Any, value: Any) -> int:
        """Append ``value`` to the string at ``key``; return the new length in bytes (APPEND)."""
        k = _key(key)
        add = as_bytes(value)
        if add is None:
            raise ConfigError(
                f"Invalid input of type: {type(value).__name__!r}. Convert to a bytes, string, "
                f"int or float first: {value!r}"
            )
        with self._exclusive:
            e = self._live(k)
            if e is None:
                raw = b""
                old: Any = b"" if isinstance(value, (bytes, bytearray)) else ""
            else:
                old = e.value
                r = as_bytes(old)
                if r is None:
                    raise ResponseError(ERR_WRONGTYPE)
                raw = r
            joined = raw + add
            new: Any = (
                joined
                if isinstance(old, (bytes, bytearray))
                else joined.decode("utf-8", "surrogateescape")
            )
            self._rewrite(k, e, new)
            return len(joined)

    def rename(self, src: Any, dst: Any) -> bool:
        """Rename ``src`` to ``dst``, overwriting it; TTL, level and tags move along (RENAME)."""
        s, d = _key(src), _key(dst)
        with self._exclusive:
            now = _now_ms()
            e = self._live(s, now)
            if e is None:
                raise ResponseError("no such key")
            if s == d:
                return True
            old = self._live(d, now)
            if old is not None:
                self._remove(d, old, "deleted")
            self._unlink(s, e)
            self._policy.remove(s)
            weight = entry_weight(d, e.value)
            self._store(d, e.value, e.expire, e.lvl, e.tags, weight, None)
            return True

    def flushdb(self, asynchronous: bool = False, **kwargs: Any) -> bool:
        """Delete every key (FLUSHDB); they count as evictions for reason "deleted"."""
        with self._exclusive:
            for e in self._data.values():
                e.lvl.evicted_deleted += 1
                e.lvl.entries -= 1
                e.lvl.bytes -= e.weight
            self._data.clear()
            self._policy.clear()
            self._expiry_heap.clear()
            self._run_keys.clear()
            self._run_when.clear()
            self._run_tail = -_NEVER
            self._fresh.clear()
            self._due = _NEVER
            self._tags.clear()
            self._scans.clear()
        return True

    # ------------------------------------------------------------------ perflayer extras

    def invalidate(self, pattern: Any) -> int:
        """Delete every key matching the Redis glob ``pattern``; return how many."""
        pat = _pattern(pattern)
        n = 0
        with self._exclusive:
            for k in [k for k in self._data if _match(pat, k)]:
                self._remove(k, self._data[k], "deleted")
                n += 1
        return n

    def invalidate_tags(self, *tags: str) -> int:
        """Delete every key carrying any of ``tags``; return how many."""
        for t in tags:
            if not isinstance(t, str):
                raise ConfigError(f"tags must be str, got {t!r}")
        n = 0
        with self._exclusive:
            keys: set[str] = set()
            for t in tags:
                keys |= self._tags.get(t, set())
            for k in keys:
                e = self._data.get(k)
                if e is not None:
                    self._remove(k, e, "deleted")
                    n += 1
        return n

    def tagged(self, tag: str) -> list[str]:
        """Return the keys currently carrying ``tag``."""
        with self._exclusive:
            return sorted(self._tags.get(tag, ()))

    def warm(
        self,
        mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        *,
        ex: Any = None,
        level: CacheLevel | str | None = None,
        tags: Iterable[str] | None = None,
        nx: bool = False,
    ) -> int:
        """Preload ``mapping`` (or pairs); return how many keys were written."""
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        tag_tuple = self._check_tags(tags)
        prepared = []
        for name, value in pairs:
            prepared.append((_key(name), value))
        n = 0
        for key, value in prepared:
            if self.set(key, value, ex=ex, nx=nx, level=level, tags=tag_tuple) is not None:
                n += 1
        return n

    def shrink(self, fraction: float) -> int:
        """Evict ``fraction`` (0..1] of the entries in policy order; return how many left.

        This is the memory guard's "reliever" hook; evictions count under reason "size".
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise ConfigError(f"shrink fraction must be a number in (0, 1], got {fraction!r}")
        if not 0 < fraction <= 1:
            raise ConfigError(f"shrink fraction must be in (0, 1], got {fraction!r}")
        with self._exclusive:
            n = len(self._data)
            drop = min(n, max(1, int(n * fraction + 0.5))) if n else 0
            if not drop:
                return 0
            target = n - drop
            policy = self._policy
            if target == 0:
                victims: list[Hashable] = list(self._data)
                for k in victims:
                    policy.remove(k)
            else:
                victims = policy.resize(target, self.max_bytes)
                policy.resize(self.max_entries, self.max_bytes)
            before = len(self._data)
            self._evict(victims)
            return before - len(self._data)

    def expire_now(self, budget: int = 1000) -> int:
        """Run one active-expiry step over at most ``budget`` due keys; return how many went."""
        with self._exclusive:
            return self._active_expire(_now_ms(), budget)

    def stats(self) -> dict[str, Any]:
        """Return hits, misses, hit_rate, evictions by reason, entries, bytes, and per level."""
        with self._exclusive:
            levels = {name: ls.as_dict() for name, ls in self._levels.items()}
        total: dict[str, Any] = {
            "hits": sum(v["hits"] for v in levels.values()),
            "misses": sum(v["misses"] for v in levels.values()),
            "evictions": {
                r: sum(v["evictions"][r] for v in levels.values())
                for r in ("size", "expired", "deleted")
            },
            "entries": sum(v["entries"] for v in levels.values()),
            "bytes": sum(v["bytes"] for v in levels.values()),
        }
        lookups = total["hits"] + total["misses"]
        total["hit_rate"] = total["hits"] / lookups if lookups else 0.0
        total["levels"] = levels
        return total

    def level_counters(self) -> list[LevelStats]:
        """Return the live per-level counters (the monitor's callbacks read these)."""
        with self._exclusive:
            return list(self._levels.values())

    # -- monitor callbacks (read at scrape time; the same ints stats() reads)

    def _m_level(self, attr: str) -> dict[tuple[str, ...], float]:
        return {
            (self.name, ls.level.name): float(getattr(ls, attr)) for ls in self.level_counters()
        }

    def _m_hits(self) -> dict[tuple[str, ...], float]:
        return self._m_level("hits")

    def _m_misses(self) -> dict[tuple[str, ...], float]:
        return self._m_level("misses")

    def _m_entries(self) -> dict[tuple[str, ...], float]:
        return self._m_level("entries")

    def _m_bytes(self) -> dict[tuple[str, ...], float]:
        return self._m_level("bytes")

    def _m_evictions(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for ls in self.level_counters():
            lv = ls.level.name
            out[(self.name, lv, "size")] = float(ls.evicted_size)
            out[(self.name, lv, "expired")] = float(ls.evicted_expired)
            out[(self.name, lv, "deleted")] = float(ls.evicted_deleted)
        return out

    def __repr__(self) -> str:
        """Return a short description with the bounds and policy."""
        return (
            f"Cache(name={self.name!r}, max_entries={self.max_entries}, "
            f"max_bytes={self.max_bytes}, policy={self.policy_name!r}, keys={len(self._data)})"
        )


def _pattern(pattern: Any) -> bytes:
    if isinstance(pattern, str):
        return pattern.encode("utf-8", "surrogateescape")
    if isinstance(pattern, (bytes, bytearray)):
        return bytes(pattern)
    raise ConfigError(f"pattern must be str or bytes, got {pattern!r}")


def _match(pattern: bytes, key: str) -> bool:
    return glob_match(pattern, key.encode("utf-8", "surrogateescape"))
