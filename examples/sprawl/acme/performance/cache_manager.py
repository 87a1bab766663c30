"""Redis-compatible in-process cache with LRU eviction and per-level TTLs."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from enum import Enum
from typing import Any, Optional, Tuple


class CacheLevel(Enum):
    """How long an entry lives."""

    SHORT = 60
    MEDIUM = 600
    LONG = 3600


class LRUCacheManager:
    """Async LRU cache with TTL per entry and hit statistics."""

    def __init__(self, max_size: int = 2048) -> None:
        self.max_size = max_size
        self._data: "OrderedDict[str, Tuple[Any, float]]" = OrderedDict()
        self._lock = asyncio.Lock()
        self.hits = 0
        self.misses = 0
        self._cleanup_task: Optional[asyncio.Task] = None

    async def get(self, key: str) -> Optional[Any]:
        """Return the value or None when missing or expired."""
        async with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            value, expires = item
            if expires < time.monotonic():
                del self._data[key]
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    async def set(self, key: str, value: Any, level: CacheLevel = CacheLevel.MEDIUM) -> bool:
        """Store ``value`` for the level's TTL, evicting the least recently used entry."""
        async with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
            self._data[key] = (value, time.monotonic() + level.value)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)
            return True

    async def delete(self, key: str) -> int:
        """Remove ``key``; return 1 if it existed."""
        async with self._lock:
            return 1 if self._data.pop(key, None) is not None else 0

    async def _cleanup_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            async with self._lock:
                expired = [k for k, (_, exp) in self._data.items() if exp < now]
                for k in expired:
                    del self._data[k]

    def start_cleanup(self, interval: float = 30.0) -> None:
        """Start the background task that drops expired entries."""
        if self._cleanup_task is None:
            self._cleanup_task = asyncio.get_event_loop().create_task(
                self._cleanup_loop(interval)
            )

    def hit_rate(self) -> float:
        """Return hits / lookups."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
