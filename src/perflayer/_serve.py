"""``perflayer serve``: the monitor's HTTP endpoints, optionally over a live sample service.

With ``--workload`` a small service runs in the same process so the dashboard has something to
show: a Zipf-keyed lookup memoized in a ``perflayer.Cache``, calls to a simulated downstream
through a ``ResponseOptimizer`` with a priority mix, and a ``MemoryGuard`` with the cache
registered as a reliever. Every part reports into the one default monitor, with two alert rules
(a low hit rate and a high p99) and a health check.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import threading
import time
from typing import Any, cast

__all__ = ["run_serve", "run_workload"]


async def run_workload(stop: threading.Event, *, rate: float = 200.0, seed: int = 7) -> None:
    """Drive the sample service until ``stop`` is set: cache, response scheduler, memory guard."""
    from perflayer.cache import Cache
    from perflayer.memory import MemoryGuard
    from perflayer.monitor import default
    from perflayer.response import Priority, ResponseOptimizer

    rng = random.Random(seed)
    monitor = default()
    cache = Cache(max_entries=2_000, name="sample")
    guard = MemoryGuard(interval=0.5, name="sample", monitor=monitor)
    guard.register(cache)
    guard.start()
    monitor.add_alert(
        name="SampleCacheHitRateLow",
        # misses / hits > 1 is a hit rate under 50%.
        metric="perflayer_cache_misses_total",
        aggregation="ratio",
        denominator="perflayer_cache_hits_total",
        op=">",
        threshold=1.0,
        window=60.0,
        for_=10.0,
        annotations={"summary": "sample cache hit rate under 50%"},
    )
    monitor.add_alert(
        name="SampleLatencyHigh",
        metric="perflayer_response_latency_seconds",
        aggregation="quantile",
        q=0.99,
        threshold=0.25,
        window=60.0,
        for_=5.0,
        critical=0.4,
    )
    monitor.add_check("sample-cache", lambda: cache.dbsize() >= 0, timeout=0.5)
    slots = asyncio.Semaphore(16)

    async def downstream(key: int) -> str:
        # A backend with 16 slots and 5-30 ms per call; the cache spares it repeated keys.
        async with slots:
            await asyncio.sleep(rng.uniform(0.005, 0.03))
        return f"value-{key}"

    async def lookup(key: int) -> str:
        hit = cache.get(f"k{key}")
        if hit is not None:
            return str(hit)
        value = await downstream(key)
        cache.set(f"k{key}", value, ex=30)
        return value

    prios = [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]
    weights = [0.1, 0.2, 0.4, 0.3]
    tasks: set[asyncio.Task[Any]] = set()
    async with ResponseOptimizer(monitor=monitor) as opt:
        while not stop.is_set():
            # Zipf-like popularity over 20k keys, with a burst now and then for the charts.
            key = int(rng.paretovariate(1.1)) % 20_000
            prio = rng.choices(prios, weights)[0]
            call = opt.submit(cast(Any, lookup), key, priority=prio, deadline_ms=200)
            t: asyncio.Task[Any] = asyncio.ensure_future(call)
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            burst = 4.0 if int(time.monotonic()) % 30 < 3 else 1.0
            await asyncio.sleep(rng.expovariate(rate * burst))
        await asyncio.gather(*tasks, return_exceptions=True)
    guard.stop()


def run_serve(args: argparse.Namespace) -> int:
    """Serve the default monitor until interrupted; with ``--workload``, run the sample service."""
    from perflayer.errors import ConfigError
    from perflayer.monitor import default

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    monitor = default()
    srv = monitor.serve(args.host, args.port, token=args.token, interval=1.0)
    url = f"http://{args.host}:{srv.port}"
    print(f"perflayer monitor on {url}  (/metrics /health /alerts /dashboard)", flush=True)
    stop = threading.Event()
    prev = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker: threading.Thread | None = None
    if args.workload:
        worker = threading.Thread(
            target=lambda: asyncio.run(run_workload(stop, rate=args.rate)),
            name="perflayer-sample-service",
            daemon=True,
        )
        worker.start()
    try:
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=10)
        monitor.stop()
        signal.signal(signal.SIGTERM, prev)
    return 0
