"""Typed stub of the C extension ``perflayer.cache._engines_c`` (see ``_engines_c.c``)."""

from collections import deque
from collections.abc import Hashable, Sequence

__all__ = ["ARCEngine", "LIRSEngine"]

class ARCEngine:
    """ARC over entries in C, decision-identical to ``_policy_adaptive._ARCEngine``."""

    _buf: deque[Hashable]
    p: float

    def __init__(self, c: int, buf: deque[Hashable] | None = None) -> None: ...
    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
    @property
    def c(self) -> int:
        """Return the capacity in entries."""
    @property
    def max_entries(self) -> int:
        """Return the capacity in entries (as ``c``)."""
    def access(self, x: Hashable, /) -> bool:
        """Simulate one read-or-insert of ``x``; return True on a hit."""
    def add(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Insert or touch ``key``; return the evicted keys."""
    def update(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Record a new weight for ``key``; return the evicted keys."""
    def remove(self, key: Hashable, /) -> None:
        """Forget the resident ``key`` (its ghost, if any, stays)."""
    def clear(self) -> None:
        """Forget every key and the buffered reads."""
    def resize(self, max_entries: int | None, max_weight: int | None, /) -> list[Hashable]:
        """Change the capacity; return the evicted keys."""
    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident (key, weight) pairs, least valuable first."""
    def load(self, items: Sequence[tuple[Hashable, int]], /) -> None:
        """Fill an empty engine with ``items`` (least valuable first)."""
    def prepend(self, keys: Sequence[Hashable], /) -> None:
        """Make ``keys`` resident at T1's LRU end, weight 1."""
    def _drain(self) -> None: ...
    def _lists(
        self,
    ) -> tuple[list[Hashable], list[Hashable], list[Hashable], list[Hashable]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...

class LIRSEngine:
    """LIRS over entries in C, decision-identical to ``_policy_adaptive._LIRSEngine``."""

    _buf: deque[Hashable]

    def __init__(self, c: int, buf: deque[Hashable] | None = None) -> None: ...
    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
    @property
    def c(self) -> int:
        """Return the capacity in entries."""
    @property
    def max_entries(self) -> int:
        """Return the capacity in entries (as ``c``)."""
    @property
    def l_hirs(self) -> int:
        """Return the HIR share of the capacity."""
    @property
    def l_lirs(self) -> int:
        """Return the LIR set's target size."""
    @property
    def n_lir(self) -> int:
        """Return the number of LIR keys."""
    @property
    def n_res(self) -> int:
        """Return the number of resident keys."""
    def access(self, x: Hashable, /) -> bool:
        """Simulate one read-or-insert of ``x``; return True on a hit."""
    def add(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Insert or touch ``key``; return the evicted keys."""
    def update(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Record a new weight for ``key``; return the evicted keys."""
    def remove(self, key: Hashable, /) -> None:
        """Forget the resident ``key``."""
    def clear(self) -> None:
        """Forget every key and the buffered reads."""
    def resize(self, max_entries: int | None, max_weight: int | None, /) -> list[Hashable]:
        """Change the capacity; return the evicted keys."""
    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident (key, weight) pairs, least valuable first."""
    def load(self, items: Sequence[tuple[Hashable, int]], /) -> None:
        """Fill an empty engine with ``items`` (least valuable first)."""
    def prepend(self, keys: Sequence[Hashable], /) -> None:
        """Make ``keys`` resident HIR keys at the victim end, weight 1."""
    def _drain(self) -> None: ...
    def _lists(
        self,
    ) -> tuple[list[Hashable], list[Hashable], list[Hashable], dict[Hashable, int]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
