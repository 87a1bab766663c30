"""The C TinyLFUPolicy's ghost admission with regret makes the Python class's decisions.

The random op streams of test_tinylfu_c.py run with the default, ``ghost=True``; here a trace
that exercises every event of the specification (ghost admissions, regrets, a negative score and
its exploration step, probation hits of flagged keys, flagged keys evicted, removed and
cleared), op by op. Deterministic: int keys hash alike in every process.
"""

from __future__ import annotations

import random

import pytest
from benchmarks.traces import scan_loop_mix
from tests.cache.test_tinylfu_c import Op, _run_both

from perflayer.cache._policy import TinyLFUPolicy as PyTinyLFU
from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFU
from perflayer.errors import ConfigError


def _scan_mix_ops(n: int, seed: int) -> list[Op]:
    """syn-scan-mix-s100 as cache-aside reads, with a few writes and deletes."""
    rng = random.Random(seed)
    ops: list[Op] = []
    for k in scan_loop_mix(102)[:n]:
        u = rng.random()
        ops.append(("d" if u < 0.002 else "w" if u < 0.005 else "r", k, 1))
    return ops


def _drive(py: PyTinyLFU, c: CTinyLFU, ops: list[Op]) -> int:
    """Drive both as the cache does, asserting the same victims; return the most flagged keys."""
    most = 0
    for i, (op, k, _w) in enumerate(ops):
        if op == "d":
            py.remove(k)
            c.remove(k)
            continue
        if k in py:
            if op == "r":
                py.hit(k)
                c.hit(k)
                continue
            assert py.update(k, 1) == c.update(k, 1), i
        else:
            if op == "r":
                py.miss(k)
                c.miss(k)
            assert py.add(k, 1) == c.add(k, 1), i
        if i % 1_000 == 0:
            assert py._ghost_state == c._ghost_state, i
        most = max(most, c._ghost_state[4])
    assert py._ghost_state == c._ghost_state
    assert py.window_fraction == c.window_fraction
    return most


@pytest.mark.parametrize("climber", ["sample", "shadow"])
def test_c_ghost_matches_python_through_every_event(climber: str) -> None:
    """syn-scan-mix at 2,493 entries: ghost admissions, regrets and exploration, alike in both."""
    ops = _scan_mix_ops(60_000, 1)
    py = PyTinyLFU(2_493, None, climber=climber, ghost=True)
    c = CTinyLFU(2_493, None, climber=climber, ghost=True)
    most = _drive(py, c, ops)
    admits, regrets, _score, explore, _flagged = c._ghost_state
    # every event happened (the sample climber's run has no regrets: only the shadow's is
    # asserted to exercise everything)
    assert admits > 0 and explore > 0 and most > 0
    if climber == "shadow":
        assert regrets > 0
    # clear forgets the flags, the score and the exploration counter in both
    py.clear()
    c.clear()
    assert py._ghost_state[2:] == c._ghost_state[2:] == (0, 0, 0)
    # after a resize (new, empty tables) they still agree
    assert py.resize(1_500, None) == c.resize(1_500, None)
    _drive(py, c, ops[:20_000])
    # and the op-by-op driver agrees on the same stream (ending with a resize to one entry)
    _run_both(ops[:30_000], 2_493, None, False, climber=climber, ghost=True)


def test_ghost_option_defaults_and_errors_match() -> None:
    """ghost defaults to True in both; a non-bool is the same ConfigError."""
    assert PyTinyLFU(10, None).ghost is CTinyLFU(10, None).ghost is True
    assert PyTinyLFU(10, None, ghost=False).ghost is CTinyLFU(10, None, ghost=False).ghost is False
    for cls in (PyTinyLFU, CTinyLFU):
        with pytest.raises(ConfigError, match=r"ghost must be True or False, got 'yes'"):
            cls(10, None, ghost="yes")  # type: ignore[arg-type]
