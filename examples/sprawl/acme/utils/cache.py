"""Multi-tier caching with graceful degradation (memory -> file -> sqlite).

Written in the first quarter for the persona engine; later reused by the integrations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)

DEFAULT_TTL = 300


class CacheManager:
    """Three-level cache: an in-process dict, JSON files on disk, and a sqlite table."""

    def __init__(self, cache_dir: str = ".cache", db_path: Optional[str] = None,
                 default_ttl: int = DEFAULT_TTL, max_memory_entries: int = 1000):
        self.cache_dir = cache_dir
        self.db_path = db_path or os.path.join(cache_dir, "cache.db")
        self.default_ttl = default_ttl
        self.max_memory_entries = max_memory_entries
        self._memory: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.RLock()
        self.stats = {"hits": 0, "misses": 0, "memory_hits": 0, "file_hits": 0, "db_hits": 0,
                      "errors": 0}
        self._file_enabled = True
        self._db_enabled = True
        try:
            os.makedirs(cache_dir, exist_ok=True)
        except OSError:
            logger.warning("file cache disabled: cannot create %s", cache_dir)
            self._file_enabled = False
        try:
            self._init_db()
        except sqlite3.Error:
            logger.warning("database cache disabled")
            self._db_enabled = False

    def _init_db(self) -> None:
        with sqlite3.connect(self.db_path) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS cache_entries ("
                "key TEXT PRIMARY KEY, value TEXT, expires_at REAL)"
            )

    def _key(self, key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Optional[Any]:
        """Return the cached value or None, trying memory, then file, then database."""
        hashed = self._key(key)
        now = time.time()
        with self._lock:
            entry = self._memory.get(hashed)
            if entry is not None:
                if entry["expires_at"] > now:
                    self.stats["hits"] += 1
                    self.stats["memory_hits"] += 1
                    return entry["value"]
                del self._memory[hashed]
        value = self._get_from_file(hashed, now)
        if value is not None:
            self.stats["hits"] += 1
            self.stats["file_hits"] += 1
            return value
        value = self._get_from_db(hashed, now)
        if value is not None:
            self.stats["hits"] += 1
            self.stats["db_hits"] += 1
            return value
        self.stats["misses"] += 1
        return None

    def set(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Store ``value`` in every available tier for ``ttl`` seconds."""
        hashed = self._key(key)
        expires_at = time.time() + (ttl or self.default_ttl)
        with self._lock:
            if len(self._memory) >= self.max_memory_entries:
                oldest = min(self._memory, key=lambda k: self._memory[k]["expires_at"])
                del self._memory[oldest]
            self._memory[hashed] = {"value": value, "expires_at": expires_at}
        self._set_file(hashed, value, expires_at)
        self._set_db(hashed, value, expires_at)

    def delete(self, key: str) -> None:
        """Remove ``key`` from every tier."""
        hashed = self._key(key)
        with self._lock:
            self._memory.pop(hashed, None)
        if self._file_enabled:
            try:
                os.remove(os.path.join(self.cache_dir, hashed + ".json"))
            except OSError:
                pass
        if self._db_enabled:
            try:
                with sqlite3.connect(self.db_path) as conn:
                    conn.execute("DELETE FROM cache_entries WHERE key = ?", (hashed,))
            except sqlite3.Error:
                self.stats["errors"] += 1

    def _get_from_file(self, hashed: str, now: float) -> Optional[Any]:
        if not self._file_enabled:
            return None
        path = os.path.join(self.cache_dir, hashed + ".json")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        if data.get("expires_at", 0) <= now:
            return None
        return data.get("value")

    def _set_file(self, hashed: str, value: Any, expires_at: float) -> None:
        if not self._file_enabled:
            return
        path = os.path.join(self.cache_dir, hashed + ".json")
        try:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"value": value, "expires_at": expires_at}, fh)
        except (OSError, TypeError):
            self.stats["errors"] += 1

    def _get_from_db(self, hashed: str, now: float) -> Optional[Any]:
        if not self._db_enabled:
            return None
        try:
            with sqlite3.connect(self.db_path) as conn:
                row = conn.execute(
                    "SELECT value, expires_at FROM cache_entries WHERE key = ?", (hashed,)
                ).fetchone()
        except sqlite3.Error:
            self.stats["errors"] += 1
            return None
        if row is None or row[1] <= now:
            return None
        return json.loads(row[0])

    def _set_db(self, hashed: str, value: Any, expires_at: float) -> None:
        if not self._db_enabled:
            return
        try:
            with sqlite3.connect(self.db_path) as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO cache_entries VALUES (?, ?, ?)",
                    (hashed, json.dumps(value), expires_at),
                )
        except (sqlite3.Error, TypeError):
            self.stats["errors"] += 1

    def clear(self) -> None:
        """Drop every entry from every tier."""
        with self._lock:
            self._memory.clear()
        if self._db_enabled:
            try:
                with sqlite3.connect(self.db_path) as conn:
                    conn.execute("DELETE FROM cache_entries")
            except sqlite3.Error:
                self.stats["errors"] += 1

    def get_stats(self) -> Dict[str, Any]:
        """Return hit/miss counters and the hit rate."""
        total = self.stats["hits"] + self.stats["misses"]
        rate = self.stats["hits"] / total if total else 0.0
        return {**self.stats, "hit_rate": rate, "memory_entries": len(self._memory)}


_default: Optional[CacheManager] = None


def get_cache() -> CacheManager:
    """Return the process-wide cache manager."""
    global _default
    if _default is None:
        _default = CacheManager()
    return _default
