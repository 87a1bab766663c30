"""ObjectPool and AsyncObjectPool: reuse expensive objects, detect the ones never returned.

Design
------
*Hot path without a lock.* On this class of machine an uncontended ``threading.Lock`` round
trip costs 200-400 ns, most of the 1 us budget for acquire+release. The pool therefore relies
only on operations that are atomic under the GIL: ``deque.pop``/``deque.append`` for the idle
objects, ``dict`` item set/pop for the checked-out table, and ``next()`` on ``itertools.count``
for the counters (a counter is read back from its ``repr``, which is exact and costs nothing on
the hot path). ``max_size`` bounds the idle deque; under a race it can overshoot by at most the
number of threads releasing at that instant, and never grows after that.

*Leaks.* The pool keeps one ``weakref.ref`` per object it created (made once, at creation, not
per acquire). The pool holds idle objects strongly and forgets the reference before it drops an
object itself (over ``max_size``, failed reset or validation, ``clear()``), so an object that dies
while its reference is still registered was checked out and never returned: that is a leak,
counted, logged once per pool and listed by ``leaks()``. Objects without weak-reference support
(``list``, ``dict``, ``bytearray``) cannot be watched; ``in_use`` still shows them. ``debug=True``
adds a checked-out table with the acquiring line and turns a double release into ValueError
(it costs a dict operation per acquire and per release, so it is off by default).

*Async.* ``AsyncObjectPool`` bounds the total number of objects; an ``acquire`` on an exhausted
pool waits on a FIFO of futures up to ``timeout`` and then raises ``TimeoutError``. A release
hands the object straight to the oldest waiter.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import sys
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from perflayer.errors import ConfigError
from perflayer.memory._metrics import register_pool

if TYPE_CHECKING:  # asyncio is imported where used: it costs ~30 ms at start-up
    import asyncio

__all__ = ["AsyncLease", "AsyncObjectPool", "Lease", "ObjectPool", "PoolStats"]

log = logging.getLogger("perflayer.memory")

T = TypeVar("T")
_MISSING: Any = object()


def _count_value(counter: itertools.count[int]) -> int:
    # repr(count(5)) == "count(5)": the exact next value, read without advancing it.
    return int(repr(counter)[6:-1])


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters."""

    created: int
    reused: int
    in_use: int
    idle: int
    leaked: int
    discarded: int
    max_size: int

    @property
    def reuse_rate(self) -> float:
        """Fraction of acquires served by a pooled object (0.0 before any acquire)."""
        total = self.created + self.reused
        return self.reused / total if total else 0.0


class _PoolCore(Generic[T]):
    """Counters, leak watch and idle deque shared by the sync and async pools."""

    def __init__(
        self,
        max_size: int,
        reset: Callable[[T], object] | None,
        validate: Callable[[T], bool] | None,
        name: str,
        monitor: Any | None,
        debug: bool,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(f"max_size must be a positive int, got {max_size!r}")
        if reset is not None and not callable(reset):
            raise ConfigError(f"reset must be callable or None, got {reset!r}")
        if validate is not None and not callable(validate):
            raise ConfigError(f"validate must be callable or None, got {validate!r}")
        self._max_size = max_size
        self._reset = reset
        self._validate = validate
        self._idle: deque[T] = deque()
        self._pop = self._idle.pop
        self._push = self._idle.append
        self._refs: dict[int, weakref.ref[Any]] = {}
        self._out: dict[int, str] = {}
        self._debug = debug
        self._created = itertools.count()
        self._gets = itertools.count()
        self._puts = itertools.count()
        self._leaked = itertools.count()
        self._discarded = itertools.count()
        self._leaks: deque[str] = deque(maxlen=100)
        self._warned = False
        self._closing = False
        self._lost_cb = self._lost
        self.name = register_pool(monitor, name, self)

    def __del__(self) -> None:
        # Idle objects die with the pool: their references must not read as leaks.
        self._closing = True

    # -- leak watch -----------------------------------------------------------------------

    def _watch(self, obj: T) -> None:
        try:
            ref = _Ref(obj, self._lost_cb)
        except TypeError:  # no weak references (list, dict, bytearray): cannot watch
            return
        ref.key = id(obj)
        ref.type_name = type(obj).__name__
        self._refs[ref.key] = ref

    def _forget(self, obj: T) -> None:
        self._refs.pop(id(obj), None)

    def _lost(self, ref: weakref.ref[Any]) -> None:
        # Runs when a pool-created object dies while the pool still watches it.
        if self._closing:
            return
        key = getattr(ref, "key", None)
        if key is None or self._refs.get(key) is not ref:
            return
        del self._refs[key]
        next(self._leaked)
        site = self._out.pop(key, "")
        what = f"{getattr(ref, 'type_name', 'object')} acquired{site} was never returned"
        self._leaks.append(what)
        self._on_leak()
        if not self._warned:
            self._warned = True
            log.warning("perflayer.memory: pool %r leaked an object: %s", self.name, what)

    def _on_leak(self) -> None:
        """Hook for subclasses: a checked-out object was lost."""

    def _check_out(self, obj: T) -> None:
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == __file__:
            frame = frame.f_back
        site = "" if frame is None else f" at {frame.f_code.co_filename}:{frame.f_lineno}"
        self._out[id(obj)] = site

    def _check_in(self, obj: T) -> None:
        if self._out.pop(id(obj), None) is None:
            raise ValueError(
                f"{type(obj).__name__} object {id(obj):#x} was not acquired from pool "
                f"{self.name!r} or was already released"
            )

    def _drop(self, obj: T) -> None:
        """Let go of ``obj`` on purpose (not a leak)."""
        self._refs.pop(id(obj), None)
        next(self._discarded)

    def _validate_or_drop(self, obj: T) -> bool:
        try:
            ok = bool(self._validate(obj))  # type: ignore[misc]
        except Exception:
            ok = False
        if not ok:
            self._drop(obj)
        return ok

    def _reset_or_drop(self, obj: T) -> bool:
        try:
            self._reset(obj)  # type: ignore[misc]
        except Exception:
            # Degrade: an object that cannot be reset is dropped, not reused dirty.
            log.debug("perflayer.memory: reset failed in pool %r; dropped", self.name)
            self._drop(obj)
            return False
        return True

    # -- stats ----------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        """Return a snapshot of the counters (the same numbers the monitor scrapes)."""
        created = _count_value(self._created)
        gets = _count_value(self._gets)
        leaked = _count_value(self._leaked)
        return PoolStats(
            created=created,
            reused=max(gets - created, 0),
            in_use=max(gets - _count_value(self._puts) - leaked, 0),
            idle=self._idle_count(),
            leaked=leaked,
            discarded=_count_value(self._discarded),
            max_size=self._max_size,
        )

    def _idle_count(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Objects currently checked out."""
        return self.stats().in_use

    def metric_values(self) -> Mapping[str, float]:
        """Return the numbers the monitor scrapes."""
        s = self.stats()
        return {
            "created": float(s.created),
            "reused": float(s.reused),
            "in_use": float(s.in_use),
            "idle": float(s.idle),
            "reuse_rate": s.reuse_rate,
            "leaked": float(s.leaked),
        }

    def leaks(self) -> list[str]:
        """Describe the objects that died while checked out (the last 100)."""
        return list(self._leaks)

    def outstanding(self) -> list[str]:
        """With ``debug=True``: where each object checked out right now was acquired."""
        return [site.removeprefix(" at ") for site in self._out.values()]

    def clear(self) -> int:
        """Drop every idle object; return how many were dropped."""
        n = 0
        while True:
            try:
                obj = self._pop()
            except IndexError:
                return n
            self._drop(obj)
            n += 1


class _Ref(weakref.ref):  # type: ignore[type-arg]
    __slots__ = ("key", "type_name")
    key: int
    type_name: str


if TYPE_CHECKING:
    _LeaseBase = itertools.repeat
else:

    class _LeaseBase(itertools.repeat, Generic[T]):
        __slots__ = ()


class Lease(_LeaseBase[T]):
    """A checked-out object; a context manager that returns it to its pool on exit.

    Each pool makes its own subclass and hands out its instances; a lease is single-use per
    acquire (after ``__exit__`` or ``release()`` it belongs to the pool again). Underneath it
    is ``itertools.repeat(obj)``: ``__enter__`` is repeat's ``__next__``, a C call returning
    the object, and the idle deque holds the leases themselves, so ``with pool.acquire()``
    allocates nothing and runs two Python frames (``acquire`` and ``__exit__``).
    """

    __slots__ = ()

    # why: a C slot wrapper, not a Python method: entering the block costs no frame.
    __enter__ = itertools.repeat.__next__

    @property
    def obj(self) -> T:
        """The checked-out object."""
        return next(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Return the object to the pool."""
        raise TypeError("a Lease is made by ObjectPool.acquire(), not constructed directly")

    def release(self) -> None:
        """Return the object to the pool."""
        self.__exit__(None, None, None)


class ObjectPool(_PoolCore[T]):
    """A thread-safe pool of reusable objects; never blocks (creates when empty).

    >>> pool = ObjectPool(bytearray, max_size=8, reset=lambda b: b.clear())
    >>> with pool.acquire() as buf:
    ...     buf += b"hello"
    >>> pool.stats().created
    1
    """

    def __init__(
        self,
        factory: Callable[[], T],
        max_size: int = 64,
        reset: Callable[[T], object] | None = None,
        validate: Callable[[T], bool] | None = None,
        *,
        name: str | None = None,
        monitor: Any | None = None,
        debug: bool = False,
    ) -> None:
        """Create an empty pool; ``max_size`` bounds the idle objects kept for reuse."""
        if not callable(factory):
            raise ConfigError(f"factory must be callable, got {factory!r}")
        self._factory = factory
        # why: two idle deques. ``release(obj)`` keeps bare objects (wrapping one would cost an
        # allocation per release); a lease that ends its ``with`` block goes back whole into
        # ``_leases`` (re-wrapping would cost one per acquire). Each path pops its own kind
        # first and takes the other kind only when its own is empty.
        self._leases: deque[Lease[T]] = deque()
        self._pop_lease = self._leases.pop
        self._push_lease = self._leases.append
        super().__init__(
            max_size,
            reset,
            validate,
            name or str(getattr(factory, "__qualname__", "pool")),
            monitor,
            debug,
        )
        self._specialize()

    def _idle_count(self) -> int:
        return len(self._idle) + len(self._leases)

    def _take_idle(self) -> T:
        """Pop an idle object of either kind, or return _MISSING."""
        try:
            return self._pop()
        except IndexError:
            pass
        try:
            return next(self._pop_lease())
        except IndexError:
            return _MISSING  # type: ignore[no-any-return]

    def get(self) -> T:
        """Check out an idle object, or a new one when none is idle; release it later."""
        # why: no lock; deque.pop and next(count) are atomic under the GIL (see module doc).
        next(self._gets)
        obj = self._take_idle()
        if obj is _MISSING or (self._validate is not None and not self._validate_or_drop(obj)):
            obj = self._new()
        if self._debug:
            self._check_out(obj)
        return obj

    def _new(self) -> T:
        next(self._created)
        obj = self._factory()
        self._watch(obj)
        return obj

    def release(self, obj: T) -> None:
        """Return ``obj`` to the pool (reset, then kept if there is room)."""
        if self._debug:
            self._check_in(obj)
        next(self._puts)
        if self._reset is not None and not self._reset_or_drop(obj):
            return
        if self._idle_count() < self._max_size:
            self._push(obj)
        else:
            self._drop(obj)

    put = release

    def acquire(self) -> Lease[T]:
        """Check out an object as a context manager: ``with pool.acquire() as obj: ...``."""
        return self._lease(self.get())

    def _specialize(self) -> None:
        # why: the per-call work of the common pool (no validate/reset/debug) is a handful of C
        # calls; closures over locals, stored on the instance, skip the attribute loads, the
        # branches and the bound-method creation of a regular method call (about a third of
        # the cost of get+release). The pool's own Lease subclass gets an __exit__ closure of
        # the same kind, so the ``with`` form pushes the lease itself back: no allocation.
        gets, puts, pop, push, idle, new, drop = (
            self._gets,
            self._puts,
            self._pop,
            self._push,
            self._idle,
            self._new,
            self._drop,
        )
        leases, pop_lease, push_lease = self._leases, self._pop_lease, self._push_lease
        max_size = self._max_size
        reset_or_drop = self._reset_or_drop
        general_release = self.release

        if self._debug:

            def __exit__(
                lease: Lease[T], et: object, ev: object, tb: object, _next: Any = next
            ) -> None:
                general_release(_next(lease))

        elif self._reset is None:

            def __exit__(
                lease: Lease[T], et: object, ev: object, tb: object, _next: Any = next
            ) -> None:
                _next(puts)
                if len(leases) + len(idle) < max_size:
                    push_lease(lease)
                else:
                    drop(_next(lease))

        else:

            def __exit__(
                lease: Lease[T], et: object, ev: object, tb: object, _next: Any = next
            ) -> None:
                _next(puts)
                if reset_or_drop(_next(lease)):
                    if len(leases) + len(idle) < max_size:
                        push_lease(lease)
                    else:
                        drop(_next(lease))

        __exit__.__doc__ = Lease.__exit__.__doc__
        lease_cls: Any = type(
            "Lease",
            (Lease,),
            {
                "__slots__": (),
                "__exit__": __exit__,
                "__module__": __name__,
                "__doc__": Lease.__doc__,
            },
        )
        self._lease: Callable[[T], Lease[T]] = lease_cls

        if self._validate is None and not self._debug:

            def get(_next: Callable[[Any], Any] = next) -> T:
                _next(gets)
                try:
                    return pop()
                except IndexError:
                    try:
                        return _next(pop_lease())  # type: ignore[no-any-return]
                    except IndexError:
                        return new()

            get.__doc__ = ObjectPool.get.__doc__
            self.get = get  # type: ignore[method-assign]

            def acquire(_next: Callable[[Any], Any] = next) -> Lease[T]:
                _next(gets)
                try:
                    return pop_lease()
                except IndexError:
                    try:
                        return lease_cls(pop())  # type: ignore[no-any-return]
                    except IndexError:
                        return lease_cls(new())  # type: ignore[no-any-return]

        else:
            slow_get = self.get

            def acquire(_next: Callable[[Any], Any] = next) -> Lease[T]:
                return lease_cls(slow_get())  # type: ignore[no-any-return]

        acquire.__doc__ = ObjectPool.acquire.__doc__
        self.acquire = acquire  # type: ignore[method-assign]
        if self._reset is None and not self._debug:

            def release(obj: T, _next: Callable[[Any], Any] = next) -> None:
                _next(puts)
                if len(idle) + len(leases) < max_size:
                    push(obj)
                else:
                    drop(obj)

            release.__doc__ = ObjectPool.release.__doc__
            self.release = self.put = release  # type: ignore[method-assign]

    def prefill(self, n: int) -> None:
        """Create up to ``n`` idle objects now (bounded by ``max_size``)."""
        for _ in range(min(n, self._max_size - self._idle_count())):
            obj = self._new()
            next(self._gets)  # counted as an acquire and a release: reused stays neutral
            next(self._puts)
            self._push(obj)

    def clear(self) -> int:
        """Drop every idle object; return how many were dropped."""
        n = 0
        while True:
            obj = self._take_idle()
            if obj is _MISSING:
                return n
            self._drop(obj)
            n += 1

    def __repr__(self) -> str:
        """Show the name and counters."""
        s = self.stats()
        return f"ObjectPool({self.name!r}, in_use={s.in_use}, idle={s.idle}, created={s.created})"


class AsyncLease(Generic[T]):
    """An async context manager around ``AsyncObjectPool.get``."""

    __slots__ = ("_obj", "_pool", "_timeout")

    def __init__(self, pool: AsyncObjectPool[T], timeout: float | None) -> None:
        """Prepare to check out from ``pool``."""
        self._pool = pool
        self._timeout = timeout
        self._obj: T | None = None

    async def __aenter__(self) -> T:
        """Wait for an object (bounded) and return it."""
        obj = await self._pool.get(timeout=self._timeout)
        self._obj = obj
        return obj

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Return the object to the pool."""
        obj = self._obj
        self._obj = None
        if obj is not None:
            self._pool.release(obj)


class AsyncObjectPool(_PoolCore[T]):
    """An asyncio pool of at most ``max_size`` objects; ``acquire`` waits, bounded, when empty.

    ``factory`` may be a plain function or an ``async def``. Use it from one event loop.
    """

    def __init__(
        self,
        factory: Callable[[], T] | Callable[[], Awaitable[T]],
        max_size: int = 16,
        reset: Callable[[T], object] | None = None,
        validate: Callable[[T], bool] | None = None,
        *,
        timeout: float | None = 10.0,
        name: str | None = None,
        monitor: Any | None = None,
        debug: bool = False,
    ) -> None:
        """Create an empty pool; at most ``max_size`` objects exist at once."""
        if not callable(factory):
            raise ConfigError(f"factory must be callable, got {factory!r}")
        if timeout is not None and timeout < 0:
            raise ConfigError(f"timeout must be >= 0 or None, got {timeout!r}")
        self._factory = factory
        self._timeout = timeout
        self._total = 0
        self._waiters: deque[asyncio.Future[T]] = deque()
        super().__init__(
            max_size,
            reset,
            validate,
            name or str(getattr(factory, "__qualname__", "pool")),
            monitor,
            debug,
        )

    async def _make(self) -> T:
        self._total += 1
        try:
            made: Any = self._factory()
            if inspect.isawaitable(made):
                made = await made
        except BaseException:
            self._total -= 1
            raise
        next(self._created)
        self._watch(made)
        return made  # type: ignore[no-any-return]

    def _drop(self, obj: T) -> None:
        super()._drop(obj)
        self._total -= 1
        self._wake_creator()

    async def get(self, timeout: float | None = _MISSING) -> T:
        """Check out an object, waiting up to ``timeout`` seconds when all are in use."""
        import asyncio

        wait_for = self._timeout if timeout is _MISSING else timeout
        next(self._gets)
        while True:
            try:
                obj = self._pop()
            except IndexError:
                break
            if self._validate is None or self._validate_or_drop(obj):
                return self._out_ok(obj)
        if self._total < self._max_size:
            return self._out_ok(await self._make())
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        started = time.monotonic()
        try:
            obj = await asyncio.wait_for(fut, wait_for)
        except asyncio.TimeoutError:
            # The counted get never happened: count it as a release so in_use stays right.
            next(self._puts)
            raise TimeoutError(
                f"pool {self.name!r}: no object free within timeout={wait_for!r} s "
                f"(max_size={self._max_size}, waited {time.monotonic() - started:.3f} s)"
            ) from None
        except BaseException:
            next(self._puts)
            # Cancelled after the object was handed over: give it to the next waiter.
            if fut.done() and not fut.cancelled():
                self._give(fut.result())
            raise
        return self._out_ok(obj)

    def _out_ok(self, obj: T) -> T:
        if self._debug:
            self._check_out(obj)
        return obj

    def _give(self, obj: T) -> None:
        """Hand ``obj`` to the oldest live waiter, else keep it idle."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(obj)
                return
        if len(self._idle) < self._max_size:
            self._push(obj)
        else:
            self._drop(obj)

    def release(self, obj: T) -> None:
        """Return ``obj``: to the oldest waiter if any, else to the idle objects."""
        if self._debug:
            self._check_in(obj)
        next(self._puts)
        if self._reset is not None and not self._reset_or_drop(obj):
            return
        self._give(obj)

    put = release

    def _wake_creator(self) -> None:
        # A slot freed up (object dropped or lost): the oldest waiter gets a fresh object.
        import asyncio

        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                task = asyncio.ensure_future(self._make(), loop=fut.get_loop())
                task.add_done_callback(functools.partial(self._deliver, fut=fut))
                return

    def _deliver(self, task: asyncio.Future[T], *, fut: asyncio.Future[T]) -> None:
        if task.cancelled():
            if not fut.done():
                fut.cancel()
            return
        exc = task.exception()
        if exc is not None:
            if not fut.done():
                fut.set_exception(exc)
            return
        obj = task.result()
        if fut.done():
            self._give(obj)
        else:
            fut.set_result(obj)

    def _on_leak(self) -> None:
        self._total -= 1
        # The GC may run this in any thread: wake a waiter on its own loop.
        for fut in list(self._waiters):
            if not fut.done():
                fut.get_loop().call_soon_threadsafe(self._wake_creator)
                break

    def acquire(self, timeout: float | None = _MISSING) -> AsyncLease[T]:
        """Check out an object: ``async with pool.acquire() as obj: ...``."""
        return AsyncLease(self, self._timeout if timeout is _MISSING else timeout)

    @property
    def size(self) -> int:
        """Objects that exist now (idle + in use)."""
        return self._total

    def __repr__(self) -> str:
        """Show the name and counters."""
        s = self.stats()
        return (
            f"AsyncObjectPool({self.name!r}, in_use={s.in_use}, idle={s.idle}, "
            f"size={self._total}/{self._max_size})"
        )
