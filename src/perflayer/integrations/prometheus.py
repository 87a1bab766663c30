"""A prometheus_client Collector bridge: an app's existing /metrics also serves perflayer's.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from perflayer.monitor import Monitor
>>> from perflayer.integrations.prometheus import register
>>> m = Monitor(); m.counter("perflayer_demo_total", "Demo.").inc()
>>> reg = CollectorRegistry(); _ = register(m, reg)
>>> b"perflayer_demo_total 1.0" in generate_latest(reg)
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from perflayer.integrations._compat import require

if TYPE_CHECKING:
    from perflayer.monitor import Monitor

__all__ = ["PerflayerCollector", "register"]


def _require() -> Any:
    return require(
        "prometheus_client.metrics_core", "prometheus", "perflayer.integrations.prometheus"
    )


class PerflayerCollector:
    """A prometheus_client ``Collector`` yielding every family of a perflayer Monitor."""

    def __init__(self, monitor: Monitor | None = None) -> None:
        from perflayer.monitor import default

        self.monitor = monitor if monitor is not None else default()
        self._core = _require()

    def describe(self) -> list[Any]:
        """Return no descriptions, so registering never scrapes and names are not pre-claimed."""
        return []

    def collect(self) -> Iterator[Any]:
        """Yield prometheus_client ``Metric`` objects for every perflayer family."""
        metric_cls = self._core.Metric
        for fam in self.monitor.collect():
            m = metric_cls(fam.name, fam.documentation, fam.type)
            for s in fam.samples:
                m.add_sample(s.name, dict(s.labels), float(s.value))
            yield m


def register(monitor: Monitor | None = None, registry: Any = None) -> PerflayerCollector:
    """Register a ``PerflayerCollector`` on ``registry`` (default: prometheus_client.REGISTRY)."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    collector = PerflayerCollector(monitor)
    registry.register(collector)
    return collector
