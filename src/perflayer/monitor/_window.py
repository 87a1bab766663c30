"""Sliding windows (1, 5, 15 minutes) for rates and quantiles, in bounded memory.

A window never touches the hot path: ``Monitor.tick()`` (run by the evaluation loop, or lazily
by a windowed query) snapshots each series' cumulative state into two rings,

* a fine ring: one snapshot per ``FINE_STEP`` seconds covering the last ~minute, and
* a coarse ring: one snapshot per ``COARSE_STEP`` seconds covering the last 15+ minutes,

so a counter costs 2 x (8 + 17) floats and a histogram 25 sketch copies, whatever the traffic
(``Monitor(window_step=...)`` scales both steps). A windowed value is "current minus the
snapshot nearest to ``now - window``": the rate of a counter is its increase over the elapsed
time, the quantile of a histogram is the quantile of ``current.minus(snapshot)`` (DDSketch
bins are counts, so subtraction is exact). The window is
therefore resolved to one snapshot step; the elapsed time used is the real one, not the nominal.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from perflayer.monitor._sketch import Sketch

__all__ = ["COARSE_STEP", "FINE_STEP", "WINDOWS", "CounterWindow", "SketchWindow", "per_second"]

FINE_STEP = 10.0
FINE_KEEP = 8  # 70-80 s of 10 s snapshots
COARSE_STEP = 60.0
_COARSE_FACTOR = COARSE_STEP / FINE_STEP
COARSE_KEEP = 17  # 16-17 min of 1 min snapshots
#: The standard windows, in seconds.
WINDOWS = (60.0, 300.0, 900.0)


def per_second(t0: float, v0: float, t1: float, v1: float) -> float | None:
    """Return the increase from ``(t0, v0)`` to ``(t1, v1)`` per second (None if no time passed).

    A value that went down was reset: count from zero, as Prometheus' ``rate()`` does.
    """
    dt = t1 - t0
    if dt <= 0:
        return None
    return (v1 - v0 if v1 >= v0 else v1) / dt


class _Rings:
    """Two rings of ``(t, payload)`` snapshots, fine and coarse."""

    __slots__ = ("coarse", "fine", "step")

    def __init__(self, step: float = FINE_STEP) -> None:
        self.step = step
        self.fine: deque[tuple[float, object]] = deque(maxlen=FINE_KEEP)
        self.coarse: deque[tuple[float, object]] = deque(maxlen=COARSE_KEEP)

    def record(self, t: float, payload: object) -> None:
        fine, coarse = self.fine, self.coarse
        if not fine or t - fine[-1][0] >= self.step * 0.98:
            fine.append((t, payload))
        if not coarse or t - coarse[-1][0] >= self.step * _COARSE_FACTOR * 0.98:
            coarse.append((t, payload))

    def due(self, t: float) -> bool:
        """Return whether a snapshot at ``t`` would be kept by either ring."""
        fine, coarse = self.fine, self.coarse
        return (
            not fine
            or t - fine[-1][0] >= self.step * 0.98
            or t - coarse[-1][0] >= self.step * _COARSE_FACTOR * 0.98
        )

    def base(self, now: float, window: float) -> tuple[float, object] | None:
        """Return the snapshot nearest to ``now - window`` (None if there is none yet)."""
        target = now - window
        best: tuple[float, object] | None = None
        for ring in (self.fine, self.coarse):
            for t, p in ring:
                if t >= now:
                    continue
                if best is None or abs(t - target) < abs(best[0] - target):
                    best = (t, p)
        return best

    def history(self, fine: bool) -> list[tuple[float, object]]:
        return list(self.fine if fine else self.coarse)


class CounterWindow:
    """Rings of ``(t, value)`` per label set of one counter family."""

    __slots__ = ("_lock", "_rings", "_step")

    def __init__(self, step: float = FINE_STEP) -> None:
        self._step = step
        self._rings: dict[tuple[str, ...], _Rings] = {}
        self._lock = threading.Lock()

    def record_many(
        self,
        t: float,
        series: Iterable[tuple[tuple[str, ...], float]],
        prev_t: float | None = None,
    ) -> None:
        """Snapshot every series' value at time ``t``; ``prev_t`` is the monitor's previous tick.

        A series first seen now did not exist at ``prev_t``, so it gets a zero snapshot there:
        its whole value counts as increase (a new label set's first requests are not lost).
        """
        with self._lock:
            for key, v in series:
                r = self._rings.get(key)
                if r is None:
                    r = self._rings[key] = _Rings(self._step)
                    if prev_t is not None and prev_t < t:
                        r.record(prev_t, 0.0)
                r.record(t, v)

    def rate(self, key: tuple[str, ...], now: float, value: float, window: float) -> float | None:
        """Return the per-second increase of series ``key`` over about ``window`` seconds."""
        with self._lock:
            r = self._rings.get(key)
            b = r.base(now, window) if r is not None else None
        if b is None:
            return None
        assert isinstance(b[1], float)
        return per_second(b[0], b[1], now, value)

    def history(self, key: tuple[str, ...], fine: bool = True) -> list[tuple[float, float]]:
        """Return the snapshots of ``key`` as ``(t, value)``."""
        with self._lock:
            r = self._rings.get(key)
            return [(t, float(v)) for t, v in r.history(fine)] if r else []  # type: ignore[arg-type]


class SketchWindow:
    """Rings of ``(t, (count, sketch))`` for one histogram series."""

    __slots__ = ("_first", "_lock", "_rings")

    def __init__(self, step: float = FINE_STEP) -> None:
        self._rings = _Rings(step)
        self._lock = threading.Lock()
        self._first: float | None = None  # first snapshot, if taken at the monitor's first tick

    def record(self, t: float, sketch: Sketch, count: float, prev_t: float | None = None) -> None:
        """Snapshot the series' sketch (a copy the caller no longer touches) at time ``t``.

        The first snapshot also records an empty one at the monitor's previous tick ``prev_t``,
        when the series did not exist yet.
        """
        with self._lock:
            if not self._rings.fine:
                if prev_t is not None and prev_t < t:
                    self._rings.record(prev_t, (0.0, Sketch()))
                else:
                    self._first = t
            self._rings.record(t, (count, sketch))

    def due(self, t: float) -> bool:
        """Return whether a snapshot at ``t`` would be kept (so the caller can skip the copy)."""
        with self._lock:
            return self._rings.due(t)

    def delta(self, current: Sketch, window: float, now: float | None = None) -> Sketch:
        """Return the sketch of the values observed in about the last ``window`` seconds."""
        import time

        t = time.monotonic() if now is None else now
        with self._lock:
            b = self._rings.base(t, window)
        if b is None:
            return current
        t0, payload = b
        if t0 == self._first and t - window < t0:
            # The window reaches back past the monitor's first tick: what was observed before it
            # is of unknown age, so it counts (a just-started monitor answers with what it has).
            return current
        assert isinstance(payload, tuple)
        return current.minus(payload[1])

    def rate(self, now: float, count: float, window: float) -> float | None:
        """Return observations per second over about ``window`` seconds."""
        with self._lock:
            b = self._rings.base(now, window)
        if b is None:
            return None
        assert isinstance(b[1], tuple)
        return per_second(b[0], float(b[1][0]), now, count)

    def history(self, fine: bool = True) -> list[tuple[float, float, Sketch]]:
        """Return the snapshots as ``(t, count, sketch)``."""
        with self._lock:
            out = []
            for t, p in self._rings.history(fine):
                assert isinstance(p, tuple)
                out.append((t, float(p[0]), p[1]))
            return out

    def nbytes(self) -> int:
        """Return the approximate memory held by the snapshots, in bytes."""
        with self._lock:
            seen: set[int] = set()
            total = 0
            for ring in (self._rings.fine, self._rings.coarse):
                for _, p in ring:
                    assert isinstance(p, tuple)
                    if id(p[1]) not in seen:
                        seen.add(id(p[1]))
                        total += p[1].nbytes()
            return total
