"""Adaptive concurrency: learn how many calls a downstream can take at once, from latency alone.

Design
------
A downstream with ``C`` workers and service time ``S`` answers in about ``S`` while fewer than
``C`` calls are in flight; past ``C`` every extra call waits in its queue, so latency grows by
``S / C`` per call and throughput stays flat (or falls, if the backend thrashes). The best
operating point is the knee ``L = C``: full throughput at the lowest latency. Around it the
costs are lopsided: one call too few loses ``1 / C`` of throughput, one too many only adds a
short wait in the downstream's queue (more than that, and a thrashing backend slows down).

The limiter is never told ``C``. It keeps, per concurrency level (the number of calls in flight
when a call was dispatched, itself included), the count, mean and variance of the latency
samples seen there (old windows fade out), and:

* **Slow start.** A large ``initial_limit`` (above 8) is first checked by one window at 60%
  of it (and halved while latency falls as fast as the limit: both levels past the knee).
  While the calls of that window finish, the limit returns to the level above it (whose
  latency is known): holding the low level until its slowest call is back would leave slots
  idle for nothing. Then the limit doubles each window while latency stays flat (as TCP
  does). The first step that raises latency by more than ``slow_start_rise`` means the knee
  was crossed; Little's law then puts it at ``L * R(flat) / R(L)`` (the Vegas estimate with a
  *mean* no-load latency rather than the minimum, which is far too optimistic for backends
  whose service time varies), and slow start ends one step *above* that estimate (the cheap
  side). While slow start runs, the lane sheds nothing on estimates.
* **A test, not a comparison of windows.** Then, at the operating point ``B``, it asks of
  each neighbour pair whether latency grows from one level to the next as queueing does
  (by ``R / L`` per call) or stays flat. The test is on all recent samples of both levels:
  the difference of the means against the midpoint between the two answers, in standard
  errors. One window's mean has ~2% noise (the service time varies) against a 6% signal at
  16 calls, so single-window comparisons wander; the test instead interleaves probe windows
  at ``B + step`` (nearly free) or ``B - step`` with windows at ``B`` until the samples decide.
  "Queueing below ``B``" (2 standard errors) moves ``B`` down, "flat above ``B``" (1 standard
  error: erring upward is cheap) moves it up; once four windows were probed below without
  a verdict, "flat below" needs only the difference on the flat side of the midpoint (each
  further probe down costs a slot); flat below and queueing above is the knee,
  where it only refreshes the level above now and then. Stale samples below the base (a probe
  down costs ``1 / B`` of throughput) still confirm "flat" while the base's recent samples
  agree with them; the level below is probed again only when they no longer do (the base got
  slower). It follows a downstream that gets faster or slower.
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
# At the knee, the windows held between two refreshing probes up double up to this.
_MAX_HOLD = 16
# Samples at a level not measured for this many windows are stale: they give no verdict (the
# level is probed again) and count as one window's worth once fresh samples come in.
_STALE = 120
# An initial limit at most this is assumed to be below the knee (slow start just doubles it).
_SMALL_START = 8
# A larger initial limit is first checked by one window at this share of it. Not half: below
# the knee each missing slot costs 1 / C of throughput while the window runs, and at 60% the
# latency ratio of a start just past the knee (1.3 at 20 over 16) is still far from pure
# queueing (1.67), which would mean the knee lies lower still.
_PROBE_BELOW = 0.6
# Latency that grows by at least this share of the level ratio means pure queueing (both levels
# past the knee).
_PURE_QUEUEING = 0.9
# A verdict between two levels needs the latency difference this many standard errors away
# from the midpoint between "flat" and "pure queueing". Asymmetric: "queueing" (which moves the
# limit down, and one slot too few costs 1/L of throughput) needs 2 (2.3% wrong); "flat"
# (which moves it up, where one slot too many costs a little queueing) needs 1 (16% wrong).
_Z_QUEUE = 2.0
_Z_FLAT = 1.0
# A level keeps at most this many windows of samples: older ones fade out (exponential
# forgetting), so the levels follow a downstream that changes.
_KEEP_WINDOWS = 16
# Fewer samples than this at a level give no verdict.
_MIN_SAMPLES = 32
# Once the level below the base holds this many samples (four probe windows), "flat" needs only
# the difference on the flat side of the midpoint (0 standard errors): every further probe down
# costs a slot of throughput, and with this many samples a base that really queues (one step
# past the knee) passes for flat only ~3% of the time, and then only costs a little queueing.
_FLAT_BELOW_AFTER = 256


class _Level:
    """Latency samples observed at one concurrency level: count, mean and spread."""

    __slots__ = ("m2", "mean", "n", "stamp")

    def __init__(self, n: int, mean: float, m2: float, stamp: int) -> None:
        self.n = float(n)
        self.mean = mean
        self.m2 = m2
        self.stamp = stamp

    def add_window(self, n: int, mean: float, m2: float, stamp: int, keep: float) -> None:
        """Fold one window in (Chan's parallel update); a stale level is replaced."""
        if stamp - self.stamp > _STALE:
            # why: stale samples still say something; they stay as a prior worth one window,
            # so one fresh window can overrule them but need not start from nothing.
            keep = min(keep, float(n))
        if self.n > keep:
            # why: exponential forgetting: scaling n and m2 keeps the mean and the variance
            # but lets new windows weigh more, so the level tracks a changing downstream.
            f = keep / self.n
            self.n *= f
            self.m2 *= f
        tot = self.n + n
        d = mean - self.mean
        self.mean += d * n / tot
        self.m2 += m2 + d * d * self.n * n / tot
        self.n = tot
        self.stamp = stamp

    def se2(self) -> float:
        """Return the squared standard error of the mean."""
        if self.n < 2:
            return math.inf
        return self.m2 / (self.n - 1) / self.n


class AdaptiveLimiter:
    """A concurrency limit learned from latency (slow start, then tests between neighbour levels).

    >>> lim = AdaptiveLimiter(initial_limit=4)
    >>> tags = [lim.on_dispatch(4) for _ in range(32)]  # a window of calls at the limit
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
        window: int = 64,
        slow_start_window: int = 32,
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
        self._ss_level = 0  # the level whose slow-start window is awaited (0: none)
        self._ss_retry = initial_limit  # that level, kept to measure again if the window is lost
        self._ss_tag = -1  # and that window's tag
        self._probe_tag = -1  # the probe window awaited at the base
        self._state = _HOLD
        self._hold = 1  # windows to hold before the next probe
        self._last_probe = _DOWN
        self._backoff = 1
        self._windows = 0
        self._win_id = 0
        # tag -> [level, dispatched, completed, latency sum, state when opened, sum of squares]
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
            acc = self._acc[tag] = [level, 0, 0, 0.0, self._state, 0.0]
        acc[1] += 1
        need = self._ss_window if self._slow_start else self._window
        if acc[1] >= need:
            self._win_id += 1
            self._filled(tag)
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
        acc[5] += latency * latency
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
            n = acc[2]
            if n > 0:
                mean = acc[3] / n
                self._evaluate(acc[0], n, mean, max(0.0, acc[5] - n * mean * mean), acc[4])

    # -- decisions -----------------------------------------------------------------------

    def _clamp(self, v: float) -> int:
        return max(self.min_limit, min(self.max_limit, round(v)))

    def _step(self) -> int:
        return max(1, self._base // 16)

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

    def _filled(self, tag: int) -> None:
        """A window has all its calls dispatched: choose what to enforce while they finish."""
        if self._slow_start:
            if self._state == _WAIT:
                if self._ss_tag in self._acc:
                    return  # the awaited window is still out; this one only adds samples
                # The awaited window came back without a usable latency, or never came back:
                # measure its level again.
                self._state = _HOLD
                self._ss_level = 0
                self._enforce(self._ss_retry)
                return
            self._state = _WAIT
            self._ss_level = self._ss_retry = self._limit
            self._ss_tag = tag
            above = [k for k in self._levels if k > self._limit]
            if above:
                # why: a probe below a measured level; its calls are all dispatched, so return
                # to the level above (latency known, throughput higher) while they finish.
                self._enforce(min(above))
        elif self._state in (_UP, _DOWN):
            self._enforce(self._base)  # back to base; the verdict comes with the evaluation
            self._state = _WAIT
            self._probe_tag = tag
        elif self._state == _WAIT and self._probe_tag not in self._acc:
            # The awaited probe window was forgotten (its callers went away without a sample or
            # a drop): decide again instead of waiting for it forever.
            self._hold = 1
            self._state = _HOLD
            self._decide(None)
        elif self._state == _HOLD:
            self._hold -= 1
            if self._hold <= 0:
                self._decide(None)

    def _verdict(self, lo: int, hi: int, below: bool = False) -> int:
        """Return +1 if latency grows from ``lo`` to ``hi`` as queueing does, -1 if it is flat,
        0 if the samples cannot tell yet (``below``: ``lo`` is under the base)."""
        a, b = self._levels.get(lo), self._levels.get(hi)
        if a is None or b is None or a.n < _MIN_SAMPLES or b.n < _MIN_SAMPLES:
            return 0
        if self._windows - b.stamp > _STALE:
            return 0
        if self._windows - a.stamp > _STALE:
            # why: stale samples below may only confirm "flat" (fresh samples at ``hi`` that
            # still agree with them); a step down is never taken on stale evidence, and
            # "queueing" or "cannot tell" sends a fresh probe below.
            return -1 if self._test(a, b, lo, hi) < 0 else 0
        z_flat = 0.0 if below and a.n >= _FLAT_BELOW_AFTER else _Z_FLAT
        return self._test(a, b, lo, hi, z_flat)

    def _test(self, a: _Level, b: _Level, lo: int, hi: int, z_flat: float = _Z_FLAT) -> int:
        """Return the verdict of the samples ``a`` at ``lo`` and ``b`` at ``hi``."""
        # why: a test on the two means, not a comparison of two windows: past the knee every
        # extra call adds R / L of queueing (6% at 16), while one window's mean has ~2% noise
        # (the service time varies); samples accumulate over interleaved windows until the
        # difference is clearly on one side of the midpoint between flat and queueing.
        mid = 0.5 * a.mean * (hi - lo) / lo
        d = b.mean - a.mean - mid
        se = math.sqrt(a.se2() + b.se2())
        if d > _Z_QUEUE * se:
            return 1
        if d < -z_flat * se:
            return -1
        return 0

    def _decide(self, probed: str | None) -> None:
        """At the base: move to a neighbour the samples favour, else probe or hold."""
        base, step = self._base, self._step()
        down = self._verdict(base - step, base, True) if base - step >= self.min_limit else -1
        up = self._verdict(base, base + step) if base + step <= self.max_limit else 1
        if down > 0:
            # Queueing already below the base: the knee is lower.
            self._set(base - step)
            self._hold = self._backoff = 1
            self._state = _HOLD
            self._decide_next(_DOWN)
            return
        if up < 0:
            # Flat one step up: the knee is higher.
            self._set(base + step)
            self._hold = self._backoff = 1
            self._state = _HOLD
            self._decide_next(_UP)
            return
        if up == 0 or down == 0:
            # why: undecided: interleave one more probe window with the base windows; when
            # both sides are open, alternate (up first: just above the knee it is nearly free).
            if up == 0 and down == 0:
                probe = _DOWN if self._last_probe == _UP else _UP
            else:
                probe = _UP if up == 0 else _DOWN
            if probed is None:
                self._apply(probe)
            else:
                self._hold = 1
                self._state = _HOLD
            return
        # At the knee (flat below, queueing above): refresh the level above now and then (a
        # probe up costs nothing); the level below is probed again once its samples are stale.
        if probed is None:
            self._hold = self._backoff
            self._apply(_UP)
            return
        self._backoff = min(_MAX_HOLD, self._backoff * 2)
        self._hold = self._backoff
        self._state = _HOLD

    def _decide_next(self, direction: str) -> None:
        """After a move, probe on in the same direction."""
        self._apply(direction)

    def _evaluate(self, level: int, n: int, mean: float, m2: float, kind: str) -> None:
        self._windows += 1
        lv = self._levels.get(level)
        if lv is not None and mean > self._collapse * lv.mean and level == self._base:
            # The backend changed under us: cut in proportion and relearn around the new point.
            self._levels.clear()
            self._levels[level] = _Level(n, mean, m2, self._windows)
            self._hold = self._backoff = 1
            self._set(math.floor(level * lv.mean / mean))
            self._state = _HOLD
            self._acc.clear()
            return
        if lv is None:
            self._levels[level] = _Level(n, mean, m2, self._windows)
        else:
            lv.add_window(n, mean, m2, self._windows, _KEEP_WINDOWS * self._window)
        if self._slow_start:
            if level == self._ss_level:
                self._ss_level = 0
                self._slow_start_step(level)
        elif kind in (_UP, _DOWN) and self._state == _WAIT:
            self._decide(kind)

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
                self._finish_slow_start(level, hi * r_lo / r_hi, hi)
                return
            self._set(hi * 2)  # flat all the way up to hi: keep doubling from there
            self._state = _HOLD
            return
        below = [k for k in self._levels if k < level]
        if not below and level > _SMALL_START and level // 2 >= self.min_limit:
            # why: a large initial limit may already be past the knee, where doubling learns
            # nothing; one window below it tells which side of the knee we started on.
            self._set(int(level * _PROBE_BELOW))
            self._state = _HOLD
            return
        if below:
            prev = max(below)
            r_prev = self._levels[prev].mean
            r_now = self._levels[level].mean
            if r_now > self._ss_rise * r_prev:
                # Knee crossed between prev (latency was flat) and level: Little's law puts it
                # at L * R0 / R(L) (Vegas with a mean R0); it is at least prev.
                self._finish_slow_start(prev, level * r_prev / r_now, level)
                return
        if self._base >= self.max_limit:
            self._slow_start = False
            self._hold = self._backoff = 1
            self._set(self.max_limit)
            self._state = _HOLD
            return
        self._set(self._base * 2)
        self._state = _HOLD

    def _finish_slow_start(self, flat: int, knee: float, queueing: int) -> None:
        """Leave slow start one step above the estimated knee (between flat and queueing)."""
        # why: the estimate comes from two short windows (~8% noise); one slot too few costs
        # 1/L of throughput for as long as the climb takes, one too many only a little
        # queueing, and the step down from there is confirmed at no throughput cost.
        est = math.ceil(knee)
        est += max(1, est // 16)
        self._slow_start = False
        self._hold = self._backoff = 1
        self._set(max(flat, min(queueing, est)))
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
        if state != _HOLD:
            self._last_probe = state
