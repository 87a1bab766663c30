"""PerflayerMiddleware on real Starlette apps, driven by httpx's ASGITransport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route

from perflayer.errors import ConfigError
from perflayer.integrations.asgi import UNMATCHED_ROUTE, PerflayerMiddleware, monitor_app
from perflayer.monitor import Monitor
from perflayer.response import Response, ResponseOptimizer

REQS = "perflayer_http_requests_total"
DUR = "perflayer_http_request_duration_seconds"


async def item(request: Request) -> JSONResponse:
    """Return the item id."""
    return JSONResponse({"id": request.path_params["item_id"]})


async def user(request: Request) -> PlainTextResponse:
    """Return the user name."""
    return PlainTextResponse(request.path_params["name"])


async def boom(request: Request) -> PlainTextResponse:
    """Fail."""
    raise RuntimeError("boom")


def make_app(m: Monitor, **mw: Any) -> Starlette:
    """Build a Starlette app with routes, a mounted router and the monitor app."""
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", item),
            Route("/boom", boom),
            Mount("/api", routes=[Route("/users/{name}", user)]),
            Mount("/monitor", app=monitor_app(m)),
        ],
        middleware=[Middleware(PerflayerMiddleware, monitor=m, **mw)],
    )


def client(app: Any) -> httpx.AsyncClient:
    """Return an httpx client talking to ``app`` in process (app errors become 500s)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def count(m: Monitor, method: str, route: str, status_class: str) -> float | None:
    """Return the request count of one series."""
    return m.value(REQS, {"method": method, "route": route, "status_class": status_class})


async def test_counts_and_latency_by_route_template() -> None:
    """Requests are labelled by route template and status class, never by raw path."""
    m = Monitor()
    async with client(make_app(m)) as c:
        for i in (1, 2, 3):
            assert (await c.get(f"/items/{i}")).json() == {"id": i}
        assert (await c.get("/api/users/bob")).text == "bob"
        assert (await c.get("/nope/42")).status_code == 404
        assert (await c.post("/items/1")).status_code == 405
        assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/monitor/metrics")).status_code == 200
    assert count(m, "GET", "/items/{item_id:int}", "2xx") == 3
    assert count(m, "GET", "/api/users/{name}", "2xx") == 1
    assert count(m, "GET", UNMATCHED_ROUTE, "4xx") == 1
    assert count(m, "POST", "/items/{item_id:int}", "4xx") == 1
    assert count(m, "GET", "/boom", "5xx") == 1
    assert count(m, "GET", "/monitor/{path}", "2xx") == 1
    h = m.metric(DUR)
    assert h is not None and m.value(DUR) == 8  # one observation per request
    latency = m.quantile(DUR, 0.5, labels={"route": "/items/{item_id:int}"})
    assert latency is not None and latency > 0
    text = m.exposition()
    assert "/items/1" not in text and "bob" not in text and "/nope" not in text
    assert m.value("perflayer_http_requests_in_progress") == 0


async def test_wrapping_the_app_from_outside_sees_the_same_templates() -> None:
    """PerflayerMiddleware(app) around a whole Starlette app labels routes the same way."""
    m = Monitor()
    inner = Starlette(routes=[Mount("/api", routes=[Route("/users/{name}", user)])])
    async with client(PerflayerMiddleware(inner, monitor=m)) as c:
        assert (await c.get("/api/users/ann")).status_code == 200
        assert (await c.get("/api/other")).status_code == 404
    assert count(m, "GET", "/api/users/{name}", "2xx") == 1
    assert count(m, "GET", "/api/{path}", "4xx") == 1


async def test_unknown_methods_fold_into_other() -> None:
    """A made-up HTTP method is labelled ``other`` so clients cannot grow the label set."""
    m = Monitor()
    async with client(make_app(m)) as c:
        for verb in ("FOO", "BAR", "BAZ"):
            await c.request(verb, "/items/1")
    assert count(m, "other", "/items/{item_id:int}", "4xx") == 3
    assert "FOO" not in m.exposition()


async def test_shed_request_gets_503_with_retry_after_and_response_json() -> None:
    """With a limit of one and no queue, a concurrent request is shed as a 503 JSON Response."""
    m = Monitor()
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        entered.set()
        await gate.wait()
        return PlainTextResponse("done")

    opt = ResponseOptimizer(monitor=m, limits={"http": 1}, max_queue=0)
    app = Starlette(
        routes=[Route("/slow", slow)],
        middleware=[Middleware(PerflayerMiddleware, optimizer=opt, retry_after=7)],
    )
    async with client(app) as c:
        first = asyncio.create_task(c.get("/slow"))
        await entered.wait()
        shed = await c.get("/slow", headers={"x-priority": "low"})
        gate.set()
        ok = await first
    await opt.shutdown()
    assert ok.status_code == 200 and ok.text == "done"
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "7"
    assert shed.headers["content-type"] == "application/json"
    r = Response.from_json(shed.content)
    assert r.shed and not r.ok and r.error is not None and r.error.type == "ShedError"
    assert r.priority.name == "LOW" and r.metadata["shed_reason"] == "queue_full"
    # the middleware took the optimizer's monitor: one place for both
    assert count(m, "GET", "/slow", "5xx") == 1 and count(m, "GET", "/slow", "2xx") == 1
    shed_total = m.value(
        "perflayer_response_shed_total",
        {"downstream": "http", "priority": "low", "reason": "queue_full"},
    )
    assert shed_total == 1


async def test_priority_header_reaches_the_optimizer(caplog: pytest.LogCaptureFixture) -> None:
    """The priority header picks the priority; bad values fall back and are logged once."""
    m = Monitor()
    opt = ResponseOptimizer(monitor=m)
    app = make_app(m, optimizer=opt, priority_header="X-Prio-Test", default_priority="low")
    async with client(app) as c:
        assert (await c.get("/items/1", headers={"x-prio-test": "critical"})).status_code == 200
        for bad in ("urgent!!", "9", "x" * 50):
            assert (await c.get("/items/2", headers={"x-prio-test": bad})).status_code == 200
        assert (await c.get("/items/3")).status_code == 200
    await opt.shutdown()
    by = {"downstream": "http", "outcome": "ok"}
    assert m.value("perflayer_response_requests_total", {**by, "priority": "critical"}) == 1
    assert m.value("perflayer_response_requests_total", {**by, "priority": "low"}) == 4
    warned = [r for r in caplog.records if "x-prio-test" in r.getMessage()]
    assert len(warned) == 1  # client-chosen values cannot flood the log


async def test_deadline_miss_before_the_response_starts_is_a_504() -> None:
    """A handler still running at the deadline is cancelled and answered 504 (no Retry-After)."""
    m = Monitor()
    cancelled = asyncio.Event()

    async def hang(request: Request) -> PlainTextResponse:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    opt = ResponseOptimizer(monitor=m)
    app = Starlette(
        routes=[Route("/hang", hang)],
        middleware=[Middleware(PerflayerMiddleware, optimizer=opt, deadline_ms=50)],
    )
    async with client(app) as c:
        resp = await c.get("/hang")
    await opt.shutdown()
    assert resp.status_code == 504 and "retry-after" not in resp.headers
    body = json.loads(resp.content)
    assert body["timed_out"] is True and body["deadline_ms"] == 50.0
    assert cancelled.is_set()
    assert count(m, "GET", "/hang", "5xx") == 1


async def test_app_errors_propagate_through_the_optimizer() -> None:
    """An endpoint's exception is re-raised (Starlette answers 500) and counted as 5xx."""
    m = Monitor()
    opt = ResponseOptimizer(monitor=m)
    async with client(make_app(m, optimizer=opt)) as c:
        assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/items/9")).json() == {"id": 9}
    await opt.shutdown()
    assert count(m, "GET", "/boom", "5xx") == 1
    assert count(m, "GET", "/items/{item_id:int}", "2xx") == 1
    err = {"downstream": "http", "priority": "normal", "outcome": "error"}
    assert m.value("perflayer_response_requests_total", err) == 1


async def test_streaming_response_is_timed_to_the_last_byte() -> None:
    """A streamed body is passed through whole and counted once, with its status."""
    m = Monitor()

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            for i in range(3):
                yield f"chunk{i};".encode()

        return StreamingResponse(chunks(), status_code=201)

    app = Starlette(
        routes=[Route("/s", stream)], middleware=[Middleware(PerflayerMiddleware, monitor=m)]
    )
    async with client(app) as c:
        resp = await c.get("/s")
    assert resp.status_code == 201 and resp.text == "chunk0;chunk1;chunk2;"
    assert count(m, "GET", "/s", "2xx") == 1


async def test_lifespan_passes_through() -> None:
    """Non-HTTP scopes (here lifespan) reach the app untouched and are not counted."""
    m = Monitor()
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        msg = await receive()
        started.append(msg["type"])
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(msg: Any) -> None:
        sent.append(msg)

    await PerflayerMiddleware(app, monitor=m)({"type": "lifespan"}, receive, send)
    assert started == ["lifespan.startup"]
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert m.value(REQS) is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "named"),
    [
        ({"deadline_ms": 0}, ConfigError, "0"),
        ({"deadline_ms": "5"}, ConfigError, "'5'"),
        ({"retry_after": -1}, ConfigError, "-1"),
        ({"priority_header": ""}, ConfigError, "''"),
        ({"downstream": ""}, ConfigError, "''"),
        ({"default_priority": "urgent"}, ConfigError, "'urgent'"),
        ({"optimizer": object()}, TypeError, "object"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, Any], exc: type, named: str) -> None:
    """Misuse raises a builtin-compatible error whose message names the bad value."""
    with pytest.raises(exc, match=named):
        PerflayerMiddleware(Starlette(), monitor=Monitor(), **kwargs)


def test_uses_the_default_monitor_without_one() -> None:
    """Without monitor= or optimizer=, the process-wide default monitor is used."""
    from perflayer.monitor import default

    assert PerflayerMiddleware(Starlette()).monitor is default()


async def test_routes_added_after_start_are_recognised() -> None:
    """A route added after the first request gets its own template, not the unmatched label."""
    m = Monitor()
    app = make_app(m)
    async with client(app) as c:
        assert (await c.get("/items/1")).status_code == 200
        app.add_route("/late/{x}", user_late)
        assert (await c.get("/late/abc")).text == "abc"
    assert count(m, "GET", "/late/{x}", "2xx") == 1


async def user_late(request: Request) -> PlainTextResponse:
    """Echo a path parameter."""
    return PlainTextResponse(request.path_params["x"])
