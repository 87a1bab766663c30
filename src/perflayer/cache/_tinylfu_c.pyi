"""Typed stub of the C extension ``perflayer.cache._tinylfu_c`` (see ``_tinylfu_c.c``)."""

from collections.abc import Container, Hashable, Mapping, Sequence
from typing import Any

__all__ = ["TinyLFUPolicy"]

# the C set's API (prefetch hint, add), a PyCapsule "perflayer.cache._tinylfu_c._C_API" (private)
_C_API: object

class TinyLFUPolicy:
    """Adaptive W-TinyLFU in C, decision-identical to ``perflayer.cache._policy.TinyLFUPolicy``."""

    adaptive: bool

    def __init__(
        self,
        max_entries: int | None,
        max_weight: int | None,
        *,
        window: float = 0.01,
        adaptive: bool = True,
        read_buffer: int | None = None,
        climber: str = "shadow",
        ghost: bool = True,
    ) -> None: ...
    def hit(self, key: Hashable, /) -> None:
        """Record a read of a resident key (appended to the read buffer)."""
    def miss(self, key: Hashable, /) -> None:
        """Record a read of a non-resident key (appended to the read buffer)."""
    def add(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Insert ``key`` into the window and return the keys to evict (never ``key``)."""
    def update(self, key: Hashable, weight: int, /) -> list[Hashable]:
        """Record a new weight for ``key`` (a write counts as a use) and return keys to evict."""
    def remove(self, key: Hashable, /) -> None:
        """Forget ``key``; unknown keys are ignored."""
    def clear(self) -> None:
        """Forget every key and every count; keep the bounds and the window share."""
    def resize(self, max_entries: int | None, max_weight: int | None, /) -> list[Hashable]:
        """Change the bounds (the window keeps its share) and return the keys to evict."""
    def copy(self) -> TinyLFUPolicy:
        """Return an independent copy (the same key objects) that makes the same decisions."""
    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident (key, weight) pairs, least valuable first (no replay first)."""
    def prepend(self, keys: Sequence[Hashable], /) -> None:
        """Make ``keys`` (none resident, none twice) resident at probation's LRU end, weight 1."""
    def set_weights(self, mapping: Mapping[Hashable, int], /) -> None:
        """Set every resident key's weight to ``mapping.get(key, 1)``; recompute the tallies."""
    def access(self, key: Hashable, /) -> bool:
        """Simulate one read-or-insert of ``key`` (a memo's step); return True on a hit."""
    def step(
        self, key: Hashable, other: Container[Hashable] | None = None, write: bool = False, /
    ) -> int | None:
        """Simulate ``access(key)``; return None on a hit, else how many victims ``other`` lacks."""
    def take(self, key: Hashable, write: bool = False, /) -> list[Hashable] | None:
        """Simulate ``access(key)`` (``write``: a set without a get); None on a hit, else the
        evicted keys."""
    def __len__(self) -> int:
        """Return the number of resident keys."""
    def __contains__(self, key: object, /) -> bool:
        """Return True if ``key`` is resident."""
    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
    @property
    def window_fraction(self) -> float:
        """Return the current share of the maximum given to the window."""
    @property
    def max_entries(self) -> int | None:
        """Return the entry bound (None: unbounded)."""
    @property
    def max_weight(self) -> int | None:
        """Return the weight bound (None: unbounded)."""
    @property
    def read_buffer(self) -> int:
        """Return the read buffer's length (reads kept between two writes)."""
    @property
    def climber(self) -> str:
        """Return the window climber asked for: "sample" or "shadow"."""
    @property
    def climber_moves(self) -> int:
        """Return how many window moves the shadow climber made (0 while it is not active)."""
    @property
    def ghost(self) -> bool:
        """Return True if ghost admission with regret is on."""
    @property
    def _ghost_state(self) -> tuple[int, int, int, int, int]:
        """For tests: (ghost admissions, regrets, score, exploration counter, flagged keys)."""
    @property
    def _shadow_state(self) -> dict[str, Any] | None:
        """For tests: the shadow climber's state, None while it is off."""
