"""``@cached``: memoize sync and async functions and methods in a Cache, with single-flight.

Keys are deterministic across processes: ``perflayer:memo:<module>.<qualname>:<blake2b>`` of a
canonical encoding of the bound arguments (defaults applied, so ``f(1)`` and ``f(a=1)`` share a
key). Scalars, str/bytes, tuples, lists, dicts, sets and enums encode by value; an object with a
``__cache_key__()`` method encodes as its result; an object whose ``repr`` is the default
``<... at 0x...>`` encodes by type and ``id`` (stable within one process only; give such
objects, e.g. ``self`` of a memoized method, a ``__cache_key__``).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from perflayer.cache._core import _MISSING, Cache, LevelStats
from perflayer.cache._levels import CacheLevel
from perflayer.errors import ConfigError

__all__ = ["CacheInfo", "cached", "default_cache", "make_key"]

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULT: Cache | None = None
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> Cache:
    """Return the process-wide Cache that ``@cached`` uses when given no ``cache=``."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Cache(name="memo")
        return _DEFAULT


class CacheInfo(NamedTuple):
    """Memoization counters, shaped as ``functools.lru_cache``'s."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


def _canon(obj: Any, out: list[str], depth: int = 0) -> None:
    """Append a canonical, process-independent encoding of ``obj`` to ``out``."""
    if depth > 50:
        raise ConfigError("memoized argument nests deeper than 50 levels")
    cls = obj.__class__
    if obj is None or cls in (bool, int, float, complex):
        out.append(f"{cls.__name__}:{obj!r}")
    elif cls is str or cls is bytes:
        out.append(f"{cls.__name__}:{len(obj)}:{obj!r}")
    elif cls in (tuple, list):
        out.append(f"{cls.__name__}[")
        for item in obj:
            _canon(item, out, depth + 1)
        out.append("]")
    elif isinstance(obj, dict):
        parts = []
        for k, v in obj.items():
            sub: list[str] = []
            _canon(k, sub, depth + 1)
            _canon(v, sub, depth + 1)
            parts.append("\x1f".join(sub))
        out.append("dict{" + "\x1e".join(sorted(parts)) + "}")
    elif isinstance(obj, (set, frozenset)):
        items = []
        for item in obj:
            sub = []
            _canon(item, sub, depth + 1)
            items.append("\x1f".join(sub))
        out.append("set{" + "\x1e".join(sorted(items)) + "}")
    elif isinstance(obj, enum.Enum):
        out.append(f"enum:{cls.__module__}.{cls.__qualname__}.{obj.name}")
    elif hasattr(obj, "__cache_key__"):
        out.append(f"obj:{cls.__module__}.{cls.__qualname__}(")
        _canon(obj.__cache_key__(), out, depth + 1)
        out.append(")")
    else:
        r = repr(obj)
        if " at 0x" in r:
            out.append(f"id:{cls.__module__}.{cls.__qualname__}@{id(obj):x}")
        else:
            out.append(f"repr:{cls.__module__}.{cls.__qualname__}:{r}")


def make_key(prefix: str, args: Iterable[tuple[str, Any]]) -> str:
    """Return ``prefix:<32 hex digits>`` for the (name, value) pairs of a call."""
    out: list[str] = []
    for name, value in args:
        out.append(f"{name}=")
        _canon(value, out)
    digest = hashlib.blake2b("\x1d".join(out).encode("utf-8", "surrogatepass"), digest_size=16)
    return f"{prefix}:{digest.hexdigest()}"


class _Flight:
    """One in-progress computation that concurrent callers wait on (threads)."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


def _seconds_to_px(ttl: float | None, what: str) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ConfigError(f"{what} must be seconds (int or float) or None, got {ttl!r}")
    if not ttl > 0 or ttl == float("inf"):
        raise ConfigError(f"{what} must be > 0 and finite, got {ttl!r}")
    return max(1, round(ttl * 1000))


def cached(
    ttl: float | Callable[..., Any] | None = None,
    *,
    level: CacheLevel | str | None = None,
    key: Callable[..., str | bytes] | None = None,
    cache: Any = None,
    tags: Iterable[str] = (),
    negative_ttl: float | None = None,
) -> Any:
    """Memoize a sync or async function (or method) in ``cache``; see the module doc.

    ``ttl`` seconds (else the level's TTL), ``key(*args, **kwargs)`` overrides the key,
    ``negative_ttl`` caches a ``None`` result for that long (by default None is not cached).
    Exceptions are never cached. Concurrent misses on one key run the function once.

    >>> @cached(ttl=60)
    ... def square(x: int) -> int:
    ...     return x * x
    >>> square(3), square(3), square.cache_info().hits
    (9, 9, 1)
    """
    if callable(ttl):
        return cached()(ttl)
    px = _seconds_to_px(ttl, "ttl")
    neg_px = _seconds_to_px(negative_ttl, "negative_ttl")
    if key is not None and not callable(key):
        raise ConfigError(f"key must be a callable returning str or bytes, got {key!r}")
    presets = {lv.name for lv in CacheLevel.presets()}
    if isinstance(level, str) and level not in presets and cache is None:
        raise ConfigError(f"unknown cache level {level!r}; known levels: {sorted(presets)}")
    if level is not None and not isinstance(level, (CacheLevel, str)):
        raise ConfigError(f"level must be a CacheLevel or a level name, got {level!r}")
    user_tags = Cache._check_tags(tuple(tags)) or ()

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise ConfigError(f"@cached decorates functions, got {fn!r}")
        qualname = f"{fn.__module__}.{fn.__qualname__}"
        prefix = f"perflayer:memo:{qualname}"
        memo_tag = f"perflayer:memo:{qualname}"
        all_tags = (memo_tag, *user_tags)
        sig = inspect.signature(fn)
        counters = [0, 0]  # hits, misses
        counter_lock = threading.Lock()
        flights: dict[str, _Flight] = {}
        flights_lock = threading.Lock()
        aflights: dict[str, asyncio.Future[Any]] = {}

        def store() -> Cache:
            c = cache if cache is not None else default_cache()
            core: Cache = getattr(c, "sync", c)
            return core

        c0 = store() if cache is not None else None
        lvl_stats: LevelStats | None = c0._level_stats(level) if c0 is not None else None

        def key_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            if key is not None:
                k = key(*args, **kwargs)
                if isinstance(k, bytes):
                    k = k.decode("utf-8", "surrogateescape")
                if not isinstance(k, str):
                    raise ConfigError(f"key function of {qualname} returned {k!r}, not str/bytes")
                return k
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return make_key(prefix, bound.arguments.items())

        def count(hit: bool) -> None:
            with counter_lock:
                counters[0 if hit else 1] += 1

        def lookup(c: Cache, k: str) -> Any:
            ls = lvl_stats if c is c0 else c._level_stats(level)
            v = c._peek(k, ls)
            count(v is not _MISSING)
            return v

        def save(c: Cache, k: str, value: Any) -> None:
            if value is None:
                if neg_px is None:
                    return
                c.set(k, None, px=neg_px, level=level, tags=all_tags)
            else:
                c.set(k, value, px=px, level=level, tags=all_tags)

        def invalidate(*args: Any, **kwargs: Any) -> bool:
            return bool(store().delete(key_for(args, kwargs)))

        def cache_clear() -> int:
            return store().invalidate_tags(memo_tag)

        def cache_info() -> CacheInfo:
            c = store()
            with counter_lock:
                hits, misses = counters
            return CacheInfo(hits, misses, c.max_entries, len(c.tagged(memo_tag)))

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                c = store()
                k = key_for(args, kwargs)
                v = lookup(c, k)
                if v is not _MISSING:
                    return v
                loop = asyncio.get_running_loop()
                fut = aflights.get(k)
                if fut is not None and fut.get_loop() is loop and not fut.done():
                    return await asyncio.shield(fut)
                fut = loop.create_future()
                aflights[k] = fut
                try:
                    v = c._quiet(k)
                    if v is _MISSING:
                        v = await fn(*args, **kwargs)
                        save(c, k, v)
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    else:
                        fut.set_exception(exc)
                        fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
                    raise
                else:
                    fut.set_result(v)
                    return v
                finally:
                    if aflights.get(k) is fut:
                        del aflights[k]

            wrapper: Any = awrapper
        else:

            @functools.wraps(fn)
            def swrapper(*args: Any, **kwargs: Any) -> Any:
                c = store()
                k = key_for(args, kwargs)
                v = lookup(c, k)
                if v is not _MISSING:
                    return v
                with flights_lock:
                    flight = flights.get(k)
                    leader = flight is None
                    if flight is None:
                        flight = flights[k] = _Flight()
                if not leader:
                    flight.done.wait()
                    if flight.error is not None:
                        raise flight.error
                    return flight.value
                try:
                    v = c._quiet(k)
                    if v is _MISSING:
                        v = fn(*args, **kwargs)
                        save(c, k, v)
                    flight.value = v
                    return v
                except BaseException as exc:
                    flight.error = exc
                    raise
                finally:
                    with flights_lock:
                        del flights[k]
                    flight.done.set()

            wrapper = swrapper
        wrapper.invalidate = invalidate
        wrapper.cache_info = cache_info
        wrapper.cache_clear = cache_clear
        wrapper.cache_key = lambda *a, **kw: key_for(a, kw)
        return wrapper  # type: ignore[no-any-return]

    return decorate
