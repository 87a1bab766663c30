"""perflayer.cache: a Redis-compatible cache with levels, tags, memoization and tiers.

``Cache`` / ``AsyncCache`` are the in-process tier; ``TieredCache`` stacks it over a
``DiskTier`` (sqlite3) and a ``RedisTier`` with coherent invalidation across processes.
"""

from __future__ import annotations

__all__ = [
    "AsyncCache",
    "Cache",
    "CacheLevel",
    "Codec",
    "CodecRefused",
    "DiskTier",
    "JsonCodec",
    "LRUPolicy",
    "MemoryTier",
    "PickleCodec",
    "Policy",
    "RedisTier",
    "Tier",
    "TierStats",
    "TieredCache",
    "TinyLFUPolicy",
    "cached",
    "make_policy",
]

from perflayer.cache._async import AsyncCache
from perflayer.cache._codec import Codec, JsonCodec, PickleCodec
from perflayer.cache._core import Cache
from perflayer.cache._disk import DiskTier
from perflayer.cache._levels import CacheLevel
from perflayer.cache._memo import cached
from perflayer.cache._policy import LRUPolicy, TinyLFUPolicy, make_policy
from perflayer.cache._protocols import Policy
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiered import TieredCache
from perflayer.cache._tiers import MemoryTier, Tier, TierStats
from perflayer.errors import CodecRefused
