"""Research prototype: W-TinyLFU (the default shadow climber) with ghost-assisted admission.

Question (docs/research-hitratio.md, "Session 6: ghost-assisted admission"): can a bounded
*ghost* of recently evicted keys (hashes only, like S3FIFO's ghost queue) close the hit-ratio
points no window share reaches (lirs-ps, syn-zipf-shift, syn-phases), where the frequency sketch
keeps admitting nothing new after a shift of the hot set?

``GhostPolicy`` is ``TinyLFUPolicy`` (climber "shadow", the default) whose admission test
(candidate = the window's LRU key, victim = probation's LRU key) consults a FIFO of the hashes of
keys that left the cache recently. Options (``CFG``; ``make(c, **overrides)`` for the sweep:
``py:benchmarks.prototypes.ghost_admission.make,K=V,...``):

Results (docs/research-hitratio.md, "Session 6: ghost-assisted admission"): the defaults below
(mode 4, dm 2, fb 1, shadows 0) raise the count within 1 point of the best peer from 47 to 51 of
60 and from 23 to 24 of the held-out 30, but lose 1.65 points at syn-scan-mix-s100@2493: not
landed.

- ``src``: which leaving keys enter the ghost, a bit mask: 1 a rejected candidate, 2 main's
  victim evicted by an admitted candidate; 0 switches the ghost off (then this class decides
  exactly as ``TinyLFUPolicy``).
- ``size``: the ghost holds at most ``size x capacity`` hashes (at least 1), oldest out first.
- ``mode``: what a candidate found in the ghost gets: 0 admitted without the frequency test;
  1 admitted if ``fc + boost > fv + _ADMIT_MARGIN`` (a boost in the comparison); 2 admitted if its
  ghost entry is younger than ``age`` x capacity *accesses* (a reuse gap shorter than the cache:
  an LRU of this size would have kept it; a loop larger than the cache never qualifies); 3 the
  same in ghost insertions instead of accesses; 4 mode 2 with a *direct-mapped* ghost instead of a
  FIFO: a table of ``2**k >= dm x capacity`` slots, slot = the top k bits of the Fibonacci-spread
  hash, each holding a 32-bit fingerprint (the low bits, never 0) and the 32-bit access clock of
  the insertion; an insertion overwrites its slot, a hit clears it (what a C twin would keep);
  with ``boost`` > 0 a young ghost entry only adds ``boost`` to the candidate's estimate.
- ``dm``: see mode 4.
- ``agemain``: 1 (mode 4) the age limit is ``age`` x main's capacity (capacity minus the window's
  target) instead of ``age`` x capacity: the candidate just spent the window's time in the cache.
- ``fb``: 1 feedback (mode 4): a score (clamped to +-``fbk``) gains 1 when a ghost-admitted key is
  hit in probation and loses 1 when one is evicted unhit; while it is negative only one young ghost
  hit in ``explore`` admits (so the score can recover); ``win``: what a hit adds instead of 1.
- ``boost``: see mode 1.
- ``consume``: 1 a ghost hit removes the entry.
- ``shadows``: 1 the shadow climber's shadows are ghost policies too (so the climber measures the
  policy it steers), 0 they stay plain ``TinyLFUPolicy``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import perflayer.cache._policy as _pol
from benchmarks.prototypes.shadow_climber import set_options
from perflayer.cache._policy import _COUNTER_MAX, _GOLDEN, _MASK64, _NO_KEY, TinyLFUPolicy

# the defaults are the best variant measured ("C" in docs/research-hitratio.md, Session 6)
CFG: dict[str, float] = {
    "src": 1,
    "size": 1.0,
    "mode": 4,
    "boost": 0,
    "age": 1.0,
    "consume": 1,
    "shadows": 0,
    "dm": 2.0,
    "fb": 1,
    "fbk": 16,
    "explore": 8,
    "win": 1,
    "agemain": 0,
}


class GhostPolicy(TinyLFUPolicy):
    """TinyLFUPolicy whose admission test also asks a ghost of recently evicted keys."""

    __slots__ = (
        "_clock",
        "_dm_fp",
        "_dm_shift",
        "_dm_t",
        "_fb_n",
        "_fb_score",
        "_flagged",
        "_g",
        "_gcap",
        "_gcfg",
        "_gn",
        "ghost_admits",
    )

    def __init__(
        self, max_entries: int | None, max_weight: int | None, cfg: dict[str, float] | None = None
    ) -> None:
        self._gcfg = dict(CFG if cfg is None else cfg)
        self._g: OrderedDict[int, int] = OrderedDict()  # hash -> insertion serial
        self._gn = 0
        self._clock = 0  # accesses replayed so far
        self._gcap = max(1, round(self._gcfg["size"] * (max_entries or 0)))
        self.ghost_admits = 0
        self._dm_init(max_entries or 0)
        super().__init__(max_entries, max_weight)

    def _dm_init(self, cap: int) -> None:
        self._flagged: set[Hashable] = set()
        self._fb_score = 0
        self._fb_n = 0
        bits = max(1, (max(1, int(self._gcfg["dm"] * cap)) - 1).bit_length())
        self._dm_shift = 64 - bits
        self._dm_fp = [0] * (1 << bits)
        self._dm_t = [0] * (1 << bits)

    def _shadow_reset(self) -> None:
        super()._shadow_reset()
        if self._shadow_up is None or not self._gcfg["shadows"]:
            return
        # rebuild the shadows as ghost policies at the same shares
        for name in ("_shadow_up", "_shadow_down"):
            old = getattr(self, name)
            s = GhostPolicy.__new__(GhostPolicy)
            s._gcfg = self._gcfg
            s._g = OrderedDict()
            s._gn = 0
            s._clock = 0
            s._gcap = max(1, round(self._gcfg["size"] * self._shadow_cap))
            s.ghost_admits = 0
            s._dm_init(self._shadow_cap)
            TinyLFUPolicy.__init__(
                s,
                self._shadow_cap,
                None,
                window=old.window_fraction,
                adaptive=False,
                read_buffer=_pol._SHADOW_READ_BUFFER,
            )
            setattr(self, name, s)

    # -- the ghost ------------------------------------------------------------------------------

    def _remember(self, key: Hashable, why: int) -> None:
        """Put ``key``'s hash into the ghost if ``why`` is among the configured sources."""
        if not (int(self._gcfg["src"]) & why):
            return
        if self._gcfg["mode"] == 4:
            x = (hash(key) * _GOLDEN) & _MASK64
            i = x >> self._dm_shift
            self._dm_fp[i] = (x & 0xFFFFFFFF) | 1
            self._dm_t[i] = self._clock & 0xFFFFFFFF
            return
        g = self._g
        h = hash(key)
        if h in g:
            del g[h]
        self._gn += 1
        g[h] = self._gn if self._gcfg["mode"] == 3 else self._clock
        if len(g) > self._gcap:
            g.popitem(last=False)

    def _admit(self, ck: Hashable, fc: int, fv: int) -> bool:
        """Return True if candidate ``ck`` (estimate ``fc``) beats a victim of estimate ``fv``."""
        if fc > fv + _pol._ADMIT_MARGIN:
            return True
        if not self._gcfg["src"]:
            return False
        if self._gcfg["mode"] == 4:
            x = (hash(ck) * _GOLDEN) & _MASK64
            i = x >> self._dm_shift
            if self._dm_fp[i] != (x & 0xFFFFFFFF) | 1:
                return False
            lim = (self.max_entries or 0) - (self._wmax if self._gcfg["agemain"] else 0)
            if (self._clock - self._dm_t[i]) & 0xFFFFFFFF >= self._gcfg["age"] * lim:
                return False
            if self._gcfg["boost"] and fc + int(self._gcfg["boost"]) <= fv + _pol._ADMIT_MARGIN:
                return False
            if self._gcfg["fb"]:
                if self._fb_score < 0:
                    self._fb_n += 1
                    if self._fb_n % int(self._gcfg["explore"]):
                        return False
                self._flagged.add(ck)
            self.ghost_admits += 1
            self._dm_fp[i] = 0
            return True
        g = self._g
        h = hash(ck)
        serial = g.get(h)
        if serial is None:
            return False
        mode = self._gcfg["mode"]
        if mode == 0:
            ok = True
        elif mode == 1:
            ok = fc + int(self._gcfg["boost"]) > fv + _pol._ADMIT_MARGIN
        elif mode == 2:
            ok = self._clock - serial < self._gcfg["age"] * (self.max_entries or 0)
        else:
            ok = self._gn - serial < self._gcfg["age"] * (self.max_entries or 0)
        if ok:
            self.ghost_admits += 1
            if self._gcfg["consume"]:
                del g[h]
        return ok

    def _drain(self) -> None:
        if self._flagged:
            where = self._where
            probation = self._probation
            fl = self._flagged
            k_ = int(self._gcfg["fbk"])
            for k in list(self._buf):
                if k in fl and where.get(k) is probation:
                    fl.discard(k)
                    self._fb_score = min(k_, self._fb_score + int(self._gcfg["win"]))
        self._clock += len(self._buf)
        super()._drain()

    # -- writes (TinyLFUPolicy's, with the admission test through _admit) -----------------------

    def _evict(self, new_key: object) -> list[Hashable]:
        """Spill the window into main through the ghost-aware filter; evict until within bounds."""
        window = self._window
        probation = self._probation
        where = self._where
        sketch = self._sketch
        freq = self._freq
        weighted = self.max_weight is not None
        victims: list[Hashable] = []
        candidates: list[tuple[Hashable, int]] = []
        while window and (self._ww if weighted else len(window)) > self._wmax:
            k, w = window.popitem(last=False)
            self._ww -= w
            candidates.append((k, w))
        ci = 0
        nc = len(candidates)
        while self._over():
            vk, vregion = self._victim(new_key)
            if ci < nc:
                ck, cw = candidates[ci]
                if vregion is None:
                    if ck == new_key:
                        break
                    del where[ck]
                    sketch.put(ck, freq.pop(ck))
                    self._total -= cw
                    victims.append(ck)
                    ci += 1
                    continue
                if ck != new_key and not self._admit(
                    ck, min(freq[ck], _COUNTER_MAX), min(freq[vk], _COUNTER_MAX)
                ):
                    del where[ck]
                    sketch.put(ck, freq.pop(ck))
                    self._total -= cw
                    victims.append(ck)
                    self._remember(ck, 1)
                    ci += 1
                    continue
                self._drop(vk, vregion)
                victims.append(vk)
                self._remember(vk, 2)
                if vk in self._flagged:
                    self._flagged.discard(vk)
                    self._fb_score = max(-int(self._gcfg["fbk"]), self._fb_score - 1)
                probation[ck] = cw
                where[ck] = probation
                ci += 1
                continue
            if vregion is not None:
                self._drop(vk, vregion)
                victims.append(vk)
                continue
            if not window:
                break
            vk = next(iter(window))
            if vk == new_key:
                break
            self._drop(vk, window)
            victims.append(vk)
        for k, w in candidates[ci:]:
            probation[k] = w
            where[k] = probation
        return victims

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` into the window and return the keys to evict (never ``key``)."""
        where = self._where
        if key in where:
            return self.update(key, weight)
        h = hash(key)
        buf = self._buf
        if buf:
            if len(buf) == 1 and buf[0] == key:
                if (
                    self._shadow_up is not None
                    and ((h * _GOLDEN) & _MASK64) < self._shadow_threshold
                ):
                    self._observe((key,))
                buf.clear()
                self._clock += 1
                self._requests += 1
                self._last_miss = _NO_KEY
                count = True
            else:
                self._drain()
                count = self._last_miss != key
                self._last_miss = _NO_KEY
        else:
            last_miss = self._last_miss
            if last_miss is _NO_KEY:
                count = True
            else:
                count = last_miss != key
                self._last_miss = _NO_KEY
        sketch = self._sketch
        freq = self._freq
        if count:
            f = sketch.increment_and_take(key)
            if sketch.additions >= sketch.period or self._requests >= self._climb_sample:
                freq[key] = f
                self._maintain()
                f = freq[key]
        else:
            f = sketch.take(key)
        freq[key] = f
        window = self._window
        window[key] = weight
        where[key] = window
        self._ww += weight
        self._total += weight
        if (self._ww if self.max_weight is not None else len(window)) > self._wmax or self._over():
            return self._evict(key)
        return []


def make(c: int, **over: float) -> GhostPolicy:
    """Build a GhostPolicy of ``c`` entries with ``CFG`` overridden by ``over``."""
    cfg = dict(CFG)
    set_options("ghost", over, cfg)
    return GhostPolicy(c, None, cfg)
