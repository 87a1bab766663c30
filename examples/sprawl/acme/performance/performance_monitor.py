"""Enterprise-grade performance monitoring: latencies, percentiles, thresholds and alerts."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional

logger = logging.getLogger(__name__)


@dataclass
class Alert:
    """One threshold breach."""

    metric: str
    value: float
    threshold: float
    timestamp: float = field(default_factory=time.time)


class PerformanceMonitor:
    """Record operation latencies and errors; alert when p95 or error rate cross thresholds."""

    def __init__(self, window: int = 1000, p95_threshold_ms: float = 400.0,
                 error_rate_threshold: float = 0.05) -> None:
        self.window = window
        self.p95_threshold_ms = p95_threshold_ms
        self.error_rate_threshold = error_rate_threshold
        self.latencies: Dict[str, Deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self.counters: Dict[str, int] = defaultdict(int)
        self.errors: Dict[str, int] = defaultdict(int)
        self.alerts: List[Alert] = []
        self._handlers: List[Callable[[Alert], None]] = []
        self._lock = threading.Lock()

    def record(self, operation: str, duration_ms: float, success: bool = True) -> None:
        """Record one operation's latency and outcome."""
        with self._lock:
            self.latencies[operation].append(duration_ms)
            self.counters[operation] += 1
            if not success:
                self.errors[operation] += 1
        self._check_thresholds(operation)

    def time_operation(self, operation: str) -> "_Timer":
        """Return a context manager that records the block's duration."""
        return _Timer(self, operation)

    def percentile(self, operation: str, pct: float) -> float:
        """Return the ``pct`` percentile latency of ``operation``."""
        samples = sorted(self.latencies.get(operation, ()))
        if not samples:
            return 0.0
        return samples[min(len(samples) - 1, int(len(samples) * pct))]

    def error_rate(self, operation: str) -> float:
        """Return errors / calls for ``operation``."""
        calls = self.counters.get(operation, 0)
        return self.errors.get(operation, 0) / calls if calls else 0.0

    def _check_thresholds(self, operation: str) -> None:
        p95 = self.percentile(operation, 0.95)
        if p95 > self.p95_threshold_ms:
            self._alert(Alert(f"{operation}.p95_ms", p95, self.p95_threshold_ms))
        rate = self.error_rate(operation)
        if rate > self.error_rate_threshold:
            self._alert(Alert(f"{operation}.error_rate", rate, self.error_rate_threshold))

    def _alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        logger.warning("alert %s=%.2f > %.2f", alert.metric, alert.value, alert.threshold)
        for handler in self._handlers:
            handler(alert)

    def on_alert(self, handler: Callable[[Alert], None]) -> None:
        """Call ``handler`` for every new alert."""
        self._handlers.append(handler)

    def summary(self) -> Dict[str, Dict[str, float]]:
        """Return mean, p50, p95, p99 and error rate per operation."""
        out: Dict[str, Dict[str, float]] = {}
        for operation, samples in self.latencies.items():
            if not samples:
                continue
            out[operation] = {
                "count": float(self.counters[operation]),
                "mean_ms": statistics.fmean(samples),
                "p50_ms": self.percentile(operation, 0.50),
                "p95_ms": self.percentile(operation, 0.95),
                "p99_ms": self.percentile(operation, 0.99),
                "error_rate": self.error_rate(operation),
            }
        return out


class _Timer:
    def __init__(self, monitor: PerformanceMonitor, operation: str) -> None:
        self.monitor = monitor
        self.operation = operation
        self.start: Optional[float] = None

    def __enter__(self) -> "_Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        elapsed_ms = (time.perf_counter() - (self.start or 0.0)) * 1000
        self.monitor.record(self.operation, elapsed_ms, success=exc_type is None)


_monitor: Optional[PerformanceMonitor] = None


def get_monitor() -> PerformanceMonitor:
    """Return the process-wide monitor."""
    global _monitor
    if _monitor is None:
        _monitor = PerformanceMonitor()
    return _monitor
