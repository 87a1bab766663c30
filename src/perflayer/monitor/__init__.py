"""perflayer.monitor: one metrics registry with accurate quantiles, alerts, health and HTTP.

>>> from perflayer.monitor import Monitor
>>> m = Monitor()
>>> m.counter("perflayer_demo_total", "Demo.").inc()
>>> m.exposition().splitlines()[-1]
'perflayer_demo_total 1.0'
"""

from __future__ import annotations

from perflayer.monitor._core import (
    DEFAULT_BUCKETS,
    OVERFLOW_VALUE,
    CallbackHandle,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    MetricFamily,
    Monitor,
    Sample,
    default,
)
from perflayer.monitor._exposition import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    lint,
    negotiate,
)
from perflayer.monitor._sketch import Sketch

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DEFAULT_BUCKETS",
    "OVERFLOW_VALUE",
    "CallbackHandle",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricFamily",
    "Monitor",
    "Sample",
    "Sketch",
    "default",
    "lint",
    "negotiate",
]
