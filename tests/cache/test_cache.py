"""Cache behaviour beyond Redis: object values, levels, tags, patterns, bounds, stats, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache import AsyncCache, Cache, CacheLevel
from perflayer.cache._size import ENTRY_OVERHEAD
from perflayer.errors import CacheKeyError, CacheValueTooLarge, ConfigError, ResponseError
from perflayer.monitor import Monitor


@pytest.fixture
def c(monitor: Monitor) -> Cache:
    """Return a fresh object-mode cache."""
    return Cache(monitor=monitor, name="t")


def test_any_python_value_round_trips_by_identity(c: Cache) -> None:
    """Object mode stores any object as is (no serialization)."""
    obj: Any = {"a": [1, 2], "b": object()}
    c.set("k", obj)
    assert c.get("k") is obj
    c.set("n", None)
    assert c.get("n") is None and c.exists("n") == 1


def test_object_mode_string_commands(c: Cache) -> None:
    """INCR keeps ints, APPEND keeps str/bytes, INCRBYFLOAT gives floats; others WRONGTYPE."""
    c.set("i", 41)
    assert c.incr("i") == 42 and c.get("i") == 42
    c.set("s", "ab")
    assert c.append("s", 1) == 3 and c.get("s") == "ab1"
    c.set("b", b"x")
    c.append("b", "y")
    assert c.get("b") == b"xy"
    assert c.incrbyfloat("f", 0.5) == 0.5 and c.get("f") == 0.5
    c.set("l", [1])
    for call in (lambda: c.incr("l"), lambda: c.append("l", "x"), lambda: c.strlen("l")):
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            call()
    assert c.type("l") == "object" and c.type("i") == "string" and c.type("zz") == "none"


def test_levels_presets_and_user_levels(c: Cache) -> None:
    """Preset levels carry the original TTLs; user levels work by object and by name."""
    expected = {
        "framework_patterns": 3600,
        "persona_selection": 1800,
        "context_analysis": 900,
        "mcp_responses": 300,
        "strategic_memory": 86400,
    }
    for name, ttl in expected.items():
        c.set(name, 1, level=name)
        assert c.ttl(name) == ttl
    assert CacheLevel.FRAMEWORK_PATTERNS.ttl == 3600
    mine = CacheLevel("sessions", ttl=12)
    c.set("s1", "v", level=mine)
    c.set("s2", "v", level="sessions")
    assert c.ttl("s1") == c.ttl("s2") == 12
    c.set("s3", "v", level=mine, ex=100)
    assert c.ttl("s3") == 100
    c.get("s1")
    c.get("s1")
    lv = c.stats()["levels"]["sessions"]
    assert (lv["entries"], lv["hits"]) == (3, 2)
    assert lv["bytes"] > 3 * ENTRY_OVERHEAD


@pytest.mark.parametrize(
    ("level", "exc"),
    [("nope", ConfigError), (3, ConfigError), (CacheLevel("mcp_responses", 1), ConfigError)],
    ids=repr,
)
def test_bad_levels(c: Cache, level: Any, exc: type[Exception]) -> None:
    """An unknown or conflicting level is refused, naming it, and nothing stored is lost."""
    c.set("k", "v")
    with pytest.raises(exc) as info:
        c.set("k", "new", level=level)
    assert repr(level) in str(info.value)
    assert c.get("k") == "v"


@pytest.mark.parametrize("ttl", [0, -1, "x", float("inf")], ids=repr)
def test_bad_level_ttl(ttl: Any) -> None:
    """CacheLevel rejects zero, negative and non-numeric TTLs, naming them."""
    with pytest.raises(ConfigError) as info:
        CacheLevel("x", ttl=ttl)
    assert repr(ttl) in str(info.value)


@pytest.mark.parametrize("key", [1, 2.5, None, ("t",), ["l"], object()], ids=repr)
def test_bad_keys(c: Cache, key: Any) -> None:
    """Keys that are not str or bytes raise CacheKeyError (a TypeError) naming the key."""
    c.set("k", "v")
    for call in (lambda: c.get(key), lambda: c.set(key, 1), lambda: c.delete(key)):
        with pytest.raises(CacheKeyError) as info:
            call()
        assert isinstance(info.value, TypeError)
        assert repr(key) in str(info.value)
    assert c.get("k") == "v"


@pytest.mark.parametrize("ex", [0, -5], ids=repr)
def test_zero_or_negative_ttl_is_an_error_and_keeps_data(c: Cache, ex: int) -> None:
    """SET with ex <= 0 fails with Redis' message and the old value survives."""
    c.set("k", "v", ex=100)
    with pytest.raises(ResponseError, match="invalid expire time in 'set' command"):
        c.set("k", "new", ex=ex)
    assert c.get("k") == "v" and c.ttl("k") == 100


def test_oversized_value_refused_and_nothing_lost(monitor: Monitor) -> None:
    """A value over max_bytes raises CacheValueTooLarge naming the key; old data stays."""
    c = Cache(max_bytes=4096, monitor=monitor)
    c.set("small", "x")
    c.set("big", "old")
    with pytest.raises(CacheValueTooLarge) as info:
        c.set("big", "y" * 10_000)
    assert "'big'" in str(info.value) and "max_bytes=4096" in str(info.value)
    assert c.get("big") == "old" and c.get("small") == "x"
    with pytest.raises(CacheValueTooLarge):
        c.mset({"a": 1, "b": "z" * 10_000})
    assert c.exists("a") == 0


def test_max_entries_bound_and_size_evictions(monitor: Monitor) -> None:
    """max_entries holds; evictions count under reason "size"."""
    c = Cache(max_entries=100, monitor=monitor)
    for i in range(1000):
        c.set(f"k{i}", i)
        c.get(f"k{i}")
    st = c.stats()
    assert st["entries"] == len(c) == 100
    assert st["evictions"]["size"] == 900


def test_max_bytes_bound(monitor: Monitor) -> None:
    """The estimated bytes never exceed max_bytes."""
    c = Cache(max_bytes=20_000, monitor=monitor)
    for i in range(500):
        c.set(f"k{i}", "v" * (i % 50))
        assert c.stats()["bytes"] <= 20_000
    assert 0 < c.stats()["entries"] < 500


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_policies_selectable(monitor: Monitor, policy: str) -> None:
    """Both policies bound the cache; an unknown policy name is refused."""
    c = Cache(max_entries=10, policy=policy, monitor=monitor)
    for i in range(50):
        c.set(str(i), i)
    assert len(c) == 10
    with pytest.raises(ConfigError, match="'nope'"):
        Cache(policy="nope", monitor=monitor)


@pytest.mark.parametrize("bound", [0, -1, 1.5, "10", True], ids=repr)
def test_bad_bounds(bound: Any, monitor: Monitor) -> None:
    """max_entries / max_bytes must be positive ints."""
    with pytest.raises(ConfigError) as info:
        Cache(max_entries=bound, monitor=monitor)
    assert repr(bound) in str(info.value)


def test_lazy_and_active_expiry_count_as_expired(c: Cache) -> None:
    """Expired keys leave lazily on access and actively on later writes."""
    c.set("lazy", 1, px=20)
    for i in range(50):
        c.set(f"active{i}", i, px=20)
    time.sleep(0.08)
    assert c.get("lazy") is None
    for i in range(10):
        c.set(f"w{i}", i)  # each write runs one bounded active-expiry step
    st = c.stats()
    assert st["evictions"]["expired"] == 51
    assert st["entries"] == 10


async def test_background_expiry_task(monitor: Monitor) -> None:
    """AsyncCache.start_expiry() reclaims expired keys with no access at all."""
    ac = AsyncCache(monitor=monitor)
    for i in range(20):
        await ac.set(f"k{i}", i, px=10)
    ac.start_expiry(interval=0.01)
    # a bound on waiting, not a speed check: a loaded machine may take seconds to run the task
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 30.0
    while len(ac.sync) and loop.time() < give_up:
        await asyncio.sleep(0.01)
    await ac.aclose()
    assert len(ac.sync) == 0
    assert ac.stats()["evictions"]["expired"] == 20


def test_tags_and_patterns(c: Cache) -> None:
    """invalidate_tags and invalidate(pattern) delete exactly the matching keys."""
    c.set("user:1", 1, tags=["users", "tenant:a"])
    c.set("user:2", 2, tags=["users"])
    c.set("post:1", 3, tags=["tenant:a"])
    c.set("other", 4)
    assert c.tagged("tenant:a") == ["post:1", "user:1"]
    assert c.invalidate_tags("tenant:a") == 2
    assert c.keys() == ["user:2", "other"]
    c.set("user:3", 3)
    assert c.invalidate("user:*") == 2
    assert c.keys() == ["other"]
    assert c.stats()["evictions"]["deleted"] == 4
    c.set("x", 1, tags=["t"])
    c.set("x", 2)  # an overwrite without tags drops the old tags
    assert c.invalidate_tags("t") == 0
    with pytest.raises(ConfigError, match="'users'"):
        c.set("y", 1, tags="users")


def test_warm(c: Cache) -> None:
    """warm() preloads a mapping or pairs with level and tags."""
    assert c.warm({"a": 1, "b": 2}, level=CacheLevel.CONTEXT_ANALYSIS, tags=["w"]) == 2
    assert c.warm([("c", 3)], ex=50) == 1
    assert c.mget(["a", "b", "c"]) == [1, 2, 3]
    assert c.ttl("a") == 900 and c.ttl("c") == 50
    assert c.invalidate_tags("w") == 2
    with pytest.raises(CacheKeyError):
        c.warm({1: "x"})


def test_stats_shape_and_hit_rate(c: Cache) -> None:
    """stats() has hits, misses, hit_rate, evictions by reason, entries, bytes, per level."""
    c.set("a", 1)
    c.get("a")
    c.get("a")
    c.get("missing")
    c.delete("a")
    st = c.stats()
    assert (st["hits"], st["misses"]) == (2, 1)
    assert st["hit_rate"] == pytest.approx(2 / 3)
    assert st["evictions"] == {"size": 0, "expired": 0, "deleted": 1}
    assert st["entries"] == 0 and st["bytes"] == 0
    assert set(st["levels"]) >= {"default", "mcp_responses"}


def test_monitor_reads_the_same_counters(monitor: Monitor) -> None:
    """The monitor's cache series equal stats(): one source of truth."""
    c = Cache(monitor=monitor, name="shop")
    c.set("a", 1, level="mcp_responses")
    c.get("a")
    c.get("b")
    c.delete("a")
    text = monitor.exposition()
    assert 'perflayer_cache_hits_total{cache="shop",level="mcp_responses"} 1.0' in text
    assert 'perflayer_cache_misses_total{cache="shop",level="default"} 1.0' in text
    assert (
        'perflayer_cache_evictions_total{cache="shop",level="mcp_responses",reason="deleted"} 1.0'
        in text
    )
    assert 'perflayer_cache_entries{cache="shop",level="mcp_responses"} 0.0' in text


def test_shrink_evicts_a_fraction(monitor: Monitor) -> None:
    """shrink(0.25) drops a quarter of the entries, coldest first, as size evictions."""
    c = Cache(max_entries=1000, policy="lru", monitor=monitor)
    for i in range(100):
        c.set(f"k{i}", i)
    for i in range(50, 100):
        c.get(f"k{i}")
    assert c.shrink(0.25) == 25
    assert len(c) == 75
    assert all(c.exists(f"k{i}") for i in range(50, 100))
    assert c.stats()["evictions"]["size"] == 25
    assert c.shrink(1.0) == 75 and len(c) == 0
    for bad in (0, 1.5, "x"):
        with pytest.raises(ConfigError):
            c.shrink(bad)  # type: ignore[arg-type]
    for i in range(20):  # the bound is back to 1000 after shrinking
        c.set(f"n{i}", i)
    assert len(c) == 20


def test_thread_safety_under_contention(monitor: Monitor) -> None:
    """Four threads mixing reads, writes and deletes keep the counters exact."""
    c = Cache(max_entries=500, monitor=monitor)
    n_threads, n_ops = 4, 5000
    reads = [0] * n_threads

    def work(t: int) -> None:
        for i in range(n_ops):
            k = f"k{(i * 7 + t) % 800}"
            if i % 3 == 0:
                c.set(k, i)
            elif i % 11 == 0:
                c.delete(k)
            else:
                c.get(k)
                reads[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = c.stats()
    assert st["hits"] + st["misses"] == sum(reads)
    assert st["entries"] == len(c) <= 500
    assert len(c.keys()) == len(c)


async def test_async_cache_commands(monitor: Monitor) -> None:
    """AsyncCache runs the same commands as coroutines."""
    ac = AsyncCache(decode_responses=True, monitor=monitor)
    assert await ac.set("a", 1, ex=30) is True
    assert await ac.get("a") == "1"
    assert await ac.incr("a") == 2
    assert await ac.mget(["a", "b"]) == ["2", None]
    assert await ac.ttl("a") == 30
    assert [k async for k in ac.scan_iter(match="a*")] == ["a"]
    assert await ac.delete("a") == 1
    async with AsyncCache(monitor=monitor) as other:
        await other.set("x", {"y": 1})
        assert await other.get("x") == {"y": 1}


def test_fast_set_deadline_compares_as_redis_integral_ms(c: Cache) -> None:
    """A plain ``set(ex=)`` deadline keeps sub-ms precision but EXPIRE LT/GT and PTTL see Redis'."""
    for i in range(200):
        c.set(f"d{i}", "v", ex=10)
        # Redis: the new deadline (now' + 10 s) is never below the old one, so LT refuses
        assert c.expire(f"d{i}", 10, lt=True) is False
        assert 9_000 < c.pttl(f"d{i}") <= 10_000
        assert c.ttl(f"d{i}") == 10


_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.sampled_from(["shared", 1, 2.5]),
)
_records = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=6),
    ),
    max_leaves=40,
)


@given(_records)
@settings(max_examples=300, deadline=None)
def test_flat_size_estimate_equals_the_general_walk(value: Any) -> None:
    """The one-loop estimate of small records gives exactly the general walk's weight."""
    from perflayer.cache import _size

    fast = _size.estimate(value)
    saved = _size._FLAT_MAX
    _size._FLAT_MAX = -1  # forces the general walk
    try:
        assert fast == _size.estimate(value)
    finally:
        _size._FLAT_MAX = saved


def test_record_values_keep_bytes_exact_through_fast_paths(monitor: Monitor) -> None:
    """Dict and list values take the inlined insert and lock-free overwrite with exact bytes."""
    from perflayer.cache._size import entry_weight

    c = Cache(max_entries=50, monitor=monitor)
    for i in range(200):
        k = f"r{i % 80}"
        v: Any = {"id": i, "name": "x" * (i % 7)} if i % 3 else [i, "a", None]
        assert c.set(k, v, ex=60) is True
        assert c.get(k) == v
    assert len(c) <= 50
    want = sum(entry_weight(k, c.get(k)) for k in c.keys("*"))  # type: ignore[arg-type]
    assert c.stats()["bytes"] == want
