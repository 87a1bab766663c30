"""Small numeric helpers."""

from __future__ import annotations

from typing import List, Sequence


def calculate_percentile(values: Sequence[float], percentile: float) -> float:
    """Return the ``percentile`` (0-100) of ``values`` by nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = int(len(ordered) * percentile / 100)
    index = min(max(index, 0), len(ordered) - 1)
    return ordered[index]


def moving_window(values: List[float], size: int) -> List[float]:
    """Return the last ``size`` values."""
    return values[-size:]
