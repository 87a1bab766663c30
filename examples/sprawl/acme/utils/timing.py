"""Timing helpers used across the services."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable, Dict, List

import psutil

logger = logging.getLogger(__name__)

_TIMINGS: Dict[str, List[float]] = {}


def timed(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a function so each call's duration is recorded under ``name``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed_ms = (time.perf_counter() - start) * 1000
                _TIMINGS.setdefault(name, []).append(elapsed_ms)
                if elapsed_ms > 500:
                    logger.warning("slow call %s: %.1f ms", name, elapsed_ms)

        return wrapper

    return decorator


def timings() -> Dict[str, List[float]]:
    """Return the recorded timings per name."""
    return _TIMINGS


def get_memory_usage() -> float:
    """Return this process' resident memory in megabytes."""
    process = psutil.Process()
    return process.memory_info().rss / (1024 * 1024)


def format_duration(seconds: float) -> str:
    """Format a duration for logs."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"
