"""The dashboard in real headless Chromium: charts draw the monitor's real numbers."""

from __future__ import annotations

import os
import random
import threading
from typing import Any

import pytest

from perflayer.monitor import Monitor

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.slow
def test_dashboard_draws_live_rates_quantiles_and_alerts() -> None:
    """Rates and p50/p99 charts draw points whose values match the monitor; firing alerts show."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed at /usr/bin/chromium: run `make test`")
    from playwright.sync_api import sync_playwright

    m = Monitor(window_step=0.2)
    req = m.counter("perflayer_requests_total", "Requests.", ("code",))
    lat = m.histogram("perflayer_request_seconds", "Latency.")
    m.add_alert(
        name="SlowRequests",
        metric="perflayer_request_seconds",
        aggregation="quantile",
        q=0.99,
        window=5,
        threshold=0.05,
        # the table is checked after the traffic stops: hold the alert firing until then,
        # however long a loaded machine takes to get there (the 5 s window would empty)
        keep_firing_for=3600,
    )
    stop = threading.Event()

    def traffic() -> None:
        rng = random.Random(5)
        while not stop.is_set():
            for _ in range(50):
                req.labels("200").inc()
                lat.observe(rng.lognormvariate(-4, 1.0))
            stop.wait(0.02)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    srv = m.serve(port=0, token="tok", interval=0.1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=ARGS, headless=True, timeout=120_000
            )
            try:
                page = browser.new_page()
                # bounds for a loaded machine (chromium shares 2 cores with the suite)
                page.set_default_timeout(120_000)
                page.goto(f"{srv.url}/dashboard?token=tok&refresh=250")
                page.wait_for_function(
                    """() => {
                        const d = window.perflayerDashboard;
                        if (!d || d.ticks < 2) return false;
                        const r = d.charts["perflayer_requests_total"];
                        const l = d.charts["perflayer_request_seconds"];
                        return r && l && r.drawn >= 4 && l.drawn >= 4
                            && d.alerts.some(
                                a => a.name === "SlowRequests" && a.state === "firing");
                    }""",
                    timeout=120_000,
                )
                # The live chart shows the traffic's real rate: positive, and plotted.
                live: dict[str, Any] = page.evaluate("window.perflayerDashboard.charts")
                rate_points = [v for _, v in live["perflayer_requests_total"]["points"]]
                assert max(rate_points) > 0
                # Stop the traffic, let the page refresh, then the numbers must be the monitor's.
                stop.set()
                t.join()
                ticks = page.evaluate("window.perflayerDashboard.ticks")
                page.wait_for_function(
                    f"window.perflayerDashboard.ticks >= {ticks + 2}", timeout=120_000
                )
                d: dict[str, Any] = page.evaluate("window.perflayerDashboard")
                charts = d["charts"]
                assert charts["perflayer_requests_total"]["total"] == req.get()
                assert charts["perflayer_request_seconds"]["count"] == lat.count
                assert charts["perflayer_request_seconds"]["p50"] == lat.quantile(0.5)
                assert charts["perflayer_request_seconds"]["p99"] == lat.quantile(0.99)
                # Every plotted p99 is a real quantile: within the range of observed values.
                p99s = [
                    pt[2]
                    for pt in charts["perflayer_request_seconds"]["points"]
                    if pt[2] is not None
                ]
                assert p99s and all(0 < v < 10 for v in p99s)
                # The canvases really have line pixels in the chart colours.
                painted = page.evaluate(
                    """() => ['rate-perflayer_requests_total',
                              'lat-perflayer_request_seconds'].map(id => {
                        const c = document.getElementById(id).querySelector('canvas');
                        const g = c.getContext('2d');
                        const px = g.getImageData(0, 0, c.width, c.height).data;
                        let n = 0;
                        for (let i = 0; i < px.length; i += 4)
                            if (px[i+3] > 0 && px[i+2] > 200 && px[i] < 120) n++;   // the blue line
                        return [c.dataset.points, n];
                    })"""
                )
                assert len(painted) == 2
                assert all(int(points) >= 4 and n > 20 for points, n in painted), painted
                # The firing alert is in the alerts table.
                rows = page.locator("#alerts tbody tr.firing").all_inner_texts()
                assert any("SlowRequests" in r for r in rows)
            finally:
                browser.close()
    finally:
        stop.set()
        m.stop()
