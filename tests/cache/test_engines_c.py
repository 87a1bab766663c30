"""The C engines of _engines_c make the Python engines' decisions, hold their keys, leak none.

The extension is imported at module level on purpose: if it is not built (``make test`` builds
it), these tests fail instead of skipping.
"""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
from collections import deque
from collections.abc import Hashable
from typing import Any

import pytest
from benchmarks.traces import synthetic_traces
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache._engines_c import ARCEngine as CARC
from perflayer.cache._engines_c import LIRSEngine as CLIRS
from perflayer.cache._policy import _READ_BUFFER
from perflayer.cache._policy_adaptive import AdaptivePolicy, _order
from perflayer.cache._policy_adaptive import _ARCEngine as PyARC
from perflayer.cache._policy_adaptive import _LIRSEngine as PyLIRS

# one step: (operation, key, weight or size); keys are small ints so streams revisit them
Op = tuple[str, int, int]


def _arc_state(e: Any) -> tuple[Any, ...]:
    if isinstance(e, CARC):
        lists = e._lists()
    else:
        lists = (list(e.t1), list(e.t2), list(e.b1), list(e.b2))
    return (lists, e.order(), len(e), e.weight, e.p, e.c)


def _step(e: Any, op: Op) -> Any:
    """Apply one step; return what it returned, or the exception's type."""
    name, key, arg = op
    try:
        if name == "read":
            e._buf.append(key)
            return None
        if name == "add":
            return e.add(key, arg)
        if name == "update":
            return e.update(key, arg)
        if name == "remove":
            return e.remove(key)
        if name == "clear":
            return e.clear()
        if name == "resize":
            return e.resize(arg, None)
        if name == "prepend":
            # the adoption's use: non-resident keys only
            keys = [k for k in range(key, key + arg) if k not in e]
            return e.prepend(keys)
        if name == "contains":
            return key in e
        raise AssertionError(name)
    except Exception as exc:  # compared by type: both must raise the same
        return type(exc)


def _lirs_state(e: Any) -> tuple[Any, ...]:
    if isinstance(e, CLIRS):
        lists = e._lists()
    else:
        lists = (list(e.s), list(e.q), list(e.nonres), dict(e.state))
    counts = (e.n_lir, e.n_res, e.l_lirs, e.l_hirs, e.c, e.max_entries)
    return (lists, e.order(), len(e), e.weight, counts)


_PAIRS: dict[str, tuple[Any, Any, Any]] = {
    "arc": (PyARC, CARC, _arc_state),
    "lirs": (PyLIRS, CLIRS, _lirs_state),
}


def _replay(ops: list[Op], c: int, engine: str = "arc") -> None:
    py_cls, c_cls, state = _PAIRS[engine]
    py, cc = py_cls(c), c_cls(c)
    for i, op in enumerate(ops):
        assert _step(cc, op) == _step(py, op), (i, op)
        assert state(cc) == state(py), (i, op)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, 30), st.just(0)),
        st.tuples(st.sampled_from(["add", "update"]), st.integers(0, 30), st.integers(1, 5)),
        st.tuples(st.just("remove"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("contains"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("resize"), st.just(0), st.integers(1, 12)),
        st.tuples(st.just("prepend"), st.integers(0, 30), st.integers(0, 4)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(_ops, st.integers(1, 10))
def test_arc_differential(ops: list[Op], c: int) -> None:
    """Random calls: identical results, lists (ghosts included), order, weight and p."""
    _replay(ops, c)


@settings(max_examples=300, deadline=None)
@given(_ops, st.integers(1, 10))
def test_lirs_differential(ops: list[Op], c: int) -> None:
    """Random calls: identical results, stack, queue, history, states, order and counts."""
    _replay(ops, c, "lirs")


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_long_seeded_stream(engine: str) -> None:
    """A long seeded stream over a skewed key space, mostly adds and reads, some of everything."""
    rng = random.Random(20261128)
    ops: list[Op] = []
    for _ in range(20_000):
        r = rng.random()
        key = int(rng.paretovariate(1.2)) % 400
        if r < 0.45:
            ops.append(("read", key, 0))
        elif r < 0.9:
            ops.append(("add", key, rng.randint(1, 3)))
        elif r < 0.95:
            ops.append(("remove", key, 0))
        elif r < 0.97:
            ops.append(("prepend", key, rng.randint(1, 5)))
        elif r < 0.995:
            ops.append(("resize", 0, rng.randint(20, 120)))
        else:
            ops.append(("clear", 0, 0))
    _replay(ops, 64, engine)


@pytest.mark.parametrize("engine", ["arc", "lirs"])
@pytest.mark.parametrize("size_index", [0, 2])
@pytest.mark.parametrize("trace", ["syn-recency", "syn-scan-mix"])
def test_trace_simulation(trace: str, size_index: int, engine: str) -> None:
    """access() on a benchmark trace: the same hits and final state as the Python simulation."""
    t = next(t for t in synthetic_traces() if t.name == trace)
    c = t.sizes[size_index]
    py_cls, c_cls, state = _PAIRS[engine]
    py, cc = py_cls(c), c_cls(c)
    keys = t.keys[:60_000]
    hits_py = [py.access(k) for k in keys]
    hits_c = [cc.access(k) for k in keys]
    assert hits_c == hits_py
    assert state(cc) == state(py)


def test_lirs_history_bound_on_a_long_scan() -> None:
    """A scan of new keys fills the non-resident history past its bound: trimmed the same way."""
    py, cc = PyLIRS(8), CLIRS(8)
    rng = random.Random(5)
    # key 0 stays the LIR bottom of the stack (never read again): nothing prunes the history
    keys = list(range(7)) + [
        1_000 + i if rng.random() < 0.9 else rng.randrange(1, 7) for i in range(6_000)
    ]
    for k in keys:
        assert cc.access(k) == py.access(k)
    assert _lirs_state(cc) == _lirs_state(py)
    assert 1_024 <= len(py.nonres) <= 1_024 + 16


def test_lirs_load_prepend_and_adds() -> None:
    """load() and prepend() as AdaptivePolicy uses them, then adds: the same decisions."""
    items: list[tuple[Hashable, int]] = [(k, k % 3 + 1) for k in range(40)]
    py, cc = PyLIRS(32), CLIRS(32)
    for e in (py, cc):
        e.load(items)
    assert _lirs_state(cc) == _lirs_state(py)
    rng = random.Random(4)
    for _ in range(300):
        k = rng.randrange(90)
        assert cc.add(k, 2) == py.add(k, 2)
    for e in (py, cc):
        for k in range(100, 106):
            e.remove(k)
        e.prepend([k for k in range(60, 75) if k not in e])
    assert _lirs_state(cc) == _lirs_state(py)
    for _ in range(300):
        k = rng.randrange(90)
        assert cc.add(k, 1) == py.add(k, 1)
        assert _lirs_state(cc) == _lirs_state(py)


def test_arc_load_then_adopt_style_calls() -> None:
    """load() and prepend() as AdaptivePolicy uses them, then p set from a simulation."""
    items: list[tuple[Hashable, int]] = [(k, k % 3 + 1) for k in range(20)]
    py, cc = PyARC(32), CARC(32)
    for e in (py, cc):
        e.load(items)
        e.prepend([100, 101, 102])
        e.p = 7.5
    assert _arc_state(cc) == _arc_state(py)
    rng = random.Random(3)
    for _ in range(500):
        k = rng.randrange(60)
        assert cc.add(k, 1) == py.add(k, 1)
        assert _arc_state(cc) == _arc_state(py)


def test_arc_shared_buffer_is_drained() -> None:
    """Reads appended to the shared deque are replayed by the next locked call, then cleared."""
    buf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
    e = CARC(4, buf)
    assert e._buf is buf
    for k in "abcd":
        e.add(k, 1)
    buf.extend(["a", "zz", "b"])
    e._drain()
    assert not buf
    assert e._lists() == (["c", "d"], ["a", "b"], [], [])
    assert CARC(3)._buf.maxlen == _READ_BUFFER


def test_arc_hit_keeps_the_argument_key_object() -> None:
    """A T1 hit moves the key to T2 as the argument object, as OrderedDict's del + insert."""
    e, p = CARC(4), PyARC(4)
    for x in (e, p):
        x.add(1, 1)
        x.add(1.0, 2)
    assert e.order() == p.order() == [(1.0, 2)]
    assert type(e.order()[0][0]) is type(p.order()[0][0]) is float


def _misuse(cls: Any) -> Any:
    """The misuse both C engines refuse alike; return the engine (holding ``a``, weight 1)."""
    e = cls(4)
    e.add("a", 1)
    with pytest.raises(TypeError):
        e.add([1], 1)
    with pytest.raises(TypeError, match="weight must be an int"):
        e.add("b", 1.5)
    with pytest.raises(TypeError):
        e.remove({})
    with pytest.raises(AssertionError):
        e.resize(None, None)
    with pytest.raises(AssertionError):
        e.resize(4, 10)
    with pytest.raises(ValueError, match="-1"):
        cls(-1)
    with pytest.raises(ValueError, match="'a'"):
        e.prepend(["a"])
    with pytest.raises(ValueError, match="empty"):
        e.load([("b", 1)])
    return e


def test_arc_errors() -> None:
    """Misuse raises a clear error naming the bad value; the engine is unchanged."""
    e = _misuse(CARC)
    with pytest.raises(TypeError, match="'x'"):
        CARC("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        CARC(4).load([("b", 1), ("b", 2)])
    with pytest.raises(ValueError, match="99"):
        e.p = 99
    assert e.order() == [("a", 1)]
    assert e.weight == 1
    z, pz = CARC(0), PyARC(0)
    with pytest.raises(KeyError):
        pz.add("a", 1)
    with pytest.raises(KeyError):
        z.add("a", 1)
    assert len(z) == 0 and z._lists() == ([], [], [], [])


class _Reenter:
    """A key whose __eq__ calls back into the engine."""

    engine: Any = None

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 7  # every instance collides: == runs on every lookup

    def __eq__(self, other: object) -> bool:
        if _Reenter.engine is not None:
            _Reenter.engine.add(object(), 1)
        return isinstance(other, _Reenter) and other.n == self.n


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_reentrant_call_raises(cls: Any) -> None:
    """A mutating call from a key's __eq__ raises RuntimeError; the engine stays consistent."""
    e = cls(4)
    e.add(_Reenter(1), 1)
    _Reenter.engine = e
    try:
        with pytest.raises(RuntimeError, match="re-entrant"):
            e.add(_Reenter(2), 1)
    finally:
        _Reenter.engine = None
    assert len(e) == 1
    e.add(_Reenter(2), 1)
    assert len(e) == 2


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_holds_and_releases_references(cls: Any) -> None:
    """Keys are held while known (resident or history) and released when forgotten: no leak."""
    key = ("k", 12345)
    base = sys.getrefcount(key)
    e = cls(8)
    for _ in range(1_000):
        e.add(key, 1)
        e._buf.append(key)
        e._drain()
        e.remove(key)
        e.add(key, 2)
        e.prepend([])
        e.clear()
    assert sys.getrefcount(key) == base
    e.load([(key, 1)])
    assert sys.getrefcount(key) > base
    del e
    gc.collect()
    assert sys.getrefcount(key) == base


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_no_leak_over_a_churning_stream(cls: Any) -> None:
    """Many distinct keys through a small engine (history dropped): live objects stay bounded."""
    e = cls(16)
    gc.collect()
    for i in range(30_000):
        e.add(str(i), 1)  # warm the freelist, the table and LIRS's bounded history
        e.access(str(-i))
    gc.collect()
    before = len(gc.get_objects()) + sys.getallocatedblocks()
    for i in range(30_000, 50_000):
        e.add(str(i), 1)
        e.access(str(-i))
    gc.collect()
    after = len(gc.get_objects()) + sys.getallocatedblocks()
    assert after - before < 500


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_cycle_through_a_key_is_collected(cls: Any) -> None:
    """A key that refers to its engine, held only by the engine, is collected with it."""
    import weakref

    class K:
        pass

    e = cls(4)
    k = K()
    k.e = e  # type: ignore[attr-defined]
    e.add(k, 1)
    r = weakref.ref(k)
    del k, e
    gc.collect()
    assert r() is None


def test_lirs_errors() -> None:
    """Misuse raises a clear error naming the bad value; the engine is unchanged."""
    e = _misuse(CLIRS)
    fresh = CLIRS(4)
    with pytest.raises(ValueError, match="twice"):
        fresh.load([("b", 1), ("b", 2)])
    assert len(fresh) == 0 and fresh.order() == [] and fresh.weight == 0
    assert e.order() == [("a", 1)]
    assert e.weight == 1


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_errors_name_the_engine(cls: Any) -> None:
    """The methods both engines share name the engine that refused, and change nothing."""
    name = cls.__name__
    e = cls(4)
    e.add("a", 1)
    with pytest.raises(ValueError, match=f"^{name}: the capacity must be >= 0, got -1$"):
        cls(-1)
    with pytest.raises(TypeError, match=f"^{name}: the capacity must be an int, got 'x'$"):
        e.resize("x", None)
    with pytest.raises(AssertionError, match=f"^{name}.resize: needs an entry bound"):
        e.resize(4, 10)
    with pytest.raises(TypeError, match=f"^{name}.load: items must be a sequence$"):
        cls(4).load(7)
    with pytest.raises(TypeError, match=f"^{name}.prepend: keys must be a sequence$"):
        e.prepend(7)
    with pytest.raises(TypeError, match=f"^{name}.set_weights: needs a dict, got"):
        e.set_weights([])
    with pytest.raises(TypeError, match=f"^{name}._buf must be a collections.deque"):
        e._buf = []
    with pytest.raises(OverflowError, match=f"^{name}.add: the total weight would overflow"):
        e.add("b", 2**63 - 1)
    assert e.order() == [("a", 1)] and e.weight == 1 and e.c == e.max_entries == 4


def test_lirs_shared_buffer_is_drained() -> None:
    """Reads appended to the shared deque are replayed by the next locked call, then cleared."""
    buf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
    py, cc = PyLIRS(4, buf), CLIRS(4, deque(maxlen=_READ_BUFFER))
    for e in (py, cc):
        for k in "abcde":
            e.add(k, 1)
        e._buf.extend(["e", "zz", "c", "e"])
        e._drain()
        assert not e._buf
    assert cc._buf is not buf and py._buf is buf
    assert _lirs_state(cc) == _lirs_state(py)


# -- AdaptivePolicy on the C engines: the same decisions as on the Python ones ------------------


def _drive_adaptive(keys: list[int], size: int) -> tuple[list[Any], list[str], int, list[type]]:
    p = AdaptivePolicy(size, None)
    types = [type(o) for o in p._objs]
    out: list[Any] = []
    engines: list[str] = []
    for i, k in enumerate(keys):
        if k in p:
            p.hit(k)
            continue
        p.miss(k)
        out.append(p.add(k, 1 + k % 3))
        if i % 997 == 0:
            p.remove(keys[i // 2])
            out.append(_order(p._engine))
        engines.append(p.engine)
    out.append(_order(p._engine))
    return out, engines, p.switches, types


@pytest.mark.parametrize(
    ("trace", "size_index"),
    # full shadows (adoption of LIRS and ARC), then sampled (migration to ARC, to LIRS)
    [("syn-scan-mix", 0), ("syn-phases", 0), ("syn-recency", 2), ("syn-tenants", 3)],
)
def test_adaptive_policy_same_decisions_on_c_engines(
    trace: str, size_index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AdaptivePolicy with the C engines evicts, switches and adopts as with the Python ones."""
    t = next(t for t in synthetic_traces() if t.name == trace)
    keys, size = t.keys[:80_000], t.sizes[size_index]
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    py = _drive_adaptive(keys, size)
    monkeypatch.delenv("PERFLAYER_PURE_PYTHON")
    cc = _drive_adaptive(keys, size)
    assert py[3][1:] == [PyLIRS, PyARC]
    assert cc[3][1:] == [CLIRS, CARC]
    assert cc[2] == py[2] >= 1  # at least one switch: the adoption or the migration ran
    assert cc[1] == py[1]
    assert cc[0] == py[0]


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_copy_is_independent_and_set_weights(engine: str) -> None:
    """copy() shares the key objects, not the structure; set_weights() is the adoption's wt."""
    _py, c_cls, state = _PAIRS[engine]
    e = c_cls(16)
    rng = random.Random(9)
    for _ in range(400):
        e.access(rng.randrange(50))
    before = state(e)
    buf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
    twin = e.copy(buf)
    assert twin._buf is buf and e._buf is not buf
    assert state(twin)[:3] == before[:3]
    for k in range(60, 90):
        twin.add(k, 1)
    assert state(e) == before
    keys = [k for k, _w in twin.order()]
    twin.set_weights({keys[0]: 5, "absent": 9})
    assert twin.order()[0] == (keys[0], 5)
    assert twin.weight == 5 + len(keys) - 1
    with pytest.raises(TypeError, match="dict"):
        twin.set_weights([(keys[0], 1)])
    with pytest.raises(TypeError, match="deque"):
        e.copy([])
    del e
    gc.collect()
    assert state(twin)[2] == len(keys)


def _child(script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter under -X dev and the debug allocator.

    The crash regressions run in a child: on a broken build they segfault, which would take
    the whole test run down with them.
    """
    return subprocess.run(
        [sys.executable, "-X", "dev", "-c", script, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONMALLOC": "debug"},
        check=False,
    )


# a key whose __hash__ empties the caller's list (and, for load, each list pair): the engines must
# copy the argument and hold each key across the lookup (this used to be a use-after-free)
_MUTATING_ARGS = """
import gc, sys
from perflayer.cache._engines_c import ARCEngine, LIRSEngine
cls = {"arc": ARCEngine, "lirs": LIRSEngine}[sys.argv[1]]
outer = []
class K:
    def __init__(self, i): self.i = i; self.pair = None
    def __hash__(self):
        outer.clear()
        if self.pair is not None:
            self.pair.clear()
        return self.i
    def __eq__(self, o): return self is o
e = cls(100)
if sys.argv[2] == "prepend":
    outer.extend(K(i) for i in range(50))
    e.prepend(outer)
else:
    for i in range(50):
        k = K(i)
        k.pair = [k, 1]
        outer.append(k.pair)
    del k
    e.load(outer)
gc.collect()
order = e.order()
assert len(e) == 50 and sorted(k.i for k, _ in order) == list(range(50)), order
assert all(w == 1 for _, w in order) and e.weight == 50
print("ok")
"""


@pytest.mark.parametrize("method", ["prepend", "load"])
@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_load_and_prepend_survive_a_key_that_empties_the_argument(engine: str, method: str) -> None:
    r = _child(_MUTATING_ARGS, engine, method)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stderr


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_failed_load_leaves_the_engine_empty(cls: Any) -> None:
    e = cls(8)
    with pytest.raises(TypeError, match="weight must be an int"):
        e.load([("a", 1), ("b", "x")])
    assert (len(e), e.order(), e.weight) == (0, [], 0)
    e.load([("a", 2), ("b", 3)])
    assert (e.order(), e.weight) == ([("a", 2), ("b", 3)], 5)


class _EqRaises:
    """A key whose __eq__ raises once armed (its hash collides with ``other``)."""

    def __init__(self, other: str) -> None:
        self.h = hash(other)
        self.armed = False

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, o: object) -> bool:
        if self.armed:
            raise ValueError("eq failed")
        return self is o


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_failed_set_weights_changes_nothing(cls: Any) -> None:
    e = cls(8)
    for k in "abcd":
        e.add(k, 5)
    before = (e.order(), e.weight)
    with pytest.raises(TypeError, match="weight must be an int, got 'x'"):
        e.set_weights({"a": 1, "b": 1, "c": "x"})
    assert (e.order(), e.weight) == before
    with pytest.raises(OverflowError, match="total weight overflows int64"):
        e.set_weights({"a": 2**62, "b": 2**62, "c": 1})
    assert (e.order(), e.weight) == before
    bad = _EqRaises("c")
    mapping: dict[Any, int] = {bad: 7, "a": 2}
    bad.armed = True
    with pytest.raises(ValueError, match="eq failed"):
        e.set_weights(mapping)
    assert (e.order(), e.weight) == before
    e.set_weights({"a": 2, "d": 3})
    assert sorted(e.order()) == [("a", 2), ("b", 1), ("c", 1), ("d", 3)]
    assert e.weight == 7


# the cycle collector's tp_clear drops the read buffer; run it directly (ctypes) and check that
# every call then refuses or works on the empty engine instead of touching the NULL buffer
_AFTER_TP_CLEAR = """
import ctypes, sys
from collections import deque
from perflayer.cache._engines_c import ARCEngine, LIRSEngine
cls = {"arc": ARCEngine, "lirs": LIRSEngine}[sys.argv[1]]
get_slot = ctypes.pythonapi.PyType_GetSlot
get_slot.restype = ctypes.c_void_p
get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
Py_tp_clear = 51
tp_clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(get_slot(cls, Py_tp_clear))
e = cls(4)
e.add("a", 1)
tp_clear(e)
calls = {
    "get _buf": lambda: e._buf,
    "set _buf": lambda: setattr(e, "_buf", deque()),
    "add": lambda: e.add("b", 1),
    "access": lambda: e.access("b"),
    "set_weights": lambda: e.set_weights({}),
    "prepend": lambda: e.prepend(["z"]),
}
for name, f in calls.items():
    try:
        f()
        print(name, "ok")
    except RuntimeError as x:
        print(name, x)
print("len", len(e), e.order(), e.weight)
"""


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_buf_after_the_collectors_tp_clear_raises(engine: str) -> None:
    r = _child(_AFTER_TP_CLEAR, engine)
    assert r.returncode == 0, r.stderr
    name = {"arc": "ARCEngine", "lirs": "LIRSEngine"}[engine]
    msg = f"{name}: used after the garbage collector cleared it"
    lines = r.stdout.splitlines()
    assert lines[:-1] == [
        f"{call} {msg}"
        for call in ("get _buf", "set _buf", "add", "access", "set_weights", "prepend")
    ]
    assert lines[-1] == "len 0 [] 0"


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_weight_total_overflow_raises_and_changes_nothing(cls: Any) -> None:
    e = cls(4)
    e.add("a", 2**62)
    e.add("b", 1)
    before = (e.order(), e.weight, len(e))
    with pytest.raises(OverflowError, match="total weight would overflow int64"):
        e.add("c", 2**62)  # a new key
    assert (e.order(), e.weight, len(e)) == before
    with pytest.raises(OverflowError, match="total weight would overflow int64"):
        e.update("b", 2**62)  # a resident key: no hit is recorded either
    assert (e.order(), e.weight, len(e)) == before
    e.update("a", 2**62 + 5)  # replaces a's weight: the total fits
    assert e.weight == 2**62 + 6
    f = cls(4)
    with pytest.raises(OverflowError, match="total weight would overflow int64"):
        f.load([("a", 2**62), ("b", 2**62)])
    assert (len(f), f.order(), f.weight) == (0, [], 0)
    g = cls(8)
    g.add("a", 2**63 - 2)
    with pytest.raises(OverflowError, match="total weight would overflow int64"):
        g.prepend(["x", "y", "z"])
    assert (g.order(), g.weight) == ([("a", 2**63 - 2)], 2**63 - 2)


def test_lirs_lists_survives_a_key_that_removes_itself_while_hashed() -> None:
    e = CLIRS(8)
    armed = [False]

    class K:
        def __init__(self, i: int) -> None:
            self.i = i

        def __hash__(self) -> int:
            if armed[0]:
                armed[0] = False
                e.remove(self)  # frees the node while _lists() fills its dict
                armed[0] = True
            return self.i

        def __eq__(self, o: object) -> bool:
            return self is o

    keys = [K(i) for i in range(6)]
    for k in keys:
        e.add(k, 1)
    armed[0] = True
    states = e._lists()[3]
    armed[0] = False
    assert sorted(k.i for k in states) == list(range(6))  # the snapshot taken before the calls
    assert len(e) == 0 and e.weight == 0
    gc.collect()


# order() and _lists() allocate while they walk the engine's lists; a collection they trigger may
# run a finalizer that calls back in. The walks hold the engine busy, so a remove() from there is
# refused (it used to free nodes under the walk: a use-after-free)
_FINALIZER_DURING_WALK = """
import gc, sys
from perflayer.cache._engines_c import ARCEngine, LIRSEngine
e = {"arc": ARCEngine, "lirs": LIRSEngine}[sys.argv[1]](200)
for i in range(100):
    e.add("k%d" % (i + 10**6), 1)  # fresh str objects: the engine holds their only references
victims = [k for k, _ in e.order()][1:]
log = []
inside = [False]
class Bomb:
    def __init__(self): self.me = self  # a cycle: only the collector frees it
    def __del__(self):
        if inside[0] and victims:
            k = victims.pop()
            try:
                e.remove(k)
                log.append("removed")
            except RuntimeError:
                log.append("refused")
            Bomb()  # the next collection calls in again
walk = getattr(e, sys.argv[2])
gc.collect()
Bomb()
gc.set_threshold(1)  # a collection at nearly every allocation
inside[0] = True
out = walk()
inside[0] = False  # no allocation between the walk's return and this store
gc.set_threshold(700)
# removals may happen before the walk starts (its first allocations), none once it has
first = log.index("refused")
assert "removed" not in log[first:] and first <= 3, log
assert out == walk(), "the walk did not see the engine as it is"
print("ok")
"""


@pytest.mark.parametrize("walk", ["order", "_lists"])
@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_a_finalizer_during_a_walk_cannot_mutate(engine: str, walk: str) -> None:
    r = _child(_FINALIZER_DURING_WALK, engine, walk)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stderr


# one alphabet per str kind (ASCII, latin-1, UCS-2, UCS-4): equal keys compare by kind and bytes
_KINDS = ("k", "\u00e9", "\u20ac", "\U0001f600")


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_equal_str_keys_that_are_new_objects_hit(engine: str) -> None:
    """str keys rebuilt at every access (equal, never identical), of every kind: Python's hits."""
    py_cls, c_cls, state = _PAIRS[engine]
    py, cc = py_cls(40), c_cls(40)
    rng = random.Random(3)
    for _ in range(6_000):
        r = int(rng.paretovariate(1.0)) % 300
        k = "".join([_KINDS[r % 4], str(r)])  # a new object each time
        assert cc.access(k) == py.access(k)
        probe = "".join([_KINDS[(r + 1) % 4], str(r)])  # the same digits, another kind
        assert (probe in cc) == (probe in py)
    assert state(cc) == state(py)
    assert "".join([_KINDS[1], "1"]) in cc  # the hottest key


class _Str(str):
    """A str subclass whose == is counted (so it must be called, not bypassed)."""

    calls = 0

    def __eq__(self, other: object) -> bool:
        _Str.calls += 1
        return str.__eq__(self, other) is True

    __hash__ = str.__hash__


@pytest.mark.parametrize("cls", [CARC, CLIRS])
def test_a_str_subclass_keeps_its_eq(cls: Any) -> None:
    """The exact-str shortcut leaves a str subclass's __eq__ in charge."""
    e = cls(4)
    e.add(_Str("a"), 1)
    _Str.calls = 0
    assert e.access(_Str("a")) is True
    assert "a" in e  # a plain str against the stored subclass: the subclass's == decides
    assert _Str.calls >= 2


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_nodes_are_reused_through_clear_and_copy(engine: str) -> None:
    """Thousands of nodes (many arena chunks) made, forgotten, reused and copied: Python's state."""
    py_cls, c_cls, state = _PAIRS[engine]
    py, cc = py_cls(300), c_cls(300)
    for rnd in range(3):
        for i in range(4_000):
            k = (rnd * 7 + i) % 2_500 if i % 3 else 10_000 * (rnd + 1) + i
            assert cc.access(k) == py.access(k)
        assert state(cc) == state(py)
        twin = cc.copy()
        assert state(twin)[:3] == state(cc)[:3]
        for i in range(500):  # the copy's own nodes, then the original goes on
            twin.access(-i)
        del twin
        if rnd < 2:
            cc.clear()
            py.clear()
    assert state(cc) == state(py)


class _Deque(deque[Hashable]):
    """A deque subclass (its clear is the subclass's: the drain takes the general path)."""

    cleared = 0

    def clear(self) -> None:
        _Deque.cleared += 1
        super().clear()


@pytest.mark.parametrize("engine", ["arc", "lirs"])
@pytest.mark.parametrize("reads", [1, 31, 32, 33, 500])
@pytest.mark.parametrize("kind", ["deque", "subclass"])
def test_drain_of_few_and_many_reads(engine: str, reads: int, kind: str) -> None:
    """Up to 32 reads replay from a C array, more (or a deque subclass) from a list: alike."""
    py_cls, c_cls, state = _PAIRS[engine]
    make = deque if kind == "deque" else _Deque
    py, cc = py_cls(40, make(maxlen=_READ_BUFFER)), c_cls(40, make(maxlen=_READ_BUFFER))
    rng = random.Random(reads)
    _Deque.cleared = 0
    for _ in range(20):
        k = rng.randrange(100)
        assert cc.add(k, 1) == py.add(k, 1)
        batch = [rng.randrange(100) for _ in range(reads)]
        py._buf.extend(batch)
        cc._buf.extend(batch)
        k = rng.randrange(100)
        assert cc.add(k, 2) == py.add(k, 2)
        assert not cc._buf and not py._buf
        assert state(cc) == state(py)
    if kind == "subclass":
        assert _Deque.cleared == 40  # both engines called the subclass's clear at every drain


@pytest.mark.parametrize("engine", ["arc", "lirs"])
def test_a_failing_read_in_a_drain_releases_the_rest(engine: str) -> None:
    """A buffered read whose == raises: Python's exception and state, no reference kept."""
    py_cls, c_cls, state = _PAIRS[engine]
    py, cc = py_cls(8), c_cls(8)
    for e in (py, cc):
        for k in ("a", "b", "c"):
            e.add(k, 1)
    bad, tail = _EqRaises("b"), ("after", "the", "failure")
    bad.armed = True
    base = sys.getrefcount(bad), sys.getrefcount(tail)
    for e in (py, cc):
        e._buf.extend(["a", bad, tail, "c"])
        with pytest.raises(ValueError, match="eq failed"):
            e.add("d", 1)
        assert not e._buf
    gc.collect()
    assert (sys.getrefcount(bad), sys.getrefcount(tail)) == base
    assert state(cc) == state(py)
