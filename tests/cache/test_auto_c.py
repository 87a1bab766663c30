"""The C per-access half of the default policy (``_auto_c.AutoCore``) is the Python one's twin.

Two ways to compare. Whole policies: ``CAutoPolicy`` and ``AutoPolicy`` (the same deciding
mixin over the C and the Python ``AutoCore``) driven as ``perflayer.Cache`` drives them, with
updates and removes mixed in, give the same results, switches and state on the traces of
test_policy_auto.py. Bare cores: both ``AutoCore`` classes under a recording ``_decide`` that
scripts what the deciding half may do (swap the engine, toggle the twin, clear the buffer, zero the
counts, raise), on engines and simulations that log every call, make the same calls in the same
order with the same results and exceptions (hypothesis writes the operation streams). Then the
re-entrant cases (keys whose ``__eq__`` rewrites the core, a raising ``_decide``), the attribute
semantics, references and the cycle collector.
"""

from __future__ import annotations

import gc
import random
import sys
import weakref
from collections import deque
from collections.abc import Hashable, Sequence
from typing import Any

import pytest
from benchmarks.hitratio import PolicySim
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cache.test_policy_auto import churn, trace_keys
from tests.cache.test_tinylfu_c import Key

from perflayer.cache import _policy_adaptive as _ad
from perflayer.cache._policy import TinyLFUPolicy, tinylfu_class
from perflayer.cache._policy_auto import (
    AutoCore,
    AutoPolicy,
    CAutoPolicy,
    auto_class,
)

_auto_c = pytest.importorskip("perflayer.cache._auto_c")
CCore: Any = _auto_c.AutoCore


# -- whole policies ---------------------------------------------------------------------------


class _BlindSim(PolicySim):
    """PolicySim whose misses are sets without a get half the time (no ``miss`` before ``add``)."""

    def __init__(self, policy: Any, capacity: int, seed: int) -> None:
        super().__init__(policy, capacity)
        self.rng = random.Random(seed)

    def access(self, key: Hashable) -> bool:
        if key in self.resident or self.rng.random() < 0.5:
            return super().access(key)
        for v in self.policy.add(key, 1):
            self.resident.remove(v)
        self.resident.add(key)
        return False


def _drive(
    policy: Any, c: int, keys: Sequence[Hashable], seed: int, blind: bool = False
) -> list[Any]:
    """Replay ``keys`` as a Cache would, with ~2% removes and ~2% updates; return every result.

    ``blind``: half the misses are sets without a get.
    """
    rng = random.Random(seed)
    sim = _BlindSim(policy, c, seed) if blind else PolicySim(policy, c)
    out: list[Any] = []
    for i, k in enumerate(keys):
        out.append(sim.access(k))
        _r, victims = churn(sim, rng, rng.randint(1, 3))
        if victims is not None:
            out.append(victims)
        if i % 997 == 0:
            out.append((policy._seen, policy._rhits, list(policy._pat), len(policy._buf)))
    out.append(
        (
            policy.engine,
            policy.history,
            policy.switches,
            policy.locked,
            policy._deficit,
            policy._seen,
            policy._rhits,
            list(policy._pat),
            list(policy._buf),
            policy._engine.order(),
            policy.weight,
            None if not policy._sims or policy._sims[0] is None else policy._sims[0].order(),
        )
    )
    return out


@pytest.mark.parametrize(
    ("trace", "c"),
    [
        ("zipf", 300),
        ("phases6", 100),
        ("phases3", 200),
        ("loop", 200),
        ("zipf", 2_048),
        ("str:phases6", 100),
        ("blind:loop", 200),
        ("blind:phases3", 200),
    ],
)
def test_whole_policies_agree_through_switches(trace: str, c: int) -> None:
    """CAutoPolicy and AutoPolicy: the same victims, switches, account and state, op by op.

    ``str:`` keys take the C core's prefetch of every structure's first slot (exact strs only);
    ``blind:`` makes half the misses sets without a get (the twin takes them as add).
    """
    blind = trace.startswith("blind:")
    keys: list[Any] = trace_keys(trace.removeprefix("str:").removeprefix("blind:"))
    if trace.startswith("str:"):
        keys = [f"key:{k}" for k in keys]
    c_out = _drive(CAutoPolicy(c, None), c, keys, seed=c, blind=blind)
    py_out = _drive(AutoPolicy(c, None), c, keys, seed=c, blind=blind)
    assert c_out == py_out
    if not trace.endswith("zipf"):
        assert c_out[-1][2] > 0  # it switched


def test_auto_class_picks_the_c_half_unless_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto_class() is CAutoPolicy on the C build and AutoPolicy under PERFLAYER_PURE_PYTHON."""
    assert auto_class() is CAutoPolicy
    assert isinstance(CAutoPolicy(10, None), CCore)
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    assert auto_class() is AutoPolicy


# -- bare cores -------------------------------------------------------------------------------


class Rec:
    """An engine or simulation that logs every call: (name, method, args, result or error)."""

    def __init__(self, name: str, inner: Any, log: list[Any]) -> None:
        self.name = name
        self.inner = inner
        self.log = log
        self.fail: set[tuple[str, Hashable]] = set()  # (method, key) pairs that raise

    def _call(self, method: str, *args: Any) -> Any:
        # a Rec among the arguments (step's ``other``) is logged by name: the two cores' logs
        # hold different but equivalent Recs
        shown = tuple(a.name if isinstance(a, Rec) else a for a in args)
        if (method, args[0]) in self.fail:
            self.log.append((self.name, method, shown, "boom"))
            raise ValueError(f"{self.name}.{method} boom")
        try:
            r = getattr(self.inner, method)(*args)
        except Exception as exc:
            self.log.append((self.name, method, shown, type(exc).__name__, str(exc)))
            raise
        self.log.append((self.name, method, shown, r))
        return r

    def __contains__(self, key: object) -> bool:
        r: bool = self._call("__contains__", key)
        return r

    def access(self, key: Hashable) -> bool:
        r: bool = self._call("access", key)
        return r

    def step(self, key: Hashable, other: Any = None, *write: bool) -> int | None:
        r: int | None = self._call("step", key, other, *write)
        return r

    def hit(self, key: Hashable) -> None:
        self._call("hit", key)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        r: list[Hashable] = self._call("add", key, weight)
        return r

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        r: list[Hashable] = self._call("update", key, weight)
        return r

    def remove(self, key: Hashable) -> None:
        self._call("remove", key)


ACTIONS = (
    "keep",
    "zero",
    "swap",
    "twin",
    "ctwin",
    "clear",
    "raise",
    "lirs",
    "batch",
    "count",
    "a0",
)


def _decider(base: type) -> type:
    """Return a core class over ``base`` whose ``_decide`` logs and follows a script."""

    class Core(base):  # type: ignore[misc,valid-type]
        log: list[Any]
        script: Sequence[str]
        engines: dict[str, Rec]
        twin: Rec
        n: int

        def _decide(self) -> None:
            self.log.append(("decide", list(self._batch), self._seen, self._rhits, list(self._pat)))
            act = self.script[self.n % len(self.script)] if self.script else "zero"
            self.n += 1
            if act == "keep":  # decide again at the next observation
                return
            self._pat[:] = [0] * 8
            self._seen = 0
            self._rhits = 0
            if act == "swap":
                name = "t1" if self._engine.name == "t0" else "t0"
                self._engine = self.engines[name]
                self._tiny = True
            elif act == "twin":
                self._twin = self.twin if self._twin is None else None
            elif act == "a0":  # the twin stepped through another callable (a view's), or not
                self._a0 = self.twin.step if self._a0 is None else None
            elif act == "ctwin":  # a C TinyLFU twin (unlogged; the C core keeps its access)
                self._twin = self.ctwin if self._twin is None else None
            elif act == "clear":
                self._buf.clear()
            elif act == "raise":
                raise ValueError("decide boom")
            elif act == "lirs":
                self._engine = self.engines["lirs"]
                self._tiny = False
            elif act == "batch":
                self._batch.append("seen by _decide only")
            elif act == "count":  # count the twin's absent residents afresh: kept from now on
                self._absent = -1
                self.log.append(("count", self._missing()))

    return Core


PyDecider = _decider(AutoCore)
CDecider = _decider(CCore)


def _core(cls: type, c: int = 8, epoch: int = 5, script: Sequence[str] = ()) -> Any:
    """Return a bare core of ``cls`` on logging C engines (a fresh, identical set per call)."""
    log: list[Any] = []
    buf: deque[Hashable] = deque(maxlen=16)
    tiny = tinylfu_class()
    core = cls()
    core.log = log
    core.script = script
    core.n = 0
    core.engines = {
        "t0": Rec("t0", tiny(c, None), log),
        "t1": Rec("t1", tiny(c, None), log),
        "lirs": Rec("lirs", _ad._engine_class("lirs")(c, buf), log),
    }
    core.twin = Rec("twin", tiny(c, None), log)
    core.ctwin = tiny(c, None)
    core.a1rec = Rec("a1", _ad._engine_class("lirs")(c), log)
    core.a2rec = Rec("a2", _ad._engine_class("arc")(c), log)
    core._buf = buf
    core._engine = core.engines["t0"]
    core._tiny = True
    core._twin = None
    core._a1 = core.a1rec.access
    core._a2 = core.a2rec.access
    core._r1 = core.a1rec.remove
    core._r2 = core.a2rec.remove
    core._epoch = epoch
    core._seen = 0
    core._rhits = 0
    core._pat = [0] * 8
    core._batch = []
    core._absent = -1
    return core


def _apply(core: Any, op: tuple[Any, ...]) -> Any:
    """Run one operation on ``core``; return its result or its exception as (type, message)."""
    kind = op[0]
    try:
        if kind == "read":
            core._buf.append(op[1])
            return None
        if kind == "add":
            return core.add(op[1], op[2])
        if kind == "update":
            return core.update(op[1], op[2])
        if kind == "remove":
            return core.remove(op[1])
        if kind == "observe":  # (keys, decide), or (keys, decide, write)
            return core._observe(list(op[1]), *op[2:])
        if kind == "hand_over":
            return core._hand_over()
        if kind == "epoch":
            core._epoch = op[1]
            return None
        if kind == "fail":  # make one simulation raise on one key from now on
            rec = {"a1": core.a1rec, "a2": core.a2rec, "e": core._engine}[op[1]]
            method = "__contains__" if op[1] == "e" else "access"
            rec.fail.add((method, op[2]))
            return None
    except Exception as exc:  # the twins must raise alike
        return (type(exc).__name__, str(exc))
    raise AssertionError(op)  # pragma: no cover


def _state(core: Any) -> tuple[Any, ...]:
    """Return what the deciding half could read."""
    return (
        list(core._batch),
        core._seen,
        core._rhits,
        list(core._pat),
        list(core._buf),
        bool(core._tiny),
        core._engine.name,
        None if core._twin is None else getattr(core._twin, "name", "ctwin"),
        core._epoch,
        core._absent,
        core._a0 is None,
    )


def _twins(ops: Sequence[tuple[Any, ...]], script: Sequence[str], epoch: int = 5) -> None:
    """Run ``ops`` on a Python and a C core; assert the same results, calls and state."""
    py, c = (
        _core(PyDecider, epoch=epoch, script=script),
        _core(CDecider, epoch=epoch, script=script),
    )
    for op in ops:
        assert _apply(c, op) == _apply(py, op), op
        assert _state(c) == _state(py), op
    assert c.log == py.log


KEYS = st.integers(0, 24)
OPS = st.one_of(
    st.tuples(st.just("read"), KEYS),
    st.tuples(st.just("read"), KEYS),
    st.tuples(st.just("add"), KEYS, st.integers(1, 3)),
    st.tuples(st.just("update"), KEYS, st.integers(1, 3)),
    st.tuples(st.just("remove"), KEYS),
    st.tuples(st.just("observe"), st.lists(KEYS, max_size=6), st.booleans()),
    st.tuples(st.just("observe"), st.lists(KEYS, max_size=6), st.booleans(), st.booleans()),
    st.tuples(st.just("hand_over")),
    st.tuples(st.just("epoch"), st.sampled_from([0, 1, 3, 5])),
    st.tuples(st.just("fail"), st.sampled_from(["a1", "a2", "e"]), KEYS),
)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(OPS, max_size=120),
    script=st.lists(st.sampled_from(ACTIONS), max_size=6),
    epoch=st.sampled_from([0, 1, 4, 5]),
)
def test_bare_cores_make_the_same_calls(
    ops: list[tuple[Any, ...]], script: list[str], epoch: int
) -> None:
    """Any stream of calls, any scripted decisions: the same calls, results and exceptions."""
    _twins(ops, script, epoch)


@pytest.mark.parametrize("seed", range(6))
def test_long_random_streams_make_the_same_calls(seed: int) -> None:
    """Long seeded streams (many epochs, every scripted action) through both cores."""
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    for _ in range(3_000):
        r = rng.random()
        k = int(rng.paretovariate(1.0)) % 40
        if r < 0.55:
            ops.append(("read", k))
        elif r < 0.85:
            ops.append(("add", k, rng.randint(1, 3)))
        elif r < 0.9:
            ops.append(("update", k, 2))
        elif r < 0.95:
            ops.append(("remove", k))
        elif r < 0.97:
            ops.append(("observe", [rng.randrange(40) for _ in range(5)], rng.random() < 0.5))
        elif r < 0.99:
            ops.append(("hand_over",))
        elif r < 0.995:
            ops.append(("epoch", rng.choice([0, 2, 5, 9])))
        else:
            ops.append(("fail", rng.choice(["a1", "a2", "e"]), rng.randrange(40)))
    script = [rng.choice(ACTIONS) for _ in range(7)]
    _twins(ops, script, epoch=rng.choice([3, 5, 8]))


def test_a_new_twin_is_asked_not_the_old_one() -> None:
    """Replacing a C twin (whose access the C core keeps) asks the new twin from then on."""
    pats = []
    for cls in (PyDecider, CDecider):
        core = _core(cls, epoch=1_000)
        full, empty = tinylfu_class()(8, None), tinylfu_class()(8, None)
        for k in range(4):
            full.add(k, 1)
        core._twin = full
        core._observe([0, 1, 2, 3], False)
        core._twin = empty
        core._observe([0, 1, 2, 3], False)
        core._twin = None
        core._observe([0, 1], False)
        core._twin = full
        core._observe([0, 9], False)
        pats.append(list(core._pat))
    assert pats[0] == pats[1]
    assert pats[0][1] + pats[0][3] + pats[0][5] + pats[0][7] == 5  # full: 4 + 1 twin hits


class FakeTwin:
    """A twin whose order() lists what it is given (odd items included)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def order(self) -> list[Any]:
        return list(self.items)


def _missing_both(core: Any) -> tuple[Any, Any]:
    """Return _missing() of the C core and of the Python core on ``core``'s state."""
    out = []
    for f in (CCore._missing, AutoCore._missing):
        core._absent = -1  # counted, not the kept count
        try:
            out.append(f(core))
        except Exception as exc:  # the twins must raise alike
            out.append((type(exc).__name__, str(exc)))
    return out[0], out[1]


def test_missing_counts_as_the_python_one() -> None:
    """_missing(): the twin's residents the engine lacks, as AutoCore._missing, odd items too."""
    for trace, c in (("phases6", 100), ("loop", 200)):
        policy = CAutoPolicy(c, None)
        sim = PolicySim(policy, c)
        keys = trace_keys(trace)
        counts = []
        for i, k in enumerate(keys):
            sim.access(k)
            if i % 500 == 0:
                c_count, py_count = _missing_both(policy)
                assert c_count == py_count
                counts.append(c_count)
        assert policy.switches and max(counts) > 0
    core = _core(CDecider)
    for k in range(5):
        core.add(k, 1)
    assert _missing_both(core) == (0, 0)  # no twin
    for items in (
        [(1, 1), [7, 1], (8, 1)],
        [(1, 1), (2,)],
        [(1, 1), (2, 1, 3)],
        [(1, 1), 5],
        [(1, 1), "ab"],
        [(1, 1), range(9, 11)],
    ):
        core._twin = FakeTwin(items)
        c_count, py_count = _missing_both(core)
        assert c_count == py_count, items
    core._twin = FakeTwin([(1, 1), (2, 1)])
    core._engine.fail.add(("__contains__", 2))
    assert _missing_both(core) == (("ValueError", "t0.__contains__ boom"),) * 2


# -- re-entrancy ------------------------------------------------------------------------------


def test_decide_swapping_the_engine_sends_the_write_to_the_new_one() -> None:
    """The engine is read after _decide: the write goes to the engine _decide installed."""
    for cls in (CDecider, PyDecider):
        core = _core(cls, epoch=1, script=["swap"])
        assert core.add(1, 1) == []
        assert core._engine.name == "t1"
        calls = [(name, m) for name, m, *_ in core.log if name != "decide"]
        assert calls == [("t0", "__contains__"), ("a1", "access"), ("a2", "access"), ("t1", "add")]
    _twins([("read", 3), ("read", 4), ("add", 5, 1), ("read", 5), ("add", 5, 1)], ["swap"], 1)


def test_decide_clearing_the_buffer_skips_the_hand_over() -> None:
    """A buffer cleared by _decide is not handed to the engine (no hit calls)."""
    core = _core(CDecider, epoch=1, script=["clear"])
    core._buf.extend([1, 2])
    assert core.add(3, 1) == []
    assert not any(m == "hit" for _n, m, *_ in core.log)
    assert ("t0", "add", (3, 1), []) in core.log
    _twins([("read", 1), ("read", 2), ("add", 3, 1), ("read", 3), ("update", 3, 2)], ["clear"], 1)


def test_a_raising_decide_propagates_and_counts_the_observation() -> None:
    """_decide raising: the write raises before the engine, the counts stay, _batch is reset."""
    core = _core(CDecider, epoch=2, script=["raise"])
    core._buf.extend([1, 2])
    with pytest.raises(ValueError, match="decide boom"):
        core.add(3, 1)
    decision = core.log[-1]
    assert decision[:3] == ("decide", [1, 2, 3], 3) and sum(decision[4]) == 3
    assert not any(m == "add" for _n, m, *_ in core.log)
    assert core._batch == [] and core._seen == 0  # the script zeroed it before raising
    assert list(core._buf) == [1, 2]  # not handed over: the call stopped at _decide
    # the Python twin makes the same calls and resets _batch too
    _twins([("read", 1), ("read", 2), ("add", 3, 1), ("add", 4, 1)], ["raise"], 2)


def test_a_snapshot_emptied_by_a_callback_is_read_safely() -> None:
    """A callback that reaches the observed snapshot (gc.get_referrers) and empties it: the C
    loop stops as Python's for loop does, instead of reading freed keys (HR's review)."""

    class K:
        def __init__(self, n: int) -> None:
            self.n = n

        def __hash__(self) -> int:
            return self.n

    class Eng:
        def __contains__(self, k: K) -> bool:
            if k.n == 0:
                for r in gc.get_referrers(k):
                    if type(r) is list:
                        r.clear()
                core._buf.clear()
            return False

        def add(self, k: K, w: int) -> list[K]:
            return []

    class Core(CCore):  # type: ignore[misc]
        def _decide(self) -> None:
            pass

    core = Core()
    core._buf = deque(maxlen=64)
    core._engine, core._tiny, core._twin = Eng(), False, None
    core._a1 = core._a2 = lambda _k: False
    core._epoch, core._seen, core._rhits, core._pat, core._batch = 10**6, 0, 0, [0] * 8, []
    core._absent = -1
    core._buf.extend(K(i) for i in range(40))
    assert core.add(K(999), 1) == []
    # the first key was observed, then the snapshot was empty: one access, none seen after
    assert core._pat == [1, 0, 0, 0, 0, 0, 0, 0] and core._seen == 0


def test_a_raising_simulation_keeps_the_keys_done() -> None:
    """A simulation raising mid-observation: the keys before it are counted, none after."""
    core = _core(CDecider, epoch=100)
    core.a2rec.fail.add(("access", 2))
    core._buf.extend([1, 2, 3])
    with pytest.raises(ValueError, match=r"a2\.access boom"):
        core.add(4, 1)
    assert sum(core._pat) == 1 and core._seen == 0 and core._rhits == 0
    assert list(core._buf) == [1, 2, 3]
    _twins([("fail", "a2", 2), ("read", 1), ("read", 2), ("read", 3), ("add", 4, 1)], [], 100)


def _reentrant(cls: type) -> tuple[Any, Key]:
    """A core whose engine holds Key a; reading b (same hash) runs a.__eq__, which rewires it."""
    core = _core(cls, epoch=3, script=["zero"])
    a, b = Key("a", 5), Key("b", 5)
    core._buf.append(a)
    assert core.add(a, 1) == []  # resident in t0

    def rewire() -> None:
        a.on_eq = None
        core._engine = core.engines["t1"]
        core._a1 = core.a2rec.access  # the step read at the start is the one used
        del core._pat  # held by the observation already
        core._seen = 100
        core._buf.append(Key("c", 7))
        core._hand_over()  # a nested call: t1 takes the buffer

    a.on_eq = rewire
    core._buf.append(b)
    return core, b


def test_a_key_rewriting_the_core_mid_observation() -> None:
    """A key's __eq__ replacing the engine, a step and _pat mid-loop: both twins alike."""
    results = []
    for cls in (PyDecider, CDecider):
        core, b = _reentrant(cls)
        with pytest.raises(AttributeError, match="_pat"):
            core.add(b, 1)  # _decide reads self._pat, which the key deleted
        results.append((core.log, core._seen, core._rhits, core._engine.name, list(core._buf)))
        core._pat = [0] * 8
        assert core.add(Key("d", 9), 1) == []
        results.append((core.log, core._seen, list(core._pat)))
    assert results[0] == results[2]
    assert results[1] == results[3]


def test_a_key_raising_in_the_engine_lookup_propagates() -> None:
    """A raising __eq__ inside the contains test: the same exception, nothing else changed."""

    def boom() -> object:
        raise KeyError("eq boom")

    for cls in (CDecider, PyDecider):
        core = _core(cls)
        a, b = Key("a", 5), Key("b", 5)
        assert core.add(a, 1) == []
        a.on_eq = boom
        core._buf.append(b)
        seen, pat = core._seen, list(core._pat)
        with pytest.raises(KeyError, match="eq boom"):
            core.add(Key("x", 1), 1)
        assert (core._seen, core._pat, list(core._buf)) == (seen, pat, [b])


# -- attributes -------------------------------------------------------------------------------


def test_unset_attributes_raise_as_in_python() -> None:
    """An attribute never set raises the same AttributeError on both cores."""

    def fresh(base: type) -> Any:
        class Core(base):  # type: ignore[misc,valid-type]
            pass

        return Core()

    for attr in ("_epoch", "_buf", "_engine", "_tiny", "_twin", "_a1", "_a2", "_pat", "_absent"):
        errors = []
        for base in (AutoCore, CCore):
            core = _core(_decider(base))
            core._buf.append(1)  # so that add hands the buffer over (reading _tiny)
            delattr(core, attr)
            errors.append(_apply(core, ("add", 1, 1)))
            with pytest.raises(AttributeError, match=attr):
                getattr(core, attr)
        assert errors[0] == errors[1] and errors[0][0] == "AttributeError", attr
    for base in (AutoCore, CCore):
        with pytest.raises(AttributeError, match="'Core' object has no attribute '_epoch'"):
            fresh(base).add(1, 1)


def test_int_attributes() -> None:
    """_epoch, _seen, _rhits are ints of 64 bits: set, read, deleted; others raise by name."""
    core = CDecider()
    core._seen = 5
    assert core._seen == 5 and type(core._seen) is int
    core._seen += 2**40
    assert core._seen == 5 + 2**40
    del core._seen
    with pytest.raises(AttributeError, match="_seen"):
        core._seen  # noqa: B018
    with pytest.raises(TypeError, match=r"_epoch must be an int, got 1\.5"):
        core._epoch = 1.5
    with pytest.raises(OverflowError, match="_rhits must fit in 64 bits"):
        core._rhits = 2**63
    core._rhits = -(2**63)
    assert core._rhits == -(2**63)
    core.other = 1  # the subclass's own attributes live in __dict__
    assert core.__dict__ == {"other": 1}


def test_keyword_arguments_and_bad_arity() -> None:
    """add/update/remove take keywords as the Python methods do; a bad call is a TypeError."""
    for cls in (CDecider, PyDecider):
        core = _core(cls)
        assert core.add(key=1, weight=1) == []
        assert core.update(1, weight=2) == []
        assert core.remove(key=1) is None
        with pytest.raises(TypeError):
            core.add(1)
        with pytest.raises(TypeError):
            core.add(1, 1, 1)
        with pytest.raises(TypeError):
            core.remove(1, key=1)
        with pytest.raises(TypeError):
            core.update(1, wait=1)
    with pytest.raises(NotImplementedError):
        CCore()._decide()


# -- references and the cycle collector -------------------------------------------------------


def test_no_reference_is_kept_or_lost() -> None:
    """Keys, engines and steps keep their reference counts through every path, errors included."""
    core = _core(
        CDecider, epoch=2, script=["zero", "raise", "swap", "twin", "count", "keep", "lirs"]
    )
    key = "a key"
    obj = Key("obj", 3)
    engine, a1 = core._engine, core._a1
    base = (sys.getrefcount(obj), sys.getrefcount(engine), sys.getrefcount(a1))
    core.a2rec.fail.add(("access", "fails"))
    for i in range(300):
        core._buf.extend([obj, obj, key])
        _apply(core, ("add", obj, 1))
        _apply(core, ("update", obj, 2))
        _apply(core, ("observe", [obj, key], i % 2 == 0))
        core._buf.extend([obj, "fails", obj])
        _apply(core, ("add", obj, 1))
        core._buf.append(obj)
        _apply(core, ("remove", obj))
        _apply(core, ("remove", obj))
        core.log.clear()
    core._buf.clear()
    core._batch = []
    for rec in [*core.engines.values(), core.twin, core.a1rec, core.a2rec]:
        rec.inner.clear()
    core._engine = engine
    core._a1 = a1
    gc.collect()
    assert (sys.getrefcount(obj), sys.getrefcount(engine), sys.getrefcount(a1)) == base


def test_no_leak_over_a_churning_stream() -> None:
    """Many distinct keys through a CAutoPolicy: live objects and blocks stay bounded."""
    policy = CAutoPolicy(64, None)
    sim = PolicySim(policy, 64)
    keys = [1_000 + i % 3_000 for i in range(40_000)]  # ints: the same replay every run
    for k in keys[:20_000]:
        sim.access(k)
    gc.collect()
    before = len(gc.get_objects()) + sys.getallocatedblocks()
    for i, k in enumerate(keys[20_000:]):
        sim.access(k)
        if i % 50 == 0 and sim.resident:
            victim = min(sim.resident)  # type: ignore[type-var]
            policy.remove(victim)
            sim.resident.discard(victim)
    gc.collect()
    after = len(gc.get_objects()) + sys.getallocatedblocks()
    # why 2,000: a leak of one object per call would be 20,000; the policy's own history and
    # tables may grow a little
    assert after - before < 2_000


def test_cycles_through_the_core_are_collected() -> None:
    """A policy in a cycle (its dict, its _batch, a key held by its engine) is collected."""

    class K:
        pass

    refs: list[weakref.ref[Any]] = []
    for where in ("dict", "batch", "key", "step"):
        policy: Any = CAutoPolicy(16, None)
        if where == "dict":
            policy.me = policy
        elif where == "batch":
            policy._batch = [policy]
        elif where == "key":
            k = K()
            k.policy = policy  # type: ignore[attr-defined]
            policy.miss(k)
            policy.add(k, 1)
            del k
        else:
            policy._a1 = policy.add  # a bound method of the policy itself
        refs.append(weakref.ref(policy))
        del policy
    gc.collect()
    assert [r() for r in refs] == [None] * 4


def test_the_pure_python_build_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERFLAYER_PURE_PYTHON builds AutoPolicy on Python TinyLFU; the C core is not in it."""
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    policy = auto_class()(100, None)
    assert type(policy) is AutoPolicy and not isinstance(policy, CCore)
    assert type(policy._engine) is TinyLFUPolicy


def test_remove_keeps_the_count_as_read_after_the_engine_lookup() -> None:
    """remove() with a kept count: Python code in ``key in engine`` resetting ``_absent``; both
    cores still ask the twin and store the count as read then (HR2's review, session 11)."""
    results = []
    for cls in (PyDecider, CDecider):
        core = _core(cls, epoch=0)
        core._twin = core.twin
        core.twin.inner.add(7, 1)  # the twin holds 7, the engine does not
        engine = core._engine
        engine.fail = _ResetOn(core, 7)  # type: ignore[assignment]
        core._absent = 1
        core.log.clear()
        core.remove(7)
        results.append((core._absent, core.log))
    assert results[0] == results[1]
    assert results[0][0] == -2 and ("twin", "__contains__", (7,), True) in results[0][1]


class _ResetOn(set[Any]):
    """A Rec's fail set whose membership test for (``__contains__``, key) resets the count."""

    def __init__(self, core: Any, key: Hashable) -> None:
        super().__init__()
        self.core, self.key = core, key

    def __contains__(self, item: object) -> bool:
        if item == ("__contains__", self.key):
            self.core._absent = -1
        return False
