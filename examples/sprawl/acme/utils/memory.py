"""Memory optimization: monitoring with psutil, streaming, chunked processing, gc control."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any, Callable, Iterable, Iterator, List, Optional

import psutil

logger = logging.getLogger(__name__)


class MemoryManager:
    """Watch the process RSS, collect garbage under pressure and stream big inputs in chunks."""

    WARNING_PERCENT = 75.0
    CRITICAL_PERCENT = 90.0

    def __init__(self, limit_mb: Optional[float] = None, chunk_size: int = 1000,
                 safety_mode: bool = True):
        self.process = psutil.Process()
        self.limit_mb = limit_mb or psutil.virtual_memory().total / (1024 * 1024)
        self.chunk_size = chunk_size
        self.safety_mode = safety_mode
        self.emergency_stop = False
        self.collections = 0
        self.peak_mb = 0.0

    def current_usage_mb(self) -> float:
        """Return the resident set size in megabytes."""
        rss = self.process.memory_info().rss / (1024 * 1024)
        self.peak_mb = max(self.peak_mb, rss)
        return rss

    def usage_percent(self) -> float:
        """Return usage as a percentage of the limit."""
        return 100.0 * self.current_usage_mb() / self.limit_mb

    def check_pressure(self) -> str:
        """Return 'ok', 'warning' or 'critical' and act on it."""
        percent = self.usage_percent()
        if percent >= self.CRITICAL_PERCENT:
            logger.error("memory critical: %.1f%%", percent)
            self.force_gc()
            if self.safety_mode and self.usage_percent() >= self.CRITICAL_PERCENT:
                self.emergency_stop = True
            return "critical"
        if percent >= self.WARNING_PERCENT:
            logger.warning("memory high: %.1f%%", percent)
            self.force_gc()
            return "warning"
        return "ok"

    def force_gc(self) -> int:
        """Run a full collection and return the number of objects freed."""
        freed = gc.collect()
        self.collections += 1
        return freed

    def process_in_chunks(self, items: Iterable[Any],
                          handler: Callable[[List[Any]], None]) -> int:
        """Feed ``items`` to ``handler`` in chunks, checking memory between chunks."""
        processed = 0
        chunk: List[Any] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.chunk_size:
                if self.check_pressure() == "critical" and self.emergency_stop:
                    raise MemoryError("emergency stop: memory limit reached")
                handler(chunk)
                processed += len(chunk)
                chunk = []
        if chunk:
            handler(chunk)
            processed += len(chunk)
        return processed

    def stream_chunks(self, items: List[Any]) -> Iterator[List[Any]]:
        """Yield slices of ``items`` of ``chunk_size`` without copying the whole list."""
        for start in range(0, len(items), self.chunk_size):
            if self.usage_percent() >= self.CRITICAL_PERCENT:
                self.force_gc()
            yield items[start:start + self.chunk_size]

    def estimate_size(self, obj: Any) -> int:
        """Return a rough deep size of ``obj`` in bytes."""
        size = sys.getsizeof(obj)
        if isinstance(obj, dict):
            size += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set)):
            size += sum(sys.getsizeof(x) for x in obj)
        return size

    def get_stats(self) -> dict:
        """Return current, peak and limit in MB plus the gc count."""
        return {
            "current_mb": self.current_usage_mb(),
            "peak_mb": self.peak_mb,
            "limit_mb": self.limit_mb,
            "collections": self.collections,
            "gc_counts": gc.get_count(),
        }
