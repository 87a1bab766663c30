"""Research prototype: climber4's guarded min/max restart ("A") on today's TinyLFUPolicy.

docs/research-climber.md, Session 8. ``A5Policy`` subclasses ``perflayer.cache._policy.TinyLFUPolicy``
itself (the Python class, ghost admission on by default), not the H3Policy research copy, so with
the restart off (``a=0``) it *is* the default policy, access by access: only ``_shadow_reset``,
``_observe`` and ``_shadow_decide`` are extended, and each calls the base first or unchanged.

With ``a=1`` the shadow climber gains climber4's A (``c4,mm=5,mm_frac=0.5,mm_hold_all=1,g_ez=1,
g_ez_full=1,g_undo=1``; research-climber.md sections 2, 5 and 7.5), re-implemented on the base
class's own climber state:

- two more sampled shadows, ``lo`` (a 1-unit window) and ``hi`` (all but one unit), fed the same
  sampled keys before the near pair; their disagreements go to a slow pair of counts (decay
  1/2**6 per epoch, never reset) whose *side* is the sign of ``hi - lo`` at 3 sigma (16 at least);
- ``away_z`` (climber3's ``mm_z``, on in A although section 5's rule omits it): in an epoch where
  the slow pair has a side, a near move *away* from that side needs 4 sigma instead of 3;
- in an epoch where the near decision did not move the window, the restart: from the bound
  opposite the side (within one step), a full jump to the side's bound, guarded by a sign test
  over epochs (``ez``); else, after 8 epochs without a move, a jump half the way (``frac``);
  then 64 epochs without a jump (the hold counts every epoch);
- the undo (``undo``): while armed (64 epochs after a jump), a 3-sigma lead of the pair's
  disagreements counted since the jump *against* it jumps the window back, once.

Options (``K=V`` of the sweep's ``py:`` spec): ``a`` (0/1), ``ghost`` (1/0: the base's ghost
admission), ``epoch`` (the base's ``_SHADOW_EPOCH``; 0 keeps it), and the A knobs of ``CFG5``.
The sweep takes ``py:benchmarks.prototypes.climber5.make[,K=V...]``.
``python -m benchmarks.prototypes.climber5 TRACE SIZE [K=V...]`` prints one trajectory (window
share and the hit ratio of every 5,000-access stretch, every jump and undo; ``offset=N``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import cast

import perflayer.cache._policy as pol
from benchmarks.prototypes import climber3
from benchmarks.prototypes.shadow_climber import feed_pair
from perflayer.cache._policy import TinyLFUPolicy

CFG5: dict[str, float] = {
    "frac": 0.5,  # a partial jump goes this share of the way to the favoured bound
    "hold": 64,  # epochs without a jump after one
    "still": 8,  # a partial jump needs this many epochs without a move first
    "shift": 6,  # the slow pair's counts lose 1/2**shift per epoch
    "sig2": 9,  # the slow pair's side needs lead**2 > sig2 x disagreements
    "away_z": 1,  # a near move away from the side needs (3 + away_z) sigma (0: off)
    "ez": 1,  # 1: a full jump needs the epoch sign test (e lead**2 > 64 x (e_hi + e_lo))
    "ez_all": 0,  # 1: the epoch test guards partial jumps too
    "undo": 1,  # 1: the undo of a jump whose since-jump count turns against it
    "partial": 1,  # 0: no partial jumps (only full restarts from the opposite bound)
    "full": 1,  # 0: no full jumps
    "warm": 0,  # no jump (full or partial) in the first this many epochs (Session 8, 8.4)
}


class A5Policy(TinyLFUPolicy):
    """TinyLFUPolicy with climber4's guarded min/max restart (A) when ``restart`` is True."""

    def __init__(
        self, max_entries: int | None, max_weight: int | None, *, restart: bool = True, **kw: object
    ) -> None:
        self._a_on = restart  # read by _shadow_reset, which the base's __init__ calls
        self._a_events: list[str] = []
        self._a_clock = 0
        super().__init__(max_entries, max_weight, **kw)  # type: ignore[arg-type]

    def _shadow_reset(self) -> None:
        super()._shadow_reset()
        self._a_lo: TinyLFUPolicy | None = None
        self._a_hi: TinyLFUPolicy | None = None
        if not self._a_on or self._shadow_up is None:
            return
        cap_s = self._shadow_cap
        # as H3Policy._shadow: plain, never re-targeted; window 0.0 / 1.0 size to 1 / all but 1
        self._a_lo = TinyLFUPolicy(
            cap_s, None, window=0.0, adaptive=False, read_buffer=1 << 16, ghost=False
        )
        self._a_hi = TinyLFUPolicy(
            cap_s, None, window=1.0, adaptive=False, read_buffer=1 << 16, ghost=False
        )
        self._a_new_lo = self._a_new_hi = 0
        self._a_lo_w = self._a_hi_w = 0
        self._a_elo = self._a_ehi = 0
        self._a_hold = 0
        self._a_still = 0
        self._a_jumps = 0
        self._a_armed = 0
        self._a_from = -1
        self._a_dir = 0
        self._a_ulo = self._a_uhi = 0
        self._a_undos = 0
        self._a_in_undo = False
        self._a_epochs = 0

    # -- observation ------------------------------------------------------------------------

    def _observe(self, keys: Iterable[Hashable]) -> None:
        if self._a_lo is not None:
            assert self._a_hi is not None
            _, nl, nh = feed_pair(self._a_lo, self._a_hi, keys, self._shadow_threshold)
            self._a_new_lo += nl
            self._a_new_hi += nh
        super()._observe(keys)

    # -- the decision -----------------------------------------------------------------------

    def _a_side(self) -> int:
        """Update the slow pair and the epoch counts; return the favoured extreme (+1/-1) or 0."""
        nl = self._a_new_lo
        nh = self._a_new_hi
        sh = int(CFG5["shift"])
        self._a_elo -= self._a_elo >> sh
        self._a_ehi -= self._a_ehi >> sh
        if nh > nl:
            self._a_ehi += 64
        elif nl > nh:
            self._a_elo += 64
        if self._a_armed:
            self._a_ulo += nl
            self._a_uhi += nh
        lo = self._a_lo_w + nl
        hi = self._a_hi_w + nh
        self._a_new_lo = self._a_new_hi = 0
        self._a_lo_w = lo - (lo >> sh)
        self._a_hi_w = hi - (hi >> sh)
        d = hi - lo
        if d * d > CFG5["sig2"] * (hi + lo) and hi + lo >= 16:
            return 1 if d > 0 else -1
        return 0

    def _shadow_decide(self, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        if self._a_lo is None:
            super()._shadow_decide(up, down)
            return
        self._a_epochs += 1
        side = self._a_side()
        w0 = self._wmax
        jumps = self._a_jumps
        lead = self._dis_up - self._dis_down
        d = 1 if lead > 0 else -1
        if side and d != side and CFG5["away_z"]:
            # climber3's mm_z: a near move away from the favoured extreme needs more sigma
            z = 3 + CFG5["away_z"]
            saved = pol._SHADOW_Z2
            pol._SHADOW_Z2 = int(z * z)
            try:
                super()._shadow_decide(up, down)
            finally:
                pol._SHADOW_Z2 = saved
        else:
            super()._shadow_decide(up, down)
        if self._wmax != w0:
            self._a_still = 0
            if self._a_hold:
                self._a_hold -= 1
        else:
            self._a_still += 1
            self._a_restart(side, up, down)
        if self._a_jumps != jumps or not self._a_armed:
            return
        # the undo test, every epoch while armed
        self._a_armed -= 1
        lo = self._a_ulo
        hi = self._a_uhi
        dd = hi - lo
        if lo + hi >= 16 and dd * dd > 9 * (lo + hi) and (dd > 0) != (self._a_dir > 0):
            self._a_armed = 0
            self._a_events.append(f"undo ep{self._a_epochs} lo={lo} hi={hi}")
            self._a_in_undo = True
            try:
                self._a_jump(self._a_from - self._wmax, up, down)
            finally:
                self._a_in_undo = False
            self._a_undos += 1

    def _a_restart(self, side: int, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        if self._a_hold:
            self._a_hold -= 1
            return
        if not side or self._a_epochs <= CFG5["warm"]:
            return
        cap = self._maximum()
        step = self._shadow_step
        w = self._wmax
        full = (side > 0 and w <= step) or (side < 0 and w >= cap - 1 - step)
        if CFG5["ez"] and (full or CFG5["ez_all"]):
            e = (self._a_ehi - self._a_elo) * side
            if e <= 0 or e * e <= 64 * (self._a_ehi + self._a_elo):
                return
        if full:
            if not CFG5["full"]:
                return
            amount = cap - 1 - w if side > 0 else -(w - 1)
        else:
            if not CFG5["partial"] or self._a_still < CFG5["still"]:
                return
            if side > 0 and w < cap - 1 - step:
                amount = cap - 1 - w
            elif side < 0 and w > 1 + step:
                amount = -(w - 1)
            else:
                return
            amount = round(amount * CFG5["frac"])
        self._a_jump(amount, up, down)

    def _a_jump(self, amount: int, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        old = self._wmax
        while amount:
            before = self._wmax
            self._move_window(amount)
            moved = self._wmax - before
            if not moved:
                break
            amount -= moved
        self._a_jumps += 1
        self._a_still = 0
        self._a_hold = int(CFG5["hold"])
        self._climber_moves += 1
        self._shadow_probe = pol._SHADOW_PROBE
        self._dis_up = self._dis_down = 0
        self._shadow_retarget(up, down)
        cap = self._maximum()
        if not self._a_in_undo:
            self._a_events.append(
                f"jump ep{self._a_epochs} {old / cap:.2f}->{self._wmax / cap:.2f}"
                f" lo_w={self._a_lo_w} hi_w={self._a_hi_w}"
            )
            if CFG5["undo"] and self._wmax != old:
                self._a_armed = int(CFG5["hold"])
                self._a_from = old
                self._a_dir = 1 if self._wmax > old else -1
                self._a_ulo = self._a_uhi = 0


def make(c: int, a: int = 1, ghost: int = 1, epoch: int = 0, **over: float) -> A5Policy:
    """Build an A5Policy for ``c`` entries (the sweep's factory; see the module docstring)."""
    for k, v in over.items():
        if k not in CFG5:
            raise SystemExit(f"unknown climber5 option {k!r}; expected one of {sorted(CFG5)}")
        CFG5[k] = v
    if epoch:
        pol._SHADOW_EPOCH = int(epoch)
    return A5Policy(c, None, restart=bool(a), ghost=bool(ghost))


def trajectory(
    name: str,
    size: int,
    over: dict[str, float],
    every: int = 5000,
    factory: Callable[..., A5Policy] | None = None,
) -> None:
    """Print climber3's trajectory of an A5Policy (``factory``, this module's ``make`` if None),
    with every jump where it happened."""
    climber3.trajectory(
        name,
        size,
        over,
        every,
        make=factory or make,  # type: ignore[arg-type]
        events=lambda p: cast(A5Policy, p)._a_events,
        summary=lambda p: f"moves={cast(A5Policy, p)._climber_moves}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``TRACE SIZE [K=V...]``: print one trajectory."""
    trajectory(*climber3.parse_args(argv))
    return 0


__all__ = ["CFG5", "A5Policy", "make"]

if __name__ == "__main__":
    raise SystemExit(main())
