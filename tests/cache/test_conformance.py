"""The same calls against perflayer.Cache and a real redis-server give identical results.

Both sides run with the same ``decode_responses`` (bytes and decoded modes); a perflayer
Cache built with ``decode_responses=False/True`` mirrors a redis-py client with that setting.
Errors compare by kind (server ResponseError, client-side DataError/ConfigError) and by text.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import redis

from perflayer.cache import Cache

Compare = Any

pytestmark = pytest.mark.redis


def test_get_set_basic(same: Compare) -> None:
    """GET/SET of str, bytes, int and float values, and a missing key."""
    same("get", "missing")
    assert same("set", "s", "hello") is True
    same("get", "s")
    same("set", "b", b"\x00\x01raw")
    same("get", "b")
    same("set", "i", 42)
    same("get", "i")
    same("set", "f", 1.5)
    same("get", "f")
    same("set", "neg", -7)
    same("set", "u", "héllo ✓")
    same("get", "u")
    same("strlen", "u")
    same("set", "", "empty key")
    same("get", "")


def test_bytes_and_str_keys_are_one_key(same: Compare) -> None:
    """A str key and its UTF-8 bytes name the same key, as on the server."""
    same("set", "k", "v1")
    same("get", b"k")
    same("set", b"k\xc3\xa9", "v2")
    same("get", "ké")
    same("exists", "k", b"k")


@pytest.mark.parametrize(
    ("opts"),
    [
        {"nx": True},
        {"xx": True},
        {"get": True},
        {"nx": True, "get": True},
        {"xx": True, "get": True},
        {"keepttl": True},
        {"ex": 100},
        {"px": 100_000},
        {"ex": datetime.timedelta(seconds=100)},
        {"px": datetime.timedelta(seconds=100)},
        {"ex": "100"},
        {"ex": 0},
        {"ex": -1},
        {"px": 0},
        {"px": -5},
        {"exat": 0},
        {"pxat": 0},
        {"exat": 1},
        {"pxat": 1},
        {"ex": 1.5},
        {"px": 1.5},
        {"ex": 1, "px": 1},
        {"nx": True, "xx": True},
        {"keepttl": True, "ex": 5},
        {"ex": 2**62},
    ],
    ids=repr,
)
@pytest.mark.parametrize("present", [False, True], ids=["absent", "present"])
def test_set_options(same: Compare, opts: dict[str, Any], present: bool) -> None:
    """SET with every option, on an absent and on a present key with a TTL."""
    if present:
        same("set", "k", "old", ex=500)
    same("set", "k", "new", **opts)
    same("get", "k")
    same("ttl", "k")
    same("exists", "k")


def test_set_exat_pxat_future(same: Compare) -> None:
    """SET with EXAT/PXAT in the future sets the matching TTL."""
    at = int(time.time()) + 1000
    same("set", "a", 1, exat=at)
    same("ttl", "a")
    same("set", "b", 1, pxat=at * 1000)
    same("ttl", "b")
    same("set", "c", 1, exat=datetime.datetime.fromtimestamp(at))
    same("ttl", "c")


def test_keepttl_keeps_ttl(same: Compare) -> None:
    """SET KEEPTTL keeps the old expiry; a plain SET clears it."""
    same("set", "k", "a", ex=300)
    same("set", "k", "b", keepttl=True)
    same("ttl", "k")
    same("set", "k", "c")
    same("ttl", "k")


def test_getdel_getex(same: Compare) -> None:
    """GETDEL and GETEX with each option, and their errors."""
    same("getdel", "nope")
    same("set", "k", "v")
    same("getdel", "k")
    same("get", "k")
    same("set", "k", "v")
    same("getex", "k")
    same("ttl", "k")
    same("getex", "k", ex=100)
    same("ttl", "k")
    same("getex", "k", px=50_000)
    same("ttl", "k")
    same("getex", "k", persist=True)
    same("ttl", "k")
    same("getex", "k", exat=int(time.time()) + 200)
    same("ttl", "k")
    same("getex", "k", pxat=(int(time.time()) + 300) * 1000)
    same("ttl", "k")
    same("getex", "k", ex=0)
    same("getex", "k", px=-1)
    same("getex", "nope", ex=0)
    same("getex", "k", ex=1, persist=True)
    same("getex", "k", exat=1)
    same("exists", "k")


def test_mget_mset_msetnx(same: Compare) -> None:
    """MGET/MSET/MSETNX including the empty and partial cases."""
    same("mget", [])
    same("mset", {})
    same("msetnx", {})
    same("mset", {"a": 1, "b": "two", "c": b"3"})
    same("mget", ["a", "b", "c", "d"])
    same("mget", "a", "b", "zz")
    same("msetnx", {"c": 1, "e": 2})
    same("get", "e")
    same("msetnx", {"e": 1, "f": 2})
    same("mget", ["e", "f"])


def test_delete_unlink_exists(same: Compare) -> None:
    """DEL/UNLINK/EXISTS counts, repeats and the no-argument errors."""
    same("delete")
    same("unlink")
    same("exists")
    same("mset", {"a": 1, "b": 2, "c": 3})
    same("exists", "a", "a", "b", "x")
    same("delete", "a", "x")
    same("unlink", "b", "b", "c")
    same("exists", "a", "b", "c")


@pytest.mark.parametrize("cmd", ["expire", "pexpire"])
@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"nx": True},
        {"xx": True},
        {"gt": True},
        {"lt": True},
        {"nx": True, "xx": True},
        {"gt": True, "lt": True},
        {"nx": True, "gt": True},
        {"xx": True, "gt": True},
    ],
    ids=repr,
)
def test_expire_flags(same: Compare, cmd: str, flags: dict[str, bool]) -> None:
    """EXPIRE/PEXPIRE with NX/XX/GT/LT on persistent, volatile and missing keys."""
    unit = 1 if cmd == "expire" else 1000
    same(cmd, "missing", 100 * unit, **flags)
    same("set", "p", "v")
    same(cmd, "p", 100 * unit, **flags)
    same("ttl", "p")
    same("set", "v", "v", ex=200)
    same(cmd, "v", 100 * unit, **flags)
    same("ttl", "v")
    same(cmd, "v", 300 * unit, **flags)
    same("ttl", "v")


@pytest.mark.parametrize("cmd", ["expireat", "pexpireat"])
def test_expireat(same: Compare, cmd: str) -> None:
    """EXPIREAT/PEXPIREAT in the future, in the past, with datetimes and flags."""
    unit = 1 if cmd == "expireat" else 1000
    at = int(time.time()) + 1000
    same("set", "k", "v")
    same(cmd, "k", at * unit)
    same("ttl", "k")
    same(cmd, "k", (at - 500) * unit, gt=True)
    same(cmd, "k", (at - 500) * unit, lt=True)
    same("ttl", "k")
    same(cmd, "k", datetime.datetime.fromtimestamp(at + 100))
    same("ttl", "k")
    same(cmd, "k", 1 * unit)
    same("exists", "k")
    same(cmd, "missing", at * unit)


def test_expire_zero_negative_and_bad(same: Compare) -> None:
    """EXPIRE 0 / negative deletes; non-integers and overflow fail as Redis does."""
    same("set", "k", "v")
    same("expire", "k", 0)
    same("exists", "k")
    same("set", "k", "v")
    same("pexpire", "k", -100)
    same("exists", "k")
    same("set", "k", "v")
    same("expire", "k", "abc")
    same("expire", "k", 1.5)
    same("expire", "k", 10**20)
    same("expire", "k", 2**62)
    same("expire", "k", datetime.timedelta(seconds=90))
    same("ttl", "k")


def test_ttl_pttl_persist(same: Compare) -> None:
    """TTL -2/-1/rounded seconds; PTTL close to the server's; PERSIST results."""
    same("ttl", "nope")
    same("pttl", "nope")
    same("set", "k", "v")
    same("ttl", "k")
    same("pttl", "k")
    same("persist", "k")
    same("persist", "nope")
    same("set", "k", "v", px=1200)
    same("ttl", "k")
    same("set", "k", "v", px=2300)
    same("ttl", "k")
    same("persist", "k")
    same("ttl", "k")


def test_pttl_close(rds: redis.Redis, mem: Cache) -> None:
    """PTTL of a fresh 10 s key is, on both, 10 s less at most the time that went by."""
    t0 = time.monotonic()
    rds.set("k", "v", px=10_000)
    mem.set("k", "v", px=10_000)
    theirs, ours = rds.pttl("k"), mem.pttl("k")
    # whole milliseconds on both clocks: each may round the elapsed time up by one
    elapsed_ms = int((time.monotonic() - t0) * 1000) + 2
    for left in (theirs, ours):
        assert 10_000 - elapsed_ms <= left <= 10_000, (theirs, ours, elapsed_ms)


def test_expiry_happens(same: Compare) -> None:
    """A key with a 30 ms TTL is gone after 150 ms on both: GET, TTL, EXISTS, DBSIZE agree."""
    same("set", "short", "v", px=30)
    same("set", "long", "v", ex=100)
    same("mset", {"p1": 1, "p2": 2})
    time.sleep(0.15)
    same("get", "short")
    same("ttl", "short")
    same("exists", "short")
    same("dbsize")
    same("keys", "*")


@pytest.mark.parametrize(
    ("initial", "amount"),
    [
        (None, 1),
        ("10", 5),
        ("-3", -4),
        ("0", 0),
        ("abc", 1),
        ("1.5", 1),
        ("010", 1),
        ("+1", 1),
        ("-0", 1),
        (" 1", 1),
        ("1 ", 1),
        (str(2**63 - 1), 1),
        (str(-(2**63)), -1),
        ("5", 2**63),
        ("5", 1.5),
        ("5", "7"),
        ("5", "x"),
        ("", 1),
        ("99999999999999999999", 1),
        (7, 3),
    ],
    ids=repr,
)
def test_incr_family(same: Compare, initial: Any, amount: Any) -> None:
    """INCRBY/DECRBY/INCR/DECR parse and overflow exactly as Redis."""
    for cmd in ("incrby", "decrby"):
        if initial is not None:
            same("set", "n", initial)
        same(cmd, "n", amount)
        same("get", "n")
        same("delete", "n")
    if initial is not None:
        same("set", "n", initial)
    same("incr", "n")
    same("decr", "n")
    same("get", "n")


@pytest.mark.parametrize(
    ("initial", "amount"),
    [
        (None, 1.5),
        ("10.5", 0.1),
        ("0.1", 0.2),
        ("512.1", 0),
        ("1e3", 0),
        ("1.0", 1),
        ("5", "1e2"),
        ("abc", 1),
        (" 1", 1),
        ("3", "x"),
        ("1e308", 1e308),
        (None, "inf"),
        ("2", -2),
        ("-0.0", 0),
        ("3.0e-5", 1),
        ("0x10", 1),
        ("7", 10),
        ("1.23456789012345678", 1),
        (1.25, 0.5),
        (3, 0.25),
        ("100", -0.001),
        ("-5.5", 5.5),
    ],
    ids=repr,
)
def test_incrbyfloat(same: Compare, initial: Any, amount: Any) -> None:
    """INCRBYFLOAT returns and stores the exact long-double text Redis does."""
    if initial is not None:
        same("set", "f", initial)
    same("incrbyfloat", "f", amount)
    same("get", "f")
    same("strlen", "f")


def test_append_strlen(same: Compare) -> None:
    """APPEND creates, extends and counts bytes; STRLEN of str/int/missing."""
    same("append", "a", "héllo")
    same("append", "a", b"\x00!")
    same("get", "a")
    same("strlen", "a")
    same("set", "n", 12)
    same("append", "n", 3)
    same("get", "n")
    same("incr", "n")
    same("append", "n", 4.5)
    same("get", "n")
    same("strlen", "n")
    same("strlen", "none")


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "a*",
        "*b",
        "a?c",
        "a[bc]c",
        "a[^b]c",
        "a[a-c]*",
        "a[c-a]c",
        "a\\*c",
        "*[",
        "a[b",
        "[]",
        "[^]",
        "??",
        "**",
        "a*c*",
        "h\\",
        "",
        "ab[\\]]",
        "[a-]*",
        "?",
    ],
    ids=repr,
)
def test_keys_patterns(same: Compare, pattern: str) -> None:
    """KEYS with Redis glob patterns, brackets, ranges, escapes and odd edge cases."""
    same("mset", {k: 1 for k in ["abc", "acc", "adc", "a*c", "ab", "b", "ab]", "a-x", "h\\", "xb"]})
    same("keys", pattern)


def test_scan_and_scan_iter(rds: redis.Redis, mem: Cache) -> None:
    """SCAN/SCAN_ITER visit the same key set as the server, with MATCH, COUNT and _type."""
    data = {f"user:{i}": i for i in range(120)} | {f"item:{i}": i for i in range(30)}
    rds.mset(data)
    mem.mset(data)
    for kwargs in (
        {},
        {"match": "user:1*"},
        {"count": 7},
        {"match": "item:*", "count": 1000},
        {"_type": "string"},
        {"_type": "hash"},
    ):
        assert sorted(mem.scan_iter(**kwargs)) == sorted(rds.scan_iter(**kwargs)), kwargs
    cursor, keys = mem.scan(0, count=1000)
    assert cursor == 0 and len(keys) == 150
    assert rds.scan(0, count=1000)[0] == 0


def test_scan_survives_deletes(mem: Cache) -> None:
    """Keys present for the whole SCAN are returned once even when others are deleted."""
    mem.mset({f"k{i}": i for i in range(100)})
    seen: list[Any] = []
    cursor = 0
    first = True
    while first or cursor:
        first = False
        cursor, keys = mem.scan(cursor, count=10)
        seen.extend(keys)
        mem.delete(*[f"k{i}" for i in range(90, 100)])
    stable = {mem._out_key(f"k{i}") for i in range(90)}
    assert stable <= set(seen)
    assert len(seen) == len(set(seen))


def test_dbsize_flushdb_type_rename(same: Compare) -> None:
    """DBSIZE, FLUSHDB, TYPE and RENAME (missing source, self-rename, TTL moves along)."""
    same("dbsize")
    same("type", "x")
    same("mset", {"a": 1, "b": 2})
    same("type", "a")
    same("dbsize")
    same("rename", "nope", "x")
    same("rename", "a", "a")
    same("expire", "a", 500)
    same("rename", "a", "b")
    same("get", "b")
    same("ttl", "b")
    same("exists", "a")
    same("rename", "b", "c")
    same("keys")
    same("flushdb")
    same("dbsize")
    same("keys")


def test_redis_is_really_there(rds: redis.Redis) -> None:
    """The server side of the suite is a real redis-server, not a stand-in."""
    info = rds.info("server")
    assert "redis_version" in info
    assert rds.incr("x") == 1
