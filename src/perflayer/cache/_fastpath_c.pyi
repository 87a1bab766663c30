"""Typed stub of the C extension: Cache.get and the plain Cache.set in C (see _fastpath_c.c)."""

from collections.abc import Callable
from typing import Any

__all__ = ["Entry", "Lock", "fast_get", "fast_set"]

# 1 where entries are allocated without the cyclic GC's allocation count (see entry_alloc)
_ENTRY_UNCOUNTED: int

class Entry:
    """One stored value with its expiry, level, weight and tags (_core._Entry in C)."""

    expire: Any
    key: Any
    lvl: Any
    plain_vw: Any
    tags: Any
    value: Any
    weight: Any

    def __init__(
        self,
        key: Any,
        value: Any,
        expire: Any,
        lvl: Any,
        weight: Any,
        tags: Any,
        plain_vw: Any,
    ) -> None: ...

def fast_get(cache: Any) -> Callable[[Any], Any]:
    """Return a C ``get(name)`` bound to ``cache``, with Cache.get's semantics."""

def fast_set(cache: Any) -> Callable[..., Any]:
    """Return a C ``set(name, value, ...)`` bound to ``cache``, with Cache.set's semantics."""

class Lock:
    """threading.Lock's API in C: the cache's lock, taken by the C fast paths without a call."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock; True if taken, False when the timeout passed first."""

    def release(self) -> None:
        """Release the lock; RuntimeError if it is not locked."""

    def locked(self) -> bool:
        """Return whether the lock is held."""

    def __enter__(self) -> bool:
        """Acquire the lock (blocking)."""

    def __exit__(self, *exc: object) -> None:
        """Release the lock."""
