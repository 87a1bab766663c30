"""Hypothesis drives random command sequences at perflayer.Cache and a real redis-server.

Every step runs on both and the outcomes (value or error text) must be identical. Expiries are
either long (>= 100 s) or already in the past, so no step depends on timing; a TTL read on the
two sides across a half-second rounding boundary is asked again (``straddled_half_second``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from tests.cache.conftest import straddled_half_second

from perflayer.cache import Cache
from perflayer.errors import ConfigError, ResponseError
from perflayer.monitor import Monitor

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = st.sampled_from(["a", "b", "c", "k:1", "k:2", "ü"])
INTS = st.one_of(st.integers(-100, 100), st.sampled_from([2**63 - 1, -(2**63), 2**62]))
VALUES = st.one_of(
    st.text(alphabet="abc01-. é", max_size=6),
    st.binary(max_size=4).filter(lambda b: b.isascii()),
    INTS,
    st.sampled_from([0.5, 1.25, -3.0, 10.1, 1e3]),
)
AMOUNTS_F = st.one_of(st.sampled_from([0, 0.1, 0.5, -1.5, 2.25, 100]), st.integers(-50, 50))
LONG = st.integers(100, 100_000)
PATTERNS = st.sampled_from(["*", "k:*", "?", "[ab]", "[^a]*", "k:[12]", "*:*", "\\*", "ü"])


def _outcome(client: Any, method: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        result = getattr(client, method)(*args, **kwargs)
    except (redis.ResponseError, ResponseError) as exc:
        return "err", str(exc)
    except (redis.DataError, ConfigError) as exc:
        return "client-err", str(exc).split(", got ")[0]
    if method == "keys":
        result = sorted(result)
    return "ok", result


class CacheVsRedis(RuleBasedStateMachine):
    """Random string/keyspace commands; every result must match the server's."""

    client: redis.Redis
    decode: bool

    def __init__(self) -> None:
        super().__init__()
        self.client.flushdb()
        self.mem = Cache(decode_responses=self.decode, monitor=Monitor())

    def same(self, method: str, *args: Any, **kwargs: Any) -> None:
        theirs = _outcome(self.client, method, *args, **kwargs)
        ours = _outcome(self.mem, method, *args, **kwargs)
        if method == "ttl" and straddled_half_second(theirs, ours):
            # the clocks were read on either side of a rounding boundary: ask both again
            theirs = _outcome(self.client, method, *args, **kwargs)
            ours = _outcome(self.mem, method, *args, **kwargs)
        assert ours == theirs, f"{method}{args}{kwargs}: perflayer {ours!r} != redis {theirs!r}"

    @rule(
        k=KEYS,
        v=VALUES,
        opt=st.sampled_from(["", "nx", "xx", "get", "keepttl"]),
        ttl=st.one_of(st.none(), LONG),
    )
    def set(self, k: str, v: Any, opt: str, ttl: int | None) -> None:
        kwargs: dict[str, Any] = {opt: True} if opt else {}
        if ttl is not None and opt != "keepttl":
            kwargs["ex"] = ttl
        self.same("set", k, v, **kwargs)

    @rule(k=KEYS, v=VALUES, past=st.booleans())
    def set_at(self, k: str, v: Any, past: bool) -> None:
        at = 1 if past else int(time.time()) + 1000
        self.same("set", k, v, exat=at)

    @rule(k=KEYS)
    def get(self, k: str) -> None:
        self.same("get", k)

    @rule(k=KEYS)
    def getdel(self, k: str) -> None:
        self.same("getdel", k)

    @rule(k=KEYS, ttl=st.one_of(st.none(), LONG, st.just(0)), persist=st.booleans())
    def getex(self, k: str, ttl: int | None, persist: bool) -> None:
        if ttl is not None and persist:
            persist = False
        self.same("getex", k, ex=ttl, persist=persist)

    @rule(ks=st.lists(KEYS, max_size=4))
    def mget(self, ks: list[str]) -> None:
        self.same("mget", ks)

    @rule(m=st.dictionaries(KEYS, VALUES, max_size=3), nx=st.booleans())
    def mset(self, m: dict[str, Any], nx: bool) -> None:
        self.same("msetnx" if nx else "mset", m)

    @rule(ks=st.lists(KEYS, max_size=3), cmd=st.sampled_from(["delete", "unlink", "exists"]))
    def multi_key(self, ks: list[str], cmd: str) -> None:
        self.same(cmd, *ks)

    @rule(
        k=KEYS,
        cmd=st.sampled_from(["expire", "pexpire"]),
        t=st.one_of(LONG, st.integers(-5, 0)),
        flags=st.sampled_from(
            [
                {},
                {"nx": True},
                {"xx": True},
                {"gt": True},
                {"lt": True},
                {"nx": True, "gt": True},
                {"gt": True, "lt": True},
            ]
        ),
    )
    def expire(self, k: str, cmd: str, t: int, flags: dict[str, bool]) -> None:
        self.same(cmd, k, t * (1000 if cmd == "pexpire" else 1), **flags)

    @rule(k=KEYS, past=st.booleans(), ms=st.booleans())
    def expireat(self, k: str, past: bool, ms: bool) -> None:
        at = 1 if past else int(time.time()) + 5000
        if ms:
            self.same("pexpireat", k, at * 1000)
        else:
            self.same("expireat", k, at)

    @rule(k=KEYS)
    def ttl_persist(self, k: str) -> None:
        self.same("ttl", k)
        self.same("persist", k)
        self.same("ttl", k)

    @rule(k=KEYS, amount=INTS, cmd=st.sampled_from(["incrby", "decrby"]))
    def incrby(self, k: str, amount: int, cmd: str) -> None:
        self.same(cmd, k, amount)

    @rule(k=KEYS, cmd=st.sampled_from(["incr", "decr"]))
    def incr(self, k: str, cmd: str) -> None:
        self.same(cmd, k)

    @rule(k=KEYS, amount=AMOUNTS_F)
    def incrbyfloat(self, k: str, amount: Any) -> None:
        self.same("incrbyfloat", k, amount)

    @rule(k=KEYS, v=VALUES)
    def append(self, k: str, v: Any) -> None:
        self.same("append", k, v)

    @rule(k=KEYS)
    def strlen_type(self, k: str) -> None:
        self.same("strlen", k)
        self.same("type", k)

    @rule(p=PATTERNS)
    def keys(self, p: str) -> None:
        self.same("keys", p)

    @rule()
    def dbsize(self) -> None:
        # Redis keeps an expired key in DBSIZE until its expiry cycle (timing-dependent) or an
        # access reclaims it; touching every key first makes the count deterministic.
        self.same("exists", "a", "b", "c", "k:1", "k:2", "ü")
        self.same("dbsize")

    @rule(src=KEYS, dst=KEYS)
    def rename(self, src: str, dst: str) -> None:
        self.same("rename", src, dst)
        self.same("ttl", dst)

    @rule()
    def mget_all(self) -> None:
        self.same("mget", ["a", "b", "c", "k:1", "k:2", "ü"])


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decoded"])
def test_random_sequences_match_redis(redis_server: str, decode: bool) -> None:
    """Random command sequences give 0 differences from the real server."""
    client = redis.Redis.from_url(redis_server, decode_responses=decode)
    CacheVsRedis.client = client
    CacheVsRedis.decode = decode
    try:
        run_state_machine_as_test(
            CacheVsRedis,
            settings=settings(
                max_examples=int(os.environ.get("PERFLAYER_STATEFUL_EXAMPLES", "100")),
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
            ),
        )
    finally:
        client.flushdb()
        client.close()
