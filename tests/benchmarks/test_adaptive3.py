"""The adaptive3 prototype replays as documented (docs/research-adaptive.md, Session 9).

Deterministic replays of integer keys only (no clocks, no threads): without its new options it
is adaptive2's candidate D; it keeps its bound through its switches and still leaves TinyLFU for
LIRS on a loop larger than the cache; its regret account holds it to the default on a stream of
short phases where D falls more than three points below the default. The ``cp`` option (Session
10: a TinyLFU adoption as the C port makes it) keeps the simulation's pending reads and changes
nothing before the first adoption that has some.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import adaptive2, adaptive3
from benchmarks.traces import _zipf_sampler, zipf_shift

from perflayer.cache._policy import TinyLFUPolicy
from perflayer.errors import ConfigError

# adaptive2's candidate D: full shadows and adoption up to 2,048 entries, short epochs
D = {"samp": 0, "escale": 0.5, "keeph": 1}
# the Session 9 rule G: D with the default's own read buffer in the TinyLFU simulation, the
# regret account against it and the re-sync of a trailing TinyLFU engine
RULE = {**D, "srb": 0, "acct": 0.004, "ret": 0.5, "a0": 0.25, "sync": 0.02}


def _trail(sim: PolicySim, keys: Sequence[Hashable]) -> list[bool]:
    """Return the hit/miss of every access."""
    return [sim.access(k) for k in keys]


def _phases(seed: int, c: int, n: int = 40) -> list[int]:
    """Return syn-scan-mix in miniature: Zipf stretches, one-off scans and loops read twice."""
    rng = random.Random(seed)
    draw = _zipf_sampler(3 * c, 0.8, rng)
    keys: list[int] = []
    fresh, loop = 1_000_000, 500_000
    for _ in range(n):
        r = rng.random()
        if r < 0.4:
            keys.extend(draw() for _ in range(2 * c))
        elif r < 0.7:
            keys.extend(range(fresh, fresh + 3 * c // 2))
            fresh += 3 * c // 2
        else:
            keys.extend(list(range(loop, loop + 3 * c // 2)) * 2)
    return keys


def test_without_new_options_it_is_adaptive2() -> None:
    """With no adaptive3 option it makes exactly adaptive2's decisions (C or Python LIRS/ARC)."""
    c = 300
    keys = zipf_shift()[:6_000]
    ref = adaptive2.make(c, **D)
    expected = _trail(ref, keys)
    assert ref.policy.switches > 0
    for nat in (0, 1):
        proto = adaptive3.make(c, nat=nat, **D)
        assert _trail(proto, keys) == expected
        assert proto.policy.history == ref.policy.history


def test_leaves_tinylfu_for_lirs_on_a_loop_larger_than_the_cache() -> None:
    """On a loop 1.5x the cache, between one-off keys, it adopts LIRS and keeps its bound."""
    c = 200
    # the loop's keys alternate with keys never seen again (the default's ghost admission alone
    # already keeps most of a bare loop)
    keys = [k for i in range(6_000) for k in (i % 300, 1_000_000 + i)]
    sim = adaptive3.make(c, **RULE)
    policy = sim.policy
    hits = 0
    for i, k in enumerate(keys):
        hits += sim.access(k)  # PolicySim raises if a victim list breaks the bound
        if i % 500 == 0:
            assert len(policy) == len(sim.resident) <= c
    assert [name for _t, name in policy.history] == ["lirs"]
    assert policy.engine == "lirs"
    default = sum(_trail(PolicySim(TinyLFUPolicy(c, None), c), keys))
    assert hits >= default


def test_the_account_holds_it_to_the_default_where_d_loses() -> None:
    """On short phases D falls 3 points below the default; the account keeps it within budget."""
    c = 100
    keys = _phases(6, c)
    default = sum(_trail(PolicySim(TinyLFUPolicy(c, None), c), keys))
    d = sum(_trail(adaptive3.make(c, **D), keys))
    sim = adaptive3.make(c, **RULE)
    policy = sim.policy
    hits = sum(_trail(sim, keys))
    assert default - d > 0.03 * len(keys)
    # the account's deficit is the default's hits minus the real cache's, up to the accesses
    # not yet decided on (less than an epoch and the read buffer)
    slack = policy._epoch + len(policy._buf)
    assert abs((default - hits) - policy._deficit) <= slack
    budget = RULE["acct"] * len(keys) + RULE["a0"] * c
    assert default - hits <= budget + slack
    assert policy.locked > 0


def test_the_port_recipe_without_the_pending_reads_is_todays_adoption() -> None:
    """cp=2 (copy, remove, prepend, weights; pending reads dropped) replays exactly as cp=0."""
    c = 100
    keys = _phases(6, c)
    ref = adaptive3.make(c, **RULE)
    expected = _trail(ref, keys)
    sim = adaptive3.make(c, cp=2, **RULE)
    assert _trail(sim, keys) == expected
    assert sim.policy.history == ref.policy.history
    assert sim.policy.syncs == ref.policy.syncs > 0
    # the reads pending in the simulation at each TinyLFU adoption, none carried
    assert [p[:2] for p in sim.policy.pending] == [p[:2] for p in ref.policy.pending]
    assert any(p[1] for p in ref.policy.pending)


def test_the_port_recipe_replays_the_pending_reads_into_the_adopted_engine() -> None:
    """cp=1 keeps its bound, replays the simulation's pending reads, and differs only after."""
    c = 100
    keys = _phases(6, c)
    old, new, control = (adaptive3.make(c, cp=cp, **RULE) for cp in (0, 1, 2))
    trail_old: list[bool] = []
    trail_new: list[bool] = []
    first = -1
    for i, k in enumerate(keys):
        trail_old.append(old.access(k))
        hit = new.access(k)  # PolicySim raises if a victim list breaks the bound
        trail_new.append(hit)
        assert control.access(k) == trail_old[-1]
        if first < 0 and new.policy.pending and new.policy.pending[-1][1]:
            first = i
            _t, pend, carried = new.policy.pending[-1]
            assert len(control.policy.pending) == len(new.policy.pending)
            # the pending reads were replayed by the first remove (none left to carry), so the
            # adopted engine counted exactly them more than the control's (which dropped them)
            e_new, e_ctl = new.policy._engine, control.policy._engine
            assert carried == 0
            assert e_new._sketch.additions - e_ctl._sketch.additions == pend
            assert e_new._hits - e_ctl._hits == pend
        if i % 500 == 0:
            assert len(new.policy) == len(new.resident) <= c
    assert first > 0
    # the same decisions up to (and at) the first adoption with pending reads; not after
    assert trail_new[: first + 1] == trail_old[: first + 1]
    assert trail_new != trail_old
    # the account is still exact
    default = sum(_trail(PolicySim(TinyLFUPolicy(c, None), c), keys))
    policy = new.policy
    slack = policy._epoch + len(policy._buf)
    assert abs((default - sum(trail_new)) - policy._deficit) <= slack
    assert default - sum(trail_new) <= RULE["acct"] * len(keys) + RULE["a0"] * c + slack


def test_make_names_a_bad_cp() -> None:
    """A cp other than 0, 1 or 2 raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="cp must be 0, 1 or 2, got 3"):
        adaptive3.make(100, cp=3)


def test_make_names_an_unknown_option() -> None:
    """An unknown option raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="'nope'"):
        adaptive3.make(100, nope=1)
