"""Research prototype: variants of the shadow climber's decision (docs/research-climber.md).

``C3Policy`` is ``H3Policy`` (benchmarks/prototypes/shadow_climber.py; with CFG ``jump=1`` it is
the default climber's exact behaviour) with the options of ``CFG3``; with every option at 0 it
decides exactly as H3Policy.

The sweep takes it as ``py:benchmarks.prototypes.climber3.c3[,K=V...]`` (K a key of CFG or CFG3).
``python -m benchmarks.prototypes.climber3 TRACE SIZE [K=V...]`` prints the window's trajectory
on one trace (share, moves, probe, hit ratio of each stretch).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.prototypes.shadow_climber import CFG, H3Policy, set_options

CFG3: dict[str, float] = {
    # a move needs the lead to be this many sigma more when it reverses the previous move
    "rev_z": 0,
    # a move needs |lead| >= this many 1/1000ths of the sampled accesses since the last decision
    # (a decision on the difference's magnitude, not only its sign); 0: off
    "mag": 0,
    # relative probe: the shadows sit at f * (1 -+ rel) (one shadow unit away at least), the
    # widening doubles that distance; the moves are H3's; 0: off
    "rel": 0,
    # min/max pair: two more shadows at the smallest and the largest window, compared with a slow
    # count (decay 1/2**mm_shift per epoch); 1: a move away from the winning extreme's half
    # needs mm_z sigma more; 2: the window may not cross into the losing half
    "mm": 0,
    "mm_shift": 6,
    "mm_z": 1,
    "mm_sig": 3,  # the pair's lead must be this many sigma to count
    # mm=3: when the window sits within one step of one bound, the local test does not move it and
    # the pair's winner is the other extreme, the window jumps to that extreme (a restart from the
    # other side); then no jump for mm_hold epochs
    "mm_hold": 64,
    "mm_hold_all": 0,  # 1: the hold counts every epoch (0: only the epochs without a move)
    # mm=4: as 3, from any share after mm_still epochs without a move (not only from a bound);
    # mm=5: as 3 from the opposite bound (all the way), else as 4 (mm_frac of the way)
    "mm_still": 8,
    "mm_warm": 0,  # no jump in the first this many epochs (the slow pair's warm-up)
    "mm_agree": 0,  # 1: a jump toward an extreme also needs H3's long-horizon pair to lean that way
    "mm_frac": 1.0,  # a jump goes this share of the way to the extreme
    "mm_back": 0,  # 1: if H3's first move after a jump goes against it, jump back to the old share
    "mm_once": 0,  # 1: a jump is one _increase/_decrease_window call (at most _TRANSFER_MAX keys)
}


class C3Policy(H3Policy):
    """H3Policy with the decision variants of CFG3 (see the module docstring)."""

    def __init__(self, max_entries: int | None, max_weight: int | None, **kw: object) -> None:
        super().__init__(max_entries, max_weight, **kw)
        self._c3_last = 0  # direction of the last move: +1, -1 or 0
        self._c3_trace: list[tuple[int, float]] = []
        self._c3_mm = bool(CFG3["mm"])
        if self._c3_mm:
            self._c3_lo = self._shadow(self._h3_cap_s, 0.0)
            self._c3_hi = self._shadow(self._h3_cap_s, 1.0)
        self._c3_lo_w = 0  # lo hit, hi missed (slow counts)
        self._c3_hi_w = 0
        self._c3_new_lo = 0
        self._c3_new_hi = 0
        self._c3_hold = int(CFG3["mm_warm"])
        self._c3_jumps = 0
        self._c3_still = 0
        self._c3_back = -1  # the share (in units) before the last jump, while it may be undone
        if CFG3["rel"]:
            self._h3_retarget()

    # -- observation: the min/max pair sees the same sampled keys ---------------------------

    def _observe(self, keys: object) -> None:
        if self._c3_mm:
            from benchmarks.prototypes.shadow_climber import feed_pair

            _, nl, nh = feed_pair(self._c3_lo, self._c3_hi, keys, self._h3_threshold)
            self._c3_new_lo += nl
            self._c3_new_hi += nh
        super()._observe(keys)

    def _h3_retarget(self) -> None:
        rel = CFG3["rel"]
        if not rel:
            super()._h3_retarget()
            return
        cap = self._maximum()
        f = self._wmax / cap
        # the base distance is rel x the share (one shadow unit at least); widening doubles it
        d = max(rel * f, 1.0 / self._h3_cap_s) * (self._h3_probe / CFG["probe"])
        self._shadow_target(self._h3_down, f - d)
        self._shadow_target(self._h3_up, f + d)

    # -- the decision -----------------------------------------------------------------------

    def _c3_mm_side(self) -> int:
        """+1 when the largest window wins the slow comparison, -1 the smallest, 0 neither."""
        sh = CFG3["mm_shift"]
        lo = self._c3_lo_w + self._c3_new_lo
        hi = self._c3_hi_w + self._c3_new_hi
        self._c3_new_lo = self._c3_new_hi = 0
        self._c3_lo_w = lo - (lo >> sh)
        self._c3_hi_w = hi - (hi >> sh)
        d = hi - lo
        z = CFG3["mm_sig"]
        if d * d > z * z * (hi + lo) and hi + lo >= 16:
            return 1 if d > 0 else -1
        return 0

    def _h3_decide(self) -> None:
        # the variants act by raising the test's threshold for this epoch (z) or by vetoing a move
        side = self._c3_mm_side() if self._c3_mm else 0
        du = self._h3_dis_up
        dd = self._h3_dis_down
        lead = du - dd
        z0 = CFG["z"]
        z = z0
        veto = False
        d = 1 if lead > 0 else -1
        if CFG3["rev_z"] and self._c3_last and d == -self._c3_last:
            z = z0 + CFG3["rev_z"]
        if CFG3["mag"] and abs(lead) * 1000 < CFG3["mag"] * max(1, self._h3_tot + self._h3_epoch):
            veto = True
        if side:
            cap = self._maximum()
            f = self._wmax / cap
            # moving away from the winning extreme, or being on the losing half
            away = d != side
            if CFG3["mm"] == 2:
                nxt = f + d * max(CFG["step"], self._h3_probe / 2)
                if away and ((side > 0 and nxt < 0.5) or (side < 0 and nxt > 0.5)):
                    veto = True
            elif away:
                z = z + CFG3["mm_z"]
        wmax = self._wmax
        if veto:
            # as if the lead were not significant: H3 then decays and widens
            saved = CFG["z"]
            CFG["z"] = 1 << 30
            try:
                super()._h3_decide()
            finally:
                CFG["z"] = saved
        elif z != z0:
            saved = CFG["z"]
            CFG["z"] = z
            try:
                super()._h3_decide()
            finally:
                CFG["z"] = saved
        else:
            super()._h3_decide()
        if self._wmax != wmax:
            d_moved = 1 if self._wmax > wmax else -1
            if self._c3_back >= 0:
                back = self._c3_back
                self._c3_back = -1
                if d_moved == -self._c3_last:
                    self._c3_jump_to(back)
            self._c3_last = d_moved
            self._c3_still = 0
            if CFG3["mm_hold_all"] and self._c3_hold:
                self._c3_hold -= 1
        else:
            self._c3_still += 1
            if CFG3["mm"] >= 3:
                self._c3_restart(side)

    def _c3_restart(self, side: int) -> None:
        if self._c3_hold:
            self._c3_hold -= 1
            return
        if not side:
            return
        cap = self._maximum()
        step = self._h3_step
        frac = CFG3["mm_frac"]
        at_lo = self._wmax <= step
        at_hi = self._wmax >= cap - 1 - step
        if CFG3["mm"] == 5 and ((side > 0 and at_lo) or (side < 0 and at_hi)):
            # mm=5: from the opposite bound a jump goes all the way (mm=3), else as mm=4
            frac = 1.0
        elif CFG3["mm"] >= 4:
            # from anywhere after a still stretch, unless already within a step of that bound
            if self._c3_still < CFG3["mm_still"]:
                return
            at_lo = self._wmax > 1 + step
            at_hi = self._wmax < cap - 1 - step
            at_lo, at_hi = at_hi, at_lo
        hi_ok = at_lo
        lo_ok = at_hi
        if CFG3["mm_agree"]:
            ll = self._h3_lu - self._h3_ld
            if ll * side <= 0:
                return
        if side > 0 and hi_ok:
            amount = cap - 1 - self._wmax
        elif side < 0 and lo_ok:
            amount = -(self._wmax - 1)
        else:
            return
        amount = round(amount * frac)
        old = self._wmax
        self._c3_jump(amount)
        self._c3_last = side
        if CFG3["mm_back"]:
            self._c3_back = old

    def _c3_jump_to(self, units: int) -> None:
        """Jump back to a share (``units`` of window capacity)."""
        self._c3_jump(units - self._wmax)

    def _c3_jump(self, amount: int) -> None:
        # the real move: _increase/_decrease_window transfer at most _TRANSFER_MAX keys per call
        while amount:
            before = self._wmax
            self._adjust = amount
            if amount > 0:
                self._increase_window()
            else:
                self._decrease_window()
            self._adjust = 0
            moved = self._wmax - before
            if not moved or CFG3["mm_once"]:
                break
            amount -= moved
        self._c3_jumps += 1
        self._c3_still = 0
        self._c3_hold = CFG3["mm_hold"]
        self._h3_moves += 1
        self._h3_probe = CFG["probe"]
        self._h3_dis_up = self._h3_dis_down = 0
        self._h3_tot = 0
        self._h3_quiet = 0
        self._h3_retarget()


def c3(c: int, **over: float) -> C3Policy:
    """Build a C3Policy for ``c`` entries after applying CFG / CFG3 overrides (the sweep's factory)."""
    set_options("climber3", over, CFG3, CFG)
    return C3Policy(c, None)


def trajectory(
    name: str,
    size: int,
    over: dict[str, float],
    every: int = 5000,
    make: Callable[..., C3Policy] | None = None,
    events: Callable[[C3Policy], list[str]] | None = None,
    counts: Callable[[C3Policy], str] | None = None,
    summary: Callable[[Any], str] | None = None,
) -> None:
    """Print the window share and the stretch hit ratio every ``every`` accesses on one trace.

    ``make`` builds the policy (``c3``); ``events(policy)`` is a growing list of event lines
    (printed where they happened), ``counts(policy)`` more counts for the summary line;
    ``summary(policy)`` replaces its C3Policy counts (moves, jumps) for another policy.
    """
    from benchmarks.hitratio import PolicySim
    from benchmarks.traces import real_traces, synthetic_traces

    offset = int(over.pop("offset", 0))
    traces = ([] if offset else real_traces()) + synthetic_traces(offset)
    keys = next(t.keys for t in traces if t.name == name)
    pol = (make or c3)(size, **over)
    sim = PolicySim(pol, size)
    hits = total = nev = 0
    row: list[str] = []
    for i, k in enumerate(keys, 1):
        if sim.access(k):
            hits += 1
            total += 1
        if events is not None and len(events(pol)) > nev:
            row.extend(f"[{i // 1000}k {e}]" for e in events(pol)[nev:])
            nev = len(events(pol))
        if i % every == 0:
            row.append(f"{i // 1000}k:{pol._wmax / size:.2f}/{100 * hits / every:.0f}")
            hits = 0
    more = f" {counts(pol)}" if counts is not None else ""
    head = summary(pol) if summary else f"moves={pol._h3_moves} jumps={pol._c3_jumps}"
    print(f"{name}@{size} {100 * total / len(keys):.2f} {head}{more}")
    line: list[str] = []
    for cell in row:
        if cell.startswith("["):
            if line:
                print("  " + " ".join(line))
                line = []
            print("    " + cell)
            continue
        line.append(cell)
        if len(line) == 10:
            print("  " + " ".join(line))
            line = []
    if line:
        print("  " + " ".join(line))


def parse_args(argv: Sequence[str] | None) -> tuple[str, int, dict[str, float]]:
    """Return (trace, size, options) of ``TRACE SIZE [K=V...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    over: dict[str, float] = {}
    for kv in args[2:]:
        k, v = kv.split("=")
        over[k] = float(v) if "." in v else int(v)
    return args[0], int(args[1]), over


def main(argv: Sequence[str] | None = None) -> int:
    """``TRACE SIZE [K=V...]``: print one trajectory."""
    trajectory(*parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
