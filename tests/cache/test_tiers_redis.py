"""RedisTier on a real redis-server: prefixes, TTLs in Redis, signed pickle, outages and healing."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from perflayer.cache._codec import PickleCodec
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiers import Tier
from perflayer.errors import ConfigError

KEY = b"r" * 32

# Socket timeout of the tiers that talk to the healthy test server: the 0.25 s default is a
# latency bound a loaded 2-core machine can exceed once, turning a set into a counted failure.
# The outage tests keep the default (or set their own): the timeout is what they test.
TIMEOUT = 2.0


@pytest.fixture
def raw(redis_server: str) -> Iterator[redis.Redis]:
    """Return a plain redis-py client on the same server."""
    client = redis.Redis.from_url(redis_server)
    yield client
    client.close()


@pytest.fixture
def tier(redis_server: str, prefix: str) -> Iterator[RedisTier]:
    """Return a RedisTier with this test's prefix, closed afterwards."""
    t = RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT)
    yield t
    t.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_round_trip_prefix_and_server_side_ttl(
    tier: RedisTier, raw: redis.Redis, prefix: str
) -> None:
    """Values round-trip; keys carry the prefix; the TTL is Redis' own."""
    assert isinstance(tier, Tier)
    assert tier.set("k", {"a": [1, 2]}, ttl=30) is True
    assert tier.get("k") == {"a": [1, 2]}
    assert raw.exists(prefix + "k") == 1 and raw.exists("k") == 0
    assert 0 < raw.pttl(prefix + "k") <= 30_000
    got = tier.get_with_ttl("k")
    assert got is not None and got[0] == {"a": [1, 2]} and got[1] is not None and got[1] <= 30
    tier.set("forever", b"\x00")
    assert raw.pttl(prefix + "forever") == -1
    assert tier.get_with_ttl("forever") == (b"\x00", None)
    assert tier.get("absent") is None
    assert tier.stats.hits == 3 and tier.stats.misses == 1


def test_delete_and_clear_touch_only_the_prefix(
    tier: RedisTier, raw: redis.Redis, prefix: str
) -> None:
    """clear() removes this prefix's keys and leaves everyone else's."""
    other = prefix + "x-other"  # a different prefix that merely starts the same way
    raw.set(other, b"keep")
    tier.set("a", 1)
    tier.set("b", 2)
    assert tier.delete("a") is True and tier.delete("a") is False
    sibling = RedisTier(tier.url, prefix=prefix + "x", timeout=TIMEOUT)
    try:
        sibling.clear()
        assert raw.get(other) is None  # the sibling's own key went ...
        raw.set(other, b"keep")
        tier.set("z", 3)
        sibling.clear()
        assert tier.get("z") == 3  # ... and a clear never reaches a shorter prefix's keys
    finally:
        sibling.close()
    unrelated = f"unrelated-{prefix}"
    raw.set(unrelated, b"keep")
    try:
        tier.clear()
        assert tier.get("b") is None and tier.get("z") is None
        assert raw.get(unrelated) == b"keep"
    finally:
        raw.delete(unrelated)


def test_signed_pickle_in_redis_and_tampering_refused(
    redis_server: str, prefix: str, raw: redis.Redis
) -> None:
    """A PickleCodec tier round-trips objects; a payload altered in Redis is refused, counted."""
    t = RedisTier(redis_server, prefix=prefix, codec=PickleCodec(KEY), timeout=TIMEOUT)
    try:
        t.set("obj", {1, 2})
        assert t.get("obj") == {1, 2}
        blob = raw.get(prefix + "obj")
        assert blob is not None
        raw.set(prefix + "obj", blob[:-1] + b"\x00")
        assert t.get("obj") is None
        raw.set(prefix + "evil", b"p" + b"\x00" * 32 + b"cos\nsystem\n(S'true'\ntR.")
        assert t.get("evil") is None
        assert t.stats.refused == 2
    finally:
        t.close()


def test_json_tier_never_unpickles_from_redis(
    tier: RedisTier, raw: redis.Redis, prefix: str
) -> None:
    """Someone else's pickle under our prefix is refused by the default codec."""
    raw.set(prefix + "evil", PickleCodec(KEY).encode({1}))
    raw.set(prefix + "plain", b"untagged text")
    assert tier.get("evil") is None
    assert tier.get("plain") is None
    assert tier.stats.refused == 2


def test_dead_redis_costs_a_counted_miss_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A URL of a closed port: misses and False, counted, one warning, unhealthy."""
    # a bound socket that never listens refuses connections, and nobody else can take the port
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    with closed, caplog.at_level(logging.WARNING, logger="perflayer.cache.tiers"):
        t = RedisTier(url, prefix="dead:")
        try:
            assert t.set("k", 1) is False
            for _ in range(5):
                assert t.get("k") is None
            assert t.delete("k") is False
            t.clear()
            assert t.stats.errors == 8
            assert t.stats.misses == 5
            assert not t.healthy()
        finally:
            t.close()
    assert len([m for m in caplog.messages if "failing" in m]) == 1


def test_slow_redis_times_out_to_a_miss() -> None:
    """A server that accepts but never answers costs a miss after the short socket timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)  # never reply
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    t = RedisTier(f"redis://127.0.0.1:{srv.getsockname()[1]}/0", prefix="slow:", timeout=0.1)
    try:
        assert t.get("k") is None
        assert t.stats.errors == 1 and not t.healthy()
    finally:
        t.close()
        stop.set()
        th.join()
        for c in held:
            c.close()
        srv.close()


def test_tier_heals_when_redis_comes_back() -> None:
    """After an outage the tier retries with backoff and works again once the server is up."""
    port = _free_port()
    t = RedisTier(f"redis://127.0.0.1:{port}/0", prefix="heal:")
    tmp = tempfile.mkdtemp(prefix="perflayer-heal-")
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert t.set("k", 1) is False
        exe = shutil.which("redis-server")
        assert exe is not None
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not t.set("k", 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert t.get("k") == 1
        assert t.healthy()
    finally:
        t.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://x", {}, "url"),
        ("redis://127.0.0.1:1/0", {"prefix": 3}, "prefix"),
        ("redis://127.0.0.1:1/0", {"timeout": 0}, "timeout"),
        ("redis://127.0.0.1:1/0", {"codec": "json"}, "codec"),
    ],
)
def test_bad_settings_raise_config_error(url: str, kwargs: dict[str, object], match: str) -> None:
    """Bad arguments raise ConfigError naming the value."""
    with pytest.raises(ConfigError, match=match):
        RedisTier(url, **kwargs)  # type: ignore[arg-type]


def test_clear_with_empty_prefix_is_refused(redis_server: str) -> None:
    """An empty prefix would make clear() wipe the database: refused."""
    t = RedisTier(redis_server, prefix="")
    try:
        with pytest.raises(ConfigError, match="prefix"):
            t.clear()
    finally:
        t.close()


def test_scripts_reload_after_script_flush(tier: RedisTier, raw: redis.Redis) -> None:
    """After SCRIPT FLUSH (a restart, a failover) writes fall back to EVAL and keep working."""
    assert tier.set("k", 1, ttl=10)
    raw.script_flush()
    assert tier.set("k", 2, ttl=10) is True
    assert tier.get_with_ttl("k") is not None
    assert tier.delete("k") is True
    assert tier.stats.errors == 0
