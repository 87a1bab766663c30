"""perflayer: one performance layer for Python services, and a tool that finds the home-grown ones.

The runtime layer has four parts (cache, memory, response, monitor) that all report into one
monitor; ``perflayer analyze PATH`` finds duplicate performance infrastructure in a codebase.

The names below are re-exported explicitly; each part is imported on first use of one of its
names (PEP 562), so ``import perflayer`` and the CLI start in milliseconds and ``perflayer
analyze`` never loads the runtime layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from perflayer.errors import (
    AnalyzeError,
    BudgetError,
    CacheError,
    CacheKeyError,
    CacheValueTooLarge,
    CodecRefused,
    ConfigError,
    MemoryPressureError,
    PerflayerError,
    ResponseError,
    ShedError,
    TierError,
)

if TYPE_CHECKING:
    from perflayer.cache import (
        AsyncCache,
        Cache,
        CacheLevel,
        DiskTier,
        RedisTier,
        TieredCache,
        cached,
    )
    from perflayer.memory import (
        AsyncObjectPool,
        MemoryGuard,
        ObjectPool,
        Reliever,
        gc_tuned,
        leak_check,
        process_in_chunks,
        stream_file,
    )
    from perflayer.memory import Level as MemoryLevel
    from perflayer.monitor import AlertRule, Monitor
    from perflayer.monitor import default as default_monitor
    from perflayer.response import Priority, Response, ResponseOptimizer

__version__: str  # read from the package metadata on first use (importlib.metadata is slow)

__all__ = [
    "AlertRule",
    "AnalyzeError",
    "AsyncCache",
    "AsyncObjectPool",
    "BudgetError",
    "Cache",
    "CacheError",
    "CacheKeyError",
    "CacheLevel",
    "CacheValueTooLarge",
    "CodecRefused",
    "ConfigError",
    "DiskTier",
    "MemoryGuard",
    "MemoryLevel",
    "MemoryPressureError",
    "Monitor",
    "ObjectPool",
    "PerflayerError",
    "Priority",
    "RedisTier",
    "Reliever",
    "Response",
    "ResponseError",
    "ResponseOptimizer",
    "ShedError",
    "TierError",
    "TieredCache",
    "__version__",
    "cached",
    "default_monitor",
    "gc_tuned",
    "leak_check",
    "process_in_chunks",
    "stream_file",
]

# name -> (module, attribute there)
_LAZY: dict[str, tuple[str, str]] = {
    "AsyncCache": ("perflayer.cache", "AsyncCache"),
    "Cache": ("perflayer.cache", "Cache"),
    "CacheLevel": ("perflayer.cache", "CacheLevel"),
    "cached": ("perflayer.cache", "cached"),
    "DiskTier": ("perflayer.cache", "DiskTier"),
    "RedisTier": ("perflayer.cache", "RedisTier"),
    "TieredCache": ("perflayer.cache", "TieredCache"),
    "AsyncObjectPool": ("perflayer.memory", "AsyncObjectPool"),
    "MemoryGuard": ("perflayer.memory", "MemoryGuard"),
    "MemoryLevel": ("perflayer.memory", "Level"),
    "ObjectPool": ("perflayer.memory", "ObjectPool"),
    "Reliever": ("perflayer.memory", "Reliever"),
    "gc_tuned": ("perflayer.memory", "gc_tuned"),
    "leak_check": ("perflayer.memory", "leak_check"),
    "process_in_chunks": ("perflayer.memory", "process_in_chunks"),
    "stream_file": ("perflayer.memory", "stream_file"),
    "AlertRule": ("perflayer.monitor", "AlertRule"),
    "Monitor": ("perflayer.monitor", "Monitor"),
    "default_monitor": ("perflayer.monitor", "default"),
    "Priority": ("perflayer.response", "Priority"),
    "Response": ("perflayer.response", "Response"),
    "ResponseOptimizer": ("perflayer.response", "ResponseOptimizer"),
}


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perflayer")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """Import a re-exported name's part (or read ``__version__``) on first use."""
    if name == "__version__":
        globals()[name] = v = _read_version()
        return v
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'perflayer' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    """List the public names, lazy ones included."""
    return sorted(set(globals()) | set(_LAZY))
