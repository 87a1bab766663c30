"""Cache test fixtures: a fresh Monitor, a flushed real redis-py client, and the compare helper."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from perflayer.cache import Cache
from perflayer.errors import ConfigError, ResponseError
from perflayer.monitor import Monitor


@pytest.fixture
def prefix(redis_server: str) -> Iterator[str]:
    """Return a key prefix unique to this test; delete its keys afterwards."""
    p = f"tiers-{uuid.uuid4().hex[:10]}:"
    yield p
    client = redis.Redis.from_url(redis_server)
    keys = list(client.scan_iter(match=p + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def monitor() -> Monitor:
    """Return a fresh Monitor, never the process-wide one."""
    return Monitor()


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def decode(request: pytest.FixtureRequest) -> bool:
    """Run a test once per redis-py response mode."""
    return bool(request.param)


@pytest.fixture
def rds(redis_server: str, decode: bool) -> Iterator[redis.Redis]:
    """Return a redis-py client on the real server, database flushed."""
    client = redis.Redis.from_url(redis_server, decode_responses=decode)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def mem(decode: bool, monitor: Monitor) -> Cache:
    """Return a perflayer Cache mirroring a redis-py client with the same decode_responses."""
    return Cache(decode_responses=decode, monitor=monitor)


def outcome(client: Any, method: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Run one command and return ("ok", result) or ("err", (kind, message))."""
    try:
        return "ok", getattr(client, method)(*args, **kwargs)
    except (redis.ResponseError, ResponseError) as exc:
        return "err", ("response", str(exc))
    except (redis.DataError, ConfigError) as exc:
        # client-side validation: redis-py's DataError, our ConfigError (same text first)
        return "err", ("data", str(exc).split(", got ")[0])


def straddled_half_second(theirs: tuple[str, Any], ours: tuple[str, Any]) -> bool:
    """Return True when two TTL replies differ by one second, as a rounding boundary makes them.

    TTL rounds the milliseconds left to the nearest second, and the two sides read their
    clocks a fraction of a millisecond apart: once a second the remaining time crosses x.5 s
    between the two reads (an EXAT key crosses it when the wall clock does) and the replies
    differ by one. Asking both again a moment later gives equal replies unless the rounding
    really differs, so the caller asks once more and compares that (never a tolerance).
    """
    if theirs[0] != "ok" or ours[0] != "ok":
        return False
    a, b = theirs[1], ours[1]
    return type(a) is int and type(b) is int and a >= 0 and b >= 0 and abs(a - b) == 1


Compare = Callable[..., Any]


@pytest.fixture
def same(rds: redis.Redis, mem: Cache) -> Compare:
    """Return ``same(method, *args, **kwargs)``: run on both, assert equal outcomes, return it."""

    def run(method: str, *args: Any, **kwargs: Any) -> Any:
        theirs = outcome(rds, method, *args, **kwargs)
        ours = outcome(mem, method, *args, **kwargs)
        if method == "ttl" and straddled_half_second(theirs, ours):
            theirs = outcome(rds, method, *args, **kwargs)
            ours = outcome(mem, method, *args, **kwargs)
        if method in ("keys",) and theirs[0] == "ok" and ours[0] == "ok":
            theirs = ("ok", sorted(theirs[1]))
            ours = ("ok", sorted(ours[1]))
        assert ours == theirs, f"{method}{args}{kwargs}: perflayer {ours!r} != redis {theirs!r}"
        return ours[1]

    return run


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so races in the write paths actually interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(n_threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(t)`` on ``n_threads`` threads and re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(t: int) -> None:
        try:
            work(t)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def check_consistent(c: Cache, bound: int) -> None:
    """Assert the dict, the policy, the level counters and the deadline heap agree."""
    data = c._data
    assert len(data) <= bound
    assert len(c._policy) == len(data)  # type: ignore[arg-type]
    dflt = c._default
    assert dflt.entries == len(data)
    assert dflt.bytes == sum(e.weight for e in data.values())
    for k, e in data.items():
        assert e.key == k
        assert e.value == f"v:{k}" or e.value == f"w:{k}"
    scheduled = c._deadline_keys()
    assert {k for k, e in data.items() if e.expire} <= set(scheduled)
    # stale deadlines are rebuilt away: the heap stays O(live keys), not O(inserts), and the
    # fresh list (keys not yet in the heap) holds at most one batch
    assert len(c._expiry_heap) <= 3 * len(data) + 1024 + 1
    assert len(c._fresh) < 1024
