"""The C TinyLFUPolicy makes the Python class's decisions, is safe with hostile keys, leaks none.

The extension is imported at module level on purpose: if it is not built (``make test`` builds
it), these tests fail instead of skipping.
"""

from __future__ import annotations

import gc
import random
import re
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cache import test_write_path_decisions as recorded
from tests.cache.test_engines_c import _KINDS as _STR_KINDS  # one alphabet per str kind
from tests.cache.test_engines_c import _Str  # a str subclass whose == is counted

from perflayer.cache import _policy
from perflayer.cache._policy import TinyLFUPolicy as PyTinyLFU
from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFU
from perflayer.errors import ConfigError

# -- the recorded decisions ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(recorded.SEQUENCES))
def test_c_policy_evicts_the_recorded_keys(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C class reproduces the pinned digests of test_write_path_decisions."""
    # replay() reads the window share of instances of its module's TinyLFUPolicy
    monkeypatch.setattr(recorded, "TinyLFUPolicy", CTinyLFU)
    seq = recorded.SEQUENCES[name]()
    digest = recorded.replay(*seq, cls=CTinyLFU, climber="sample", ghost=False)  # type: ignore[arg-type]
    assert digest == recorded.DIGESTS[name]
    shadow = recorded.replay(*seq, cls=CTinyLFU, ghost=False)  # type: ignore[arg-type]
    assert shadow == recorded.SHADOW_DIGESTS[name]
    # the default is the shadow climber with the ghost admission, in both classes
    assert recorded.replay(*seq, cls=CTinyLFU) == recorded.GHOST_DIGESTS[name]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(recorded.SEQUENCES))
def test_c_shadow_climber_evicts_the_recorded_keys(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With climber="shadow" the C class reproduces SHADOW_DIGESTS and SHADOW_MOVES."""
    monkeypatch.setattr(recorded, "TinyLFUPolicy", CTinyLFU)
    max_entries, max_weight, ops = recorded.SEQUENCES[name]()
    c = CTinyLFU(max_entries, max_weight, climber="shadow", ghost=False)
    assert recorded.drive(c, max_entries, max_weight, ops) == recorded.SHADOW_DIGESTS[name]  # type: ignore[arg-type]
    assert c.climber_moves == recorded.SHADOW_MOVES[name]


# -- differential: the same calls, the same answers ---------------------------------------------

Op = tuple[str, int, int]


def _key(i: int, str_keys: bool) -> Hashable:
    return f"k{i}" if str_keys else i


def _run_both(
    ops: list[Op],
    max_entries: int | None,
    max_weight: int | None,
    str_keys: bool,
    py_factory: Callable[[int | None, int | None], Any] | None = None,
    **options: Any,
) -> tuple[Any, CTinyLFU]:
    """Drive a Python and a C policy as the cache does and assert the same answer to each call.

    The Python policy is ``PyTinyLFU(max_entries, max_weight, **options)`` unless
    ``py_factory(max_entries, max_weight)`` builds it (the shadow-climber prototype). Returns both
    policies, after a last write and a resize to one entry.
    """
    if py_factory is None:
        py = PyTinyLFU(max_entries, max_weight, **options)
    else:
        py = py_factory(max_entries, max_weight)
    c = CTinyLFU(max_entries, max_weight, **options)
    resident: dict[Hashable, int] = {}
    # the core rejects a single value over max_weight up front, so no weight exceeds the bound
    cap = max_weight

    def both(method: str, *args: Any) -> Any:
        a = getattr(py, method)(*args)
        b = getattr(c, method)(*args)
        assert a == b, (method, args, a, b)
        assert type(a) is type(b)
        return a

    for step, (op, k, w) in enumerate(ops):
        key = _key(k, str_keys)
        if cap is not None and op != "z":
            w = min(w, cap)
        if op == "r":  # cache-aside read
            if key in resident:
                both("hit", key)
                continue
            both("miss", key)
            victims = both("add", key, w)
            resident[key] = w
        elif op == "w":  # a write: overwrite or insert
            victims = both("update" if key in resident else "add", key, w)
            resident[key] = w
        elif op == "a":  # add() of a resident key goes to update()
            victims = both("add", key, w)
            resident[key] = w
        elif op == "u":  # update() of any key: a non-resident one goes to add()
            victims = both("update", key, w)
            resident[key] = w
        elif op == "h":  # a stray read: a hit on a key removed a moment ago, or a bare miss
            both("hit" if k % 2 else "miss", key)
            victims = []
        elif op == "d":
            both("remove", key)
            resident.pop(key, None)
            victims = []
        elif op == "z":
            bounds = (w or max_entries, max_weight)
            if max_weight is not None and w:
                bounds = (max_entries, w * 3)
            victims = both("resize", *bounds)
            cap = bounds[1]
        else:
            both("clear")
            resident.clear()
            victims = []
        for v in victims:
            del resident[v]
        assert (key in py) == (key in c), step
        assert len(py) == len(c) == len(resident), step
        assert py.window_fraction == c.window_fraction, step
    assert py.weight == c.weight
    assert py.window_fraction == c.window_fraction
    assert (py.max_entries, py.max_weight) == (c.max_entries, c.max_weight)
    # a last write replays the buffered reads (and may climb); then shrinking to one entry
    # evicts every other key in an order that shows the regions' order and the frequencies
    both("add", "last-write", 1)
    assert py.window_fraction == c.window_fraction
    both("resize", 1, None)
    assert len(py) == len(c) == 1
    return py, c


def _ops(rng: random.Random, n: int, universe: int, max_w: int, mix: str) -> list[Op]:
    """Seeded ops over skewed keys; ``mix`` weights the kinds: r, w, a, u, h, d, z, c."""
    weights = [int(x) for x in mix.split(",")]
    kinds = ["r", "w", "a", "u", "h", "d", "z", "c"]
    ops: list[Op] = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        # a skewed key: small ids are hot
        k = min(int(universe * rng.random() ** 2.5), universe - 1)
        if kind == "z":
            w = rng.choice([0, 1, 2, max(1, universe // 8), max(1, universe // 2)])
        else:
            w = rng.randint(1, max_w)
        ops.append((kind, k, w))
    return ops


CONFIGS: list[tuple[str, int | None, int | None, int, int, dict[str, Any]]] = [
    # (name, max_entries, max_weight, universe, max weight of one key, options)
    ("tiny", 1, None, 6, 1, {}),
    ("two", 2, None, 10, 1, {}),
    ("small", 8, None, 40, 1, {"read_buffer": 4}),
    ("medium", 200, None, 1_500, 1, {}),
    ("medium-static", 200, None, 1_500, 1, {"adaptive": False}),
    ("large", 3_000, None, 20_000, 1, {}),
    ("wide-window", 300, None, 2_000, 1, {"window": 0.5}),
    ("all-window", 50, None, 400, 1, {"window": 1.0, "read_buffer": 1}),
    ("near-all-window", 50, None, 400, 1, {"window": 0.9}),
    ("huge-half-window", 40_000, None, 200_000, 1, {"window": 0.5}),
    ("no-window", 50, None, 400, 1, {"window": 0.0}),
    ("weighted", None, 400, 600, 30, {}),
    ("weighted-both", 60, 500, 800, 20, {"read_buffer": 7}),
    ("weighted-big", None, 20_000, 6_000, 40, {}),
    ("weighted-tiny", None, 5, 20, 4, {}),
    ("weighted-wide", None, 300, 400, 10, {"window": 0.95}),
    ("unbounded", None, None, 300, 3, {}),
]

MIXES = {
    "reads": "90,4,1,1,3,1,0,0",
    "writes": "50,30,5,5,5,8,1,0",
    "churn": "40,20,5,5,10,15,3,1",
}


@pytest.mark.parametrize("climber", ["sample", "shadow"])
@pytest.mark.parametrize("str_keys", [False, True], ids=["int", "str"])
@pytest.mark.parametrize("mix", sorted(MIXES))
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_c_policy_matches_python_on_random_ops(
    config: tuple[str, int | None, int | None, int, int, dict[str, Any]],
    mix: str,
    str_keys: bool,
    climber: str,
) -> None:
    """Seeded random op streams get identical answers, op by op, from both classes."""
    name, max_entries, max_weight, universe, max_w, options = config
    rng = random.Random(f"{name}/{mix}/{str_keys}")
    n = 20_000 if universe >= 1_000 else 4_000
    ops = _ops(rng, n, universe, max_w, MIXES[mix])
    py, c = _run_both(ops, max_entries, max_weight, str_keys, climber=climber, **options)
    assert c.climber_moves == py.climber_moves


def test_c_policy_matches_python_through_aging_and_climbing() -> None:
    """A long phase-changing stream (loop, then Zipf, then scan) ages and climbs identically."""
    rng = random.Random(7)
    ops: list[Op] = []
    for i in range(30_000):
        ops.append(("r", i % 700, 1))  # a loop larger than the cache: window shrinks
    for _ in range(30_000):
        ops.append(("r", min(int(5_000 * rng.random() ** 3), 4_999), 1))
    for i in range(20_000):
        ops.append(("r", 10_000 + i // 3, 1))  # recency: window grows
    _run_both(ops, 500, None, False)
    _run_both(ops, None, 500, True)
    for climber in ("sample", "shadow"):
        # a count bound beside a weight bound: the sample climber even with climber="shadow"
        _run_both(ops, 450, 500, True, climber=climber)
    py, c = _run_both(ops, 500, None, False, climber="shadow")
    assert c.climber_moves == py.climber_moves > 0


def test_c_policy_matches_python_when_the_climber_moves_many_keys() -> None:
    """Big steps: the window grows out of protected, and shrinks past the 1,000-key transfer cap."""
    # a hot set far smaller than the cache: all of it in protected, probation empty, when the
    # climber first grows the window
    hot: list[Op] = [("r", i % 100, 1) for i in range(6_000)]
    _run_both(hot, 1_000, None, False)
    _run_both([(op, k, 1 + k % 3) for op, k, _ in hot], None, 1_500, False)
    # a 40,000-entry cache (steps of 2,500 keys): a fill, hits on the recent keys, then a scan
    ops: list[Op] = [("r", i, 1) for i in range(30_000)]
    for _ in range(4):
        ops.extend(("r", i, 1) for i in range(26_000, 30_000))
    ops.extend(("r", 100_000 + i, 1) for i in range(30_000))
    ops.extend(("r", 100_000 + i, 1) for i in range(20_000, 30_000))
    _run_both(ops, 40_000, None, False, window=0.5)
    py, c = _run_both(ops, 40_000, None, False, window=0.5, climber="shadow")
    assert c.climber_moves == py.climber_moves > 0


op_strategy = st.lists(
    st.tuples(
        st.sampled_from(["r", "r", "r", "w", "a", "u", "h", "d", "z", "c"]),
        st.integers(0, 30),
        st.integers(0, 6),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    ops=op_strategy,
    max_entries=st.one_of(st.none(), st.integers(1, 12)),
    max_weight=st.one_of(st.none(), st.integers(1, 40)),
    window=st.sampled_from([0.01, 0.0, 0.3, 1.0]),
    adaptive=st.booleans(),
    read_buffer=st.one_of(st.none(), st.integers(1, 6)),
    str_keys=st.booleans(),
    climber=st.sampled_from(["sample", "shadow"]),
)
def test_c_policy_matches_python_property(
    ops: list[Op],
    max_entries: int | None,
    max_weight: int | None,
    window: float,
    adaptive: bool,
    read_buffer: int | None,
    str_keys: bool,
    climber: str,
) -> None:
    """Any op sequence gets the same victims, lengths, weights and window share from both."""
    ops = [(op, k, max(w, 1) if op != "z" else w) for op, k, w in ops]
    py, c = _run_both(
        ops,
        max_entries,
        max_weight,
        str_keys,
        window=window,
        adaptive=adaptive,
        read_buffer=read_buffer,
        climber=climber,
    )
    assert c.climber_moves == py.climber_moves


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["recency", "phases", "zipf"]),
    seed=st.integers(0, 2**16),
    max_entries=st.integers(3, 40),
    window=st.sampled_from([0.01, 0.3, 1.0]),
    events=st.lists(
        st.tuples(st.integers(0, 5_999), st.sampled_from(["c", "z"]), st.integers(0, 50)),
        max_size=4,
    ),
)
def test_c_shadow_climber_matches_python_property(
    kind: str, seed: int, max_entries: int, window: float, events: list[tuple[int, str, int]]
) -> None:
    """Streams long enough to move the shadow climber, with clears and resizes, move it alike."""
    ops = _shadow_stream(kind, max_entries, 6_000, seed)
    for at, op, w in sorted(events, reverse=True):
        ops.insert(at, (op, 0, w))
    py, c = _run_both(ops, max_entries, None, False, window=window, climber="shadow")
    assert c.climber_moves == py.climber_moves


# -- construction and errors --------------------------------------------------------------------

BAD_CONSTRUCTIONS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((0, None), {}),
    ((-1, None), {}),
    ((None, 0), {}),
    ((1.5, None), {}),
    ((True, None), {}),
    ((None, "10"), {}),
    ((10, None), {"window": 1.5}),
    ((10, None), {"window": -0.1}),
    ((10, None), {"window": 2}),
    ((10, None), {"window": "0.5"}),
    ((10, None), {"window": float("nan")}),
    ((10, None), {"read_buffer": 0}),
    ((10, None), {"read_buffer": True}),
    ((10, None), {"read_buffer": 2.0}),
    ((10, None), {"window": 3, "read_buffer": 0}),
    ((10, None), {"climber": "Shadow"}),
    ((10, None), {"climber": None}),
    ((10, None), {"climber": 1}),
    ((10, None), {"window": 2, "climber": "x"}),
    ((10, None), {"read_buffer": 0, "climber": "x"}),
    ((0, None), {"climber": "x"}),
]


@pytest.mark.parametrize(("args", "kwargs"), BAD_CONSTRUCTIONS)
def test_bad_options_raise_the_same_config_error(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Bad bounds, window shares and read-buffer sizes raise the Python class's ConfigError."""
    with pytest.raises(ConfigError) as py_error:
        PyTinyLFU(*args, **kwargs)
    with pytest.raises(ConfigError) as c_error:
        CTinyLFU(*args, **kwargs)
    assert str(c_error.value) == str(py_error.value)


def test_bad_resize_raises_the_same_config_error_and_keeps_state() -> None:
    """resize() validates its bounds like the Python class and changes nothing on error."""
    c = CTinyLFU(4, None)
    for k in range(4):
        c.add(k, 1)
    bad: Any
    for bad in (0, -3, 2.5, False):
        with pytest.raises(ConfigError) as c_error:
            c.resize(bad, None)
        with pytest.raises(ConfigError) as py_error:
            PyTinyLFU(4, None).resize(bad, None)
        assert str(c_error.value) == str(py_error.value)
    assert len(c) == 4 and c.max_entries == 4


def test_defaults_and_properties_match() -> None:
    """Bounds, weight, window share, adaptive and the default read buffer read back the same."""
    for bounds in [(None, None), (10, None), (None, 50_000), (3_000, 10), (10**7, None)]:
        py = PyTinyLFU(*bounds)
        c = CTinyLFU(*bounds)
        assert (c.max_entries, c.max_weight) == (py.max_entries, py.max_weight)
        assert c.window_fraction == py.window_fraction
        assert c.weight == py.weight == 0
        assert c.read_buffer == _policy.read_buffer_size(bounds[0])
        assert c.adaptive is True
        assert c.climber == py.climber == "shadow"
        assert c.climber_moves == py.climber_moves == 0
        shadow = CTinyLFU(*bounds, climber="shadow")
        assert shadow.climber == PyTinyLFU(*bounds, climber="shadow").climber == "shadow"
    c = CTinyLFU(10, None, adaptive=False, window=1)
    assert c.adaptive is False
    assert c.window_fraction == 1.0
    c.adaptive = True
    assert c.adaptive is True


def test_bounds_past_int64_are_config_errors() -> None:
    """A bound that does not fit in 63 bits is refused with a message naming it."""
    with pytest.raises(ConfigError, match=re.escape(str(2**63))):
        CTinyLFU(None, 2**63)


def test_a_non_int_weight_is_a_type_error() -> None:
    """Weights are ints; anything else is refused before the policy changes."""
    c = CTinyLFU(4, None)
    with pytest.raises(TypeError, match="weight"):
        c.add("a", 1.5)  # type: ignore[arg-type]
    assert len(c) == 0
    assert c.add("a", 1) == []


def test_unhashable_keys_raise_type_error_and_the_policy_still_works() -> None:
    """An unhashable key raises TypeError from every method; the policy keeps working."""
    c = CTinyLFU(3, None)
    c.add("a", 1)
    with pytest.raises(TypeError):
        c.add([], 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.update({}, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.remove([])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        [] in c  # noqa: B015
    # a buffered unhashable read fails the next write's replay, not the read itself
    c.hit([])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.add("b", 1)
    assert len(c) == 1
    for k in "bcde":
        c.miss(k)
        c.add(k, 1)
    assert len(c) == 3


class Key:
    """A key with a chosen hash, whose __eq__ can raise or call back into a policy."""

    def __init__(self, name: str, h: int = 0) -> None:
        self.name = name
        self.h = h
        self.on_eq: Callable[[], object] | None = None

    def __hash__(self) -> int:
        return self.h

    def __eq__(self, other: object) -> bool:
        if self.on_eq is not None:
            self.on_eq()
        return isinstance(other, Key) and other.name == self.name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


def _boom() -> object:
    raise ValueError("boom")


def test_a_raising_eq_propagates_and_leaves_the_policy_usable() -> None:
    """__eq__ raising inside a lookup or the buffer check propagates; nothing is corrupted."""
    c = CTinyLFU(4, None)
    a, b = Key("a", 5), Key("b", 5)  # same hash: looking b up compares it with a
    assert c.add(a, 1) == []
    a.on_eq = _boom
    with pytest.raises(ValueError, match="boom"):
        c.add(b, 1)
    with pytest.raises(ValueError, match="boom"):
        b in c  # noqa: B015
    with pytest.raises(ValueError, match="boom"):
        c.remove(b)
    c.miss(a)  # the only buffered read: add() compares it with the new key
    with pytest.raises(ValueError, match="boom"):
        c.add(Key("x", 9), 1)
    a.on_eq = None
    assert len(c) == 1 and c.weight == 1
    assert a in c and b not in c
    assert c.add(b, 1) == []
    c.remove(a)
    assert len(c) == 1 and c.weight == 1
    assert [c.add(i, 1) for i in range(6)][-1] != []
    assert len(c) == 4


def test_a_raising_eq_in_the_replay_or_the_last_miss_check_propagates() -> None:
    """__eq__ raising while replaying reads, or in the last-miss check, leaves a usable policy."""
    c = CTinyLFU(8, None)
    a, b = Key("a", 5), Key("b", 5)
    c.add(a, 1)
    c.hit("x")
    c.hit(b)  # replaying b compares it with a
    a.on_eq = _boom
    with pytest.raises(ValueError, match="boom"):
        c.add("y", 1)
    a.on_eq = None
    m = Key("m", 77)
    c.miss("x2")
    c.miss(m)  # the replay's last miss: add() compares it with the new key
    m.on_eq = _boom
    with pytest.raises(ValueError, match="boom"):
        c.add("z", 1)  # after the replay
    with pytest.raises(ValueError, match="boom"):
        c.add("z", 1)  # with an empty buffer
    m.on_eq = None
    assert c.add("z", 1) == []
    assert len(c) == 2 and c.weight == 2 and a in c and "z" in c
    for k in range(10):
        c.miss(k)
        c.add(k, 1)
    assert len(c) == 8


def test_re_entrant_calls_raise_runtime_error_but_reads_are_recorded() -> None:
    """A write from inside __eq__ raises RuntimeError; hit/miss from there are just buffered."""
    c = CTinyLFU(4, None)
    a, b = Key("a", 5), Key("b", 5)
    c.add(a, 1)
    seen: list[str] = []

    def reenter() -> object:
        c.hit("x")
        c.miss("y")
        for call in (lambda: c.add("z", 1), lambda: c.remove("x"), c.clear):
            try:
                call()
            except RuntimeError as exc:
                seen.append(str(exc))
        try:
            c.resize(2, None)
        except RuntimeError as exc:
            seen.append(str(exc))
        return None

    a.on_eq = reenter
    assert c.add(b, 1) == []
    a.on_eq = None
    assert len(seen) == 4 and all("TinyLFUPolicy re-entered" in s for s in seen)
    assert len(c) == 2 and a in c and b in c and "z" not in c
    # the reads recorded from inside __eq__ are replayed by the next write
    assert c.add("w", 1) == []
    assert len(c) == 3


def test_hits_on_removed_keys_are_harmless() -> None:
    """hit() of a key that left is replayed as a miss, as the Python class does."""
    c = CTinyLFU(4, None)
    c.add("a", 1)
    c.remove("a")
    c.hit("a")
    assert c.add("b", 1) == []
    assert len(c) == 1


@pytest.mark.parametrize("climber", ["sample", "shadow"])
def test_reads_from_other_threads_during_writes_keep_the_bounds(climber: str) -> None:
    """hit/miss from two threads while the main thread writes: every interleaving stays sound."""
    c = CTinyLFU(50, None, read_buffer=64, climber=climber)
    start = threading.Barrier(3)

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(20_000):
            k = rng.randrange(200)
            (c.hit if k % 2 else c.miss)(k)

    threads = [threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    start.wait()
    rng = random.Random(3)
    resident: set[int] = set()
    for _ in range(20_000):
        k = rng.randrange(200)
        if rng.random() < 0.1:
            c.remove(k)
            resident.discard(k)
            continue
        victims = c.update(k, 1) if k in resident else c.add(k, 1)
        resident.add(k)
        assert k not in victims and len(set(victims)) == len(victims)
        assert all(isinstance(v, int) for v in victims)
        resident.difference_update(victims)
        assert len(c) == len(resident) <= 50
    for t in threads:
        t.join()
    assert all(k in c for k in resident)
    assert c.weight == len(resident)


# -- references: no leaks -------------------------------------------------------------------------


class Obj:
    """A plain hashable object that can be weakly referenced and hold a policy."""

    def __init__(self, i: int) -> None:
        self.i = i
        self.policy: object = None

    def __hash__(self) -> int:
        return self.i

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Obj) and other.i == self.i


def test_keys_are_released_after_remove_clear_eviction_and_drop() -> None:
    """Every key reference is dropped when the key leaves, and when the policy goes away."""
    # the sample climber: the shadow climber's shadows hold keys of their own (tested below)
    c = CTinyLFU(5, None, read_buffer=3, climber="sample")
    keys = [Obj(i) for i in range(40)]
    refs = [weakref.ref(k) for k in keys]
    evicted: list[object] = []
    for k in keys[:20]:
        c.miss(k)
        evicted.extend(c.add(k, 1))
        c.hit(k)
    assert len(c) == 5 and len(evicted) == 15
    c.remove(keys[19])
    for k in keys[20:30]:
        c.hit(k)  # more reads than the buffer holds: the oldest are dropped
    del keys[:30], k
    evicted.clear()
    gc.collect()
    alive = [i for i, r in enumerate(refs[:30]) if r() is not None]
    # resident keys, and the last three buffered reads, are still held
    assert len(alive) == 4 + 3
    assert all(i in range(20) or i in range(27, 30) for i in alive)
    c.clear()
    gc.collect()
    assert all(r() is None for r in refs[:30])
    for k in keys:
        c.add(k, 1)
        c.hit(k)
    del keys, k
    gc.collect()
    assert any(r() is not None for r in refs[30:])
    del c
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_key_policy_cycle_is_collected() -> None:
    """A key that refers to the policy holding it is freed by the cycle collector."""
    c = CTinyLFU(5, None)
    k = Obj(1)
    k.policy = c
    c.add(k, 1)
    c.hit(k)
    c.miss(Obj(2))
    other = Obj(3)
    other.policy = c
    c.hit(other)  # a cycle through the read buffer too
    ref = weakref.ref(k)
    ref_other = weakref.ref(other)
    del c, k, other
    gc.collect()
    assert ref() is None and ref_other() is None


def test_update_and_remove_keep_weights_like_python() -> None:
    """update() moves a key and changes the weight tallies exactly as the Python class does."""
    ops: list[Op] = [("w", i % 7, 1 + i % 5) for i in range(200)]
    _run_both(ops, 5, 12, False)


# -- the shadow climber ----------------------------------------------------------------------------
# Until the Python class has climber="shadow", the oracle is the prototype it was specified from
# (benchmarks/prototypes/shadow_climber.py, H3Policy): for count-bounded caches without clear or
# resize the two must make the same decisions.


def _h3(max_entries: int | None, max_weight: int | None) -> Any:
    from benchmarks.prototypes.shadow_climber import H3Policy

    return H3Policy(max_entries, max_weight)


def _recency(rng: random.Random, n: int, span: float, base: int = 0) -> list[int]:
    """Keys mostly re-read shortly after they first appear: a large window wins."""
    out: list[int] = []
    t = base
    for _ in range(n):
        if rng.random() < 0.3:
            t += 1
            out.append(t)
        else:
            out.append(max(base, t - int(rng.expovariate(1 / span))))
    return out


def _skewed(rng: random.Random, n: int, universe: int, base: int = 0) -> list[int]:
    """Zipf-like keys: small ids are hot (frequency wins: a small window)."""
    return [base + min(int(universe * rng.random() ** 3), universe - 1) for _ in range(n)]


def _shadow_stream(kind: str, cap: int, n: int, seed: int) -> list[Op]:
    """A seeded stream of cache-aside reads (and a few writes, stray reads, deletes)."""
    rng = random.Random(f"{kind}/{cap}/{seed}")
    keys: list[int]
    if kind == "zipf":
        keys = _skewed(rng, n, 5 * cap)
    elif kind == "loop":  # a loop a third larger than the cache
        keys = [i % (cap + cap // 3 + 1) for i in range(n)]
    elif kind == "scan-hot":  # a hot set of half the cache, and one-off keys
        keys = [
            rng.randrange(cap // 2 + 1) if rng.random() < 0.5 else 1_000_000 + i for i in range(n)
        ]
    elif kind == "recency":
        keys = _recency(rng, n, max(1.0, cap / 2))
    else:  # phases: recency, Zipf, a loop, recency again
        q = n // 4
        keys = (
            _recency(rng, q, max(1.0, cap / 2))
            + _skewed(rng, q, 3 * cap, 10**7)
            + [2 * 10**7 + i % (2 * cap) for i in range(q)]
            + _recency(rng, n - 3 * q, max(1.0, cap / 2), 3 * 10**7)
        )
    ops: list[Op] = []
    for k in keys:
        u = rng.random()
        if u < 0.02:
            ops.append(("w", k, 1))
        elif u < 0.025:
            ops.append(("h", k, 1))
        elif u < 0.03:
            ops.append(("d", k, 1))
        else:
            ops.append(("r", k, 1))
    return ops


# (capacity, accesses, stream, must the prototype move the window on it?)
_KINDS = ("zipf", "loop", "scan-hot", "recency", "phases")
SHADOW_CASES: list[tuple[int, int, str, bool]] = [
    *((2, 3_000, kind, False) for kind in ("zipf", "recency", "phases")),  # pinned at one unit
    *((10, 8_000, kind, kind in ("recency", "phases")) for kind in _KINDS),
    *((100, 20_000, kind, kind in ("recency", "phases")) for kind in _KINDS),
    # full shadows
    *((640, 40_000, kind, kind != "scan-hot") for kind in _KINDS),
    (1_000, 40_000, "phases", True),
    # one key in 8 sampled
    *((5_000, 100_000, kind, True) for kind in ("zipf", "loop", "recency", "phases")),
    # one key in 16 sampled
    *((16_000, 150_000, kind, True) for kind in ("scan-hot", "recency", "phases")),
]


@pytest.mark.parametrize(
    ("cap", "n", "kind", "moves"), SHADOW_CASES, ids=[f"{c[0]}-{c[2]}" for c in SHADOW_CASES]
)
def test_shadow_climber_matches_the_prototype(cap: int, n: int, kind: str, moves: bool) -> None:
    """climber="shadow" makes H3Policy's decisions: victims, window share, number of moves."""
    ops = _shadow_stream(kind, cap, n, 1)
    # int keys hash alike in every process, so whether the window moves is pinned
    # (the prototype predates the ghost admission: both run without it)
    py, c = _run_both(ops, cap, None, False, py_factory=_h3, climber="shadow", ghost=False)
    assert c.climber_moves == py._h3_moves
    assert (c.climber_moves > 0) == moves
    if cap <= 1_000:
        # str keys: their hashes (so the sketch's collisions) change with PYTHONHASHSEED
        py, c = _run_both(ops, cap, None, True, py_factory=_h3, climber="shadow", ghost=False)
        assert c.climber_moves == py._h3_moves


def _moved(cap: int, **options: Any) -> CTinyLFU:
    """A count-bounded shadow-climbing policy after a recency stream that moved its window."""
    c = CTinyLFU(cap, None, climber="shadow", **options)
    for k in _recency(random.Random(cap), 30 * cap, cap / 2):
        c.miss(k)
        c.add(k, 1)
        c.hit(k)
    assert c.climber_moves > 0
    return c


def _expected_shadow_windows(cap: int, share: float) -> tuple[float, float]:
    """The window shares of fresh shadows for a cache of ``cap`` entries at ``share``."""
    r = 1
    while r < 64 and cap // (2 * r) >= 512:
        r *= 2
    cap_s = max(2, cap // r)
    shares = []
    for w in (share - 0.0625, share + 0.0625):
        w = min(max(0.0, w), 1.0)
        shares.append(max(1, round(w * cap_s)) / cap_s)
    return shares[0], shares[1]


def test_climber_option_and_attributes() -> None:
    """climber= reads back; the shadow climber is active only for count-bounded adaptive caches."""
    assert CTinyLFU(10, None).climber == "shadow"  # the default
    assert CTinyLFU(10, None)._shadow_state is not None
    assert CTinyLFU(10, None, climber="sample")._shadow_state is None
    c = CTinyLFU(10, None, climber="shadow")
    assert c.climber == "shadow" and c.climber_moves == 0
    state = c._shadow_state
    assert state is not None and state["cap"] == 10 and state["limit"] == 2**64 - 1
    for bounds, options in [
        ((None, 100), {}),
        ((10, 100), {}),
        ((None, None), {}),
        ((10, None), {"adaptive": False}),
    ]:
        inactive = CTinyLFU(*bounds, climber="shadow", **options)
        assert inactive.climber == "shadow" and inactive._shadow_state is None
    # sample every key below 1,024 entries, one in R above (R <= 64, at least 512 keys a shadow)
    for cap, r in [(1, 1), (1_023, 1), (1_024, 2), (16_000, 16), (65_536, 64), (10**7, 64)]:
        state = CTinyLFU(cap, None, climber="shadow")._shadow_state
        assert state["limit"] == 2**64 // r - 1
        assert state["cap"] == max(2, cap // r)


@pytest.mark.parametrize("bad", ["Shadow", "", "sample ", None, 1, b"shadow"])
def test_a_bad_climber_is_a_config_error(bad: object) -> None:
    """Anything but "sample" or "shadow" raises ConfigError naming the value."""
    with pytest.raises(ConfigError) as error:
        CTinyLFU(10, None, climber=bad)  # type: ignore[arg-type]
    assert str(error.value) == f"climber must be 'sample' or 'shadow', got {bad!r}"


def test_shadows_see_exactly_the_sampled_keys() -> None:
    """A key reaches the shadows iff (hash(key) * 0x9E3779B97F4A7C15) mod 2**64 < 2**64 / R."""
    c = CTinyLFU(16_000, None, climber="shadow")  # R = 16: shadows of 1,000 keys
    keys = [*range(2_000), *(f"s{i}" for i in range(2_000))]
    for k in keys:
        c.miss(k)
        c.add(k, 1)
    sampled = [k for k in keys if (hash(k) * 0x9E3779B97F4A7C15) % 2**64 < 2**60]
    assert 150 < len(sampled) < 350
    state = c._shadow_state
    for shadow in (state["up"], state["down"]):
        assert len(shadow) == len(sampled)
        assert all(k in shadow for k in sampled)
    # str hashes change with PYTHONHASHSEED: an epoch of 256 sampled accesses may have ended
    assert state["seen"] == len(sampled) % 256


def test_clear_restarts_the_shadows_and_keeps_the_share() -> None:
    """clear() builds new empty shadows at the kept window share; the move count survives."""
    c = _moved(100)
    share, moves = c.window_fraction, c.climber_moves
    old = c._shadow_state
    c.clear()
    state = c._shadow_state
    assert len(c) == 0 and c.window_fraction == share and c.climber_moves == moves
    assert state["up"] is not old["up"] and state["down"] is not old["down"]
    assert len(state["up"]) == len(state["down"]) == 0
    assert state["probe"] == 0.0625 and state["cap"] == 100
    for name in ("seen", "dis_up", "dis_down", "new_up", "new_down", "long_up", "long_down"):
        assert state[name] == 0, name
    down, up = _expected_shadow_windows(100, share)
    assert (state["down"].window_fraction, state["up"].window_fraction) == (down, up)
    assert state["up"].adaptive is False and state["up"].climber == "sample"


def test_resize_rebuilds_or_drops_the_shadows() -> None:
    """resize() re-evaluates the bounds: new shadows for a new capacity, none when weighted."""
    c = _moved(100)
    moves = c.climber_moves
    victims = c.resize(5_000, None)
    assert victims == []
    state = c._shadow_state
    assert state["cap"] == 625 and state["limit"] == 2**61 - 1  # R = 8
    assert len(state["up"]) == 0 and state["dis_up"] == state["long_down"] == 0
    down, up = _expected_shadow_windows(5_000, c.window_fraction)
    assert (state["down"].window_fraction, state["up"].window_fraction) == (down, up)
    assert c.climber_moves == moves
    c.resize(None, 300)  # weighted: the sample climber
    assert c._shadow_state is None and c.climber == "shadow"
    c.resize(50, None)
    assert c._shadow_state["cap"] == 50 and c.climber_moves == moves
    assert len(c) <= 50


def test_shadow_keys_are_released_after_clear_resize_and_drop() -> None:
    """Keys held only by shadows are freed when clear/resize rebuild them, or with the policy."""
    for how in ("clear", "resize", "del"):
        c = CTinyLFU(20, None, climber="shadow")
        keys = [Obj(i) for i in range(200)]
        refs = [weakref.ref(k) for k in keys]
        for k in keys:
            c.miss(k)
            c.add(k, 1)
            c.hit(k)
        del keys, k
        gc.collect()
        # the real policy and both shadows keep at most 20 keys each, plus the buffered read
        alive = sum(r() is not None for r in refs)
        assert 20 < alive <= 61
        if how == "clear":
            c.clear()
        elif how == "resize":
            c.resize(1, None)
            c.resize(20, None)
            c.clear()
        else:
            del c
        gc.collect()
        assert all(r() is None for r in refs), how


def test_a_key_held_by_a_shadow_in_a_cycle_is_collected() -> None:
    """A key that refers to the policy, held only by its shadows, is freed by the collector."""
    c = CTinyLFU(4, None, climber="shadow")
    k = Obj(1)
    k.policy = c
    c.miss(k)
    c.add(k, 1)
    c.remove(k)  # gone from the real policy; the shadows still hold it
    state = c._shadow_state
    assert k in state["up"] or k in state["down"]
    ref = weakref.ref(k)
    del c, k, state
    gc.collect()
    assert ref() is None


def test_hostile_keys_inside_the_shadows_raise_and_leave_the_policy_usable() -> None:
    """A raising or re-entering __eq__ met by the shadow climber propagates; nothing breaks."""
    c = CTinyLFU(10, None, climber="shadow")
    a, b = Key("a", 5), Key("b", 5)  # same hash: b's lookups compare it with a
    c.miss(a)
    c.add(a, 1)
    seen: list[str] = []

    def reenter() -> object:
        # writes to the real policy and to both shadows, one of which is comparing b with a
        state = c._shadow_state
        for call in (
            lambda: c.add("z", 1),
            lambda: state["up"].add("z", 1),
            lambda: state["down"].add("z", 1),
        ):
            try:
                seen.append(repr(call()))
            except RuntimeError as exc:
                seen.append(str(exc))
        return None

    a.on_eq = reenter
    c.miss(b)
    assert c.add(b, 1) == []
    busy = "TinyLFUPolicy re-entered (add)"
    # b is looked up in the real policy, then in the up shadow, then in the down shadow
    assert seen == [busy, "[]", "[]", busy, busy, "[]", busy, "[]", busy]
    a.on_eq = _boom
    c.hit(b)
    c.hit("x")
    with pytest.raises(ValueError, match="boom"):
        c.add("y", 1)  # the replay of b: the shadows compare b with a first
    a.on_eq = None
    c.hit([])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.add("y", 1)  # an unhashable buffered read stops the shadow climber's pass
    for k in range(40):
        c.miss(k)
        c.add(k, 1)
    assert len(c) == 10
    state = c._shadow_state
    assert len(state["up"]) == len(state["down"]) == 10


def test_an_exception_in_a_shadows_own_replay_propagates() -> None:
    """__eq__ raising in a shadow's replay of its buffered reads propagates; all stays sound."""
    c = CTinyLFU(10, None, climber="shadow", read_buffer=5_000)
    a, b = Key("a", 5), Key("b", 5)  # b's lookups compare it with a first
    for k in (a, b):
        c.miss(k)
        c.add(k, 1)
    calls = 0

    def count_then_boom() -> object:
        nonlocal calls
        calls += 1
        # 4,097 reads of b: the shadows' lookups call a.__eq__ twice a read, then the up
        # shadow's buffer (over 4,096 reads) is replayed, which calls it again
        if calls > 2 * 4_097:
            raise ValueError("boom")
        return None

    a.on_eq = count_then_boom
    for _ in range(4_097):
        c.hit(b)
    with pytest.raises(ValueError, match="boom"):
        c.add("y", 1)
    assert calls == 2 * 4_097 + 1
    a.on_eq = None
    assert len(c) == 2 and a in c and b in c and "y" not in c
    for k in range(30):
        c.miss(k)
        c.add(k, 1)
    assert len(c) == 10


# -- the simulation step's fast paths -----------------------------------------------------------


@pytest.mark.parametrize(("cap", "climber"), [(60, "shadow"), (300, "sample"), (1_100, "shadow")])
def test_access_and_step_match_the_memo_step_through_agings(cap: int, climber: str) -> None:
    """access/step on str keys rebuilt at every call (equal, never identical) through agings of
    the counts: the Python memo step's answers and state (a new key's read counted unbuffered,
    shadows fed, counts halved in place)."""
    py = PyTinyLFU(cap, None, climber=climber)
    c = CTinyLFU(cap, None, climber=climber)
    other = {"".join([_STR_KINDS[r % 4], str(r)]) for r in range(0, 10 * cap, 7)}
    rng = random.Random(cap)
    hits = 0
    for i in range(40 * cap):
        # a loop a little larger than the cache, then a skewed phase: the counts the agings
        # halve (or drop) decide admissions later
        r = (
            i % (7 * cap // 5)
            if i < 20 * cap
            else min(int(10 * cap * rng.random() ** 3), 10 * cap - 1)
        )
        k = "".join([_STR_KINDS[r % 4], str(r)])  # a new object each time
        if k in py:
            py.hit(k)
            expect = None
        else:
            py.miss(k)
            victims = py.add(k, 1)
            expect = sum(1 for v in victims if v not in other) if i % 2 else 0
        if i % 3:
            got = c.step(k, other) if i % 2 else c.step(k)
        else:
            got = None if c.access(k) else expect
        assert got == expect, i
        hits += expect is None
        probe = "".join([_STR_KINDS[(r + 1) % 4], str(r)])  # the same digits, another kind
        assert (probe in c) == (probe in py)
    assert 0 < hits < 40 * cap
    for p in (py, c):
        p.remove(("absent",))  # replays the buffered reads
    assert py.order() == c.order()
    assert (py.window_fraction, py._ghost_state) == (c.window_fraction, c._ghost_state)
    assert py.climber_moves == c.climber_moves


def test_a_str_subclass_keeps_its_eq() -> None:
    """The exact-str shortcut leaves a str subclass's __eq__ in charge, stored or looked up."""
    c = CTinyLFU(4, None)
    c.miss(_Str("a"))
    c.add(_Str("a"), 1)
    c.add("b", 1)
    _Str.calls = 0
    assert "a" in c and _Str("b") in c
    assert c.access(_Str("a")) is True
    assert c.step("b") is None
    assert _Str.calls >= 3
