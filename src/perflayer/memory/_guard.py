"""MemoryGuard: keep a process under its real memory limit.

Design
------
*Limit.* The effective limit is the smallest of the cgroup v2/v1 limits up the hierarchy,
physical RAM and the user's limit (see ``_cgroup``), read once at construction and on
``refresh_limit()``.

*Sampling.* RSS comes from one ``pread`` on a kept-open ``/proc/PID/statm`` (~3 us). A daemon
thread samples every ``interval``. A polling thread alone is not enough: behind a main thread
that holds the GIL for long stretches it can go quiet for hundreds of milliseconds, so
``admit()`` and ``check()`` also sample inline when the last reading is older than
``stale_after``. The hot path therefore never waits for the thread to be scheduled.

*Levels.* NORMAL < ELEVATED (``warning`` of the limit) < CRITICAL (``critical``). A level is
left only when usage falls ``hysteresis`` below its threshold, so a process hovering at the
line does not flap. PSI (``some avg10`` in percent) can raise the level on its own.

*Reactions.* On every upward change, and again every ``relief_cooldown`` seconds while above
NORMAL, registered relievers (caches) are asked to ``shrink(fraction)`` and a gc pass runs.
Callbacks (sync, or async on the loop they were registered from) run on every change, before
relief, so a callback that must stop an allocation runs first.

*admit().* Reads a cached int and a vDSO clock: no system call unless the reading is stale. In
safety mode a CRITICAL guard makes ``admit()`` raise MemoryPressureError ("raise") or wait up to
``wait_timeout`` for the level to drop ("wait").
"""

from __future__ import annotations

import enum
import gc
import inspect
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union, runtime_checkable

from perflayer.errors import ConfigError, MemoryPressureError
from perflayer.memory._cgroup import LimitInfo, effective_limit
from perflayer.memory._metrics import register_guard
from perflayer.memory._rss import PsiReader, RssReader

if TYPE_CHECKING:  # asyncio is imported where used: it costs ~30 ms at start-up
    import asyncio

__all__ = ["Level", "LevelChange", "MemoryGuard", "Reliever"]

log = logging.getLogger("perflayer.memory")
_monotonic = time.monotonic


class Level(enum.IntEnum):
    """Memory pressure level of a guard."""

    NORMAL = 0
    ELEVATED = 1
    CRITICAL = 2


@runtime_checkable
class Reliever(Protocol):
    """Something that can give memory back on request (a cache implements it)."""

    def shrink(self, fraction: float) -> int:
        """Drop about ``fraction`` (0..1) of what is held; return the bytes freed (estimate)."""


@dataclass(frozen=True)
class LevelChange:
    """One level change, passed to callbacks."""

    old: Level
    new: Level
    rss: int
    limit: int
    psi_some: float | None
    at: float

    @property
    def fraction(self) -> float:
        """RSS as a fraction of the effective limit."""
        return self.rss / self.limit


SyncCallback = Callable[[LevelChange], object]
AsyncCallback = Callable[[LevelChange], Awaitable[object]]
Callback = Union[SyncCallback, AsyncCallback]  # noqa: UP007 - a runtime alias on 3.10

_SAFETY = ("off", "raise", "wait")


def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return float(value)


class MemoryGuard:
    """Watch RSS against the effective limit; call back, relieve and gate at pressure levels.

    >>> with MemoryGuard(warning=0.8, critical=0.95) as guard:
    ...     guard.admit()            # cheap inline check on an allocation-heavy path
    ...     guard.level in (Level.NORMAL, Level.ELEVATED, Level.CRITICAL)
    True
    """

    def __init__(
        self,
        limit: int | None = None,
        warning: float = 0.8,
        critical: float = 0.95,
        interval: float = 0.01,
        *,
        hysteresis: float = 0.05,
        safety: Literal["off", "raise", "wait"] = "off",
        wait_timeout: float = 5.0,
        stale_after: float | None = None,
        psi: bool = True,
        psi_elevated: float = 10.0,
        psi_critical: float = 40.0,
        relief: tuple[float, float] = (0.25, 0.5),
        relief_cooldown: float = 1.0,
        gc_after_relief: bool = True,
        pid: int | None = None,
        proc_root: str = "/proc",
        cgroup_root: str = "/sys/fs/cgroup",
        name: str = "default",
        monitor: Any | None = None,
        register_metrics: bool = True,
    ) -> None:
        """Read the effective limit and open the RSS source; nothing runs until ``start()``."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigError(f"limit must be an int number of bytes or None, got {limit!r}")
        if limit is not None and limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit!r}")
        self._warning = _fraction("warning", warning)
        self._critical = _fraction("critical", critical)
        if self._warning >= self._critical:
            raise ConfigError(f"warning ({warning!r}) must be below critical ({critical!r})")
        if not isinstance(interval, (int, float)) or interval <= 0:
            raise ConfigError(f"interval must be a positive number of seconds, got {interval!r}")
        if not isinstance(hysteresis, (int, float)) or not 0 <= hysteresis < self._warning:
            raise ConfigError(f"hysteresis must be in [0, warning), got {hysteresis!r}")
        if safety not in _SAFETY:
            raise ConfigError(f"safety must be one of {_SAFETY}, got {safety!r}")
        if wait_timeout < 0:
            raise ConfigError(f"wait_timeout must be >= 0, got {wait_timeout!r}")
        for i, f in enumerate(relief):
            _fraction(f"relief[{i}]", f)
        self._interval = float(interval)
        self._hyst = float(hysteresis)
        self._safety = safety
        self._gated = safety != "off"
        self._wait_timeout = float(wait_timeout)
        self._stale = float(stale_after) if stale_after is not None else 2.0 * self._interval
        self._user_limit = limit
        self._pid = pid
        self._proc_root = proc_root
        self._cgroup_root = cgroup_root
        self._relief = (float(relief[0]), float(relief[1]))
        self._relief_cooldown = float(relief_cooldown)
        self._gc_after_relief = gc_after_relief
        self._psi_levels = (float(psi_elevated), float(psi_critical))

        self._rss_reader = RssReader(pid, proc_root=proc_root)
        self._rss_read = self._rss_reader.read
        # why: read_rss() is measured against a 5 us bar; the reader's bound method stored on
        # the instance saves a Python frame per call.
        self.read_rss = self._rss_read  # type: ignore[method-assign]
        self._psi: PsiReader | None = None
        if psi:
            reader = PsiReader(f"{proc_root}/pressure/memory")
            self._psi = reader if reader.available else None

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._info: LimitInfo = effective_limit(
            limit, pid=pid, proc_root=proc_root, cgroup_root=cgroup_root
        )
        self._set_thresholds()
        # Hot-path state, plain attributes read without the lock (an int store is atomic).
        self._level = 0
        self._rss = 0
        self._psi_some: float | None = None
        self._last = -1e18
        self._pressure_events = 0
        self._relieved = 0
        self._last_relief = -1e18
        self._callbacks: list[tuple[Callback, asyncio.AbstractEventLoop | None]] = []
        self._relievers: list[Callable[[], Reliever | None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples = 0
        self._dispatch_lock = threading.Lock()
        self._label = register_guard(monitor, name, self) if register_metrics else name

    # -- configuration --------------------------------------------------------------------

    def _set_thresholds(self) -> None:
        lim = self._info.limit
        self._warn_bytes = int(lim * self._warning)
        self._crit_bytes = int(lim * self._critical)
        self._warn_down = int(lim * (self._warning - self._hyst))
        self._crit_down = int(lim * (self._critical - self._hyst))

    def refresh_limit(self) -> LimitInfo:
        """Re-read the cgroup files and physical RAM (after a container resize)."""
        info = effective_limit(
            self._user_limit,
            pid=self._pid,
            proc_root=self._proc_root,
            cgroup_root=self._cgroup_root,
        )
        with self._lock:
            self._info = info
            self._set_thresholds()
        return info

    @property
    def limit(self) -> int:
        """The effective limit in bytes."""
        return self._info.limit

    @property
    def limit_info(self) -> LimitInfo:
        """The effective limit, its source and every candidate read."""
        return self._info

    @property
    def level(self) -> Level:
        """The level at the last sample."""
        return Level(self._level)

    @property
    def rss(self) -> int:
        """RSS in bytes at the last sample (0 before the first)."""
        return self._rss

    @property
    def last_sample_age(self) -> float:
        """Seconds since the last sample."""
        return time.monotonic() - self._last

    @property
    def samples(self) -> int:
        """Number of samples taken so far (thread and inline)."""
        return self._samples

    @property
    def pressure_events(self) -> int:
        """Times the guard went up into ELEVATED or CRITICAL."""
        return self._pressure_events

    @property
    def running(self) -> bool:
        """Whether the background sampler is running."""
        return self._thread is not None and self._thread.is_alive()

    def metric_values(self) -> Mapping[str, float]:
        """Return the numbers the monitor scrapes."""
        return {
            "rss": float(self._rss),
            "limit": float(self._info.limit),
            "level": float(self._level),
            "pressure_events": float(self._pressure_events),
            "relieved": float(self._relieved),
        }

    def read_rss(self) -> int:
        """Read RSS now (one ``pread``), without classifying or notifying."""
        return self._rss_read()

    # -- registration ---------------------------------------------------------------------

    def on_change(
        self, callback: Callback, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Callback:
        """Call ``callback(LevelChange)`` on every level change; usable as a decorator.

        An ``async def`` callback runs on ``loop``, by default the loop running at registration.
        """
        if not callable(callback):
            raise ConfigError(f"callback must be callable, got {callback!r}")
        if inspect.iscoroutinefunction(callback):
            import asyncio

            if loop is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    raise ConfigError(
                        f"async callback {callback!r} needs a loop: register it from a running "
                        "event loop or pass loop="
                    ) from None
        else:
            loop = None
        with self._lock:
            self._callbacks.append((callback, loop))
        return callback

    def remove_callback(self, callback: Callback) -> None:
        """Stop calling ``callback`` (no error if it was not registered)."""
        with self._lock:
            self._callbacks = [(cb, lp) for cb, lp in self._callbacks if cb is not callback]

    def register(self, reliever: Reliever) -> None:
        """Ask ``reliever`` to shrink at ELEVATED and CRITICAL; held weakly when possible."""
        if not callable(getattr(reliever, "shrink", None)):
            raise ConfigError(f"reliever must have a shrink(fraction) method, got {reliever!r}")
        ref: Callable[[], Reliever | None]
        try:
            ref = weakref.ref(reliever)
        except TypeError:  # no __weakref__ slot: hold it strongly

            def ref(r: Reliever = reliever) -> Reliever | None:
                return r

        with self._lock:
            self._relievers.append(ref)

    def unregister(self, reliever: Reliever) -> None:
        """Stop asking ``reliever`` to shrink."""
        with self._lock:
            self._relievers = [r for r in self._relievers if r() not in (None, reliever)]

    # -- sampling -------------------------------------------------------------------------

    def _classify(self, rss: int, psi: tuple[float, float] | None) -> int:
        cur = self._level
        if rss >= self._crit_bytes or (cur == 2 and rss >= self._crit_down):
            level = 2
        elif rss >= self._warn_bytes or (cur >= 1 and rss >= self._warn_down):
            level = 1
        else:
            level = 0
        if psi is not None and level < 2:
            some = psi[0]
            if some >= self._psi_levels[1]:
                level = 2
            elif some >= self._psi_levels[0] and level < 1:
                level = 1
        return level

    def check(self) -> Level:
        """Sample RSS (and PSI) now, update the level, notify on change; return the level."""
        try:
            rss = self._rss_read()
        except (OSError, ValueError, IndexError) as exc:
            # The watched process is gone or /proc is unreadable: keep the last reading.
            log.debug("perflayer.memory: RSS read failed: %s", exc)
            self._last = time.monotonic()
            return Level(self._level)
        psi = self._psi() if self._psi is not None else None
        now = time.monotonic()
        with self._lock:
            old = self._level
            new = self._classify(rss, psi)
            self._rss = rss
            self._psi_some = None if psi is None else psi[0]
            self._last = now
            self._samples += 1
            self._level = new
            if new != old:
                self._cond.notify_all()
        if new != old:
            if new > old:
                self._pressure_events += 1
            self._notify(Level(old), Level(new), rss, now)
        if new > old or (new > 0 and now - self._last_relief >= self._relief_cooldown):
            self._relieve(new)
        return Level(new)

    def _notify(self, old: Level, new: Level, rss: int, now: float) -> None:
        event = LevelChange(old, new, rss, self._info.limit, self._psi_some, now)
        for cb, loop in list(self._callbacks):
            if loop is None:
                try:
                    cb(event)
                except Exception:
                    log.exception("perflayer.memory: level callback %r failed", cb)
                continue
            try:
                import asyncio

                coro = cb(event)
                if inspect.isawaitable(coro):
                    asyncio.run_coroutine_threadsafe(_as_coro(coro), loop)
            except RuntimeError:  # the loop is closed: drop the callback
                log.warning("perflayer.memory: loop of callback %r is closed; dropping it", cb)
                self.remove_callback(cb)

    def _relieve(self, level: int) -> None:
        # Only one thread relieves at a time; the others skip rather than queue up.
        if not self._dispatch_lock.acquire(blocking=False):
            return
        try:
            self._last_relief = time.monotonic()
            fraction = self._relief[1] if level >= 2 else self._relief[0]
            freed = 0
            for ref in list(self._relievers):
                rel = ref()
                if rel is None:
                    continue
                try:
                    freed += int(rel.shrink(fraction))
                except Exception:
                    log.exception("perflayer.memory: reliever %r failed", rel)
            self._relieved += max(freed, 0)
            with self._lock:
                self._relievers = [r for r in self._relievers if r() is not None]
            if self._gc_after_relief:
                gc.collect()
        finally:
            self._dispatch_lock.release()

    # -- inline gates ---------------------------------------------------------------------

    def admit(self, nbytes: int = 0) -> None:
        """Gate an allocation: sample if stale, then in safety mode raise or wait at CRITICAL."""
        # why: monotonic() is a vDSO call, not a system call; a fresh reading costs nothing more.
        if _monotonic() - self._last > self._stale:
            self.check()
        if self._gated and (
            self._level == 2 or (nbytes and self._rss + nbytes >= self._crit_bytes)
        ):
            self._gate(nbytes)

    def _pressure_error(self, nbytes: int) -> MemoryPressureError:
        extra = f" + {nbytes} requested" if nbytes else ""
        return MemoryPressureError(
            f"memory at CRITICAL: rss {self._rss}{extra} of limit {self._info.limit} bytes "
            f"(critical at {self._critical:.0%}, limit from {self._info.source})"
        )

    def _blocked(self, nbytes: int) -> bool:
        return self._level == 2 or bool(nbytes and self._rss + nbytes >= self._crit_bytes)

    def _gate(self, nbytes: int) -> None:
        if self._safety == "raise":
            raise self._pressure_error(nbytes)
        deadline = time.monotonic() + self._wait_timeout
        while self._blocked(nbytes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._pressure_error(nbytes)
            if self.running:
                with self._cond:
                    self._cond.wait(min(left, self._interval * 5))
            else:
                time.sleep(min(left, self._interval))
            self.check()

    async def admit_async(self, nbytes: int = 0) -> None:
        """Like ``admit()``, but waits with ``asyncio.sleep`` in safety mode "wait"."""
        import asyncio

        if time.monotonic() - self._last > self._stale:
            self.check()
        if self._safety == "off" or not self._blocked(nbytes):
            return
        if self._safety == "raise":
            raise self._pressure_error(nbytes)
        deadline = time.monotonic() + self._wait_timeout
        while self._blocked(nbytes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._pressure_error(nbytes)
            await asyncio.sleep(min(left, self._interval))
            self.check()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> MemoryGuard:
        """Start the background sampler thread (idempotent); return self."""
        if self.running:
            return self
        self._stop.clear()
        self.check()
        thread = threading.Thread(
            target=self._run, name=f"perflayer-memory-guard-{self._label}", daemon=True
        )
        self._thread = thread
        thread.start()
        return self

    def _run(self) -> None:
        wait = self._stop.wait
        interval = self._interval
        while not wait(interval):
            # why: skip the read when an inline check() just sampled; the hot path paid for it.
            if time.monotonic() - self._last >= interval * 0.5:
                try:
                    self.check()
                except Exception:
                    log.exception("perflayer.memory: sampler failed; continuing")

    def stop(self) -> None:
        """Stop the sampler thread and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, self._interval * 10))
        self._thread = None

    def close(self) -> None:
        """Stop the sampler and close the file descriptors."""
        self.stop()
        self._rss_reader.close()
        if self._psi is not None:
            self._psi.close()

    def __enter__(self) -> MemoryGuard:
        """Start the sampler."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the sampler and close file descriptors."""
        self.close()

    async def __aenter__(self) -> MemoryGuard:
        """Start the sampler."""
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Stop the sampler and close file descriptors."""
        self.close()

    def __repr__(self) -> str:
        """Show level, RSS and limit."""
        return (
            f"MemoryGuard(level={Level(self._level).name}, rss={self._rss}, "
            f"limit={self._info.limit}, source={self._info.source!r}, "
            f"pid={self._pid or os.getpid()})"
        )


async def _as_coro(awaitable: Awaitable[object]) -> object:
    return await awaitable
