"""TieredCache over real tiers: read-through with promotion, write-through, stats = monitor."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache import Cache
from perflayer.cache._disk import DiskTier
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiered import TieredCache
from perflayer.cache._tiers import MemoryTier
from perflayer.errors import CacheKeyError, ConfigError
from perflayer.monitor import Monitor

# Socket timeout of the tiers that talk to the healthy test server: the 0.25 s default is a
# latency bound a loaded 2-core machine can exceed once, turning a set into a counted failure.
# The outage tests keep the default (or set their own): the timeout is what they test.
TIMEOUT = 2.0


@pytest.fixture
def three(
    tmp_path: Path, redis_server: str, prefix: str, monitor: Monitor
) -> Iterator[TieredCache]:
    """Return memory + disk + redis tiers, closed afterwards."""
    tc = TieredCache(
        [
            Cache(metrics=False),
            DiskTier(tmp_path / "d.db"),
            RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT),
        ],
        name="t3",
        monitor=monitor,
    )
    yield tc
    tc.close()


def _tier(tc: TieredCache, name: str) -> Any:
    return next(t for t in tc.tiers if t.name == name)


def test_write_through_read_through_and_delete_everywhere(three: TieredCache) -> None:
    """set writes every tier; get hits memory first; delete removes the key from all tiers."""
    assert three.set("k", {"v": 1}, ex=60) is True
    for t in three.tiers:
        assert t.get("k") == {"v": 1}
    assert three.get("k") == {"v": 1}
    assert three.delete("k", "never") == 1
    for t in three.tiers:
        assert t.get("k") is None
    assert three.get("k") is None


def test_lower_hit_is_promoted_with_its_remaining_ttl(three: TieredCache) -> None:
    """A Redis-only key read through the cache lands in disk and memory with Redis' TTL."""
    red = _tier(three, "redis")
    mem = _tier(three, "memory")
    disk = _tier(three, "disk")
    red.set("only-redis", [1, 2], ttl=20)
    assert mem.get("only-redis") is None and disk.get("only-redis") is None
    assert three.get("only-redis") == [1, 2]
    assert disk.get("only-redis") == [1, 2]
    assert mem.get("only-redis") == [1, 2]
    assert 0 < mem.cache.pttl("only-redis") <= 20_000
    got = disk.get_with_ttl("only-redis")
    assert got is not None and got[1] is not None and 0 < got[1] <= 20
    assert three.stats()["tiers"]["redis"]["hits"] == 1


def test_near_tiers_are_capped_at_near_ttl(tmp_path: Path, redis_server: str, prefix: str) -> None:
    """Above a Redis tier, entries live at most near_ttl; Redis keeps the full TTL."""
    mem = MemoryTier(Cache(metrics=False))
    red = RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT)
    with TieredCache([mem, red], near_ttl=5, metrics=False) as tc:
        tc.set("k", "v")
        tc.set("t", "v", ex=100)
        assert 0 < mem.cache.pttl("k") <= 5000
        assert 0 < mem.cache.pttl("t") <= 5000
        client = redis.Redis.from_url(redis_server)
        assert client.pttl(prefix + "k") == -1
        assert client.pttl(prefix + "t") > 5000
        client.close()


def test_without_redis_there_is_no_cap(tmp_path: Path) -> None:
    """Memory over disk alone has no near tiers: TTLs are the caller's."""
    mem = MemoryTier(Cache(metrics=False))
    with TieredCache([mem, DiskTier(tmp_path / "d.db")], metrics=False) as tc:
        tc.set("k", "v")
        assert mem.cache.pttl("k") == -1


def test_dead_redis_degrades_to_the_upper_tiers(tmp_path: Path, monitor: Monitor) -> None:
    """With Redis down, writes still land in memory and disk; reads serve them; errors counted."""
    # a bound socket that never listens refuses connections, and nobody else can take the port
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    tc = TieredCache(
        [
            Cache(metrics=False),
            DiskTier(tmp_path / "d.db"),
            RedisTier(f"redis://127.0.0.1:{port}/0", prefix="x:"),
        ],
        name="deg",
        monitor=monitor,
    )
    try:
        assert tc.set("k", "v") is False  # not every tier took it
        assert tc.get("k") == "v"
        assert tc.get("absent") is None
        st = tc.stats()
        assert st["tiers"]["redis"]["errors"] >= 2
        assert st["tiers"]["redis"]["healthy"] is False
        labels = {"cache": "deg", "tier": "redis"}
        assert monitor.value("perflayer_cache_tier_errors_total", labels) == float(
            st["tiers"]["redis"]["errors"]
        )
        assert monitor.value("perflayer_cache_tier_healthy", labels) == 0.0
    finally:
        tc.close()
        closed.close()


def test_stats_and_monitor_read_the_same_numbers(three: TieredCache, monitor: Monitor) -> None:
    """Every per-tier counter in stats() equals the monitor's series for that tier."""
    three.set("a", 1)
    three.get("a")
    three.get("missing")
    _tier(three, "memory").delete("a")
    three.get("a")
    st = three.stats()
    assert st["hits"] == 2 and st["misses"] == 1
    assert st["tiers"]["memory"]["hits"] == 1 and st["tiers"]["disk"]["hits"] == 1
    for tier, counts in st["tiers"].items():
        labels = {"cache": "t3", "tier": tier}
        for attr in ("hits", "misses", "errors", "refused"):
            got = monitor.value(f"perflayer_cache_tier_{attr}_total", labels)
            assert got == float(counts[attr]), (tier, attr)
    assert monitor.value("perflayer_tiered_hits_total", {"cache": "t3"}) == 2.0
    assert monitor.value("perflayer_tiered_misses_total", {"cache": "t3"}) == 1.0
    assert 'perflayer_cache_tier_hits_total{cache="t3",tier="disk"} 1.0' in monitor.exposition()


def test_unencodable_value_raises_before_any_tier_is_written(three: TieredCache) -> None:
    """The lowest tier encodes first, so a tuple raises TypeError and nothing is stored."""
    with pytest.raises(TypeError, match="tuple"):
        three.set("t", (1, 2))
    for t in three.tiers:
        assert t.get("t") is None


def test_clear_empties_every_tier(three: TieredCache) -> None:
    """clear() empties memory, disk and this prefix in Redis."""
    three.set("a", 1)
    three.set("b", 2)
    three.clear()
    for t in three.tiers:
        assert t.get("a") is None and t.get("b") is None


@pytest.mark.parametrize(
    ("tiers", "kwargs", "match"),
    [
        ([], {}, "at least one tier"),
        ("memory", {}, "list of tiers"),
        ([object()], {}, "Tier objects"),
        ([Cache(metrics=False), Cache(metrics=False)], {}, "duplicates"),
        ([Cache(metrics=False)], {"near_ttl": 0}, "near_ttl"),
        ([Cache(metrics=False)], {"name": ""}, "cache name"),
        ([Cache(decode_responses=True, metrics=False)], {}, "decode_responses"),
    ],
)
def test_bad_settings_raise_config_error(tiers: Any, kwargs: dict[str, Any], match: str) -> None:
    """Bad arguments raise ConfigError naming the value."""
    with pytest.raises(ConfigError, match=match):
        TieredCache(tiers, metrics=False, **kwargs)


def test_bad_calls_raise() -> None:
    """None values, bad TTLs and bad keys are misuse with clear errors."""
    with TieredCache([Cache(metrics=False)], metrics=False) as tc:
        with pytest.raises(ConfigError, match="None"):
            tc.set("k", None)
        with pytest.raises(ConfigError, match="ex"):
            tc.set("k", 1, ex=-1)
        with pytest.raises(ConfigError, match="mutually exclusive"):
            tc.set("k", 1, ex=1, px=1000)
        with pytest.raises(CacheKeyError, match="int"):
            tc.get(3)
        assert tc.set(b"bk", 1, px=5000) and tc.get("bk") == 1


def test_value_too_big_for_memory_stays_in_lower_tiers(tmp_path: Path) -> None:
    """A value over the memory tier's max_bytes is skipped there (set is False), read from disk."""
    mem = MemoryTier(Cache(max_bytes=1000, metrics=False))
    with TieredCache([mem, DiskTier(tmp_path / "d.db")], metrics=False) as tc:
        mem.set("big", "old")
        assert tc.set("big", "x" * 5000) is False
        assert mem.cache.get("big") is None  # the stale small copy did not survive
        assert tc.get("big") == "x" * 5000


def test_non_utf8_bytes_keys_round_trip_through_redis(
    redis_server: str, prefix: str, tmp_path: Path
) -> None:
    """A bytes key that is not UTF-8 is stored, read and deleted through every tier."""
    with TieredCache(
        [
            Cache(metrics=False),
            DiskTier(tmp_path / "d.db"),
            RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT),
        ],
        metrics=False,
    ) as tc:
        key = b"user:\xff\xfe"
        assert tc.set(key, "v") is True
        tc.tiers[0].clear()
        assert tc.get(key) == "v"
        assert tc.delete(key) == 1
        assert tc.get(key) is None


class _RacingDisk(DiskTier):
    """A real DiskTier whose read lets an invalidation land mid-read (the race, made certain)."""

    on_read: Any = None

    def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        got = super().get_with_ttl(key)
        if self.on_read is not None:
            self.on_read(key)
        return got


def test_read_racing_an_invalidation_is_not_promoted(tmp_path: Path) -> None:
    """A value read while an invalidation arrives is returned but not copied into memory."""
    mem = MemoryTier(Cache(metrics=False))
    disk = _RacingDisk(tmp_path / "d.db")
    with TieredCache([mem, disk], metrics=False) as tc:
        tc._near = (mem,)  # treat memory as a near tier, as it is above a Redis tier
        disk.set("k", "v1")
        disk.on_read = tc._on_invalidate
        assert tc.get("k") == "v1"
        assert mem.get("k") is None
        disk.on_read = None
        assert tc.get("k") == "v1"
        assert mem.get("k") == "v1"  # no race this time: promoted


_ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "get", "delete", "lose-memory", "lose-memory-key"]),
        st.sampled_from(["a", "b", "c", "ü"]),
        st.one_of(st.integers(), st.text(max_size=5), st.binary(max_size=5)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(ops=_ops)
def test_memory_over_disk_behaves_like_a_dict(ops: list[tuple[str, str, Any]]) -> None:
    """Any sequence of sets, deletes and lost memory reads like a dict (disk is the backstop)."""
    with tempfile.TemporaryDirectory() as d:
        mem = MemoryTier(Cache(metrics=False))
        disk = DiskTier(Path(d) / "m.db")
        model: dict[str, Any] = {}
        with TieredCache([mem, disk], metrics=False) as tc:
            for op, key, value in ops:
                if op == "set":
                    assert tc.set(key, value) is True
                    model[key] = value
                elif op == "delete":
                    assert tc.delete(key) == (1 if key in model else 0)
                    model.pop(key, None)
                elif op == "lose-memory":
                    mem.clear()
                elif op == "lose-memory-key":
                    mem.delete(key)  # evicted from memory only: the next get promotes it back
                got = tc.get(key)
                assert got == model.get(key)
                assert type(got) is type(model.get(key))
