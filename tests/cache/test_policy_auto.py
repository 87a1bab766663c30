"""AutoPolicy (``policy="auto"``, the default) is rule G of docs/research-adaptive.md, ported.

Deterministic replays of integer keys (no clocks, no threads). The port makes exactly the
research prototype's decisions (``adaptive3.make(c, cp=1, **PORT)``: the recipe of its TinyLFU
adoption is the port's), on the C parts and on the pure-Python ones; it selects only where full
simulations are affordable; its account holds it to the default where a selection without it
falls far behind; and the Policy calls keep their contract through switches.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator, Sequence

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import adaptive3
from benchmarks.traces import recency_heavy, zipf_shift
from tests.benchmarks.test_adaptive3 import RULE, _phases

from perflayer import Cache
from perflayer.cache._policy import TinyLFUPolicy, make_policy, tinylfu_class
from perflayer.cache._policy_auto import AutoPolicy, CAutoPolicy, _Selection, auto_class
from perflayer.errors import ConfigError

# the port's constants: rule G with the tighter budget of docs/research-adaptive.md, "Session 10:
# the account's margin" (acct 0.004 -> 0.0035, a0 0.25 -> 0.2)
# and the engine is the simulation it adopts (a view: session 12), so nothing is re-synced
PORT = {**RULE, "acct": 0.0035, "a0": 0.2, "view": 1, "sync": 0}

# the loop of test_adaptive3: 300 keys between keys never seen again; LIRS wins it
LOOP = [k for i in range(6_000) for k in (i % 300, 1_000_000 + i)]


@pytest.fixture(params=["c", "python"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test on the C parts (TinyLFU, LIRS, ARC, the observe loop) and on pure Python."""
    if request.param == "python":
        monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    elif tinylfu_class() is TinyLFUPolicy:
        pytest.skip("the C extensions are not built")
    yield request.param


def trace_keys(trace: str) -> list[int]:
    """Return the keys of one of the replay traces: zipf, phases6, phases3 or loop."""
    if trace == "zipf":
        return zipf_shift()[:30_000]
    if trace == "loop":
        return LOOP
    return _phases(int(trace[-1]), 100 if trace == "phases6" else 200)


def _trail(sim: PolicySim, keys: Sequence[Hashable]) -> list[bool]:
    return [sim.access(k) for k in keys]


def _names(history: Sequence[tuple[int, str]]) -> list[str]:
    return [name for _t, name in history]


@pytest.mark.parametrize(
    ("trace", "c"),
    [("zipf", 300), ("zipf", 978), ("phases6", 100), ("phases3", 200), ("loop", 200)],
)
def test_it_makes_the_prototypes_decisions(mode: str, trace: str, c: int) -> None:
    """Hit for hit, switch for switch, re-sync for re-sync: adaptive3 with the port's recipe."""
    keys = trace_keys(trace)
    sim = PolicySim(auto_class()(c, None), c)
    ref = adaptive3.make(c, cp=1, **PORT)
    assert _trail(sim, keys) == _trail(ref, keys)
    policy, proto = sim.policy, ref.policy
    assert _names(policy.history) == _names(proto.history)
    assert policy.locked == proto.locked and proto.syncs == 0
    assert policy._deficit == proto._deficit
    assert policy.engine == proto.engine
    assert policy.switches > 0


def test_the_c_parts_and_pure_python_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C build and PERFLAYER_PURE_PYTHON make the same decisions, and the C one is C."""
    if tinylfu_class() is TinyLFUPolicy:
        pytest.skip("the C extensions are not built")
    keys = _phases(6, 100)
    c_sim = PolicySim(auto_class()(100, None), 100)
    assert isinstance(c_sim.policy, CAutoPolicy)
    assert type(c_sim.policy._engine) is tinylfu_class()
    expected = _trail(c_sim, keys)
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    py_sim = PolicySim(auto_class()(100, None), 100)
    assert isinstance(py_sim.policy, AutoPolicy)
    assert type(py_sim.policy._engine) is TinyLFUPolicy
    assert _trail(py_sim, keys) == expected
    assert py_sim.policy.history == c_sim.policy.history
    assert py_sim.policy.locked == c_sim.policy.locked


@pytest.mark.parametrize(
    ("bounds", "selects"),
    [
        ((1, None), True),
        ((2_048, None), True),
        ((2_049, None), False),
        ((100, 10_000), False),
        ((None, 10_000), False),
        ((None, None), False),
    ],
)
def test_it_selects_only_where_the_simulations_are_full(
    bounds: tuple[int | None, int | None], selects: bool
) -> None:
    """Entry-bounded caches of up to 2,048 entries select; every other one runs the TinyLFU."""
    policy = make_policy("auto", *bounds)
    assert isinstance(policy, _Selection) is selects
    if not selects:
        assert type(policy) is tinylfu_class()


def test_the_cache_defaults_to_it() -> None:
    """Cache() is policy="auto": the selection on a small entry-bounded cache."""
    small = Cache(max_entries=300)
    assert small.policy_name == "auto"
    assert isinstance(small._policy, auto_class())
    assert type(Cache(max_entries=10_000)._policy) is tinylfu_class()


def test_a_bad_bound_is_named() -> None:
    """A bound that is not a positive int raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="max_entries must be >= 1 or None, got 0"):
        auto_class()(0, None)
    with pytest.raises(ConfigError, match=r"max_entries must be an int or None, got 1\.5"):
        make_policy("auto", 1.5, None)  # type: ignore[arg-type]


def test_it_leaves_tinylfu_for_lirs_on_a_loop(mode: str) -> None:
    """On a loop 1.5x the cache it adopts LIRS, keeps its bound and loses nothing to the default."""
    c = 200
    sim = PolicySim(auto_class()(c, None), c)
    hits = sum(_trail(sim, LOOP))  # PolicySim raises if a victim list breaks the bound
    assert sim.policy.engine == "lirs"
    assert len(sim.policy) == len(sim.resident) <= c
    default = sum(_trail(PolicySim(make_policy("tinylfu", c, None), c), LOOP))
    assert hits >= default


def test_the_account_holds_it_to_the_default(mode: str) -> None:
    """Where a selection without the account falls 3 points behind, it stays within budget."""
    c = 100
    keys = _phases(6, c)
    default = sum(_trail(PolicySim(make_policy("tinylfu", c, None), c), keys))
    sim = PolicySim(auto_class()(c, None), c)
    hits = sum(_trail(sim, keys))
    policy = sim.policy
    # the deficit is exact up to the accesses not yet decided on (an epoch and the buffer)
    slack = policy._epoch + len(policy._buf)
    assert abs((default - hits) - policy._deficit) <= slack
    assert default - hits <= PORT["acct"] * len(keys) + PORT["a0"] * c + slack
    assert policy.locked > 0


def churn(sim: PolicySim, rng: random.Random, weight: int) -> tuple[float, list[Hashable] | None]:
    """As a Cache would, remove (2%) or re-weigh (2%) a resident key; return the draw and the
    update's victims (None when nothing was updated)."""
    r = rng.random()
    if r < 0.04 and sim.resident:
        policy = sim.policy
        key = rng.choice(sorted(sim.resident))  # type: ignore[type-var]
        if r < 0.02:
            policy.remove(key)
            sim.resident.discard(key)
        else:
            victims: list[Hashable] = policy.update(key, weight)
            sim.resident.difference_update(victims)
            return r, victims
    return r, None


@pytest.mark.parametrize(
    ("trace", "c"), [("zipf", 300), ("phases6", 100), ("phases3", 200), ("loop", 200)]
)
def test_the_kept_absent_count_is_the_count(mode: str, trace: str, c: int) -> None:
    """Where kept, ``_absent`` is the twin's residents the engine lacks, through every call."""
    rng = random.Random(c)
    policy = auto_class()(c, None)
    sim = PolicySim(policy, c)
    checked = 0
    for i, k in enumerate(trace_keys(trace)):
        sim.access(k)
        r, _victims = churn(sim, rng, 1)
        if r > 0.9995:
            sim.resident.difference_update(policy.resize(c, None))
        if (i % 5 == 0 or r < 0.04) and policy._absent >= 0:
            engine = policy._engine
            count = sum(1 for key, _w in policy._twin.order() if key not in engine)
            assert policy._absent == count, i
            checked += 1
    assert checked > 500 and policy.switches


def _on_engine(engine: str, c: int = 200) -> tuple[AutoPolicy, set[Hashable]]:
    """Return a policy driven until its engine is ``engine``, and its resident keys."""
    keys = {"lirs": LOOP, "arc": recency_heavy()[:20_000]}.get(engine, _phases(6, c) + LOOP)
    policy = auto_class()(c, None)
    sim = PolicySim(policy, c)
    for k in keys:
        sim.access(k)
        if policy.engine == engine and policy.switches:
            return policy, sim.resident
    pytest.fail(f"no switch to {engine}")  # pragma: no cover


@pytest.mark.parametrize("engine", ["lirs", "tinylfu"])
def test_remove_update_and_weights_through_switches(mode: str, engine: str) -> None:
    """remove forgets a key, update re-weighs it, weight is the engine's sum, on any engine."""
    policy, resident = _on_engine(engine)
    key = next(iter(resident))
    before = policy.weight
    assert policy.update(key, 5) == []
    assert policy.weight == before + 4
    policy.remove(key)
    assert key not in policy
    assert len(policy) == len(resident) - 1
    assert policy.weight == before - 1
    policy.remove("never seen")  # unknown keys are ignored


@pytest.mark.parametrize("engine", ["lirs", "arc"])
def test_an_adopted_lirs_or_arc_engine_is_its_simulation(mode: str, engine: str) -> None:
    """The simulation is stepped once per access, as the engine; the cache holds what it says."""
    policy, resident = _on_engine(engine)
    index = 1 if engine == "lirs" else 2
    view = policy._engine
    assert view.sim is policy._sims[index]
    assert (policy._a1 if index == 1 else policy._a2) == view.step
    sim = PolicySim(policy, 200)
    sim.resident = set(resident)
    for i, k in enumerate(LOOP[:3_000]):
        sim.access(k)  # (raises if a victim is not resident or the bound breaks)
        if i % 97 == 0:
            assert {k for k, _w in policy._engine.order()} == sim.resident
            assert len(policy) == len(sim.resident) <= 200


@pytest.mark.parametrize("engine", ["lirs", "tinylfu"])
def test_a_set_without_a_get_reaches_the_twin_as_tinylfus_add(mode: str, engine: str) -> None:
    """The twin takes a blind write as ``policy="tinylfu"`` would: ``add``, no read miss."""
    policy, _resident = _on_engine(engine)
    twin = policy._sims[0]
    ref = twin.copy()  # the default itself, from here on given what a tinylfu cache gets
    for i in range(600):
        key = ("w", i)
        policy.add(key, 1)  # no miss(key) before it: a set without a get
        ref.add(key, 1)
        if i % 7 == 0:  # and a cache-aside miss now and then: read miss, then the write
            policy.miss(("r", i))
            policy.add(("r", i), 1)
            ref.miss(("r", i))
            ref.add(("r", i), 1)
    assert twin.order() == ref.order()
    assert twin.window_fraction == ref.window_fraction
    assert twin._ghost_state == ref._ghost_state
    # and they go on alike: the climber's shadows saw the same accesses (a read miss is one more
    # for them, and moves the window differently later)
    rng = random.Random(3)
    for _ in range(20_000):
        k = ("z", int(rng.paretovariate(1.2)) % 900)
        assert twin.take(k) == ref.take(k)
    assert twin.climber_moves == ref.climber_moves and twin.order() == ref.order()


def test_a_read_miss_never_written_takes_no_real_slot(mode: str) -> None:
    """The simulation takes a read miss as an insert; the cache holds the key only once added."""
    policy, resident = _on_engine("lirs")
    lirs = policy._sims[1]
    policy.miss("ghost")
    victims = policy.add("new", 1)
    assert "ghost" in lirs and "ghost" not in policy and "new" in policy
    assert len(victims) == 1 and victims[0] in resident and victims[0] != "ghost"
    resident = (set(resident) - set(victims)) | {"new"}
    assert {k for k, _w in policy._engine.order()} == resident
    # the phantom is never handed to the cache as a victim; once added it is the cache's
    gone: list[object] = []
    for i in range(400):
        policy.miss(("n", i))
        gone += policy.add(("n", i), 1)
    assert "ghost" not in gone and "ghost" not in policy
    policy.miss("ghost")
    assert "ghost" not in policy.add("ghost", 1) and "ghost" in policy
    assert len(policy) <= 200


def test_a_removed_key_leaves_the_twin_and_the_simulations(mode: str) -> None:
    """A removal reaches every structure that stands for a policy in this cache."""
    policy, resident = _on_engine("lirs")
    twin, lirs, arc = policy._sims
    removed = sorted(resident)[:60]  # type: ignore[type-var]
    held = [sum(k in s for k in removed) for s in (twin, lirs, arc)]
    assert min(held) > 0
    for key in removed:
        policy.remove(key)
    for s in (policy._engine, twin, lirs, arc):
        assert not any(k in s for k in removed)


def test_resize_keeps_the_bound_and_leaves_the_selection_above_2048(mode: str) -> None:
    """Shrinking evicts to the bound; beyond 2,048 entries the TinyLFU twin runs alone."""
    policy, resident = _on_engine("lirs")
    victims = policy.resize(50, None)
    assert len(victims) == len(resident) - 50
    assert len(policy) == 50 and not set(victims) & {k for k in resident if k in policy}
    assert policy.engine == "lirs" and policy._sims
    assert all(len(s) <= 50 for s in policy._sims)
    assert policy.resize(200, None) == []
    # to bounds without the selection: the TinyLFU twin is adopted, every key stays
    kept = [k for k in resident if k in policy]
    assert policy.resize(5_000, None) == []
    assert policy.engine == "tinylfu" and not policy._sims
    assert all(k in policy for k in kept)
    for k in range(10_000, 10_100):
        policy.miss(k)
        assert policy.add(k, 1) == []
    assert len(policy) == len(kept) + 100
    # back to bounds that select: the selection starts afresh
    victims = policy.resize(100, None)
    assert len(policy) == 100 and len(victims) == len(kept)
    assert len(policy._sims) == 3 and policy._deficit == 0


def test_a_weight_bound_runs_the_tinylfu_alone(mode: str) -> None:
    """Resizing to a weight bound adopts the TinyLFU twin, then bounds by weight."""
    policy, _resident = _on_engine("lirs")
    policy.resize(None, 100)
    assert policy.engine == "tinylfu" and not policy._sims
    assert policy.weight <= 100
    victims = policy.add("big", 60)
    assert victims and "big" in policy
    assert policy.weight <= 100


def test_clear_forgets_the_keys_and_the_account(mode: str) -> None:
    """clear() empties the cache and restarts the selection on the cleared TinyLFU twin."""
    policy, _resident = _on_engine("lirs")
    switches = policy.switches
    policy.clear()
    assert len(policy) == 0 and policy.weight == 0
    assert policy.engine == "tinylfu" and policy.switches == switches + 1
    # the twin is the engine again until the next switch
    assert policy._deficit == 0 and policy._sims[0] is None
    assert all(len(s) == 0 for s in policy._sims[1:])
    # the selection runs again (the cleared twin keeps its climbed window, as TinyLFU's clear
    # does, so it need not repeat the first run's decisions)
    sim = PolicySim(policy, 200)  # PolicySim raises if a victim list breaks the bound
    _trail(sim, LOOP)
    assert policy.switches > switches + 1


def test_a_cache_on_it_answers_like_a_dict_through_switches(mode: str) -> None:
    """A real Cache on the default policy keeps every value right while its engine changes."""
    cache = Cache(max_entries=200)
    policy = cache._policy
    assert isinstance(policy, auto_class())
    model: dict[str, int] = {}
    rng = random.Random(5)
    for i, k in enumerate(LOOP[:8_000]):
        key = f"k{k}"
        got = cache.get(key)
        if got is not None:
            assert got == model[key]
        else:
            cache.set(key, i)
            model[key] = i
        if rng.random() < 0.01:
            cache.delete(key)
        assert cache.dbsize() <= 200
    assert policy.switches > 0
    assert cache.dbsize() == len(policy)
    stats = cache.stats()
    assert stats["hits"] > 0 and stats["evictions"]["size"] > 0
