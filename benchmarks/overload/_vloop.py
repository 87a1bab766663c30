"""A virtual-time asyncio event loop: timers fire in order, the clock jumps between them.

Simulated seconds cost only the CPU time of the callbacks, so a 25 s overload run is exact,
repeatable with a seed, and unaffected by other processes on a shared machine. Everything that
uses ``loop.time()`` (asyncio.sleep, asyncio.timeout, call_at, and perflayer's scheduler) sees
the virtual clock. Threads are not supported (the loop never blocks in select).
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["VirtualTimeLoop", "run_virtual"]


class _VirtualSelector(selectors.BaseSelector):
    """Delegate file objects to a real selector but never block: advance the clock instead."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("virtual loop would block forever (nothing scheduled)")
        if timeout > 0 and self.loop is not None:
            self.loop._now += timeout
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer."""

    def __init__(self) -> None:
        sel = _VirtualSelector()
        self._now = 0.0
        super().__init__(selector=sel)
        sel.loop = self
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._now


def run_virtual(coro: Any) -> Any:
    """Run ``coro`` to completion on a fresh VirtualTimeLoop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
