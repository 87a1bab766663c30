"""The auto_removes prototype is AutoPolicy whose removals reach every simulation (Session 11).

Deterministic replays of integer keys (no clocks, no threads): without removals it makes
exactly AutoPolicy's decisions; after ``remove(k)`` neither the engine, nor the twin, nor the
LIRS and ARC simulations hold ``k``, before and after the first switch, and the kept count of
the twin's residents the engine lacks stays the count.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes.auto_removes import KeepRegionTinyLFU, RemovesPolicy, make, sim_holds
from benchmarks.traces import zipf_shift
from tests.benchmarks.test_adaptive3 import _phases

from perflayer.cache._policy_auto import AutoPolicy

# the loop of test_policy_auto: 300 keys between keys never seen again; LIRS wins it
LOOP = [k for i in range(6_000) for k in (i % 300, 1_000_000 + i)]


@pytest.mark.parametrize("keep", [0, 1])
@pytest.mark.parametrize(("trace", "c"), [("zipf", 300), ("loop", 200)])
def test_without_removes_it_is_auto_policy(trace: str, c: int, keep: int) -> None:
    """On an access-only stream it makes AutoPolicy's decisions and switches (on the keep-region
    TinyLFU too)."""
    keys = zipf_shift()[:20_000] if trace == "zipf" else LOOP
    ref = PolicySim(AutoPolicy(c, None), c)
    proto = make(c, keep=keep)
    assert [proto.access(k) for k in keys] == [ref.access(k) for k in keys]
    p, r = proto.policy, ref.policy
    assert r.switches > 0
    assert (p.history, p.locked, p._deficit) == (r.history, r.locked, r._deficit)


def _absent_count(policy: AutoPolicy) -> int:
    engine = policy._engine
    return sum(1 for k, _w in policy._twin.order() if k not in engine)


@pytest.mark.parametrize("pure", [False, True])
@pytest.mark.parametrize("ghost", [False, True])
def test_a_removed_key_leaves_every_simulation(
    ghost: bool, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After remove(k) no simulation holds k resident, and the kept absent count is the count
    (on the C engines where built, and on the pure-Python ones)."""
    if pure:
        monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    c = 100
    rng = random.Random(7)
    policy = RemovesPolicy(c, None, ghost=ghost)
    sim = PolicySim(policy, c)
    before = after = kept = ghosts = 0
    for k in _phases(6, c) + LOOP:
        sim.access(k)
        if rng.random() < 0.03:
            key = rng.choice(sorted(sim.resident))
            policy.remove("unknown")  # the simulations take the buffered reads first
            in_arc = key in policy._sims[2]
            policy.remove(key)
            sim.resident.discard(key)
            assert key not in policy
            assert sim_holds(policy, key) == []
            if policy._twin is None:
                before += 1
            else:
                after += 1
                if policy._absent >= 0:
                    assert policy._absent == _absent_count(policy)
                    kept += 1
            arc = policy._sims[2]
            if ghost and in_arc:
                assert key in arc.b1 or key in arc.b2  # a ghost, not resident
                ghosts += 1
        assert len(policy) == len(sim.resident)
    assert before > 10 and after > 10 and kept > 10 and policy.switches > 0
    assert ghosts > 10 or not ghost


def test_clear_forgets_every_simulation() -> None:
    """clear() leaves the engine, the twin and the simulations empty, on a fresh account."""
    c = 200
    sim = make(c)
    policy = sim.policy
    for k in LOOP:
        sim.access(k)
    assert policy.switches > 0
    policy.clear()
    keys: list[Hashable] = list(range(300)) + list(range(1_000_000, 1_006_000))
    assert not any(sim_holds(policy, k) for k in keys)
    assert len(policy) == 0 and policy._deficit == 0


def test_a_removed_protected_key_returns_to_protected() -> None:
    """KeepRegionTinyLFU puts a key removed from protected back there when it is added again."""
    c = 100
    policy = KeepRegionTinyLFU(c, None)
    sim = PolicySim(policy, c)
    for k in [i % 50 for i in range(2_000)]:
        sim.access(k)
    policy.remove(-1)  # replays the buffered reads: the hits promote keys to protected
    key = next(iter(policy._protected))
    policy.remove(key)
    sim.resident.discard(key)
    copy = policy.copy()
    for p in (policy, copy):
        assert p.add(key, 1) == []
        assert key in p._protected
    plain = next(k for k in range(1_000, 2_000) if k not in policy)
    policy.add(plain, 1)
    assert plain in policy._window  # a key never removed enters the window as before
