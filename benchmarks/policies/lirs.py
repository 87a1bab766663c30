"""LIRS: Low Inter-reference Recency Set.

Jiang and Zhang, "LIRS: An Efficient Low Inter-reference Recency Set Replacement Policy to
Improve Buffer Cache Performance", SIGMETRICS 2002 (Section 3.3). ``L_hirs`` is 1% of the cache
(at least one entry), as in the paper; the stack S keeps non-resident HIR entries without a bound,
also as in the paper.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["LIRS"]

_LIR = 0
_HIR = 1  # resident HIR
_NONRES = 2  # non-resident HIR (only ever in S)


class LIRS:
    """LIRS with capacity ``c`` entries; ``access`` returns True on a hit."""

    def __init__(self, c: int, hir_percent: float = 0.01) -> None:
        self.c = c
        self.l_hirs = max(1, int(c * hir_percent)) if c > 1 else 0
        self.l_lirs = c - self.l_hirs
        self.state: dict[Hashable, int] = {}
        # S: the LIRS stack, last = top (most recent); Q: resident HIR keys, first = next victim
        self.s: OrderedDict[Hashable, None] = OrderedDict()
        self.q: OrderedDict[Hashable, None] = OrderedDict()
        self.n_lir = 0
        self.n_res = 0

    def _prune(self) -> None:
        """Remove HIR entries from the bottom of S until its bottom is a LIR entry."""
        s, state = self.s, self.state
        while s:
            k = next(iter(s))
            st = state[k]
            if st == _LIR:
                return
            del s[k]
            if st == _NONRES:
                del state[k]

    def _demote_bottom_lir(self) -> None:
        """Turn the LIR entry at the bottom of S into a resident HIR at the end of Q."""
        k, _ = self.s.popitem(last=False)
        self.state[k] = _HIR
        self.q[k] = None
        self._prune()

    def access(self, x: Hashable) -> bool:
        """Replay one access; return True on a hit."""
        s, q, state = self.s, self.q, self.state
        st = state.get(x)
        if st == _LIR:
            s.move_to_end(x)
            self._prune()
            return True
        if st == _HIR:
            if x in s:
                s.move_to_end(x)
                del q[x]
                state[x] = _LIR
                self._demote_bottom_lir()
            else:
                s[x] = None
                q.move_to_end(x)
            return True
        # a miss: x is new or a non-resident HIR
        if self.c == 0:
            return False
        if self.n_lir < self.l_lirs and self.n_res < self.c:
            # warm-up: the first L_lirs distinct keys become LIR
            state[x] = _LIR
            s[x] = None
            s.move_to_end(x)
            self.n_lir += 1
            self.n_res += 1
            return False
        if self.n_res >= self.c:
            victim, _ = q.popitem(last=False)
            if victim in s:
                state[victim] = _NONRES
            else:
                del state[victim]
            self.n_res -= 1
        self.n_res += 1
        if st == _NONRES:
            s.move_to_end(x)
            state[x] = _LIR
            self._demote_bottom_lir()
        else:
            state[x] = _HIR
            s[x] = None
            q[x] = None
        return False
