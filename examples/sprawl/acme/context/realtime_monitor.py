"""Real-time monitoring of the context engine."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Optional

import psutil

logger = logging.getLogger(__name__)


class RealTimeMonitor:
    """Sample request timings and system load; raise issues within seconds."""

    def __init__(self, max_samples: int = 500, slow_ms: float = 800.0,
                 cpu_alert_percent: float = 85.0, interval: float = 5.0):
        self.samples: Deque[float] = deque(maxlen=max_samples)
        self.slow_ms = slow_ms
        self.cpu_alert_percent = cpu_alert_percent
        self.interval = interval
        self.request_count = 0
        self.slow_count = 0
        self.issues: List[str] = []
        self._listeners: List[Callable[[str], None]] = []
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def track_request(self, started: float) -> float:
        """Record a request that started at ``started`` (perf_counter); return its ms."""
        latency_ms = (time.perf_counter() - started) * 1000
        self.samples.append(latency_ms)
        self.request_count += 1
        if latency_ms > self.slow_ms:
            self.slow_count += 1
            self._raise_issue(f"slow request: {latency_ms:.0f} ms")
        return latency_ms

    def p95(self) -> float:
        """Return the 95th percentile latency of the recent samples."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[int(0.95 * (len(ordered) - 1))]

    def _sample_system(self) -> None:
        cpu = psutil.cpu_percent(interval=None)
        if cpu > self.cpu_alert_percent:
            self._raise_issue(f"cpu at {cpu:.0f}%")

    def _raise_issue(self, text: str) -> None:
        self.issues.append(text)
        logger.warning("monitor issue: %s", text)
        for listener in self._listeners:
            listener(text)

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with every issue."""
        self._listeners.append(listener)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_system()

    def start(self) -> None:
        """Start background sampling."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop background sampling."""
        self._stop.set()

    def snapshot(self) -> Dict[str, float]:
        """Return counters and p95."""
        return {"requests": self.request_count, "slow": self.slow_count, "p95_ms": self.p95()}
