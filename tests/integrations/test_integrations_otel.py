"""register_otel against the real OpenTelemetry SDK, read with InMemoryMetricReader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum

from perflayer.errors import ConfigError
from perflayer.integrations.otel import OTelBridge, register_otel
from perflayer.monitor import Monitor


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """Yield an in-memory reader on a fresh SDK MeterProvider, shut down afterwards."""
    r = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[r])
    r.provider = provider  # type: ignore[attr-defined]
    yield r
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    """Collect once; return {metric name: Metric}."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        mt.name: mt for rm in data.resource_metrics for sm in rm.scope_metrics for mt in sm.metrics
    }


def points(metric: Any) -> dict[tuple[tuple[str, str], ...], float]:
    """Return {sorted attributes: value} of a metric's data points."""
    return {tuple(sorted(p.attributes.items())): p.value for p in metric.data.data_points}


def test_counters_and_gauges_export_real_values(reader: InMemoryMetricReader) -> None:
    """Counters become monotonic cumulative sums, gauges gauges, with labels as attributes."""
    m = Monitor()
    c = m.counter("perflayer_jobs_total", "Jobs.", labelnames=("kind",))
    c.labels("a").inc(3)
    c.labels("b").inc()
    g = m.gauge("perflayer_queue_bytes", "Bytes queued.")
    g.set(1024)
    m.gauge_callback("perflayer_workers", "Workers.", lambda: {("x",): 4.0}, labelnames=("pool",))
    m.counter_callback("perflayer_ticks_total", "Ticks.", lambda: 11.0)
    register_otel(reader.provider, m)  # type: ignore[attr-defined]
    got = collect(reader)
    jobs = got["perflayer_jobs"]
    assert isinstance(jobs.data, Sum) and jobs.data.is_monotonic
    assert points(jobs) == {(("kind", "a"),): 3.0, (("kind", "b"),): 1.0}
    assert isinstance(got["perflayer_queue_bytes"].data, Gauge)
    assert got["perflayer_queue_bytes"].unit == "By"
    assert points(got["perflayer_queue_bytes"]) == {(): 1024.0}
    assert points(got["perflayer_workers"]) == {(("pool", "x"),): 4.0}
    assert points(got["perflayer_ticks"]) == {(): 11.0}
    assert got["perflayer_jobs"].description == "Jobs."
    # values are read at collection time: later changes show up at the next collection
    c.labels("a").inc(2)
    g.set(7)
    got = collect(reader)
    assert points(got["perflayer_jobs"])[(("kind", "a"),)] == 5.0
    assert points(got["perflayer_queue_bytes"]) == {(): 7.0}


def test_histograms_export_count_sum_buckets_and_quantiles(reader: InMemoryMetricReader) -> None:
    """A histogram exports _count, _sum, cumulative _bucket counters and quantile gauges."""
    m = Monitor()
    h = m.histogram("perflayer_op_seconds", "Op latency.", labelnames=("op",))
    for ms in range(1, 101):
        h.labels("get").observe(ms / 1000)
    h.labels("set").observe(0.2)
    register_otel(reader.provider, m, quantiles=(0.5, 0.99))  # type: ignore[attr-defined]
    got = collect(reader)
    get = (("op", "get"),)
    assert points(got["perflayer_op_seconds_count"]) == {get: 100, (("op", "set"),): 1}
    assert math.isclose(points(got["perflayer_op_seconds_sum"])[get], 5.05, rel_tol=1e-9)
    buckets = points(got["perflayer_op_seconds_bucket"])
    assert buckets[(("le", "0.05"), ("op", "get"))] == 50
    assert buckets[(("le", "+Inf"), ("op", "get"))] == 100
    q = points(got["perflayer_op_seconds"])
    assert isinstance(got["perflayer_op_seconds"].data, Gauge)
    assert got["perflayer_op_seconds"].unit == "s"
    assert math.isclose(q[(("op", "get"), ("quantile", "0.5"))], 0.050, rel_tol=0.02)
    assert math.isclose(q[(("op", "get"), ("quantile", "0.99"))], 0.099, rel_tol=0.02)
    assert math.isclose(q[(("op", "set"), ("quantile", "0.99"))], 0.2, rel_tol=0.02)


def test_sync_exports_families_added_later(reader: InMemoryMetricReader) -> None:
    """sync() creates instruments for families registered after register_otel, once each."""
    m = Monitor()
    m.counter("perflayer_a_total", "A.").inc()
    bridge = register_otel(reader.provider, m)  # type: ignore[attr-defined]
    assert bridge.exported == {"perflayer_a_total"}
    m.gauge("perflayer_b", "B.").set(2)
    assert bridge.sync() == ["perflayer_b"]
    assert bridge.sync() == []
    got = collect(reader)
    assert points(got["perflayer_b"]) == {(): 2.0}
    assert points(got["perflayer_otel_exported_families"]) == {(): 2.0}


def test_new_families_are_picked_up_by_collections(reader: InMemoryMetricReader) -> None:
    """Without sync(), a collection notices a new family and the next ones export it."""
    m = Monitor()
    bridge = register_otel(reader.provider, m)  # type: ignore[attr-defined]
    m.counter("perflayer_late_total", "Late.").inc(4)
    first = collect(reader)
    assert "perflayer_late" not in first  # instruments cannot be created mid-collection
    assert bridge.wait_synced(10.0)
    assert points(collect(reader)["perflayer_late"]) == {(): 4.0}


def test_close_silences_the_bridge(reader: InMemoryMetricReader) -> None:
    """After close() the instruments report no data points."""
    m = Monitor()
    m.counter("perflayer_c_total", "C.").inc()
    bridge = register_otel(reader.provider, m)  # type: ignore[attr-defined]
    assert points(collect(reader)["perflayer_c"]) == {(): 1.0}
    bridge.close()
    assert bridge.closed
    data = reader.get_metrics_data()
    names = (
        set()
        if data is None
        else {
            mt.name
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for mt in sm.metrics
            if mt.data.data_points
        }
    )
    assert "perflayer_c" not in names


def test_default_monitor_and_global_provider() -> None:
    """Without arguments the default monitor and the global meter provider are used."""
    from perflayer.monitor import default

    bridge = register_otel()
    assert isinstance(bridge, OTelBridge) and bridge.monitor is default()
    bridge.close()


@pytest.mark.parametrize(
    ("kwargs", "exc", "named"),
    [
        ({"quantiles": (0.5, 1.5)}, ConfigError, "1.5"),
        ({"quantiles": ("p99",)}, ConfigError, "'p99'"),
        ({"meter_provider": "nope"}, TypeError, "'nope'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, Any], exc: type, named: str) -> None:
    """Misuse raises a builtin-compatible error whose message names the bad value."""
    kwargs.setdefault("monitor", Monitor())
    with pytest.raises(exc, match=named):
        register_otel(**kwargs)


def test_name_clashes_skip_the_later_family(
    reader: InMemoryMetricReader, caplog: pytest.LogCaptureFixture
) -> None:
    """A counter x_total and a gauge x map to one OTel name: the first by name wins, logged."""
    m = Monitor()
    m.counter("perflayer_dup_total", "Counter.").inc(5)
    m.gauge("perflayer_dup", "Gauge.").set(1)
    bridge = register_otel(reader.provider, m)  # type: ignore[attr-defined]
    assert bridge.exported == {"perflayer_dup"}  # families are exported in name order
    got = collect(reader)
    assert isinstance(got["perflayer_dup"].data, Gauge)
    assert points(got["perflayer_dup"]) == {(): 1.0}
    assert any("'perflayer_dup_total'" in r.getMessage() for r in caplog.records)


async def test_http_middleware_metrics_reach_opentelemetry(reader: InMemoryMetricReader) -> None:
    """Requests timed by PerflayerMiddleware show up in OTel with the route template."""
    import httpx
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from perflayer.integrations.asgi import PerflayerMiddleware

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi " + request.path_params["name"])

    m = Monitor()
    app = Starlette(
        routes=[Route("/hello/{name}", hello)],
        middleware=[Middleware(PerflayerMiddleware, monitor=m)],
    )
    bridge = register_otel(reader.provider, m)  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for name in ("ann", "bob", "cy"):
            assert (await c.get(f"/hello/{name}")).text == f"hi {name}"
    # Starlette builds its middleware stack at the first request: the families are new now
    assert sorted(bridge.sync()) == [
        "perflayer_http_request_duration_seconds",
        "perflayer_http_requests_in_progress",
        "perflayer_http_requests_total",
    ]
    got = collect(reader)
    key = (("method", "GET"), ("route", "/hello/{name}"), ("status_class", "2xx"))
    assert points(got["perflayer_http_requests"]) == {key: 3.0}
    assert points(got["perflayer_http_request_duration_seconds_count"]) == {key: 3}
    assert points(got["perflayer_http_requests_in_progress"]) == {(): 0.0}
