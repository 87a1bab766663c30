"""The ``Tier`` protocol, per-tier counters, the outage breaker, and the memory tier adapter.

A tier is one storage level of a ``TieredCache``: memory, disk, Redis, or your own. Tiers never
raise for their own trouble (a dead server, a corrupt file, a full disk, refused data): they
count it, log it once per outage, return a miss or False, and try again after a backoff.
They do raise for misuse (a value their codec cannot hold: ``TypeError``; bad settings:
``ConfigError``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol, runtime_checkable

from perflayer.errors import CacheValueTooLarge, ConfigError

__all__ = ["MemoryTier", "Tier", "TierStats"]

_log = logging.getLogger("perflayer.cache.tiers")


class TierStats:
    """Plain int counters of one tier, read by ``TieredCache.stats()`` and the monitor."""

    __slots__ = ("deletes", "errors", "hits", "misses", "refused", "sets")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.refused = 0
        self.sets = 0
        self.deletes = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a dict."""
        return {
            k: getattr(self, k) for k in ("hits", "misses", "errors", "refused", "sets", "deletes")
        }


@runtime_checkable
class Tier(Protocol):
    """One storage level of a ``TieredCache``; misses return None, failures are counted."""

    name: str
    stats: TierStats

    def get(self, key: str) -> Any:
        """Return the value at ``key`` or None (a miss, an expired key, or a failure)."""

    def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        """Return ``(value, seconds left or None)`` or None on a miss."""

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (None: no expiry); False if the tier failed."""

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""

    def clear(self) -> None:
        """Remove every key of this tier."""

    def healthy(self) -> bool:
        """Return False while the tier is known to be failing (in backoff)."""

    def close(self) -> None:
        """Release connections and files; idempotent."""


class Breaker:
    """Track a tier's outages: count, log once per outage, back off exponentially, heal."""

    __slots__ = ("_backoff", "_down_until", "_lock", "down", "max_backoff", "min_backoff", "what")

    def __init__(self, what: str, min_backoff: float = 0.05, max_backoff: float = 5.0) -> None:
        self.what = what
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._backoff = 0.0
        self._down_until = 0.0
        self.down = False
        self._lock = threading.Lock()

    def open(self) -> bool:
        """Return True when a call may be tried now (up, or the backoff has passed)."""
        return not self.down or time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """Record a failure: log on the first of an outage, double the backoff."""
        with self._lock:
            first = not self.down
            self.down = True
            self._backoff = min(self.max_backoff, max(self.min_backoff, self._backoff * 2))
            self._down_until = time.monotonic() + self._backoff
        if first:
            _log.warning(
                "%s failing (%s: %s); degrading, retrying with backoff",
                self.what,
                type(exc).__name__,
                exc,
            )

    def ok(self) -> None:
        """Record a success: close the outage (logged once) and reset the backoff."""
        if self.down:
            with self._lock:
                was = self.down
                self.down = False
                self._backoff = 0.0
            if was:
                _log.warning("%s recovered", self.what)


class MemoryTier:
    """Adapt an in-process ``perflayer.Cache`` to the ``Tier`` protocol (values kept as objects).

    >>> from perflayer.cache import Cache
    >>> t = MemoryTier(Cache(metrics=False))
    >>> t.set("k", [1, 2], ttl=60), t.get("k")
    (True, [1, 2])
    """

    __slots__ = ("cache", "name", "stats")

    def __init__(self, cache: Any = None, name: str = "memory") -> None:
        if cache is None:
            from perflayer.cache._core import Cache

            cache = Cache(max_entries=10_000, metrics=False)
        if not hasattr(cache, "pttl") or not hasattr(cache, "flushdb"):
            raise ConfigError(f"MemoryTier needs a perflayer Cache, got {cache!r}")
        if getattr(cache, "_decode", None) is not None:
            raise ConfigError(
                "MemoryTier needs Cache(decode_responses=None) so values keep their type, "
                f"got decode_responses={cache._decode!r}"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tier name must be a non-empty str, got {name!r}")
        self.cache = cache
        self.name = name
        self.stats = TierStats()

    def get(self, key: str) -> Any:
        """Return the value or None."""
        v = self.cache.get(key)
        if v is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return v

    def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        """Return ``(value, seconds left or None)`` or None."""
        v = self.get(key)
        if v is None:
            return None
        ms = self.cache.pttl(key)
        return v, (ms / 1000.0 if ms > 0 else None)

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value``; a ttl is rounded up to whole milliseconds."""
        self.stats.sets += 1
        try:
            if ttl is None:
                return bool(self.cache.set(key, value))
            return bool(self.cache.set(key, value, px=max(1, int(ttl * 1000.0 + 0.999))))
        except CacheValueTooLarge:  # bigger than the memory bound: lower tiers still hold it
            self.cache.delete(key)
            return False

    def delete(self, key: str) -> bool:
        """Remove ``key``."""
        self.stats.deletes += 1
        return bool(self.cache.delete(key))

    def clear(self) -> None:
        """Remove every key."""
        self.cache.flushdb()

    def healthy(self) -> bool:
        """Return True: memory does not fail."""
        return True

    def close(self) -> None:
        """Do nothing: memory holds no resources."""

    def __repr__(self) -> str:
        """Return a short description."""
        return f"MemoryTier(name={self.name!r}, cache={self.cache!r})"
