"""Research prototype: guards for climber3's min/max restart jump (docs/research-climber.md, Session 7).

``C4Policy`` is ``C3Policy`` (benchmarks/prototypes/climber3.py) with the guard options of
``CFG4``; with every option of CFG4 at 0 it decides exactly as C3Policy. The guards act on the
restart jump of ``mm`` >= 3 only (the near climber H3 is untouched):

- ``g_undo``: after a jump, the min/max pair's disagreements are also counted from the jump on
  (``u_lo``, ``u_hi``, never decayed). While the jump is armed (``g_undo_ep`` epochs, 0: as long
  as the hold), a lead of that count for the side the jump left (``g_undo_z`` sigma, at least 16
  disagreements) jumps the window back to the share it left, once; the hold then restarts.
- ``g_run``: a jump toward a side needs the last ``g_run`` epochs with any one-sided lead of
  the pair's *new* disagreements (ties skipped) to all favour that side: a lead built by one
  burst (a loop's first passes) does not restart the window, one built over several epochs does.
- ``g_ez``: a sign test over epochs: each epoch whose new disagreements lead one way adds one
  (x64, decayed as the slow pair) to that side's epoch count; a jump also needs that count's
  lead for its side at ``g_ez`` sigma (a burst of one or two epochs is not enough).
- ``g_eff``: an effect size: a jump also needs ``|hi - lo| x g_eff > hi + lo`` for the slow
  pair (a lead that is significant only because both count many disagreements does not jump).
- ``g_persist``: a jump needs the slow pair to favour the same side for this many epochs in a row.
- ``g_age``: no jump before the cache has seen about this many x its capacity accesses (counted
  in epochs: epochs x epoch x R >= g_age x capacity).

The sweep takes it as ``py:benchmarks.prototypes.climber4.c4[,K=V...]`` (K a key of CFG, CFG3
or CFG4). ``python -m benchmarks.prototypes.climber4 TRACE SIZE [K=V...]`` prints the window's
trajectory on one trace and every jump (access, epoch, shares, the pair's counts); ``offset=N``
picks a held-out family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from benchmarks.prototypes import climber3
from benchmarks.prototypes.climber3 import CFG3, C3Policy
from benchmarks.prototypes.shadow_climber import CFG, set_options

CFG4: dict[str, float] = {
    "g_undo": 0,  # 1: a jump is undone when the pair's count since the jump favours the other side
    "g_undo_ep": 0,  # epochs the undo stays armed after a jump (0: mm_hold)
    "g_undo_z": 3,  # sigma of the since-jump lead that undoes
    "g_undo_min": 16,  # disagreements since the jump before the undo test counts
    "g_run": 0,  # a jump needs this many epochs in a row whose new disagreements favour its side
    "g_ez": 0,  # >0: a jump also needs a sign test over epochs (which side each epoch's new
    # disagreements favoured, counts decayed as the slow pair's) at this many sigma
    "g_ez_min": 0,
    "g_ez_full": 0,  # 1: the epoch test guards only the full jumps (from the opposite bound)  # ... and at least this many (decayed) epochs favouring the side
    "g_eff": 0,  # >0: a jump also needs the slow pair's lead x g_eff > its disagreements
    # (an effect size: the winner holds > (K+1)/(K-1) x the loser's count)
    "g_persist": 0,  # a jump needs the slow pair's side unchanged for this many epochs
    "g_age": 0,  # no jump before about g_age x capacity accesses
    "log": 0,  # 1: record every epoch's (epoch, share, slow lo, slow hi, side) in _c4_log
}


class C4Policy(C3Policy):
    """C3Policy with the restart-jump guards of CFG4 (see the module docstring)."""

    def __init__(self, max_entries: int | None, max_weight: int | None, **kw: object) -> None:
        super().__init__(max_entries, max_weight, **kw)
        self._c4_epochs = 0
        self._c4_side = 0  # the slow pair's side at the last epoch
        self._c4_run = 0  # epochs in a row with that side
        self._c4_lo = 0
        self._c4_hi = 0
        self._c4_elo = 0  # epochs whose new disagreements favoured lo (x64, decayed)
        self._c4_ehi = 0
        self._c4_erun = 0  # signed: epochs in a row whose new disagreements lead that way
        self._c4_armed = 0  # epochs left in which the last jump may be undone
        self._c4_from = -1  # the share (units) the last jump left
        self._c4_dir = 0  # the last jump's direction
        self._c4_ulo = 0
        self._c4_uhi = 0
        self._c4_undos = 0
        self._c4_events: list[str] = []
        self._c4_log: list[tuple[int, float, int, int, int]] = []
        self._c4_in_undo = False
        r = 1
        thr = self._h3_threshold
        while thr < (1 << 64) and (1 << 64) // thr > r:
            r *= 2
        self._c4_rate = r

    # -- bookkeeping ------------------------------------------------------------------------

    def _c3_mm_side(self) -> int:
        nl = self._c3_new_lo
        nh = self._c3_new_hi
        # the slow pair's counts the side test below sees (before this epoch's decay)
        self._c4_lo = self._c3_lo_w + nl
        self._c4_hi = self._c3_hi_w + nh
        if nh != nl:
            d = 1 if nh > nl else -1
            if d * self._c4_erun > 0:
                self._c4_erun += d
            else:
                self._c4_erun = d
        sh = int(CFG3["mm_shift"])
        self._c4_elo -= self._c4_elo >> sh
        self._c4_ehi -= self._c4_ehi >> sh
        if nh > nl:
            self._c4_ehi += 64
        elif nl > nh:
            self._c4_elo += 64
        if self._c4_armed:
            self._c4_ulo += self._c3_new_lo
            self._c4_uhi += self._c3_new_hi
        side = super()._c3_mm_side()
        self._c4_epochs += 1
        if side == self._c4_side:
            self._c4_run += 1
        else:
            self._c4_side = side
            self._c4_run = 1
        if CFG4["log"]:
            self._c4_log.append(
                (
                    self._c4_epochs,
                    self._wmax / self._maximum(),
                    self._c3_lo_w,
                    self._c3_hi_w,
                    side,
                )
            )
        return side

    def _h3_decide(self) -> None:
        jumps = self._c3_jumps
        super()._h3_decide()
        if self._c3_jumps != jumps or not self._c4_armed:
            return
        # the undo test, every epoch while armed
        self._c4_armed -= 1
        lo = self._c4_ulo
        hi = self._c4_uhi
        d = hi - lo
        z = CFG4["g_undo_z"]
        if (
            lo + hi >= CFG4["g_undo_min"]
            and d * d > z * z * (lo + hi)
            and (d > 0) != (self._c4_dir > 0)
        ):
            self._c4_armed = 0
            self._c4_events.append(
                f"undo ep{self._c4_epochs} lo={lo} hi={hi} -> {self._c4_from / self._maximum():.2f}"
            )
            self._c4_in_undo = True
            try:
                self._c3_jump_to(self._c4_from)
            finally:
                self._c4_in_undo = False
            self._c4_undos += 1
            self._c3_last = -self._c4_dir

    def _c3_restart(self, side: int) -> None:
        if side and not self._c3_hold:
            if CFG4["g_run"] and self._c4_erun * side < CFG4["g_run"]:
                return
            ez = CFG4["g_ez"]
            step = self._h3_step
            w = self._wmax
            full = (side > 0 and w <= step) or (side < 0 and w >= self._maximum() - 1 - step)
            if ez and (full or not CFG4["g_ez_full"]):
                e = (self._c4_ehi - self._c4_elo) * side
                if e <= 0 or e * e <= ez * ez * 64 * (self._c4_ehi + self._c4_elo):
                    return
                if (self._c4_ehi if side > 0 else self._c4_elo) < 64 * CFG4["g_ez_min"]:
                    return
            if CFG4["g_eff"]:
                lo = self._c4_lo
                hi = self._c4_hi
                if abs(hi - lo) * CFG4["g_eff"] <= hi + lo:
                    return
            if CFG4["g_persist"] and self._c4_run < CFG4["g_persist"]:
                return
            if CFG4["g_age"]:
                seen = self._c4_epochs * self._h3_epoch * self._c4_rate
                if seen < CFG4["g_age"] * self._maximum():
                    return
        super()._c3_restart(side)

    def _c3_jump(self, amount: int) -> None:
        old = self._wmax
        super()._c3_jump(amount)
        if self._c4_in_undo:
            return
        self._c4_events.append(
            f"jump ep{self._c4_epochs} {old / self._maximum():.2f}->"
            f"{self._wmax / self._maximum():.2f} lo_w={self._c3_lo_w} hi_w={self._c3_hi_w}"
        )
        if CFG4["g_undo"] and self._wmax != old:
            self._c4_armed = int(CFG4["g_undo_ep"] or CFG3["mm_hold"])
            self._c4_from = old
            self._c4_dir = 1 if self._wmax > old else -1
            self._c4_ulo = self._c4_uhi = 0


def c4(c: int, **over: float) -> C4Policy:
    """Build a C4Policy for ``c`` entries after applying CFG / CFG3 / CFG4 overrides."""
    set_options("climber4", over, CFG4, CFG3, CFG)
    return C4Policy(c, None)


def trajectory(name: str, size: int, over: dict[str, float], every: int = 5000) -> None:
    """Print climber3's trajectory of a C4Policy, with every jump and undo where it happened."""
    climber3.trajectory(
        name,
        size,
        over,
        every,
        make=c4,
        events=lambda p: cast(C4Policy, p)._c4_events,
        counts=lambda p: f"undos={cast(C4Policy, p)._c4_undos}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``TRACE SIZE [K=V...]``: print one trajectory."""
    trajectory(*climber3.parse_args(argv))
    return 0


__all__ = ["CFG4", "C4Policy", "c4", "climber3"]

if __name__ == "__main__":
    raise SystemExit(main())
