"""Research prototype: docs/research-hitratio.md, Session 7, section 4, written from the specification.

``SpecPolicy`` is ``TinyLFUPolicy`` with ghost-assisted admission, regret and the bounded boost
(variant E, ``ghost2.make(c, rg=1, boost=3, fclr=1)``) implemented directly from the
specification's state and events, without ``GhostPolicy``'s options, to check that the text is
complete: the two must replay every trace identically (the session's check:
``python -m benchmarks.prototypes.hitratio_sweep --table --baseline LOG --points ...
py:benchmarks.prototypes.ghost2_spec.SpecPolicy py:benchmarks.prototypes.ghost2.make,rg=1,boost=3,fclr=1``).
"""

from __future__ import annotations

from collections.abc import Hashable

from perflayer.cache._policy import (
    _ADMIT_MARGIN,
    _COUNTER_MAX,
    _GOLDEN,
    _MASK64,
    _NO_KEY,
    TinyLFUPolicy,
)

SCORE_MAX = 16
EXPLORE = 8
BOOST = 3
REGRET_AGE = 2


def _table(n: int) -> tuple[int, list[int], list[int]]:
    """Return (shift, fingerprints, clocks) of a direct-mapped table of at least ``n`` slots."""
    bits = max(1, (max(1, n) - 1).bit_length())
    return 64 - bits, [0] * (1 << bits), [0] * (1 << bits)


class SpecPolicy(TinyLFUPolicy):
    """TinyLFUPolicy with the ghost admission, regret and boost of Session 7's specification."""

    __slots__ = ("_clk", "_flag", "_g", "_r", "_score", "_xn", "ghost_admits", "regrets")

    def __init__(self, max_entries: int | None, max_weight: int | None) -> None:
        cap = max_entries or 0
        self._clk = 0
        self._g = _table(int(2 * cap))
        self._r = _table(cap)
        self._score = 0
        self._xn = 0
        self._flag: set[Hashable] = set()
        self.ghost_admits = 0
        self.regrets = 0
        super().__init__(max_entries, max_weight)

    @staticmethod
    def _slot(table: tuple[int, list[int], list[int]], key: Hashable) -> tuple[int, int]:
        x = (hash(key) * _GOLDEN) & _MASK64
        return x >> table[0], (x & 0xFFFFFFFF) | 1

    def _put(self, table: tuple[int, list[int], list[int]], key: Hashable) -> None:
        i, fp = self._slot(table, key)
        table[1][i] = fp
        table[2][i] = self._clk & 0xFFFFFFFF

    def _drain(self) -> None:
        # event 3: credit flagged probation keys before the climber observes the buffer
        if self._flag:
            for k in list(self._buf):
                if k in self._flag and self._where.get(k) is self._probation:
                    self._flag.discard(k)
                    self._score = min(SCORE_MAX, self._score + 1)
        self._clk += len(self._buf)
        super()._drain()

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Charge a regret (event 4), then TinyLFUPolicy's add through ``_evict``.

        Not ``super().add``: today's ``add`` inlines the steady-state admission test of a full
        count-bounded cache (and the C twin does the same), so the ghost's test must be in that
        inlined path too; here every eviction goes through ``_evict`` (as in ``GhostPolicy``).
        """
        where = self._where
        if key in where:
            return self.update(key, weight)
        r = self._r
        i, fp = self._slot(r, key)
        if r[1][i] == fp:
            r[1][i] = 0
            if (self._clk - r[2][i]) & 0xFFFFFFFF < REGRET_AGE * (self.max_entries or 0):
                self.regrets += 1
                self._score = max(-SCORE_MAX, self._score - 1)
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
                self._clk += 1
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
        out: list[Hashable] = []
        if (self._ww if self.max_weight is not None else len(window)) > self._wmax or self._over():
            out = self._evict(key)
        for v in out:
            self._flag.discard(v)  # event 5
        return out

    def _ghost(self, ck: Hashable, fc: int, fv: int) -> bool:
        """Event 1's ghost test for a candidate the frequency test rejected."""
        g = self._g
        i, fp = self._slot(g, ck)
        if g[1][i] != fp:
            return False
        if (self._clk - g[2][i]) & 0xFFFFFFFF >= (self.max_entries or 0):
            return False
        if fc + BOOST <= fv + _ADMIT_MARGIN:
            return False
        if self._score < 0:
            self._xn += 1
            if self._xn % EXPLORE:
                return False
        self._flag.add(ck)
        g[1][i] = 0
        self.ghost_admits += 1
        return True

    def _evict(self, new_key: object) -> list[Hashable]:
        """TinyLFUPolicy._evict with events 1 and 2 in the admission test."""
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
                ghost = False
                if ck != new_key:
                    fc = min(freq[ck], _COUNTER_MAX)
                    fv = min(freq[vk], _COUNTER_MAX)
                    if fc <= fv + _ADMIT_MARGIN:
                        ghost = self._ghost(ck, fc, fv)
                        if not ghost:
                            del where[ck]
                            sketch.put(ck, freq.pop(ck))
                            self._total -= cw
                            victims.append(ck)
                            self._put(self._g, ck)
                            ci += 1
                            continue
                self._drop(vk, vregion)
                victims.append(vk)
                if ghost:
                    self._put(self._r, vk)  # event 2
                if vk in self._flag:
                    self._flag.discard(vk)
                    self._score = max(-SCORE_MAX, self._score - 1)
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
