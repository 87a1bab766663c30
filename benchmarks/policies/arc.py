"""ARC: Adaptive Replacement Cache.

Megiddo and Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", FAST 2003 (Fig. 4).
T1/T2 hold resident keys seen once/at least twice recently; B1/B2 are their ghost lists; the
target size ``p`` of T1 moves toward whichever ghost list takes hits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["ARC"]


class ARC:
    """ARC with capacity ``c`` entries; ``access`` returns True on a hit."""

    def __init__(self, c: int) -> None:
        self.c = c
        self.p = 0.0
        self.t1: OrderedDict[Hashable, None] = OrderedDict()
        self.t2: OrderedDict[Hashable, None] = OrderedDict()
        self.b1: OrderedDict[Hashable, None] = OrderedDict()
        self.b2: OrderedDict[Hashable, None] = OrderedDict()

    def _replace(self, in_b2: bool) -> None:
        """REPLACE(x, p) of the paper: demote the LRU of T1 or T2 to its ghost list."""
        t1 = self.t1
        if t1 and (len(t1) > self.p or (in_b2 and len(t1) == self.p)):
            k, _ = t1.popitem(last=False)
            self.b1[k] = None
        else:
            k, _ = self.t2.popitem(last=False)
            self.b2[k] = None

    def access(self, x: Hashable) -> bool:
        """Replay one access; return True on a hit."""
        t1, t2, b1, b2, c = self.t1, self.t2, self.b1, self.b2, self.c
        # Case I: hit in T1 or T2
        if x in t1:
            del t1[x]
            t2[x] = None
            return True
        if x in t2:
            t2.move_to_end(x)
            return True
        # Case II: ghost hit in B1
        if x in b1:
            delta = 1.0 if len(b1) >= len(b2) else len(b2) / len(b1)
            self.p = min(float(c), self.p + delta)
            self._replace(False)
            del b1[x]
            t2[x] = None
            return False
        # Case III: ghost hit in B2
        if x in b2:
            delta = 1.0 if len(b2) >= len(b1) else len(b1) / len(b2)
            self.p = max(0.0, self.p - delta)
            self._replace(True)
            del b2[x]
            t2[x] = None
            return False
        # Case IV: a complete miss
        l1 = len(t1) + len(b1)
        if l1 == c:
            if len(t1) < c:
                b1.popitem(last=False)
                self._replace(False)
            else:
                t1.popitem(last=False)
        elif l1 < c:
            total = l1 + len(t2) + len(b2)
            if total >= c:
                if total == 2 * c:
                    b2.popitem(last=False)
                self._replace(False)
        t1[x] = None
        return False
