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

* **Slow start.** From ``initial_limit`` it doubles the limit each window while latency stays
  flat (as TCP does). The first doubling that raises latency by more than ``slow_start_rise``
  means the knee was crossed; Little's law then puts it at ``L * R(L/2) / R(L)`` (the Vegas
  estimate with a *mean* no-load latency rather than the minimum, which is far too optimistic
  for backends whose service time varies).
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

from perflayer.errors import ConfigError

__all__ = ["AdaptiveLimiter"]

_HOLD, _UP, _DOWN = "hold", "up", "down"
# The probing schedule in steady state: a down-probe costs throughput when the limit is already
# at the knee, so it runs half as often as the up-probe (which only costs a little latency).
_SCHEDULE = (_HOLD, _UP, _HOLD, _UP, _HOLD, _DOWN)
# A level not measured for this many windows is remeasured from scratch.
_STALE = 12


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
    >>> for _ in range(64):
    ...     lim.on_sample(0.030, level=4)
    >>> lim.limit
    8
    """

    def __init__(
        self,
        *,
        initial_limit: int = 8,
        min_limit: int = 1,
        max_limit: int = 1000,
        window: int = 64,
        slow_start_window: int = 24,
        slow_start_rise: float = 1.25,
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
        self._slow_start = True
        self._state = _HOLD
        self._phase = 0
        self._windows = 0
        self._n = 0
        self._sum = 0.0
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

    def on_sample(self, latency: float, level: int) -> None:
        """Record one call's latency (seconds) and the in-flight count when it was dispatched."""
        # why: only calls dispatched at the enforced limit say anything about it; calls below it
        # ran while the limit was not binding (the app-limited case) and are ignored.
        if level != self._limit or not latency >= 0.0 or math.isinf(latency):
            return
        self._n += 1
        self._sum += latency
        need = self._ss_window if self._slow_start else self._window
        if self._n >= need:
            mean = self._sum / self._n
            self._n = 0
            self._sum = 0.0
            self._end_window(self._limit, mean)

    # -- decisions -----------------------------------------------------------------------

    def _clamp(self, v: float) -> int:
        return max(self.min_limit, min(self.max_limit, round(v)))

    def _step(self) -> int:
        return max(1, self._base // 16)

    def _power(self, level: int) -> float | None:
        lv = self._levels.get(level)
        if lv is None or lv.mean <= 0.0:
            return None
        return level / (lv.mean * lv.mean)

    def _set(self, base: float) -> None:
        b = self._clamp(base)
        if b != self._base:
            self.adjustments += 1
        self._base = b
        self._limit = b

    def _end_window(self, level: int, mean: float) -> None:
        self._windows += 1
        lv = self._levels.get(level)
        if lv is not None and mean > self._collapse * lv.mean:
            # The backend changed under us: cut in proportion and relearn around the new point.
            self._levels.clear()
            self._levels[level] = _Level(mean, self._windows)
            self._phase = 0
            self._state = _HOLD
            self._set(math.floor(level * lv.mean / mean))
            return
        if lv is None:
            self._levels[level] = _Level(mean, self._windows)
        else:
            lv.add_window(mean, self._windows)
        if self._slow_start:
            self._slow_start_step(level)
        else:
            self._climb_step(level)

    def _slow_start_step(self, level: int) -> None:
        below = [k for k in self._levels if k < level]
        if below:
            r_prev = self._levels[max(below)].mean
            r_now = self._levels[level].mean
            if r_now > self._ss_rise * r_prev:
                # Knee crossed: Little's law puts it at L * R0 / R(L) (Vegas with a mean R0).
                self._slow_start = False
                self._phase = 0
                self._state = _HOLD
                self._set(level * r_prev / r_now)
                return
        if self._base >= self.max_limit:
            self._slow_start = False
            self._state = _HOLD
            self._set(self.max_limit)
            return
        self._set(self._base * 2)

    def _climb_step(self, level: int) -> None:
        base = self._base
        if self._state in (_UP, _DOWN) and level == self._limit != base:
            p_probe, p_base = self._power(level), self._power(base)
            if p_probe is not None and p_base is not None and p_probe > p_base:
                # The neighbour is better: move there and keep probing the same way.
                self._set(level)
                self._apply(self._state)
                return
        self._phase += 1
        self._apply(_SCHEDULE[self._phase % len(_SCHEDULE)])

    def _apply(self, state: str) -> None:
        base, step = self._base, self._step()
        if state == _UP and base + step <= self.max_limit:
            self._limit = base + step
        elif state == _DOWN and base - step >= self.min_limit:
            self._limit = base - step
        else:
            state = _HOLD
            self._limit = base
        self._state = state
