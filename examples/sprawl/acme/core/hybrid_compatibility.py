"""Compatibility layer between the old bridge and the new MCP stack."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict


@dataclass
class BridgePerformanceMetrics:
    """Latency and error counters of the compatibility bridge."""

    total_calls: int = 0
    failed_calls: int = 0
    avg_latency_ms: float = 0.0
    max_latency_ms: float = 0.0

    def record_call(self, latency_ms: float, ok: bool) -> None:
        self.total_calls += 1
        if not ok:
            self.failed_calls += 1
        self.avg_latency_ms += (latency_ms - self.avg_latency_ms) / self.total_calls
        self.max_latency_ms = max(self.max_latency_ms, latency_ms)

    @property
    def error_rate(self) -> float:
        return self.failed_calls / self.total_calls if self.total_calls else 0.0


class HybridCompatibility:
    """Call new-style handlers with old-style arguments."""

    def __init__(self, handlers: Dict[str, Callable[..., Any]]):
        self.handlers = handlers
        self.metrics = BridgePerformanceMetrics()

    def call(self, name: str, *args: Any) -> Any:
        """Invoke handler ``name``, converting positional args to a payload."""
        start = time.perf_counter()
        ok = False
        try:
            result = self.handlers[name]({"args": list(args)})
            ok = True
            return result
        finally:
            self.metrics.record_call((time.perf_counter() - start) * 1000, ok)
