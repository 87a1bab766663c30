"""``@cached``: keys, single-flight across threads and tasks, exceptions, negative caching."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from perflayer.cache import AsyncCache, Cache, CacheLevel, cached
from perflayer.errors import ConfigError
from perflayer.monitor import Monitor


@pytest.fixture
def cache() -> Cache:
    """Return a fresh cache with its own monitor."""
    return Cache(monitor=Monitor(), name="memo-test")


def test_memoizes_and_counts(cache: Cache) -> None:
    """A second call with equal arguments is a hit and does not run the function."""
    calls: list[int] = []

    @cached(ttl=60, cache=cache)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(x=3), square(4)] == [9, 9, 9, 16]
    assert calls == [3, 4]
    info = square.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 2, 2)
    assert cache.ttl(square.cache_key(3)) in (59, 60)


def test_defaults_are_part_of_the_key(cache: Cache) -> None:
    """f(1) and f(1, 2) with default b=2 share a key; f(1, 3) does not."""

    @cached(cache=cache)
    def f(a: int, b: int = 2) -> int:
        return a + b

    assert f.cache_key(1) == f.cache_key(1, 2) == f.cache_key(a=1, b=2)
    assert f.cache_key(1) != f.cache_key(1, 3)


def test_keys_are_stable_across_processes() -> None:
    """The same call gives the same key in a fresh interpreter (no hash() randomisation)."""
    code = (
        "from perflayer.cache import cached, Cache\n"
        "@cached(cache=Cache(metrics=False))\n"
        "def f(a, b=None): return a\n"
        "f.__module__ = 'm'\n"
        "print(f.cache_key('x', b={'k': (1, 2.5, b'z'), 'j': frozenset({1, 2})}))\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2", "random")
    }
    assert len(outs) == 1
    assert next(iter(outs)).startswith("perflayer:memo:")


def test_custom_key_and_invalidate(cache: Cache) -> None:
    """key= overrides the key; .invalidate(...) drops one entry; cache_clear() drops all."""
    n = [0]

    @cached(cache=cache, key=lambda user_id: f"user:{user_id}")
    def load(user_id: int) -> dict[str, int]:
        n[0] += 1
        return {"id": user_id, "n": n[0]}

    assert load(1) == {"id": 1, "n": 1}
    assert cache.get("user:1") == {"id": 1, "n": 1}
    assert load.invalidate(1) is True
    assert load(1) == {"id": 1, "n": 2}
    load(2)
    assert load.cache_clear() == 2
    assert cache.get("user:2") is None


def test_exceptions_are_not_cached(cache: Cache) -> None:
    """A raising call is retried next time."""
    attempts = [0]

    @cached(cache=cache)
    def flaky() -> str:
        attempts[0] += 1
        if attempts[0] == 1:
            raise RuntimeError("boom")
        return "ok"

    with pytest.raises(RuntimeError, match="boom"):
        flaky()
    assert flaky() == "ok"
    assert flaky() == "ok"
    assert attempts[0] == 2


def test_none_not_cached_unless_negative_ttl(cache: Cache) -> None:
    """None results are recomputed by default and cached with negative_ttl."""
    calls = {"plain": 0, "neg": 0}

    @cached(cache=cache)
    def plain() -> None:
        calls["plain"] += 1

    @cached(cache=cache, negative_ttl=30)
    def neg() -> None:
        calls["neg"] += 1

    for _ in range(3):
        assert plain() is None
        assert neg() is None
    assert calls == {"plain": 3, "neg": 1}
    assert 0 < cache.ttl(neg.cache_key()) <= 30


def test_single_flight_threads(cache: Cache) -> None:
    """Eight threads missing one key run the function once and all get its result."""
    runs = [0]
    started = threading.Event()
    release = threading.Event()

    @cached(cache=cache)
    def slow(x: int) -> int:
        runs[0] += 1
        started.set()
        release.wait(30)
        return x * 10

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(8)]
    for t in threads:
        t.start()
    assert started.wait(30)
    time.sleep(0.05)  # let the followers reach the flight (not a timing assertion)
    release.set()
    for t in threads:
        t.join(30)
    assert results == [70] * 8
    assert runs[0] == 1


def test_single_flight_threads_share_exception(cache: Cache) -> None:
    """Followers of a failing flight get the same exception, and nothing is cached."""
    gate = threading.Event()

    @cached(cache=cache)
    def bad() -> int:
        gate.wait(30)
        raise ValueError("nope")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            bad()
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join(30)
    assert len(errors) == 4
    assert cache.get(bad.cache_key()) is None


async def test_single_flight_tasks(cache: Cache) -> None:
    """Twenty tasks missing one key await one run of the coroutine."""
    runs = [0]

    @cached(cache=cache, ttl=10)
    async def fetch(x: int) -> int:
        runs[0] += 1
        await asyncio.sleep(0.02)
        return x + 1

    results = await asyncio.gather(*(fetch(1) for _ in range(20)))
    assert results == [2] * 20
    assert runs[0] == 1
    assert await fetch(1) == 2
    assert fetch.cache_info().hits >= 1
    assert asyncio.iscoroutinefunction(fetch)


async def test_async_exception_propagates_to_waiters(cache: Cache) -> None:
    """Tasks waiting on a failing flight see its exception; the next call retries."""
    runs = [0]

    @cached(cache=cache)
    async def bad() -> int:
        runs[0] += 1
        await asyncio.sleep(0.01)
        if runs[0] == 1:
            raise KeyError("x")
        return 5

    results = await asyncio.gather(*(bad() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, KeyError) for r in results)
    assert await bad() == 5


async def test_async_cache_backend() -> None:
    """@cached accepts an AsyncCache and stores in its core."""
    ac = AsyncCache(monitor=Monitor())

    @cached(cache=ac, level=CacheLevel.MCP_RESPONSES)
    async def f(x: int) -> int:
        return x

    assert await f(3) == 3
    assert await ac.ttl(f.cache_key(3)) == 300
    assert ac.stats()["levels"]["mcp_responses"]["entries"] == 1


def test_methods_and_cache_key_protocol(cache: Cache) -> None:
    """Methods memoize per instance; __cache_key__ makes instance keys deterministic."""

    class Repo:
        def __init__(self, name: str) -> None:
            self.name = name
            self.calls = 0

        def __cache_key__(self) -> str:
            return self.name

        @cached(cache=cache)
        def find(self, item: str) -> str:
            self.calls += 1
            return f"{self.name}/{item}"

    a, b = Repo("a"), Repo("b")
    assert a.find("x") == "a/x"
    assert a.find("x") == "a/x"
    assert b.find("x") == "b/x"
    assert (a.calls, b.calls) == (1, 1)
    assert Repo.find.cache_key(a, "x") == Repo.find.cache_key(Repo("a"), "x")
    assert Repo.find.invalidate(a, "x") is True


def test_level_ttl_and_stats(cache: Cache) -> None:
    """level= applies the level TTL; hits and misses land on that level's stats."""

    @cached(cache=cache, level="persona_selection")
    def pick(x: int) -> int:
        return x

    pick(1)
    pick(1)
    lv = cache.stats()["levels"]["persona_selection"]
    assert (lv["hits"], lv["misses"], lv["entries"]) == (1, 1, 1)
    assert cache.ttl(pick.cache_key(1)) == 1800


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": "10"},
        {"negative_ttl": 0},
        {"level": "nope"},
        {"level": 3},
        {"key": "not-callable"},
    ],
    ids=repr,
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    """Bad decorator arguments raise ConfigError naming the value."""
    with pytest.raises(ConfigError) as info:
        cached(**kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_bare_decorator_uses_default_cache() -> None:
    """@cached without arguments works and stores in the process default cache."""

    @cached
    def ident(x: int) -> int:
        return x

    assert ident(5) == 5
    assert ident(5) == 5
    assert ident.cache_info().hits == 1
    ident.cache_clear()
