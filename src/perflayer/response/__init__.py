"""perflayer.response: one Response envelope and a priority + deadline scheduler.

>>> import asyncio
>>> from perflayer.monitor import Monitor
>>> async def main():
...     async with ResponseOptimizer(monitor=Monitor()) as opt:
...         async def lookup(key):
...             return {"key": key}
...         r = await opt.submit(lookup, "a", priority=Priority.HIGH, deadline_ms=250)
...         return r.ok, r.value
>>> asyncio.run(main())
(True, {'key': 'a'})
"""

from __future__ import annotations

from perflayer.response._envelope import ErrorInfo, Priority, Response
from perflayer.response._limiter import AdaptiveLimiter
from perflayer.response._optimizer import DEFAULT_RESERVE, ResponseOptimizer

__all__ = [
    "DEFAULT_RESERVE",
    "AdaptiveLimiter",
    "ErrorInfo",
    "Priority",
    "Response",
    "ResponseOptimizer",
]
