"""Health checks (really called, with timeouts) and the sliding windows."""

from __future__ import annotations

import threading

import pytest

from perflayer.errors import ConfigError
from perflayer.monitor import Monitor

# Checks that must finish get timeout=30: the 1 s default is a real bound that a loaded
# machine can exceed once (a timed-out check is correctly reported failing).


def test_checks_are_really_called_each_time() -> None:
    """health() calls every registered check on every call."""
    m = Monitor()
    calls = []
    m.add_check("db", lambda: calls.append(1) or True, timeout=30)
    assert m.health()["status"] == "ok"
    assert m.health()["checks"]["db"]["ok"] is True
    assert len(calls) == 2


def test_check_results_and_statuses() -> None:
    """False, (False, detail) and raising are unhealthy; critical ones make the status failing."""
    m = Monitor()
    m.add_check("ok", lambda: None, timeout=30)
    m.add_check("cache", lambda: (False, "redis down"), critical=False, timeout=30)
    h = m.health()
    assert h["status"] == "degraded"
    assert h["checks"]["cache"] == {
        **h["checks"]["cache"],
        "ok": False,
        "detail": "redis down",
        "critical": False,
    }

    def boom() -> bool:
        raise OSError("disk gone")

    m.add_check("disk", boom, timeout=30)
    h = m.health()
    assert h["status"] == "failing"
    assert h["checks"]["disk"]["detail"] == "OSError: disk gone"
    m.remove_check("disk")
    assert m.health()["status"] == "degraded"
    m.stop()


def test_hung_check_times_out() -> None:
    """A check that hangs is reported as timed out after its timeout, not waited for."""
    m = Monitor()
    release = threading.Event()
    m.add_check("slow", lambda: release.wait(30), timeout=0.2)
    m.add_check("fast", lambda: True, timeout=30)
    h = m.health()
    release.set()
    assert h["checks"]["slow"]["ok"] is False
    assert "timed out after 0.2s" in h["checks"]["slow"]["detail"]
    assert h["checks"]["fast"]["ok"] is True
    assert h["status"] == "failing"
    m.stop()


async def test_async_check() -> None:
    """An async check is awaited (in a worker thread's own loop)."""
    m = Monitor()

    async def check() -> tuple[bool, str]:
        return False, "async says no"

    m.add_check("a", check, critical=False, timeout=30)
    h = m.health()
    assert h["checks"]["a"]["detail"] == "async says no"
    m.stop()


def test_health_reflects_firing_alerts() -> None:
    """A firing warning degrades health; a firing critical fails it."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, critical=10)
    g.set(5)
    m.evaluate(now=0)
    h = m.health()
    assert h["status"] == "degraded" and h["alerts"][0]["name"] == "A"
    g.set(50)
    m.evaluate(now=1)
    assert m.health()["status"] == "failing"


def test_check_misuse() -> None:
    """Bad check registrations raise, naming the value."""
    m = Monitor()
    with pytest.raises(TypeError, match="'x'"):
        m.add_check("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="-1"):
        m.add_check("x", lambda: True, timeout=-1)


def test_counter_rate_windows() -> None:
    """rate() over 1, 5 and 15 minutes uses the snapshot nearest to now - window."""
    m = Monitor()
    c = m.counter("perflayer_req_total", "doc")
    t = 0.0
    m.tick(t)
    # 10/s for 20 minutes, then 100/s for the last 2 minutes
    while t < 1200:
        t += 10
        c.inc(100)
        m.tick(t)
    while t < 1320:
        t += 10
        c.inc(1000)
        m.tick(t)
    assert m.rate("perflayer_req_total", 60, now=t) == pytest.approx(100.0)
    assert m.rate("perflayer_req_total", 300, now=t) == pytest.approx((120 * 100 + 180 * 10) / 300)
    assert m.rate("perflayer_req_total", 900, now=t) == pytest.approx((120 * 100 + 780 * 10) / 900)


def test_windowed_quantile_forgets_old_values() -> None:
    """A windowed quantile sees only recent observations; the all-time one sees everything."""
    m = Monitor()
    h = m.histogram("perflayer_lat_seconds", "doc")
    t = 0.0
    m.tick(t)
    for _ in range(60):  # 10 minutes of slow requests
        t += 10
        for _ in range(50):
            h.observe(1.0)
        m.tick(t)
    for _ in range(6):  # then one minute of fast ones
        t += 10
        for _ in range(50):
            h.observe(0.01)
        m.tick(t)
    assert m.quantile("perflayer_lat_seconds", 0.99, window=60, now=t) == pytest.approx(
        0.01, rel=0.01
    )
    assert m.quantile("perflayer_lat_seconds", 0.5, window=900, now=t) == pytest.approx(
        1.0, rel=0.01
    )
    assert h.quantile(0.5) == pytest.approx(1.0, rel=0.01)
    assert m.rate("perflayer_lat_seconds", 60, now=t) == pytest.approx(5.0)


def test_new_series_counts_from_zero() -> None:
    """A label set born between ticks has its whole value counted as increase."""
    m = Monitor()
    c = m.counter("perflayer_req_total", "doc", ("code",))
    m.tick(0)
    c.labels("500").inc(30)
    m.tick(10)
    assert m.rate("perflayer_req_total", 10, {"code": "500"}, now=10) == pytest.approx(3.0)


def test_window_memory_is_bounded() -> None:
    """Hours of ticks keep a fixed number of snapshots per series."""
    m = Monitor()
    c = m.counter("perflayer_req_total", "doc")
    h = m.histogram("perflayer_lat_seconds", "doc")
    t = 0.0
    for _ in range(2000):
        t += 10
        c.inc()
        h.observe(0.1)
        m.tick(t)
    rings = c._window._rings[()]
    assert len(rings.fine) <= 8 and len(rings.coarse) <= 17
    w = h._window
    assert w is not None
    assert len(w.history(True)) <= 8 and len(w.history(False)) <= 17
    assert w.nbytes() < 25 * 2 * 1024
