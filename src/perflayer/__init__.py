"""perflayer: one performance layer for Python services, and a tool that finds the home-grown ones.

The runtime layer has four parts (cache, memory, response, monitor) that all report into one
monitor; ``perflayer analyze PATH`` finds duplicate performance infrastructure in a codebase.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from perflayer.cache import AsyncCache, Cache, CacheLevel, cached
from perflayer.errors import (
    AnalyzeError,
    BudgetError,
    CacheError,
    CacheKeyError,
    CacheValueTooLarge,
    ConfigError,
    MemoryPressureError,
    PerflayerError,
    ResponseError,
    ShedError,
    TierError,
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

try:
    __version__ = _version("perflayer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

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
    "ConfigError",
    "MemoryGuard",
    "MemoryLevel",
    "MemoryPressureError",
    "Monitor",
    "ObjectPool",
    "PerflayerError",
    "Priority",
    "Reliever",
    "Response",
    "ResponseError",
    "ResponseOptimizer",
    "ShedError",
    "TierError",
    "__version__",
    "cached",
    "default_monitor",
    "gc_tuned",
    "leak_check",
    "process_in_chunks",
    "stream_file",
]
