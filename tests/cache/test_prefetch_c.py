"""The C set's direct use of the C policy (prefetch hint, add) changes no answer or decision.

``_tinylfu_c._C_API`` gives ``_fastpath_c``'s set a prefetch hint (called before its dict lookup:
it only starts loads into the CPU caches) and ``add`` without a method call (None, not an empty
list, when nothing leaves). These tests hold the C set with them to the Python method and the
C policy to its Python twin, and check that any other ``_policy_add`` is called as before.
The extensions are imported at module level on purpose: unbuilt, these tests fail.
"""

from __future__ import annotations

import operator
import random
from typing import Any

import pytest

from perflayer.cache import Cache, _core
from perflayer.cache import _tinylfu_c as tinylfu_c
from perflayer.cache._fastpath_c import fast_get, fast_set
from perflayer.cache._policy import TinyLFUPolicy

T0 = 1_800_000_000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the core's clock by a list cell the test advances (seconds)."""
    cell = [T0]
    monkeypatch.setattr(_core, "_time", lambda: cell[0])
    return cell


def _pair(capacity: int) -> tuple[Cache, Cache]:
    """Return a cache on the C paths and one on the Python methods, both on the C policy."""
    fast = Cache(capacity, policy="tinylfu", metrics=False)
    fast.get = fast_get(fast)  # type: ignore[method-assign]
    fast.set = fast_set(fast)  # type: ignore[method-assign]
    slow = Cache(capacity, policy="tinylfu", metrics=False)
    slow.__dict__.pop("get", None)
    slow.__dict__.pop("set", None)
    return fast, slow


def test_the_api_is_exported_as_a_named_capsule() -> None:
    """_tinylfu_c exports its C API under the name _fastpath_c imports it by."""
    cap = tinylfu_c._C_API
    assert type(cap).__name__ == "PyCapsule"
    assert "perflayer.cache._tinylfu_c._C_API" in repr(cap)


def test_the_method_add_still_answers_a_list() -> None:
    """Called as a method, add answers a list, empty when nothing leaves (the C set gets None)."""
    p = tinylfu_c.TinyLFUPolicy(3, None)
    assert p.add("a", 1) == []
    assert type(p.add("b", 1)) is list
    victims: list[object] = []
    for k in "cdefg":
        victims += p.add(k, 1)
    assert len(victims) == 4


def test_filling_then_full_cache_matches_the_python_method(clock: list[float]) -> None:
    """Fill past capacity with TTL and plain sets: the same keys, values, stats and TTLs."""
    fast, slow = _pair(300)
    assert type(fast._policy) is tinylfu_c.TinyLFUPolicy
    rng = random.Random(5)
    for i in range(2_000):
        k = f"k{rng.randrange(900)}"
        ex = rng.choice([None, 1, 5, 60])
        for c in (fast, slow):
            assert c.set(k, i, ex=ex) is True
        if i % 7 == 0:
            clock[0] += 0.5
            probe = f"k{rng.randrange(900)}"
            assert fast.get(probe) == slow.get(probe)
    names = sorted(fast.keys())  # (KEYS *)
    assert names == sorted(slow.keys())
    for k in names:
        assert fast.get(k) == slow.get(k)
        assert fast.ttl(k) == slow.ttl(k)
    assert fast.stats() == slow.stats()


def test_residents_match_the_pure_python_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hinted C set on the C policy keeps the keys the pure-Python cache keeps, op by op."""
    fast = Cache(200, policy="tinylfu", metrics=False)
    fast.get = fast_get(fast)  # type: ignore[method-assign]
    fast.set = fast_set(fast)  # type: ignore[method-assign]
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    ref = Cache(200, policy="tinylfu", metrics=False)
    monkeypatch.delenv("PERFLAYER_PURE_PYTHON")
    assert type(fast._policy) is tinylfu_c.TinyLFUPolicy
    assert type(ref._policy) is TinyLFUPolicy
    rng = random.Random(9)
    for i in range(3_000):
        k = f"n{int(rng.paretovariate(1.2)) % 1_000}"
        if rng.random() < 0.5:
            assert fast.get(k) == ref.get(k), i
        else:
            ex = rng.choice([None, 30])
            assert fast.set(k, i, ex=ex) is True
            assert ref.set(k, i, ex=ex) is True
        assert set(fast._data) == set(ref._data), i
    assert fast.stats()["evictions"] == ref.stats()["evictions"]


def test_a_policy_add_that_is_not_the_c_policy_is_left_alone() -> None:
    """A builtin or Python ``_policy_add`` of another object: no hint, the set works as before."""
    seen: list[Any] = []
    # (operator.is_: a builtin whose bound object is a module; it answers False, no victims)
    for add in (operator.is_, lambda k, w: seen.append((k, w))):
        c = Cache(100, policy="tinylfu", metrics=False)
        c.set = fast_set(c)  # type: ignore[method-assign]
        c._policy_add = add  # type: ignore[assignment]
        assert c.set("a", 1, ex=10) is True
        assert c.set("b", "x") is True
        assert c.get("a") == 1 and c.get("b") == "x"
        assert c.stats()["entries"] == 2
    assert seen == [("a", c._data["a"].weight), ("b", c._data["b"].weight)]


def test_other_bound_methods_and_other_policies_as_policy_add() -> None:
    """Another method of the C policy, or another C policy's add, is called as it was."""
    c = Cache(100, policy="tinylfu", metrics=False)
    c.set = fast_set(c)  # type: ignore[method-assign]
    calls: list[tuple[str, int]] = []
    c._policy_add = lambda k, w: calls.append((k, w)) or []  # type: ignore[assignment]
    assert c.set("a", 1) is True
    assert calls == [("a", c._data["a"].weight)]
    # the bound ``update`` of the C policy: a method call (it adds an unknown key)
    c._policy_add = c._policy.update  # type: ignore[assignment]
    assert c.set("b", 1) is True
    assert c.get("b") == 1
    # another policy's ``add``: its decisions, exactly as the method gives them
    other = tinylfu_c.TinyLFUPolicy(2, None)
    twin = tinylfu_c.TinyLFUPolicy(2, None)
    d = Cache(100, policy="tinylfu", metrics=False)
    d.set = fast_set(d)  # type: ignore[method-assign]
    d._policy_add = other.add  # type: ignore[assignment]
    gone: list[object] = []
    for k in ("x", "y", "z", "w"):
        assert d.set(k, 1) is True
        gone += twin.add(k, d._data[k].weight)  # (a new key is never its own victim)
    assert sorted(d._data) == sorted({"x", "y", "z", "w"} - set(gone))


def test_a_missing_policy_add_still_reports_from_the_insert() -> None:
    """Without ``_policy_add`` the hint is skipped and the insert raises its AttributeError."""
    c = Cache(100, policy="tinylfu", metrics=False)
    c.set = fast_set(c)  # type: ignore[method-assign]
    del c._policy_add
    with pytest.raises(AttributeError, match="_policy_add"):
        c.set("a", 1)
    c._policy_add = c._policy.add
    assert c.set("b", 2) is True
    assert c.get("b") == 2


def test_shared_weights_and_zero_expiry_read_as_the_python_method_makes_them() -> None:
    """New keys' weights (shared ints in C) and no-TTL expiries (a shared 0.0) equal Python's."""
    fast, slow = _pair(1_000)
    values: list[Any] = [1, 2.5, "v", "vv" * 40, b"x", None, 10**30, -7, "é"]
    for i, v in enumerate(values * 3):
        for c in (fast, slow):
            assert c.set(f"key{i}", v) is True
    for i in range(len(values) * 3):
        a, b = fast._data[f"key{i}"], slow._data[f"key{i}"]
        assert (a.weight, a.expire, a.plain_vw) == (b.weight, b.expire, b.plain_vw)
        assert type(a.weight) is int and type(a.expire) is float
    assert fast.stats() == slow.stats()


# -- LRUPolicy.add's filling case in C (lru_fill in _fastpath_c.c) ------------------------------


@pytest.mark.parametrize("bounds", [{"max_entries": 50}, {"max_bytes": 20_000}, {}])
def test_an_lru_cache_filling_and_full_matches_the_python_method(
    clock: list[float], bounds: dict[str, int]
) -> None:
    """Fill an LRU cache past its bound: the same order, total, keys and stats on both paths."""
    fast = Cache(policy="lru", metrics=False, **bounds)  # type: ignore[arg-type]
    fast.get = fast_get(fast)  # type: ignore[method-assign]
    fast.set = fast_set(fast)  # type: ignore[method-assign]
    slow = Cache(policy="lru", metrics=False, **bounds)  # type: ignore[arg-type]
    slow.__dict__.pop("get", None)
    slow.__dict__.pop("set", None)
    rng = random.Random(3)
    for i in range(600):
        k = f"k{rng.randrange(120)}"
        ex = rng.choice([None, 5])
        for c in (fast, slow):
            assert c.set(k, i, ex=ex) is True
        if i % 5 == 0:
            probe = f"k{rng.randrange(120)}"
            assert fast.get(probe) == slow.get(probe)
            clock[0] += 0.25
        assert list(fast._policy._order.items()) == list(slow._policy._order.items()), i
        assert fast._policy._total == slow._policy._total
    assert fast.stats() == slow.stats()


def test_an_lru_subclass_or_odd_state_takes_the_method() -> None:
    """A subclass's add, or a total too large for C, is called as a method: the same answers."""
    from perflayer.cache._policy import LRUPolicy

    calls: list[str] = []

    class Counting(LRUPolicy):
        def add(self, key: Any, weight: int) -> list[Any]:
            calls.append(key)
            return super().add(key, weight)

    c = Cache(10, policy="lru", metrics=False)
    c.set = fast_set(c)  # type: ignore[method-assign]
    c._policy = Counting(10, None)
    c._policy_add = c._policy.add  # type: ignore[method-assign]
    assert c.set("a", 1) is True
    assert calls == ["a"]
    d = Cache(10, policy="lru", metrics=False)
    d.set = fast_set(d)  # type: ignore[method-assign]
    d._policy._total = 2**70  # (beyond C's int64: the method does the arithmetic)
    assert d.set("b", 1) is True
    assert d._policy._total == 2**70 + d._data["b"].weight
    assert list(d._policy._order) == ["b"]
