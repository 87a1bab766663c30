"""Research prototype: guards for the restart's late partial jumps above 2,048 entries.

docs/research-climber.md, Session 9. ``C6Policy`` is climber5's ``A5Policy`` (today's
``TinyLFUPolicy`` with climber4's guarded min/max restart, "A+E") plus the options of ``CFG6``;
with every option at 0 it decides exactly as ``A5Policy``. ``limit`` switches the restart off for
caches of up to that many entries (they are then the default policy itself), so a sweep over the
points above 2,048 entries measures the size split's upper half.

Result (Session 9, 3-epoch median, points above 2,048 entries): ``eff=0.03`` removes every late
partial-jump loss of A+E and keeps its syn-phases closes: within 1 point of the best peer 18 -> 19 /
16 -> 16 / 15 -> 16 / 14 -> 14 (60 points, offsets 100, 200, 300), worst point -0.49 against the
default; not a win by the bar (ties on two families).

Options (``CFG6``, ``K=V`` of the sweep's ``py:benchmarks.prototypes.climber6.make`` spec):

- ``eff``: a *partial* jump also needs the slow pair's lead (``hi - lo`` toward the side, the
  decayed counts of 2**shift epochs) to be at least ``eff`` of the sampled accesses those counts
  cover (``2**shift x _SHADOW_EPOCH``): the extremes must differ by that share of hits, not only
  significantly (0: off). Full jumps (from the opposite bound) are unchanged.
- ``limit``: caches of at most this many entries run without the restart (0: every size).

Every climber5 option (``a``, ``ghost``, ``epoch`` and the keys of ``CFG5``) is passed through.
``python -m benchmarks.prototypes.climber6 TRACE SIZE [K=V...]`` prints one trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence

import perflayer.cache._policy as pol
from benchmarks.prototypes import climber3, climber5
from benchmarks.prototypes.climber5 import CFG5, A5Policy
from perflayer.cache._policy import TinyLFUPolicy

CFG6: dict[str, float] = {
    "eff": 0.0,  # a partial jump needs hi - lo >= eff x 2**shift x _SHADOW_EPOCH (0: off)
    "limit": 0,  # caches of at most this many entries run without the restart
}


class C6Policy(A5Policy):
    """A5Policy whose partial jumps also need an effect size (``CFG6["eff"]``)."""

    def _shadow_reset(self) -> None:
        super()._shadow_reset()
        self._c6_lead = 0  # hi - lo of the slow pair at this epoch (after adding its counts)

    def _a_side(self) -> int:
        # the lead the side test saw: the decayed counts before this epoch's decay plus the new
        lead = (self._a_hi_w + self._a_new_hi) - (self._a_lo_w + self._a_new_lo)
        self._c6_lead = lead
        return super()._a_side()

    def _a_restart(self, side: int, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        eff = CFG6["eff"]
        if eff and not self._a_hold and side and self._a_epochs > CFG5["warm"]:
            cap = self._maximum()
            step = self._shadow_step
            w = self._wmax
            full = (side > 0 and w <= step) or (side < 0 and w >= cap - 1 - step)
            cover = (1 << int(CFG5["shift"])) * pol._SHADOW_EPOCH
            if not full and self._c6_lead * side < eff * cover:
                return  # a partial jump on too small an effect: none this epoch
        super()._a_restart(side, up, down)


def make(c: int, a: int = 1, ghost: int = 1, epoch: int = 0, **over: float) -> A5Policy:
    """Build a C6Policy for ``c`` entries (the sweep's factory; see the module docstring)."""
    rest: dict[str, float] = {}
    for k, v in over.items():
        if k in CFG6:
            CFG6[k] = v
        elif k in CFG5:
            rest[k] = v
        else:
            raise SystemExit(
                f"unknown climber6 option {k!r}; expected one of {sorted(CFG5) + sorted(CFG6)}"
            )
    # climber5.make sets CFG5 and the epoch; build our class with the same switches
    climber5.make(c, a=0, ghost=ghost, epoch=epoch, **rest)
    on = bool(a) and c > CFG6["limit"]
    return C6Policy(c, None, restart=on, ghost=bool(ghost))


def trajectory(name: str, size: int, over: dict[str, float], every: int = 5000) -> None:
    """Print climber3's trajectory of a C6Policy, with every jump where it happened."""
    climber5.trajectory(name, size, over, every, factory=make)


def main(argv: Sequence[str] | None = None) -> int:
    """``TRACE SIZE [K=V...]``: print one trajectory."""
    trajectory(*climber3.parse_args(argv))
    return 0


__all__ = ["CFG6", "C6Policy", "make"]

if __name__ == "__main__":
    raise SystemExit(main())
