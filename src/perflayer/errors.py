"""The exception tree of perflayer.

Every error perflayer raises on misuse is a subclass of a builtin, so callers that catch
``ValueError`` or ``TypeError`` keep working::

    PerflayerError (Exception)
    ├── ConfigError (ValueError)            a bad argument or setting, named in the message
    ├── CacheError
    │   ├── CacheKeyError (TypeError)       a key that is not str or bytes
    │   ├── CacheValueTooLarge (ValueError) a value larger than the cache's max_bytes
    │   └── ResponseError (ValueError)      Redis' own "ERR ..." errors (wrong type, not an int)
    ├── TierError                           a tier is down or corrupt (caught and counted inside)
    │   └── CodecRefused                    bytes a codec will not decode (unsigned, tampered)
    ├── MemoryPressureError (MemoryError)   admit() at CRITICAL in safety mode
    ├── BudgetError (MemoryError)           a streaming budget that cannot be met
    ├── ShedError                           a request shed by the response scheduler
    └── AnalyzeError                        the analyzer could not run (bad path, bad baseline)
"""

from __future__ import annotations

__all__ = [
    "AnalyzeError",
    "BudgetError",
    "CacheError",
    "CacheKeyError",
    "CacheValueTooLarge",
    "CodecRefused",
    "ConfigError",
    "MemoryPressureError",
    "PerflayerError",
    "ResponseError",
    "ShedError",
    "TierError",
]


class PerflayerError(Exception):
    """Base class of every perflayer error."""


class ConfigError(PerflayerError, ValueError):
    """A bad argument or setting; the message names the value."""


class CacheError(PerflayerError):
    """Base class of cache errors."""


class CacheKeyError(CacheError, TypeError):
    """A key that is not ``str`` or ``bytes``."""


class CacheValueTooLarge(CacheError, ValueError):
    """A value whose estimated size exceeds the cache's ``max_bytes``."""


class ResponseError(CacheError, ValueError):
    """A Redis-style command error (``ERR value is not an integer or out of range``)."""


class TierError(PerflayerError):
    """A cache tier is unavailable or returned corrupt data."""


class CodecRefused(TierError):
    """Stored bytes the codec will not decode: unsigned, badly signed, or malformed."""


class MemoryPressureError(PerflayerError, MemoryError):
    """Raised by ``MemoryGuard.admit()`` at CRITICAL in safety mode."""


class BudgetError(PerflayerError, MemoryError):
    """A streaming memory budget that cannot be met."""


class ShedError(PerflayerError):
    """A request shed by the response scheduler before it ran."""


class AnalyzeError(PerflayerError):
    """The analyzer could not run: a bad path, baseline or option."""
