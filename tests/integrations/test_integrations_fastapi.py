"""PerflayerMiddleware on a real FastAPI app: templates through included (nested) routers."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from perflayer.integrations.asgi import UNMATCHED_ROUTE, PerflayerMiddleware
from perflayer.monitor import Monitor
from perflayer.response import ResponseOptimizer


def build(m: Monitor, opt: ResponseOptimizer | None = None) -> FastAPI:
    """Build a FastAPI app with a prefixed router nested in another one."""
    app = FastAPI()
    users = APIRouter(prefix="/users")

    @users.get("/{uid}")
    async def get_user(uid: int) -> dict[str, int]:
        return {"uid": uid}

    v1 = APIRouter(prefix="/v1")
    v1.include_router(users)
    app.include_router(v1)

    @app.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    app.add_middleware(PerflayerMiddleware, monitor=m, optimizer=opt)
    return app


def count(m: Monitor, method: str, route: str, status_class: str) -> float | None:
    """Return the request count of one series."""
    return m.value(
        "perflayer_http_requests_total",
        {"method": method, "route": route, "status_class": status_class},
    )


async def test_fastapi_included_routers_give_full_templates() -> None:
    """Nested APIRouter prefixes are part of the template; validation errors keep theirs."""
    m = Monitor()
    transport = httpx.ASGITransport(app=build(m))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/v1/users/7")).json() == {"uid": 7}
        assert (await c.get("/v1/users/8")).json() == {"uid": 8}
        assert (await c.get("/v1/users/not-an-int")).status_code == 422
        assert (await c.delete("/items/x")).status_code == 405
        assert (await c.get("/items/x")).json() == {"item": "x"}
        assert (await c.get("/v2/nothing")).status_code == 404
    assert count(m, "GET", "/v1/users/{uid}", "2xx") == 2
    assert count(m, "GET", "/v1/users/{uid}", "4xx") == 1
    assert count(m, "DELETE", "/items/{item_id}", "4xx") == 1
    assert count(m, "GET", "/items/{item_id}", "2xx") == 1
    assert count(m, "GET", UNMATCHED_ROUTE, "4xx") == 1


async def test_fastapi_through_the_optimizer() -> None:
    """FastAPI endpoints run through the ResponseOptimizer and report into one monitor."""
    m = Monitor()
    opt = ResponseOptimizer(monitor=m)
    transport = httpx.ASGITransport(app=build(m, opt))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/v1/users/1", headers={"x-priority": "high"})
    await opt.shutdown()
    assert r.json() == {"uid": 1}
    ok = {"downstream": "http", "priority": "high", "outcome": "ok"}
    assert m.value("perflayer_response_requests_total", ok) == 1
    assert count(m, "GET", "/v1/users/{uid}", "2xx") == 1


async def test_one_router_included_under_two_prefixes_keeps_both_templates() -> None:
    """The same APIRouter mounted twice is told apart by its prefix, not by its route object."""
    m = Monitor()
    app = FastAPI()
    shared = APIRouter()

    @shared.get("/ping/{n}")
    async def ping(n: int) -> dict[str, int]:
        return {"n": n}

    app.include_router(shared, prefix="/a")
    app.include_router(shared, prefix="/b")
    app.add_middleware(PerflayerMiddleware, monitor=m)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/a/ping/1")).json() == {"n": 1}
        assert (await c.get("/b/ping/2")).json() == {"n": 2}
        assert (await c.get("/b/ping/3")).json() == {"n": 3}
    assert count(m, "GET", "/a/ping/{n}", "2xx") == 1
    assert count(m, "GET", "/b/ping/{n}", "2xx") == 2
