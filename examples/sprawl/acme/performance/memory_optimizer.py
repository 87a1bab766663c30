"""Object pooling and memory statistics."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from typing import Callable, Generic, List, TypeVar

T = TypeVar("T")


class ObjectPool(Generic[T]):
    """Reuse expensive objects instead of allocating new ones."""

    def __init__(self, factory: Callable[[], T], max_size: int = 64) -> None:
        self._factory = factory
        self._free: List[T] = []
        self._max_size = max_size
        self._lock = threading.Lock()
        self.created = 0
        self.reused = 0

    def acquire(self) -> T:
        """Return a pooled object, creating one if the pool is empty."""
        with self._lock:
            if self._free:
                self.reused += 1
                return self._free.pop()
        self.created += 1
        return self._factory()

    def release(self, obj: T) -> None:
        """Give ``obj`` back to the pool (dropped when the pool is full)."""
        with self._lock:
            if len(self._free) < self._max_size:
                self._free.append(obj)

    def size(self) -> int:
        """Return the number of idle objects."""
        return len(self._free)


class MemoryOptimizer:
    """Track allocations with tracemalloc and trim memory on demand."""

    def __init__(self, top_n: int = 10) -> None:
        self.top_n = top_n
        self.snapshots = 0

    def start_tracking(self) -> None:
        """Start tracemalloc if it is not running."""
        if not tracemalloc.is_tracing():
            tracemalloc.start()

    def top_allocations(self) -> List[str]:
        """Return the biggest allocation sites."""
        snapshot = tracemalloc.take_snapshot()
        self.snapshots += 1
        stats = snapshot.statistics("lineno")[: self.top_n]
        return [str(stat) for stat in stats]

    def optimize(self) -> int:
        """Run a full garbage collection; return objects freed."""
        return gc.collect()
