"""Typed stub of the C extension: Cache.get and the plain Cache.set in C (see _fastpath_c.c)."""

from collections.abc import Callable
from typing import Any

__all__ = ["fast_get", "fast_set"]

def fast_get(cache: Any) -> Callable[[Any], Any]:
    """Return a C ``get(name)`` bound to ``cache``, with Cache.get's semantics."""

def fast_set(cache: Any) -> Callable[..., Any]:
    """Return a C ``set(name, value, ...)`` bound to ``cache``, with Cache.set's semantics."""
