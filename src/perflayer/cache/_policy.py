"""Eviction and admission policies for the bounded in-process cache.

(The design essay for the W-TinyLFU policy lands with it; for now this module holds the LRU
policy and the ``make_policy`` factory the cache core builds on.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from perflayer.cache._protocols import Policy
from perflayer.errors import ConfigError

__all__ = ["POLICIES", "LRUPolicy", "make_policy"]


def _check_bounds(max_entries: int | None, max_weight: int | None) -> None:
    """Raise ConfigError for a bound that is not None or a positive int."""
    for name, value in (("max_entries", max_entries), ("max_weight", max_weight)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an int or None, got {value!r}")
        if value < 1:
            raise ConfigError(f"{name} must be >= 1 or None, got {value!r}")


class LRUPolicy:
    """Evict the least recently used key first.

    >>> p = LRUPolicy(max_entries=2, max_weight=None)
    >>> p.add("a", 1), p.add("b", 1), p.hit("a"), p.add("c", 1)
    ([], [], None, ['b'])
    """

    __slots__ = ("_order", "_total", "hit", "max_entries", "max_weight")

    # why: ``hit`` is the hot path (every read hit); binding it to the OrderedDict's C method
    # makes a hit exactly one ``move_to_end`` with no Python frame in between.
    hit: Callable[[Hashable], None]

    def __init__(self, max_entries: int | None, max_weight: int | None) -> None:
        _check_bounds(max_entries, max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._order: OrderedDict[Hashable, int] = OrderedDict()
        self._total = 0
        self.hit = self._order.move_to_end

    def __len__(self) -> int:
        """Return the number of resident keys."""
        return len(self._order)

    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
        return self._total

    def miss(self, key: Hashable) -> None:
        """Record a miss (LRU keeps no history, so this does nothing)."""

    def _evict(self, keep: int) -> list[Hashable]:
        """Pop the coldest keys until in bounds, leaving at least ``keep`` keys."""
        order = self._order
        max_entries = self.max_entries
        max_weight = self.max_weight
        victims: list[Hashable] = []
        while len(order) > keep and (
            (max_entries is not None and len(order) > max_entries)
            or (max_weight is not None and self._total > max_weight)
        ):
            victim, w = order.popitem(last=False)
            self._total -= w
            victims.append(victim)
        return victims

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` as the most recent key and return the keys to evict."""
        order = self._order
        old = order.get(key)
        if old is not None:
            self._total -= old
            order.move_to_end(key)
        order[key] = weight
        self._total += weight
        if (self.max_entries is not None and len(order) > self.max_entries) or (
            self.max_weight is not None and self._total > self.max_weight
        ):
            # ``key`` is last, so keeping one key keeps it.
            return self._evict(1)
        return []

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` (a write counts as a use) and return victims."""
        return self.add(key, weight)

    def remove(self, key: Hashable) -> None:
        """Forget ``key``; unknown keys are ignored."""
        w = self._order.pop(key, None)
        if w is not None:
            self._total -= w

    def clear(self) -> None:
        """Forget every key."""
        self._order.clear()
        self._total = 0

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds and return the keys to evict to meet them."""
        _check_bounds(max_entries, max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        return self._evict(0)


def _make_lru(max_entries: int | None, max_weight: int | None) -> Policy:
    return LRUPolicy(max_entries, max_weight)


# Factories by name; "tinylfu" is temporarily the LRU policy until the W-TinyLFU policy lands.
POLICIES: dict[str, Callable[[int | None, int | None], Policy]] = {
    "lru": _make_lru,
    "tinylfu": _make_lru,
}


def make_policy(name: str, max_entries: int | None, max_weight: int | None) -> Policy:
    """Build the policy called ``name`` ("tinylfu" or "lru") for the given bounds."""
    factory = POLICIES.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ConfigError(f"unknown cache policy {name!r}; expected one of {sorted(POLICIES)}")
    return factory(max_entries, max_weight)
