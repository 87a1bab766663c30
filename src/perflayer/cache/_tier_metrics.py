"""Report a ``TieredCache`` into the monitor through scrape-time callbacks.

The callbacks read the same ``TierStats`` ints that ``TieredCache.stats()`` reads, so the two
never disagree and the read path does no monitor work. Labels are ``cache`` and ``tier``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perflayer.cache._tiered import TieredCache

__all__ = ["register_tiered"]

_log = logging.getLogger("perflayer.cache.tiers")
_warned = False

_PER_TIER = (
    ("hits", "Tier read hits."),
    ("misses", "Tier read misses (including failures and refused data)."),
    ("errors", "Tier operations that failed or were skipped while the tier was down."),
    ("refused", "Stored payloads the tier's codec refused (unsigned, bad signature, malformed)."),
)


class _Reader:
    """Bound-method holder so the monitor keeps only a weak reference to the cache."""

    def __init__(self, cache: TieredCache) -> None:
        import weakref

        self._ref = weakref.ref(cache)

    def _per_tier(self, attr: str) -> dict[tuple[str, ...], float]:
        c = self._ref()
        if c is None:
            return {}
        return {(c.name, t.name): float(getattr(t.stats, attr)) for t in c.tiers}

    def hits(self) -> dict[tuple[str, ...], float]:
        """Return the hits series."""
        return self._per_tier("hits")

    def misses(self) -> dict[tuple[str, ...], float]:
        """Return the misses series."""
        return self._per_tier("misses")

    def errors(self) -> dict[tuple[str, ...], float]:
        """Return the errors series."""
        return self._per_tier("errors")

    def refused(self) -> dict[tuple[str, ...], float]:
        """Return the refused series."""
        return self._per_tier("refused")

    def healthy(self) -> dict[tuple[str, ...], float]:
        """Return the healthy series."""
        c = self._ref()
        if c is None:
            return {}
        return {(c.name, t.name): 1.0 if t.healthy() else 0.0 for t in c.tiers}

    def _whole(self, attr: str) -> dict[tuple[str, ...], float]:
        c = self._ref()
        return {} if c is None else {(c.name,): float(getattr(c, attr))}

    def total_hits(self) -> dict[tuple[str, ...], float]:
        """Return the total hits series."""
        return self._whole("hits")

    def total_misses(self) -> dict[tuple[str, ...], float]:
        """Return the total misses series."""
        return self._whole("misses")

    def invalidations(self) -> dict[tuple[str, ...], float]:
        """Return the invalidations series."""
        return self._whole("invalidations")

    def flushes(self) -> dict[tuple[str, ...], float]:
        """Return the flushes series."""
        return self._whole("flushes")


def register_tiered(cache: TieredCache, monitor: Any) -> None:
    """Register ``cache``'s per-tier counters in ``monitor`` (default when None); never raise."""
    global _warned
    try:
        if monitor is None:
            from perflayer.monitor import default

            monitor = default()
        r = _Reader(cache)
        cache._metrics_reader = r  # keeps the reader (held weakly by the monitor) alive
        lt = ("cache", "tier")
        for attr, doc in _PER_TIER:
            monitor.counter_callback(
                f"perflayer_cache_tier_{attr}_total", doc, getattr(r, attr), labelnames=lt
            )
        monitor.gauge_callback(
            "perflayer_cache_tier_healthy", "1 if the tier is up, 0 in backoff.", r.healthy, lt
        )
        lc = ("cache",)
        monitor.counter_callback(
            "perflayer_tiered_hits_total", "Tiered reads that hit a tier.", r.total_hits, lc
        )
        monitor.counter_callback(
            "perflayer_tiered_misses_total",
            "Tiered reads that missed every tier.",
            r.total_misses,
            lc,
        )
        monitor.counter_callback(
            "perflayer_tiered_invalidations_total",
            "Keys dropped from near tiers on another process's write.",
            r.invalidations,
            lc,
        )
        monitor.counter_callback(
            "perflayer_tiered_flushes_total",
            "Near tiers flushed (a remote clear, or the channel came back after a drop).",
            r.flushes,
            lc,
        )
    except Exception as exc:  # degrade: a cache without metrics still caches
        if not _warned:
            _warned = True
            _log.warning("perflayer tiered cache %r: metrics not registered: %s", cache.name, exc)
