"""perflayer.monitor: one metrics registry with accurate quantiles, alerts, health and HTTP.

>>> from perflayer.monitor import Monitor
>>> m = Monitor()
>>> m.counter("perflayer_demo_total", "Demo.").inc()
>>> m.exposition().splitlines()[-1]
'perflayer_demo_total 1.0'
"""

from __future__ import annotations

from perflayer.monitor._alerts import (
    Alert,
    AlertRule,
    AlertState,
    LoggingHandler,
    Notification,
    WebhookHandler,
    alertmanager_payload,
)
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
from perflayer.monitor._http import MonitorServer
from perflayer.monitor._sketch import Sketch

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "DEFAULT_BUCKETS",
    "OVERFLOW_VALUE",
    "Alert",
    "AlertRule",
    "AlertState",
    "CallbackHandle",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "LoggingHandler",
    "MetricFamily",
    "Monitor",
    "MonitorServer",
    "Notification",
    "Sample",
    "Sketch",
    "WebhookHandler",
    "alertmanager_payload",
    "default",
    "lint",
    "negotiate",
]
