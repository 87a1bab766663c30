"""An OpenTelemetry bridge: a perflayer Monitor's families as OTel observable instruments.

Every family is read at collection time, straight from the monitor (one source of truth):

=================  ================================================================
perflayer          OpenTelemetry
=================  ================================================================
counter            ``ObservableCounter`` named without the ``_total`` suffix
gauge              ``ObservableGauge``
histogram          ``<name>_count`` and ``<name>_sum`` as ``ObservableCounter``,
                   ``<name>_bucket`` (cumulative, ``le`` attribute) as ``ObservableCounter``,
                   ``<name>`` as an ``ObservableGauge`` of all-time quantiles
                   (``quantile`` attribute, from the monitor's 1%-accurate sketch)
=================  ================================================================

The OTel API has no observable histogram, so a perflayer histogram cannot become an OTel
``Histogram`` without re-observing every value; the bucket counters carry the same data.

>>> from opentelemetry.sdk.metrics import MeterProvider
>>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
>>> from perflayer.monitor import Monitor
>>> m = Monitor(); m.counter("perflayer_demo_total", "Demo.").inc(2)
>>> reader = InMemoryMetricReader()
>>> bridge = register_otel(MeterProvider(metric_readers=[reader]), m)
>>> data = reader.get_metrics_data()
>>> [pt.value for rm in data.resource_metrics for sm in rm.scope_metrics
...  for mt in sm.metrics if mt.name == "perflayer_demo" for pt in mt.data.data_points]
[2.0]
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from perflayer.errors import ConfigError
from perflayer.integrations._compat import require

if TYPE_CHECKING:
    from perflayer.monitor import Monitor

__all__ = ["DEFAULT_QUANTILES", "OTelBridge", "register_otel"]

#: Quantiles exported for every histogram series.
DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)

log = logging.getLogger("perflayer.integrations")
_logged: set[str] = set()
# OTel instrument names: a letter, then letters, digits, "_", ".", "-" or "/" (255 at most).
_OTEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")


def _log_once(msg: str, exc_info: bool = False) -> None:
    if msg not in _logged:
        _logged.add(msg)
        log.warning(msg, exc_info=exc_info)


def _require() -> Any:
    """Return ``opentelemetry.metrics`` or raise an ImportError naming the extra."""
    return require("opentelemetry.metrics", "otel", "perflayer.integrations.otel")


def _unit(name: str) -> str:
    if name.endswith("_seconds"):
        return "s"
    if name.endswith("_bytes"):
        return "By"
    return ""


def _attrs(names: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    return dict(zip(names, values, strict=False))


class OTelBridge:
    """Exports a Monitor's families through one OTel ``Meter``; ``sync()`` adds new ones.

    Families registered after ``register_otel`` are picked up on their own: each collection
    checks for new names and adds them from a helper thread (the SDK holds its collection
    lock while callbacks run), so they appear from the next collection on. ``sync()`` adds
    them at once.
    """

    def __init__(
        self,
        meter: Any,
        monitor: Monitor,
        otel: Any,
        quantiles: Sequence[float],
        buckets: bool,
    ) -> None:
        self.meter = meter
        self.monitor = monitor
        self.quantiles = tuple(quantiles)
        self.buckets = buckets
        self._otel = otel
        self._lock = threading.Lock()
        self._exported: set[str] = set()
        self._skipped: set[str] = set()
        self._otel_names: set[str] = {"perflayer_otel_exported_families"}
        self._closed = False
        self._syncing = False
        self._sync_thread: threading.Thread | None = None
        # why: one instrument checks for new families once per collection (not every family's
        # callback: that would be O(families^2) per collection).
        meter.create_observable_gauge(
            "perflayer_otel_exported_families",
            [self._families_cb],
            description="perflayer families exported to OpenTelemetry.",
        )

    def _families_cb(self, _options: Any) -> Iterable[Any]:
        if self._closed:
            return []
        self._check_new()
        return [self._otel.Observation(len(self._exported))]

    @property
    def exported(self) -> frozenset[str]:
        """Return the names of the perflayer families exported so far."""
        return frozenset(self._exported)

    @property
    def closed(self) -> bool:
        """Return True once ``close()`` ran (callbacks then report nothing)."""
        return self._closed

    def close(self) -> None:
        """Stop reporting (the OTel API cannot remove instruments; they go silent)."""
        self._closed = True

    def sync(self) -> list[str]:
        """Create instruments for families not exported yet; return their names.

        Do not call from inside an OTel collection callback (the SDK's lock is held there).
        """
        added: list[str] = []
        with self._lock:
            for m in self.monitor.metrics():
                name = m.name
                if name in self._exported or name in self._skipped:
                    continue
                try:
                    ok = self._export(m)
                except Exception:  # degrade: one family that cannot be exported skips itself
                    _log_once(f"cannot export {name!r} to OpenTelemetry", exc_info=True)
                    ok = False
                if ok:
                    self._exported.add(name)
                    added.append(name)
                else:
                    self._skipped.add(name)
        return added

    # -- instruments ------------------------------------------------------------------------

    def _export(self, m: Any) -> bool:
        name: str = m.name
        base = name.replace(":", "_")
        if m.type == "counter" and base.endswith("_total"):
            base = base[:-6]
        if not _OTEL_NAME.match(base + "_bucket"):
            _log_once(f"metric {name!r} has no valid OpenTelemetry name; not exported")
            return False
        if m.type == "histogram":
            wanted = {base + "_count", base + "_sum"}
            wanted |= {base + "_bucket"} if self.buckets else set()
            wanted |= {base} if self.quantiles else set()
        else:
            wanted = {base}
        clash = wanted & self._otel_names
        if clash:
            # e.g. a counter perflayer_x_total and a gauge perflayer_x both become perflayer_x
            _log_once(f"metric {name!r} would reuse OpenTelemetry names {sorted(clash)}; skipped")
            return False
        self._otel_names |= wanted
        doc: str = m.documentation
        meter = self.meter
        if m.type == "counter":
            meter.create_observable_counter(
                base, [self._series_cb(m)], unit=_unit(base), description=doc
            )
        elif m.type == "gauge":
            meter.create_observable_gauge(
                base, [self._series_cb(m)], unit=_unit(base), description=doc
            )
        elif m.type == "histogram":
            meter.create_observable_counter(
                base + "_count", [self._hist_cb(m, "count")], description=doc + " (count)"
            )
            meter.create_observable_counter(
                base + "_sum", [self._hist_cb(m, "sum")], description=doc + " (sum)"
            )
            if self.buckets:
                meter.create_observable_counter(
                    base + "_bucket",
                    [self._hist_cb(m, "bucket")],
                    description=doc + " (cumulative count of values <= le)",
                )
            if self.quantiles:
                meter.create_observable_gauge(
                    base,
                    [self._hist_cb(m, "quantile")],
                    unit=_unit(base),
                    description=doc + " (all-time quantiles)",
                )
        else:  # pragma: no cover - the monitor has only these three kinds
            return False
        return True

    def _series_cb(self, m: Any) -> Callable[[Any], Iterable[Any]]:
        observation = self._otel.Observation
        names = m.labelnames

        def callback(_options: Any) -> Iterable[Any]:
            if self._closed:
                return []
            return [observation(v, _attrs(names, lv)) for lv, v in m.series() if v == v]

        return callback

    def _hist_cb(self, m: Any, part: str) -> Callable[[Any], Iterable[Any]]:
        observation = self._otel.Observation
        names = m.labelnames
        qs = self.quantiles

        def callback(_options: Any) -> Iterable[Any]:
            if self._closed:
                return []
            out: list[Any] = []
            for hc in m.all_series():
                attrs = _attrs(names, hc.labelvalues)
                if part == "count":
                    out.append(observation(hc.count, attrs))
                elif part == "sum":
                    out.append(observation(hc.sum, attrs))
                elif part == "bucket":
                    for le, c in hc.buckets():
                        out.append(observation(c, {**attrs, "le": _le(le)}))
                else:
                    sk = hc.sketch()
                    for q in qs:
                        v = sk.quantile(q)
                        if v is not None:
                            out.append(observation(v, {**attrs, "quantile": repr(q)}))
            return out

        return callback

    def _check_new(self) -> None:
        """Start a helper thread to export families registered since the last sync."""
        if self._closed or self._syncing:
            return
        names = {m.name for m in self.monitor.metrics()}
        if names <= self._exported | self._skipped:
            return
        self._syncing = True

        def run() -> None:
            try:
                self.sync()
            except Exception:  # degrade: try again at the next collection
                _log_once("OpenTelemetry sync failed", exc_info=True)
            finally:
                self._syncing = False

        th = self._sync_thread = threading.Thread(
            target=run, name="perflayer-otel-sync", daemon=True
        )
        th.start()

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Wait for a pending background sync; return True when none is running."""
        th = self._sync_thread
        if th is not None:
            th.join(timeout)
        return not self._syncing


def _le(v: float) -> str:
    return "+Inf" if v == math.inf else repr(float(v))


def register_otel(
    meter_provider: Any = None,
    monitor: Monitor | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    buckets: bool = True,
) -> OTelBridge:
    """Export ``monitor``'s families (default monitor) through ``meter_provider`` (global one).

    Return the :class:`OTelBridge`; every family that exists now is exported at once.
    """
    otel = _require()
    qs = tuple(quantiles)
    for q in qs:
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise ConfigError(f"quantiles must be numbers in [0, 1], got {q!r} in {quantiles!r}")
    if monitor is None:
        from perflayer.monitor import default

        monitor = default()
    if meter_provider is None:
        meter_provider = otel.get_meter_provider()
    if not callable(getattr(meter_provider, "get_meter", None)):
        raise TypeError(
            f"meter_provider must be an OpenTelemetry MeterProvider, got {meter_provider!r}"
        )
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("perflayer")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        ver = "0.0.0+unknown"
    meter = meter_provider.get_meter("perflayer", ver)
    bridge = OTelBridge(meter, monitor, otel, qs, bool(buckets))
    bridge.sync()
    return bridge
