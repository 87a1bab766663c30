"""TinyLFUPolicy's adoption API (C and Python): order, prepend, set_weights, access.

Rule G's AutoPolicy adopts a simulation's copy of TinyLFU through these public methods instead of
the Python class's internals (``_tiny_order``, ``_tiny_prepend`` and ``_tiny_weights`` below: how
``AdaptivePolicy._adopt`` did it before these methods existed). Each method is checked against
that spec on both classes; the twins make identical decisions on random operation sequences
(victims step by step, long suffixes after a prepend and set_weights included); the adoption
recipe, run with the public API, gives exactly the policy the internals recipe gives; errors
change nothing.

The C parameters skip when the extension is not built.
"""

from __future__ import annotations

import copy
import gc
import random
import sys
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache._policy import TinyLFUPolicy as PyTinyLFU

try:
    from perflayer.cache import _tinylfu_c
except ImportError:  # not built: the C parameters skip
    _tinylfu_c = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_tinylfu_c is None, reason="perflayer.cache._tinylfu_c is not built")
IMPLS = [pytest.param("c", marks=needs_c), "py"]


# the spec: the Python class's internals, as AdaptivePolicy's adoption used them before these
# methods existed (the methods must equal these on both classes)
def _tiny_order(p: PyTinyLFU) -> list[tuple[Hashable, int]]:
    """Return TinyLFU's resident keys, least valuable first (probation, protected, window)."""
    return [*p._probation.items(), *p._protected.items(), *p._window.items()]


def _tiny_prepend(p: PyTinyLFU, keys: list[Hashable]) -> None:
    """Make ``keys`` (least valuable first) resident at probation's LRU end, weight 1."""
    probation = p._probation
    where = p._where
    freq = p._freq
    take = p._sketch.take
    for k in reversed(keys):
        probation[k] = 1
        probation.move_to_end(k, last=False)
        where[k] = probation
        freq[k] = take(k)


def _tiny_weights(p: PyTinyLFU, mapping: Mapping[Hashable, int]) -> int:
    """Set every resident's weight to ``mapping.get(k, 1)`` and the tallies; return the total."""
    total = 0
    for region in (p._window, p._probation, p._protected):
        for k in region:
            region[k] = mapping.get(k, 1)
        total += sum(region.values())
    p._ww = sum(p._window.values())
    p._pw = sum(p._protected.values())
    p._total = total
    return total


def _cls(impl: str) -> Callable[..., Any]:
    if impl == "c":
        assert _tinylfu_c is not None
        return _tinylfu_c.TinyLFUPolicy
    return PyTinyLFU


def _drain(p: Any) -> None:
    """Replay the buffered reads (remove() of an absent key replays them, in both classes)."""
    p.remove(("absent",))


def _state(p: Any) -> tuple[Any, ...]:
    return (p.order(), len(p), p.weight, p.window_fraction, p._ghost_state)


def _feed(p: Any, keys: list[int]) -> None:
    for k in keys:
        p.access(k)


def _trace_keys(seed: int, n: int, universe: int) -> list[int]:
    """Seeded keys: a recency phase, then a skewed one (the climber moves, ghosts admit)."""
    rng = random.Random(seed)
    out: list[int] = []
    t = 0
    for i in range(n):
        if i < n // 2:
            if rng.random() < 0.3:
                t += 1
            out.append(max(0, t - int(rng.expovariate(0.05))) % universe)
        else:
            out.append(min(int(universe * rng.random() ** 3), universe - 1))
    return out


def _suffix(p: Any, seed: int, n: int, universe: int) -> list[Any]:
    """Cache-aside reads, writes and removes; per step the victims and the key's membership."""
    rng = random.Random(seed)
    out: list[Any] = []
    for k in _trace_keys(seed, n, universe):
        u = rng.random()
        if u < 0.85:
            if k in p:
                p.hit(k)
                out.append(([], True))
                continue
            p.miss(k)
            out.append((list(p.add(k, rng.randint(1, 3))), k in p))
        elif u < 0.95:
            out.append((list(p.update(k, 2) if k in p else p.add(k, 2)), k in p))
        else:
            p.remove(k)
            out.append(([], k in p))
    out.append(_state(p))
    return out


# -- order() --------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_order_is_probation_then_protected_then_window_lru_first(impl: str) -> None:
    """order() lists probation, protected, window (LRU to MRU each), as _tiny_order does."""
    p = _cls(impl)(100, None)
    ref = PyTinyLFU(100, None)
    keys = _trace_keys(1, 3_000, 400)
    for k in keys:
        for x in (p, ref):
            if k in x:
                x.hit(k)
            else:
                x.miss(k)
                x.add(k, 1 + k % 3)
    _drain(p)
    _drain(ref)
    expected = _tiny_order(ref)
    assert ref.order() == expected
    assert p.order() == expected
    regions = (ref._probation, ref._protected, ref._window)
    assert all(len(r) > 0 for r in regions)  # the three regions are exercised
    assert sum(w for _k, w in expected) == p.weight == ref.weight
    assert len(expected) == len(p)


@pytest.mark.parametrize("impl", IMPLS)
def test_order_does_not_replay_the_buffered_reads(impl: str) -> None:
    """A buffered hit does not move its key in order() until a write (or remove) replays it."""
    p = _cls(impl)(10, None)
    for k in range(10):
        p.add(k, 1)
    _drain(p)
    before = p.order()
    lru = before[0][0]
    p.hit(lru)  # a probation hit: replayed, it promotes the key to protected
    assert p.order() == before
    _drain(p)
    after = p.order()
    assert after != before and after[0][0] != lru and (lru, 1) in after


@pytest.mark.parametrize("impl", IMPLS)
def test_order_of_empty_unbounded_and_weighted_policies(impl: str) -> None:
    """Edge states: empty, unbounded (all in the window), weight-bounded."""
    cls = _cls(impl)
    assert cls(5, None).order() == []
    u = cls(None, None)
    for k in range(5):
        u.add(k, k + 1)
    assert u.order() == [(k, k + 1) for k in range(5)]
    w = cls(None, 20)
    ref = PyTinyLFU(None, 20)
    for k in range(40):
        assert list(w.add(k, 1 + k % 4)) == ref.add(k, 1 + k % 4)
    assert w.order() == _tiny_order(ref)


# -- prepend() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_prepend_puts_the_keys_at_probations_lru_end_with_weight_one(impl: str) -> None:
    """prepend() is _tiny_prepend plus the totals: first key least valuable, counts taken."""
    p = _cls(impl)(64, None)
    ref = PyTinyLFU(64, None)
    keys = _trace_keys(2, 2_000, 300)
    _feed(p, keys)
    _feed(ref, keys)
    for k in range(300, 340):  # non-resident keys with sketch counts
        ref.miss(k)
        ref.miss(k)
        p.miss(k)
        p.miss(k)
    for x in (p, ref):
        for k in list(range(64)):
            x.remove(k)
    assert p.order() == ref.order()
    new = [*range(300, 330), 1_000, 1_001]
    counts = {k: ref._sketch.frequency(k) for k in new}
    assert any(c > 0 for c in counts.values())
    n, weight, before = len(p), p.weight, p.order()
    # the spec, on the Python internals (of a copy: a deepcopy's hit would feed ref's buffer)
    spec = ref.copy()
    _tiny_prepend(spec, new)
    ref.prepend(new)
    p.prepend(iter(new))  # any iterable
    assert ref.order() == _tiny_order(spec) == [(k, 1) for k in new] + before
    assert p.order() == ref.order()
    assert {k: ref._freq[k] for k in new} == counts == {k: spec._freq[k] for k in new}
    assert len(p) == n + len(new) and p.weight == weight + len(new)
    assert all(k in p for k in new)
    assert p._ghost_state == ref._ghost_state
    # the same decisions from here on: the prepended keys are the next victims
    assert _suffix(p, 3, 1_500, 400) == _suffix(ref, 3, 1_500, 400)


@pytest.mark.parametrize("impl", IMPLS)
def test_prepend_nothing_and_prepend_into_an_empty_policy(impl: str) -> None:
    """An empty prepend changes nothing; prepending into an empty policy fills probation."""
    p = _cls(impl)(8, None)
    p.prepend([])
    assert _state(p) == _state(PyTinyLFU(8, None))
    p.prepend(("a", "b", "c"))
    assert p.order() == [("a", 1), ("b", 1), ("c", 1)]
    assert len(p) == 3 and p.weight == 3
    assert p.add("d", 1) == [] and len(p) == 4


@pytest.mark.parametrize("impl", IMPLS)
def test_prepend_errors_name_the_key_and_change_nothing(impl: str) -> None:
    """A resident key, a duplicate or an unhashable key: the error names it, nothing changes."""
    p = _cls(impl)(16, None)
    twin = _cls(impl)(16, None)
    keys = _trace_keys(4, 400, 40)
    _feed(p, keys)
    _feed(twin, keys)
    _drain(p)
    _drain(twin)
    resident = p.order()[3][0]
    before = _state(p)
    with pytest.raises(ValueError, match=rf"TinyLFUPolicy.prepend: key {resident!r} is resident"):
        p.prepend([100, 101, resident, 102])
    with pytest.raises(ValueError, match=r"TinyLFUPolicy.prepend: key 101 appears twice in keys"):
        p.prepend([100, 101, 102, 101])
    with pytest.raises(TypeError, match="unhashable"):
        p.prepend([100, [1]])
    with pytest.raises(TypeError):
        p.prepend(5)
    assert _state(p) == before
    assert 100 not in p and 101 not in p
    # and the failed calls left no trace in the sketch or the tallies: the same decisions
    assert _suffix(p, 5, 600, 60) == _suffix(twin, 5, 600, 60)


# -- set_weights() --------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_set_weights_is_mapping_get_key_1_with_the_tallies_recomputed(impl: str) -> None:
    """Every resident key takes mapping.get(key, 1); window, protected and total follow."""
    p = _cls(impl)(None, 400)  # weight-bounded: the window and protected are sized in weight
    ref = PyTinyLFU(None, 400)
    rng = random.Random(6)
    for k in _trace_keys(6, 3_000, 500):
        w = rng.randint(1, 9)
        for x in (p, ref):
            if k in x:
                x.hit(k)
            else:
                x.miss(k)
                x.add(k, w)
    _drain(p)
    _drain(ref)
    residents = [k for k, _w in ref.order()]
    mapping = {k: rng.randint(0, 3) for k in residents[::2]}
    mapping.update({-k - 1: 5 for k in range(10)})  # keys not resident: ignored
    # the spec: AdaptivePolicy._adopt's loop on the Python internals (of a copy)
    spec = ref.copy()
    total = _tiny_weights(spec, mapping)
    ref.set_weights(mapping)
    p.set_weights(mapping)
    assert ref.order() == _tiny_order(spec) == [(k, mapping.get(k, 1)) for k in residents]
    assert (ref._ww, ref._pw, ref._total) == (spec._ww, spec._pw, spec._total)
    assert p.order() == ref.order() and p.weight == ref.weight == total
    # the tallies are right: the same decisions as the spec from here on
    assert _suffix(p, 7, 2_000, 600) == _suffix(ref, 7, 2_000, 600) == _suffix(spec, 7, 2_000, 600)


class _Weights(Mapping[Hashable, int]):
    """A Mapping that is not a dict (read through its get)."""

    def __init__(self, d: dict[Hashable, int]) -> None:
        self._d = d
        self.gets = 0

    def __getitem__(self, key: Hashable) -> int:
        self.gets += 1
        return self._d[key]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


@pytest.mark.parametrize("impl", IMPLS)
def test_set_weights_takes_any_mapping(impl: str) -> None:
    """A Mapping subclass and a mappingproxy work as a dict does; an empty one sets all to 1."""
    p = _cls(impl)(10, None)
    for k in range(10):
        p.add(k, 3)
    weights = _Weights({2: 7, 5: 0})
    p.set_weights(weights)
    assert weights.gets == 10  # Mapping.get -> __getitem__, once per resident key
    assert sorted(p.order()) == [(k, {2: 7, 5: 0}.get(k, 1)) for k in range(10)]
    assert p.weight == 7 + 8
    p.set_weights(MappingProxyType({3: 4}))
    assert p.weight == 4 + 9
    p.set_weights({})
    assert p.weight == 10 and all(w == 1 for _k, w in p.order())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (True, TypeError, "must be an int, got True"),
        (2.0, TypeError, "must be an int, got 2.0"),
        ("3", TypeError, "must be an int, got '3'"),
        (None, TypeError, "must be an int, got None"),
        (-1, ValueError, "must be >= 0, got -1"),
        (-(2**70), ValueError, "must be >= 0"),
        (2**63, OverflowError, r"must be < 2\*\*63, got 9223372036854775808"),
    ],
)
def test_set_weights_rejects_a_bad_weight_naming_the_key_and_changes_nothing(
    impl: str, bad: object, error: type[Exception], message: str
) -> None:
    """A bad value raises, naming the first bad key in order() order; no weight changes."""
    p = _cls(impl)(10, None)
    for k in range(10):
        p.add(f"k{k}", 2)
    _drain(p)
    before = _state(p)
    first_bad = p.order()[4][0]
    mapping: dict[Hashable, object] = {k: 5 for k, _w in p.order()}
    mapping[first_bad] = bad
    mapping[p.order()[7][0]] = bad
    with pytest.raises(
        error, match=rf"TinyLFUPolicy.set_weights: the weight of key '{first_bad}' "
    ):
        p.set_weights(mapping)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        p.set_weights(mapping)  # type: ignore[arg-type]
    assert _state(p) == before


@pytest.mark.parametrize("impl", IMPLS)
def test_set_weights_refuses_a_total_past_int64_and_a_non_mapping(impl: str) -> None:
    """The total must fit an int64 (the C tallies); a list or None is not a mapping."""
    p = _cls(impl)(10, None)
    for k in range(3):
        p.add(k, 1)
    before = _state(p)
    big = 2**62
    with pytest.raises(OverflowError, match="the total weight would overflow int64 at key"):
        p.set_weights({0: big, 1: big, 2: big})
    for not_mapping in ([(0, 2)], None, 3):
        with pytest.raises(TypeError, match=r"TinyLFUPolicy\.set_weights: needs a mapping"):
            p.set_weights(not_mapping)  # type: ignore[arg-type]
    assert _state(p) == before
    p.set_weights({0: big, 1: big - 2})
    assert p.weight == 2**63 - 1


@pytest.mark.parametrize("impl", IMPLS)
def test_set_weights_propagates_a_raising_get_and_changes_nothing(impl: str) -> None:
    """An exception from the mapping's get (or a key's ==) propagates; nothing changes."""

    class Raising(_Weights):
        def __getitem__(self, key: Hashable) -> int:
            if key == 6:
                raise RuntimeError("boom")
            return 9

    p = _cls(impl)(10, None)
    for k in range(10):
        p.add(k, 1)
    before = _state(p)
    with pytest.raises(RuntimeError, match="boom"):
        p.set_weights(Raising({}))
    assert _state(p) == before


# -- access() -------------------------------------------------------------------------------------


def _memo_step(ref: PyTinyLFU, k: int) -> list[Hashable] | None:
    """A memo's step on the Python policy by hand: a hit buffered (None), or a miss buffered
    then added (its victims)."""
    if k in ref:
        ref.hit(k)
        return None
    ref.miss(k)
    return ref.add(k, 1)


@pytest.mark.parametrize("impl", IMPLS)
def test_access_is_the_memo_step_of_a_simulation(impl: str) -> None:
    """access(k) is a memo's step: a hit is buffered, a miss is buffered then added."""
    p = _cls(impl)(50, None)
    ref = PyTinyLFU(50, None)
    hits = 0
    for step, k in enumerate(_trace_keys(8, 4_000, 300)):
        expect = _memo_step(ref, k) is None
        got = p.access(k)
        assert got is expect, step
        hits += got
        assert len(p) == len(ref) and k in p
    assert 0 < hits < 4_000
    _drain(p)
    _drain(ref)
    assert _state(p) == _state(ref)


@pytest.mark.parametrize("impl", IMPLS)
def test_step_counts_the_victims_another_container_lacks(impl: str) -> None:
    """step(k, other) is access(k) that counts its victims ``other`` lacks (None on a hit)."""
    p = _cls(impl)(50, None)
    ref = PyTinyLFU(50, None)
    other = set(range(0, 300, 3))
    lacking = 0
    for step, k in enumerate(_trace_keys(8, 4_000, 300)):
        victims = _memo_step(ref, k)
        expect = None if victims is None else sum(1 for v in victims if v not in other)
        got = p.step(k, other) if step % 2 else p.step(k)
        if step % 2 == 0 and expect is not None:
            expect = 0  # no container: nothing counted
        assert got == expect, step
        lacking += got or 0
    assert lacking > 0
    _drain(p)
    _drain(ref)
    assert _state(p) == _state(ref)
    with pytest.raises(TypeError, match="unhashable"):
        p.step([1], other)
    with pytest.raises(TypeError):
        p.step()  # type: ignore[call-arg]


# -- the twins agree on random operation sequences ------------------------------------------------


def _apply(p: Any, op: tuple[str, int, int]) -> Any:
    """One operation; returns what the caller can see (victims, a result or the order)."""
    kind, k, w = op
    if kind == "r":
        if k in p:
            p.hit(k)
            return True
        p.miss(k)
        return list(p.add(k, w))
    if kind == "x":
        return p.access(k)
    if kind == "a":
        return list(p.add(k, w))
    if kind == "h":
        (p.hit if k % 2 else p.miss)(k)
        return None
    if kind == "d":
        p.remove(k)
        return None
    if kind == "p":
        # up to w non-resident keys from k on, within the bound (the caller's guarantee)
        room = p.max_entries - len(p)
        keys = [x for x in range(k, k + 3 * w) if x not in p][: min(w, room)]
        p.prepend(keys)
        return keys
    if kind == "s":
        rng = random.Random(k)
        p.set_weights({x: rng.randint(0, 4) for x, _w in p.order() if rng.random() < 0.5})
        return p.weight
    return p.order()


OPS = st.lists(
    st.tuples(st.sampled_from("rrrrrxxxhdapso"), st.integers(0, 90), st.integers(1, 4)),
    max_size=250,
)


@needs_c
@settings(max_examples=80, deadline=None)
@given(
    me=st.integers(1, 40),
    ops=OPS,
    ghost=st.booleans(),
    climber=st.sampled_from(["shadow", "sample"]),
    seed=st.integers(0, 2**16),
)
def test_c_and_python_agree_on_any_operation_sequence(
    me: int, ops: list[tuple[str, int, int]], ghost: bool, climber: str, seed: int
) -> None:
    """Any ops with prepend, set_weights, access: identical results, then identical victims."""
    assert _tinylfu_c is not None
    c = _tinylfu_c.TinyLFUPolicy(me, None, ghost=ghost, climber=climber, read_buffer=5)
    py = PyTinyLFU(me, None, ghost=ghost, climber=climber, read_buffer=5)
    for step, op in enumerate(ops):
        assert _apply(c, op) == _apply(py, op), step
        assert (len(c), c.weight) == (len(py), py.weight), step
    # a prepend and new weights, then a long suffix
    for x in (c, py):
        _drain(x)
        room = me - len(x)
        x.prepend([1_000 + i for i in range(room)])
        x.set_weights({k: 1 + k % 3 for k, _w in x.order()})
    assert _state(c) == _state(py)
    assert _suffix(c, seed, 600, 120) == _suffix(py, seed, 600, 120)


# -- the adoption recipe, end to end --------------------------------------------------------------


def _internals_adopt(sim: PyTinyLFU, real: dict[Hashable, int]) -> PyTinyLFU:
    """AdaptivePolicy._adopt's TinyLFU branch as it was, on the Python class's internals."""
    buf: deque[Hashable] = deque(maxlen=sim._buf.maxlen)
    tiny = copy.deepcopy(sim)
    tiny._buf = buf
    tiny.hit = tiny.miss = buf.append
    for k in [k for k in tiny._where if k not in real]:
        tiny.remove(k)
    _tiny_prepend(tiny, [k for k in real if k not in tiny._where])
    _tiny_weights(tiny, real)
    return tiny


def _public_adopt(sim: Any, real: dict[Hashable, int]) -> Any:
    """The same recipe with the public API only (what AutoPolicy does, on either class)."""
    t = sim.copy()
    for k in [k for k, _w in t.order() if k not in real]:
        t.remove(k)
    t.prepend([k for k in real if k not in t])
    t.set_weights(real)
    return t


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("cap", "seed"), [(50, 10), (500, 11), (2_048, 12)])
def test_the_adoption_recipe_with_the_public_api_equals_the_internals_recipe(
    impl: str, cap: int, seed: int
) -> None:
    """sim fed a trace; real some keys; copy, remove, prepend, set_weights == _adopt's branch."""
    keys = _trace_keys(seed, 6 * cap, 4 * cap)
    sim = _cls(impl)(cap, None)
    sim_py = PyTinyLFU(cap, None)
    _feed(sim, keys)
    _feed(sim_py, keys)
    # the lead's code adopts right after a drain: _adopt drops the simulation's buffered reads
    _drain(sim)
    _drain(sim_py)
    rng = random.Random(seed)
    residents = [k for k, _w in sim_py.order()]
    shared = rng.sample(residents, len(residents) // 2)
    only_real = [10**6 + i for i in range(cap - len(shared) - 3)]
    order = shared + only_real
    rng.shuffle(order)
    real = {k: rng.randint(1, 6) for k in order}
    spec = _internals_adopt(sim_py, real)
    t = _public_adopt(sim, real)
    assert type(t) is type(sim)
    assert t.order() == _tiny_order(spec)
    assert (len(t), t.weight, t.window_fraction) == (len(spec), spec.weight, spec.window_fraction)
    assert {k for k, _w in t.order()} == set(real)
    assert sim.order() == sim_py.order()  # the simulation itself is untouched
    # identical decisions from here on: victims step by step on a long suffix
    assert _suffix(t, seed + 1, 3 * cap, 5 * cap) == _suffix(spec, seed + 1, 3 * cap, 5 * cap)


@needs_c
def test_access_and_prepend_hold_no_stray_references() -> None:
    """Keys held only while used: refcounts return to baseline after the sim and keys go."""
    assert _tinylfu_c is not None
    from tests.cache.test_tinylfu_c import Obj

    keys = [Obj(i) for i in range(40)]
    gc.collect()
    base = [sys.getrefcount(k) for k in keys]
    sim = _tinylfu_c.TinyLFUPolicy(8, None)
    hits = [sim.access(k) for k in keys * 3]  # (a comprehension: no loop variable left behind)
    assert any(hits) and not all(hits)
    t = sim.copy()
    [t.remove(k) for k, _w in t.order()]
    assert len(t) == 0
    with pytest.raises(ValueError, match="appears twice"):
        t.prepend([keys[1], keys[0], keys[0]])
    t.prepend(keys[:5])
    with pytest.raises(ValueError, match="resident already"):
        t.prepend([keys[7], keys[4]])
    t.set_weights({keys[0]: 3})
    assert t.order()[0] == (keys[0], 3)
    del sim, t
    gc.collect()
    assert [sys.getrefcount(k) for k in keys] == base
