"""``TieredCache``: read-through, write-through tiers with a coherent near-cache.

Reads try the tiers in order (memory, then disk, then Redis) and copy a hit into the tiers
above it with its remaining TTL (promotion). Writes go to every tier, the lowest (the shared,
authoritative one) first; deletes remove the key everywhere.

The tiers above the first ``RedisTier`` are the *near* tiers. When another process writes or
deletes a key through that Redis, it publishes the key on an invalidation channel; a daemon
thread here drops the key from the near tiers. Pub/sub is at-most-once, so the staleness is
bounded two ways: every entry in a near tier lives at most ``near_ttl`` seconds, and when the
subscription comes back after a drop every near tier is flushed. A read that races an
invalidation (reads v1 from Redis while v2 is written elsewhere) does not promote: promotion is
skipped when any invalidation arrived since the read began.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiers import MemoryTier, Tier
from perflayer.errors import CacheKeyError, ConfigError

__all__ = ["TieredCache"]

_log = logging.getLogger("perflayer.cache.tiers")


def _as_tier(t: Any) -> Tier:
    if isinstance(t, Tier):
        return t
    if hasattr(t, "pttl") and hasattr(t, "flushdb"):  # a perflayer Cache
        return MemoryTier(t, name=f"memory:{t.name}" if t.name != "default" else "memory")
    raise ConfigError(f"tiers must be Tier objects or perflayer Cache instances, got {t!r}")


class TieredCache:
    """A cache over several tiers: read-through with promotion, write-through, coherent.

    >>> from perflayer.cache import Cache
    >>> tc = TieredCache([Cache(metrics=False)], metrics=False)
    >>> tc.set("k", {"a": 1}, ex=60), tc.get("k"), tc.delete("k"), tc.get("k")
    (True, {'a': 1}, 1, None)
    """

    def __init__(
        self,
        tiers: Iterable[Any],
        *,
        near_ttl: float | None = 60.0,
        name: str = "tiered",
        monitor: Any = None,
        metrics: bool = True,
    ) -> None:
        if isinstance(tiers, (str, bytes)):
            raise ConfigError(f"tiers must be a list of tiers, got {tiers!r}")
        ts = [_as_tier(t) for t in tiers]
        if not ts:
            raise ConfigError("TieredCache needs at least one tier, got []")
        names = [t.name for t in ts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"tier names must be unique (pass name=...), got duplicates {dup!r}")
        if near_ttl is not None and (
            isinstance(near_ttl, bool) or not isinstance(near_ttl, (int, float)) or near_ttl <= 0
        ):
            raise ConfigError(f"near_ttl must be seconds > 0 or None, got {near_ttl!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"cache name must be a non-empty str, got {name!r}")
        self.tiers: Sequence[Tier] = tuple(ts)
        self.name = name
        self.near_ttl = None if near_ttl is None else float(near_ttl)
        shared = [i for i, t in enumerate(ts) if isinstance(t, RedisTier)]
        self._shared_at = shared[0] if shared else len(ts)
        self._near: tuple[Tier, ...] = tuple(ts[: self._shared_at]) if shared else ()
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.flushes = 0
        # why: bumped on every received invalidation; a read remembers it and skips promotion
        # if it changed, so a value read just before an invalidation never lands in memory.
        self._gen = 0
        self._gen_lock = threading.Lock()
        self._closed = False
        self._metrics_reader: Any = None
        if metrics:
            from perflayer.cache._tier_metrics import register_tiered

            register_tiered(self, monitor)
        if self._near:  # a Redis tier with tiers above it: keep those coherent
            rt = ts[shared[0]]
            assert isinstance(rt, RedisTier)
            rt.listen(self._on_invalidate, self._on_flush)

    # ------------------------------------------------------------------ invalidation

    def _on_invalidate(self, key: str) -> None:
        with self._gen_lock:
            self._gen += 1
            self.invalidations += 1
        for t in self._near:
            t.delete(key)

    def _on_flush(self) -> None:
        with self._gen_lock:
            self._gen += 1
            self.flushes += 1
        for t in self._near:
            t.clear()

    # ------------------------------------------------------------------ API

    @staticmethod
    def _check_key(name: Any) -> str:
        if isinstance(name, bytes):
            return name.decode("utf-8", "surrogateescape")
        if not isinstance(name, str):
            raise CacheKeyError(f"cache keys must be str or bytes, got {type(name).__name__}")
        if not name.isascii():
            try:
                name.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raise CacheKeyError(
                    f"key {name!r} has a lone surrogate; it cannot be stored"
                ) from None
        return name

    def _ttl_for(self, i: int, ttl: float | None) -> float | None:
        """Return the ttl to use in tier ``i``: capped at ``near_ttl`` in a near tier."""
        cap = self.near_ttl
        if i < self._shared_at and self._near and cap is not None:
            return cap if ttl is None else min(ttl, cap)
        return ttl

    def get(self, name: Any) -> Any:
        """Return the value at ``name`` or None; a hit in a lower tier is copied upward."""
        key = self._check_key(name)
        tiers = self.tiers
        # why: the first tier is usually memory and usually hits; it needs no TTL read.
        v = tiers[0].get(key)
        if v is not None:
            self.hits += 1
            return v
        gen = self._gen
        for i in range(1, len(tiers)):
            got = tiers[i].get_with_ttl(key)
            if got is None:
                continue
            value, ttl = got
            if gen == self._gen:
                for j in range(i):
                    try:
                        tiers[j].set(key, value, self._ttl_for(j, ttl))
                    except (TypeError, ValueError):  # an upper tier's codec cannot hold it
                        pass
                if gen != self._gen:  # an invalidation landed while we promoted: undo
                    for j in range(i):
                        tiers[j].delete(key)
            self.hits += 1
            return value
        self.misses += 1
        return None

    def set(self, name: Any, value: Any, ex: float | None = None, px: int | None = None) -> bool:
        """Store ``value`` in every tier for ``ex`` seconds / ``px`` ms; True if all took it.

        None cannot be stored (a miss is None). A value a tier's codec cannot hold raises
        ``TypeError`` before any tier is written when that tier is the lowest (the usual
        layout: memory, disk, redis).
        """
        key = self._check_key(name)
        if value is None:
            raise ConfigError(f"cannot cache None at {key!r}: a miss reads as None")
        if ex is not None and px is not None:
            raise ConfigError(f"``ex`` and ``px`` are mutually exclusive, got ex={ex!r} px={px!r}")
        ttl: float | None = None
        for label, amount, scale in (("ex", ex, 1.0), ("px", px, 0.001)):
            if amount is None:
                continue
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
                raise ConfigError(f"{label} must be a positive number, got {amount!r}")
            ttl = amount * scale
        ok = True
        # why: lowest (shared) tier first, so by the time this process's near tiers hold the
        # value, the authoritative copy and its invalidation message are already out.
        for i in range(len(self.tiers) - 1, -1, -1):
            if not self.tiers[i].set(key, value, self._ttl_for(i, ttl)):
                ok = False
        return ok

    def delete(self, *names: Any) -> int:
        """Remove ``names`` from every tier; return how many were in at least one tier."""
        n = 0
        keys = [self._check_key(x) for x in names]
        for key in keys:
            found = False
            for t in reversed(self.tiers):
                if t.delete(key):
                    found = True
            n += found
        return n

    def clear(self) -> None:
        """Remove every key from every tier (a Redis tier deletes only its prefix)."""
        for t in reversed(self.tiers):
            t.clear()

    def stats(self) -> dict[str, Any]:
        """Return hits, misses, hit_rate, invalidations, flushes and each tier's counters."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / lookups if lookups else 0.0,
            "invalidations": self.invalidations,
            "flushes": self.flushes,
            "tiers": {t.name: {**t.stats.as_dict(), "healthy": t.healthy()} for t in self.tiers},
        }

    def close(self) -> None:
        """Stop the invalidation listener and close every tier; idempotent."""
        if self._closed:
            return
        self._closed = True
        for t in self.tiers:
            try:
                t.close()
            except Exception as exc:  # closing must not fail the caller
                _log.warning("closing tier %r failed: %s", t.name, exc)

    def __enter__(self) -> TieredCache:
        """Return self."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the cache."""
        self.close()

    def __repr__(self) -> str:
        """Return a short description."""
        return f"TieredCache(name={self.name!r}, tiers={[t.name for t in self.tiers]!r})"
