"""Threads racing on the cache's write paths keep every bound, counter, index and value exact."""

from __future__ import annotations

import pytest
from tests.cache.conftest import check_consistent, run_threads

from perflayer.cache import Cache
from perflayer.monitor import Monitor


@pytest.fixture(autouse=True)
def _fast_switching(fast_switching: None) -> None:
    """Every test here runs with the thread switch interval at one microsecond."""


@pytest.mark.parametrize("policy", ["tinylfu", "lru"])
def test_new_key_inserts_racing_reads_and_overwrites(monitor: Monitor, policy: str) -> None:
    """New keys evicting others, lock-free reads and overwrites never mix up entries."""
    bound = 200
    c = Cache(max_entries=bound, policy=policy, monitor=monitor)
    n_threads, n_ops = 4, 4000

    def work(t: int) -> None:
        for i in range(n_ops):
            k = f"k{t}:{i}" if i % 2 else f"hot{i % 50}"
            if i % 4 == 1:
                c.set(k, f"v:{k}", ex=3600)  # a new key: the inlined insert path, evicting
            elif i % 4 == 3:
                c.set(k, f"v:{k}")  # a new key without a TTL
            elif i % 8 == 0:
                c.set(k, f"w:{k}", ex=3600)  # an overwrite (lock-free when weights match)
            else:
                got = c.get(k)
                # a read sees its own key's value or nothing, never another key's entry
                assert got is None or got in (f"v:{k}", f"w:{k}"), (k, got)

    run_threads(n_threads, work)
    check_consistent(c, bound)
    st = c.stats()
    assert st["evictions"]["size"] > 0
    assert st["entries"] == len(c)


def test_same_new_key_from_many_threads_is_stored_once(monitor: Monitor) -> None:
    """Threads inserting the same new keys at once leave one entry each, counted once."""
    c = Cache(max_entries=10_000, monitor=monitor)
    keys = [f"same:{i}" for i in range(2000)]

    def work(t: int) -> None:
        for k in keys:
            c.set(k, f"v:{k}", ex=60)

    run_threads(4, work)
    check_consistent(c, 10_000)
    assert len(c) == len(keys)
    assert c.stats()["bytes"] == sum(e.weight for e in c._data.values())


def test_deadline_heap_stays_bounded_under_eviction(monitor: Monitor) -> None:
    """A full cache taking new keys with a TTL does not grow its deadline heap per insert."""
    c = Cache(max_entries=100, monitor=monitor)
    for i in range(20_000):
        c.set(f"n{i}", "x", ex=3600)
    assert len(c) == 100
    assert len(c._expiry_heap) <= 3 * 100 + 1024 + 1
    assert len(c._fresh) < 1024
    # the live keys still expire: their deadlines are in the rebuilt heap
    assert c.expire_now(10_000) == 0
    assert all(c.ttl(k) > 0 for k in c.keys("*"))


def test_inserts_racing_deletes_and_incr(monitor: Monitor) -> None:
    """New-key inserts racing DEL and INCR keep the counters equal to the dict."""
    bound = 300
    c = Cache(max_entries=bound, monitor=monitor)

    def work(t: int) -> None:
        for i in range(3000):
            k = f"k{i % 400}"
            if t == 0:
                c.delete(k)
            elif t == 1:
                c.incr(f"ctr{i % 20}")
            else:
                c.set(k, f"v:{k}", ex=3600)

    run_threads(4, work)
    for i in range(20):
        c.delete(f"ctr{i}")
    check_consistent(c, bound)


def test_mass_delete_shrinks_the_deadline_heap() -> None:
    """Deleting most keys with a TTL leaves a heap sized by the live keys, not the peak."""
    c = Cache(max_entries=10_000)
    for i in range(5000):
        c.set(f"k{i}", i, ex=3600)
    assert len(c._deadline_keys()) >= 5000
    c.delete(*[f"k{i}" for i in range(4990)])
    assert c.getdel("k4990") == 4990
    # the delete rebuilt the heap from the 10 keys it left; GETDEL of one more leaves its item
    assert sorted(c._deadline_keys()) == sorted(f"k{i}" for i in range(4990, 5000))
    assert c.ttl("k4999") > 0
