"""ResponseOptimizer behaviour: priority order, shedding, deadlines, fallbacks, shutdown, metrics.

Deadlines here are generous and outcomes deterministic: calls are held by asyncio Events, so
no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from perflayer.errors import ConfigError, ShedError
from perflayer.monitor import Monitor
from perflayer.response import Priority, Response, ResponseOptimizer


def make(**kw: Any) -> ResponseOptimizer:
    """Return an optimizer on a fresh monitor with a fixed limit of 1 for downstream 'db'."""
    kw.setdefault("limits", {"db": 1})
    return ResponseOptimizer(monitor=Monitor(), **kw)


async def settle() -> None:
    """Let queued callbacks run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_submit_returns_success_envelope() -> None:
    """A coroutine function's value comes back in an ok Response with timing filled in."""
    opt = make()

    async def double(x: int) -> int:
        return 2 * x

    r = await opt.submit(double, 21, priority="high", deadline_ms=5000, downstream="db")
    assert r.ok and r.value == 42 and r.priority is Priority.HIGH
    assert r.started is not None and r.finished is not None and r.finished >= r.started
    assert not (r.shed or r.timed_out or r.fallback_used)
    await opt.shutdown()


async def run_queue(opt: ResponseOptimizer, calls: list[tuple[str, int]]) -> list[str]:
    """Queue ``(priority, deadline_ms)`` calls behind a held slot; return the order they ran."""
    gate = asyncio.Event()
    order: list[str] = []

    async def hold() -> None:
        await gate.wait()

    async def work(name: str) -> str:
        order.append(name)
        return name

    blocker = asyncio.ensure_future(opt.submit(hold, downstream="db"))
    await settle()
    tasks = [
        asyncio.ensure_future(opt.submit(work, p, priority=p, deadline_ms=d, downstream="db"))
        for p, d in calls
    ]
    await settle()
    assert opt.queue_length("db") == len(calls)
    await asyncio.sleep(0.01)  # the queue has now stood for longer than interval_ms=1
    gate.set()
    results = await asyncio.gather(*tasks)
    await blocker
    assert all(r.ok for r in results)
    return order


async def test_without_overload_waiters_go_by_deadline_critical_first() -> None:
    """Outside overload: CRITICAL first, then the earliest deadline, BACKGROUND last."""
    opt = make()
    calls = [
        ("background", 1000),
        ("low", 2000),
        ("high", 9000),
        ("critical", 9000),
        ("normal", 5000),
    ]
    assert await run_queue(opt, calls) == ["critical", "low", "normal", "high", "background"]
    await opt.shutdown()


async def test_under_overload_waiters_go_by_priority() -> None:
    """Under a standing overload the most important waiting call goes first."""
    opt = make(interval_ms=1, overload=1e-6, target_ms=None)

    async def quick() -> None:
        return None

    for _ in range(20):  # measure latency and give the lane arrivals to estimate rates from
        await opt.submit(quick, downstream="db")
    await asyncio.sleep(0.3)  # one arrival-rate bucket
    await opt.submit(quick, downstream="db")
    calls = [
        ("low", 1000),
        ("normal", 2000),
        ("background", 500),
        ("high", 9000),
        ("critical", 9000),
    ]
    assert await run_queue(opt, calls) == ["critical", "high", "normal", "low", "background"]
    await opt.shutdown()


async def test_full_queue_sheds_lower_priorities_but_never_critical() -> None:
    """With the queue full, non-critical calls are shed at once with their fallback."""
    opt = make(max_queue=2)
    gate = asyncio.Event()

    async def hold() -> str:
        await gate.wait()
        return "done"

    first = asyncio.ensure_future(opt.submit(hold, downstream="db"))
    await settle()
    queued = [
        asyncio.ensure_future(opt.submit(hold, priority="low", downstream="db")) for _ in range(2)
    ]
    await settle()
    shed = await opt.submit(hold, priority="normal", fallback="cached", downstream="db")
    assert shed.shed and not shed.ok and shed.value == "cached" and shed.fallback_used
    assert shed.metadata["shed_reason"] == "queue_full"
    with pytest.raises(ShedError):
        Response.failure(ShedError("x"), shed=True).unwrap()
    crit = asyncio.ensure_future(opt.submit(hold, priority="critical", downstream="db"))
    await settle()
    assert opt.queue_length("db") == 3  # CRITICAL was admitted past max_queue
    gate.set()
    results = await asyncio.gather(first, *queued, crit)
    assert all(r.ok for r in results)
    await opt.shutdown()


async def test_expired_waiters_are_shed_lowest_first_and_critical_never_shed() -> None:
    """Under a flood with short deadlines, shed calls are all below CRITICAL."""
    opt = make()
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    async def quick(i: int) -> int:
        return i

    blocker = asyncio.ensure_future(opt.submit(hold, downstream="db"))
    await settle()
    prios = ["critical", "high", "normal", "low", "background"] * 4
    tasks = [
        asyncio.ensure_future(opt.submit(quick, i, priority=p, deadline_ms=30, downstream="db"))
        for i, p in enumerate(prios)
    ]
    results = await asyncio.gather(*tasks)  # all expire while the slot is held
    gate.set()
    await blocker
    crit = [r for r in results if r.priority is Priority.CRITICAL]
    rest = [r for r in results if r.priority is not Priority.CRITICAL]
    assert all(not r.shed and r.timed_out for r in crit)
    assert all(r.shed and not r.ok for r in rest)
    assert not any(r.ok for r in results)
    await opt.shutdown()


async def test_deadline_really_cancels_the_coroutine_and_uses_fallback() -> None:
    """A call past its deadline is cancelled (it sees CancelledError) and answered timed_out."""
    opt = make()
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def fb() -> str:
        return "fallback"

    r = await opt.submit(slow, deadline_ms=50, fallback=fb, downstream="db")
    assert cancelled.is_set()
    assert r.timed_out and not r.ok and not r.shed
    assert r.value == "fallback" and r.fallback_used
    assert r.error is not None and r.error.type == "TimeoutError"
    assert opt.inflight("db") == 0  # the slot came back
    await opt.shutdown()


async def test_no_success_is_reported_after_its_deadline() -> None:
    """Whatever the call returns, a Response is ok only if it finished within its deadline."""
    opt = make(limits={"db": 4})

    async def napper(d: float) -> float:
        await asyncio.sleep(d)
        return d

    rs = await asyncio.gather(
        *(opt.submit(napper, d, deadline_ms=1000, downstream="db") for d in (0.0, 0.001, 2.0, 5.0))
    )
    for r in rs:
        if r.ok:
            # Not a speed check: the optimizer itself turns any answer later than the deadline
            # into timed_out, so an ok Response past 1000 ms would be a correctness bug.
            assert r.latency_ms <= 1000.0
        else:
            assert r.timed_out
    assert rs[0].ok and not rs[3].ok
    await opt.shutdown()


async def test_success_that_crosses_its_deadline_before_it_is_returned_is_timed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call that finished in time, but whose answer is late (the process stalled between the
    call's return and the Response reaching the caller), is answered timed_out, never ok."""
    loop = asyncio.get_running_loop()
    opt = make()

    async def quick() -> int:
        return 1

    assert (await opt.submit(quick, deadline_ms=1000, downstream="db")).ok
    lane = opt._lane("db")
    real_time = loop.time
    stall = [0.0]
    monkeypatch.setattr(loop, "time", lambda: real_time() + stall[0])

    def stalled(latency: float) -> None:
        stall[0] += 5.0  # 5 s pass during the bookkeeping after the call returned

    monkeypatch.setattr(lane, "record_latency", stalled)
    r = await opt.submit(quick, deadline_ms=1000, downstream="db", fallback="fb")
    assert not r.ok and r.timed_out and r.value == "fb" and r.fallback_used
    await opt.shutdown()


async def test_thread_call_past_deadline_is_discarded_and_holds_its_slot() -> None:
    """A sync call still running at its deadline is timed_out; its slot frees when it ends."""
    opt = make()
    release = threading.Event()

    def blocking() -> str:
        release.wait(10)
        return "late"

    r = await opt.submit(blocking, deadline_ms=50, fallback=lambda: "fb", downstream="db")
    assert r.timed_out and r.value == "fb" and not r.ok
    assert opt.inflight("db") == 1  # the thread still runs and keeps its slot
    release.set()
    # a bound on waiting, not a speed check: the thread may take seconds to be scheduled
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 30.0
    while opt.inflight("db") and loop.time() < give_up:
        await asyncio.sleep(0.01)
    assert opt.inflight("db") == 0
    await opt.shutdown()


async def test_errors_and_fallbacks() -> None:
    """A raising call returns ok=False with its error; fallbacks may be values or may fail."""
    opt = make()

    async def boom() -> None:
        raise ValueError("bad input 7")

    def bad_fallback() -> None:
        raise RuntimeError("fallback broke")

    r = await opt.submit(boom, downstream="db")
    assert not r.ok and r.error is not None and r.error.type == "ValueError"
    assert "bad input 7" in r.error.message and not r.fallback_used
    with pytest.raises(ValueError, match="bad input 7"):
        r.unwrap()
    r2 = await opt.submit(boom, fallback=0, downstream="db")
    assert r2.value == 0 and r2.fallback_used
    r3 = await opt.submit(boom, fallback=bad_fallback, downstream="db")
    assert not r3.fallback_used and r3.metadata["fallback_error"]["type"] == "RuntimeError"
    await opt.shutdown()


async def test_shutdown_drains_running_work_then_sheds_new_calls() -> None:
    """shutdown waits for in-flight and queued calls, then new calls are shed."""
    opt = make(limits={"db": 2})

    async def short(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    tasks = [asyncio.ensure_future(opt.submit(short, i, downstream="db")) for i in range(6)]
    await settle()
    assert await opt.shutdown(timeout=30) is True
    assert [r.value for r in await asyncio.gather(*tasks)] == list(range(6))
    late = await opt.submit(short, 1, downstream="db")
    assert late.shed and late.metadata["shed_reason"] == "shutdown"


async def test_shutdown_cancels_what_does_not_drain_in_time() -> None:
    """After the bound, running calls are cancelled and waiting ones shed."""
    opt = make()

    async def forever() -> None:
        await asyncio.Event().wait()

    running = asyncio.ensure_future(opt.submit(forever, downstream="db"))
    waiting = asyncio.ensure_future(opt.submit(forever, downstream="db"))
    await settle()
    assert await opt.shutdown(timeout=0.05) is False
    r_run, r_wait = await asyncio.gather(running, waiting)
    assert r_run.timed_out and "shutdown" in (r_run.error.message if r_run.error else "")
    assert r_wait.shed and r_wait.metadata["shed_reason"] == "shutdown"


async def test_caller_cancellation_gives_back_slot_and_queue_place() -> None:
    """A caller cancelled while waiting leaves the queue; one cancelled mid-call frees the slot."""
    opt = make()
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    t1 = asyncio.ensure_future(opt.submit(hold, downstream="db"))
    t2 = asyncio.ensure_future(opt.submit(hold, downstream="db"))
    await settle()
    assert opt.queue_length("db") == 1
    t2.cancel()
    await settle()
    assert opt.queue_length("db") == 0
    t1.cancel()
    await settle()
    assert opt.inflight("db") == 0
    await opt.shutdown()


async def test_metrics_land_in_the_monitor() -> None:
    """Outcomes, shed reasons, latency, limit and queue length are visible in the monitor."""
    mon = Monitor()
    opt = ResponseOptimizer(monitor=mon, limits={"db": 3}, max_queue=0)
    gate = asyncio.Event()

    async def ok() -> int:
        return 1

    async def hold() -> None:
        await gate.wait()

    for _ in range(3):
        await opt.submit(ok, priority="high", downstream="db")
    holders = [asyncio.ensure_future(opt.submit(hold, downstream="db")) for _ in range(3)]
    await settle()
    shed = await opt.submit(ok, priority="low", downstream="db")
    assert shed.shed
    req = mon.counter(
        "perflayer_response_requests_total", "", ("downstream", "priority", "outcome")
    )
    assert req.labels("db", "high", "ok").get() == 3
    assert req.labels("db", "low", "shed").get() == 1
    text = mon.exposition()
    assert 'perflayer_response_limit{downstream="db"} 3' in text
    assert 'perflayer_response_inflight{downstream="db"} 3' in text
    assert "perflayer_response_latency_seconds_bucket" in text
    stats = opt.stats()["db"]
    assert stats["high"]["goodput"] == 1.0 and stats["low"]["goodput"] == 0.0
    assert stats["high"]["p50_ms"] is not None
    gate.set()
    await asyncio.gather(*holders)
    await opt.shutdown()


async def test_endpoint_decorator_async() -> None:
    """The decorator routes calls through submit, optionally unwrapping the value."""
    opt = make()

    @opt.endpoint(priority="critical", deadline_ms=5000, downstream="db")
    async def get(x: int) -> int:
        return x + 1

    @opt.endpoint(downstream="db", unwrap=True, fallback=-1, deadline_ms=20)
    async def stuck() -> int:
        await asyncio.sleep(3600)
        return 0

    r = await get(1)
    assert isinstance(r, Response) and r.value == 2 and r.priority is Priority.CRITICAL
    assert await stuck() == -1
    assert get.__name__ == "get"
    await opt.shutdown()


def test_sync_call_and_sync_endpoint() -> None:
    """call() and a decorated sync function work from plain synchronous code."""
    with ResponseOptimizer(monitor=Monitor()) as opt:
        r = opt.call(lambda a, b: a + b, 2, 3, deadline_ms=10_000)
        assert r.ok and r.value == 5

        @opt.endpoint(unwrap=True)
        def parse(s: str) -> int:
            return int(s)

        assert parse("12") == 12
        with pytest.raises(ValueError, match="nope"):
            parse("nope")


async def test_sync_call_inside_a_loop_is_refused() -> None:
    """call() would block the event loop, so it raises and names submit."""
    opt = make()
    with pytest.raises(RuntimeError, match="submit"):
        opt.call(time.monotonic)
    await opt.shutdown()


async def test_downstreams_have_separate_limiters() -> None:
    """Each downstream gets its own limiter and queue."""
    opt = ResponseOptimizer(monitor=Monitor(), limits={"a": 1}, initial_limit=5)

    async def ok() -> int:
        return 1

    await opt.submit(ok, downstream="a")
    await opt.submit(ok, downstream="b")
    assert opt.limit("a") == 1 and opt.limit("b") == 5
    assert opt.limiter("a") is not opt.limiter("b")
    await opt.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reserve": {"critical": 1.5}}, "reserve"),
        ({"limits": {"db": 0}}, "db"),
        ({"target_ms": -1}, "target_ms"),
        ({"max_queue": -2}, "max_queue"),
        ({"initial_limit": 0}, "initial_limit"),
        ({"default_deadline_ms": 0}, "deadline_ms"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any], name: str) -> None:
    """Bad constructor arguments raise ConfigError naming the setting."""
    with pytest.raises(ConfigError, match=name):
        ResponseOptimizer(monitor=Monitor(), **kwargs)


async def test_bad_call_arguments() -> None:
    """A non-callable, a bad priority or a bad deadline is refused with a clear error."""
    opt = make()
    with pytest.raises(TypeError, match="callable"):
        await opt.submit(42)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="urgent"):
        await opt.submit(time.monotonic, priority="urgent")
    with pytest.raises(ConfigError, match="-5"):
        await opt.submit(time.monotonic, deadline_ms=-5)
    await opt.shutdown()


async def test_a_calls_own_timeout_error_is_an_error_not_a_deadline() -> None:
    """A TimeoutError raised by the call itself is reported as an error, not timed_out."""
    opt = make()

    async def gives_up() -> None:
        raise TimeoutError("upstream said so")

    r = await opt.submit(gives_up, deadline_ms=60_000, downstream="db")
    assert not r.ok and not r.timed_out and r.error is not None
    assert r.error.type == "TimeoutError" and "upstream said so" in r.error.message
    await opt.shutdown()


def test_sync_call_is_forwarded_to_the_loop_that_owns_the_lanes() -> None:
    """call() from plain code runs on the optimizer's home loop when that loop is running."""
    opt = ResponseOptimizer(monitor=Monitor(), limits={"db": 1})
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    try:

        async def where() -> int:
            return threading.get_ident()

        first = asyncio.run_coroutine_threadsafe(opt.submit(where, downstream="db"), loop).result(
            10
        )
        second = opt.call(where, downstream="db", deadline_ms=10_000)
        assert first.ok and second.ok and first.value == second.value == th.ident
    finally:
        asyncio.run_coroutine_threadsafe(opt.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        th.join(5)
        loop.close()
