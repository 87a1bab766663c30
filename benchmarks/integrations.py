"""Per-request cost of PerflayerMiddleware next to starlette_exporter's PrometheusMiddleware.

Run: ``.venv/bin/python -m benchmarks.integrations [--rounds 7] [--requests 3000]``
(add ``--without-fastapi`` to hide an installed FastAPI: starlette_exporter then skips
FastAPI's route flattening, which is most of its cost when FastAPI is importable).

One Starlette app with 20 routes; each variant wraps it with a different middleware and is
called in-process with an ASGI scope (no sockets, so the middleware's own work is what
differs). Variants run interleaved, round after round; the table shows the median and p99
per request over all rounds, the overhead over the bare app (median minus the bare median)
and the ratio of perflayer's overhead to starlette_exporter's.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

if "--without-fastapi" in sys.argv:
    sys.modules["fastapi"] = None  # type: ignore[assignment]

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette_exporter import PrometheusMiddleware

from perflayer.integrations.asgi import PerflayerMiddleware
from perflayer.monitor import Monitor
from perflayer.response import ResponseOptimizer


async def endpoint(request: Request) -> PlainTextResponse:
    """Answer with a constant body."""
    return PlainTextResponse("ok")


def routes() -> list[Route]:
    """Return 20 routes; the benchmarked one is the 11th."""
    rs = [Route(f"/r{i}/{{x}}", endpoint) for i in range(10)]
    rs.append(Route("/items/{item_id:int}", endpoint))
    rs += [Route(f"/s{i}/{{x}}", endpoint) for i in range(9)]
    return rs


def variants() -> dict[str, Any]:
    """Build the apps to compare."""
    m = Monitor()
    opt = ResponseOptimizer(monitor=m, initial_limit=1000)
    return {
        "bare starlette": Starlette(routes=routes()),
        "starlette_exporter": Starlette(
            routes=routes(), middleware=[Middleware(PrometheusMiddleware)]
        ),
        "perflayer": Starlette(
            routes=routes(), middleware=[Middleware(PerflayerMiddleware, monitor=Monitor())]
        ),
        "perflayer+optimizer": Starlette(
            routes=routes(), middleware=[Middleware(PerflayerMiddleware, optimizer=opt)]
        ),
    }


async def run(app: Any, n: int) -> list[int]:
    """Call ``app`` ``n`` times; return per-request nanoseconds."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    out: list[int] = []
    clock: Callable[[], int] = time.perf_counter_ns
    for i in range(n):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/items/{i}",
            "raw_path": f"/items/{i}".encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"bench")],
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5000),
        }
        t0 = clock()
        await app(scope, receive, send)
        out.append(clock() - t0)
    return out


def p99(xs: list[int]) -> float:
    """Return the 99th percentile."""
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(len(s) * 0.99))])


async def main() -> None:
    """Run the rounds and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--without-fastapi", action="store_true")
    args = ap.parse_args()
    apps = variants()
    for app in apps.values():  # warm up routing, metric children, lanes
        await run(app, 300)
    times: dict[str, list[int]] = {k: [] for k in apps}
    round_medians: dict[str, list[float]] = {k: [] for k in apps}
    for r in range(args.rounds):
        order = list(apps) if r % 2 == 0 else list(reversed(apps))
        for name in order:
            ts = await run(apps[name], args.requests)
            times[name] += ts
            round_medians[name].append(statistics.median(ts))
    bare = statistics.median(times["bare starlette"])
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    fa = "hidden" if args.without_fastapi else "importable"
    print(f"# {args.rounds} rounds x {args.requests} requests per variant, interleaved")
    print(f"# FastAPI {fa} (starlette_exporter flattens FastAPI route contexts when importable)")
    print("| variant | median us | p99 us | overhead us | overhead vs starlette_exporter |")
    print("|---|---:|---:|---:|---:|")
    peer = statistics.median(times["starlette_exporter"]) - bare
    for name, ts in times.items():
        med = statistics.median(ts)
        over = med - bare
        ratio = "" if name == "bare starlette" else f"{over / peer:.2f}x"
        print(f"| {name} | {med / 1000:.1f} | {p99(ts) / 1000:.1f} | {over / 1000:.1f} | {ratio} |")
    spread = {k: (min(v) / 1000, max(v) / 1000) for k, v in round_medians.items()}
    print(
        "# per-round medians (us), min..max: "
        + "; ".join(f"{k} {a:.1f}..{b:.1f}" for k, (a, b) in spread.items())
    )


if __name__ == "__main__":
    asyncio.run(main())
