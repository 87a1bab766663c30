"""ObjectPool and AsyncObjectPool: reuse, bounds, reset/validate, leaks, threads, async waits."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.errors import ConfigError
from perflayer.memory import AsyncObjectPool, Lease, ObjectPool
from perflayer.monitor import Monitor


class Conn:
    """A stand-in for an expensive object (weak-referenceable)."""

    made = 0

    def __init__(self) -> None:
        Conn.made += 1
        self.dirty = False
        self.alive = True


def test_reuse_and_stats() -> None:
    """A released object is handed out again; stats count created, reused and in_use."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=4, monitor=Monitor())
    a = pool.get()
    assert pool.stats().in_use == 1
    pool.release(a)
    b = pool.get()
    assert b is a
    with pool.acquire() as c:
        assert c is not a
        assert pool.in_use == 2
    pool.release(b)
    s = pool.stats()
    assert (s.created, s.reused, s.in_use, s.idle) == (2, 1, 0, 2)
    assert s.reuse_rate == pytest.approx(1 / 3)


def test_max_size_bounds_idle_objects() -> None:
    """Releases beyond max_size are dropped (counted as discarded), not kept."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=2, monitor=Monitor())
    objs = [pool.get() for _ in range(5)]
    for o in objs:
        pool.release(o)
    s = pool.stats()
    assert s.idle == 2 and s.discarded == 3 and s.in_use == 0 and s.leaked == 0
    del objs, o
    gc.collect()
    assert pool.stats().leaked == 0  # dropping over max_size is not a leak


def test_reset_and_validate() -> None:
    """reset runs on release; an object failing validate is replaced by a fresh one."""

    def reset(c: Conn) -> None:
        c.dirty = False

    pool: ObjectPool[Conn] = ObjectPool(
        Conn, max_size=4, reset=reset, validate=lambda c: c.alive, monitor=Monitor()
    )
    with pool.acquire() as c:
        c.dirty = True
    assert pool.get() is c and not c.dirty
    c.alive = False
    pool.release(c)
    fresh = pool.get()
    assert fresh is not c and fresh.alive
    assert pool.stats().discarded == 1


def test_failing_reset_drops_the_object() -> None:
    """An object whose reset raises is dropped rather than reused dirty."""

    def reset(c: Conn) -> None:
        raise RuntimeError("cannot reset")

    pool: ObjectPool[Conn] = ObjectPool(Conn, reset=reset, monitor=Monitor())
    c = pool.get()
    pool.release(c)
    assert pool.stats().idle == 0 and pool.stats().discarded == 1
    assert pool.get() is not c


def test_leaked_object_is_detected_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An object that dies while checked out is counted, listed and logged once."""
    mon = Monitor()
    pool: ObjectPool[Conn] = ObjectPool(Conn, name="conns", monitor=mon)
    with caplog.at_level(logging.WARNING, logger="perflayer.memory"):
        obj = pool.get()
        del obj
        gc.collect()
        pool.get()  # a second leak (dropped at once): counted, logged only once
        gc.collect()
    s = pool.stats()
    assert s.leaked == 2 and s.in_use == 0
    assert "Conn acquired" in pool.leaks()[0] and "never returned" in pool.leaks()[0]
    assert caplog.text.count("leaked an object") == 1
    assert 'perflayer_pool_leaked_total{pool="conns"} 2.0' in mon.exposition()


def test_debug_mode_names_the_acquiring_line_and_rejects_double_release() -> None:
    """debug=True records where objects were acquired and refuses a double release."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, debug=True, monitor=Monitor())
    c = pool.get()
    assert pool.outstanding()[0].startswith(__file__)
    pool.release(c)
    with pytest.raises(ValueError, match="already released"):
        pool.release(c)
    del c
    leaked = pool.get()
    del leaked
    gc.collect()
    assert __file__ in pool.leaks()[0]


def test_objects_without_weakrefs_still_counted() -> None:
    """bytearray cannot be weakly referenced: in_use still tracks it."""
    pool: ObjectPool[bytearray] = ObjectPool(bytearray, reset=bytearray.clear, monitor=Monitor())
    buf = pool.get()
    buf += b"abc"
    assert pool.in_use == 1
    pool.release(buf)
    assert pool.get() == bytearray()


@pytest.mark.parametrize("mode", ["raw", "with", "mixed"])
def test_threads_share_a_pool_consistently(mode: str) -> None:
    """Four threads hammering one pool (get/release, with-blocks or both): nothing is shared."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=8, monitor=Monitor())
    owners: dict[int, int] = {}
    errors: list[str] = []
    n = 5000

    def use(obj: Conn, me: int) -> None:
        if owners.setdefault(id(obj), me) != me:
            errors.append("shared")
        owners.pop(id(obj), None)

    def work(me: int) -> None:
        for i in range(n):
            if mode == "raw" or (mode == "mixed" and (i + me) % 2):
                obj = pool.get()
                use(obj, me)
                pool.release(obj)
            else:
                with pool.acquire() as obj:
                    use(obj, me)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = pool.stats()
    assert not errors
    assert s.created + s.reused == 4 * n
    assert s.in_use == 0
    assert s.idle <= 8 + 4  # bounded: may overshoot by the threads racing at release


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.integers(min_value=1, max_value=5))
def test_pool_matches_a_model(ops: list[bool], max_size: int) -> None:
    """Random get/release sequences agree with a simple model of the counters."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=max_size, monitor=Monitor())
    out: list[Conn] = []
    idle = created = reused = 0
    for is_get in ops:
        if is_get or not out:
            if idle:
                idle -= 1
                reused += 1
            else:
                created += 1
            out.append(pool.get())
        else:
            pool.release(out.pop())
            idle = min(idle + 1, max_size)
    s = pool.stats()
    assert (s.created, s.reused, s.in_use, s.idle) == (created, reused, len(out), idle)


def test_pool_metrics() -> None:
    """created, reused, in_use and reuse ratio are scraped from the pool."""
    mon = Monitor()
    pool: ObjectPool[Conn] = ObjectPool(Conn, name="db", monitor=mon)
    for _ in range(3):
        with pool.acquire():
            pass
    text = mon.exposition()
    assert 'perflayer_pool_created_total{pool="db"} 1.0' in text
    assert 'perflayer_pool_reused_total{pool="db"} 2.0' in text
    assert 'perflayer_pool_in_use{pool="db"} 0.0' in text


def test_prefill_and_clear() -> None:
    """prefill creates idle objects up to max_size; clear drops them without leak reports."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=3, monitor=Monitor())
    pool.prefill(10)
    assert pool.stats().idle == 3 and pool.stats().reused == 0
    assert pool.clear() == 3
    gc.collect()
    assert pool.stats().leaked == 0


def test_with_block_reuses_its_lease_and_object() -> None:
    """A lease returns whole on exit: the next acquire hands out the same lease and object."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, max_size=4, monitor=Monitor())
    lease = pool.acquire()
    with lease as first:
        assert lease.obj is first
    again = pool.acquire()
    assert again is lease
    with again as second:
        assert second is first
    s = pool.stats()
    assert (s.created, s.reused, s.in_use, s.idle) == (1, 1, 0, 1)


def test_with_block_returns_the_object_when_the_body_raises() -> None:
    """An exception in the block propagates and the object still goes back to the pool."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, monitor=Monitor())
    with pytest.raises(KeyError), pool.acquire() as c:
        raise KeyError("boom")
    assert pool.stats().in_use == 0
    assert pool.get() is c


@pytest.mark.parametrize("reset", [None, "reset"])
def test_raw_and_with_paths_share_one_bounded_pool(reset: str | None) -> None:
    """Objects released by either path are reused by either path; idle stays <= max_size."""

    def clean(c: Conn) -> None:
        c.dirty = False

    pool: ObjectPool[Conn] = ObjectPool(
        Conn, max_size=3, reset=clean if reset else None, monitor=Monitor()
    )
    leases = [pool.acquire() for _ in range(3)]
    raw = [pool.get() for _ in range(3)]
    objs = {id(lease.obj) for lease in leases} | {id(o) for o in raw}
    assert len(objs) == 6
    for lease in leases:
        lease.obj.dirty = True
        lease.release()
    for o in raw:
        pool.release(o)  # the pool is full of leases already: these are dropped
    s = pool.stats()
    assert (s.idle, s.discarded, s.in_use) == (3, 3, 0)
    got = [pool.get() for _ in range(3)]  # raw gets take the idle leases' objects
    assert {id(o) for o in got} == {id(lease.obj) for lease in leases}
    assert all(not o.dirty for o in got) == bool(reset)
    for o in got:
        pool.release(o)
    with pool.acquire() as c:  # and an acquire takes a raw-released object
        assert id(c) in objs
    assert pool.stats().in_use == 0 and pool.stats().idle == 3
    assert pool.clear() == 3
    del leases, raw, got, c
    gc.collect()
    assert pool.stats().leaked == 0


def test_a_lease_dropped_without_exit_is_a_leak() -> None:
    """A lease that is never exited leaks its object: counted when the object dies."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, monitor=Monitor())
    lease = pool.acquire()
    del lease
    gc.collect()
    assert pool.stats().leaked == 1 and pool.stats().in_use == 0


def test_debug_mode_rejects_a_double_lease_release() -> None:
    """debug=True turns a second release of the same lease into ValueError."""
    pool: ObjectPool[Conn] = ObjectPool(Conn, debug=True, monitor=Monitor())
    lease = pool.acquire()
    with lease:
        assert pool.outstanding()[0].startswith(__file__)
    with pytest.raises(ValueError, match="already released"):
        lease.release()


def test_lease_cannot_be_made_by_hand() -> None:
    """A Lease not made by a pool refuses to release (it has no pool)."""
    with pytest.raises(TypeError, match="acquire"), Lease(Conn()):
        pass


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_size": 0}, "max_size"), ({"reset": 3}, "reset"), ({"validate": "x"}, "validate")],
)
def test_misuse(kwargs: dict[str, object], match: str) -> None:
    """Bad arguments raise ConfigError naming the value."""
    with pytest.raises(ConfigError, match=match):
        ObjectPool(Conn, monitor=Monitor(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="factory"):
        ObjectPool(42, monitor=Monitor())  # type: ignore[arg-type]


async def test_async_pool_waits_with_a_bound() -> None:
    """An exhausted async pool waits; past the timeout it raises TimeoutError."""
    pool: AsyncObjectPool[Conn] = AsyncObjectPool(Conn, max_size=1, timeout=0.05, monitor=Monitor())
    held = await pool.get()
    with pytest.raises(TimeoutError, match=r"timeout=0\.05"):
        await pool.get()
    assert pool.stats().in_use == 1

    async def later() -> None:
        await asyncio.sleep(0.02)
        pool.release(held)

    task = asyncio.create_task(later())
    async with pool.acquire(timeout=5) as again:
        assert again is held
    await task
    assert pool.size == 1 and pool.stats().in_use == 0


async def test_async_pool_async_factory_and_fifo_waiters() -> None:
    """An async factory is awaited; waiters are served in arrival order."""

    async def make() -> Conn:
        await asyncio.sleep(0)
        return Conn()

    pool: AsyncObjectPool[Conn] = AsyncObjectPool(make, max_size=1, timeout=5, monitor=Monitor())
    first = await pool.get()
    order: list[int] = []

    async def waiter(i: int) -> None:
        obj = await pool.get()
        order.append(i)
        await asyncio.sleep(0)
        pool.release(obj)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    pool.release(first)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert pool.stats().created == 1


async def test_async_pool_cancelled_waiter_does_not_lose_the_object() -> None:
    """A waiter cancelled while waiting leaves the object for the next one."""
    pool: AsyncObjectPool[Conn] = AsyncObjectPool(Conn, max_size=1, timeout=5, monitor=Monitor())
    held = await pool.get()
    cancelled = asyncio.create_task(pool.get())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    pool.release(held)
    assert await pool.get(timeout=0.1) is held


async def test_async_pool_replaces_dropped_objects_for_waiters() -> None:
    """When a released object fails reset, a waiter gets a freshly made one."""
    bad: set[int] = set()

    def reset(c: Conn) -> None:
        if id(c) in bad:
            raise RuntimeError("broken")

    pool: AsyncObjectPool[Conn] = AsyncObjectPool(
        Conn, max_size=1, reset=reset, timeout=5, monitor=Monitor()
    )
    held = await pool.get()
    waiting = asyncio.create_task(pool.get())
    await asyncio.sleep(0.01)
    bad.add(id(held))
    pool.release(held)
    fresh = await waiting
    assert fresh is not held
    assert pool.size == 1


async def test_async_pool_leak_frees_a_slot() -> None:
    """A leaked object frees its slot, so the pool can make a new one."""
    pool: AsyncObjectPool[Conn] = AsyncObjectPool(Conn, max_size=1, timeout=1, monitor=Monitor())
    obj = await pool.get()
    del obj
    gc.collect()
    assert pool.stats().leaked == 1 and pool.size == 0
    assert isinstance(await pool.get(timeout=0.1), Conn)
