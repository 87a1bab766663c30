"""S3-FIFO: three static FIFO queues.

Yang, Zhang, Qiu, Yue and Vinayak, "FIFO queues are all you need for cache eviction",
SOSP 2023 (Algorithm 1). S holds 10% of the cache, M the rest; G remembers as many keys
evicted from S as M holds; each resident key has a 2-bit access counter.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["S3FIFO"]


class S3FIFO:
    """S3-FIFO with capacity ``c`` entries; ``access`` returns True on a hit."""

    def __init__(self, c: int, small_ratio: float = 0.1, move_threshold: int = 1) -> None:
        self.c = c
        self.small_max = max(1, int(c * small_ratio))
        self.main_max = max(1, c - self.small_max)
        # the key's 2-bit frequency; FIFO order: first = tail (oldest)
        self.s: OrderedDict[Hashable, int] = OrderedDict()
        self.m: OrderedDict[Hashable, int] = OrderedDict()
        self.g: OrderedDict[Hashable, None] = OrderedDict()
        # Algorithm 1 moves t from S to M "if t.freq > 1"; the text says "accessed at least
        # once"; libCacheSim's default promotes on freq > 0. ``move_threshold`` is that bound.
        self.move_threshold = move_threshold

    def _evict_m(self) -> None:
        m = self.m
        while m:
            k, f = m.popitem(last=False)
            if f > 0:
                m[k] = f - 1
            else:
                return

    def _evict_s(self) -> None:
        s, m, g = self.s, self.m, self.g
        while s:
            k, f = s.popitem(last=False)
            if f >= self.move_threshold:
                m[k] = 0
                if len(m) > self.main_max:
                    self._evict_m()
            else:
                g[k] = None
                if len(g) > self.main_max:
                    g.popitem(last=False)
                return

    def access(self, x: Hashable) -> bool:
        """Replay one access; return True on a hit."""
        s, m = self.s, self.m
        f = s.get(x)
        if f is not None:
            if f < 3:
                s[x] = f + 1
            return True
        f = m.get(x)
        if f is not None:
            if f < 3:
                m[x] = f + 1
            return True
        while len(s) + len(m) >= self.c:
            if len(s) >= self.small_max:
                self._evict_s()
            else:
                self._evict_m()
        if x in self.g:
            del self.g[x]
            m[x] = 0
        else:
            s[x] = 0
        return False
