"""The size estimate behind ``max_bytes`` and ``stats()["bytes"]``.

An entry weighs ``ENTRY_OVERHEAD + sys.getsizeof(key) + estimate(value)`` bytes. ``estimate`` is
``sys.getsizeof`` for scalars, strings and bytes, and for containers (list, tuple, set,
frozenset, dict, objects with ``__dict__`` or ``__slots__``) a walk that adds the shallow size of
every object reachable from the value, each counted once, stopping after ``MAX_OBJECTS``
objects (the rest is extrapolated from the average so far). It is an estimate of what the cache
keeps alive, not of process RSS: shared objects (interned strings, small ints) count in full.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ENTRY_OVERHEAD", "MAX_OBJECTS", "entry_weight", "estimate"]

# An entry object with six slots (~88 bytes) plus its share of the key dict's table (~24 bytes).
ENTRY_OVERHEAD = 112
MAX_OBJECTS = 10_000

_getsizeof = sys.getsizeof
_SCALARS = frozenset({str, bytes, int, float, bool, type(None), complex, bytearray})


def estimate(value: Any) -> int:
    """Return the estimated size in bytes of ``value`` and everything it holds."""
    if value.__class__ in _SCALARS:
        return _getsizeof(value)
    seen: set[int] = set()
    stack = [value]
    total = 0
    count = 0
    while stack:
        obj = stack.pop()
        oid = id(obj)
        if oid in seen:
            continue
        seen.add(oid)
        try:
            total += _getsizeof(obj)
        except TypeError:  # pragma: no cover - objects whose __sizeof__ is broken
            total += 64
        count += 1
        if count >= MAX_OBJECTS:
            remaining = len(stack)
            total += remaining * (total // count)
            break
        cls = obj.__class__
        if cls in _SCALARS:
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict):
                stack.append(d)
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                    v = getattr(obj, slot, None)
                    if v is not None:
                        stack.append(v)
    return total


def entry_weight(key: str, value: Any) -> int:
    """Return the weight of one entry: overhead + key + value estimate."""
    return ENTRY_OVERHEAD + _getsizeof(key) + estimate(value)
