"""Typed stub of the C extension ``perflayer.cache._auto_c`` (see ``_auto_c.c``)."""

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["AutoCore"]

class AutoCore:
    """The per-access half of AutoPolicy in C, call-identical to ``_policy_auto.AutoCore``."""

    _buf: deque[Hashable]
    _engine: Any
    _tiny: Any
    _twin: Any
    _a1: Callable[[Hashable], bool]
    _a2: Callable[[Hashable], bool]
    _epoch: int
    _seen: int
    _rhits: int
    _pat: list[int]
    _batch: list[Hashable]
    __dict__: dict[str, Any]

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` and return the keys to evict (never ``key``)."""
    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` and return the keys to evict."""
    def remove(self, key: Hashable) -> None:
        """Forget ``key``; unknown keys are ignored."""
    def _observe(self, keys: Iterable[Hashable], decide: object) -> None:
        """Feed ``keys`` to every simulation, count the real hits; decide at an epoch's end."""
    def _hand_over(self) -> None:
        """Give the buffered reads to a TinyLFU engine's own ring (LIRS/ARC drain the deque)."""
    def _missing(self) -> int:
        """Return how many of the twin's residents the real engine lacks (0 without a twin)."""
    def _decide(self) -> None:
        """Raise NotImplementedError: the deciding half (a subclass) decides."""
