"""Research prototype: H3Policy (benchmarks/prototypes/shadow_climber.py) plus a far shadow.

H4Policy keeps H3Policy's two near shadows and its decisions, and adds (CFG2["far"] = 1):
- a *centre* shadow C at the real window share and a *far* shadow F at one of FAR_POSITIONS (the
  next one in turn that is at least CFG2["far_gap"] away from the real share), both sampled
  like the near shadows;
- counts of the sampled accesses on which exactly one of C and F hits; after at least
  CFG2["far_min"] epochs, if F leads at CFG2["far_z"] sigma, the real window *jumps* to F's share
  (through _increase/_decrease_window, called until it lands), the near shadows and C re-centre there and F moves to the old share
  (so a wrong jump is undone the same way). After CFG2["far_max"] epochs without a jump F moves
  to the next position and its counts restart.
CFG2["far_real"] = 1 compares F with the real cache's own hits on the sampled keys instead of a
centre shadow (no fourth shadow; the real cache is a full-size cache, F a sampled one).
"""

from __future__ import annotations

from benchmarks.prototypes.shadow_climber import _GOLDEN, CFG, H3Policy
from perflayer.cache._policy import _MASK64

CFG2: dict[str, float] = {
    "far": 1,
    "jump_frac": 0.5,  # H5Policy: a move after a widened probe goes this share of the probe
    "far_gap": 0.25,
    "far_min": 4,
    "far_max": 32,
    "far_z": 3,
    "far_real": 0,
    "far_once": 0,  # 1: test F only once, at the end of its dwell (one look, no early exit)
    "far_cap": 0,
    "far_backoff": 0,  # 1: a jump back to the share before the previous jump doubles the dwell
    "far_relax": 4,
    "far_still": 0,  # 1: a near move restarts F's dwell and counts (a jump needs a still window)
    "far_hist": 0,  # 1: a jump also needs the position's earlier visits (halved per visit) to agree  # dwells without a jump that halve it again  # the dwell lasts at least this many x the shadow capacity sampled accesses
}
FAR_POSITIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


class H4Policy(H3Policy):
    """H3Policy plus a far shadow that can make the window jump (see the module docstring)."""

    def __init__(self, max_entries: int | None, max_weight: int | None, **kw: object) -> None:
        super().__init__(max_entries, max_weight, **kw)
        f = self._wmax / (max_entries or 1)
        self._far_on = bool(CFG2["far"])
        self._c = self._shadow(self._h3_cap_s, f)
        self._far_i = 0
        self._far_pos = 0.0
        self._f = self._shadow(self._h3_cap_s, 0.0)
        self._far_next()
        self._far_cw = 0  # centre (or real) hit, far missed
        self._far_fw = 0  # far hit, centre missed
        self._far_epochs = 0
        self._far_jumps = 0
        self._far_level = 0
        self._far_prev = -1.0  # the share before the last jump
        self._far_quiet = 0
        self._far_hist: dict[int, list[int]] = {}  # slot -> [cw, fw, visits]

    def _far_next(self) -> None:
        f = self._wmax / self._maximum()
        for _ in FAR_POSITIONS:
            self._far_i = (self._far_i + 1) % len(FAR_POSITIONS)
            pos = FAR_POSITIONS[self._far_i]
            if abs(pos - f) >= CFG2["far_gap"]:
                break
        self._far_pos = pos
        self._shadow_target(self._f, pos)
        self._far_cw = self._far_fw = 0
        self._far_epochs = 0

    def _observe(self, keys: object) -> None:
        if not self._far_on:
            super()._observe(keys)
            return
        threshold = self._h3_threshold
        full = threshold > _MASK64
        c = self._c
        fs = self._f
        cw_ = c._where
        fw_ = fs._where
        real = self._where
        use_real = CFG2["far_real"]
        cw = self._far_cw
        fw = self._far_fw
        sampled = []
        for k in keys:  # type: ignore[attr-defined]
            if not full and ((hash(k) * _GOLDEN) & _MASK64) >= threshold:
                continue
            sampled.append(k)
            hc = (k in real) if use_real else (k in cw_)
            hf = k in fw_
            if not use_real:
                c._buf.append(k)
                if not hc:
                    c.add(k, 1)
            fs._buf.append(k)
            if not hf:
                fs.add(k, 1)
            if hc != hf:
                if hc:
                    cw += 1
                else:
                    fw += 1
        self._far_cw = cw
        self._far_fw = fw
        if len(c._buf) > 4096:
            c._drain()
        if len(fs._buf) > 4096:
            fs._drain()
        # the near shadows: the parent's loop, on the sampled keys only (all pass its test)
        super()._observe(sampled)

    def _h3_decide(self) -> None:
        before = self._wmax
        super()._h3_decide()
        if not self._far_on:
            return
        cap = self._maximum()
        if self._wmax != before and not CFG2["far_real"]:
            self._shadow_target(self._c, self._wmax / cap)
        if self._wmax != before and CFG2["far_still"]:
            self._far_cw = self._far_fw = 0
            self._far_epochs = 0
            return
        self._far_epochs += 1
        cw = self._far_cw
        fw = self._far_fw
        n = cw + fw
        lead = fw - cw
        z = CFG2["far_z"]
        dwell = max(CFG2["far_max"], -(-CFG2["far_cap"] * self._h3_cap_s // self._h3_epoch))
        dwell <<= self._far_level
        first = dwell if CFG2["far_once"] else CFG2["far_min"]
        ok = True
        if CFG2["far_hist"]:
            hc, hf, hv = self._far_hist.get(self._far_i, (0, 0, 0))
            hl = lead + hf - hc
            ok = hv >= 1 and hl > 0 and hl * hl > z * z * (n + hc + hf)
        if ok and self._far_epochs >= first and n >= 16 and lead > 0 and lead * lead > z * z * n:
            old = self._wmax / cap
            if CFG2["far_backoff"]:
                if abs(self._far_pos - self._far_prev) < CFG["step"] and self._far_level < 4:
                    self._far_level += 1
                self._far_prev = old
                self._far_quiet = 0
            target = min(max(1, round(self._far_pos * cap)), cap - 1)
            for _ in range(64):  # _TRANSFER_MAX keys per call
                prev = self._wmax
                self._adjust = target - prev
                if self._adjust > 0:
                    self._increase_window()
                elif self._adjust < 0:
                    self._decrease_window()
                self._adjust = 0
                if self._wmax == prev or self._wmax == target:
                    break
            self._far_jumps += 1
            self._h3_moves += 1
            f = self._wmax / cap
            self._h3_probe = CFG["probe"]
            self._h3_retarget()
            self._h3_dis_up = self._h3_dis_down = 0
            self._h3_lu = self._h3_ld = 0
            if not CFG2["far_real"]:
                self._shadow_target(self._c, f)
            # F goes to the old share: a wrong jump is undone the same way
            self._far_pos = old
            self._shadow_target(self._f, old)
            if CFG2["far_hist"]:
                self._far_i = -1  # not a slot: no history; the next dwell end moves on
            self._far_cw = self._far_fw = 0
            self._far_epochs = 0
            self._far_hist.clear()
            return
        if self._far_epochs >= dwell:
            if CFG2["far_hist"] and self._far_i >= 0:
                hc, hf, hv = self._far_hist.get(self._far_i, (0, 0, 0))
                self._far_hist[self._far_i] = [(hc >> 1) + cw, (hf >> 1) + fw, hv + 1]
            self._far_quiet += 1
            if self._far_quiet >= CFG2["far_relax"] and self._far_level:
                self._far_level -= 1
                self._far_quiet = 0
            self._far_next()


def make_policy(c: int) -> object:
    """Return a PolicySim of an H4Policy of ``c`` entries (for /tmp harnesses)."""
    from benchmarks.hitratio import PolicySim

    return PolicySim(H4Policy(c, None), c)


class H5Policy(H3Policy):
    """H3Policy (CFG defaults) whose move after a widened probe is CFG2["jump_frac"] x the probe.

    H3Policy's ``jump`` option is ``jump_frac`` = 0.5 (same decisions); 1.0 lands the window on the leading
    shadow's share. A move at the base probe stays one step. Only the default branches of
    H3Policy._h3_decide are kept (backoff, keep, sym and effect off).
    """

    def _h3_decide(self) -> None:
        self._h3_seen = 0
        du = self._h3_dis_up
        dd = self._h3_dis_down
        n = du + dd
        lead = du - dd
        z = CFG["z"]
        sh = CFG["long"]
        lu = self._h3_lu + self._h3_new_up
        ld = self._h3_ld + self._h3_new_down
        self._h3_lu = lu - (lu >> sh)
        self._h3_ld = ld - (ld >> sh)
        self._h3_new_up = self._h3_new_down = 0
        ll = lu - ld
        lz = CFG["long_z"]
        ok = (ll > 0) == (lead > 0) and ll != 0 and ll * ll >= lz * lz * (lu + ld)
        if ok and n >= CFG["min_dis"] and lead * lead > z * z * n:
            cap = self._maximum()
            step = max(self._h3_step, round(CFG2["jump_frac"] * self._h3_probe * cap))
            if lead > 0:
                amount = min(step, max(0, cap - 1 - self._wmax))
            else:
                amount = -min(step, max(0, self._wmax - 1))
            self._h3_dis_up = self._h3_dis_down = 0
            if amount:
                # one call, as H3Policy: a growth moves at most _TRANSFER_MAX keys
                self._adjust = amount
                if amount > 0:
                    self._increase_window()
                else:
                    self._decrease_window()
                self._adjust = 0
                self._h3_moves += 1
                self._h3_quiet = 0
                self._h3_probe = CFG["probe"]
                self._h3_retarget()
                return
            du = dd = 0
        self._h3_quiet += 1
        if self._h3_quiet >= CFG["widen"] and self._h3_probe < CFG["probe_max"]:
            self._h3_quiet = 0
            self._h3_probe = min(2 * self._h3_probe, CFG["probe_max"])
            self._h3_retarget()
            self._h3_dis_up = self._h3_dis_down = 0
            return
        s = CFG["decay_shift"]
        self._h3_dis_up = du - (du >> s)
        self._h3_dis_down = dd - (dd >> s)


def make_h5(c: int) -> object:
    """Return a PolicySim of an H5Policy of ``c`` entries (for /tmp harnesses)."""
    from benchmarks.hitratio import PolicySim

    return PolicySim(H5Policy(c, None), c)
