"""Report a cache into the monitor through scrape-time callbacks.

The callbacks read the same ``LevelStats`` ints that ``Cache.stats()`` reads, so the cache's
hot path does no monitor work at all and the two can never disagree. The monitor holds the
cache's bound methods weakly, so a dropped cache simply stops reporting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perflayer.cache._core import Cache

__all__ = ["register_cache"]

_log = logging.getLogger("perflayer.cache")
_warned = False


def register_cache(cache: Cache, monitor: Any) -> None:
    """Register ``cache``'s counters in ``monitor`` (default monitor when None); never raise."""
    global _warned
    try:
        if monitor is None:
            from perflayer.monitor import default

            monitor = default()
        labels = ("cache", "level")
        monitor.counter_callback(
            "perflayer_cache_hits_total", "Cache read hits.", cache._m_hits, labelnames=labels
        )
        monitor.counter_callback(
            "perflayer_cache_misses_total", "Cache read misses.", cache._m_misses, labelnames=labels
        )
        monitor.counter_callback(
            "perflayer_cache_evictions_total",
            "Cache entries removed, by reason (size, expired, deleted).",
            cache._m_evictions,
            labelnames=(*labels, "reason"),
        )
        monitor.gauge_callback(
            "perflayer_cache_entries",
            "Entries resident in the cache.",
            cache._m_entries,
            labelnames=labels,
        )
        monitor.gauge_callback(
            "perflayer_cache_bytes",
            "Estimated bytes resident in the cache (see docs/cache.md).",
            cache._m_bytes,
            labelnames=labels,
        )
    except Exception as exc:  # degrade: a cache without metrics still caches
        if not _warned:
            _warned = True
            _log.warning("perflayer cache %r: metrics not registered: %s", cache.name, exc)
