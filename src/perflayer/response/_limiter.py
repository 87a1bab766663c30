"""Adaptive concurrency: learn how many calls a downstream can take at once, from latency alone.

Design
------
A downstream with ``C`` workers and service time ``S`` answers in about ``S`` while fewer than
``C`` calls are in flight; past ``C`` every extra call waits in its queue, so latency grows by
``S / C`` per call and throughput stays flat (or falls, if the backend thrashes). The best
operating point is the knee ``L = C``: full throughput at the lowest latency. It is the
maximum of Kleinrock's *power*, ``throughput / latency``; with ``L`` calls in flight Little's law
gives ``throughput = L / R(L)``, so ``power(L) = L / R(L)**2`` is computed from latency alone.

The limiter is never told ``C``. It keeps, per concurrency level (the number of calls in flight
when a call was dispatched, itself included), the mean latency of the recent windows, and:

* **Slow start.** A large ``initial_limit`` (above 8) is first checked by one window at half
  of it (and halved again while latency halves with it: both levels past the knee). Then the
  limit doubles each window while latency stays flat (as TCP does). The first step that
  raises latency by more than ``slow_start_rise`` means the knee was crossed; Little's law
  then puts it at ``L * R(flat) / R(L)``, rounded up (the Vegas estimate with a *mean*
  no-load latency rather than the minimum, which is far too optimistic for backends whose
  service time varies). While slow start runs, the lane sheds nothing on estimates.
* **Hill climbing on power.** It then alternates windows at ``L`` with probes at ``L + step``
  and (less often, since going below the knee costs throughput) ``L - step``, and moves to a
  neighbour whose power is higher. Power is flat-then-falling around the knee, so this settles
  at ``C`` and follows it when the backend gets faster or slower.
* **Collapse.** A window whose latency is ``collapse`` times the level's recent mean means the
  backend changed under us: the limit is cut in proportion (multiplicative decrease, as AIMD)
  and the per-level history is forgotten.
* **App-limited.** Windows only count calls dispatched *at* the limit, so a lightly loaded
  service (the limit is not binding) neither grows nor shrinks it, as in Netflix'
  concurrency-limits ("don't grow the limit when in-flight < limit / 2").

References: Netflix concurrency-limits (Vegas, Gradient2), TCP slow start and Vegas, BBR's
bandwidth-delay product, Kleinrock's "power" (1979).
"""

from __future__ import annotations

import math
from typing import Any

from perflayer.errors import ConfigError

__all__ = ["AdaptiveLimiter"]

_HOLD, _UP, _DOWN, _WAIT = "hold", "up", "down", "wait"
# Probes alternate up and down; after each probe that finds the current point better, the
# number of windows held before the next probe doubles up to this (a probe below the knee
# costs throughput, so a settled limiter should rarely make one).
_MAX_HOLD = 16
# A level not measured for this many windows is remeasured from scratch.
_STALE = 40
# Power is throughput**BETA / latency (Kleinrock's generalized power); with Little's law,
# throughput = L / R, so power = L**BETA / R**(BETA + 1). BETA = 2 favours throughput: below
# the knee a step up gains (1 + 1/L)**2, above it a step up still loses L / (L + 1).
_BETA = 2
# An initial limit at most this is assumed to be below the knee (slow start just doubles it).
_SMALL_START = 8
# Latency that grows by at least this share of the level ratio means pure queueing (both levels
# past the knee).
_PURE_QUEUEING = 0.9
# A step down needs latency at the base to exceed the level below by this share of the
# L / (L - step) growth that pure queueing gives (0.5 would be the unbiased midpoint).
_DOWN_SHARE = 0.75
# Hysteresis in favour of the higher limit (see _judge_probe).
_BIAS_UP = 0.02


class _Level:
    """Recent mean latency observed at one concurrency level."""

    __slots__ = ("mean", "stamp")

    def __init__(self, mean: float, stamp: int) -> None:
        self.mean = mean
        self.stamp = stamp

    def add_window(self, mean: float, stamp: int) -> None:
        """Fold one window's mean in; a stale level is replaced rather than averaged."""
        # why: an EWMA over whole windows (not samples), so a fresh probe counts for half at
        # once while older windows still damp the noise of a single window.
        if stamp - self.stamp > _STALE:
            self.mean = mean
        else:
            self.mean = 0.5 * self.mean + 0.5 * mean
        self.stamp = stamp


class AdaptiveLimiter:
    """A concurrency limit learned from latency (slow start, then hill climbing on power).

    >>> lim = AdaptiveLimiter(initial_limit=4)
    >>> tags = [lim.on_dispatch(4) for _ in range(16)]  # a window of calls at the limit
    >>> for tag in tags:
    ...     lim.on_sample(0.030, tag)
    >>> lim.limit  # latency stayed flat: slow start doubles
    8
    """

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 1,
        max_limit: int = 1000,
        window: int = 192,
        slow_start_window: int = 16,
        slow_start_rise: float = 1.15,
        collapse: float = 2.0,
    ) -> None:
        for name, v in (
            ("initial_limit", initial_limit),
            ("min_limit", min_limit),
            ("max_limit", max_limit),
            ("window", window),
            ("slow_start_window", slow_start_window),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        if max_limit < min_limit:
            raise ConfigError(f"max_limit ({max_limit!r}) is below min_limit ({min_limit!r})")
        if not min_limit <= initial_limit <= max_limit:
            raise ConfigError(
                f"initial_limit must lie in [{min_limit}, {max_limit}], got {initial_limit!r}"
            )
        if not slow_start_rise > 1.0:
            raise ConfigError(f"slow_start_rise must be > 1, got {slow_start_rise!r}")
        if not collapse > 1.0:
            raise ConfigError(f"collapse must be > 1, got {collapse!r}")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self._window = window
        self._ss_window = slow_start_window
        self._ss_rise = slow_start_rise
        self._collapse = collapse
        self._base = initial_limit  # the operating point
        self._limit = initial_limit  # what is enforced now (the base or a probe)
        self._levels: dict[int, _Level] = {}
        self._slow_start = min_limit < max_limit  # a pinned limit has nothing to learn
        self._state = _HOLD
        self._hold = 1  # windows to hold before the next probe
        self._backoff = 1
        self._next_probe = _UP
        self._windows = 0
        self._win_id = 0
        # tag -> [level, dispatched, completed, latency sum, state when opened]
        self._acc: dict[int, list[Any]] = {}
        self.adjustments = 0

    @property
    def limit(self) -> int:
        """Return the number of calls allowed in flight now."""
        return self._limit

    @property
    def base(self) -> int:
        """Return the learned operating point (``limit`` may be a probe one step away)."""
        return self._base

    @property
    def in_slow_start(self) -> bool:
        """Return True until the first knee has been found."""
        return self._slow_start

    def latency_at(self, level: int) -> float | None:
        """Return the recent mean latency (seconds) seen at ``level`` calls in flight."""
        lv = self._levels.get(level)
        return None if lv is None else lv.mean

    def on_dispatch(self, level: int) -> int:
        """Note a call dispatched with ``level`` calls in flight (itself included).

        Return the tag to pass to ``on_sample`` (or ``on_drop``) when the call ends.
        """
        # why: only calls dispatched at the enforced limit say anything about it; calls below it
        # ran while the limit was not binding (the app-limited case) and are ignored. Windows
        # are a fixed set of dispatched calls, evaluated once all of them have ended: closing
        # a window at its N-th *completion* would drop its slowest calls and bias it low.
        if level != self._limit:
            return -1
        tag = self._win_id
        acc = self._acc.get(tag)
        if acc is None:
            acc = self._acc[tag] = [level, 0, 0, 0.0, self._state]
        acc[1] += 1
        need = self._ss_window if self._slow_start else self._window
        if acc[1] >= need:
            self._win_id += 1
            self._filled(acc)
            # Forget windows whose calls never all came back (callers that went away).
            for old in [t for t in self._acc if t < tag - 8]:
                del self._acc[old]
        return tag

    def on_sample(self, latency: float, tag: int) -> None:
        """Record the latency (seconds) of the call ``on_dispatch`` tagged."""
        if tag < 0 or not latency >= 0.0 or math.isinf(latency):
            self.on_drop(tag)
            return
        acc = self._acc.get(tag)
        if acc is None:
            return
        acc[2] += 1
        acc[3] += latency
        self._maybe_evaluate(tag, acc)

    def on_drop(self, tag: int) -> None:
        """Forget a tagged call that ended without a usable latency."""
        acc = self._acc.get(tag)
        if acc is None:
            return
        acc[1] -= 1
        self._maybe_evaluate(tag, acc)

    def _maybe_evaluate(self, tag: int, acc: list[Any]) -> None:
        if tag < self._win_id and acc[2] >= acc[1]:
            del self._acc[tag]
            if acc[2] > 0:
                self._evaluate(acc[0], acc[3] / acc[2], acc[4])

    # -- decisions -----------------------------------------------------------------------

    def _clamp(self, v: float) -> int:
        return max(self.min_limit, min(self.max_limit, round(v)))

    def _step(self) -> int:
        return max(1, self._base // 16)

    def _power(self, level: int) -> float | None:
        lv = self._levels.get(level)
        if lv is None or lv.mean <= 0.0:
            return None
        return float(level**_BETA) / lv.mean ** (_BETA + 1)

    def _set(self, base: float) -> None:
        b = self._clamp(base)
        if b != self._base:
            self.adjustments += 1
        self._base = b
        self._enforce(b)

    def _enforce(self, limit: int) -> None:
        """Change the enforced limit; a window still open at the old one is abandoned."""
        if limit != self._limit:
            self._acc.pop(self._win_id, None)
            self._win_id += 1
            self._limit = limit

    def _filled(self, acc: list[Any]) -> None:
        """A window has all its calls dispatched: choose what to enforce while they finish."""
        if self._slow_start:
            self._state = _WAIT  # hold the level until the window is evaluated
        elif self._state in (_UP, _DOWN):
            self._enforce(self._base)  # back to base; the verdict comes with the evaluation
            self._state = _WAIT
        elif self._state == _HOLD:
            self._hold -= 1
            if self._hold <= 0:
                probe = self._next_probe
                self._next_probe = _DOWN if probe == _UP else _UP
                if probe == _DOWN and self._flat_below():
                    # why: a probe below the knee costs throughput; skip it while the level
                    # below is known to be no faster (latency flat: we are not past the knee).
                    self._hold = self._backoff
                    return
                self._apply(probe)

    def _flat_below(self) -> bool:
        """Return True if latency one step below the base is recent and about the same."""
        base, step = self._base, self._step()
        lo, hi = self._levels.get(base - step), self._levels.get(base)
        if lo is None or hi is None:
            return False
        # why: no staleness limit here: if the downstream slowed down since lo was measured,
        # hi looks higher and the probe runs; if it sped up, skipping the probe is right.
        # Past the knee latency grows like L; flat means less than half of that growth.
        return hi.mean < lo.mean * (1.0 + 0.5 * step / base)

    def _evaluate(self, level: int, mean: float, kind: str) -> None:
        self._windows += 1
        lv = self._levels.get(level)
        if lv is not None and mean > self._collapse * lv.mean and level == self._base:
            # The backend changed under us: cut in proportion and relearn around the new point.
            self._levels.clear()
            self._levels[level] = _Level(mean, self._windows)
            self._hold = self._backoff = 1
            self._set(math.floor(level * lv.mean / mean))
            self._state = _HOLD
            self._acc.clear()
            return
        if lv is None:
            self._levels[level] = _Level(mean, self._windows)
        else:
            lv.add_window(mean, self._windows)
        if self._slow_start:
            if level == self._limit:
                self._slow_start_step(level)
        elif kind in (_UP, _DOWN) and self._state == _WAIT:
            self._judge_probe(level, kind)

    def _slow_start_step(self, level: int) -> None:
        above = [k for k in self._levels if k > level]
        if above:
            # Halving a large initial limit: which side of the knee were we on?
            hi = min(above)
            r_lo, r_hi = self._levels[level].mean, self._levels[hi].mean
            ratio = r_hi / r_lo
            if ratio >= _PURE_QUEUEING * hi / level and level // 2 >= self.min_limit:
                # Latency fell as fast as the limit: level is past the knee too; halve again.
                self._set(level // 2)
                self._state = _HOLD
                return
            if ratio > self._ss_rise:
                # Flat at level, queueing at hi: the knee lies between; Little's law puts it
                # at hi * R(level) / R(hi).
                self._finish_slow_start(max(level, math.ceil(hi * r_lo / r_hi)))
                return
            self._set(hi * 2)  # flat all the way up to hi: keep doubling from there
            self._state = _HOLD
            return
        below = [k for k in self._levels if k < level]
        if not below and level > _SMALL_START and level // 2 >= self.min_limit:
            # why: a large initial limit may already be past the knee, where doubling learns
            # nothing; one window at half of it tells which side of the knee we started on.
            self._set(level // 2)
            self._state = _HOLD
            return
        if below:
            prev = max(below)
            r_prev = self._levels[prev].mean
            r_now = self._levels[level].mean
            if r_now > self._ss_rise * r_prev:
                # Knee crossed between prev (latency was flat) and level: Little's law puts it
                # at L * R0 / R(L) (Vegas with a mean R0); it is at least prev.
                self._slow_start = False
                self._hold = self._backoff = 1
                self._set(max(prev, math.ceil(level * r_prev / r_now)))
                self._state = _HOLD
                return
        if self._base >= self.max_limit:
            self._slow_start = False
            self._hold = self._backoff = 1
            self._set(self.max_limit)
            self._state = _HOLD
            return
        self._set(self._base * 2)
        self._state = _HOLD

    def _finish_slow_start(self, base: float) -> None:
        self._slow_start = False
        self._hold = self._backoff = 1
        self._set(base)
        self._state = _HOLD

    def _judge_probe(self, level: int, kind: str) -> None:
        base = self._base
        lo, hi = self._levels.get(level), self._levels.get(base)
        better = False
        if level != base and lo is not None and hi is not None:
            if kind == _UP:
                # why: below the knee a missing slot is lost throughput, above it an extra one
                # costs a little queueing; so lean up: accept a step that loses < BIAS power.
                p_probe, p_base = self._power(level), self._power(base)
                better = (
                    p_probe is not None
                    and p_base is not None
                    and p_probe > p_base * (1.0 - _BIAS_UP)
                )
            else:
                # Step down only on the signature of queueing between the two levels: latency
                # growing by most of the L / (L - step) that pure queueing gives.
                step = base - level
                better = hi.mean > lo.mean * (1.0 + _DOWN_SHARE * step / base)
        if better:
            # The neighbour is better: move there and keep probing the same way.
            self._set(level)
            self._hold = self._backoff = 1
            self._apply(kind)
            return
        self._backoff = min(_MAX_HOLD, self._backoff * 2)
        self._hold = self._backoff
        self._state = _HOLD

    def _apply(self, state: str) -> None:
        base, step = self._base, self._step()
        if state == _UP and base + step <= self.max_limit:
            self._enforce(base + step)
        elif state == _DOWN and base - step >= self.min_limit:
            self._enforce(base - step)
        else:
            state = _HOLD
            self._enforce(base)
        self._state = state
