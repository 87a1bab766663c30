"""Priority-based response optimization with concurrency limits and timeouts."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from enum import IntEnum
from typing import Any, Awaitable, Callable, Dict, List, Tuple


class Priority(IntEnum):
    """Request priority: lower runs first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class ResponseOptimizer:
    """Run coroutines by priority, at most ``max_concurrent`` at once, each within a timeout."""

    def __init__(self, max_concurrent: int = 8, target_ms: float = 400.0) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._queue: List[Tuple[int, int, Callable[[], Awaitable[Any]], asyncio.Future]] = []
        self._counter = itertools.count()
        self.target_ms = target_ms
        self.timeouts = {Priority.CRITICAL: 2.0, Priority.HIGH: 5.0, Priority.NORMAL: 10.0,
                         Priority.LOW: 30.0}
        self.completed = 0
        self.timed_out = 0
        self.total_ms = 0.0

    async def submit(self, work: Callable[[], Awaitable[Any]],
                     priority: Priority = Priority.NORMAL) -> Any:
        """Queue ``work`` and wait for its result."""
        future: asyncio.Future = asyncio.get_event_loop().create_future()
        heapq.heappush(self._queue, (int(priority), next(self._counter), work, future))
        asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        async with self._semaphore:
            if not self._queue:
                return
            priority, _, work, future = heapq.heappop(self._queue)
            start = time.perf_counter()
            try:
                result = await asyncio.wait_for(work(), self.timeouts[Priority(priority)])
            except asyncio.TimeoutError as exc:
                self.timed_out += 1
                future.set_exception(exc)
                return
            except Exception as exc:  # noqa: BLE001
                future.set_exception(exc)
                return
            elapsed = (time.perf_counter() - start) * 1000
            self.completed += 1
            self.total_ms += elapsed
            future.set_result(result)

    def stats(self) -> Dict[str, float]:
        """Return completed, timed-out and mean latency."""
        mean = self.total_ms / self.completed if self.completed else 0.0
        return {"completed": self.completed, "timed_out": self.timed_out, "mean_ms": mean}
