"""Typed stub of the C extension: Cache.get and the plain Cache.set in C (see _fastpath_c.c)."""

from collections.abc import Callable
from typing import Any

__all__ = ["Entry", "fast_get", "fast_set"]

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
