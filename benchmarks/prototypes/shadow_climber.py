"""Research prototype of the default climber: TinyLFUPolicy whose window moves by a simultaneous comparison.

Design (the defaults of CFG are the measured candidate; see docs/benchmarks.md, "A shadow-window climber"):
- Two shadow W-TinyLFU caches (plain ``TinyLFUPolicy(adaptive=False)``) see the sampled keys: a
  key is sampled when its Fibonacci-spread hash is below 2**64 / R, R a power of two with
  capacity / R >= 512 (full shadows below 1,024 entries), R <= 64. Each holds capacity / R keys.
- Their windows sit at the real window share minus / plus a probe (6.25% of the capacity).
- Every sampled access on which the two disagree is counted: ``up`` (the larger window hit, the
  smaller missed) or ``down`` (the converse).
- Every epoch (256 sampled accesses) a sign test: if ``up + down >= 16`` and
  ``(up - down)**2 > 9 * (up + down)`` (3 sigma, integers only) the real window moves one step
  (6.25% of the capacity, or half the probe if that is more: ``jump``, through the existing
  _increase/_decrease_window) toward the leader,
  the probe resets to 6.25%, both shadows are re-centred and the counts reset.
- Otherwise (or when the move is pinned at a bound) the counts decay by 1/8 and the probe
  doubles (up to 50%): a flat stretch widens the comparison until it sees a difference (a loop
  that fits only a much larger window), a decision shrinks it back.
- A second pair of the same counts, decayed by 1/32 per epoch and never reset, must agree: a move
  needs that long-horizon lead to point the same way and be 2 sigma significant (so a short phase
  cannot move the window against the trace's long-run gradient: syn-scan-mix 74 -> 20 moves).
- The real cache's own before/after climber (``_climb``) is disabled.
Count-bounded caches only (the shadows count entries); clear/resize do not reset the shadows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from perflayer.cache._policy import _MASK64, TinyLFUPolicy

_GOLDEN = 0x9E3779B97F4A7C15

# tunables (a module global, so a sweep can set them)
CFG = {
    "shadow_min": 512,  # shadows hold at least this many keys (full shadows below 2 x this)
    "rate_max": 64,  # at most 1 key in 64 sampled
    "step": 0.0625,  # window step of the real cache, share of capacity
    "probe": 0.0625,  # the shadows' windows sit at the real share -+ this
    "z": 3,  # sign-test threshold in standard deviations
    "epoch": 256,  # sampled accesses between two tests, at least
    "epoch_factor": 0,  # and at least this x the shadow capacity
    "decay_shift": 3,  # counts lose 1/2**shift per epoch without a decision
    "min_dis": 16,  # at least this many disagreements before deciding
    "widen": 1,  # after this many epochs without a decision the probe doubles (0: never)
    "probe_max": 0.5,
    "jump": 1,  # 1: a move goes half the probe (at least one step); research-hitratio.md, 5
    "backoff": 0,  # 1: a reversal doubles the hold (epochs without decisions) after a move
    "relax": 32,  # epochs without a move that lower the back-off level by one
    "level_max": 6,
    "keep": 0,  # after a move the counts keep this share in 1/4ths (0: reset)
    "sym": 0,  # 1: a widened probe stays symmetric (no wider than the room on either side)
    "long": 5,  # >0: a long-horizon pair of counts (decay 1/2**long per epoch, never reset) must agree
    "long_z": 2,  # ... and be this many sigma significant (0: its sign only)
    "effect": 0,  # the lead must also exceed this many 1/1000ths of the (decayed) sampled accesses
}


def set_options(who: str, over: Mapping[str, float], *tables: dict[str, float]) -> None:
    """Set each item of ``over`` in the first of ``tables`` that has its key (the prototypes' factories).

    An unknown key exits with a message naming ``who`` and every known option.
    """
    for k, v in over.items():
        for table in tables:
            if k in table:
                table[k] = v
                break
        else:
            known = sorted({key for table in tables for key in table})
            raise SystemExit(f"unknown {who} option {k!r}; expected one of {known}")


def _sampling(cap: int) -> int:
    """Return R (a power of two): one key in R is sampled."""
    r = 1
    while r < CFG["rate_max"] and cap // (2 * r) >= CFG["shadow_min"]:
        r *= 2
    return r


def feed_pair(
    a: TinyLFUPolicy, b: TinyLFUPolicy, keys: object, threshold: int
) -> tuple[int, int, int]:
    """Replay the sampled ``keys`` into shadows ``a`` and ``b``; return (sampled, a-only, b-only).

    Each shadow sees a key as a cache-aside read (a miss adds it); "a-only" counts the keys ``a``
    held and ``b`` did not, "b-only" the reverse. Buffers over 4,096 reads are drained (the
    shadows' buffers are never lossy). Shared by H3Policy's pair and climber3's min/max pair.
    """
    full = threshold > _MASK64
    aw = a._where
    bw = b._where
    seen = na = nb = 0
    for k in keys:  # type: ignore[attr-defined]
        if not full and ((hash(k) * _GOLDEN) & _MASK64) >= threshold:
            continue
        seen += 1
        ha = k in aw
        hb = k in bw
        a._buf.append(k)
        if not ha:
            a.add(k, 1)
        b._buf.append(k)
        if not hb:
            b.add(k, 1)
        if ha != hb:
            if ha:
                na += 1
            else:
                nb += 1
    if len(a._buf) > 4096:
        a._drain()
    if len(b._buf) > 4096:
        b._drain()
    return seen, na, nb


class H3Policy(TinyLFUPolicy):
    """TinyLFUPolicy whose window is steered by two sampled shadows at +-one step."""

    __slots__ = (
        "_h3_calm",
        "_h3_cap_s",
        "_h3_dis_down",
        "_h3_dis_up",
        "_h3_down",
        "_h3_epoch",
        "_h3_hold",
        "_h3_last",
        "_h3_ld",
        "_h3_level",
        "_h3_lu",
        "_h3_moves",
        "_h3_new_down",
        "_h3_new_up",
        "_h3_probe",
        "_h3_quiet",
        "_h3_seen",
        "_h3_step",
        "_h3_threshold",
        "_h3_tot",
        "_h3_up",
    )

    def __init__(self, max_entries: int | None, max_weight: int | None, **kw: object) -> None:
        if max_entries is None or max_weight is not None:
            raise ValueError(
                f"H3Policy prototype: count-bounded caches only, got max_entries={max_entries!r}"
                f" max_weight={max_weight!r}"
            )
        kw.setdefault("climber", "sample")  # this class is the climber: the base's stays off
        kw.setdefault(
            "ghost", False
        )  # the policy it was measured on (Session 7's ghost came later)
        super().__init__(max_entries, max_weight, **kw)  # type: ignore[arg-type]
        cap = max_entries or 0
        r = _sampling(cap)
        self._h3_threshold = (1 << 64) if r == 1 else (1 << 64) // r
        cap_s = max(2, cap // r)
        self._h3_cap_s = cap_s
        self._h3_epoch = max(CFG["epoch"], CFG["epoch_factor"] * cap_s)
        self._h3_step = max(1, round(CFG["step"] * cap))
        f = self._wmax / cap if cap else 0.0
        self._h3_down = self._shadow(cap_s, f - CFG["probe"])
        self._h3_up = self._shadow(cap_s, f + CFG["probe"])
        self._h3_dis_up = 0
        self._h3_dis_down = 0
        self._h3_seen = 0
        self._h3_moves = 0
        self._h3_probe = CFG["probe"]
        self._h3_quiet = 0
        self._h3_last = 0
        self._h3_level = 0
        self._h3_hold = 0
        self._h3_tot = 0
        self._h3_lu = 0
        self._h3_new_up = 0
        self._h3_new_down = 0
        self._h3_ld = 0
        self._h3_calm = 0

    @staticmethod
    def _shadow(cap_s: int, frac: float) -> TinyLFUPolicy:
        w = min(max(0.0, frac), 1.0)
        return TinyLFUPolicy(
            cap_s, None, window=w, adaptive=False, read_buffer=1 << 16, ghost=False
        )

    def _shadow_target(self, p: TinyLFUPolicy, frac: float) -> None:
        """Move shadow ``p``'s window to ``frac`` of its capacity (one unit at least)."""
        cap_s = self._h3_cap_s
        target = min(max(1, round(frac * cap_s)), cap_s - 1)
        p._drain()
        p._adjust = target - p._wmax
        if p._adjust > 0:
            p._increase_window()
        elif p._adjust < 0:
            p._decrease_window()
        p._adjust = 0

    # -- observation ------------------------------------------------------------------------

    def _observe(self, keys: object) -> None:
        seen, du, dd = feed_pair(self._h3_up, self._h3_down, keys, self._h3_threshold)
        self._h3_new_up += du
        self._h3_new_down += dd
        self._h3_dis_up += du
        self._h3_dis_down += dd
        seen += self._h3_seen
        self._h3_seen = seen
        if seen >= self._h3_epoch:
            self._h3_decide()

    def _h3_retarget(self) -> None:
        cap = self._maximum()
        f = self._wmax / cap
        p = self._h3_probe
        if CFG["sym"]:
            base = CFG["probe"]
            p = min(p, max(f, base), max(1.0 - f, base))
        self._shadow_target(self._h3_down, f - p)
        self._shadow_target(self._h3_up, f + p)

    def _h3_decide(self) -> None:
        self._h3_seen = 0
        du = self._h3_dis_up
        dd = self._h3_dis_down
        if CFG["backoff"]:
            self._h3_calm += 1
            if self._h3_calm >= CFG["relax"] and self._h3_level:
                self._h3_level -= 1
                self._h3_calm = 0
            if self._h3_hold:
                self._h3_hold -= 1
                return
        n = du + dd
        lead = du - dd
        z = CFG["z"]
        tot = self._h3_tot + self._h3_epoch
        self._h3_tot = tot
        ok = True
        if CFG["long"]:
            sh = CFG["long"]
            lu = self._h3_lu + self._h3_new_up
            ld = self._h3_ld + self._h3_new_down
            self._h3_lu = lu - (lu >> sh)
            self._h3_ld = ld - (ld >> sh)
            ll = lu - ld
            lz = CFG["long_z"]
            ok = (ll > 0) == (lead > 0) and ll != 0 and ll * ll >= lz * lz * (lu + ld)
        self._h3_new_up = self._h3_new_down = 0
        if (
            ok
            and n >= CFG["min_dis"]
            and lead * lead > z * z * n
            and abs(lead) * 1000 > CFG["effect"] * tot
        ):
            cap = self._maximum()
            step = self._h3_step
            if CFG["jump"]:
                step = max(step, round(self._h3_probe * cap / 2))
            if lead > 0:
                amount = min(step, max(0, cap - 1 - self._wmax))
            else:
                amount = -min(step, max(0, self._wmax - 1))
            if amount:
                self._adjust = amount
                if amount > 0:
                    self._increase_window()
                else:
                    self._decrease_window()
                self._adjust = 0
                self._h3_moves += 1
                if CFG["backoff"]:
                    d = 1 if amount > 0 else -1
                    if d == -self._h3_last and self._h3_level < CFG["level_max"]:
                        self._h3_level += 1
                    self._h3_last = d
                    self._h3_calm = 0
                    self._h3_hold = (1 << self._h3_level) - 1
            if amount:
                self._h3_tot = 0
            if amount and CFG["keep"]:
                self._h3_dis_up = du * CFG["keep"] >> 2
                self._h3_dis_down = dd * CFG["keep"] >> 2
            else:
                self._h3_dis_up = self._h3_dis_down = 0
            if amount:
                self._h3_quiet = 0
                self._h3_probe = CFG["probe"]
                self._h3_retarget()
                return
            # pinned at a bound: as good as no decision (the probe may widen)
            du = dd = 0
        widen = CFG["widen"]
        if widen:
            self._h3_quiet += 1
            if self._h3_quiet >= widen and self._h3_probe < CFG["probe_max"]:
                self._h3_quiet = 0
                self._h3_probe = min(2 * self._h3_probe, CFG["probe_max"])
                self._h3_retarget()
                self._h3_dis_up = self._h3_dis_down = 0
                self._h3_tot = 0
                return
        s = CFG["decay_shift"]
        self._h3_dis_up = du - (du >> s)
        self._h3_dis_down = dd - (dd >> s)
        self._h3_tot = tot - (tot >> s)

    # -- hooks ------------------------------------------------------------------------------

    def _drain(self) -> None:
        if self._buf:
            self._observe(self._buf)
        super()._drain()

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        self._observe_miss(key)
        return super().add(key, weight)

    def _observe_miss(self, key: Hashable) -> None:
        """Show the shadows the cache-aside miss that led to ``add(key)``, if ``key`` is sampled."""
        buf = self._buf
        # the sampling test inlined: only a sampled key costs the shadows' call
        if (
            len(buf) == 1
            and buf[0] == key
            and key not in self._where
            and ((hash(key) * _GOLDEN) & _MASK64) < self._h3_threshold
        ):
            self._observe(buf)

    def _climb(self) -> None:
        self._hits = self._requests = 0
