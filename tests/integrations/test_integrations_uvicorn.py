"""PerflayerMiddleware behind a real uvicorn server on 127.0.0.1, scraped over HTTP."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Mount, Route

from perflayer.integrations.asgi import PerflayerMiddleware, monitor_app
from perflayer.monitor import Monitor
from perflayer.response import ResponseOptimizer

REQS = "perflayer_http_requests_total"


async def item(request: Request) -> JSONResponse:
    """Return the item id."""
    return JSONResponse({"id": request.path_params["item_id"]})


async def stuck_stream(request: Request) -> StreamingResponse:
    """Send one chunk, then hang (the deadline cancels it mid-body)."""

    async def body() -> Any:
        yield b"first;"
        await asyncio.Event().wait()

    return StreamingResponse(body())


@pytest.fixture
def server() -> Iterator[tuple[str, Monitor]]:
    """Serve a Starlette app with the middleware and the monitor app on a free port."""
    m = Monitor()
    opt = ResponseOptimizer(monitor=m)
    app = Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/stuck", stuck_stream),
            Mount("/monitor", app=monitor_app(m)),
        ],
        # every request runs under this deadline: wide enough that no plain request misses it
        # on a loaded machine, since only /stuck is meant to
        middleware=[Middleware(PerflayerMiddleware, optimizer=opt, deadline_ms=2000)],
    )
    # a socket bound here and handed to uvicorn: no free-port-then-bind race
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", ws="none", lifespan="on"
    )
    srv = uvicorn.Server(config)
    th = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not th.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", m
    finally:
        srv.should_exit = True
        th.join(timeout=30)
        opt.close()
        sock.close()


@pytest.mark.promtool
def test_real_server_counts_routes_and_serves_them_on_metrics(
    server: tuple[str, Monitor],
) -> None:
    """Requests over TCP are counted per template and visible on the mounted /metrics."""
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as c:
        for i in range(5):
            assert c.get(f"/items/{i}").json() == {"id": i}
        assert c.get("/missing").status_code == 404
        text = c.get("/monitor/metrics").text
    line = (
        'perflayer_http_requests_total{method="GET",route="/items/{item_id:int}",'
        'status_class="2xx"} 5.0'
    )
    assert line in text
    assert 'route="__unmatched__",status_class="4xx"} 1.0' in text
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_deadline_after_the_response_started_aborts_the_connection(
    server: tuple[str, Monitor],
) -> None:
    """A body cut by the deadline is never passed off as complete: the server aborts it."""
    url, m = server
    with httpx.Client(base_url=url, timeout=10) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/stuck")
        assert c.get("/items/1").status_code == 200  # the server is fine afterwards
    assert m.value(REQS, {"route": "/stuck", "status_class": "2xx"}) == 1
    assert m.value("perflayer_response_requests_total", {"outcome": "timeout"}) == 1
