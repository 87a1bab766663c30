"""Alert rules: Prometheus states, for_, keep_firing_for, cooldown, escalation, handlers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.errors import ConfigError
from perflayer.monitor import (
    AlertRule,
    LoggingHandler,
    Monitor,
    Notification,
    WebhookHandler,
    alertmanager_payload,
)


def states(m: Monitor) -> dict[str, str]:
    """Return {alert name: state}."""
    return {a["name"]: a["state"] for a in m.alerts()}


def kinds(notes: list[Notification]) -> list[str]:
    """Return the kinds of notifications."""
    return [n.kind for n in notes]


def test_inactive_pending_firing_resolved() -> None:
    """A rule walks inactive -> pending -> firing -> resolved -> inactive as Prometheus does."""
    m = Monitor()
    g = m.gauge("perflayer_queue", "doc")
    m.add_alert(name="QueueHigh", metric="perflayer_queue", threshold=10, for_=30)
    assert kinds(m.evaluate(now=0)) == [] and states(m)["QueueHigh"] == "inactive"
    g.set(11)
    assert kinds(m.evaluate(now=10)) == [] and states(m)["QueueHigh"] == "pending"
    assert kinds(m.evaluate(now=39)) == [] and states(m)["QueueHigh"] == "pending"
    assert kinds(m.evaluate(now=40)) == ["firing"] and states(m)["QueueHigh"] == "firing"
    assert kinds(m.evaluate(now=50)) == []  # still firing: no repeat notification
    g.set(3)
    assert kinds(m.evaluate(now=60)) == ["resolved"] and states(m)["QueueHigh"] == "resolved"
    assert kinds(m.evaluate(now=70)) == [] and states(m)["QueueHigh"] == "inactive"


def test_pending_that_clears_never_notifies() -> None:
    """A condition that clears before for_ goes back to inactive silently."""
    m = Monitor()
    g = m.gauge("perflayer_queue", "doc")
    m.add_alert(name="Q", metric="perflayer_queue", threshold=10, for_=30)
    g.set(20)
    m.evaluate(now=0)
    g.set(0)
    assert kinds(m.evaluate(now=20)) == [] and states(m)["Q"] == "inactive"
    g.set(20)
    m.evaluate(now=25)
    assert kinds(m.evaluate(now=50)) == []  # the pending period restarted at 25
    assert kinds(m.evaluate(now=55)) == ["firing"]


def test_lower_than_direction() -> None:
    """op='<' fires when the value drops below the threshold."""
    m = Monitor()
    g = m.gauge("perflayer_hit_ratio", "doc")
    g.set(0.9)
    m.add_alert(name="LowHitRatio", metric="perflayer_hit_ratio", op="<", threshold=0.5)
    assert kinds(m.evaluate(now=0)) == []
    g.set(0.2)
    assert kinds(m.evaluate(now=1)) == ["firing"]
    g.set(0.7)
    assert kinds(m.evaluate(now=2)) == ["resolved"]


def test_detection_latency_is_at_most_for_plus_one_interval() -> None:
    """With evaluations every `interval`, firing is at most for_ + interval late."""
    for for_, interval, t_true in [
        (30.0, 5.0, 2.5),
        (7.0, 5.0, 0.1),
        (0.0, 1.0, 0.5),
        (12.0, 5.0, 4.99),
    ]:
        m = Monitor()
        g = m.gauge("perflayer_v", "doc")
        m.add_alert(name="A", metric="perflayer_v", threshold=1, for_=for_)
        am = m.alert_manager
        t = 0.0
        fired_at = None
        while t < 200 and fired_at is None:
            if t >= t_true:
                g.set(5)
            if "firing" in kinds(m.evaluate(now=t)):
                fired_at = t
            # the loop's own schedule: wake at the interval or at a pending for_ deadline
            d = am.next_deadline(t)
            t = min(t + interval, d + 0.001) if d is not None and d > t else t + interval
        assert fired_at is not None
        assert fired_at - t_true <= for_ + interval + 0.002, (for_, interval, fired_at)


def test_keep_firing_for() -> None:
    """keep_firing_for holds a firing alert after the condition clears, then resolves it."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, keep_firing_for=60)
    g.set(5)
    assert kinds(m.evaluate(now=0)) == ["firing"]
    g.set(0)
    assert kinds(m.evaluate(now=30)) == [] and states(m)["A"] == "firing"
    g.set(5)
    m.evaluate(now=40)  # true again: the hold restarts from here
    g.set(0)
    assert kinds(m.evaluate(now=90)) == [] and states(m)["A"] == "firing"
    assert kinds(m.evaluate(now=100)) == ["resolved"]


def test_cooldown_suppresses_flapping_but_not_escalation() -> None:
    """A re-fire within the cooldown is silent ; escalation always goes out."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, critical=10, cooldown=300)
    g.set(5)
    assert kinds(m.evaluate(now=0)) == ["firing"]
    g.set(0)
    assert kinds(m.evaluate(now=10)) == ["resolved"]
    g.set(5)
    assert kinds(m.evaluate(now=20)) == []  # re-fire inside the cooldown: suppressed
    assert states(m)["A"] == "firing"
    g.set(50)
    notes = m.evaluate(now=30)
    assert kinds(notes) == ["escalated"]  # never suppressed
    assert notes[0].alert["labels"]["severity"] == "critical"
    g.set(0)
    assert kinds(m.evaluate(now=40)) == [
        "resolved"
    ]  # the escalation was notified, so is the resolve
    g.set(5)
    assert kinds(m.evaluate(now=400)) == ["firing"]  # cooldown over


def test_fires_straight_to_critical() -> None:
    """A value already past critical fires with severity critical and no separate escalation."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, critical=10, labels={"team": "core"})
    g.set(100)
    notes = m.evaluate(now=0)
    assert kinds(notes) == ["firing"]
    assert notes[0].alert["labels"] == {"alertname": "A", "team": "core", "severity": "critical"}
    g.set(200)
    assert kinds(m.evaluate(now=1)) == []


def test_rate_quantile_and_ratio_rules() -> None:
    """rate, quantile and ratio aggregations read the sliding windows."""
    m = Monitor(window_step=1.0)
    req = m.counter("perflayer_req_total", "doc", ("code",))
    lat = m.histogram("perflayer_lat_seconds", "doc")
    m.add_alert(
        name="Busy", metric="perflayer_req_total", aggregation="rate", window=10, threshold=50
    )
    m.add_alert(
        name="Errors",
        metric="perflayer_req_total",
        match={"code": "500"},
        aggregation="ratio",
        denominator="perflayer_req_total",
        window=10,
        threshold=0.05,
    )
    m.add_alert(
        name="Slow",
        metric="perflayer_lat_seconds",
        aggregation="quantile",
        q=0.99,
        window=10,
        threshold=0.5,
    )
    m.evaluate(now=0)  # baseline snapshot
    for _ in range(900):
        req.labels("200").inc()
        lat.observe(0.01)
    for _ in range(100):
        req.labels("500").inc()
    for _ in range(20):
        lat.observe(2.0)
    notes = m.evaluate(now=10)
    assert sorted(n.alert["name"] for n in notes) == ["Busy", "Errors", "Slow"]
    vals = {a["name"]: a["value"] for a in m.alerts()}
    assert vals["Busy"] == pytest.approx(100.0)
    assert vals["Errors"] == pytest.approx(0.1)  # 500s over all requests
    assert vals["Slow"] == pytest.approx(2.0, rel=0.01)


def test_ratio_of_two_metrics() -> None:
    """A ratio of two different counters (errors / requests)."""
    m = Monitor(window_step=1.0)
    err = m.counter("perflayer_err_total", "doc")
    req = m.counter("perflayer_all_total", "doc")
    m.add_alert(
        name="ErrRatio",
        metric="perflayer_err_total",
        aggregation="ratio",
        denominator="perflayer_all_total",
        window=10,
        threshold=0.05,
    )
    m.evaluate(now=0)
    req.inc(1000)
    err.inc(100)
    assert kinds(m.evaluate(now=10)) == ["firing"]
    assert m.alerts()[0]["value"] == pytest.approx(0.1)


def test_no_data_is_not_firing() -> None:
    """A rule on a metric that does not exist stays inactive."""
    m = Monitor()
    m.add_alert(name="Ghost", metric="perflayer_nothing", threshold=0, op=">=")
    assert kinds(m.evaluate(now=0)) == [] and states(m)["Ghost"] == "inactive"


def test_rule_validation_names_the_bad_value() -> None:
    """Bad ops, aggregations, severities and durations raise ConfigError naming them."""
    with pytest.raises(ConfigError, match="'=>'"):
        AlertRule("A", "m", 1, op="=>")
    with pytest.raises(ConfigError, match="'avg'"):
        AlertRule("A", "m", 1, aggregation="avg")
    with pytest.raises(ConfigError, match="denominator"):
        AlertRule("A", "m", 1, aggregation="ratio")
    with pytest.raises(ConfigError, match="for_"):
        AlertRule("A", "m", 1, for_=-1)
    with pytest.raises(ConfigError, match="'page'"):
        AlertRule("A", "m", 1, severity="page")


def test_handlers_sync_async_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Sync/async callables and the logging handler get notifications; a raising one is counted."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, annotations={"summary": "v high"})
    got_sync: list[str] = []
    got_async: list[str] = []

    def sync_handler(n: Notification) -> None:
        got_sync.append(n.kind)

    async def async_handler(n: Notification) -> None:
        await asyncio.sleep(0)
        got_async.append(n.kind)

    def broken(n: Notification) -> None:
        raise RuntimeError("broken handler")

    m.add_alert_handler(sync_handler)
    m.add_alert_handler(broken)
    m.add_alert_handler(async_handler)
    m.add_alert_handler(LoggingHandler())
    g.set(5)
    with caplog.at_level(logging.INFO, logger="perflayer.monitor"):
        m.evaluate(now=0)
        g.set(0)
        m.evaluate(now=1)
    assert got_sync == ["firing", "resolved"]
    assert got_async == ["firing", "resolved"]
    assert any("alert A firing" in r.getMessage() for r in caplog.records)
    assert any("alert A resolved" in r.getMessage() for r in caplog.records)
    assert m.value("perflayer_monitor_notification_errors_total") == 2
    assert m.value("perflayer_monitor_notifications_total", {"kind": "firing"}) == 1


class _Receiver(BaseHTTPRequestHandler):
    """Collect POSTed JSON bodies."""

    bodies: list[dict[str, Any]] = []
    got = threading.Event()

    def do_POST(self) -> None:
        """Store the body and answer 200."""
        n = int(self.headers["Content-Length"])
        type(self).bodies.append(
            {
                "json": json.loads(self.rfile.read(n)),
                "ctype": self.headers["Content-Type"],
                "auth": self.headers.get("X-Token"),
            }
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).got.set()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    """A real HTTP server on 127.0.0.1 that records webhook POSTs."""
    handler = type("Recv", (_Receiver,), {"bodies": [], "got": threading.Event()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook", handler
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_posts_alertmanager_payload(receiver: tuple[str, type[_Receiver]]) -> None:
    """The webhook POSTs Alertmanager v4 JSON to a real local server, firing then resolved."""
    url, recv = receiver
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(
        name="DiskFull",
        metric="perflayer_v",
        threshold=90,
        severity="critical",
        annotations={"summary": "disk"},
    )
    hook = WebhookHandler(url, headers={"X-Token": "t"})
    m.add_alert_handler(hook)
    g.set(95)
    m.evaluate(now=0)
    g.set(10)
    m.evaluate(now=1)
    assert hook.sent == 2 and hook.failures == 0
    assert [b["json"]["status"] for b in recv.bodies] == ["firing", "resolved"]
    first = recv.bodies[0]
    assert first["ctype"] == "application/json" and first["auth"] == "t"
    p = first["json"]
    assert p["version"] == "4"
    assert p["commonLabels"] == {"alertname": "DiskFull", "severity": "critical"}
    (alert,) = p["alerts"]
    assert alert["labels"]["alertname"] == "DiskFull"
    assert alert["annotations"] == {"summary": "disk"}
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["startsAt"].endswith("Z")
    resolved = recv.bodies[1]["json"]["alerts"][0]
    assert resolved["status"] == "resolved" and resolved["endsAt"] != "0001-01-01T00:00:00Z"
    assert resolved["fingerprint"] == alert["fingerprint"]


def test_webhook_to_a_dead_server_degrades() -> None:
    """A webhook to a closed port logs and counts a failure; evaluation carries on."""
    import socket

    # bound but never listening: connections are refused, and no one else can take the port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        m = Monitor()
        g = m.gauge("perflayer_v", "doc")
        m.add_alert(name="A", metric="perflayer_v", threshold=1)
        hook = WebhookHandler(f"http://127.0.0.1:{port}/", timeout=1)
        m.add_alert_handler(hook)
        g.set(5)
        assert kinds(m.evaluate(now=0)) == ["firing"]
        assert hook.failures == 1
    with pytest.raises(ConfigError, match="ftp://x"):
        WebhookHandler("ftp://x")


def test_payload_shape_for_several_alerts() -> None:
    """commonLabels keeps only the labels shared by every alert."""
    a = {
        "labels": {"alertname": "A", "severity": "warning", "x": "1"},
        "annotations": {},
        "activeAt": None,
        "endsAt": None,
    }
    b = {
        "labels": {"alertname": "A", "severity": "critical", "x": "1"},
        "annotations": {},
        "activeAt": None,
        "endsAt": None,
    }
    p = alertmanager_payload([Notification("firing", a, 0.0), Notification("resolved", b, 0.0)])
    assert p["commonLabels"] == {"alertname": "A", "x": "1"}
    assert p["status"] == "firing"


def test_background_thread_fires_and_resolves(receiver: tuple[str, type[_Receiver]]) -> None:
    """monitor.start() evaluates on a thread: fires, then resolves when clear."""
    url, recv = receiver
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1, for_=0.2)
    m.add_alert_handler(WebhookHandler(url))
    m.start(interval=0.05)
    try:
        g.set(5)
        assert recv.got.wait(20)
        recv.got.clear()
        g.set(0)
        assert recv.got.wait(20)
    finally:
        m.stop()
    assert [b["json"]["status"] for b in recv.bodies] == ["firing", "resolved"]


async def test_asyncio_task_evaluates() -> None:
    """monitor.start_async() evaluates on an asyncio task; async handlers are awaited there."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(name="A", metric="perflayer_v", threshold=1)
    fired = asyncio.Event()

    async def handler(n: Notification) -> None:
        if n.kind == "firing":
            fired.set()

    m.add_alert_handler(handler)
    task = m.start_async(interval=0.02)
    try:
        g.set(5)
        await asyncio.wait_for(fired.wait(), 20)
    finally:
        m.stop()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert states(m)["A"] == "firing"


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0, 20), st.floats(0.1, 30)), min_size=1, max_size=40),
    for_=st.sampled_from([0.0, 5.0, 30.0]),
    keep=st.sampled_from([0.0, 10.0]),
    cooldown=st.sampled_from([0.0, 60.0]),
)
def test_state_machine_invariants(
    steps: list[tuple[float, float]], for_: float, keep: float, cooldown: float
) -> None:
    """Any value sequence: firing only after for_, notifications pair up, and clearing resolves."""
    m = Monitor()
    g = m.gauge("perflayer_v", "doc")
    m.add_alert(
        name="A",
        metric="perflayer_v",
        threshold=10,
        critical=15,
        for_=for_,
        keep_firing_for=keep,
        cooldown=cooldown,
    )
    t = 0.0
    true_since: float | None = None
    open_firing = False
    for value, dt in steps:
        g.set(value)
        if value > 10:
            true_since = t if true_since is None else true_since
        else:
            true_since = None
        notes = kinds(m.evaluate(now=t))
        state = states(m)["A"]
        if "firing" in notes:
            assert true_since is not None and t - true_since >= for_  # never before for_
        for k in notes:
            if k == "firing":
                assert not open_firing
                open_firing = True
            elif k == "escalated":
                assert state == "firing"
                open_firing = True
            else:
                assert open_firing
                open_firing = False
        t += dt
    # clear the condition and wait out keep_firing_for: every notified firing resolves
    g.set(0)
    notes = kinds(m.evaluate(now=t)) + kinds(m.evaluate(now=t + keep + 1))
    assert states(m)["A"] in ("inactive", "resolved")
    assert notes == (["resolved"] if open_firing else [])
