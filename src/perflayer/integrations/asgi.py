"""An ASGI app serving a Monitor's /metrics, /health, /alerts and /dashboard.

Mount it in Starlette or FastAPI::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from perflayer.integrations.asgi import monitor_app

    app = Starlette(routes=[Mount("/monitor", app=monitor_app())])
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from perflayer.monitor._http import handle

if TYPE_CHECKING:
    from perflayer.monitor import Monitor

__all__ = ["MonitorASGI", "monitor_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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
