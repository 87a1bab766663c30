"""perflayer.cache: an in-process, Redis-compatible cache with levels, tags and memoization."""

from __future__ import annotations

__all__ = ["AsyncCache", "Cache", "CacheLevel", "cached"]

from perflayer.cache._async import AsyncCache
from perflayer.cache._core import Cache
from perflayer.cache._levels import CacheLevel
from perflayer.cache._memo import cached
