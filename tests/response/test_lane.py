"""Lane admission under overload: standby waiters (white-box, no clock, no timing)."""

from __future__ import annotations

import asyncio

import pytest

from perflayer.errors import ConfigError
from perflayer.monitor import Monitor
from perflayer.response import AdaptiveLimiter, Priority, ResponseOptimizer
from perflayer.response._lane import SHED_OVERLOAD, Lane, Waiter

HIGH, LOW = int(Priority.HIGH), int(Priority.LOW)


def overloaded_lane(loop: asyncio.AbstractEventLoop) -> Lane:
    """Return a one-slot lane that has seen 10 ms calls and HIGH arriving 10x faster."""
    lim = AdaptiveLimiter(initial_limit=1, min_limit=1, max_limit=1)
    lane = Lane(
        "db", lim, loop, reserve={}, interval=0.1, target=0.05, overload=1.2, max_queue=None
    )
    for _ in range(40):
        lane.record_latency(0.010)
    lane.rate[HIGH] = 1000.0  # capacity is 1 / 10 ms = 100 calls/s
    lane._rate_ready = True
    return lane


async def test_overloaded_class_keeps_a_bounded_standby_and_drops_its_oldest() -> None:
    """A LOW call the estimate would shed waits in standby; past the bound the oldest goes."""
    loop = asyncio.get_running_loop()
    lane = overloaded_lane(loop)
    now = loop.time()
    assert lane.admit(HIGH, now, now + 10.0) == 1  # takes the only slot
    high = lane.admit(HIGH, now, now + 10.0)
    assert isinstance(high, Waiter)
    assert lane.overloaded(LOW) and lane.expected_wait(LOW) == float("inf")
    size = lane.standby_size()
    assert size == 8
    lows = [lane.admit(LOW, now, now + 10.0) for _ in range(size + 1)]
    assert all(isinstance(w, Waiter) for w in lows)
    waiters = [w for w in lows if isinstance(w, Waiter)]
    assert waiters[0].fut.done() and waiters[0].fut.result() == SHED_OVERLOAD  # the oldest
    assert not any(w.fut.done() for w in waiters[1:])
    assert lane.queued[LOW] == size
    lane.release(HIGH)  # HIGH goes first
    assert high.fut.done() and high.fut.result() == 1
    lane.release(HIGH)  # then the standby serves a LOW call
    assert sum(w.fut.done() for w in waiters[1:]) == 1
    lane.shed_all("shutdown")
    assert all(w.fut.done() for w in waiters)


async def test_without_overload_nothing_is_held_in_standby() -> None:
    """Outside overload, LOW calls queue normally and none is shed."""
    loop = asyncio.get_running_loop()
    lane = overloaded_lane(loop)
    lane.rate[HIGH] = 10.0
    now = loop.time()
    assert lane.admit(HIGH, now, now + 10.0) == 1
    lows = [lane.admit(LOW, now, now + 10.0) for _ in range(20)]
    assert all(isinstance(w, Waiter) and not w.fut.done() for w in lows)
    lane.shed_all("shutdown")


async def test_standby_zero_sheds_at_once() -> None:
    """With standby=0 a call the estimate would shed is answered at admission, as the spec's
    'shed at once' reads; the optimizer passes its option down to every lane."""
    loop = asyncio.get_running_loop()
    lane = overloaded_lane(loop)
    lane.standby = 0.0
    now = loop.time()
    assert lane.admit(HIGH, now, now + 10.0) == 1
    assert isinstance(lane.admit(HIGH, now, now + 10.0), Waiter)
    assert lane.admit(LOW, now, now + 10.0) == SHED_OVERLOAD
    assert lane.queued[LOW] == 0
    lane.shed_all("shutdown")
    opt = ResponseOptimizer(standby=0, monitor=Monitor())

    async def quick() -> int:
        return 1

    assert (await opt.submit(quick, downstream="db")).value == 1
    assert opt._lanes["db"].standby == 0.0
    await opt.shutdown()
    with pytest.raises(ConfigError, match="standby must be a non-negative number"):
        ResponseOptimizer(standby=-1)
