"""Research prototype: ghost-assisted admission (session 6, variant C) plus *regret* for displaced victims.

Question (docs/research-hitratio.md, "Session 7"): session 6's ghost admission
(``ghost_admission.GhostPolicy``, variant C) loses up to 1.65 points at syn-scan-mix about 2,500
entries: in a Zipf phase right after a loop phase, its ghost admissions displace loop keys that the
next loop phase needs, and its feedback score never sees that cost (it only counts flagged keys hit
or evicted unhit). Does charging the score when a displaced victim comes back fix it?

Result (docs/research-hitratio.md, "Session 7"): ``make(c, rg=1, boost=3, fclr=1)`` ("E") raises
the count within 1 point of the best peer 47 -> 50 of 60, 23 -> 24 held out, 21 -> 22 fresh, and
loses at most 0.71 points against the default on any point; ``ghost2_spec.SpecPolicy`` is its
specification re-implemented (identical replays).

``RegretPolicy`` is ``GhostPolicy`` with these extra options (``CFG2``; ``make(c, **overrides)`` for
the sweep: ``py:benchmarks.prototypes.ghost2.make,K=V,...``; every ``ghost_admission.CFG`` key is
accepted too):

- ``rg``: 1 a victim displaced by a *ghost* admission (one the frequency test had rejected) is
  written to a regret table (direct-mapped like the ghost: ``2**k >= rdm x capacity`` slots, a
  32-bit fingerprint and the 32-bit access clock); when that key is added again (a miss) within
  ``rgh`` x capacity accesses, the slot is cleared and the feedback score loses ``rgw``.
  0 switches regret off (then this class decides exactly as ``GhostPolicy``).
- ``rdm``, ``rgh``, ``rgw``: see ``rg``.
- ``rgp``: 1 a key charged as a regret is *pinned* while resident: a ghost admission whose victim
  is pinned is refused (the frequency test's rejection stands); the pin goes when the key leaves.
- ``gate``: 1 ghost admissions need a score >= 0 (no exploration while negative; the score then
  recovers only by regret slots expiring, so ``gate=1`` needs ``rgdecay``).
- ``fclr``: 1 a key's ghost-admission flag is cleared whenever the key leaves the cache (as a bit
  on the node would be); 0 as ``GhostPolicy``, which clears it only on a probation hit or when the
  key is displaced by an admitted candidate (a key evicted another way keeps it in the set).
- ``rgdecay``: every ``rgdecay`` x capacity accesses the score moves one step toward 0 (0: never).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import perflayer.cache._policy as _pol
from benchmarks.prototypes.ghost_admission import CFG, GhostPolicy
from benchmarks.prototypes.shadow_climber import set_options
from perflayer.cache._policy import _GOLDEN, _MASK64

CFG2: dict[str, float] = {
    "rg": 1,
    "rdm": 1.0,
    "rgh": 2.0,
    "rgw": 1,
    "rgp": 0,
    "gate": 0,
    "rgdecay": 0,
    "fclr": 0,
}


class RegretPolicy(GhostPolicy):
    """GhostPolicy whose feedback score also pays for victims that ghost admissions displaced."""

    __slots__ = (
        "_last_ghost",
        "_lastv",
        "_next_decay",
        "_pinned",
        "_r_fp",
        "_r_shift",
        "_r_t",
        "_rcfg",
        "regrets",
    )

    def __init__(
        self,
        max_entries: int | None,
        max_weight: int | None,
        cfg: dict[str, float] | None = None,
        rcfg: dict[str, float] | None = None,
    ) -> None:
        self._rcfg = dict(CFG2 if rcfg is None else rcfg)
        cap = max_entries or 0
        bits = max(1, (max(1, int(self._rcfg["rdm"] * cap)) - 1).bit_length())
        self._r_shift = 64 - bits
        self._r_fp = [0] * (1 << bits)
        self._r_t = [0] * (1 << bits)
        self._last_ghost = False
        self._lastv: Hashable = None
        self._pinned: set[Hashable] = set()
        self.regrets = 0
        self._next_decay = self._rcfg["rgdecay"] * cap
        super().__init__(max_entries, max_weight, cfg)

    def _victim(self, new_key: object) -> tuple[Hashable, OrderedDict[Hashable, int] | None]:
        r = super()._victim(new_key)
        self._lastv = r[0]
        return r

    def _admit(self, ck: Hashable, fc: int, fv: int) -> bool:
        """GhostPolicy's test, with the pin and gate of ``CFG2``; remembers a ghost admission."""
        self._last_ghost = False
        if fc > fv + _pol._ADMIT_MARGIN or not self._gcfg["src"]:
            return super()._admit(ck, fc, fv)
        rc = self._rcfg
        if rc["rg"]:
            if rc["gate"] and self._fb_score < 0:
                return False
            if rc["rgp"] and self._pinned and self._lastv in self._pinned:
                return False
        n = self.ghost_admits
        ok = super()._admit(ck, fc, fv)
        self._last_ghost = self.ghost_admits != n
        return ok

    def _remember(self, key: Hashable, why: int) -> None:
        if why == 2:
            self._pinned.discard(key)
            if self._last_ghost and self._rcfg["rg"]:
                x = (hash(key) * _GOLDEN) & _MASK64
                i = x >> self._r_shift
                self._r_fp[i] = (x & 0xFFFFFFFF) | 1
                self._r_t[i] = self._clock & 0xFFFFFFFF
            # only the victim of this admission (a new key admitted untested is not a ghost's)
            self._last_ghost = False
        super()._remember(key, why)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Charge a regret if ``key`` is a recently displaced victim; then GhostPolicy's add."""
        rc = self._rcfg
        if rc["rg"] and key not in self._where:
            x = (hash(key) * _GOLDEN) & _MASK64
            i = x >> self._r_shift
            if self._r_fp[i] == (x & 0xFFFFFFFF) | 1:
                self._r_fp[i] = 0
                cap = self.max_entries or 0
                if (self._clock - self._r_t[i]) & 0xFFFFFFFF < rc["rgh"] * cap:
                    self.regrets += 1
                    k_ = int(self._gcfg["fbk"])
                    self._fb_score = max(-k_, self._fb_score - int(rc["rgw"]))
                    if rc["rgp"]:
                        self._pinned.add(key)
            if rc["rgdecay"] and self._clock >= self._next_decay:
                self._next_decay = self._clock + rc["rgdecay"] * (self.max_entries or 0)
                s = self._fb_score
                self._fb_score = s - 1 if s > 0 else s + 1 if s < 0 else 0
        out = super().add(key, weight)
        if rc["fclr"] and self._flagged:
            for v in out:
                self._flagged.discard(v)
        if self._pinned:
            for v in out:
                self._pinned.discard(v)
        return out


def make(c: int, **over: float) -> RegretPolicy:
    """Build a RegretPolicy of ``c`` entries with ``CFG`` / ``CFG2`` overridden by ``over``."""
    cfg = dict(CFG)
    rcfg = dict(CFG2)
    set_options("ghost2", over, cfg, rcfg)
    return RegretPolicy(c, None, cfg, rcfg)
