"""Belady's optimum (MIN) with bypass, computed exactly from the whole trace.

Belady, "A study of replacement algorithms for a virtual-storage computer", IBM Systems
Journal 1966. On a miss with a full cache, the key whose next use is furthest in the future is
dropped, and that may be the incoming key itself (bypass): no policy can hit more often on a
trace of unit-size entries.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence

__all__ = ["belady_hits"]


def belady_hits(trace: Sequence[Hashable], c: int) -> int:
    """Return the number of hits of the optimal policy with ``c`` entries on ``trace``."""
    n = len(trace)
    never = n + 1
    nxt = [never] * n
    last: dict[Hashable, int] = {}
    for i in range(n - 1, -1, -1):
        k = trace[i]
        nxt[i] = last.get(k, never)
        last[k] = i
    resident: dict[Hashable, int] = {}  # key -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, position of that use) with lazy deletion
    hits = 0
    for i, k in enumerate(trace):
        nu = nxt[i]
        if k in resident:
            hits += 1
            if nu == never:
                del resident[k]
            else:
                resident[k] = nu
                heapq.heappush(heap, (-nu, nu))
            continue
        if nu == never or c == 0:
            continue  # bypass: never used again
        if len(resident) >= c:
            # the resident key with the furthest next use; stale heap entries are skipped
            while True:
                far = -heap[0][0]
                kk = trace[far]
                if resident.get(kk) == far:
                    break
                heapq.heappop(heap)
            if far <= nu:
                continue  # bypass the incoming key
            heapq.heappop(heap)
            del resident[trace[far]]
        resident[k] = nu
        heapq.heappush(heap, (-nu, nu))
    return hits
