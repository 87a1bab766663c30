"""The size estimate behind ``max_bytes`` and ``stats()["bytes"]``.

An entry weighs ``ENTRY_OVERHEAD + key_size(key) + estimate(value)`` bytes, where:

- ASCII ``str``: ``49 + len(s)``, ``bytes``: ``33 + len(b)`` (both exactly CPython's
  ``sys.getsizeof``); non-ASCII ``str``: ``sys.getsizeof(s)``;
- ``int`` within ±2**62, ``float``, ``bool``, ``None``: 32 (larger ints: ``sys.getsizeof``);
- anything else (lists, dicts, sets, tuples, objects with ``__dict__`` or ``__slots__``): the
  shallow ``sys.getsizeof`` of every object reachable from the value, each counted once, up to
  ``MAX_OBJECTS`` objects (the rest is extrapolated from the average so far).

It estimates what the cache keeps alive, not process RSS: shared objects (interned strings,
small ints) count in full. The scalar rules use ``len()`` because ``sys.getsizeof`` costs about
as much as a whole cache hit.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ENTRY_OVERHEAD", "MAX_OBJECTS", "SCALAR_SIZE", "entry_weight", "estimate", "key_size"]

# An entry object with six slots (~88 bytes) plus its share of the key dict's table (~24 bytes).
ENTRY_OVERHEAD = 112
SCALAR_SIZE = 32
MAX_OBJECTS = 10_000
_BIG = 2**62

_getsizeof = sys.getsizeof
_SCALARS = frozenset({str, bytes, int, float, bool, type(None), complex, bytearray})


def key_size(key: str) -> int:
    """Return the estimated size of a key (``49 + len`` for ASCII)."""
    return 49 + len(key) if key.isascii() else _getsizeof(key)


def _scalar(value: Any) -> int:
    cls = value.__class__
    if cls is str:
        return 49 + len(value) if value.isascii() else _getsizeof(value)
    if cls is bytes:
        return 33 + len(value)
    if cls is int:
        return SCALAR_SIZE if -_BIG < value < _BIG else _getsizeof(value)
    if cls is float or cls is bool or value is None:
        return SCALAR_SIZE
    return _getsizeof(value)


def estimate(value: Any) -> int:
    """Return the estimated size in bytes of ``value`` and everything it holds."""
    if value.__class__ in _SCALARS:
        return _scalar(value)
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
        cls = obj.__class__
        if cls in _SCALARS:
            total += _scalar(obj)
            count += 1
            continue
        try:
            total += _getsizeof(obj)
        except TypeError:  # pragma: no cover - objects whose __sizeof__ is broken
            total += 64
        count += 1
        if count >= MAX_OBJECTS:
            total += len(stack) * (total // count)
            break
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
    return ENTRY_OVERHEAD + key_size(key) + estimate(value)
