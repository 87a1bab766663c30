"""HTTP: the threaded server, bearer token, content negotiation, ASGI mount, prometheus bridge."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount

from perflayer.integrations.asgi import monitor_app
from perflayer.integrations.prometheus import PerflayerCollector, register
from perflayer.monitor import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    Monitor,
    MonitorServer,
    lint,
)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """GET url; return (status, headers, body) even for error statuses."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[Monitor, MonitorServer]]:
    """A Monitor with data, served on a free loopback port with a token."""
    m = Monitor()
    m.counter("perflayer_req_total", "Requests.", ("code",)).labels("200").inc(7)
    m.histogram("perflayer_lat_seconds", "Latency.").observe(0.02)
    srv = m.serve(host="127.0.0.1", port=0, token="s3cret", interval=60)
    try:
        yield m, srv
    finally:
        m.stop()


AUTH = {"Authorization": "Bearer s3cret"}


def test_token_required_everywhere(served: tuple[Monitor, MonitorServer]) -> None:
    """Every path answers 401 without the bearer token, or with a wrong one."""
    _, srv = served
    for path in ("/metrics", "/health", "/alerts", "/dashboard", "/api/series"):
        status, headers, _ = get(srv.url + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert get(srv.url + path, {"Authorization": "Bearer nope"})[0] == 401
    assert get(srv.url + "/dashboard?token=s3cret")[0] == 200  # a browser can open the page
    assert get(srv.url + "/metrics?token=s3cret")[0] == 401  # but data needs the header


def test_metrics_content_negotiation(served: tuple[Monitor, MonitorServer]) -> None:
    """/metrics speaks 0.0.4 by default and OpenMetrics when asked; both are lint-clean."""
    _, srv = served
    status, headers, body = get(srv.url + "/metrics", AUTH)
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE_TEXT
    assert 'perflayer_req_total{code="200"} 7.0' in body
    assert lint(body) == []
    accept = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
    status, headers, body = get(srv.url + "/metrics", {**AUTH, "Accept": accept})
    assert headers["Content-Type"] == CONTENT_TYPE_OPENMETRICS
    assert body.endswith("# EOF\n") and lint(body, openmetrics=True) == []


def test_health_alerts_and_404(served: tuple[Monitor, MonitorServer]) -> None:
    """/health is 200 when ok and 503 when failing; /alerts lists rules; unknown paths 404."""
    m, srv = served
    status, _, body = get(srv.url + "/health", AUTH)
    assert status == 200 and json.loads(body)["status"] == "ok"
    m.add_check("db", lambda: (False, "down"), timeout=30)
    status, _, body = get(srv.url + "/health", AUTH)
    assert status == 503 and json.loads(body)["checks"]["db"]["detail"] == "down"
    m.add_alert(name="A", metric="perflayer_req_total", threshold=5)
    m.evaluate()
    status, _, body = get(srv.url + "/alerts", AUTH)
    alerts = json.loads(body)["data"]["alerts"]
    assert status == 200 and alerts[0]["name"] == "A" and alerts[0]["state"] == "firing"
    assert get(srv.url + "/nope", AUTH)[0] == 404
    req = urllib.request.Request(srv.url + "/metrics", data=b"x", headers=AUTH, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    e.value.close()
    assert e.value.code == 405


def test_dashboard_is_self_contained(served: tuple[Monitor, MonitorServer]) -> None:
    """The dashboard HTML loads nothing from the network: no external src/href, no CDN."""
    _, srv = served
    status, headers, body = get(srv.url + "/dashboard", AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<canvas" in body or "createElement" in body
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body)
    assert "http://" not in body and "https://" not in body


def test_api_series_has_rates_and_quantiles(served: tuple[Monitor, MonitorServer]) -> None:
    """/api/series reports each counter's total and each histogram's p50/p99."""
    _, srv = served
    data = json.loads(get(srv.url + "/api/series", AUTH)[2])
    rates = {r["name"]: r for r in data["rates"]}
    assert rates["perflayer_req_total"]["total"] == 7.0
    lat = {x["name"]: x for x in data["latencies"]}["perflayer_lat_seconds"]
    assert lat["count"] == 1 and lat["p99"] == pytest.approx(0.02, rel=0.01)


def test_serve_without_token_and_default_loopback() -> None:
    """Without a token everything is open; the server binds where told (loopback here)."""
    m = Monitor()
    srv = m.serve(port=0, interval=60)
    try:
        assert srv.host == "127.0.0.1"
        assert get(srv.url + "/metrics")[0] == 200
        status, _, body = get(srv.url + "/")
        assert (
            status == 200 and "perflayer monitor" in body
        )  # urllib follows the redirect to /dashboard
    finally:
        m.stop()


async def test_asgi_app_mounted_in_starlette() -> None:
    """The ASGI app serves the same endpoints under a Starlette Mount, with the token."""
    m = Monitor()
    m.counter("perflayer_req_total", "Requests.").inc(3)
    app = Starlette(routes=[Mount("/monitor", app=monitor_app(m, token="t"))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.get("/monitor/metrics")
        assert r.status_code == 401
        r = await client.get("/monitor/metrics", headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and "perflayer_req_total 3.0" in r.text
        assert r.headers["content-type"] == CONTENT_TYPE_TEXT
        r = await client.get(
            "/monitor/metrics",
            headers={"Authorization": "Bearer t", "Accept": "application/openmetrics-text"},
        )
        assert r.text.endswith("# EOF\n")
        r = await client.get("/monitor/health", headers={"Authorization": "Bearer t"})
        assert r.json()["status"] == "ok"
        r = await client.get("/monitor/dashboard?token=t")
        assert r.status_code == 200 and "perflayer monitor" in r.text
        r = await client.get("/monitor/", headers={"Authorization": "Bearer t"})
        assert r.status_code == 302 and r.headers["location"] == "/monitor/dashboard"


def test_prometheus_client_bridge() -> None:
    """A prometheus_client registry's generate_latest includes perflayer's metrics."""
    m = Monitor()
    m.counter("perflayer_hits_total", "Hits.", ("level",)).labels("l1").inc(4)
    m.gauge("perflayer_bytes", "Bytes.").set(512)
    h = m.histogram("perflayer_lat_seconds", "Latency.", buckets=(0.1, 1.0))
    h.observe(0.05)
    h.observe(0.5)
    reg = CollectorRegistry()
    from prometheus_client import Counter as PCounter

    PCounter("app_requests", "The app's own counter.", registry=reg).inc()
    collector = register(m, reg)
    assert isinstance(collector, PerflayerCollector)
    text = generate_latest(reg).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["app_requests"].samples[0].value == 1.0
    assert {
        s.labels["level"]: s.value
        for s in fams["perflayer_hits"].samples
        if s.name.endswith("_total")
    } == {"l1": 4.0}
    assert fams["perflayer_bytes"].samples[0].value == 512.0
    lat = {(s.name, s.labels.get("le")): s.value for s in fams["perflayer_lat_seconds"].samples}
    assert lat[("perflayer_lat_seconds_bucket", "0.1")] == 1.0
    assert lat[("perflayer_lat_seconds_bucket", "+Inf")] == 2.0
    assert lat[("perflayer_lat_seconds_count", None)] == 2.0
    assert lint(text) == []
    # live: a later increment shows up at the next scrape
    m.counter("perflayer_hits_total", "Hits.", ("level",)).labels("l1").inc()
    assert 'perflayer_hits_total{level="l1"} 5.0' in generate_latest(reg).decode()
