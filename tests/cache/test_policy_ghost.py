"""TinyLFUPolicy's ghost admission with regret makes the decisions of its prototype.

The oracle is ``benchmarks.prototypes.ghost2.make(c, rg=1, boost=3, fclr=1)`` ("E",
docs/research-hitratio.md, Session 7), replayed access by access as ``benchmarks.hitratio`` does
(a miss and an add per missed read): the hit/miss of every access, the resident set, the
regions, the counts of ghost admissions and regrets and the feedback score must be equal.
Deterministic: int keys hash alike in every process.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import ghost2
from benchmarks.traces import recency_bursts, scan_loop_mix, tenants, zipf_shift

from perflayer.cache._policy import TinyLFUPolicy

# (name, trace, capacity, must ghost admissions and regrets happen?): syn-scan-mix-s100@2493 is
# where Session 7's diagnosis ran (ghost admissions displacing loop keys, regrets when they
# come back, the score negative and the exploration step)
POINTS: list[tuple[str, Callable[[], list[int]], int, bool]] = [
    ("scan-mix-s100@2493", lambda: scan_loop_mix(102)[:60_000], 2_493, True),
    ("zipf-shift@978", lambda: zipf_shift()[:30_000], 978, True),
    ("tenants@1383", lambda: tenants()[:40_000], 1_383, True),
    ("recency-bursts-s100@316", lambda: recency_bursts(104)[:20_000], 316, False),
]


@pytest.mark.parametrize(("name", "trace", "size", "busy"), POINTS, ids=[p[0] for p in POINTS])
def test_ghost_replays_as_the_prototype(
    name: str, trace: Callable[[], list[int]], size: int, busy: bool
) -> None:
    """ghost=True answers every access as ghost2 E and ends in the same state."""
    proto = ghost2.make(size, rg=1, boost=3, fclr=1)
    ours = TinyLFUPolicy(size, None, ghost=True)
    sp, so = PolicySim(proto, size), PolicySim(ours, size)
    explored = False
    for i, k in enumerate(trace()):
        assert sp.access(k) == so.access(k), (name, i)
        explored = explored or ours._gscore < 0
        if i % 5_000 == 0:
            assert sp.resident == so.resident, (name, i)
    assert sp.resident == so.resident
    ours.add(-1, 1)  # replays the last reads in both
    proto.add(-1, 1)
    for region in ("_window", "_probation", "_protected"):
        assert list(getattr(ours, region)) == list(getattr(proto, region)), region
    assert ours._ghost_admits == proto.ghost_admits
    assert ours._regrets == proto.regrets
    assert ours._gscore == proto._fb_score
    assert ours._unproven == proto._flagged
    if busy:
        assert ours._ghost_admits > 0 and ours._regrets > 0
    if name.startswith("scan-mix"):
        # the score went negative, so the exploration step decided some admissions
        assert explored and ours._gexplore > 0


def test_ghost_off_is_the_plain_policy() -> None:
    """ghost=False (the shadows' setting) decides as before the port: as ghost2 with src=0."""
    keys = scan_loop_mix(102)[:30_000]
    proto = ghost2.make(2_493, src=0)
    ours = TinyLFUPolicy(2_493, None, ghost=False)
    sp, so = PolicySim(proto, 2_493), PolicySim(ours, 2_493)
    assert [sp.access(k) for k in keys] == [so.access(k) for k in keys]
    assert ours._ghost_admits == ours._regrets == ours._gscore == 0


def test_ghost_tables_are_sized_from_max_entries_when_first_needed() -> None:
    """G gets the next power of two >= 2 x max_entries slots, R >= max_entries, at the first
    rejection; a resize forgets them; without the ghost or an entry bound they are never built."""
    p = TinyLFUPolicy(1_000, None, ghost=True)
    assert p.ghost and p._gtab is None and p._rtab is None
    for k in range(1_000):
        p.add(k, 1)  # fills the cache: no admission test yet
    assert p._gtab is None
    for k in range(1_000, 1_100):
        p.add(k, 1)
    assert p._gtab is not None and p._rtab is not None
    assert (len(p._gtab), len(p._rtab)) == (2_048, 1_024)
    p.resize(3_000, None)
    assert p._gtab is None and p._gage == 3_000
    for k in range(10_000):
        p.add(k, 1)
    assert p._gtab is not None and p._rtab is not None
    assert (len(p._gtab), len(p._rtab)) == (8_192, 4_096)
    for q in (TinyLFUPolicy(100, None, ghost=False), TinyLFUPolicy(None, 100)):
        for k in range(1_000):
            q.add(k, 1)
        assert q._gage == 0 and q._gtab is None and q._rtab is None
    shadowed = TinyLFUPolicy(1_000, None, ghost=True, climber="shadow")
    assert shadowed._shadow_up is not None and not shadowed._shadow_up.ghost


def test_flags_leave_with_their_keys() -> None:
    """remove, eviction and clear drop a ghost-admitted key's flag; clear resets the score."""
    size = 2_493
    p = TinyLFUPolicy(size, None, ghost=True)
    sim = PolicySim(p, size)
    for k in scan_loop_mix(102)[:40_000]:
        sim.access(k)
        if p._unproven:
            break
    assert p._unproven
    k = next(iter(p._unproven))
    p.remove(k)
    assert k not in p._unproven
    p.clear()
    assert not p._unproven and p._gscore == 0 and p._gexplore == 0


def test_ghost_must_be_a_bool() -> None:
    """A non-bool ghost is a ConfigError naming the value."""
    from perflayer.errors import ConfigError

    with pytest.raises(ConfigError, match="ghost must be True or False, got 1"):
        TinyLFUPolicy(10, None, ghost=1)  # type: ignore[arg-type]
