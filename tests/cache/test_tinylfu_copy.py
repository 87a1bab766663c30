"""TinyLFUPolicy.copy(), C and Python: a copy makes exactly the original's decisions from then on.

A policy is driven through a seeded prefix, copied, and the copy, the original and a reference
(the same prefix, never copied) are each driven through the same suffix: after every step the
three give the same victims and the same observable state (size, weight, window share, shadow
climber and ghost state, membership). Running the copy's whole suffix before the original's
shows that neither shares a mutable structure with the other. The copy of a C policy also
matches the copy of its Python twin. The keys are shared, not copied: no key reference leaks,
and a cycle through a key and a copy is collected.

The extension is imported at module level on purpose: if it is not built, these tests fail.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cache.test_tinylfu_c import Key, Obj

from perflayer.cache._policy import TinyLFUPolicy as PyTinyLFU
from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFU

Op = tuple[str, int, int]
IMPLS: dict[str, Callable[..., Any]] = {"c": CTinyLFU, "py": PyTinyLFU}

# (name, max_entries, max_weight, largest weight of one key, options)
CONFIGS: list[tuple[str, int | None, int | None, int, dict[str, Any]]] = [
    ("tiny", 2, None, 1, {}),
    ("small", 16, None, 2, {"read_buffer": 4}),
    ("medium", 200, None, 1, {}),
    ("medium-no-ghost", 200, None, 3, {"ghost": False}),
    ("medium-sample", 200, None, 1, {"climber": "sample", "ghost": False}),
    ("medium-static", 200, None, 1, {"adaptive": False}),
    # sampled shadows (one key in 4), ghost on and off
    ("sampled", 2_048, None, 1, {}),
    ("sampled-no-ghost", 2_048, None, 1, {"ghost": False}),
    ("weighted", None, 400, 30, {}),
    ("weighted-both", 60, 500, 20, {"read_buffer": 7}),
    ("unbounded", None, None, 3, {}),
]
CONFIG_IDS = [c[0] for c in CONFIGS]


def _stream(seed: str, cap: int, n: int, max_w: int, universe: int) -> list[Op]:
    """Seeded ops: a recency phase then a skewed phase (the climber moves), some churn."""
    rng = random.Random(seed)
    ops: list[Op] = []
    t = 0
    for i in range(n):
        if i < n // 2:  # keys re-read shortly after they first appear
            if rng.random() < 0.3:
                t += 1
            k = max(0, t - int(rng.expovariate(2 / max(1, cap)))) % universe
        else:  # Zipf-like: small ids are hot
            k = min(int(universe * rng.random() ** 3), universe - 1)
        u = rng.random()
        if u < 0.80:
            kind = "r"  # a cache-aside read
        elif u < 0.86:
            kind = "w"  # a write: update or add
        elif u < 0.92:
            kind = "h"  # a stray read: a hit on a key that may have left, or a bare miss
        elif u < 0.97:
            kind = "d"
        elif u < 0.998:
            kind = "a"  # add() of any key (a resident one goes to update)
        elif u < 0.9995:
            kind = "z"
        else:
            kind = "c"
        w = rng.randint(1, max_w) if kind != "z" else rng.randrange(3)
        ops.append((kind, k, w))
    return ops


def _apply(p: Any, op: Op, str_keys: bool = False) -> list[Hashable]:
    """One op as the cache makes it (key ``op[1]``, or ``f"k{op[1]}"``); returns the victims."""
    kind, i, w = op
    k: Hashable = f"k{i}" if str_keys else i
    if p.max_weight is not None:
        w = min(w, p.max_weight) if kind != "z" else w
    if kind == "r":
        if k in p:
            p.hit(k)
            return []
        p.miss(k)
        return list(p.add(k, w))
    if kind == "w":
        return list(p.update(k, w) if k in p else p.add(k, w))
    if kind == "a":
        return list(p.add(k, w))
    if kind == "h":
        (p.hit if i % 2 else p.miss)(k)
        return []
    if kind == "d":
        p.remove(k)
        return []
    if kind == "z":
        me, mw = p.max_entries, p.max_weight
        scale = (1.0, 0.5, 2.0)[w]
        if mw is not None:
            return list(p.resize(me, max(1, int(mw * scale))))
        if me is not None:
            return list(p.resize(max(1, int(me * scale)), None))
        return []
    p.clear()
    return []


def _shadow(p: Any) -> Any:
    """The shadow climber's state, the same fields for both classes (shadows recursively)."""
    if isinstance(p, CTinyLFU):
        d = p._shadow_state
        if d is None:
            return None
        up, down = d.pop("up"), d.pop("down")
        d.pop("limit")
    else:
        if p._shadow_up is None:
            return None
        up, down = p._shadow_up, p._shadow_down
        d = {
            "seen": p._shadow_seen,
            "dis_up": p._dis_up,
            "dis_down": p._dis_down,
            "new_up": p._new_up,
            "new_down": p._new_down,
            "long_up": p._long_up,
            "long_down": p._long_down,
            "probe": p._shadow_probe,
            "cap": p._shadow_cap,
        }
    d["up"] = _state(up)
    d["down"] = _state(down)
    return d


def _state(p: Any) -> tuple[Any, ...]:
    return (
        len(p),
        p.weight,
        p.window_fraction,
        p.climber_moves,
        p._ghost_state,
        p.max_entries,
        p.max_weight,
        _shadow(p),
    )


def _read_buffer(p: Any) -> int:
    return int(p.read_buffer if isinstance(p, CTinyLFU) else p._buf.maxlen)


def _trace(p: Any, ops: list[Op], str_keys: bool = False) -> list[tuple[Any, ...]]:
    """Drive ``p`` through ``ops``: per step the victims, the state and the key's membership."""
    out: list[tuple[Any, ...]] = []
    for op in ops:
        victims = _apply(p, op, str_keys)
        out.append((victims, _state(p), (f"k{op[1]}" if str_keys else op[1]) in p))
    # a last write replays the buffered reads; shrinking to one entry then evicts every other
    # key in an order that shows the regions' order and the frequencies
    out.append((list(p.add(-1, 1)), _state(p)))
    if p.max_weight is None:
        out.append((list(p.resize(1, None)), _state(p)))
    else:
        out.append((list(p.resize(p.max_entries, 1)), _state(p)))
    return out


def _built(
    impl: str, config: tuple[Any, ...], seed: str, str_keys: bool = False
) -> tuple[Any, list[Op], list[Op]]:
    """A policy after the prefix of a seeded stream, and the suffix still to come."""
    _name, me, mw, max_w, options = config
    cap = me if me is not None else (mw if mw is not None else 300) // max(1, max_w // 2)
    n_prefix = max(3_000, 8 * cap)
    n_suffix = max(1_500, 2 * cap)
    ops = _stream(seed, cap, n_prefix + n_suffix, max_w, 5 * cap + 3)
    # the prefix ends with buffered reads: the copy must replay them as the original would
    prefix = ops[:n_prefix] + [("h", k, 1) for k in range(7)]
    p = IMPLS[impl](me, mw, **options)
    for op in prefix:
        _apply(p, op, str_keys)
    return p, prefix, ops[n_prefix:]


# -- a copy makes the original's decisions ------------------------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_copy_makes_the_originals_decisions_and_is_independent(
    impl: str, config: tuple[Any, ...]
) -> None:
    """Copy, copy first, original second, and a never-copied reference: the same every step."""
    p, _prefix, suffix = _built(impl, config, f"copy/{config[0]}")
    ref, _, _ = _built(impl, config, f"copy/{config[0]}")
    before = _state(p)
    q = p.copy()
    assert type(q) is type(p) and q is not p
    assert _state(q) == before == _state(p)
    assert (q.climber, q.ghost, q.adaptive, _read_buffer(q)) == (
        p.climber,
        p.ghost,
        p.adaptive,
        _read_buffer(p),
    )
    universe = range(-1, 5 * (config[1] or 300) + 3)
    assert [k in q for k in universe] == [k in p for k in universe]
    # the copy's whole run first: if it shared anything with the original, the original's run
    # below would no longer match the reference's
    tq = _trace(q, suffix)
    tp = _trace(p, suffix)
    tref = _trace(ref, suffix)
    assert len(tq) == len(tref)
    for step, (a, b, c) in enumerate(zip(tq, tp, tref, strict=True)):
        assert a == c, step
        assert b == c, step


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_copy_in_lockstep_with_reads_between(impl: str) -> None:
    """Original and copy called alternately, reads buffered in one not seen by the other."""
    config = CONFIGS[CONFIG_IDS.index("medium")]
    p, _prefix, suffix = _built(impl, config, "lockstep")
    q = p.copy()
    for k in range(50):  # buffered in the copy only, then undone by a copy of the original
        q.hit(k)
    q = p.copy()
    r = q.copy()  # a copy of a copy
    for step, op in enumerate(suffix):
        results = [(_apply(x, op), _state(x), op[1] in x) for x in (p, q, r)]
        assert results[0] == results[1] == results[2], step


def test_the_streams_exercise_the_ghost_and_the_shadow_climber() -> None:
    """The prefixes above copy policies with ghost admissions, flags, regrets and climber moves."""
    built = {
        name: _built("c", CONFIGS[CONFIG_IDS.index(name)], f"copy/{name}")[0]
        for name in ("small", "medium", "sampled")
    }
    admits, regrets, _score, _explore, flagged = built["medium"]._ghost_state
    assert admits > 0 and regrets > 0 and flagged > 0
    assert built["medium"].climber_moves > 0
    _admits, _regrets, score, explore, _flagged = built["small"]._ghost_state
    assert score < 0 and explore > 0
    assert built["small"].climber_moves > 0
    sampled = built["sampled"]
    assert sampled._ghost_state[0] > 0
    state = sampled._shadow_state
    assert state is not None and state["limit"] < 2**64 - 1  # sampled shadows
    assert len(state["up"]) > 0 and len(state["down"]) > 0


# -- the C copy matches the Python copy ---------------------------------------------------------


# str keys (their hashes change with PYTHONHASHSEED) for the smaller configurations only (time)
TWIN_CASES = [(c, False) for c in CONFIGS] + [(c, True) for c in CONFIGS if c[1] != 2_048]


@pytest.mark.parametrize(
    ("config", "str_keys"),
    TWIN_CASES,
    ids=[f"{c[0]}-{'str' if s else 'int'}" for c, s in TWIN_CASES],
)
def test_c_copy_matches_the_python_copy(config: tuple[Any, ...], str_keys: bool) -> None:
    """The twins, copied after the same prefix, make the same decisions on the same suffix."""
    py, prefix, suffix = _built("py", config, f"twins/{config[0]}", str_keys)
    c = CTinyLFU(config[1], config[2], **config[4])
    for op in prefix:
        _apply(c, op, str_keys)
    assert _state(c) == _state(py)
    cq, pq = c.copy(), py.copy()
    assert isinstance(pq, PyTinyLFU) and isinstance(cq, CTinyLFU)
    assert _trace(cq, suffix, str_keys) == _trace(pq, suffix, str_keys)


@settings(max_examples=60, deadline=None)
@given(
    me=st.integers(1, 40),
    ops=st.lists(
        st.tuples(st.sampled_from("rrrrwhdaz"), st.integers(0, 120), st.integers(1, 2)),
        max_size=300,
    ),
    cut=st.integers(0, 300),
    ghost=st.booleans(),
)
def test_c_copy_matches_the_python_copy_property(
    me: int, ops: list[Op], cut: int, ghost: bool
) -> None:
    """Any op list, cut anywhere: copies of the twins agree, and agree with their originals."""
    ops = [(kind, k, w if kind != "z" else w % 3) for kind, k, w in ops]
    cut = min(cut, len(ops))
    py = PyTinyLFU(me, None, ghost=ghost, read_buffer=5)
    c = CTinyLFU(me, None, ghost=ghost, read_buffer=5)
    for op in ops[:cut]:
        assert _apply(py, op) == _apply(c, op)
    pq, cq = py.copy(), c.copy()
    traces = [_trace(x, ops[cut:]) for x in (cq, pq, c, py)]
    assert traces[0] == traces[1] == traces[2] == traces[3]


# -- the C copy refuses while busy --------------------------------------------------------------


def test_copy_while_busy_raises_runtime_error_and_changes_nothing() -> None:
    """copy() from inside a write (a key's __eq__) raises RuntimeError; the write completes."""
    c = CTinyLFU(4, None)
    a, b = Key("a", 5), Key("b", 5)
    c.add(a, 1)
    seen: list[str] = []

    def reenter() -> object:
        try:
            c.copy()
        except RuntimeError as exc:
            seen.append(str(exc))
        return None

    a.on_eq = reenter
    assert c.add(b, 1) == []
    a.on_eq = None
    assert seen == ["TinyLFUPolicy re-entered (copy)"]
    assert len(c) == 2 and a in c and b in c
    q = c.copy()  # not busy any more
    assert len(q) == 2 and a in q and b in q
    with pytest.raises(TypeError):
        c.copy(1)  # type: ignore[call-arg]


# -- references: shared keys, no leaks, cycles collected ----------------------------------------


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_keys_are_shared_and_their_refcounts_return_to_baseline(impl: str) -> None:
    """The copy holds the same key objects; once both policies die no reference is left."""
    keys = [Obj(i) for i in range(60)]
    extra = Obj(1_000)
    gc.collect()
    base = [sys.getrefcount(k) for k in keys]
    base_extra = sys.getrefcount(extra)
    p = IMPLS[impl](8, None)  # full shadows: they hold keys too
    for k in keys:
        p.miss(k)
        p.add(k, 1)
        p.hit(k)
    p.hit(extra)  # held by the read buffer only
    assert sum(k in p for k in keys) == 8
    del k
    q = p.copy()
    # the very same objects leave the copy (a resize evicts all but one)
    victims = q.resize(1, None)
    assert victims and all(any(v is k for k in keys) for v in victims)
    del q, victims
    gc.collect()
    del p
    gc.collect()
    assert [sys.getrefcount(k) for k in keys] == base
    assert sys.getrefcount(extra) == base_extra


def test_c_copy_leaks_no_memory() -> None:
    """Copying, using and dropping copies in a loop: traced memory stays flat."""
    config = CONFIGS[CONFIG_IDS.index("medium")]
    p, _prefix, suffix = _built("c", config, "leak")
    ops = suffix[:200]

    def once() -> None:
        q = p.copy()
        for op in ops:
            _apply(q, op)
        r = q.copy()
        del q
        _apply(r, ("r", 10**6, 1))

    for _ in range(20):
        once()
    gc.collect()
    tracemalloc.start()
    try:
        once()
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            once()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # a leaked copy holds ~200 nodes, its tables, a 4 KiB doorkeeper and two shadows (>20 KiB):
    # 200 of them would be megabytes
    assert grown < 64 * 1024, grown


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_cycle_through_a_key_and_a_copy_is_collected(impl: str) -> None:
    """A key that refers to the copy holding it (in its regions, buffer and shadows) is freed."""
    p = IMPLS[impl](8, None)
    k = Obj(1)
    other = Obj(2)
    p.add(k, 1)
    p.hit(k)
    p.add(Obj(3), 1)  # replays the hit: the full shadows now hold k too
    p.hit(other)  # a read in the buffer
    q = p.copy()
    k.policy = q
    other.policy = q
    del p
    gc.collect()
    if impl == "c":
        state = q._shadow_state
        assert state is not None and k in state["up"] and k in state["down"]
        del state
    ref, ref_other = weakref.ref(k), weakref.ref(other)
    del q, k, other
    gc.collect()
    assert ref() is None and ref_other() is None


def test_copy_of_fresh_cleared_and_resized_policies() -> None:
    """Edge states: empty, cleared, resized to unbounded or weight-bounded, then copied."""
    for cls in (CTinyLFU, PyTinyLFU):
        cases: list[Any] = [cls(10, None), cls(None, None), cls(None, 50), cls(1, None)]
        cleared = cls(30, None)
        for i in range(100):
            cleared.add(i, 1)
        cleared.clear()
        resized = cls(30, None)
        for i in range(100):
            resized.add(i, 1)
        resized.resize(None, 40)
        cases += [cleared, resized]
        for p in cases:
            q = p.copy()
            ops = _stream(f"edge/{cls.__module__}", 30, 400, 3, 90)
            assert _trace(q, ops) == _trace(p, ops)
