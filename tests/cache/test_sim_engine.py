"""The C SimEngine makes the Python SimEngine's decisions; the C engines' take() their take()'s.

``_policy_auto.SimEngine`` over the Python LIRS/ARC engines and the Python TinyLFUPolicy is the
reference: the C view over the C engines and the C TinyLFUPolicy, built from the same ``real``
list on simulations warmed by the same stream and driven by the same calls (``step``, the
twin's ``step_twin`` and the writes), must return the same values and hold the same state
(order, len, membership, weight, the extras, the buffer, the simulation's own lists or order)
after every call. The extensions are imported at module level on purpose: unbuilt, these tests
fail.
"""

from __future__ import annotations

import ctypes
import gc
import random
import subprocess
import sys
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache import _engines_c
from perflayer.cache._engines_c import ARCEngine as CARC
from perflayer.cache._engines_c import LIRSEngine as CLIRS
from perflayer.cache._engines_c import SimEngine as CView
from perflayer.cache._policy import _READ_BUFFER
from perflayer.cache._policy import TinyLFUPolicy as PyTinyLFU
from perflayer.cache._policy_adaptive import _ARCEngine as PyARC
from perflayer.cache._policy_adaptive import _LIRSEngine as PyLIRS
from perflayer.cache._policy_auto import SimEngine as PyView
from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFU

# one call: (operation, key, weight or capacity)
Op = tuple[str, Any, int]

_CLASSES: dict[str, tuple[Any, Any]] = {
    "lirs": (PyLIRS, CLIRS),
    "arc": (PyARC, CARC),
    "tinylfu": (PyTinyLFU, CTinyLFU),
}
_ENGINES = sorted(_CLASSES)


def _sim(engine: str, side: int, c: int, buf: deque[Hashable] | None = None) -> Any:
    """Return a new simulation of capacity ``c``: the Python (side 0) or the C (side 1) class.

    LIRS and ARC read the buffer ``buf`` (None: their own); a TinyLFU keeps its own read ring.
    """
    cls = _CLASSES[engine][side]
    if engine == "tinylfu":
        return cls(c, None)
    return cls(c) if buf is None else cls(c, buf)


def _csim(engine: str, c: int) -> Any:
    return _sim(engine, 1, c)


def _sim_state(e: Any) -> tuple[Any, ...]:
    """Return a simulation's lists, order and counts, alike for the Python and the C engine."""
    if isinstance(e, (PyTinyLFU, CTinyLFU)):
        return (e.order(), len(e), e.weight, e.max_entries, e.window_fraction)
    if isinstance(e, (CARC, CLIRS)):
        lists = e._lists()
    elif isinstance(e, PyARC):
        lists = (list(e.t1), list(e.t2), list(e.b1), list(e.b2))
    else:
        lists = (list(e.s), list(e.q), list(e.nonres), dict(e.state))
    extra = e.p if isinstance(e, (PyARC, CARC)) else (e.n_lir, e.n_res, e.l_lirs)
    return (lists, e.order(), len(e), e.c, extra)


def _state(view: Any, buf: deque[Hashable], probe: list[Any]) -> tuple[Any, ...]:
    """Return everything a caller can see of a view, and its simulation's state."""
    extras = view._extras() if isinstance(view, CView) else list(view.ex)
    return (
        view.order(),
        len(view),
        [k in view for k in probe],
        view.weight,
        view.max_entries,
        extras,
        list(buf),
        _sim_state(view.sim),
    )


class _Refuses:
    """A container whose ``in`` raises (step_twin's ``other``)."""

    def __contains__(self, key: object) -> bool:
        raise ValueError("no in")


_EVENS = frozenset(list(range(0, 25, 2)) + [f"k{i}" for i in range(0, 25, 2)])


def _other(view: Any, arg: int) -> Any:
    """step_twin's ``other`` for ``arg``: None, the view itself, a set, a raising container."""
    return (None, view, _EVENS, _Refuses())[arg]


def _apply(view: Any, buf: deque[Hashable], op: Op) -> Any:
    """Apply one call; return its result, or the exception's type (both must raise alike)."""
    name, key, arg = op
    try:
        if name == "read":
            buf.append(key)
            return None
        if name == "step":
            return view.step(key)
        if name == "twin":  # the TinyLFU twin's step contract, over any simulation
            if arg >= 4:  # a set without a get (a TinyLFU takes it as add; LIRS/ARC as a step)
                return view.step_twin(key, _other(view, arg - 4), True)
            return view.step_twin(key, _other(view, arg))
        if name == "add":
            return view.add(key, arg)
        if name == "update":
            return view.update(key, arg)
        if name == "remove":
            return view.remove(key)
        if name == "resize":
            return view.resize(arg, None)
        if name == "clear":
            return view.clear()
        if name == "contains":
            return key in view
        if name == "sim_access":  # the simulation stepped directly, not through the view
            return view.sim.access(key)
        if name == "sim_remove":  # as AutoCore's remove does: the caller's, after the view's
            return view.sim.remove(key)
        raise AssertionError(name)
    except Exception as exc:
        return type(exc)


class _Pair:
    """A Python view and a C view of simulations warmed alike, built from the same ``real``."""

    def __init__(self, engine: str, c: int, warm: list[Any], real: list[tuple[Any, int]]) -> None:
        self.pybuf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
        self.cbuf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
        pysim, csim = _sim(engine, 0, c, self.pybuf), _sim(engine, 1, c, self.cbuf)
        for k in warm:
            assert pysim.access(k) == csim.access(k)
        self.py = PyView(pysim, list(real), self.pybuf)
        self.c = CView(csim, list(real), self.cbuf)
        self.probe = sorted({k for k, _w in real} | set(warm[:8]), key=repr)

    def check(self, where: Any) -> None:
        assert _state(self.c, self.cbuf, self.probe) == _state(self.py, self.pybuf, self.probe), (
            where
        )

    def run(self, op: Op, where: Any) -> None:
        got = _apply(self.c, self.cbuf, op)
        want = _apply(self.py, self.pybuf, op)
        assert got == want, (where, op)
        self.check((where, op))


_key = st.integers(0, 24)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("step"), _key, st.just(0)),
        st.tuples(st.just("twin"), _key, st.integers(0, 7)),
        st.tuples(st.just("read"), _key, st.just(0)),
        st.tuples(st.sampled_from(["add", "update"]), _key, st.integers(1, 4)),
        st.tuples(st.just("remove"), _key, st.just(0)),
        st.tuples(st.just("resize"), st.just(0), st.integers(1, 10)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
        st.tuples(st.just("contains"), _key, st.just(0)),
        st.tuples(st.sampled_from(["sim_access", "sim_remove"]), _key, st.just(0)),
    ),
    max_size=80,
)


@pytest.mark.parametrize("engine", _ENGINES)
@settings(max_examples=150, deadline=None)
@given(
    c=st.integers(1, 8),
    warm=st.lists(_key, max_size=30),
    real=st.lists(st.tuples(_key, st.integers(1, 4)), max_size=10),
    ops=_ops,
    as_str=st.booleans(),
)
def test_differential_property(
    engine: str, c: int, warm: list[int], real: list[tuple[int, int]], ops: list[Op], as_str: bool
) -> None:
    """Random calls on small capacities: the same results and state after every call."""
    f: Callable[[int], Any] = (lambda i: f"k{i}") if as_str else (lambda i: i)
    pair = _Pair(engine, c, [f(k) for k in warm], [(f(k), w) for k, w in real])
    pair.check("built")
    for i, (name, key, arg) in enumerate(ops):
        pair.run((name, f(key), arg), i)


def _stream(rng: random.Random, pair: _Pair, c: int, n: int, as_str: bool) -> None:
    """Drive ``pair`` with ``n`` seeded calls: steps and writes of new, phantom and cached keys."""
    universe = 4 * c + 8
    fresh = [10**6]

    def key(i: int) -> Any:
        return f"k{i}" if as_str else i  # str: a new equal object on every call

    def pick() -> Any:
        return key(min(int(rng.paretovariate(1.0)) - 1, universe - 1))

    for i in range(n):
        r = rng.random()
        cached = [k for k, _w in pair.py.order()]
        phantoms = [k for k, _w in pair.py.sim.order() if k not in pair.py.wt]
        if r < 0.30:
            op: Op = ("step", pick(), 0)
        elif r < 0.40:
            op = ("twin", pick(), rng.randrange(3) + 4 * (rng.random() < 0.5))
        elif r < 0.48:
            op = ("read", pick(), 0)
        elif r < 0.73:
            kind = rng.randrange(3)
            if kind == 0 or (kind == 1 and not phantoms) or (kind == 2 and not cached):
                fresh[0] += 1
                k = key(fresh[0]) if rng.random() < 0.5 else pick()  # new, or new to the cache
            elif kind == 1:
                k = rng.choice(phantoms)
            else:
                k = rng.choice(cached)
            op = ("add", k, rng.randint(1, 5))
        elif r < 0.80:
            op = ("update", rng.choice(cached) if cached else pick(), rng.randint(1, 5))
        elif r < 0.88:
            op = ("remove", rng.choice(cached) if cached and rng.random() < 0.7 else pick(), 0)
        elif r < 0.91:
            op = ("resize", 0, rng.randint(1, 64))
        elif r < 0.915:
            op = ("clear", 0, 0)
        elif r < 0.95:
            op = ("contains", pick(), 0)
        elif r < 0.98:
            op = ("sim_remove", rng.choice(cached) if cached and rng.random() < 0.5 else pick(), 0)
        else:
            op = ("sim_access", pick(), 0)
        pair.run(op, i)


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("seed", range(25))
def test_seeded_streams(engine: str, seed: int) -> None:
    """Seeded streams of 3,000 calls at capacities 1-64, int and str keys: same after each."""
    rng = random.Random(seed * 7919 + _ENGINES.index(engine))
    c = rng.choice([1, 2, 3, rng.randint(4, 16), rng.randint(17, 64)])
    as_str = seed % 2 == 1
    key: Callable[[int], Any] = (lambda i: f"k{i}") if as_str else (lambda i: i)
    warm = [key(rng.randrange(3 * c + 4)) for _ in range(rng.randrange(6 * c + 1))]
    cand = list(range(3 * c + 4))
    rng.shuffle(cand)
    # the old engine's keys: up to its capacity, some also in the simulation, some not
    real = [(key(k), rng.randint(1, 5)) for k in cand[: rng.randint(0, c + (seed % 3 == 0))]]
    pair = _Pair(engine, c, warm, real)
    pair.check("built")
    _stream(rng, pair, c, 3_000, as_str)


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("as_str", [False, True])
def test_reads_without_writes_then_writes(engine: str, as_str: bool) -> None:
    """Long runs of read misses (victims the cache never held) between writes: same results.

    Each such victim is looked up and dropped at once: the extras stay the cached keys the
    simulation evicted, at most the cache's size, however long the run.
    """
    rng = random.Random(11 + as_str)
    key: Callable[[int], Any] = (lambda i: f"k{i}") if as_str else (lambda i: i)
    pair = _Pair(engine, 8, [key(i) for i in range(8)], [(key(i), 1) for i in range(0, 8, 2)])
    fresh = 1_000
    for burst in range(40):
        for _ in range(rng.choice([3, 50, 400])):
            fresh += 1
            pair.run(("step", key(fresh if rng.random() < 0.8 else rng.randrange(16)), 0), burst)
            assert len(pair.c._extras()) <= len(pair.c)
        for _ in range(rng.randint(1, 12)):
            pair.run(("add", key(rng.randrange(fresh - 20, fresh + 1)), rng.randint(1, 3)), burst)
        if burst % 5 == 4:
            pair.run(("resize", 0, rng.randint(2, 12)), burst)


# -- take() -------------------------------------------------------------------------------------


def _take(e: Any, op: Op) -> Any:
    name, key, arg = op
    try:
        if name == "take":
            return e.take(key)
        if name == "remove":
            return e.remove(key)
        if name == "resize":
            return e.resize(arg, None)
        return e.clear()
    except Exception as exc:
        return type(exc)


_take_ops = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("remove"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("resize"), st.just(0), st.integers(1, 12)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
    ),
    max_size=150,
)


@pytest.mark.parametrize("engine", ["lirs", "arc"])
@settings(max_examples=200, deadline=None)
@given(c=st.integers(1, 10), ops=_take_ops)
def test_take_is_the_python_engines_take(engine: str, c: int, ops: list[Op]) -> None:
    """take() returns what Python's returns (None, or the victims in order); same state after."""
    py_cls, c_cls = _CLASSES[engine]
    py, cc = py_cls(c), c_cls(c)
    for i, op in enumerate(ops):
        assert _take(cc, op) == _take(py, op), (i, op)
        assert _sim_state(cc) == _sim_state(py), (i, op)
        assert cc.weight == py.weight, (i, op)  # a simulation keeps no weights


@pytest.mark.parametrize("engine", ["lirs", "arc"])
def test_take_on_a_long_stream_answers_as_access(engine: str) -> None:
    """On a skewed stream, take() is access() with the victims: same hits, same victims."""
    py_cls, c_cls = _CLASSES[engine]
    py, cc, twin = py_cls(50), c_cls(50), c_cls(50)
    rng = random.Random(5)
    for i in range(20_000):
        k = int(rng.paretovariate(0.9)) % 2_000
        got = cc.take(k)
        assert got == py.take(k), i
        assert (got is None) == twin.access(k), i
    assert _sim_state(cc) == _sim_state(py) == _sim_state(twin)


# -- errors -------------------------------------------------------------------------------------


class _HashRaises:
    def __hash__(self) -> int:
        raise ValueError("no hash")


class _EqRaises:
    """Every instance hashes alike; == between two instances raises."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        raise ValueError("no eq")


def _filled(engine: str, c: int = 4) -> tuple[_Pair, list[Any]]:
    """Return a pair holding extras, phantoms and simulated keys, and its probe keys."""
    pair = _Pair(engine, c, [1, 2, 3, 1, 2, 9], [(1, 2), (5, 3), (6, 1)])
    for op in [("step", 7, 0), ("step", 8, 0), ("add", 7, 2), ("step", 1, 0)]:
        pair.run(op, "fill")
    return pair, pair.probe


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("call", ["step", "add", "update", "remove"])
def test_a_raising_hash_propagates_and_changes_nothing(engine: str, call: str) -> None:
    """A key whose __hash__ raises: ValueError from either view, the state unchanged."""
    pair, _probe = _filled(engine)
    before = _state(pair.c, pair.cbuf, pair.probe)
    bad = _HashRaises()
    op: Op = (call, bad, 1)
    assert _apply(pair.c, pair.cbuf, op) is ValueError
    assert _apply(pair.py, pair.pybuf, op) is ValueError
    assert _state(pair.c, pair.cbuf, pair.probe) == before
    pair.check("after")
    for i, later in enumerate([("step", 11, 0), ("add", 12, 1), ("remove", 5, 0)]):
        pair.run(later, i)


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("call", ["step", "step_twin", "add", "remove", "contains"])
def test_a_raising_eq_propagates_and_leaves_the_view_consistent(engine: str, call: str) -> None:
    """A key whose == raises, met in a lookup: ValueError, nothing changed, the view works on."""
    view = CView(_csim(engine, 4), [], deque())
    first = _EqRaises(1)
    view.add(first, 1)
    view.add("a", 1)
    before = (view.order(), len(view), view.weight, view._extras(), _sim_state(view.sim))
    with pytest.raises(ValueError, match="no eq"):
        _raise_from(view, call, _EqRaises(2))
    assert (view.order(), len(view), view.weight, view._extras(), _sim_state(view.sim)) == before
    assert view.step(first) is True
    assert view.add("b", 1) == []
    view.remove(first)
    assert first not in view and len(view) == 2


def _raise_from(view: Any, call: str, key: Any) -> Any:
    if call == "contains":
        return key in view
    if call in ("add", "update"):
        return getattr(view, call)(key, 1)
    if call == "step_twin":
        return view.step_twin(key, view)
    return getattr(view, call)(key)


class _Reenter:
    """A key whose == calls ``hook`` (every instance collides, so == runs on every lookup)."""

    hook: Callable[[], Any] | None = None

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        if _Reenter.hook is not None:
            _Reenter.hook()
        return isinstance(other, _Reenter) and other.n == self.n


_MUTATORS: dict[str, Callable[[Any], Any]] = {
    "view.step": lambda v: v.step(object()),
    "view.add": lambda v: v.add(object(), 1),
    "view.update": lambda v: v.update(object(), 1),
    "view.remove": lambda v: v.remove(object()),
    "view.resize": lambda v: v.resize(3, None),
    "view.clear": lambda v: v.clear(),
    "sim.access": lambda v: v.sim.access(object()),
    "sim.take": lambda v: v.sim.take(object()),
    "sim.add": lambda v: v.sim.add(object(), 1),
}


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("inner", sorted(_MUTATORS))
@pytest.mark.parametrize("outer", ["step", "step_twin", "add", "remove"])
def test_a_reentrant_call_raises(engine: str, inner: str, outer: str) -> None:
    """A mutating call from a key's == during a call of the view raises RuntimeError.

    A TinyLFU simulation guards itself only while a method of its own runs (its busy flag is
    _tinylfu_c's): called from an == that the view's remove runs (the ``wt`` lookup) it goes
    through, as under the Python view, and the view stays consistent.
    """
    view = CView(_csim(engine, 4), [], deque())
    view.add(_Reenter(1), 1)
    before = (view.order(), len(view), view.weight, _sim_state(view.sim))
    _Reenter.hook = lambda: _MUTATORS[inner](view)
    through = engine == "tinylfu" and inner.startswith("sim.") and outer == "remove"
    try:
        if through:
            assert _raise_from(view, outer, _Reenter(2)) is None
        else:
            with pytest.raises(RuntimeError, match="re-ent"):
                _raise_from(view, outer, _Reenter(2))
    finally:
        _Reenter.hook = None
    if through:
        assert view.order() == [(_Reenter(1), 1)] and len(view) == 1 and view.weight == 1
    else:
        assert (view.order(), len(view), view.weight, _sim_state(view.sim)) == before
    assert view.add(_Reenter(2), 1) == []
    assert len(view) == 2


@pytest.mark.parametrize("engine", _ENGINES)
def test_reads_from_a_keys_eq_are_allowed(engine: str) -> None:
    """len, in and order() from a key's == during a step see the view and raise nothing."""
    view = CView(_csim(engine, 4), [], deque())
    view.add(_Reenter(1), 1)
    seen: list[Any] = []
    _Reenter.hook = lambda: seen.append((len(view), "x" in view, len(view.order())))
    try:
        assert view.step(_Reenter(2)) is False
    finally:
        _Reenter.hook = None
    assert seen and seen[0] == (1, False, 1)


@pytest.mark.parametrize(
    ("sim", "name"),
    [
        (PyLIRS(4), "_LIRSEngine"),
        (PyARC(4), "_ARCEngine"),
        (PyTinyLFU(4, None), "TinyLFUPolicy"),
        (object(), "object"),
        (None, "NoneType"),
    ],
)
def test_sim_must_be_a_c_engine(sim: Any, name: str) -> None:
    """A sim other than a C LIRS/ARC engine or C TinyLFUPolicy is a TypeError naming its type."""
    msg = f"sim must be a C LIRSEngine, ARCEngine or TinyLFUPolicy, got {name}"
    with pytest.raises(TypeError, match=msg):
        CView(sim, [], deque())


def test_bad_real_and_buf_are_type_errors() -> None:
    """``real`` must hold (key, int weight) pairs and ``buf`` be a deque."""
    bad: Any = CView  # (called against its stub's types on purpose)
    with pytest.raises(TypeError, match=r"buf must be a collections\.deque, got list"):
        bad(CLIRS(4), [], [])
    with pytest.raises(TypeError, match="real must hold"):
        bad(CLIRS(4), [(1, 2, 3)], deque())
    with pytest.raises(TypeError, match="weight must be an int"):
        bad(CLIRS(4), [(1, "w")], deque())
    with pytest.raises(TypeError, match="weight must be an int"):
        bad(CLIRS(4), [], deque()).add(1, 1.5)


def test_sim_is_read_only_and_the_same_object() -> None:
    """``sim`` is the simulation given (no copy) and cannot be rebound."""
    sim = CARC(4)
    view = CView(sim, [], deque())
    assert view.sim is sim
    with pytest.raises(AttributeError):
        view.sim = CARC(4)  # type: ignore[misc]


# -- step_twin and the TinyLFU simulation ------------------------------------------------------


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_step_twin_counts_the_victims_other_lacks(engine: str, mode: int) -> None:
    """step_twin is the simulation's take: None on a hit, else the victims ``other`` lacks.

    ``other`` None (0), the view itself (its cached keys) or a set; a bare simulation beside the
    view's, given the same accesses, says what the victims were.
    """
    view = CView(_csim(engine, 16), [], deque())
    bare = _csim(engine, 16)
    rng = random.Random(3)
    counted = 0
    for i in range(3_000):
        k = int(rng.paretovariate(1.0)) % 64
        victims = bare.take(k)
        other = _other(view, mode)
        got = view.step_twin(k, other)
        if victims is None:
            assert got is None, i
        else:
            assert got == (0 if other is None else sum(v not in other for v in victims)), i
            counted += got
        if i % 3 == 0 and k in view.sim:
            view.add(k, 1)  # cached (no step: the two simulations stay alike)
    assert (counted > 20) == (mode != 0)


@pytest.mark.parametrize("engine", _ENGINES)
def test_step_twin_takes_one_to_three_arguments(engine: str) -> None:
    """step_twin() and step_twin(k, other, write, extra) are TypeErrors, as the Python method's."""
    pair, _probe = _filled(engine)
    for args in [(), (1, None, True, 2)]:
        view: Any
        for view in (pair.c, pair.py):
            with pytest.raises(TypeError):
                view.step_twin(*args)
    pair.check("after")


class _Mutates:
    """A container whose ``in`` removes the key from ``view`` and counts the calls."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.calls: list[tuple[Any, int]] = []

    def __contains__(self, key: object) -> bool:
        self.calls.append((key, len(self.view)))
        self.view.remove(key)
        return False


@pytest.mark.parametrize("engine", _ENGINES)
def test_a_containers_in_may_call_the_view(engine: str) -> None:
    """``other``'s ``in`` runs after the step, the view idle: a call into it goes through.

    The same calls reach it, with the same view behind, as Python's ``sum(... not in other)``.
    """
    pair, _probe = _filled(engine)
    cm, pm = _Mutates(pair.c), _Mutates(pair.py)
    for i in range(60):
        k = i % 13
        assert pair.c.step_twin(k, cm) == pair.py.step_twin(k, pm), i
        assert cm.calls == pm.calls, i
        pair.check(i)
        pair.run(("add", k + 20, 1), i)
    assert cm.calls


def test_a_tinylfu_without_an_entry_bound() -> None:
    """A TinyLFU bounded by weight alone: max_entries None; a write asserts, as Python's."""

    def both(f: Callable[[Any], Any]) -> Any:
        got = [_call(f, v) for v in (cv, pv)]
        assert got[0] == got[1]
        assert _state(cv, cbuf, probe) == _state(pv, pbuf, probe)
        return got[0]

    cbuf: deque[Hashable] = deque()
    pbuf: deque[Hashable] = deque()
    real: list[tuple[Hashable, int]] = [("a", 1), ("b", 2)]
    cv, pv = CView(CTinyLFU(None, 100), real, cbuf), PyView(PyTinyLFU(None, 100), real, pbuf)
    probe = ["a", "b", "c"]
    assert both(lambda v: v.max_entries) is None
    assert both(lambda v: v.step("c")) is False
    assert both(lambda v: v.add("c", 1)) is AssertionError
    assert both(lambda v: v.resize(2, None)) == ["a"]
    assert both(lambda v: v.resize(None, 50)) is AssertionError
    assert both(lambda v: v.max_entries) is None
    assert both(lambda v: v.resize(4, None)) == []
    assert both(lambda v: v.add("d", 1)) == []


def _call(f: Callable[[Any], Any], view: Any) -> Any:
    try:
        return f(view)
    except Exception as exc:
        return type(exc)


def test_sim_engine_builds_the_c_view_over_a_c_twin() -> None:
    """The default policy's sim_engine: the C view over a C TinyLFU, the Python one otherwise."""
    from perflayer.cache._policy_auto import sim_engine

    assert type(sim_engine(CTinyLFU(4, None), [("a", 1)], deque())) is CView
    assert type(sim_engine(PyTinyLFU(4, None), [("a", 1)], deque())) is PyView
    assert type(sim_engine(CLIRS(4), [], deque())) is CView


@pytest.mark.parametrize(("trace", "c"), [("phases6", 100), ("phases3", 200), ("zipf", 300)])
def test_the_default_policy_decides_alike_over_either_view(
    trace: str, c: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CAutoPolicy over the C views of its C simulations and over the Python views: the same.

    On these traces the policy adopts LIRS or ARC and returns to the TinyLFU, so the twin is
    adopted through the C view as well (checked); the other run forces the Python view over
    every C simulation.
    """
    from tests.cache.test_auto_c import _drive
    from tests.cache.test_policy_auto import trace_keys

    from perflayer.cache import _policy_auto
    from perflayer.cache._policy_auto import CAutoPolicy

    keys = trace_keys(trace)
    built: list[tuple[type, type]] = []
    make = _policy_auto.sim_engine

    def recording(sim: Any, real: list[tuple[Hashable, int]], buf: deque[Hashable]) -> Any:
        view = make(sim, real, buf)
        built.append((type(view), type(sim)))
        return view

    monkeypatch.setattr(_policy_auto, "sim_engine", recording)
    c_out = _drive(CAutoPolicy(c, None), c, keys, seed=c)
    assert (CView, CTinyLFU) in built and {v for v, _s in built} == {CView}
    built.clear()
    monkeypatch.setattr(_policy_auto, "_CSIMS", ())
    py_out = _drive(CAutoPolicy(c, None), c, keys, seed=c)
    assert (PyView, CTinyLFU) in built and {v for v, _s in built} == {PyView}
    assert c_out == py_out


# -- references and the cycle collector ---------------------------------------------------------


def test_a_tinylfu_view_holds_and_releases_references() -> None:
    """A key is held while the view or its TinyLFU knows it, released when both forget."""
    key = ("k", 434343)
    base = sys.getrefcount(key)
    view = CView(CTinyLFU(2, None), [(key, 1)], deque())
    for i in range(300):
        view.add(key, 2)
        view.step(("x", i))
        view.step_twin(("y", i), view)
        view.step_twin(key, {key})
        if ("x", i) in view.sim:
            view.add(("x", i), 1)
        view.order()
        view.remove(key)
        if i % 50 == 0:
            view.resize(1 + i % 3, None)
    view.clear()
    assert sys.getrefcount(key) == base
    view.add(key, 1)
    assert sys.getrefcount(key) > base
    del view
    gc.collect()
    assert sys.getrefcount(key) == base


@pytest.mark.parametrize("engine", ["lirs", "arc"])
def test_holds_and_releases_references(engine: str) -> None:
    """A key is held while the view or its simulation knows it, released when both forget."""
    key = ("k", 424242)
    base = sys.getrefcount(key)
    view = CView(_csim(engine, 1), [(key, 1)], deque())
    for i in range(300):
        view.add(key, 2)
        view.step(("x", i))  # the simulation evicts key: an extra
        assert view._extras() == [key]
        assert view.add(("y", i), 1) == [key]  # the write evicts the extra
        view.step(key)  # a phantom
        assert view.add(key, 1) == [("y", i)]
        view.remove(key)
        view.clear()
    assert sys.getrefcount(key) == base
    view.add(key, 1)
    assert sys.getrefcount(key) > base
    del view
    gc.collect()
    assert sys.getrefcount(key) == base


@pytest.mark.parametrize("engine", _ENGINES)
def test_no_leak_over_a_churning_stream(engine: str) -> None:
    """Many distinct keys stepped and added through a small view: live objects stay bounded."""
    view = CView(_csim(engine, 16), [], deque())

    def churn(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            view.step(str(i))
            view.step(str(-i))
            view.add(str(i - 3), 1)
            if i % 7 == 0:
                view.remove(str(i - 5))

    churn(0, 30_000)  # warm the freelists, the tables and the queue
    gc.collect()
    before = len(gc.get_objects()) + sys.getallocatedblocks()
    churn(30_000, 50_000)
    gc.collect()
    after = len(gc.get_objects()) + sys.getallocatedblocks()
    assert after - before < 500


@pytest.mark.parametrize("engine", _ENGINES)
@pytest.mark.parametrize("where", ["wt", "extras", "phantom"])
def test_a_cycle_through_a_key_is_collected(engine: str, where: str) -> None:
    """A key that refers to its view, held only by the view, is collected with it."""

    class K:
        view: Any = None

    k = K()
    view = CView(_csim(engine, 2), [(k, 1)] if where == "extras" else [], deque())
    k.view = view
    if where == "phantom":
        view.step(k)
    elif where == "wt":
        view.add(k, 1)
    assert view._extras() == ([k] if where == "extras" else [])
    r = weakref.ref(k)
    del k, view
    gc.collect()
    assert r() is None


_AFTER_TP_CLEAR = """
import ctypes, sys
from collections import deque
from perflayer.cache._engines_c import ARCEngine, LIRSEngine, SimEngine
from perflayer.cache._tinylfu_c import TinyLFUPolicy
cls = {"arc": ARCEngine, "lirs": LIRSEngine, "tinylfu": lambda c: TinyLFUPolicy(c, None)}[
    sys.argv[1]
]
get_slot = ctypes.pythonapi.PyType_GetSlot
get_slot.restype = ctypes.c_void_p
get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
Py_tp_clear = 51
tp_clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(get_slot(SimEngine, Py_tp_clear))
v = SimEngine(cls(4), [("a", 1)], deque())
v.step("b")
tp_clear(v)
calls = {
    "step": lambda: v.step("b"),
    "step_twin": lambda: v.step_twin("b", v),
    "add": lambda: v.add("b", 1),
    "remove": lambda: v.remove("a"),
    "resize": lambda: v.resize(2, None),
    "clear": lambda: v.clear(),
    "order": lambda: v.order(),
    "len": lambda: len(v),
    "in": lambda: "a" in v,
    "sim": lambda: v.sim,
    "_extras": lambda: v._extras(),
}
for name, f in calls.items():
    try:
        f()
        print(name, "ok")
    except RuntimeError as x:
        print(name, x)
print(v.weight)  # the keys forgotten: 0
get = ctypes.pythonapi.PyCapsule_GetPointer
get.restype = ctypes.c_void_p
get.argtypes = [ctypes.py_object, ctypes.c_char_p]
from perflayer.cache import _engines_c
api = get(_engines_c._C_API, b"perflayer.cache._engines_c._C_API")
prefetch = ctypes.PYFUNCTYPE(None, ctypes.py_object, ctypes.c_ssize_t)(
    ctypes.c_void_p.from_address(api + ctypes.sizeof(ctypes.c_void_p)).value
)
prefetch(v, hash("a"))  # a cleared view: no simulation to prefetch, nothing done
print("prefetch ok")
"""


@pytest.mark.parametrize("engine", _ENGINES)
def test_use_after_the_collectors_tp_clear_raises(engine: str) -> None:
    """After the cycle collector's tp_clear (reached from a finalizer) every call raises.

    The C API's prefetch, given the cleared view, does nothing (no simulation to read).
    """
    r = subprocess.run(
        [sys.executable, "-c", _AFTER_TP_CLEAR, engine], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    msg = "SimEngine: used after the garbage collector cleared it"
    names = ["step", "step_twin", "add", "remove", "resize", "clear", "order", "len", "in", "sim"]
    names.append("_extras")
    assert r.stdout.splitlines() == [f"{n} {msg}" for n in names] + ["0", "prefetch ok"]


# -- the prefetch entry -------------------------------------------------------------------------


def test_the_c_api_stays_the_version_auto_c_imports() -> None:
    """The capsule's version is 1 (_auto_c falls back on any other); its prefetch takes a view.

    (The prefetch itself only starts loads: nothing observable. The test above covers a view
    whose simulation the collector took.)
    """
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = get(_engines_c._C_API, b"perflayer.cache._engines_c._C_API")  # type: ignore[attr-defined]

    class Api(ctypes.Structure):
        _fields_ = [
            ("version", ctypes.c_int),
            ("prefetch", ctypes.PYFUNCTYPE(None, ctypes.py_object, ctypes.c_ssize_t)),
        ]

    api = Api.from_address(ptr)
    assert api.version == 1
    view = CView(CLIRS(8), [("a", 1)], deque())
    tiny = CView(CTinyLFU(8, None), [("a", 1)], deque())  # its own table only
    for obj in (view, view.sim, tiny, tiny.sim, CARC(2), object()):
        api.prefetch(obj, hash("a"))
    assert "a" in view and "a" in tiny
