"""perflayer: one performance layer for Python services, and a tool that finds the home-grown ones.

The runtime layer has four parts (cache, memory, response, monitor) that all report into one
monitor; ``perflayer analyze PATH`` finds duplicate performance infrastructure in a codebase.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

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

try:
    __version__ = _version("perflayer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "AnalyzeError",
    "BudgetError",
    "CacheError",
    "CacheKeyError",
    "CacheValueTooLarge",
    "ConfigError",
    "MemoryPressureError",
    "PerflayerError",
    "ResponseError",
    "ShedError",
    "TierError",
    "__version__",
]
