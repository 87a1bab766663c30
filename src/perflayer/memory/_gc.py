"""``gc_tuned()``: change the collector's settings for a block and put them back after.

Nothing here runs at import or construction time: thresholds, the enabled flag and frozen
objects change only inside the ``with`` block and are restored on exit, even on error.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from perflayer.errors import ConfigError

__all__ = ["GcState", "gc_tuned"]


@dataclass(frozen=True)
class GcState:
    """The collector settings in force inside a ``gc_tuned()`` block."""

    threshold: tuple[int, int, int]
    enabled: bool
    frozen: int


@contextmanager
def gc_tuned(
    threshold: tuple[int, int, int] | None = (50_000, 20, 20),
    *,
    freeze: bool = False,
    disable: bool = False,
    collect_after: bool = False,
) -> Iterator[GcState]:
    """Raise gc thresholds (fewer young collections), optionally freeze or disable, then restore.

    ``freeze=True`` moves every object alive now into the permanent generation, so full
    collections in the block skip them (the start-up heap of a service); it is undone on exit.
    """
    if threshold is not None and (
        len(threshold) != 3
        or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in threshold)
    ):
        raise ConfigError(f"threshold must be three ints >= 0, got {threshold!r}")
    saved_threshold = gc.get_threshold()
    saved_enabled = gc.isenabled()
    froze = False
    try:
        if threshold is not None:
            gc.set_threshold(*threshold)
        if freeze:
            gc.freeze()
            froze = True
        if disable:
            gc.disable()
        yield GcState(gc.get_threshold(), gc.isenabled(), gc.get_freeze_count())
    finally:
        if froze:
            gc.unfreeze()
        gc.set_threshold(*saved_threshold)
        if saved_enabled:
            gc.enable()
        else:
            gc.disable()
        if collect_after:
            gc.collect()
