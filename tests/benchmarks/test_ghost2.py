"""The Session 7 ghost-admission prototypes replay as documented (docs/research-hitratio.md).

Deterministic replays only: the specification's re-implementation (``ghost2_spec.SpecPolicy``)
must make exactly the decisions of the prototype it specifies (``ghost2.make(c, rg=1, boost=3,
fclr=1)``), and the prototype's switches must reduce to session 6's policy and to today's default.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import ghost2
from benchmarks.prototypes.ghost2_spec import SpecPolicy
from benchmarks.prototypes.ghost_admission import make as make_c
from benchmarks.traces import scan_loop_mix, zipf_shift

from perflayer.cache._policy import TinyLFUPolicy

# syn-scan-mix-s100 at 2,493 entries (the point session 6's ghost lost): its first 60,000
# accesses hold ghost admissions that displace loop keys and the regrets when those come back
SCAN_MIX = scan_loop_mix(102)[:60_000]
SIZE = 2_493


def _trail(sim: PolicySim, keys: Sequence[Hashable]) -> list[bool]:
    """Return the hit/miss of every access."""
    return [sim.access(k) for k in keys]


def test_spec_policy_decides_as_the_prototype_it_specifies() -> None:
    proto = ghost2.make(SIZE, rg=1, boost=3, fclr=1)
    spec = SpecPolicy(SIZE, None)
    sp, ss = PolicySim(proto, SIZE), PolicySim(spec, SIZE)
    for i, k in enumerate(SCAN_MIX):
        assert sp.access(k) == ss.access(k), i
        if i % 5_000 == 0:
            assert sp.resident == ss.resident, i
    assert sp.resident == ss.resident
    # the replay exercised every part of the specification
    assert proto.ghost_admits == spec.ghost_admits > 0
    assert proto.regrets == spec.regrets > 0
    assert proto._fb_score == spec._score


def test_regret_off_is_session_6_variant_c() -> None:
    a = _trail(PolicySim(ghost2.make(SIZE, rg=0), SIZE), SCAN_MIX)
    b = _trail(PolicySim(make_c(SIZE), SIZE), SCAN_MIX)
    assert a == b


def test_ghost_off_is_the_plain_policy() -> None:
    keys = zipf_shift()[:30_000]
    a = _trail(PolicySim(ghost2.make(978, src=0), 978), keys)
    b = _trail(PolicySim(TinyLFUPolicy(978, None, ghost=False), 978), keys)
    assert a == b


def test_make_names_an_unknown_option() -> None:
    with pytest.raises(SystemExit, match="'regret'"):
        ghost2.make(100, regret=1)
