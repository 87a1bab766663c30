"""``AsyncCache``: the same cache for asyncio code, plus an optional background expiry task.

Every command runs the in-process core inline: the core never waits on I/O and holds its lock
for microseconds, so a coroutine that returns at once is both the fastest and the
non-blocking choice (a thread hop would cost ~50x a hit and block nothing less).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from perflayer.cache._core import Cache, _time
from perflayer.cache._levels import CacheLevel
from perflayer.errors import ConfigError

__all__ = ["AsyncCache"]


class AsyncCache:
    """An asyncio front of ``Cache``: the same commands as coroutines.

    >>> import asyncio
    >>> async def main() -> object:
    ...     c = AsyncCache()
    ...     await c.set("k", [1, 2], ex=10)
    ...     return await c.get("k")
    >>> asyncio.run(main())
    [1, 2]
    """

    def __init__(self, *args: Any, cache: Cache | None = None, **kwargs: Any) -> None:
        if cache is not None and (args or kwargs):
            raise ConfigError("pass either cache= or Cache arguments to AsyncCache, not both")
        self.sync: Cache = cache if cache is not None else Cache(*args, **kwargs)
        self._expiry_task: asyncio.Task[None] | None = None
        # why: get() inlines the core's hit path on these shared objects (never rebound), so an
        # awaited hit costs one coroutine and no nested call.
        self._data = self.sync._data
        self._policy_hit = self.sync._policy_hit

    async def get(self, name: Any) -> Any:
        """Return the value at ``name`` or None (GET)."""
        try:
            e = self._data.get(name)
        except TypeError:
            return self.sync.get(name)
        if e is None:  # (.get, not [] in a try: a miss raises nothing; see Cache.get)
            return self.sync.get(name)
        exp = e.expire
        if exp and exp < _time() * 1000.0:
            return self.sync.get(name)
        e.lvl.hits += 1
        try:
            self._policy_hit(name)
        except KeyError:
            pass
        return e.value

    async def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Set ``name`` (SET; same options as ``Cache.set``)."""
        return self.sync.set(name, value, *args, **kwargs)

    async def getdel(self, name: Any) -> Any:
        """Return and delete (GETDEL)."""
        return self.sync.getdel(name)

    async def getex(self, name: Any, *args: Any, **kwargs: Any) -> Any:
        """Return and change expiry (GETEX)."""
        return self.sync.getex(name, *args, **kwargs)

    async def mget(self, keys: Any, *args: Any) -> list[Any]:
        """Return many values (MGET)."""
        return self.sync.mget(keys, *args)

    async def mset(self, mapping: Mapping[Any, Any]) -> bool:
        """Set many keys (MSET)."""
        return self.sync.mset(mapping)

    async def msetnx(self, mapping: Mapping[Any, Any]) -> bool:
        """Set many keys if none exists (MSETNX)."""
        return self.sync.msetnx(mapping)

    async def delete(self, *names: Any) -> int:
        """Delete keys (DEL)."""
        return self.sync.delete(*names)

    async def unlink(self, *names: Any) -> int:
        """Delete keys (UNLINK)."""
        return self.sync.unlink(*names)

    async def exists(self, *names: Any) -> int:
        """Count existing keys (EXISTS)."""
        return self.sync.exists(*names)

    async def expire(self, name: Any, time: Any, **flags: bool) -> bool:
        """Set a TTL in seconds (EXPIRE)."""
        return self.sync.expire(name, time, **flags)

    async def pexpire(self, name: Any, time: Any, **flags: bool) -> bool:
        """Set a TTL in milliseconds (PEXPIRE)."""
        return self.sync.pexpire(name, time, **flags)

    async def expireat(self, name: Any, when: Any, **flags: bool) -> bool:
        """Expire at a unix time in seconds (EXPIREAT)."""
        return self.sync.expireat(name, when, **flags)

    async def pexpireat(self, name: Any, when: Any, **flags: bool) -> bool:
        """Expire at a unix time in milliseconds (PEXPIREAT)."""
        return self.sync.pexpireat(name, when, **flags)

    async def ttl(self, name: Any) -> int:
        """Return seconds to live (TTL)."""
        return self.sync.ttl(name)

    async def pttl(self, name: Any) -> int:
        """Return milliseconds to live (PTTL)."""
        return self.sync.pttl(name)

    async def persist(self, name: Any) -> bool:
        """Remove the expiry (PERSIST)."""
        return self.sync.persist(name)

    async def incr(self, name: Any, amount: Any = 1) -> int:
        """Increment an integer (INCR)."""
        return self.sync.incrby(name, amount)

    async def incrby(self, name: Any, amount: Any = 1) -> int:
        """Increment an integer (INCRBY)."""
        return self.sync.incrby(name, amount)

    async def incrbyfloat(self, name: Any, amount: Any = 1.0) -> float:
        """Increment a float (INCRBYFLOAT)."""
        return self.sync.incrbyfloat(name, amount)

    async def decr(self, name: Any, amount: Any = 1) -> int:
        """Decrement an integer (DECR)."""
        return self.sync.decrby(name, amount)

    async def decrby(self, name: Any, amount: Any = 1) -> int:
        """Decrement an integer (DECRBY)."""
        return self.sync.decrby(name, amount)

    async def append(self, key: Any, value: Any) -> int:
        """Append to a string (APPEND)."""
        return self.sync.append(key, value)

    async def strlen(self, name: Any) -> int:
        """Return a string's length in bytes (STRLEN)."""
        return self.sync.strlen(name)

    async def keys(self, pattern: Any = "*") -> list[str | bytes]:
        """Return matching keys (KEYS)."""
        return self.sync.keys(pattern)

    async def scan(
        self, cursor: int = 0, match: Any = None, count: int | None = None, _type: str | None = None
    ) -> tuple[int, list[str | bytes]]:
        """Return one SCAN step."""
        return self.sync.scan(cursor, match, count, _type)

    async def scan_iter(
        self, match: Any = None, count: int | None = None, _type: str | None = None
    ) -> AsyncIterator[str | bytes]:
        """Yield matching keys with repeated SCAN steps, yielding to the loop between them."""
        cursor = -1
        while cursor != 0:
            cursor, keys = self.sync.scan(max(cursor, 0), match, count, _type)
            for k in keys:
                yield k
            await asyncio.sleep(0)

    async def dbsize(self) -> int:
        """Return the number of live keys (DBSIZE)."""
        return self.sync.dbsize()

    async def flushdb(self, asynchronous: bool = False) -> bool:
        """Delete every key (FLUSHDB)."""
        return self.sync.flushdb(asynchronous)

    async def type(self, name: Any) -> str | bytes:
        """Return the key's type (TYPE)."""
        return self.sync.type(name)

    async def rename(self, src: Any, dst: Any) -> bool:
        """Rename a key (RENAME)."""
        return self.sync.rename(src, dst)

    async def invalidate(self, pattern: Any) -> int:
        """Delete keys matching a glob."""
        return self.sync.invalidate(pattern)

    async def invalidate_tags(self, *tags: str) -> int:
        """Delete keys carrying any of ``tags``."""
        return self.sync.invalidate_tags(*tags)

    async def warm(
        self,
        mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        *,
        ex: Any = None,
        level: CacheLevel | str | None = None,
        tags: Iterable[str] | None = None,
    ) -> int:
        """Preload many keys."""
        return self.sync.warm(mapping, ex=ex, level=level, tags=tags)

    def stats(self) -> dict[str, Any]:
        """Return the cache's stats (a plain call: it never waits)."""
        return self.sync.stats()

    def shrink(self, fraction: float) -> int:
        """Evict a fraction of entries by policy order."""
        return self.sync.shrink(fraction)

    def start_expiry(self, interval: float = 1.0, budget: int = 1000) -> asyncio.Task[None]:
        """Start a background task that expires due keys every ``interval`` seconds."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ConfigError(f"expiry interval must be > 0 seconds, got {interval!r}")
        if self._expiry_task is not None and not self._expiry_task.done():
            return self._expiry_task

        async def run() -> None:
            while True:
                while self.sync.expire_now(budget) >= budget:
                    await asyncio.sleep(0)
                await asyncio.sleep(interval)

        self._expiry_task = asyncio.get_running_loop().create_task(run())
        return self._expiry_task

    async def aclose(self) -> None:
        """Stop the background expiry task, if any."""
        task, self._expiry_task = self._expiry_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> AsyncCache:
        """Return self."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the background task."""
        await self.aclose()
