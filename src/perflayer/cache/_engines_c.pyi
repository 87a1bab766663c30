"""Typed stub of the C extension ``perflayer.cache._engines_c`` (see ``_engines_c.c``)."""

from collections import deque
from collections.abc import Container, Hashable, Sequence
from typing import final, type_check_only

from perflayer.cache._tinylfu_c import TinyLFUPolicy

__all__ = ["ARCEngine", "LIRSEngine", "SimEngine"]

@type_check_only
class _Engine:
    """What both C engines have (one C implementation serves both; no base class at run time)."""

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
    def access(self, x: Hashable, /) -> bool:
        """Simulate one read-or-insert of ``x``; return True on a hit."""
    def take(self, x: Hashable, /) -> list[Hashable] | None:
        """Simulate one read-or-insert of ``x``; return None on a hit, else the evicted keys."""
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
    def set_weights(self, mapping: dict[Hashable, int], /) -> None:
        """Set every resident key's weight to ``mapping.get(key, 1)``."""
    def _drain(self) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...

@final
class ARCEngine(_Engine):
    """ARC over entries in C, decision-identical to ``_policy_adaptive._ARCEngine``."""

    p: float

    def remove(self, key: Hashable, /) -> None:
        """Forget the resident ``key`` (its ghost, if any, stays)."""
    def prepend(self, keys: Sequence[Hashable], /) -> None:
        """Make ``keys`` resident at T1's LRU end, weight 1."""
    def copy(self, buf: deque[Hashable] | None = None, /) -> ARCEngine:
        """Return a copy (the same key objects) on the read buffer ``buf``."""
    def _lists(
        self,
    ) -> tuple[list[Hashable], list[Hashable], list[Hashable], list[Hashable]]: ...

@final
class LIRSEngine(_Engine):
    """LIRS over entries in C, decision-identical to ``_policy_adaptive._LIRSEngine``."""

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
    def prepend(self, keys: Sequence[Hashable], /) -> None:
        """Make ``keys`` resident HIR keys at the victim end, weight 1."""
    def copy(self, buf: deque[Hashable] | None = None, /) -> LIRSEngine:
        """Return a copy (the same key objects) on the read buffer ``buf``."""
    def _lists(
        self,
    ) -> tuple[list[Hashable], list[Hashable], list[Hashable], dict[Hashable, int]]: ...

@final
class SimEngine:
    """A C LIRS, ARC or TinyLFU simulation that is the engine, as ``_policy_auto.SimEngine``."""

    def __init__(
        self,
        sim: LIRSEngine | ARCEngine | TinyLFUPolicy,
        real: Sequence[tuple[Hashable, int]],
        buf: deque[Hashable],
    ) -> None: ...
    @property
    def sim(self) -> LIRSEngine | ARCEngine | TinyLFUPolicy:
        """Return the simulation that is this engine."""
    @property
    def weight(self) -> int:
        """Return the sum of the cache's keys' weights."""
    @property
    def max_entries(self) -> int | None:
        """Return the capacity in entries (None: a TinyLFU simulation bounded by weight)."""
    def step(self, key: Hashable, /) -> bool:
        """The simulation's access of ``key`` (True on a hit), keeping the extras."""
    def step_twin(self, key: Hashable, other: Container[Hashable] | None = None, /) -> int | None:
        """As ``step``: None on a hit, else how many of the victims ``other`` lacks (0: None)."""
    def add(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """The cache stores ``key``: a phantom (or a new key) becomes resident; evict extras."""
    def update(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Record a new weight for ``key`` (an overwrite is not an access of the simulation)."""
    def remove(self, key: Hashable, /) -> None:
        """Forget ``key`` (the caller removes it from the simulation)."""
    def resize(self, max_entries: int | None, max_weight: int | None, /) -> list[Hashable]:
        """Resize the simulation; evict extras down to the new capacity."""
    def clear(self) -> None:
        """Forget every key, here and in the simulation."""
    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident keys and weights, least valuable first (the extras first)."""
    def _extras(self) -> list[Hashable]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
