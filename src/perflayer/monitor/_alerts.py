"""Declarative alert rules with Prometheus' states, and notification handlers.

States follow Prometheus' alerting rules:

* ``inactive``: the condition is false (or there is no data);
* ``pending``: the condition is true but has not held for ``for_`` seconds yet;
* ``firing``: the condition has held for ``for_`` (immediately when ``for_`` is 0); with
  ``keep_firing_for`` it stays firing that long after the condition clears;
* ``resolved``: it was firing and the condition cleared (after ``keep_firing_for``); the next
  evaluation treats it as inactive, and a true condition starts a new pending period.

Notifications go out on ``firing``, on ``escalated`` (the value crossed ``critical`` while firing:
severity rises to critical, and a cooldown never suppresses this) and on ``resolved``. A
``cooldown`` suppresses a *repeat* firing notification of the same rule within that many seconds
of the last one (flapping); a resolve is sent only for a firing that was notified.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import inspect
import json
import logging
import math
import operator
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perflayer.errors import ConfigError

if TYPE_CHECKING:
    from perflayer.monitor._core import Monitor

__all__ = [
    "Alert",
    "AlertRule",
    "AlertState",
    "LoggingHandler",
    "Notification",
    "WebhookHandler",
    "alertmanager_payload",
]

log = logging.getLogger("perflayer.monitor.alerts")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_AGGS = ("value", "rate", "quantile", "ratio")
_SEVERITIES = ("info", "warning", "critical")


class AlertState:
    """The four states of an alert, as Prometheus names them."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertRule:
    """One rule: ``aggregation(metric{match}[window]) op threshold`` held for ``for_`` seconds.

    Aggregations: ``value`` (current sum of the matching series; a histogram's count),
    ``rate`` (per-second increase over ``window``), ``quantile`` (the ``q``-quantile over
    ``window``) and ``ratio`` (``rate(metric{match}) / rate(denominator{denominator_match})``
    over ``window``, e.g. errors over all requests).

    >>> AlertRule("HighLatency", "perflayer_request_seconds", 0.5, aggregation="quantile", q=0.99,
    ...           for_=30, critical=1.0).op
    '>'
    """

    name: str
    metric: str
    threshold: float
    op: str = ">"
    aggregation: str = "value"
    match: Mapping[str, str] = field(default_factory=dict)
    window: float = 60.0
    q: float = 0.99
    denominator: str | None = None
    denominator_match: Mapping[str, str] = field(default_factory=dict)
    for_: float = 0.0
    keep_firing_for: float = 0.0
    cooldown: float = 0.0
    severity: str = "warning"
    critical: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"alert rule name must be a non-empty str, got {self.name!r}")
        if self.op not in _OPS:
            raise ConfigError(
                f"alert {self.name!r}: op must be one of {sorted(_OPS)}, got {self.op!r}"
            )
        if self.aggregation not in _AGGS:
            raise ConfigError(
                f"alert {self.name!r}: aggregation must be one of {_AGGS}, got {self.aggregation!r}"
            )
        if self.aggregation == "ratio" and not self.denominator:
            raise ConfigError(f"alert {self.name!r}: aggregation 'ratio' needs denominator=")
        if not 0.0 <= self.q <= 1.0:
            raise ConfigError(f"alert {self.name!r}: q must be in [0, 1], got {self.q!r}")
        for attr in ("window", "for_", "keep_firing_for", "cooldown"):
            v = getattr(self, attr)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ConfigError(f"alert {self.name!r}: {attr} must be >= 0 seconds, got {v!r}")
        if self.window <= 0 and self.aggregation != "value":
            raise ConfigError(f"alert {self.name!r}: window must be > 0, got {self.window!r}")
        if self.severity not in _SEVERITIES:
            raise ConfigError(
                f"alert {self.name!r}: severity must be one of {_SEVERITIES}, got {self.severity!r}"
            )
        if not isinstance(self.threshold, (int, float)) or self.threshold != self.threshold:
            raise ConfigError(
                f"alert {self.name!r}: threshold must be a number, got {self.threshold!r}"
            )

    def compute(self, monitor: Monitor, now: float | None = None) -> float | None:
        """Return the rule's current value from ``monitor`` (None when there is no data)."""
        m = dict(self.match) or None
        if self.aggregation == "value":
            return monitor.value(self.metric, m)
        if self.aggregation == "rate":
            return monitor.rate(self.metric, self.window, m, now=now)
        if self.aggregation == "quantile":
            return monitor.quantile(self.metric, self.q, self.window, m, now=now)
        num = monitor.rate(self.metric, self.window, m, now=now)
        dm = dict(self.denominator_match) or None
        den = monitor.rate(self.denominator or "", self.window, dm, now=now)
        if num is None or den is None or den == 0:
            return None
        return num / den

    def holds(self, value: float | None, threshold: float | None = None) -> bool:
        """Return whether ``value`` meets the condition (False without data)."""
        if value is None or value != value:
            return False
        return _OPS[self.op](value, self.threshold if threshold is None else threshold)


@dataclass
class Alert:
    """The live state of one rule."""

    rule: AlertRule
    state: str = AlertState.INACTIVE
    value: float | None = None
    severity: str = ""
    active_at: float | None = None  # monotonic time the condition became true
    fired_at: float | None = None
    resolved_at: float | None = None
    last_true: float | None = None
    last_notified: float | None = None
    notified_firing: bool = False
    starts_at_wall: float | None = None
    ends_at_wall: float | None = None

    def labels(self) -> dict[str, str]:
        """Return the alert's labels: alertname, severity and the rule's labels."""
        return {
            "alertname": self.rule.name,
            **dict(self.rule.labels),
            "severity": self.severity or self.rule.severity,
        }

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict shaped like Prometheus' ``/api/v1/alerts`` entries."""
        return {
            "name": self.rule.name,
            "state": self.state,
            "value": self.value,
            "labels": self.labels(),
            "annotations": dict(self.rule.annotations),
            "activeAt": _rfc3339(self.starts_at_wall) if self.starts_at_wall else None,
            "endsAt": _rfc3339(self.ends_at_wall) if self.ends_at_wall else None,
            "metric": self.rule.metric,
            "aggregation": self.rule.aggregation,
            "op": self.rule.op,
            "threshold": self.rule.threshold,
            "for": self.rule.for_,
        }


@dataclass(frozen=True)
class Notification:
    """One notification: ``kind`` is ``firing``, ``escalated`` or ``resolved``."""

    kind: str
    alert: dict[str, Any]
    at: float

    @property
    def status(self) -> str:
        """Return Alertmanager's status: ``resolved`` or ``firing``."""
        return "resolved" if self.kind == "resolved" else "firing"


Handler = Callable[[Notification], Any]


def _rfc3339(t: float | None) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def alertmanager_payload(notes: list[Notification], receiver: str = "perflayer") -> dict[str, Any]:
    """Return an Alertmanager webhook (version 4) JSON payload for ``notes``."""
    alerts = []
    for n in notes:
        a = n.alert
        alerts.append(
            {
                "status": n.status,
                "labels": a["labels"],
                "annotations": a["annotations"],
                "startsAt": a["activeAt"] or _rfc3339(n.at),
                "endsAt": a["endsAt"] if n.kind == "resolved" else "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": hashlib.sha256(
                    json.dumps(sorted(a["labels"].items())).encode()
                ).hexdigest()[:16],
            }
        )
    status = "firing" if any(x["status"] == "firing" for x in alerts) else "resolved"
    common = dict(alerts[0]["labels"]) if alerts else {}
    for x in alerts[1:]:
        common = {k: v for k, v in common.items() if x["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": "{}:{alertname=" + json.dumps(common.get("alertname", "")) + "}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": common["alertname"]} if "alertname" in common else {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    }


class LoggingHandler:
    """Log each notification (WARNING for firing/escalated, INFO for resolved)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    def __call__(self, n: Notification) -> None:
        """Log ``n``."""
        a = n.alert
        level = logging.INFO if n.kind == "resolved" else logging.WARNING
        self.logger.log(
            level,
            "alert %s %s: %s %s %s %s (value=%s, severity=%s)",
            a["name"],
            n.kind,
            a["aggregation"],
            a["metric"],
            a["op"],
            a["threshold"],
            a["value"],
            a["labels"]["severity"],
        )


class WebhookHandler:
    """POST an Alertmanager-compatible JSON payload to ``url`` (one retry, then log and count)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        receiver: str = "perflayer",
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url must be http(s)://..., got {url!r}")
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.receiver = receiver
        self.failures = 0
        self.sent = 0

    def __call__(self, n: Notification) -> None:
        """Send ``n`` (blocking; the evaluation loop runs it off the event loop)."""
        body = json.dumps(alertmanager_payload([n], self.receiver)).encode()
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        for attempt in (1, 2):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read()
                self.sent += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as e:
                if attempt == 2:
                    self.failures += 1
                    log.warning("webhook %s failed for alert %s: %s", self.url, n.alert["name"], e)


class AlertManager:
    """Holds the rules of one Monitor, evaluates them and dispatches notifications."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._lock = threading.RLock()
        self._alerts: dict[str, Alert] = {}
        self._handlers: list[Handler] = []
        self.history: list[Notification] = []
        self._notes = monitor.counter(
            "perflayer_monitor_notifications_total",
            "Alert notifications sent, by kind (firing, escalated, resolved).",
            ("kind",),
        )
        self._errors = monitor.counter(
            "perflayer_monitor_notification_errors_total",
            "Alert notification handlers that raised.",
        )

    def add_rule(self, rule: AlertRule) -> AlertRule:
        """Add (or replace, by name) a rule."""
        if not isinstance(rule, AlertRule):
            raise TypeError(f"add_alert needs an AlertRule, got {rule!r}")
        with self._lock:
            self._alerts[rule.name] = Alert(rule)
        return rule

    def remove_rule(self, name: str) -> None:
        """Remove the rule ``name``."""
        with self._lock:
            self._alerts.pop(name, None)

    def add_handler(self, handler: Handler) -> None:
        """Add a notification handler (sync or async callable)."""
        if not callable(handler):
            raise TypeError(f"alert handler must be callable, got {handler!r}")
        with self._lock:
            self._handlers.append(handler)

    def alerts(self) -> list[Alert]:
        """Return every alert, sorted by rule name."""
        with self._lock:
            return [self._alerts[k] for k in sorted(self._alerts)]

    def next_deadline(self, now: float) -> float | None:
        """Return the soonest time a pending alert may turn firing (for the loop's sleep)."""
        with self._lock:
            ds = [
                a.active_at + a.rule.for_
                for a in self._alerts.values()
                if a.state == AlertState.PENDING and a.active_at is not None
            ]
            ds += [
                a.last_true + a.rule.keep_firing_for
                for a in self._alerts.values()
                if a.state == AlertState.FIRING
                and a.last_true is not None
                and a.rule.keep_firing_for
            ]
        return min(ds) if ds else None

    def evaluate(self, now: float | None = None) -> list[Notification]:
        """Evaluate every rule once and return the notifications to dispatch."""
        t = time.monotonic() if now is None else now
        wall = time.time()
        notes: list[Notification] = []
        with self._lock:
            alerts = list(self._alerts.values())
        for a in alerts:
            r = a.rule
            try:
                value = r.compute(self.monitor, t)
            except Exception:  # degrade: a broken rule reads as no data
                log.warning("alert %s: computing its value failed", r.name, exc_info=True)
                value = None
            with self._lock:
                notes.extend(self._step(a, value, t, wall))
        return notes

    def _step(self, a: Alert, value: float | None, t: float, wall: float) -> list[Notification]:
        r = a.rule
        a.value = value
        cond = r.holds(value)
        out: list[Notification] = []
        if a.state == AlertState.RESOLVED:
            a.state = AlertState.INACTIVE
        if cond:
            a.last_true = t
            if a.state == AlertState.INACTIVE:
                a.state = AlertState.PENDING
                a.active_at = t
                a.starts_at_wall = wall
                a.ends_at_wall = None
                a.severity = r.severity
            if (
                a.state == AlertState.PENDING
                and a.active_at is not None
                and t - a.active_at >= r.for_
            ):
                a.state = AlertState.FIRING
                a.fired_at = t
                a.severity = self._severity(r, value)
                suppressed = (
                    r.cooldown > 0
                    and a.last_notified is not None
                    and t - a.last_notified < r.cooldown
                )
                a.notified_firing = not suppressed
                if not suppressed:
                    a.last_notified = t
                    out.append(Notification("firing", a.as_dict(), wall))
            elif a.state == AlertState.FIRING:
                sev = self._severity(r, value)
                if sev == "critical" and a.severity != "critical":
                    # Escalation is never suppressed by the cooldown.
                    a.severity = sev
                    a.notified_firing = True
                    a.last_notified = t
                    out.append(Notification("escalated", a.as_dict(), wall))
        else:
            if a.state == AlertState.PENDING:
                a.state = AlertState.INACTIVE
                a.active_at = None
            elif a.state == AlertState.FIRING:
                last = a.last_true if a.last_true is not None else t
                if t - last >= r.keep_firing_for:
                    a.state = AlertState.RESOLVED
                    a.resolved_at = t
                    a.ends_at_wall = wall
                    a.active_at = None
                    if a.notified_firing:
                        out.append(Notification("resolved", a.as_dict(), wall))
                    a.notified_firing = False
        return out

    @staticmethod
    def _severity(r: AlertRule, value: float | None) -> str:
        if r.critical is not None and r.holds(value, r.critical):
            return "critical"
        return r.severity

    def _record(self, notes: list[Notification]) -> list[Handler]:
        with self._lock:
            self.history.extend(notes)
            del self.history[:-1000]
            handlers = list(self._handlers)
        for n in notes:
            self._notes.labels(n.kind).inc()
        return handlers

    def dispatch(self, notes: list[Notification]) -> None:
        """Call every handler for every notification (async handlers run to completion)."""
        if not notes:
            return
        handlers = self._record(notes)
        for n in notes:
            for h in handlers:
                try:
                    res = h(n)
                    if inspect.isawaitable(res):
                        asyncio.run(_await(res))
                except Exception:  # degrade: one broken handler does not stop the others
                    self._errors.inc()
                    log.warning("alert handler %r raised", h, exc_info=True)

    async def dispatch_async(self, notes: list[Notification]) -> None:
        """Like ``dispatch`` on an event loop: sync handlers run in a worker thread."""
        if not notes:
            return
        handlers = self._record(notes)
        for n in notes:
            for h in handlers:
                try:
                    if inspect.iscoroutinefunction(h) or inspect.iscoroutinefunction(
                        getattr(h, "__call__", None)  # noqa: B004 - an async __call__
                    ):
                        await h(n)
                    else:
                        res = await asyncio.to_thread(h, n)
                        if inspect.isawaitable(res):
                            await res
                except Exception:
                    self._errors.inc()
                    log.warning("alert handler %r raised", h, exc_info=True)


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw
