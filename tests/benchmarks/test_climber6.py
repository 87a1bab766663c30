"""The climber6 prototype decides as documented (docs/research-climber.md, Session 9).

Deterministic: integer keys from a seeded generator, no clocks, no threads. ``make`` writes the
prototypes' module-level option tables (as the sweep does, one process per replay), so every test
restores them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import climber5, climber6, large

import perflayer.cache._policy as pol
from perflayer.cache._policy import TinyLFUPolicy


@pytest.fixture(autouse=True)
def _restore_options() -> Iterator[None]:
    c5, c6, epoch = dict(climber5.CFG5), dict(climber6.CFG6), pol._SHADOW_EPOCH
    yield
    climber5.CFG5.clear()
    climber5.CFG5.update(c5)
    climber6.CFG6.clear()
    climber6.CFG6.update(c6)
    pol._SHADOW_EPOCH = epoch


def _keys(n: int = 8_000) -> list[int]:
    """A Zipf-like hot set of 400 keys with one-off scans of fresh keys between its bursts."""
    rng = random.Random(9)
    out: list[int] = []
    fresh = 10_000
    while len(out) < n:
        out.extend(int(400 * rng.random() ** 3) for _ in range(600))
        out.extend(range(fresh, fresh + 300))
        fresh += 300
    return out[:n]


def _trail(policy: object, c: int, keys: list[int]) -> list[bool]:
    sim = PolicySim(policy, c)  # type: ignore[arg-type]
    return [sim.access(k) for k in keys]


def test_without_the_guard_it_is_climber5() -> None:
    """eff=0 replays access by access as climber5's A+E."""
    keys = _keys()
    got = _trail(climber6.make(600), 600, keys)
    want = _trail(climber5.make(600), 600, keys)
    assert got == want


def test_limit_makes_small_caches_the_default_policy() -> None:
    """A cache of at most ``limit`` entries runs without the restart: the shipped policy itself."""
    keys = _keys()
    policy = climber6.make(600, limit=2_048)
    assert policy._a_lo is None  # no min/max pair built
    assert _trail(policy, 600, keys) == _trail(TinyLFUPolicy(600, None), 600, keys)


def _armed(eff: float, lead: int, wmax: int) -> climber6.C6Policy:
    """A 600-entry C6Policy one epoch before a restart: no hold, 8 epochs still, the given lead."""
    climber6.CFG6["eff"] = eff
    p = climber6.make(600)
    assert isinstance(p, climber6.C6Policy)
    sim = PolicySim(p, 600)
    for k in range(600):  # fill it: a window move is backed by resident keys
        sim.access(k)
    p._a_epochs = 20
    p._a_still = 8
    p._a_hold = 0
    p._c6_lead = lead
    p._a_ehi, p._a_elo = 64 * 16, 0  # the epoch sign test of a full jump up passes
    p._move_window(wmax - p._wmax)
    assert p._wmax == wmax
    return p


def test_a_partial_jump_needs_the_effect_size() -> None:
    """A partial jump up is refused under eff x 2**shift x epoch of lead, taken at or above it."""
    cover = (1 << int(climber5.CFG5["shift"])) * pol._SHADOW_EPOCH  # 16,384 sampled accesses
    need = round(0.03 * cover)  # 492
    for lead, jumps in ((need - 1, False), (need, True)):
        p = _armed(0.03, lead, 200)
        up, down = p._shadow_up, p._shadow_down
        assert up is not None and down is not None
        p._a_restart(1, up, down)
        assert (p._wmax > 200) == jumps, lead
        assert (p._a_jumps == 1) == jumps


def test_the_guard_leaves_full_jumps_and_the_other_side_alone() -> None:
    """A full jump (from the opposite bound) ignores the effect size; a lead against the side
    blocks a partial jump."""
    p = _armed(0.03, 10, 1)  # at the lower bound: a full jump up
    up, down = p._shadow_up, p._shadow_down
    assert up is not None and down is not None
    p._a_restart(1, up, down)
    assert p._wmax == 599
    p = _armed(0.03, 5_000, 400)  # a big lead toward hi, but the side is lo (-1)
    up, down = p._shadow_up, p._shadow_down
    assert up is not None and down is not None
    p._a_restart(-1, up, down)
    assert p._wmax == 400
    assert p._a_jumps == 0


def test_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="bogus"):
        climber6.make(600, bogus=1)


def test_large_is_the_default_below_its_split_and_without_candidates() -> None:
    """large.make: the default policy up to ``low`` entries; above, with TinyLFU as the only
    candidate engine, the full-shadow selection never switches and replays as the default."""
    keys = _keys(6_000)
    small = large.make(600)
    assert type(small.policy) is TinyLFUPolicy
    sim = large.make(2_100, cands=1)
    assert isinstance(sim.policy, large.LargePolicy)
    assert [sim.access(k) for k in keys] == _trail(TinyLFUPolicy(2_100, None), 2_100, keys)
    assert sim.policy.switches == 0
