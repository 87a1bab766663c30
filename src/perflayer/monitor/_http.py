"""HTTP: /metrics, /health, /alerts, /dashboard and /api/series, on stdlib http.server or ASGI.

``handle()`` is the one request handler; ``MonitorServer`` runs it on a ``ThreadingHTTPServer``
in a daemon thread and ``perflayer.integrations.asgi`` wraps it as an ASGI app.
"""

from __future__ import annotations

import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from perflayer.monitor._core import Counter, Histogram, _CallbackFamily
from perflayer.monitor._exposition import negotiate, render
from perflayer.monitor._sketch import Sketch
from perflayer.monitor._window import per_second

if TYPE_CHECKING:
    from perflayer.monitor._core import Monitor

__all__ = ["MonitorServer", "dashboard_data", "dashboard_html", "handle"]

Response = tuple[int, dict[str, str], bytes]

_JSON = "application/json; charset=utf-8"


def dashboard_html() -> str:
    """Return the self-contained dashboard page shipped in the package."""
    return resources.files("perflayer.monitor").joinpath("dashboard.html").read_text("utf-8")


def _authorized(
    token: str | None, headers: dict[str, str], query: dict[str, list[str]], path: str
) -> bool:
    if not token:
        return True
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and hmac.compare_digest(
        auth[7:].strip().encode(), token.encode()
    ):
        return True
    # The dashboard page (only the page) may carry the token in its URL so a browser can open it;
    # its script then sends it as a Bearer header on every data request.
    if path == "/dashboard":
        q = query.get("token", [""])[0]
        return hmac.compare_digest(q.encode(), token.encode())
    return False


def handle(
    monitor: Monitor, method: str, target: str, headers: dict[str, str], token: str | None = None
) -> Response:
    """Answer one request; ``headers`` keys are lower-case."""
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    query = parse_qs(parts.query)
    if not _authorized(token, headers, query, path):
        return (
            401,
            {"WWW-Authenticate": 'Bearer realm="perflayer"', "Content-Type": _JSON},
            (b'{"error": "missing or wrong bearer token"}'),
        )
    if method not in ("GET", "HEAD"):
        return (
            405,
            {"Allow": "GET, HEAD", "Content-Type": _JSON},
            b'{"error": "method not allowed"}',
        )
    if path == "/metrics":
        om, ctype = negotiate(headers.get("accept"))
        return 200, {"Content-Type": ctype}, render(monitor, openmetrics=om).encode()
    if path == "/health":
        h = monitor.health()
        code = 503 if h["status"] == "failing" else 200
        return code, {"Content-Type": _JSON}, json.dumps(h).encode()
    if path == "/alerts":
        body = {"status": "success", "data": {"alerts": monitor.alerts()}}
        return 200, {"Content-Type": _JSON}, json.dumps(body).encode()
    if path == "/api/series":
        return (
            200,
            {"Content-Type": _JSON, "Cache-Control": "no-store"},
            json.dumps(dashboard_data(monitor)).encode(),
        )
    if path == "/dashboard":
        return 200, {"Content-Type": "text/html; charset=utf-8"}, dashboard_html().encode()
    if path == "/":
        return 302, {"Location": "/dashboard", "Content-Type": "text/plain"}, b"see /dashboard\n"
    return 404, {"Content-Type": _JSON}, json.dumps({"error": f"no such path {path!r}"}).encode()


def _finite(v: float | None) -> float | None:
    if v is None or v != v or v in (float("inf"), float("-inf")):
        return None
    return v


def dashboard_data(monitor: Monitor) -> dict[str, Any]:
    """Return rates and p50/p99 over time per family, and the alerts, for the dashboard."""
    mono = time.monotonic()
    wall = time.time()

    def to_wall(t: float) -> float:
        return round(wall - (mono - t), 3)

    rates: list[dict[str, Any]] = []
    lats: list[dict[str, Any]] = []
    for m in monitor.metrics():
        if (
            isinstance(m, (Counter, _CallbackFamily))
            and m.type == "counter"
            and m._window is not None
        ):
            by_t: dict[float, float] = {}
            keys = [lv for lv, _ in m.series()]
            for key in keys:
                for t, v in _merged_history(
                    m._window.history(key, False), m._window.history(key, True)
                ):
                    by_t[t] = by_t.get(t, 0.0) + v
            pts = sorted(by_t.items())
            points = [
                [to_wall(t1), round(r, 6)]
                for (t0, v0), (t1, v1) in itertools.pairwise(pts)
                if (r := per_second(t0, v0, t1, v1)) is not None
            ]
            rates.append(
                {
                    "name": m.name,
                    "total": sum(v for _, v in m.series()),
                    "rate": points[-1][1] if points else None,
                    "points": points,
                }
            )
        elif isinstance(m, Histogram):
            snaps: dict[float, tuple[float, Sketch]] = {}
            for hc in m.all_series():
                if hc._window is None:
                    continue
                coarse = hc._window.history(False)
                fine = hc._window.history(True)
                start = fine[0][0] if fine else float("inf")
                for t, c, sk in [x for x in coarse if x[0] < start] + fine:
                    cur = snaps.get(t)
                    if cur is None:
                        acc = Sketch()
                        acc.merge(sk)
                        snaps[t] = (c, acc)
                    else:
                        cur[1].merge(sk)
                        snaps[t] = (cur[0] + c, cur[1])
            ordered = sorted(snaps.items())
            hpoints: list[list[float | None]] = []
            for (t0, (c0, s0)), (t1, (c1, s1)) in itertools.pairwise(ordered):
                if t1 <= t0:
                    continue
                d = s1.minus(s0)
                hpoints.append(
                    [
                        to_wall(t1),
                        _finite(d.quantile(0.5)),
                        _finite(d.quantile(0.99)),
                        round(max(c1 - c0, 0.0) / (t1 - t0), 6),
                    ]
                )
            lats.append(
                {
                    "name": m.name,
                    "count": m.count,
                    "p50": _finite(m.quantile(0.5)),
                    "p99": _finite(m.quantile(0.99)),
                    "points": hpoints,
                }
            )
    alerts = [a for a in monitor.alerts() if a["state"] in ("firing", "pending")]
    return {
        "now": wall,
        "step": monitor.window_step,
        "rates": rates,
        "latencies": lats,
        "alerts": alerts,
    }


def _merged_history(
    coarse: list[tuple[float, float]], fine: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    start = fine[0][0] if fine else float("inf")
    return [x for x in coarse if x[0] < start] + fine


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            code, hdrs, body = handle(
                self.server.monitor, self.command, self.path, headers, self.server.token
            )
        except Exception as e:  # degrade: a 500 with the error, never a dead server thread
            code, hdrs, body = 500, {"Content-Type": _JSON}, json.dumps({"error": str(e)}).encode()
        self.send_response(code)
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        """Answer GET."""
        self._answer()

    def do_HEAD(self) -> None:
        """Answer HEAD."""
        self._answer()

    def do_POST(self) -> None:
        """Answer POST with 405."""
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet (the monitor must not spam the app's stderr)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    monitor: Monitor
    token: str | None


class MonitorServer:
    """A running HTTP server for one Monitor; ``.port``, ``.url`` and ``.close()``."""

    def __init__(self, monitor: Monitor, host: str, port: int, *, token: str | None = None) -> None:
        self._srv = _Server((host, port), _Handler)
        self._srv.monitor = monitor
        self._srv.token = token
        self.host = host
        self.port: int = int(self._srv.server_address[1])
        self._thread = threading.Thread(
            target=self._srv.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="perflayer-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:9464``."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MonitorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
