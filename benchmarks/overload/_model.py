"""The overload model: a 16-slot downstream, open-loop Poisson arrivals, five client strategies.

Downstream: ``slots`` workers, each call needs ``U(20, 50) ms`` of work (drawn per request, so
every strategy sees the same workload). Calls beyond the slots wait in the downstream's FIFO
queue, and an over-committed downstream slows down: a call that starts while ``b`` calls are
queued behind the slots runs ``1 + slowdown * b / slots`` times longer (capped at
``max_slowdown``), as a real server thrashes under too much concurrency. A call keeps using
its worker until it finishes or its client cancels it (asyncio cancellation reaches the
coroutine; a client that stops waiting without cancelling leaves it running).

Capacity is ``slots / mean(service)`` = 16 / 35 ms = 457 calls/s.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from perflayer.monitor import Monitor
from perflayer.response import Priority, ResponseOptimizer

__all__ = [
    "MIX",
    "STRATEGIES",
    "Backend",
    "Request",
    "RunResult",
    "capacity",
    "make_workload",
    "run_strategy",
]

LO, HI = 0.020, 0.050
SLOTS = 16
DEADLINE = 0.400
MIX = (
    (Priority.CRITICAL, 0.10),
    (Priority.HIGH, 0.20),
    (Priority.NORMAL, 0.40),
    (Priority.LOW, 0.30),
)


def capacity(slots: int = SLOTS) -> float:
    """Return the downstream's capacity in calls per second."""
    return slots / ((LO + HI) / 2)


@dataclass(slots=True)
class Request:
    """One arrival: when, how important, how much work; and what happened to it."""

    i: int
    arrival: float
    prio: Priority
    service: float
    deadline: float
    answered: float | None = None
    good: bool = False
    reported_ok: bool = False
    backend_time: float = 0.0
    started: bool = False


def make_workload(load: float, duration: float, seed: int, slots: int = SLOTS) -> list[Request]:
    """Return Poisson arrivals at ``load`` x capacity for ``duration`` s, seeded."""
    rng = random.Random(seed)
    rate = load * capacity(slots)
    t = 0.0
    out: list[Request] = []
    prios = [p for p, _ in MIX]
    weights = [w for _, w in MIX]
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            break
        p = rng.choices(prios, weights)[0]
        out.append(Request(len(out), t, p, rng.uniform(LO, HI), t + DEADLINE))
    return out


class Backend:
    """The simulated downstream (see the module docstring)."""

    def __init__(
        self, slots: int = SLOTS, slowdown: float = 0.25, max_slowdown: float = 3.0
    ) -> None:
        self.slots = slots
        self.slowdown = slowdown
        self.max_slowdown = max_slowdown
        self.busy = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.busy_time = 0.0
        # time the workers slept past the work asked for: on the real clock, the harness's own
        # timer and scheduling lag (capacity that every strategy loses alike; 0 in virtual time)
        self.overshoot = 0.0

    async def call(self, req: Request) -> int:
        """Do ``req``'s work; return its index."""
        loop = asyncio.get_running_loop()
        if self.busy >= self.slots or self.waiting:
            fut: asyncio.Future[None] = loop.create_future()
            self.waiting.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # the slot was handed to us as we were cancelled
                else:
                    try:
                        self.waiting.remove(fut)
                    except ValueError:
                        pass
                raise
        else:
            self.busy += 1
        backlog = len(self.waiting)
        factor = min(self.max_slowdown, 1.0 + self.slowdown * backlog / self.slots)
        start = loop.time()
        req.started = True
        want = req.service * factor
        try:
            await asyncio.sleep(want)
            self.overshoot += loop.time() - start - want
        finally:
            spent = loop.time() - start
            req.backend_time += spent
            self.busy_time += spent
            self._release()
        return req.i

    def _release(self) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(None)
                return  # the slot passes to the waiter
        self.busy -= 1


@dataclass
class RunResult:
    """What one strategy did with one workload."""

    name: str
    load: float
    reqs: list[Request]
    busy_time: float
    extra: dict[str, float] = field(default_factory=dict)


Strategy = Callable[[Backend, Request], Awaitable[None]]


async def _drive(reqs: list[Request], client: Callable[[Request], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks: set[asyncio.Task[None]] = set()
    for r in reqs:
        r.arrival += t0
        r.deadline += t0
        delay = r.arrival - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.ensure_future(client(r))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))


def _finish(r: Request, ok: bool) -> None:
    loop = asyncio.get_running_loop()
    r.answered = loop.time()
    r.reported_ok = ok
    r.good = ok and r.answered <= r.deadline


async def run_gather(reqs: list[Request], be: Backend) -> dict[str, float]:
    """Unbounded: every request goes straight to the downstream; nobody gives up."""

    async def client(r: Request) -> None:
        await be.call(r)
        _finish(r, True)

    await _drive(reqs, client)
    return {}


async def run_semaphore(reqs: list[Request], be: Backend, slots: int = SLOTS) -> dict[str, float]:
    """A semaphore at the downstream's true capacity; no timeout."""
    sem = asyncio.Semaphore(slots)

    async def client(r: Request) -> None:
        async with sem:
            await be.call(r)
        _finish(r, True)

    await _drive(reqs, client)
    return {}


async def run_semaphore_timeout(
    reqs: list[Request], be: Backend, slots: int = SLOTS
) -> dict[str, float]:
    """A semaphore at true capacity plus a timeout at the deadline (cancels the call)."""
    sem = asyncio.Semaphore(slots)

    async def client(r: Request) -> None:
        try:
            async with asyncio.timeout_at(r.deadline):
                async with sem:
                    await be.call(r)
        except TimeoutError:
            _finish(r, False)
            return
        _finish(r, True)

    await _drive(reqs, client)
    return {}


async def run_perflayer(reqs: list[Request], be: Backend, **opt_kwargs: object) -> dict[str, float]:
    """perflayer's ResponseOptimizer, not told the capacity; 400 ms deadline, per priority."""
    opt = ResponseOptimizer(monitor=Monitor(), **opt_kwargs)  # type: ignore[arg-type]
    limits: list[int] = []

    loop = asyncio.get_running_loop()

    async def client(r: Request) -> None:
        # why: the deadline is the arrival's; on the real clock the client task starts late
        # (timer and scheduling lag), so it passes the time left, as a client with an upstream
        # deadline must, not a fresh 400 ms (virtual time: the same number).
        left_ms = (r.deadline - loop.time()) * 1000.0
        resp = await opt.submit(
            be.call, r, priority=r.prio, deadline_ms=max(0.001, left_ms), downstream="sim"
        )
        _finish(r, resp.ok)

    async def sample_limit() -> None:
        while True:
            await asyncio.sleep(0.1)
            limits.append(opt.limit("sim"))

    sampler = asyncio.ensure_future(sample_limit())
    await _drive(reqs, client)
    sampler.cancel()
    await opt.shutdown(1.0)
    tail = limits[len(limits) // 5 :] or [0]
    tail.sort()
    return {
        "limit_median": float(tail[len(tail) // 2]),
        "limit_min": float(tail[0]),
        "limit_max": float(tail[-1]),
    }


async def run_oracle(reqs: list[Request], be: Backend, slots: int = SLOTS) -> dict[str, float]:
    """Clairvoyant reference: knows each call's work, never over-commits, never starts a call
    that cannot finish in time; strict priority, earliest deadline first within a priority."""
    loop = asyncio.get_running_loop()
    heap: list[tuple[int, float, int, Request, asyncio.Future[bool]]] = []
    free = [slots]

    def pump() -> None:
        now = loop.time()
        while free[0] > 0 and heap:
            _, _, _, r, fut = heapq.heappop(heap)
            if fut.done():
                continue
            if now + r.service > r.deadline:
                fut.set_result(False)
                continue
            free[0] -= 1
            fut.set_result(True)

    async def client(r: Request) -> None:
        fut: asyncio.Future[bool] = loop.create_future()
        heapq.heappush(heap, (int(r.prio), r.deadline, r.i, r, fut))
        pump()
        # Drop the request the moment it can no longer finish in time.
        h = loop.call_at(r.deadline - r.service + 1e-9, lambda: fut.done() or fut.set_result(False))
        go = await fut
        h.cancel()
        if not go:
            _finish(r, False)
            return
        try:
            await be.call(r)
        finally:
            free[0] += 1
            pump()
        _finish(r, True)

    await _drive(reqs, client)
    return {}


STRATEGIES: dict[str, Callable[..., Awaitable[dict[str, float]]]] = {
    "gather": run_gather,
    "semaphore": run_semaphore,
    "sem+timeout": run_semaphore_timeout,
    "perflayer": run_perflayer,
    "oracle": run_oracle,
}


async def run_strategy(name: str, reqs: list[Request], **kw: object) -> RunResult:
    """Run one strategy on a fresh downstream and return the requests with their outcomes."""
    be = Backend()
    extra = await STRATEGIES[name](reqs, be, **kw)
    extra["timer_lag"] = be.overshoot / be.busy_time if be.busy_time > 0 else 0.0
    return RunResult(name, 0.0, reqs, be.busy_time, extra)


def summarize(res: RunResult) -> dict[str, float]:
    """Return goodput per priority and overall, p50/p99 of good answers, waste, lost, late."""
    reqs = res.reqs
    out: dict[str, float] = {}
    for p, _ in MIX:
        sub = [r for r in reqs if r.prio == p]
        out[f"good_{p.name.lower()}"] = sum(r.good for r in sub) / max(1, len(sub))
    out["good_all"] = sum(r.good for r in reqs) / max(1, len(reqs))
    lat = sorted((r.answered - r.arrival) for r in reqs if r.good and r.answered is not None)
    out["p50_ms"] = _q(lat, 0.50) * 1000
    out["p99_ms"] = _q(lat, 0.99) * 1000
    waste = sum(r.backend_time for r in reqs if not r.good)
    out["waste"] = waste / res.busy_time if res.busy_time > 0 else 0.0
    out["lost"] = float(sum(r.answered is None for r in reqs))
    out["late_ok"] = float(sum(r.reported_ok and not r.good for r in reqs))
    out["n"] = float(len(reqs))
    t_end = max((r.answered or 0.0) for r in reqs) - min(r.arrival for r in reqs)
    out["util"] = res.busy_time / (SLOTS * t_end) if t_end > 0 else 0.0
    # The most calls any scheduler that does not know each call's work could answer in time:
    # every slot busy from the first arrival until the last arrival's deadline, on this
    # sample's mean work per call (the oracle can beat it by picking the short calls).
    span = max(r.arrival for r in reqs) - min(r.arrival for r in reqs) + DEADLINE
    work = sum(r.service for r in reqs)
    out["bound"] = min(1.0, SLOTS * span / work) if work > 0 else 1.0
    out.update(res.extra)
    return out


def _q(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    return xs[min(len(xs) - 1, int(q * len(xs)))]
