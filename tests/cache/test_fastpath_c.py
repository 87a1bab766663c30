"""The C fast paths of Cache.get/set answer exactly as the Python methods, race safely, leak none.

The extension is imported at module level on purpose: if it is not built (``make test`` builds
it), these tests fail instead of skipping.
"""

from __future__ import annotations

import datetime
import gc
import random
import sys
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from tests.cache.conftest import check_consistent, run_threads

from perflayer.cache import Cache, CacheLevel, _core
from perflayer.cache._fastpath_c import fast_get, fast_set
from perflayer.monitor import Monitor

T0 = 1_800_000_000.0  # the fake clock's start, seconds since the epoch


def _bind(c: Cache) -> Cache:
    """Bind the C fast paths to ``c``, as Cache.__init__ does when the extension is built."""
    c.get = fast_get(c)  # type: ignore[method-assign]
    c.set = fast_set(c)  # type: ignore[method-assign]
    return c


def _unbind(c: Cache) -> Cache:
    """Drop any instance-bound fast paths, so ``c`` runs the plain Python methods."""
    c.__dict__.pop("get", None)
    c.__dict__.pop("set", None)
    assert c.get.__func__ is Cache.get  # type: ignore[attr-defined]
    return c


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the core's clock by a list cell the test advances (seconds)."""
    cell = [T0]
    monkeypatch.setattr(_core, "_time", lambda: cell[0])
    return cell


# -- differential: the same calls, the same answers ---------------------------------------------


class Rec:
    """A record value compared by content (weighed by estimate(), not the scalar rules)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rec) and other.n == self.n

    def __hash__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Rec({self.n})"


class SubStr(str):
    """A str subclass key (canonicalized to str by the Python paths)."""


KEYS: list[Any] = [
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "é",
    "long-" + "k" * 40,
    b"a",
    b"c",
    bytearray(b"d"),
    SubStr("b"),
    1,
    [1],
    None,
]
VALUES: list[Any] = [
    "x",
    "y",
    "x" * 100,
    "é",
    "",
    0,
    7,
    2**62 - 1,
    2**62,
    -(2**62),
    2**70,
    1.5,
    -0.0,
    b"",
    b"bb" * 40,
    True,
    1 + 2j,
    bytearray(b"z"),
    {"a": 1, "b": "two"},
    [1, 2, 3],
    ("t", 1),
    None,
    Rec(3),
    "z" * 5000,
]
EX: list[Any] = [1, 2, 100, 3600, 0, -1, 9_223_372_036_854_775, 9_223_372_036_854_776, 1.5]
EX += [datetime.timedelta(seconds=3), True, "5", 2**70]


def _options(rng: random.Random) -> dict[str, Any]:
    """Return a random mix of SET options, mostly the plain ones the C path takes."""
    kw: dict[str, Any] = {}
    r = rng.random()
    if r < 0.5:
        pass
    elif r < 0.85:
        kw["ex"] = rng.choice(EX)
    else:
        opt = rng.choice(["px", "exat", "pxat", "keepttl", "ex+px", "ex=None"])
        if opt == "px":
            kw["px"] = rng.choice([1, 500, 2500, 0, datetime.timedelta(milliseconds=700)])
        elif opt == "exat":
            kw["exat"] = int(T0) + rng.choice([-10, 1, 3, 10_000])
        elif opt == "pxat":
            kw["pxat"] = int(T0 * 1000) + rng.choice([-10, 1, 1500, 10_000_000])
        elif opt == "keepttl":
            kw["keepttl"] = True
        elif opt == "ex+px":
            kw["ex"], kw["px"] = 1, 1
        else:
            kw["ex"] = None
    for flag in ("nx", "xx", "get"):
        if rng.random() < 0.08:
            kw[flag] = rng.choice([True, 1, False, 0])
    if rng.random() < 0.1:
        kw["level"] = rng.choice([CacheLevel.MCP_RESPONSES, "default", "nosuch", None, 3])
    if rng.random() < 0.1:
        kw["tags"] = rng.choice([["t1"], ["t1", "t2"], [], "t1", None, [3]])
    if rng.random() < 0.02:
        kw["bogus"] = 1
    return kw


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Return ("ok", result) or ("err", (type, message)) of one call."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:
        return "err", (type(exc), str(exc))


def _state(c: Cache) -> Any:
    """Return everything observable about ``c``: stats, entries, schedule, tags."""
    ents = sorted(
        (k, repr(e.value), e.expire, e.weight, e.plain_vw, e.tags, e.lvl.level.name)
        for k, e in c._data.items()
    )
    return (
        c.stats(),
        ents,
        sorted(c._deadline_keys()),
        c._due,
        {t: sorted(s) for t, s in c._tags.items()},
        len(c._policy),  # type: ignore[arg-type]
    )


def _step(rng: random.Random, clock: list[float]) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """Draw one operation: (method name, args, kwargs); "tick" advances the clock."""
    r = rng.random()
    key = rng.choice(KEYS)
    if r < 0.30:
        return "get", (key,), {}
    if r < 0.62:
        args: tuple[Any, ...] = (key, rng.choice(VALUES))
        kw = _options(rng)
        if rng.random() < 0.2 and "ex" in kw and len(kw) == 1:
            args, kw = (*args, kw["ex"]), {}  # ex by position
        if rng.random() < 0.01:
            args = (key,)  # a missing value: Python's own TypeError
        if rng.random() < 0.01:
            args = (key, "v", None, None, False, False, False, False, None, None, None, None, 9)
        return "set", args, kw
    if r < 0.68:
        return "delete", (key,), {}
    if r < 0.72:
        return "expire", (key, rng.choice([1, 2, 100])), {}
    if r < 0.75:
        return "incr", (rng.choice(["n", "a", "b"]),), {}
    if r < 0.77:
        return "pttl", (key,), {}
    if r < 0.79:
        return "invalidate_tags", ("t1",), {}
    if r < 0.80:
        return "shrink", (rng.choice([0.3, 1.0]),), {}
    if r < 0.805:
        return "flushdb", (), {}
    if r < 0.81:
        return "expire_now", (), {}
    return "tick", (rng.choice([0.0, 0.0005, 0.001, 0.5, 1.2, 3.0]),), {}


CONFIGS = [
    {},
    {"max_entries": 5},
    {"max_entries": 3, "policy": "lru"},
    {"max_bytes": 1500},
    {"max_entries": 8, "max_bytes": 3000},
    {"max_entries": 6, "decode_responses": True},
    {"max_bytes": 2500, "decode_responses": False},
]


@pytest.mark.parametrize("seed", range(48))
def test_fast_paths_answer_as_the_python_methods(seed: int, clock: list[float]) -> None:
    """A seeded op stream gives the same answers, errors and state with and without C paths."""
    rng = random.Random(seed)
    config = CONFIGS[seed % len(CONFIGS)]
    py = _unbind(Cache(monitor=Monitor(), **config))
    fast = _bind(Cache(monitor=Monitor(), **config))
    for i in range(600):
        op, args, kw = _step(rng, clock)
        if op == "tick":
            clock[0] += args[0]
            continue
        want = _outcome(getattr(py, op), *args, **kw)
        got = _outcome(getattr(fast, op), *args, **kw)
        assert got == want, (i, op, args, kw)
        if i % 50 == 0:
            assert _state(fast) == _state(py), i
    assert _state(fast) == _state(py)
    assert sorted(fast.keys()) == sorted(py.keys())


def test_many_new_keys_with_a_ttl_fold_and_expire_alike(clock: list[float]) -> None:
    """Thousands of new keys with TTLs (fresh-list folds, active expiry) leave equal caches."""
    py = _unbind(Cache(max_entries=500, monitor=Monitor()))
    fast = _bind(Cache(max_entries=500, monitor=Monitor()))
    rng = random.Random(5)
    for i in range(5000):
        k, v, ex = f"k{i}", rng.choice(["v", 1, 2.0, b"b"]), rng.choice([None, 1, 2, 50])
        assert fast.set(k, v, ex=ex) == py.set(k, v, ex=ex)
        if i % 7 == 0:
            j = f"k{rng.randrange(i + 1)}"
            assert fast.get(j) == py.get(j)
        if i % 100 == 0:
            clock[0] += 0.7
    assert _state(fast) == _state(py)


def test_get_takes_the_expired_and_miss_helpers(clock: list[float]) -> None:
    """An expired key, a bytes key and an unhashable one go through the Python helpers."""
    c = _bind(Cache(monitor=Monitor()))
    assert c.set("k", "v", ex=1) is True
    assert c.get("k") == "v"
    assert c.get(b"k") == "v"
    clock[0] += 2
    assert c.get("k") is None
    st = c.stats()
    assert (st["hits"], st["misses"], st["evictions"]["expired"]) == (2, 1, 1)
    with pytest.raises(_core.CacheKeyError, match=r"got list: \[1\]"):
        c.get([1])
    with pytest.raises(_core.CacheKeyError, match="got int: 5"):
        c.set(5, "v")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'value'"):
        c.set("k")
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        c.set("k", "v", bogus=1)
    with pytest.raises(TypeError, match="multiple values for argument 'value'"):
        c.set("k", "v", value="w")


def _schedule(c: Cache) -> Any:
    """Return the TTL schedule of ``c``: the run, its tail, the heap (sorted), fresh list, due."""
    return (
        list(c._run_keys),
        list(c._run_when),
        c._run_tail,
        sorted(c._expiry_heap),
        list(c._fresh),
        c._due,
    )


def _fold_calls(code: Any) -> tuple[list[int], Callable[..., Any]]:
    """Return a counter cell and a profile hook counting Python frames running ``code``."""
    cell = [0]

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            cell[0] += 1

    return cell, hook


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_the_c_fold_leaves_the_python_folds_schedule(clock: list[float], policy: str) -> None:
    """Folds with deadlines in and out of order, keys gone or without a TTL meanwhile, rebuilds.

    Every 1,024th new key with a TTL folds the fresh list; the C set path does it in C (no
    Python ``_fold_fresh`` frame runs), the unbound cache in Python; the schedule must be the
    same after each fold, and the caches equal at the end.
    """
    py = _unbind(Cache(max_entries=400, policy=policy, monitor=Monitor()))
    fast = _bind(Cache(max_entries=400, policy=policy, monitor=Monitor()))
    rng = random.Random(11)
    calls, hook = _fold_calls(Cache._fold_fresh.__code__)
    folds = rebuilds = heap_used = 0
    run_keys = fast._run_keys
    for i in range(20000):
        k = f"k{i}"
        # mostly ascending deadlines (the run), some earlier ones (the heap), some without
        ex = rng.choice([3600, 3600, 3600, 7200, 60, 1000, None])
        before = len(fast._fresh)
        sys.setprofile(hook)
        try:
            got = fast.set(k, i, ex=ex)
        finally:
            sys.setprofile(None)
        assert got == py.set(k, i, ex=ex)
        r = rng.random()
        j = f"k{rng.randrange(i + 1)}"
        if r < 0.05:
            assert fast.delete(j) == py.delete(j)
        elif r < 0.08:
            assert fast.set(j, "o") == py.set(j, "o")  # overwritten without a TTL
        elif r < 0.11:
            assert fast.set(j, "t", ex=30) == py.set(j, "t", ex=30)  # overwritten, earlier
        elif r < 0.13:
            assert fast.persist(j) == py.persist(j)
        if before and not fast._fresh:  # a fold (or a rebuild) emptied it
            folds += 1
            assert _schedule(fast) == _schedule(py), i
        if fast._run_keys is not run_keys:
            rebuilds += 1
            run_keys = fast._run_keys
        heap_used += bool(fast._expiry_heap)
        clock[0] += 0.0005
    assert calls[0] == 0  # every fold of the fast cache ran in C
    # (the heap was in play: whether it is empty at the very end depends on which keys W-TinyLFU
    # kept, i.e. on the hash seed; the end state had no heap item under 1 seed in ~50)
    assert folds >= 10 and heap_used, (folds, heap_used)
    # (W-TinyLFU rejects most new keys, so its folds skip them and the schedule stays small)
    assert rebuilds >= 1 or policy == "tinylfu", rebuilds
    assert _schedule(fast) == _schedule(py)
    assert _state(fast) == _state(py)


def test_a_subclass_fold_is_called(clock: list[float]) -> None:
    """A subclass overriding _fold_fresh keeps the C set path and still gets its own fold."""
    seen: list[int] = []

    class Sub(Cache):
        def _fold_fresh(self) -> None:
            seen.append(len(self._fresh))
            super()._fold_fresh()

    # (a full LRU cache: every new key evicts the oldest, so it waits in the fresh list; the
    # first 100 keys filled the cache and went to the run directly)
    py = _unbind(Sub(max_entries=100, policy="lru", monitor=Monitor()))
    fast = _bind(Sub(max_entries=100, policy="lru", monitor=Monitor()))
    for i in range(3000):
        assert fast.set(f"k{i}", i, ex=100) == py.set(f"k{i}", i, ex=100)
    assert seen == [1024, 1024, 1024, 1024]
    assert _schedule(fast) == _schedule(py)


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_a_filling_cache_schedules_new_keys_directly_and_alike(
    clock: list[float], policy: str
) -> None:
    """New keys that evict nothing skip the fresh list (run or heap at once), in C as in Python.

    The caches fill up (deadlines in and out of order, so run and heap; deletes and earlier
    deadlines leaving stale items), then go on past full, where new keys take the fresh list
    and its fold; the schedules must be equal after every call, and every live key with a TTL
    scheduled.
    """
    py = _unbind(Cache(max_entries=3000, policy=policy, monitor=Monitor()))
    fast = _bind(Cache(max_entries=3000, policy=policy, monitor=Monitor()))
    rng = random.Random(5)
    direct = fresh = 0
    for i in range(6000):
        k = f"k{i}"
        ex = rng.choice([3600, 3600, 3600, 7200, 60, None])
        n_fresh = len(fast._fresh)
        assert fast.set(k, i, ex=ex) == py.set(k, i, ex=ex)
        if ex is not None:
            if len(fast._fresh) > n_fresh or (n_fresh and not fast._fresh):
                fresh += 1
            elif k in fast._data:
                direct += 1
        r = rng.random()
        j = f"k{rng.randrange(i + 1)}"
        if r < 0.1:
            assert fast.delete(j) == py.delete(j)
        elif r < 0.15:
            assert fast.set(j, "t", ex=30) == py.set(j, "t", ex=30)
        assert _schedule(fast) == _schedule(py), i
        clock[0] += 0.0005
    assert direct > 1000 and fresh > 1000, (direct, fresh)
    assert _state(fast) == _state(py)
    for c in (fast, py):
        c.expire_now(0)  # folds the fresh list
        scheduled = set(c._deadline_keys())
        assert all(k in scheduled for k, e in c._data.items() if e.expire)


@pytest.mark.parametrize("full", [False, True])
def test_the_c_schedule_appends_to_a_run_of_any_type(clock: list[float], full: bool) -> None:
    """A run rebound to lists (not deques) takes the generic ``append`` branch alike.

    Filling, new keys are scheduled at once (Cache.set's own lines); full (each new key evicts
    one of the keys stored first, which have no TTL), they go through the fresh list's fold.
    """
    py = _unbind(Cache(max_entries=3000, policy="lru", monitor=Monitor()))
    fast = _bind(Cache(max_entries=3000, policy="lru", monitor=Monitor()))
    for c in (py, fast):
        c._run_keys, c._run_when = [], []  # type: ignore[assignment]
        if full:
            for i in range(3000):
                c.set(f"old{i}", i)
    for i in range(2100):
        ex = 100 if i % 5 else 50  # every fifth deadline earlier: the heap
        assert fast.set(f"k{i}", i, ex=ex) == py.set(f"k{i}", i, ex=ex)
        clock[0] += 0.001
    assert type(fast._run_keys) is list and len(fast._run_keys) > 1024
    assert (len(fast._fresh) == 2100 - 2048) is full
    assert _schedule(fast) == _schedule(py)


def test_fast_paths_need_an_instance_dict() -> None:
    """Binding to an object without a __dict__ raises instead of crashing later."""
    with pytest.raises((AttributeError, TypeError)):
        fast_get(42)
    with pytest.raises((AttributeError, TypeError)):
        fast_set(object())


# -- threads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_threads_keep_bounds_counters_and_values(fast_switching: None, policy: str) -> None:
    """Threads racing get/set/delete on the C paths keep every bound, counter and value exact."""
    bound = 64
    c = _bind(Cache(max_entries=bound, policy=policy, monitor=Monitor()))
    n_threads, n_ops = 4, 3000
    gets = [0] * n_threads

    def work(t: int) -> None:
        rng = random.Random(t)
        for i in range(n_ops):
            k = f"k{rng.randrange(150)}"
            r = i % 5
            if r == 0:
                c.set(k, f"v:{k}")  # a new key or an overwrite of the same weight
            elif r == 1:
                c.set(k, f"w:{k}", ex=3600)
            elif r == 2:
                c.delete(k)
            else:
                gets[t] += 1
                got = c.get(k)
                # a read sees its own key's value or nothing, never another key's entry
                assert got is None or got in (f"v:{k}", f"w:{k}"), (k, got)

    run_threads(n_threads, work)
    check_consistent(c, bound)
    # every get of a str key without an expired entry counts exactly one hit or miss in C
    st = c.stats()
    assert st["hits"] + st["misses"] == sum(gets)


# -- references: nothing leaks, re-entry is safe ------------------------------------------------


class Val:
    """A value whose lifetime a weakref watches."""

    def __init__(self, n: int) -> None:
        self.n = n


def test_values_are_freed_after_eviction_delete_overwrite_and_flush() -> None:
    """Values stored by the C paths are released once evicted, deleted, overwritten or flushed."""
    c = _bind(Cache(max_entries=4, policy="lru", monitor=Monitor()))
    refs: list[weakref.ref[Val]] = []
    for i in range(20):
        v = Val(i)
        refs.append(weakref.ref(v))
        c.set(f"k{i}", v, ex=100 if i % 2 else None)
        del v
    gc.collect()
    assert sum(r() is not None for r in refs) == 4  # only the 4 resident ones
    c.set("k19", "replaced")  # a locked overwrite (the weight changes)
    c.delete("k18")
    gc.collect()
    assert sum(r() is not None for r in refs) == 2
    c.flushdb()
    gc.collect()
    assert all(r() is None for r in refs)


def test_cache_and_bound_paths_are_collected() -> None:
    """A cache holding its own bound C paths (a reference cycle) is freed by the collector."""
    c = _bind(Cache(max_entries=10, monitor=Monitor()))
    v = Val(1)
    c.set("k", v, ex=10)
    cref, vref = weakref.ref(c), weakref.ref(v)
    del c, v
    gc.collect()
    assert cref() is None
    assert vref() is None


def _refcount_deltas(bind: Callable[[Cache], Cache]) -> tuple[int, int, int]:
    """Run thousands of get/set calls; return the refcount changes of the key and values."""
    c = bind(Cache(max_entries=8, monitor=Monitor()))
    # fresh objects (not interned constants), so only this cache references them
    key, val, rec = "".join(["key-", "x"]), "".join(["value-", "x"]), Rec(5)
    c.set(key, val)
    before = (sys.getrefcount(key), sys.getrefcount(val), sys.getrefcount(rec))
    for i in range(2000):
        c.get(key)
        c.get("absent")
        c.set(key, val)  # the lock-free overwrite
        c.set(key, rec, ex=5)  # a locked one (the weight changes) and back
        c.set(key, val)
        c.set(f"n{i}", val, ex=100)  # new keys evicting others
    c.delete(*[f"n{i}" for i in range(2000)])
    # the policy's shadow climber holds keys it saw until clear() (docs/policy.md): flush, so
    # only the cache's own references are counted, as before the loop
    c.flushdb()
    c.set(key, val)
    after = (sys.getrefcount(key), sys.getrefcount(val), sys.getrefcount(rec))
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def test_refcounts_of_keys_and_values_are_balanced() -> None:
    """Thousands of C-path calls hold exactly the references the Python methods hold."""
    deltas = _refcount_deltas(_bind)
    assert deltas == _refcount_deltas(_unbind)
    assert all(abs(d) <= 2 for d in deltas)  # (the deadline schedule may keep the key)


class Reenter:
    """A value whose ``__del__`` reads and overwrites other keys of its cache."""

    def __init__(self, cache: Cache, log: list[Any]) -> None:
        self.cache = cache
        self.log = log

    def __del__(self) -> None:
        self.log.append(self.cache.get("other"))
        self.log.append(self.cache.get("missing"))


def test_a_value_del_that_reenters_the_cache() -> None:
    """A dropped value's __del__ may call get on the same cache (overwrite, delete, eviction)."""
    for bind in (_bind, _unbind):
        log: list[Any] = []
        c = bind(Cache(max_entries=3, policy="lru", monitor=Monitor()))
        c.set("other", "o")
        c.set("k", Reenter(c, log))
        c.set("k", Reenter(c, log))  # lock-free overwrite drops the first
        c.set("k", "short")  # locked overwrite drops the second
        c.set("j", Reenter(c, log))
        c.set("n1", 1)
        c.set("n2", 2)  # evicts "other", then "j"
        c.set("n3", 3)
        gc.collect()
        assert log == ["o", None, "o", None, None, None], bind
        assert c.stats()["entries"] == 3


class EqKey:
    """A key equal to the str "k" whose ``__eq__`` reads the cache it is looked up in.

    (Reads only: the policy may compare keys under the cache's lock, where a write would
    deadlock the Python methods and the C paths alike.)
    """

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.seen: list[Any] = []

    def __hash__(self) -> int:
        return hash("k")

    def __repr__(self) -> str:
        return "EqKey('k')"

    def __eq__(self, other: object) -> bool:
        self.seen.append(self.cache.get("side"))
        self.seen.append(self.cache.get("k"))
        return other == "k"


def test_a_key_eq_that_reenters_the_cache() -> None:
    """A key whose __eq__ reads the cache during the lookup gives Python's answers."""
    results = []
    for bind in (_unbind, _bind):
        c = bind(Cache(max_entries=10, monitor=Monitor()))
        c.set("k", "v")
        c.set("side", 1)
        key = EqKey(c)
        out = [_outcome(c.get, key), _outcome(c.set, key, "w"), _outcome(c.get, "k")]
        out.append(_outcome(c.set, key, "longer value", ex=5))
        c.set("new", 2)  # the policy replays the reads of ``key`` under the lock
        results.append((out, key.seen, sorted(c.keys()), c.stats()))
    assert results[0] == results[1]
