"""``ResponseOptimizer``: priorities, deadlines and adaptive concurrency in front of downstreams."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import math
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from perflayer.errors import ConfigError, ShedError
from perflayer.monitor import Monitor, default
from perflayer.response._envelope import ErrorInfo, Priority, Response
from perflayer.response._lane import (
    _STANDBY,
    SHED_SHUTDOWN,
    TIMED_OUT_QUEUED,
    Lane,
    Waiter,
)
from perflayer.response._limiter import AdaptiveLimiter

__all__ = ["DEFAULT_RESERVE", "ResponseOptimizer"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_RESERVE: Mapping[Priority, float] = {Priority.CRITICAL: 0.10, Priority.HIGH: 0.05}

_PRIO_NAMES = tuple(p.name.lower() for p in Priority)
_OUTCOMES = ("ok", "error", "timeout", "shed")


_ASYNC_CACHE: dict[Any, bool] = {}


def _is_async(fn: Callable[..., Any]) -> bool:
    # why: inspect's check walks code flags (~2 us); submit() calls it for every request.
    try:
        return _ASYNC_CACHE[fn]
    except (KeyError, TypeError):
        pass
    res = _is_async_slow(fn)
    try:
        if len(_ASYNC_CACHE) > 4096:
            _ASYNC_CACHE.clear()
        _ASYNC_CACHE[fn] = res
    except TypeError:  # unhashable callable
        pass
    return res


def _is_async_slow(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an async __call__ on an instance
    return call is not None and inspect.iscoroutinefunction(call)


def _opts(prio: Any, deadline_ms: float | None, fallback: Any, downstream: str) -> dict[str, Any]:
    """Return submit()'s own keyword arguments as a dict (for forwarding)."""
    return {
        "priority": prio,
        "deadline_ms": deadline_ms,
        "fallback": fallback,
        "downstream": downstream,
    }


def _check_deadline(deadline_ms: float | None) -> float | None:
    if deadline_ms is None:
        return None
    if (
        isinstance(deadline_ms, bool)
        or not isinstance(deadline_ms, (int, float))
        or math.isnan(deadline_ms)
        or deadline_ms <= 0
    ):
        raise ConfigError(f"deadline_ms must be a positive number or None, got {deadline_ms!r}")
    return float(deadline_ms)


class _Instruments:
    """The optimizer's metrics, with children cached per (downstream, priority)."""

    def __init__(self, monitor: Monitor) -> None:
        self.requests = monitor.counter(
            "perflayer_response_requests_total",
            "Requests by downstream, priority and outcome (ok is goodput: in time, no error).",
            ("downstream", "priority", "outcome"),
        )
        self.shed = monitor.counter(
            "perflayer_response_shed_total",
            "Requests answered without running, by reason.",
            ("downstream", "priority", "reason"),
        )
        self.latency = monitor.histogram(
            "perflayer_response_latency_seconds",
            "Latency of requests that ran (submit to answer), by downstream and priority.",
            ("downstream", "priority"),
        )
        self.wasted = monitor.counter(
            "perflayer_response_wasted_seconds_total",
            "Downstream time spent on calls that missed their deadline.",
            ("downstream",),
        )
        self._children: dict[tuple[str, int], tuple[Any, ...]] = {}

    def children(self, downstream: str, prio: int) -> tuple[Any, ...]:
        """Return (ok, error, timeout, shed counters, latency histogram) for one series."""
        key = (downstream, prio)
        ch = self._children.get(key)
        if ch is None:
            name = _PRIO_NAMES[prio]
            counters = [self.requests.labels(downstream, name, o) for o in _OUTCOMES]
            ch = (*counters, self.latency.labels(downstream, name))
            self._children[key] = ch
        return ch


class ResponseOptimizer:
    """Run calls to downstreams with priorities, deadlines, shedding and a learned limit.

    Each ``downstream`` name gets its own adaptive concurrency limit and priority queue.
    ``submit`` never raises for the call's own failures: it returns a :class:`Response`.

    >>> import asyncio
    >>> async def main():
    ...     async with ResponseOptimizer(monitor=Monitor()) as opt:
    ...         async def fetch(x):
    ...             return x * 2
    ...         r = await opt.submit(fetch, 21, priority="high", deadline_ms=500)
    ...         return r.ok, r.value
    >>> asyncio.run(main())
    (True, 42)
    """

    def __init__(
        self,
        *,
        monitor: Monitor | None = None,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 1000,
        limits: Mapping[str, int] | None = None,
        reserve: Mapping[Priority, float] | None = None,
        interval_ms: float = 100.0,
        target_ms: float | None = 50.0,
        overload: float = 1.2,
        max_queue: int | None = None,
        standby: float = _STANDBY,
        max_workers: int | None = None,
        default_deadline_ms: float | None = None,
    ) -> None:
        self._monitor = monitor if monitor is not None else default()
        self._limiter_args = {
            "initial_limit": initial_limit,
            "min_limit": min_limit,
            "max_limit": max_limit,
        }
        AdaptiveLimiter(**self._limiter_args)  # validate now, not at first use
        self._fixed: dict[str, int] = {}
        for name, n in (limits or {}).items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"limits[{name!r}] must be a positive int, got {n!r}")
            self._fixed[name] = n
        res = dict(DEFAULT_RESERVE if reserve is None else reserve)
        clean: dict[Priority, float] = {}
        for k, v in res.items():
            p = Priority.parse(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise ConfigError(f"reserve[{p.name}] must be a fraction in [0, 1), got {v!r}")
            clean[p] = float(v)
        if sum(clean.values()) >= 1.0:
            raise ConfigError(f"reserved shares must sum below 1, got {clean!r}")
        self._reserve = clean
        for name, v in (("interval_ms", interval_ms), ("overload", overload)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        if target_ms is not None and (
            isinstance(target_ms, bool) or not isinstance(target_ms, (int, float)) or target_ms <= 0
        ):
            raise ConfigError(f"target_ms must be a positive number or None, got {target_ms!r}")
        if max_queue is not None and (not isinstance(max_queue, int) or max_queue < 0):
            raise ConfigError(f"max_queue must be a non-negative int or None, got {max_queue!r}")
        if isinstance(standby, bool) or not isinstance(standby, (int, float)) or not standby >= 0:
            raise ConfigError(f"standby must be a non-negative number (x limit), got {standby!r}")
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigError(f"max_workers must be a positive int or None, got {max_workers!r}")
        self._interval = interval_ms / 1000.0
        self._target = None if target_ms is None else target_ms / 1000.0
        self._overload = float(overload)
        self._max_queue = max_queue
        self._standby = float(standby)
        self._default_deadline = _check_deadline(default_deadline_ms)
        self._max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._limiters: dict[str, AdaptiveLimiter] = {}
        self._lanes: dict[str, Lane] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._portal: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._active = 0
        self._running: set[_Running] = set()
        self._idle: asyncio.Event | None = None
        self._m = _Instruments(self._monitor)
        self._handles = [
            self._monitor.gauge_callback(
                "perflayer_response_limit",
                "Current concurrency limit per downstream.",
                self._limit_series,
                ("downstream",),
            ),
            self._monitor.gauge_callback(
                "perflayer_response_inflight",
                "Calls in flight per downstream.",
                self._inflight_series,
                ("downstream",),
            ),
            self._monitor.gauge_callback(
                "perflayer_response_queue_length",
                "Callers waiting for a slot per downstream.",
                self._queue_series,
                ("downstream",),
            ),
        ]

    # -- introspection ------------------------------------------------------------------

    @property
    def monitor(self) -> Monitor:
        """Return the monitor this optimizer reports into."""
        return self._monitor

    @property
    def closed(self) -> bool:
        """Return True once shutdown has begun (new calls are shed)."""
        return self._closing

    def limit(self, downstream: str = "default") -> int:
        """Return the current concurrency limit of ``downstream``."""
        lane = self._lanes.get(downstream)
        if lane is not None:
            return lane.limiter.limit
        if downstream in self._fixed:
            return self._fixed[downstream]
        lim = self._limiters.get(downstream)
        return lim.limit if lim is not None else int(self._limiter_args["initial_limit"])

    def limiter(self, downstream: str = "default") -> AdaptiveLimiter:
        """Return the limiter of ``downstream`` (created on first use)."""
        lim = self._limiters.get(downstream)
        if lim is None:
            args = dict(self._limiter_args)
            if downstream in self._fixed:
                n = self._fixed[downstream]
                args = {"initial_limit": n, "min_limit": n, "max_limit": n}
            lim = self._limiters[downstream] = AdaptiveLimiter(**args)
        return lim

    def queue_length(self, downstream: str = "default") -> int:
        """Return how many callers wait for a slot of ``downstream``."""
        lane = self._lanes.get(downstream)
        return 0 if lane is None else lane.nqueued

    def inflight(self, downstream: str = "default") -> int:
        """Return how many calls of ``downstream`` are running."""
        lane = self._lanes.get(downstream)
        return 0 if lane is None else lane.inflight

    def stats(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Return per downstream and priority: counts, goodput ratio and latency p50/p99 (ms)."""
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for (ds, prio), ch in sorted(self._m._children.items()):
            ok, err, tmo, shed = (c.get() for c in ch[:4])
            total = ok + err + tmo + shed
            p50, p99 = ch[4].quantile(0.5), ch[4].quantile(0.99)
            out.setdefault(ds, {})[_PRIO_NAMES[prio]] = {
                "ok": ok,
                "error": err,
                "timeout": tmo,
                "shed": shed,
                "goodput": ok / total if total else None,
                "p50_ms": None if p50 is None else p50 * 1000.0,
                "p99_ms": None if p99 is None else p99 * 1000.0,
            }
        return out

    def _limit_series(self) -> dict[tuple[str, ...], float]:
        return {(k,): float(v.limiter.limit) for k, v in list(self._lanes.items())}

    def _inflight_series(self) -> dict[tuple[str, ...], float]:
        return {(k,): float(v.inflight) for k, v in list(self._lanes.items())}

    def _queue_series(self) -> dict[tuple[str, ...], float]:
        return {(k,): float(v.nqueued) for k, v in list(self._lanes.items())}

    # -- loop binding ---------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        # The lanes hold futures and timers of one loop; a new loop (a new asyncio.run) gets
        # fresh lanes but keeps what the limiters learned.
        self._loop = loop
        self._lanes = {}
        self._idle = None

    def _lane(self, downstream: str) -> Lane:
        lane = self._lanes.get(downstream)
        if lane is None:
            if not isinstance(downstream, str) or not downstream:
                raise ConfigError(f"downstream must be a non-empty str, got {downstream!r}")
            assert self._loop is not None
            lane = self._lanes[downstream] = Lane(
                downstream,
                self.limiter(downstream),
                self._loop,
                reserve=self._reserve,
                interval=self._interval,
                target=self._target,
                overload=self._overload,
                max_queue=self._max_queue,
                standby=self._standby,
            )
        return lane

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        max_workers=self._max_workers, thread_name_prefix="perflayer-response"
                    )
                pool = self._pool
        return pool

    # -- the call path -------------------------------------------------------------------

    async def submit(
        self,
        fn: Callable[..., Awaitable[T]] | Callable[..., T],
        /,
        *args: Any,
        priority: Priority | str | int = Priority.NORMAL,
        deadline_ms: float | None = None,
        fallback: Any = None,
        downstream: str = "default",
        **kwargs: Any,
    ) -> Response[T]:
        """Run ``fn(*args, **kwargs)`` under this downstream's limit; return its Response.

        Coroutine functions run on the loop; other callables run in a bounded thread pool.
        A call still running at its deadline is cancelled (a thread cannot be interrupted:
        its result is discarded and the slot is held until it returns) and answered with
        ``timed_out=True``. ``fallback`` (a value, or a zero-argument callable or coroutine
        function) provides ``value`` whenever the call is shed, times out or fails.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {fn!r}")
        prio = Priority.parse(priority)
        dl = _check_deadline(deadline_ms) if deadline_ms is not None else self._default_deadline
        loop = asyncio.get_running_loop()
        home = self._loop
        if home is not loop:
            if home is not None and home.is_running() and not home.is_closed():
                # Another thread's loop owns the lanes: run there, await here.
                coro = self.submit(fn, *args, **_opts(prio, dl, fallback, downstream), **kwargs)
                cf = asyncio.run_coroutine_threadsafe(coro, home)
                return await asyncio.wrap_future(cf)
            self._bind(loop)
        lane = self._lane(downstream)
        t0 = loop.time()
        wall0 = time.time()
        deadline = None if dl is None else t0 + dl / 1000.0
        ch = self._m.children(downstream, prio)
        if self._closing:
            return await self._answer_shed(ch, prio, wall0, t0, dl, fallback, SHED_SHUTDOWN, lane)
        self._active += 1
        try:
            got = lane.admit(prio, t0, deadline)
            if isinstance(got, Waiter):
                w = got
                try:
                    got = await w.fut
                except asyncio.CancelledError:
                    if w.fut.done() and not w.fut.cancelled():
                        if isinstance(w.fut.result(), int):
                            lane.release(prio)  # granted a slot, but the caller left
                    else:
                        lane.forget(w)
                    raise
            if isinstance(got, str):
                if got == TIMED_OUT_QUEUED:
                    return await self._answer_timeout(
                        ch, prio, wall0, t0, dl, fallback, lane, None, "not started in time"
                    )
                return await self._answer_shed(ch, prio, wall0, t0, dl, fallback, got, lane)
            return await self._run(
                lane, ch, prio, got, fn, args, kwargs, wall0, t0, deadline, dl, fallback
            )
        finally:
            self._active -= 1
            if self._active == 0 and self._idle is not None:
                self._idle.set()

    async def _run(
        self,
        lane: Lane,
        ch: tuple[Any, ...],
        prio: Priority,
        level: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wall0: float,
        t0: float,
        deadline: float | None,
        dl: float | None,
        fallback: Any,
    ) -> Response[Any]:
        loop = lane.loop
        tag = lane.limiter.on_dispatch(level)
        start = loop.time()
        run = _Running(loop)
        self._running.add(run)
        cf: concurrent.futures.Future[Any] | None = None
        held = False  # True when a thread still runs after we stopped waiting
        value: Any = None
        exc: BaseException | None = None
        expired = False
        try:
            try:
                if _is_async(fn):
                    value = await run.run(fn(*args, **kwargs), deadline)
                else:
                    ctx = contextvars.copy_context()
                    cf = self._executor().submit(ctx.run, fn, *args, **kwargs)
                    value = await run.run(asyncio.wrap_future(cf), deadline)
                    if inspect.isawaitable(value):
                        value = await run.run(value, deadline)
            except _Expired:
                expired = True
            except asyncio.CancelledError:
                if not run.expired:  # pragma: no cover - Python 3.10 shutdown path
                    raise
                expired = True
            except TimeoutError as e:  # the call's own timeout, or ours on Python 3.10
                if run.expired:
                    expired = True
                else:
                    exc = e
            except Exception as e:
                exc = e
        finally:
            self._running.discard(run)
            end = loop.time()
            if cf is not None and not cf.done() and not cf.cancel():
                # A thread cannot be interrupted: keep its slot until it returns.
                held = True
                cf.add_done_callback(functools.partial(_release_later, loop, lane, int(prio)))
            if not held:
                lane.release(int(prio))
        elapsed = end - start
        lane.limiter.on_sample(elapsed, tag)
        if not expired and exc is None:
            lane.record_latency(elapsed)
        resp = None
        if not expired and exc is None:
            resp = Response(
                ok=True,
                value=value,
                priority=prio,
                started=wall0,
                finished=wall0 + (end - t0),
                latency_ms=(end - t0) * 1000.0,
                deadline_ms=dl,
            )
        # why: a clock read here, not ``end``: the caller sees the answer in this same step, so
        # this is the last word; a call that finished in time but whose answer crossed the
        # deadline during the bookkeeping above (a stalled process) is timed out, never late.
        if expired or (deadline is not None and loop.time() > deadline):
            if start < end:
                self._m.wasted.labels(lane.name).inc(elapsed)
            why = run.reason or "deadline passed"
            return await self._answer_timeout(ch, prio, wall0, t0, dl, fallback, lane, end, why)
        ch[4].observe(end - t0)
        if resp is None:
            ch[1].inc()
            assert exc is not None
            return await self._failed(exc, prio, wall0, t0, dl, fallback, end, None, False)
        ch[0].inc()
        return resp

    async def _fallback(self, fallback: Any) -> tuple[Any, bool, dict[str, Any]]:
        if fallback is None:
            return None, False, {}
        try:
            v = fallback() if callable(fallback) else fallback
            if inspect.isawaitable(v):
                v = await v
        except Exception as e:  # degrade: report the fallback's failure, keep the envelope
            return None, False, {"fallback_error": ErrorInfo.from_exception(e).to_dict()}
        return v, True, {}

    async def _answer_shed(
        self,
        ch: tuple[Any, ...],
        prio: Priority,
        wall0: float,
        t0: float,
        dl: float | None,
        fallback: Any,
        reason: str,
        lane: Lane,
    ) -> Response[Any]:
        ch[3].inc()
        self._m.shed.labels(lane.name, _PRIO_NAMES[prio], reason).inc()
        exc = ShedError(f"shed by downstream {lane.name!r}: {reason}")
        now = lane.loop.time()
        return await self._failed(exc, prio, wall0, t0, dl, fallback, now, reason, False)

    async def _answer_timeout(
        self,
        ch: tuple[Any, ...],
        prio: Priority,
        wall0: float,
        t0: float,
        dl: float | None,
        fallback: Any,
        lane: Lane,
        end: float | None,
        why: str,
    ) -> Response[Any]:
        ch[2].inc()
        now = lane.loop.time() if end is None else end
        exc = TimeoutError(f"{why} (deadline {dl} ms, downstream {lane.name!r})")
        return await self._failed(exc, prio, wall0, t0, dl, fallback, now, None, True)

    async def _failed(
        self,
        exc: BaseException,
        prio: Priority,
        wall0: float,
        t0: float,
        dl: float | None,
        fallback: Any,
        now: float,
        shed_reason: str | None,
        timed_out: bool,
    ) -> Response[Any]:
        """Build the failure Response (shed, timed out or errored), with the fallback's value."""
        fv, used, meta = await self._fallback(fallback)
        if shed_reason is not None:
            meta["shed_reason"] = shed_reason
        return Response.failure(
            exc,
            value=fv,
            priority=prio,
            started=wall0,
            finished=wall0 + (now - t0),
            latency_ms=(now - t0) * 1000.0,
            deadline_ms=dl,
            shed=shed_reason is not None,
            timed_out=timed_out,
            fallback_used=used,
            metadata=meta,
        )

    # -- sync callers ----------------------------------------------------------------------

    def call(
        self,
        fn: Callable[..., Awaitable[T]] | Callable[..., T],
        /,
        *args: Any,
        priority: Priority | str | int = Priority.NORMAL,
        deadline_ms: float | None = None,
        fallback: Any = None,
        downstream: str = "default",
        **kwargs: Any,
    ) -> Response[T]:
        """Blocking ``submit`` for synchronous code (not from inside a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "ResponseOptimizer.call() blocks; inside a running event loop use "
                "`await opt.submit(...)`"
            )
        loop = self._home_for_sync()
        opts = _opts(priority, deadline_ms, fallback, downstream)
        cf = asyncio.run_coroutine_threadsafe(self.submit(fn, *args, **opts, **kwargs), loop)
        return cf.result()

    def _home_for_sync(self) -> asyncio.AbstractEventLoop:
        home = self._loop
        if home is not None and home.is_running() and not home.is_closed():
            return home
        with self._lock:
            if self._portal is None:
                loop = asyncio.new_event_loop()
                th = threading.Thread(
                    target=loop.run_forever, name="perflayer-response-loop", daemon=True
                )
                th.start()
                self._portal = (loop, th)
            return self._portal[0]

    # -- decorator -------------------------------------------------------------------------

    def endpoint(
        self,
        *,
        priority: Priority | str | int = Priority.NORMAL,
        deadline_ms: float | None = None,
        fallback: Any = None,
        downstream: str = "default",
        unwrap: bool = False,
    ) -> Callable[[F], F]:
        """Decorate a function so each call goes through ``submit`` (or ``call`` if sync).

        The wrapper returns the Response, or with ``unwrap=True`` its value (the fallback's
        value when one was used), raising the call's error otherwise.
        """
        opts = _opts(Priority.parse(priority), _check_deadline(deadline_ms), fallback, downstream)

        def deco(fn: F) -> F:
            if _is_async(fn):

                @functools.wraps(fn)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    r = await self.submit(fn, *args, **opts, **kwargs)
                    return r.unwrap() if unwrap else r

                return cast(F, awrapper)

            @functools.wraps(fn)
            def swrapper(*args: Any, **kwargs: Any) -> Any:
                r = self.call(fn, *args, **opts, **kwargs)
                return r.unwrap() if unwrap else r

            return cast(F, swrapper)

        return deco

    # -- shutdown --------------------------------------------------------------------------

    async def shutdown(self, timeout: float = 5.0, *, cancel: bool = True) -> bool:
        """Stop admitting, wait up to ``timeout`` s for work to drain, then cancel the rest.

        New calls are shed (reason ``shutdown``) from the first moment. Returns True if
        everything drained in time. With ``cancel=False`` waiting callers and running calls
        are left alone after the timeout (they finish on their own).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ConfigError(f"timeout must be a non-negative number, got {timeout!r}")
        self._closing = True
        loop = asyncio.get_running_loop()
        drained = True
        if self._loop is loop and self._active:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                drained = False
            except asyncio.TimeoutError:  # pragma: no cover - Python 3.10
                drained = False
            if not drained and cancel:
                for lane in list(self._lanes.values()):
                    lane.shed_all(SHED_SHUTDOWN)
                for run in list(self._running):
                    run.cancel("cancelled by shutdown")
                if self._active:
                    self._idle.clear()
                    try:
                        await asyncio.wait_for(self._idle.wait(), 1.0)
                    except (TimeoutError, asyncio.TimeoutError):  # pragma: no cover
                        pass
        self._close_resources()
        return drained

    def close(self) -> None:
        """Stop admitting and release the thread pool and helper loop (no draining)."""
        self._closing = True
        self._close_resources()

    def _close_resources(self) -> None:
        self._closed = True
        for h in self._handles:
            h.unregister()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        portal, self._portal = self._portal, None
        if portal is not None:
            ploop, th = portal
            ploop.call_soon_threadsafe(ploop.stop)
            th.join(timeout=5)
            if not th.is_alive():
                ploop.close()

    async def __aenter__(self) -> ResponseOptimizer:
        """Return self."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Shut down gracefully (drain for up to 5 s)."""
        await self.shutdown()

    def __enter__(self) -> ResponseOptimizer:
        """Return self (for synchronous use with ``call``)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close without draining."""
        self.close()


def _release_later(
    loop: asyncio.AbstractEventLoop, lane: Lane, prio: int, _f: concurrent.futures.Future[Any]
) -> None:
    try:
        loop.call_soon_threadsafe(lane.release, prio)
    except RuntimeError:  # the loop is closed: nothing left to release into
        pass


class _Expired(Exception):
    """Internal: the call's deadline (or shutdown) cancelled it."""


class _Running:
    """A running call's deadline, which shutdown can also pull in."""

    __slots__ = ("_cm", "_task", "expired", "loop", "reason")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.expired = False
        self.reason: str | None = None
        self._cm: Any = None
        self._task: asyncio.Future[Any] | None = None

    async def run(self, aw: Awaitable[Any], deadline: float | None) -> Any:
        """Await ``aw``; cancel it at ``deadline`` (loop time) and mark ``expired``."""
        if sys.version_info >= (3, 11):
            cm = self._cm = asyncio.timeout_at(deadline)
            try:
                async with cm:
                    return await aw
            except TimeoutError:
                if cm.expired():
                    self.expired = True
                    raise _Expired from None
                raise
        fut = self._task = asyncio.ensure_future(aw)  # pragma: no cover - Python 3.10
        timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            fut.cancel()
            self.expired = True
            raise _Expired from None

    def cancel(self, reason: str) -> None:
        """Expire the call now."""
        self.reason = reason
        if self._cm is not None:
            self._cm.reschedule(self.loop.time())
        elif self._task is not None:  # pragma: no cover - Python 3.10
            self._task.cancel()
            self.expired = True
