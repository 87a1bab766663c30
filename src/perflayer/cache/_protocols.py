"""Extension points of the cache: the eviction/admission ``Policy`` and the storage ``Tier``.

The core cache owns the key -> entry mapping; a policy owns only the order in which keys leave.
The core calls the policy on every read hit, write, weight change and removal, so every method
must be O(1) amortized.

Concurrency contract: ``hit`` and ``miss`` are called WITHOUT the cache's lock (the read path
takes none), possibly concurrently with each other and with a locked call of any other method,
and ``hit`` may name a key that another thread removed a moment ago (raise KeyError or ignore
it). Bind them to a single C-level operation (``deque.append``, ``OrderedDict.move_to_end``) or
buffer them; every other method is called with the cache's lock held.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol, runtime_checkable

__all__ = ["Policy"]


@runtime_checkable
class Policy(Protocol):
    """Decide which keys leave a bounded cache.

    Bounds are ``max_entries`` (count) and ``max_weight`` (the sum of entry weights, in the
    cache's estimated bytes); ``None`` means unbounded on that axis.
    """

    def hit(self, key: Hashable) -> None:
        """Record a read of a resident key."""

    def miss(self, key: Hashable) -> None:
        """Record a read of a key that is not resident (feeds frequency estimates)."""

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert a new resident key and return the keys to evict to stay in bounds.

        The returned list never contains ``key`` itself: a key just written is always resident
        until the next write (the core rejects a single value over ``max_weight`` up front).
        """

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for a resident key (overwrite) and return keys to evict."""

    def remove(self, key: Hashable) -> None:
        """Forget a key that left the cache for another reason (delete, expiry, rename)."""

    def clear(self) -> None:
        """Forget every key."""

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds and return the keys to evict to meet them."""
