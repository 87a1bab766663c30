"""Instruments (counter, gauge, histogram), callback families and the ``Monitor`` registry.

Concurrency: every mutation is either one C-level call that the GIL makes atomic
(``itertools.count.__next__`` for ``inc()`` by one, a plain attribute store for ``Gauge.set``) or
runs under the series' own lock. On a free-threaded interpreter the ``count`` shortcut is off and
everything takes the lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import sys
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from perflayer.errors import ConfigError
from perflayer.monitor._sketch import MAX_POSITIVE, MIN_POSITIVE, MULT, Sketch
from perflayer.monitor._window import FINE_STEP, CounterWindow, SketchWindow

if TYPE_CHECKING:
    from perflayer.monitor._alerts import AlertManager, AlertRule, Notification
    from perflayer.monitor._health import HealthRegistry


__all__ = [
    "DEFAULT_BUCKETS",
    "OVERFLOW_VALUE",
    "CallbackHandle",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricFamily",
    "Monitor",
    "Sample",
    "default",
]

log = logging.getLogger("perflayer.monitor")

#: Prometheus client's default latency buckets, in seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
#: Label value given to every label of the overflow series once a metric hits its series limit.
OVERFLOW_VALUE = "__overflow__"

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INF = math.inf
_log = math.log
_ceil = math.ceil
#: Values batched per series before they are folded into the sketch/sum under the lock.
_BATCH = 64
_BATCH_BYTES = 56 + _BATCH * (8 + 24)  # list header, pointers and float objects
# Free-threaded builds have no GIL to make count.__next__ atomic with respect to the reader.
_GIL = bool(getattr(sys, "_is_gil_enabled", lambda: True)())

CallbackValue = float | Mapping[tuple[str, ...], float]


def fmt_float(v: float) -> str:
    """Format a sample value the way Prometheus (Go) parses it."""
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    if v != v:
        return "NaN"
    s = repr(float(v))
    dot = s.find(".")
    if v > 0 and dot > 6:  # Go switches to exponents sooner than Python (as prometheus_client).
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def escape_label(v: str) -> str:
    """Escape a label value for the text formats (backslash, double quote, newline)."""
    if "\\" in v or '"' in v or "\n" in v:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def label_string(names: Sequence[str], values: Sequence[str]) -> str:
    """Return ``{a="x",b="y"}`` (or "" without labels)."""
    if not names:
        return ""
    return (
        "{"
        + ",".join(f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=False))
        + "}"
    )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"invalid metric name {name!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def _check_labelnames(
    name: str, labelnames: Iterable[str], reserved: tuple[str, ...]
) -> tuple[str, ...]:
    if isinstance(labelnames, str):
        raise ConfigError(
            f"labelnames of {name!r} must be a sequence of str, got the str {labelnames!r}"
        )
    out = tuple(labelnames)
    for ln in out:
        if not isinstance(ln, str) or not _LABEL_RE.match(ln) or ln.startswith("__"):
            raise ConfigError(f"invalid label name {ln!r} for metric {name!r}")
        if ln in reserved:
            raise ConfigError(f"label name {ln!r} is reserved for metric {name!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"duplicate label names {out!r} for metric {name!r}")
    return out


@dataclass
class Sample:
    """One sample: full sample name, labels and value (duck-types prometheus_client's Sample)."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class MetricFamily:
    """A collected family; attribute names match prometheus_client's ``Metric`` so either fits."""

    name: str
    type: str
    documentation: str
    samples: list[Sample] = field(default_factory=list)


# --------------------------------------------------------------------------------- children


class CounterChild:
    """One counter series: ``inc(n)`` and ``get()``."""

    __slots__ = ("_adds", "_lock", "_ones", "_value", "labelvalues")

    def __init__(self, labelvalues: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._ones = itertools.count()
        self._adds: list[float] = []
        self._value = 0.0
        self.labelvalues = labelvalues

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0, default 1)."""
        # why: inc() by one is the common case; count.__next__ is a single C call the GIL makes
        # atomic, ~6x cheaper than a lock and two method calls (prometheus_client's inc).
        if amount == 1 and _GIL:
            next(self._ones)
            return
        if not amount >= 0:
            raise ValueError(f"counters only go up: inc({amount!r}) is negative or NaN")
        # why: list.append is atomic too; amounts are summed in batches under the lock.
        adds = self._adds
        adds.append(amount)
        if len(adds) >= _BATCH:
            self._fold()

    def _fold(self) -> None:
        adds = self._adds
        with self._lock:
            pop = adds.pop
            total = self._value
            # Only folds pop, and they hold the lock: appends racing with us stay for the next.
            for _ in range(len(adds)):
                total += pop()
            self._value = total

    def get(self) -> float:
        """Return the current value."""
        if self._adds:
            self._fold()
        r = repr(self._ones)  # "count(N)": reads the count without advancing it
        return self._value + int(r[6:-1])


class GaugeChild:
    """One gauge series: ``set``, ``inc``, ``dec``, ``set_function`` and ``get()``."""

    __slots__ = ("_fn", "_lock", "_used", "_value", "labelvalues")

    def __init__(self, labelvalues: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._fn: Callable[[], float] | None = None
        self._used = False
        self.labelvalues = labelvalues

    def set(self, value: float) -> None:
        """Set the value."""
        self._value = float(value)
        self._used = True

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``."""
        with self._lock:
            self._value += amount
        self._used = True

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount``."""
        with self._lock:
            self._value -= amount
        self._used = True

    def set_function(self, fn: Callable[[], float]) -> None:
        """Read the value from ``fn()`` at every ``get()`` and scrape."""
        if not callable(fn):
            raise TypeError(f"set_function needs a callable, got {fn!r}")
        self._fn = fn
        self._used = True

    def get(self) -> float:
        """Return the current value (``fn()`` when set_function was used; NaN if it raises)."""
        fn = self._fn
        if fn is None:
            return self._value
        try:
            return float(fn())
        except Exception:  # degrade: a broken gauge function reads NaN, logged once
            _log_once(f"gauge function {fn!r} raised", exc_info=True)
            return math.nan


class HistogramChild:
    """One histogram series: ``observe(v)``, ``quantile(q, window=None)``, buckets, sum, count."""

    __slots__ = (
        "_bounds",
        "_buckets",
        "_lock",
        "_pending",
        "_sketch",
        "_sum",
        "_window",
        "labelvalues",
    )

    def __init__(self, bounds: tuple[float, ...], labelvalues: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds  # finite upper bounds, ascending; +Inf is the extra last slot
        self._buckets = [0] * (len(bounds) + 1)
        self._sketch = Sketch()
        self._sum = 0.0
        self._pending: list[float] = []
        self._window: SketchWindow | None = None
        self.labelvalues = labelvalues

    def observe(self, amount: float) -> None:
        """Record one value (NaN is ignored)."""
        # why: one GIL-atomic list.append per call; the sketch and bucket work (a log, an array
        # increment, a bisect, a float add) runs in batches of _BATCH under one lock. That is
        # ~3x cheaper than a lock per call, and prometheus_client takes two locks per observe.
        pending = self._pending
        pending.append(float(amount))
        if len(pending) >= _BATCH:
            self._fold()

    def _fold(self) -> None:
        pending = self._pending
        with self._lock:
            sketch = self._sketch
            pos = sketch.pos
            buckets = self._buckets
            bounds = self._bounds
            total = self._sum
            pop = pending.pop
            # Only folds pop, and they hold the lock: appends racing with us stay for the next.
            for _ in range(len(pending)):
                v = pop()
                if MIN_POSITIVE < v < MAX_POSITIVE:
                    k = _ceil(_log(v) * MULT)  # Sketch.add, inlined for the common case
                    i = k - pos.off
                    bins = pos.bins
                    if 0 <= i < len(bins):
                        bins[i] += 1
                    else:
                        pos.add(k)
                elif v != v:
                    _log_once("histogram observe(NaN) ignored")
                    continue
                else:
                    sketch.add(v)
                buckets[bisect_left(bounds, v)] += 1
                total += v
            self._sum = total

    def _state(self) -> tuple[list[int], float, bool]:
        """Return (bucket counts, sum, saw negatives), every pending value folded in."""
        self._fold()
        with self._lock:
            return list(self._buckets), self._sum, any(self._sketch.neg.bins)

    def _count(self) -> int:
        if self._pending:
            self._fold()
        return sum(self._buckets)

    @property
    def count(self) -> int:
        """Return the number of observations."""
        return self._count()

    @property
    def sum(self) -> float:
        """Return the sum of observations."""
        if self._pending:
            self._fold()
        return self._sum

    def buckets(self) -> list[tuple[float, int]]:
        """Return cumulative ``(le, count)`` pairs ending with ``(+Inf, count)``."""
        raw, _, _ = self._state()
        out: list[tuple[float, int]] = []
        acc = 0
        for le, c in zip((*self._bounds, _INF), raw, strict=False):
            acc += c
            out.append((le, acc))
        return out

    def sketch(self) -> Sketch:
        """Return a copy of the all-time sketch."""
        self._fold()
        with self._lock:
            return self._sketch.copy()

    def get(self) -> float:
        """Return the number of observations (a histogram's scalar value)."""
        return float(self.count)

    def quantile(self, q: float, window: float | None = None) -> float | None:
        """Return the ``q``-quantile, all-time or over the last ``window`` s (None if empty)."""
        if window is None:
            return self.sketch().quantile(q)
        w = self._window
        if w is None:
            return self.sketch().quantile(q)
        return w.delta(self.sketch(), window).quantile(q)

    def nbytes(self) -> int:
        """Return the memory of this series (sketch, buckets, sum, batch, object), in bytes."""
        with self._lock:
            b = self._buckets
            return (
                self._sketch.nbytes()
                + sys.getsizeof(b)
                + sum(sys.getsizeof(c) for c in b)
                + sys.getsizeof(self._sum)
                + sys.getsizeof(self)
                + _BATCH_BYTES  # the pending batch at its fullest
            )


# --------------------------------------------------------------------------------- parents

_C = TypeVar("_C", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[_C]):
    """Shared label handling of the three instrument kinds (mixed into each parent)."""

    name: str
    documentation: str
    labelnames: tuple[str, ...]
    max_series: int
    _children: dict[tuple[str, ...], _C]
    _family_lock: threading.Lock
    _monitor_ref: weakref.ReferenceType[Monitor]
    type: str = ""

    def _init_family(
        self, monitor: Monitor, name: str, doc: str, labelnames: tuple[str, ...], max_series: int
    ) -> None:
        self.name = name
        self.documentation = doc
        self.labelnames = labelnames
        self.max_series = max_series
        self._children = {}
        self._family_lock = threading.Lock()
        self._monitor_ref = weakref.ref(monitor)

    def _make_child(self, values: tuple[str, ...]) -> _C:  # pragma: no cover - abstract
        raise NotImplementedError

    def labels(self, *values: object, **kwvalues: object) -> _C:
        """Return the child series for these label values (positional or keyword)."""
        if not kwvalues:
            child = self._children.get(values)  # type: ignore[arg-type]  # fast path: str values
            if child is not None:
                return child
        return self._child_slow(values, kwvalues)

    def _child_slow(self, values: tuple[object, ...], kwvalues: dict[str, object]) -> _C:
        names = self.labelnames
        if not names:
            raise ValueError(f"metric {self.name!r} has no labels; call its methods directly")
        if kwvalues:
            if values:
                raise ValueError(
                    f"labels() of {self.name!r}: pass values positionally or by keyword, not both"
                )
            if set(kwvalues) != set(names):
                raise ValueError(
                    f"labels() of {self.name!r}: expected {names!r}, got {tuple(kwvalues)!r}"
                )
            values = tuple(kwvalues[n] for n in names)
        if len(values) != len(names):
            raise ValueError(
                f"labels() of {self.name!r}: expected {len(names)} values {names!r}, got {values!r}"
            )
        key = tuple(str(v) for v in values)
        with self._family_lock:
            child = self._children.get(key)
            if child is not None:
                return child
            if len(self._children) >= self.max_series:
                key = (OVERFLOW_VALUE,) * len(names)
                child = self._children.get(key)
                mon = self._monitor_ref()
                if mon is not None:
                    mon._note_overflow(self.name)
                if child is not None:
                    return child
            child = self._make_child(key)
            self._children[key] = child
            return child

    def remove(self, *values: object) -> None:
        """Forget the child series with these label values."""
        key = tuple(str(v) for v in values)
        with self._family_lock:
            self._children.pop(key, None)

    def clear(self) -> None:
        """Forget every labelled child series."""
        with self._family_lock:
            self._children.clear()

    def children(self) -> list[_C]:
        """Return the labelled child series (not the parent's own default series)."""
        with self._family_lock:
            return list(self._children.values())


class Counter(CounterChild, _Family[CounterChild]):
    """A monotonically increasing counter; the name ends in ``_total``.

    >>> m = Monitor()
    >>> c = m.counter("perflayer_demo_requests_total", "Requests.", labelnames=("code",))
    >>> c.labels("200").inc()
    >>> c.labels(code="200").inc(2)
    >>> c.labels("200").get()
    3.0
    """

    type = "counter"

    def __init__(
        self, monitor: Monitor, name: str, doc: str, labelnames: tuple[str, ...], max_series: int
    ) -> None:
        CounterChild.__init__(self, ("",) * len(labelnames))
        self._init_family(monitor, name, doc, labelnames, max_series)
        self._window = CounterWindow(monitor.window_step)

    def _make_child(self, values: tuple[str, ...]) -> CounterChild:
        return CounterChild(values)

    def get(self) -> float:
        """Return the value; for a labelled counter, the sum over every series."""
        own = CounterChild.get(self)
        if not self.labelnames:
            return own
        return own + sum(ch.get() for ch in self.children())

    def series(self) -> list[tuple[tuple[str, ...], float]]:
        """Return ``(labelvalues, value)`` for every series that exists."""
        out: list[tuple[tuple[str, ...], float]] = []
        own = CounterChild.get(self)
        if not self.labelnames or own:
            out.append((self.labelvalues, own))
        out.extend((ch.labelvalues, ch.get()) for ch in self.children())
        return out


class Gauge(GaugeChild, _Family[GaugeChild]):
    """A value that goes up and down.

    >>> m = Monitor()
    >>> g = m.gauge("perflayer_demo_queue_depth", "Items queued.")
    >>> g.set(3); g.inc(); g.dec(2); g.get()
    2.0
    """

    type = "gauge"

    def __init__(
        self, monitor: Monitor, name: str, doc: str, labelnames: tuple[str, ...], max_series: int
    ) -> None:
        GaugeChild.__init__(self, ("",) * len(labelnames))
        self._init_family(monitor, name, doc, labelnames, max_series)

    def _make_child(self, values: tuple[str, ...]) -> GaugeChild:
        return GaugeChild(values)

    def series(self) -> list[tuple[tuple[str, ...], float]]:
        """Return ``(labelvalues, value)`` for every series that exists."""
        out: list[tuple[tuple[str, ...], float]] = []
        if not self.labelnames or self._used:
            out.append((self.labelvalues, GaugeChild.get(self)))
        out.extend((ch.labelvalues, ch.get()) for ch in self.children())
        return out


class Histogram(HistogramChild, _Family[HistogramChild]):
    """A distribution: ``le`` buckets for Prometheus plus a 1%-accurate quantile sketch.

    >>> m = Monitor()
    >>> h = m.histogram("perflayer_demo_latency_seconds", "Latency.")
    >>> for ms in range(1, 101):
    ...     h.observe(ms / 1000)
    >>> round(h.quantile(0.5), 3)
    0.05
    """

    type = "histogram"

    def __init__(
        self,
        monitor: Monitor,
        name: str,
        doc: str,
        labelnames: tuple[str, ...],
        max_series: int,
        bounds: tuple[float, ...],
    ) -> None:
        HistogramChild.__init__(self, bounds, ("",) * len(labelnames))
        self._init_family(monitor, name, doc, labelnames, max_series)
        self._window = SketchWindow(monitor.window_step)

    def _make_child(self, values: tuple[str, ...]) -> HistogramChild:
        ch = HistogramChild(self._bounds, values)
        mon = self._monitor_ref()
        ch._window = SketchWindow(mon.window_step if mon is not None else FINE_STEP)
        return ch

    def all_series(self) -> list[HistogramChild]:
        """Return every series that exists (the parent's own one first, if used)."""
        out: list[HistogramChild] = []
        if not self.labelnames or HistogramChild._count(self) > 0:
            out.append(self)
        out.extend(self.children())
        return out

    def merged(self, window: float | None = None) -> Sketch:
        """Return one sketch merging every series, all-time or over the last ``window`` s."""
        out = Sketch()
        for ch in self.all_series():
            sk = ch.sketch()
            w = ch._window
            if window is not None and w is not None:
                sk = w.delta(sk, window)
            out.merge(sk)
        return out

    def quantile(self, q: float, window: float | None = None) -> float | None:
        """Return the ``q``-quantile over every series (all-time or last ``window`` seconds)."""
        if window is not None:
            mon = self._monitor_ref()
            if mon is not None:
                mon._lazy_tick()
        if not self.labelnames:
            return HistogramChild.quantile(self, q, window)
        return self.merged(window).quantile(q)

    @property
    def count(self) -> int:
        """Return the number of observations over every series."""
        if not self.labelnames:
            return HistogramChild._count(self)
        return sum(ch._count() for ch in self.all_series())


# --------------------------------------------------------------------------------- callbacks


class CallbackHandle:
    """Returned by ``counter_callback``/``gauge_callback``; ``unregister()`` removes it."""

    __slots__ = ("__weakref__", "_family", "_fn", "_weak")

    def __init__(self, family: _CallbackFamily, fn: Callable[[], CallbackValue]) -> None:
        self._family: _CallbackFamily | None = family
        # why: a bound method would keep its owner (a Cache) alive forever; hold it weakly.
        if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
            self._weak: weakref.WeakMethod[Callable[[], CallbackValue]] | None = weakref.WeakMethod(
                fn
            )
            self._fn: Callable[[], CallbackValue] | None = None
        else:
            self._weak = None
            self._fn = fn

    def function(self) -> Callable[[], CallbackValue] | None:
        """Return the callback, or None once its owner has been garbage-collected."""
        if self._weak is not None:
            return self._weak()
        return self._fn

    def unregister(self) -> None:
        """Stop reading this callback; idempotent."""
        fam = self._family
        self._family = None
        if fam is not None:
            fam.discard(self)


class _CallbackFamily:
    """A counter or gauge family whose series are read from callbacks at scrape time."""

    def __init__(
        self,
        monitor: Monitor,
        name: str,
        doc: str,
        type_: str,
        labelnames: tuple[str, ...],
        max_series: int,
    ) -> None:
        self.name = name
        self.documentation = doc
        self.type = type_
        self.labelnames = labelnames
        self.max_series = max_series
        self._handles: list[CallbackHandle] = []
        self._lock = threading.Lock()
        self._monitor_ref = weakref.ref(monitor)
        self._window = CounterWindow(monitor.window_step) if type_ == "counter" else None

    def add(self, fn: Callable[[], CallbackValue]) -> CallbackHandle:
        h = CallbackHandle(self, fn)
        with self._lock:
            self._handles.append(h)
        return h

    def discard(self, h: CallbackHandle) -> None:
        with self._lock:
            try:
                self._handles.remove(h)
            except ValueError:
                pass

    def series(self) -> list[tuple[tuple[str, ...], float]]:
        """Call every live callback and merge their series (counters sum, gauges first wins)."""
        with self._lock:
            handles = list(self._handles)
        merged: dict[tuple[str, ...], float] = {}
        dead: list[CallbackHandle] = []
        n = len(self.labelnames)
        overflow = (OVERFLOW_VALUE,) * n
        for h in handles:
            fn = h.function()
            if fn is None:
                dead.append(h)
                continue
            try:
                res = fn()
            except Exception:  # degrade: skip this owner's series, logged once
                _log_once(f"callback {fn!r} for {self.name!r} raised", exc_info=True)
                continue
            items: Iterable[tuple[tuple[str, ...], float]]
            if isinstance(res, Mapping):
                items = res.items()
            else:
                items = (((), res),)
            for key, value in items:
                k = tuple(str(x) for x in key)
                if len(k) != n:
                    _log_once(
                        f"callback for {self.name!r} returned labels {key!r}, "
                        f"expected {self.labelnames!r}"
                    )
                    continue
                if k not in merged and len(merged) >= self.max_series:
                    mon = self._monitor_ref()
                    if mon is not None:
                        mon._note_overflow(self.name)
                    k = overflow
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    _log_once(f"callback for {self.name!r} returned non-number {value!r}")
                    continue
                if k in merged:
                    if self.type == "counter" or k == overflow:
                        merged[k] += v
                    else:
                        _log_once(
                            f"two callbacks for gauge {self.name!r} report series {k!r}; first wins"
                        )
                else:
                    merged[k] = v
        for h in dead:
            h.unregister()
        return list(merged.items())

    def get(self) -> float:
        """Return the sum over every series."""
        return sum(v for _, v in self.series())


# --------------------------------------------------------------------------------- monitor

_logged: set[str] = set()


def _log_once(msg: str, exc_info: bool = False) -> None:
    if msg not in _logged:
        _logged.add(msg)
        log.warning(msg, exc_info=exc_info)


Instrument = Counter | Gauge | Histogram | _CallbackFamily


class Monitor:
    """One metrics registry: instruments, callbacks, windows, alert rules, health and HTTP.

    >>> m = Monitor()
    >>> m.counter("perflayer_demo_hits_total", "Hits.").inc()
    >>> "perflayer_demo_hits_total 1.0" in m.exposition()
    True
    """

    def __init__(self, *, max_series: int = 1000, window_step: float = FINE_STEP) -> None:
        if not isinstance(max_series, int) or max_series < 1:
            raise ConfigError(f"max_series must be a positive int, got {max_series!r}")
        if not window_step > 0:
            raise ConfigError(f"window_step must be > 0 seconds, got {window_step!r}")
        self.max_series = max_series
        self.window_step = float(window_step)
        self._metrics: dict[str, Instrument] = {}
        self._lock = threading.RLock()
        self._collectors: list[Callable[[], Iterable[Any]]] = []
        self._overflow: Counter | None = None
        self._overflow_seen: set[str] = set()
        self._alerts: AlertManager | None = None
        self._health: HealthRegistry | None = None
        self._last_tick = 0.0
        self._ticked = False
        self._servers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- registration ---------------------------------------------------------------------

    def _register(
        self, name: str, type_: str, labelnames: tuple[str, ...], make: Callable[[], Instrument]
    ) -> Any:
        with self._lock:
            cur = self._metrics.get(name)
            if cur is not None:
                kind = cur.type if not isinstance(cur, _CallbackFamily) else f"{cur.type}_callback"
                if kind != type_ or cur.labelnames != labelnames:
                    raise ConfigError(
                        f"metric {name!r} is already registered as {kind} with labels "
                        f"{cur.labelnames!r}; cannot re-register as {type_} with {labelnames!r}"
                    )
                return cur
            for other in _clashing_names(name, type_):
                if other in self._metrics:
                    raise ConfigError(f"metric {name!r} clashes with the series of {other!r}")
            inst = make()
            self._metrics[name] = inst
            return inst

    def counter(
        self, name: str, doc: str, labelnames: Iterable[str] = (), *, max_series: int | None = None
    ) -> Counter:
        """Return the counter ``name`` (``_total`` is appended if missing), creating it once."""
        _check_name(name)
        if not name.endswith("_total"):
            name += "_total"
        ln = _check_labelnames(name, labelnames, ())
        ms = self._max(max_series)
        c: Counter = self._register(name, "counter", ln, lambda: Counter(self, name, doc, ln, ms))
        return c

    def gauge(
        self, name: str, doc: str, labelnames: Iterable[str] = (), *, max_series: int | None = None
    ) -> Gauge:
        """Return the gauge ``name``, creating it once."""
        _check_name(name)
        ln = _check_labelnames(name, labelnames, ())
        ms = self._max(max_series)
        g: Gauge = self._register(name, "gauge", ln, lambda: Gauge(self, name, doc, ln, ms))
        return g

    def histogram(
        self,
        name: str,
        doc: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int | None = None,
    ) -> Histogram:
        """Return the histogram ``name`` with ``le`` ``buckets`` and a quantile sketch."""
        _check_name(name)
        ln = _check_labelnames(name, labelnames, ("le",))
        bounds = _check_buckets(name, buckets)
        ms = self._max(max_series)
        h: Histogram = self._register(
            name, "histogram", ln, lambda: Histogram(self, name, doc, ln, ms, bounds)
        )
        if h._bounds != bounds:
            raise ConfigError(f"histogram {name!r} already exists with buckets {h._bounds!r}")
        return h

    def counter_callback(
        self, name: str, doc: str, fn: Callable[[], CallbackValue], labelnames: Iterable[str] = ()
    ) -> CallbackHandle:
        """Read a counter family from ``fn()`` at scrape time; several owners merge their series."""
        return self._callback(name, doc, fn, labelnames, "counter")

    def gauge_callback(
        self, name: str, doc: str, fn: Callable[[], CallbackValue], labelnames: Iterable[str] = ()
    ) -> CallbackHandle:
        """Read a gauge family from ``fn()`` at scrape time; several owners merge their series."""
        return self._callback(name, doc, fn, labelnames, "gauge")

    def _callback(
        self,
        name: str,
        doc: str,
        fn: Callable[[], CallbackValue],
        labelnames: Iterable[str],
        type_: str,
    ) -> CallbackHandle:
        _check_name(name)
        if not callable(fn):
            raise TypeError(f"callback for {name!r} must be callable, got {fn!r}")
        if type_ == "counter" and not name.endswith("_total"):
            name += "_total"
        ln = _check_labelnames(name, labelnames, ())
        ms = self.max_series
        fam: _CallbackFamily = self._register(
            name, f"{type_}_callback", ln, lambda: _CallbackFamily(self, name, doc, type_, ln, ms)
        )
        return fam.add(fn)

    def register_collector(self, fn: Callable[[], Iterable[Any]]) -> Callable[[], None]:
        """Add ``fn`` yielding ``MetricFamily`` (or prometheus_client ``Metric``) objects at scrape.

        Return a function that unregisters it.
        """
        if not callable(fn):
            raise TypeError(f"collector must be callable, got {fn!r}")
        with self._lock:
            self._collectors.append(fn)

        def unregister() -> None:
            with self._lock:
                if fn in self._collectors:
                    self._collectors.remove(fn)

        return unregister

    def unregister(self, name: str) -> None:
        """Remove the metric ``name`` (and every series of it)."""
        with self._lock:
            self._metrics.pop(name, None)
            if not name.endswith("_total"):
                self._metrics.pop(name + "_total", None)

    def _max(self, max_series: int | None) -> int:
        if max_series is None:
            return self.max_series
        if not isinstance(max_series, int) or max_series < 1:
            raise ConfigError(f"max_series must be a positive int, got {max_series!r}")
        return max_series

    def _note_overflow(self, name: str) -> None:
        if name == "perflayer_monitor_series_overflow_total":
            return  # its own overflow: counting it would re-enter its family lock
        if self._overflow is None:
            self._overflow = self.counter(
                "perflayer_monitor_series_overflow_total",
                "Label sets folded into the overflow series because a metric hit its series limit.",
                ("metric",),
            )
        self._overflow.labels(name).inc()
        if name not in self._overflow_seen:
            self._overflow_seen.add(name)
            log.warning(
                "metric %r hit its series limit; new label sets go to the %r series",
                name,
                OVERFLOW_VALUE,
            )

    # -- reading --------------------------------------------------------------------------

    def metrics(self) -> list[Instrument]:
        """Return every registered instrument and callback family, sorted by name."""
        with self._lock:
            return [self._metrics[k] for k in sorted(self._metrics)]

    def metric(self, name: str) -> Instrument | None:
        """Return the instrument or callback family registered as ``name`` (or ``name_total``)."""
        m = self._metrics.get(name)
        if m is None and not name.endswith("_total"):
            m = self._metrics.get(name + "_total")
        return m

    def collect(self) -> list[MetricFamily]:
        """Return every family with its samples (instruments, callbacks and collectors)."""
        from perflayer.monitor._exposition import collect_families

        return collect_families(self)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """Return the summed value of ``name``'s series matching ``labels`` (None if none match)."""
        m = self.metric(name)
        if m is None:
            return None
        want = dict(labels or {})
        total = 0.0
        found = False
        for lv, v in _series_of(m):
            if all(
                dict(zip(m.labelnames, lv, strict=False)).get(k) == val for k, val in want.items()
            ):
                total += v
                found = True
        return total if found else None

    def exposition(self, openmetrics: bool = False) -> str:
        """Return every metric in Prometheus text 0.0.4 (or OpenMetrics 1.0) format."""
        from perflayer.monitor._exposition import render

        return render(self, openmetrics=openmetrics)

    # -- alerts, evaluation loop ----------------------------------------------------------

    @property
    def alert_manager(self) -> AlertManager:
        """Return this monitor's alert manager (created on first use)."""
        if self._alerts is None:
            with self._lock:
                if self._alerts is None:
                    from perflayer.monitor._alerts import AlertManager

                    self._alerts = AlertManager(self)
        am: AlertManager = self._alerts
        return am

    def add_alert(self, rule: AlertRule | None = None, /, **kwargs: Any) -> AlertRule:
        """Add an ``AlertRule`` (or build one from keyword arguments) and return it."""
        from perflayer.monitor._alerts import AlertRule

        if rule is None:
            rule = AlertRule(**kwargs)
        elif kwargs:
            raise TypeError("add_alert takes an AlertRule or keyword arguments, not both")
        return self.alert_manager.add_rule(rule)

    def remove_alert(self, name: str) -> None:
        """Remove the alert rule ``name``."""
        self.alert_manager.remove_rule(name)

    def add_alert_handler(self, handler: Callable[[Notification], Any]) -> None:
        """Send notifications to ``handler`` (a callable, sync or async; or a WebhookHandler)."""
        self.alert_manager.add_handler(handler)

    def alerts(self) -> list[dict[str, Any]]:
        """Return every alert's state as JSON-ready dicts."""
        if self._alerts is None:
            return []
        return [a.as_dict() for a in self.alert_manager.alerts()]

    def evaluate(self, now: float | None = None) -> list[Notification]:
        """Tick the windows, evaluate every rule and dispatch notifications (blocking)."""
        t = time.monotonic() if now is None else now
        self.tick(t)
        if self._alerts is None:
            return []
        notes = self.alert_manager.evaluate(t)
        self.alert_manager.dispatch(notes)
        return notes

    async def evaluate_async(self, now: float | None = None) -> list[Notification]:
        """Like ``evaluate`` on an event loop (sync handlers run in a worker thread)."""
        t = time.monotonic() if now is None else now
        self.tick(t)
        if self._alerts is None:
            return []
        notes = self.alert_manager.evaluate(t)
        await self.alert_manager.dispatch_async(notes)
        return notes

    def _wake_in(self, next_t: float) -> float:
        """Return seconds until the next evaluation: the regular one at ``next_t`` or sooner."""
        now = time.monotonic()
        wake = next_t
        if self._alerts is not None:
            d = self._alerts.next_deadline(now)
            # why: waking at a pending alert's for_ deadline keeps detection within
            # for_ + one interval (and keep_firing_for expiry exact), not for_ + 2 intervals.
            if d is not None and d + 0.001 < wake:
                wake = d + 0.001
        return max(0.001, wake - now)

    @staticmethod
    def _advance(next_t: float, started: float, interval: float) -> float:
        # Regular evaluations keep a fixed rhythm (no drift by the evaluation's own duration);
        # an evaluation woken early for a deadline leaves the rhythm alone.
        if started + 0.0005 >= next_t:
            next_t += interval
            if next_t <= started:
                next_t = started + interval  # fell behind: skip the missed ones
        return next_t

    def start(self, interval: float = 5.0) -> threading.Thread:
        """Evaluate every ``interval`` seconds on a daemon thread; idempotent."""
        if not interval > 0:
            raise ConfigError(f"evaluation interval must be > 0 seconds, got {interval!r}")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._thread
            stop = self._stop = threading.Event()

            def loop() -> None:
                next_t = time.monotonic()
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        self.evaluate(started)
                    except Exception:  # degrade: keep evaluating
                        log.warning("monitor evaluation failed", exc_info=True)
                    next_t = self._advance(next_t, started, interval)
                    stop.wait(self._wake_in(next_t))

            self._thread = threading.Thread(target=loop, name="perflayer-monitor", daemon=True)
            self._thread.start()
            return self._thread

    def start_async(self, interval: float = 5.0) -> asyncio.Task[None]:
        """Evaluate every ``interval`` seconds on an asyncio task of the running loop."""
        if not interval > 0:
            raise ConfigError(f"evaluation interval must be > 0 seconds, got {interval!r}")

        async def loop() -> None:
            next_t = time.monotonic()
            while True:
                started = time.monotonic()
                try:
                    await self.evaluate_async(started)
                except Exception:
                    log.warning("monitor evaluation failed", exc_info=True)
                next_t = self._advance(next_t, started, interval)
                await asyncio.sleep(self._wake_in(next_t))

        task = asyncio.get_running_loop().create_task(loop(), name="perflayer-monitor")
        self._task = task
        return task

    def stop(self) -> None:
        """Stop the evaluation thread/task and any HTTP servers started by ``serve``."""
        ev, th = self._stop, self._thread
        if ev is not None:
            ev.set()
        if th is not None and th is not threading.current_thread():
            th.join(timeout=5)
        self._thread = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for srv in list(self._servers):
            srv.close()
        self._servers.clear()
        if self._health is not None:
            self._health.close()

    # -- health ---------------------------------------------------------------------------

    def add_check(
        self, name: str, fn: Callable[[], Any], *, timeout: float = 1.0, critical: bool = True
    ) -> None:
        """Register a health check called by ``health()`` with a ``timeout`` (seconds)."""
        if self._health is None:
            from perflayer.monitor._health import HealthRegistry

            self._health = HealthRegistry()
        self._health.add(name, fn, timeout, critical)

    def remove_check(self, name: str) -> None:
        """Forget the health check ``name``."""
        if self._health is not None:
            self._health.remove(name)

    def health(self) -> dict[str, Any]:
        """Call every check and return ``{"status", "checks", "alerts"}`` (JSON-ready)."""
        checks = self._health.run() if self._health is not None else {}
        firing = [a for a in self.alerts() if a["state"] == "firing"]
        status = "ok"
        if any(not c["ok"] and not c["critical"] for c in checks.values()) or firing:
            status = "degraded"
        if any(not c["ok"] and c["critical"] for c in checks.values()) or any(
            a["labels"].get("severity") == "critical" for a in firing
        ):
            status = "failing"
        return {
            "status": status,
            "checks": checks,
            "alerts": [
                {"name": a["name"], "severity": a["labels"]["severity"], "value": a["value"]}
                for a in firing
            ],
        }

    # -- HTTP -----------------------------------------------------------------------------

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 9464,
        *,
        token: str | None = None,
        interval: float = 5.0,
    ) -> Any:
        """Serve /metrics, /health, /alerts and /dashboard on a thread; return the server.

        The server's ``.port`` is the bound port (pass ``port=0`` for a free one); evaluation
        starts too. ``token`` requires ``Authorization: Bearer <token>`` on every path.
        """
        from perflayer.monitor._http import MonitorServer

        srv = MonitorServer(self, host, port, token=token)
        self._servers.append(srv)
        self.start(interval)
        return srv

    # -- windows --------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Snapshot every counter and histogram series into its sliding window."""
        t = time.monotonic() if now is None else now
        prev = self._last_tick if self._ticked else None
        self._last_tick = t
        self._ticked = True
        for m in self.metrics():
            if isinstance(m, Histogram):
                for hc in m.all_series():
                    w = hc._window
                    # why: copying a sketch costs O(bins); only copy when a ring keeps it.
                    if w is not None and w.due(t):
                        w.record(t, hc.sketch(), float(hc._count()), prev)
            elif isinstance(m, (Counter, _CallbackFamily)) and m._window is not None:
                m._window.record_many(t, m.series(), prev)

    def _lazy_tick(self) -> None:
        # Without an evaluation loop, windowed queries still get snapshots, one step apart.
        now = time.monotonic()
        if now - self._last_tick >= self.window_step:
            self.tick(now)

    def rate(
        self,
        name: str,
        window: float = 60.0,
        labels: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> float | None:
        """Return the per-second increase of ``name`` over about the last ``window`` seconds.

        Works on counters (and counter callbacks) and on histograms (observations per second).
        ``now`` is a ``time.monotonic()`` value, for callers that drive ``tick(now)`` themselves.
        """
        if now is None:
            self._lazy_tick()
            now = time.monotonic()
        m = self.metric(name)
        if m is None:
            return None
        total = 0.0
        found = False
        if isinstance(m, Histogram):
            for hc in m.all_series():
                if _match(m.labelnames, hc.labelvalues, labels) and hc._window is not None:
                    r = hc._window.rate(now, float(hc._count()), window)
                    if r is not None:
                        total += r
                        found = True
            return total if found else None
        win = getattr(m, "_window", None)
        if not isinstance(win, CounterWindow):
            return None
        for lv, v in _series_of(m):
            if _match(m.labelnames, lv, labels):
                r = win.rate(lv, now, v, window)
                if r is not None:
                    total += r
                    found = True
        return total if found else None

    def quantile(
        self,
        name: str,
        q: float,
        window: float | None = None,
        labels: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> float | None:
        """Return the ``q``-quantile of histogram ``name`` over matching series (None if empty).

        With ``window`` (seconds) only the values observed in about that window count.
        """
        if window is not None and now is None:
            self._lazy_tick()
        m = self.metric(name)
        if not isinstance(m, Histogram):
            return None
        out = Sketch()
        for hc in m.all_series():
            if _match(m.labelnames, hc.labelvalues, labels):
                sk = hc.sketch()
                if window is not None and hc._window is not None:
                    sk = hc._window.delta(sk, window, now)
                out.merge(sk)
        return out.quantile(q)


def _match(names: tuple[str, ...], values: tuple[str, ...], want: Mapping[str, str] | None) -> bool:
    if not want:
        return True
    d = dict(zip(names, values, strict=False))
    return all(d.get(k) == v for k, v in want.items())


def _series_of(m: Instrument) -> list[tuple[tuple[str, ...], float]]:
    if isinstance(m, Histogram):
        return [(hc.labelvalues, float(hc._count())) for hc in m.all_series()]
    return m.series()


def _clashing_names(name: str, type_: str) -> list[str]:
    """Names whose samples would collide with the samples of a new metric ``name``."""
    out: list[str] = []
    if type_ == "histogram":
        out += [name + s for s in ("_bucket", "_count", "_sum")]
    for s in ("_bucket", "_count", "_sum"):
        if name.endswith(s):
            out.append(name[: -len(s)])
    return out


def _check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        bs = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise ConfigError(
            f"buckets of histogram {name!r} must be numbers, got {buckets!r}"
        ) from None
    if bs and bs[-1] == _INF:
        bs.pop()
    if (
        not bs
        or any(b != b or b == _INF for b in bs)
        or any(a >= b for a, b in itertools.pairwise(bs))
    ):
        raise ConfigError(
            f"buckets of histogram {name!r} must be finite and strictly increasing, got {buckets!r}"
        )
    return tuple(bs)


_default: Monitor | None = None
_default_lock = threading.Lock()


def default() -> Monitor:
    """Return the process-wide Monitor, creating it on first use."""
    global _default
    m = _default
    if m is None:
        with _default_lock:
            if _default is None:
                _default = Monitor()
            m = _default
    return m
