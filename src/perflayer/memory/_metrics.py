"""Wire guards and pools into a monitor through scrape-time callbacks.

The guard's and the pool's own integers are the only store: the monitor reads them at scrape
time (``gauge_callback``/``counter_callback``), so ``stats()`` and the exposition can never
disagree and the hot paths pay nothing for metrics. One registry per monitor holds weak
references to every named guard and pool and registers each metric family once.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["MetricsSource", "register_guard", "register_pool", "resolve_monitor"]

log = logging.getLogger("perflayer.memory")


class MetricsSource(Protocol):
    """Anything whose ``metric_values()`` returns its current numbers by metric key."""

    def metric_values(self) -> Mapping[str, float]:
        """Return the current values, keyed by metric key."""


# (metric name, kind, doc, key in metric_values())
_GUARD_METRICS = (
    ("perflayer_memory_rss_bytes", "gauge", "Resident set size seen by the guard.", "rss"),
    ("perflayer_memory_limit_bytes", "gauge", "Effective memory limit of the guard.", "limit"),
    ("perflayer_memory_level", "gauge", "Guard level: 0 normal, 1 elevated, 2 critical.", "level"),
    (
        "perflayer_memory_pressure_events_total",
        "counter",
        "Times the guard entered ELEVATED or CRITICAL.",
        "pressure_events",
    ),
    (
        "perflayer_memory_relieved_total",
        "counter",
        "Amount relievers reported freeing at ELEVATED/CRITICAL (bytes, or entries for caches).",
        "relieved",
    ),
)

_POOL_METRICS = (
    ("perflayer_pool_created_total", "counter", "Objects created by the pool factory.", "created"),
    ("perflayer_pool_reused_total", "counter", "Acquires served by a pooled object.", "reused"),
    ("perflayer_pool_in_use", "gauge", "Objects currently checked out.", "in_use"),
    ("perflayer_pool_idle", "gauge", "Objects idle in the pool.", "idle"),
    ("perflayer_pool_reuse_ratio", "gauge", "reused / (created + reused).", "reuse_rate"),
    ("perflayer_pool_leaked_total", "counter", "Objects never returned to the pool.", "leaked"),
)


class _Registry:
    def __init__(self, monitor: Any) -> None:
        self.lock = threading.Lock()
        self.monitor = monitor
        self.guards: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self.pools: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self.registered: set[str] = set()

    def ensure(self, kind: str) -> None:
        """Register the metric families of ``kind`` ("guard" or "pool") once."""
        if kind in self.registered:
            return
        if kind == "guard":
            self._register(self.monitor, _GUARD_METRICS, self.guards, "guard")
        else:
            self._register(self.monitor, _POOL_METRICS, self.pools, "pool")
        self.registered.add(kind)

    def _register(
        self,
        monitor: Any,
        specs: tuple[tuple[str, str, str, str], ...],
        members: weakref.WeakValueDictionary[str, Any],
        label: str,
    ) -> None:
        for name, kind, doc, key in specs:
            fn = _make_reader(members, key)
            register = monitor.gauge_callback if kind == "gauge" else monitor.counter_callback
            register(name, doc, fn, labelnames=(label,))

    def unique(self, members: weakref.WeakValueDictionary[str, Any], name: str) -> str:
        if name not in members:
            return name
        n = 2
        while f"{name}-{n}" in members:
            n += 1
        return f"{name}-{n}"


def _make_reader(
    members: weakref.WeakValueDictionary[str, Any], key: str
) -> Callable[[], Mapping[tuple[str, ...], float]]:
    def read() -> Mapping[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for name, obj in list(members.items()):
            try:
                out[(name,)] = float(obj.metric_values()[key])
            except Exception:  # a scrape never fails because one member misbehaves
                continue
        return out

    return read


_registries: dict[int, tuple[Any, _Registry]] = {}
_registries_lock = threading.Lock()


def resolve_monitor(monitor: Any | None) -> Any | None:
    """Return ``monitor`` or the process-wide default; None if the monitor is unavailable."""
    if monitor is not None:
        return monitor
    try:
        from perflayer.monitor import default  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    try:
        return default()
    except Exception:  # degrade: metrics are optional for the memory layer
        log.warning("perflayer.memory: the default monitor is unavailable; metrics are off")
        return None


def _registry(monitor: Any) -> _Registry | None:
    with _registries_lock:
        entry = _registries.get(id(monitor))
        if entry is not None and entry[0] is monitor:
            return entry[1]
        reg = _Registry(monitor)
        # The monitor is held strongly: monitors live as long as the process in practice, and
        # a strong reference keeps id() from being reused by another object.
        _registries[id(monitor)] = (monitor, reg)
        return reg


def _register_member(monitor: Any | None, kind: str, name: str, obj: MetricsSource) -> str:
    mon = resolve_monitor(monitor)
    if mon is None:
        return name
    reg = _registry(mon)
    if reg is None:
        return name
    members = reg.guards if kind == "guard" else reg.pools
    with reg.lock:
        try:
            reg.ensure(kind)
        except Exception as exc:  # a monitor without the callback API: metrics off, say so
            log.warning("perflayer.memory: cannot register metrics on %r: %s", mon, exc)
            return name
        label = reg.unique(members, name)
        members[label] = obj
    return label


def register_guard(monitor: Any | None, name: str, guard: MetricsSource) -> str:
    """Register ``guard`` under a unique label value on the monitor; return the label used."""
    return _register_member(monitor, "guard", name, guard)


def register_pool(monitor: Any | None, name: str, pool: MetricsSource) -> str:
    """Register ``pool`` under a unique label value on the monitor; return the label used."""
    return _register_member(monitor, "pool", name, pool)
