"""Report every cache into the monitor through scrape-time callbacks.

The callbacks read the same ``LevelStats`` ints that ``Cache.stats()`` reads, so the cache's
hot path does no monitor work at all and the two can never disagree. One set of callbacks is
registered per monitor; it walks every live cache registered with that monitor (weakly held).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perflayer.cache._core import Cache

__all__ = ["register_cache"]

_REGISTRY: dict[int, tuple[Any, weakref.WeakSet[Cache]]] = {}

_REASONS = (
    ("size", "evicted_size"),
    ("expired", "evicted_expired"),
    ("deleted", "evicted_deleted"),
)


def _collect(caches: weakref.WeakSet[Cache], attr: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for cache in list(caches):
        for ls in cache.level_counters():
            labels = (cache.name, ls.level.name)
            out[labels] = out.get(labels, 0.0) + float(getattr(ls, attr))
    return out


def _collect_evictions(caches: weakref.WeakSet[Cache]) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for cache in list(caches):
        for ls in cache.level_counters():
            for reason, attr in _REASONS:
                labels = (cache.name, ls.level.name, reason)
                out[labels] = out.get(labels, 0.0) + float(getattr(ls, attr))
    return out


def _reader(
    caches: weakref.WeakSet[Cache], attr: str
) -> Callable[[], dict[tuple[str, ...], float]]:
    return lambda: _collect(caches, attr)


def register_cache(cache: Cache, monitor: Any) -> None:
    """Make ``cache`` visible in ``monitor`` (or the default monitor); degrade if none exists."""
    try:
        from perflayer import monitor as monitor_mod
    except ImportError:  # pragma: no cover - the monitor package is part of perflayer
        return
    if monitor is None:
        default = getattr(monitor_mod, "default", None)
        if default is None:
            return  # the monitor has not landed yet: nothing to report into
        monitor = default()
    entry = _REGISTRY.get(id(monitor))
    if entry is None or entry[0] is not monitor:
        caches: weakref.WeakSet[Cache] = weakref.WeakSet()
        labels = ("cache", "level")
        monitor.counter_callback(
            "perflayer_cache_hits_total",
            "Cache read hits.",
            _reader(caches, "hits"),
            labelnames=labels,
        )
        monitor.counter_callback(
            "perflayer_cache_misses_total",
            "Cache read misses.",
            _reader(caches, "misses"),
            labelnames=labels,
        )
        monitor.counter_callback(
            "perflayer_cache_evictions_total",
            "Cache entries removed, by reason (size, expired, deleted).",
            lambda: _collect_evictions(caches),
            labelnames=(*labels, "reason"),
        )
        monitor.gauge_callback(
            "perflayer_cache_entries",
            "Entries resident in the cache.",
            _reader(caches, "entries"),
            labelnames=labels,
        )
        monitor.gauge_callback(
            "perflayer_cache_bytes",
            "Estimated bytes resident in the cache (see docs/cache.md).",
            _reader(caches, "bytes"),
            labelnames=labels,
        )
        entry = (monitor, caches)
        _REGISTRY[id(monitor)] = entry
    entry[1].add(cache)
