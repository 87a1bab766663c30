"""Health: registered checks, really called, each with a timeout, plus firing alerts.

A check is a callable (sync or async) returning ``True``/``None`` (healthy), ``False`` or a
``(ok, detail)`` pair; raising counts as unhealthy with the exception as detail. Checks run in
a small thread pool so a hung check costs its timeout, not the caller's thread.

Status: ``failing`` when a critical check fails or a critical alert fires; ``degraded`` when a
non-critical check fails or any other alert fires; ``ok`` otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perflayer.errors import ConfigError

__all__ = ["Check", "HealthRegistry"]


@dataclass(frozen=True)
class Check:
    """A registered health check."""

    name: str
    fn: Callable[[], Any]
    timeout: float = 1.0
    critical: bool = True


def _run(fn: Callable[[], Any]) -> Any:
    res = fn()
    if inspect.isawaitable(res):

        async def wait() -> Any:
            return await res

        return asyncio.run(wait())
    return res


class HealthRegistry:
    """Checks of one Monitor and the thread pool that runs them."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def add(self, name: str, fn: Callable[[], Any], timeout: float, critical: bool) -> None:
        """Register (or replace) the check ``name``."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"health check name must be a non-empty str, got {name!r}")
        if not callable(fn):
            raise TypeError(f"health check {name!r} must be callable, got {fn!r}")
        if not timeout > 0:
            raise ConfigError(f"health check {name!r}: timeout must be > 0, got {timeout!r}")
        with self._lock:
            self._checks[name] = Check(name, fn, float(timeout), bool(critical))

    def remove(self, name: str) -> None:
        """Forget the check ``name``."""
        with self._lock:
            self._checks.pop(name, None)

    def run(self) -> dict[str, dict[str, Any]]:
        """Call every check concurrently and return ``{name: {ok, detail, critical, seconds}}``."""
        with self._lock:
            checks = list(self._checks.values())
            if checks and self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="perflayer-health"
                )
            pool = self._pool
        out: dict[str, dict[str, Any]] = {}
        if not checks or pool is None:
            return out
        started = {c.name: (pool.submit(_run, c.fn), time.monotonic()) for c in checks}
        for c in checks:
            fut, t0 = started[c.name]
            remaining = max(0.0, c.timeout - (time.monotonic() - t0))
            ok: bool
            detail = ""
            try:
                res = fut.result(timeout=remaining)
                if isinstance(res, tuple) and len(res) == 2:
                    ok, detail = bool(res[0]), str(res[1])
                else:
                    ok = res is None or bool(res)
            except concurrent.futures.TimeoutError:
                ok, detail = False, f"timed out after {c.timeout:g}s"
            except Exception as e:  # a raising check is an unhealthy check
                ok, detail = False, f"{type(e).__name__}: {e}"
            out[c.name] = {
                "ok": ok,
                "detail": detail,
                "critical": c.critical,
                "seconds": round(time.monotonic() - t0, 6),
            }
        return out

    def close(self) -> None:
        """Shut the worker threads down (without waiting for hung checks)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
