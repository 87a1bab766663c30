"""ASGI: a middleware timing every request per route (with optional load shedding), and an
app serving a Monitor's /metrics, /health, /alerts and /dashboard.

Use both in Starlette or FastAPI::

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount
    from perflayer.integrations.asgi import PerflayerMiddleware, monitor_app

    app = Starlette(
        routes=[Mount("/monitor", app=monitor_app())],
        middleware=[Middleware(PerflayerMiddleware)],
    )

``monitor_app`` is plain ASGI; ``PerflayerMiddleware`` needs starlette (``perflayer[asgi]``)
for route templates. Neither is imported by ``import perflayer``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from perflayer.integrations._compat import require
from perflayer.monitor._http import handle
from perflayer.response import Priority

if TYPE_CHECKING:
    from perflayer.monitor import Monitor
    from perflayer.response import Response, ResponseOptimizer

__all__ = [
    "DEFAULT_PRIORITY_HEADER",
    "UNMATCHED_ROUTE",
    "MonitorASGI",
    "PerflayerMiddleware",
    "monitor_app",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("perflayer.integrations")
_logged: set[str] = set()


def _log_once(msg: str, exc_info: bool = False, *, key: str | None = None) -> None:
    """Log ``msg`` the first time ``key`` (default: the message) is seen."""
    k = msg if key is None else key
    if k not in _logged:
        _logged.add(k)
        log.warning(msg, exc_info=exc_info)


class MonitorASGI:
    """The ASGI app; requests run in a worker thread (health checks may block up to a timeout)."""

    def __init__(self, monitor: Monitor | None = None, *, token: str | None = None) -> None:
        from perflayer.monitor import default

        self.monitor = monitor if monitor is not None else default()
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection."""
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "/")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        qs: bytes = scope.get("query_string", b"")
        target = path + ("?" + qs.decode("latin-1") if qs else "")
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        status, hdrs, body = await asyncio.to_thread(
            handle, self.monitor, scope.get("method", "GET"), target, headers, self.token
        )
        if "Location" in hdrs and hdrs["Location"].startswith("/"):
            hdrs["Location"] = root + hdrs["Location"]
        raw = [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )


def monitor_app(monitor: Monitor | None = None, *, token: str | None = None) -> MonitorASGI:
    """Return an ASGI app for ``monitor`` (the default Monitor when None)."""
    return MonitorASGI(monitor, token=token)


# --------------------------------------------------------------------------------- middleware

_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT")
)
#: Route label of requests that matched no route (404s, scanners): never the raw path.
UNMATCHED_ROUTE = "__unmatched__"
#: The default request header carrying a priority name or number (``high``, ``1``).
DEFAULT_PRIORITY_HEADER = "x-priority"
_JSON = (b"content-type", b"application/json")


def _require_starlette() -> Any:
    """Return ``starlette.routing`` or raise an ImportError naming the extra."""
    return require("starlette.routing", "asgi", "PerflayerMiddleware (route templates)")


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


class _Exchange:
    """One request's progress: whether the app ran and the status it started a response with."""

    __slots__ = ("ran", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.ran = False

    async def watch(self, message: MutableMapping[str, Any]) -> None:
        """Pass ``message`` on, noting the response status."""
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self.send(message)


class PerflayerMiddleware:
    """ASGI middleware: per-route latency and counts into a Monitor, optional load shedding.

    Every HTTP request is counted in ``perflayer_http_requests_total`` and timed in
    ``perflayer_http_request_duration_seconds``, labelled by method, route *template*
    (``/items/{item_id}``, never the raw path) and status class (``2xx``). With an
    ``optimizer`` each request runs through ``ResponseOptimizer.submit`` (downstream
    ``downstream``, priority from ``priority_header``, ``deadline_ms``): a shed request gets
    ``503`` with ``Retry-After`` and a JSON ``perflayer.response.Response`` body.

    >>> from starlette.applications import Starlette
    >>> from starlette.middleware import Middleware
    >>> from perflayer.monitor import Monitor
    >>> app = Starlette(middleware=[Middleware(PerflayerMiddleware, monitor=Monitor())])
    """

    def __init__(
        self,
        app: ASGIApp,
        monitor: Monitor | None = None,
        optimizer: ResponseOptimizer | None = None,
        *,
        priority_header: str | None = DEFAULT_PRIORITY_HEADER,
        default_priority: Priority | str | int = "normal",
        deadline_ms: float | None = None,
        downstream: str = "http",
        retry_after: int = 1,
    ) -> None:
        from perflayer.errors import ConfigError

        self._routing = _require_starlette()
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, got {app!r}")
        if optimizer is not None and not callable(getattr(optimizer, "submit", None)):
            raise TypeError(f"optimizer must be a ResponseOptimizer, got {optimizer!r}")
        if priority_header is not None and (
            not isinstance(priority_header, str) or not priority_header.strip()
        ):
            raise ConfigError(
                f"priority_header must be a header name or None, got {priority_header!r}"
            )
        if deadline_ms is not None and (
            isinstance(deadline_ms, bool)
            or not isinstance(deadline_ms, (int, float))
            or not deadline_ms > 0
            or deadline_ms == float("inf")
        ):
            raise ConfigError(f"deadline_ms must be a positive number or None, got {deadline_ms!r}")
        if not isinstance(downstream, str) or not downstream:
            raise ConfigError(f"downstream must be a non-empty str, got {downstream!r}")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ConfigError(
                f"retry_after must be a non-negative int (seconds), got {retry_after!r}"
            )
        self.app = app
        self.optimizer = optimizer
        if monitor is None:
            from perflayer.monitor import default

            monitor = optimizer.monitor if optimizer is not None else default()
        self.monitor = monitor
        self.priority_header = (
            None if priority_header is None else priority_header.strip().lower().encode("latin-1")
        )
        self.default_priority = Priority.parse(default_priority)
        self.deadline_ms = None if deadline_ms is None else float(deadline_ms)
        self.downstream = downstream
        self.retry_after = retry_after
        labels = ("method", "route", "status_class")
        self._requests = monitor.counter(
            "perflayer_http_requests_total",
            "HTTP requests by method, route template and status class.",
            labels,
        )
        self._duration = monitor.histogram(
            "perflayer_http_request_duration_seconds",
            "HTTP request latency (first byte in to last byte out) by method, route and status.",
            labels,
        )
        self._inprogress = monitor.gauge(
            "perflayer_http_requests_in_progress", "HTTP requests being served right now."
        )
        # why: children are looked up once per (method, route, status class); the label set
        # is bounded (10 methods x the app's routes x 6 classes), so the dict stays small.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (non-HTTP scopes pass straight through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        # why: routers rewrite root_path and path_params in place; keep the two values the
        # route template is matched against (a whole scope copy per request costs more).
        arrived = (scope.get("root_path", ""), scope.get("path_params"))
        ex = _Exchange(send)
        gauge = self._inprogress
        gauge.inc()
        try:
            if self.optimizer is None:
                ex.ran = True
                await self.app(scope, receive, ex.watch)
            else:
                await self._optimized(scope, receive, ex)
        finally:
            gauge.dec()
            self._record(arrived, scope, ex.status or 500, time.perf_counter() - t0)

    async def _call_app(self, scope: Scope, receive: Receive, ex: _Exchange) -> None:
        ex.ran = True
        await self.app(scope, receive, ex.watch)

    async def _optimized(self, scope: Scope, receive: Receive, ex: _Exchange) -> None:
        assert self.optimizer is not None
        r: Response[None] = await self.optimizer.submit(
            self._call_app,
            scope,
            receive,
            ex,
            priority=self._priority(scope),
            deadline_ms=self.deadline_ms,
            downstream=self.downstream,
        )
        if r.ok:
            return
        if not r.shed and not r.timed_out:
            if r.exception is not None:
                raise r.exception
            raise RuntimeError(f"request failed: {r.error}")  # pragma: no cover - defensive
        if ex.status:
            # The response had started when the deadline cancelled it: nothing honest can be
            # sent now (a 504 is too late, a clean end would pass a truncated body as whole).
            # Returning unfinished makes the server abort the connection.
            return
        body = r.to_json().encode()
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if ex.ran:
            status = 504  # it ran and missed its deadline
        else:
            status = 503  # shed, or waited in the queue until it could not finish in time
            headers.append((b"retry-after", str(self.retry_after).encode()))
        await ex.watch({"type": "http.response.start", "status": status, "headers": headers})
        if scope.get("method") == "HEAD":
            body = b""  # same headers (and content-length) as GET, no body
        await ex.watch({"type": "http.response.body", "body": body})

    def _priority(self, scope: Scope) -> Priority:
        want = self.priority_header
        if want is not None:
            for k, v in scope.get("headers", ()):
                if k.lower() == want:
                    try:
                        return Priority.parse(v.decode("latin-1"))
                    except ValueError:
                        # keyed by header name: client-chosen values must not grow the set
                        _log_once(
                            f"ignored bad {want.decode()} header value {v!r} (logged once)",
                            key=f"bad priority header {want!r}",
                        )
                    break
        return self.default_priority

    def _record(self, arrived: tuple[str, Any], scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", "GET")).upper()
        if method not in _METHODS:
            method = "other"
        key = (method, self._route(arrived, scope), _status_class(status))
        ch = self._children.get(key)
        if ch is None:
            ch = self._children[key] = (self._requests.labels(*key), self._duration.labels(*key))
        ch[0].inc()
        ch[1].observe(seconds)

    def _route(self, arrived: tuple[str, Any], scope: Scope) -> str:
        """Return the route template of the request (``UNMATCHED_ROUTE`` if none matches)."""
        router = scope.get("router") or scope.get("app") or self.app
        routes = getattr(router, "routes", None)
        if not routes:
            return UNMATCHED_ROUTE
        try:
            flat, direct = _flatten(routes)
            # why: Starlette (1.x) leaves the route it picked in scope["route"]; a top-level
            # route's template is then one dict lookup instead of a regex per route.
            picked = scope.get("route")
            if picked is not None:
                t = direct.get(id(picked))
                if t is not None:
                    return t
            match_scope = dict(scope)
            match_scope["root_path"] = arrived[0]
            if arrived[1] is None:
                match_scope.pop("path_params", None)
            else:
                match_scope["path_params"] = arrived[1]
            return _template(self._routing, flat, match_scope) or UNMATCHED_ROUTE
        except Exception:  # degrade: a route whose matches() raises costs the label only
            _log_once("route template lookup failed", exc_info=True)
            return UNMATCHED_ROUTE


# Flattened route lists, by id of the routes list (checked against the list and its length):
# (routes, len, flat, {id(route object): template} of the unambiguous non-mount routes).
_flat_cache: dict[int, tuple[Any, int, list[Any], dict[int, str]]] = {}


def _flatten(routes: Any) -> tuple[list[Any], dict[int, str]]:
    """Return the matchable routes of ``routes`` (FastAPI >= 0.137 nests included routers)."""
    key = id(routes)
    hit = _flat_cache.get(key)
    if hit is not None and hit[0] is routes and hit[1] == len(routes):
        return hit[2], hit[3]
    fastapi_routing = sys.modules.get("fastapi.routing")  # never import FastAPI ourselves
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    flat: list[Any] = []
    if contexts is not None:
        flat = [getattr(c, "starlette_route", None) or c for c in contexts(routes)]
    else:
        for r in routes:
            eff = getattr(r, "effective_route_contexts", None)
            if eff is None:
                flat.append(r)
            else:
                flat.extend(getattr(c, "starlette_route", None) or c for c in eff())
    direct: dict[int, str] = {}
    seen: set[int] = set()
    routing = sys.modules.get("starlette.routing")
    for e in flat:
        kind = getattr(e, "original_route", e)
        path = getattr(e, "path", None)
        if routing is None or isinstance(kind, (routing.Mount, routing.Host)):
            continue
        k = id(kind)
        if k in seen or not isinstance(path, str):
            direct.pop(k, None)  # one route object under two prefixes: match it instead
            continue
        seen.add(k)
        direct[k] = path
    if len(_flat_cache) > 256:
        _flat_cache.clear()
    # why: flattening FastAPI's included routers builds objects per route; apps rarely add
    # routes after start-up, so the flat list is kept until the route list changes length.
    _flat_cache[key] = (routes, len(routes), flat, direct)
    return flat, direct


def _template(routing: Any, routes: Any, scope: Scope) -> str | None:
    """Return the template of the route ``scope`` matches in ``routes``, walking mounts."""
    full, partial = routing.Match.FULL, routing.Match.PARTIAL
    found: tuple[Any, Scope] | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match == full:
            found = (route, child)
            break
        if match == partial and found is None:
            found = (route, child)  # e.g. a 405: the path matched, the method did not
    if found is None:
        return None
    route, child = found
    path = getattr(route, "path", None)
    prefix = path if isinstance(path, str) else ""
    inner = getattr(route, "routes", None)
    if inner:  # a Mount or Host of a router: the rest of the template is inside
        sub = dict(scope)
        sub.update(child)
        t = _template(routing, _flatten(inner)[0], sub)
        if t is not None:
            return prefix + t
    kind = getattr(route, "original_route", route)  # FastAPI's RouteContext wraps the route
    if isinstance(kind, routing.Mount):
        return prefix + "/{path}"
    if isinstance(kind, routing.Host):
        return None
    return path if isinstance(path, str) else None
