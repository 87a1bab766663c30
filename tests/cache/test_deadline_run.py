"""The expiry schedule's run (deadlines in order, no heap item) and heap expire every key."""

from __future__ import annotations

import time

from perflayer.cache import Cache
from perflayer.monitor import Monitor


def _run_sorted(c: Cache) -> bool:
    whens = list(c._run_when)
    return whens == sorted(whens) and len(whens) == len(c._run_keys)


def test_keys_sharing_a_deadline_go_to_the_run_in_order(monitor: Monitor) -> None:
    """Keys with one deadline are scheduled in the run, in order, and the heap stays empty."""
    c = Cache(max_entries=10_000, monitor=monitor)
    at = int(time.time()) + 3600
    for i in range(3000):
        c.set(f"k{i}", i, exat=at)
    assert c._expiry_heap == []
    assert list(c._run_keys) == [f"k{i}" for i in range(3000)]
    assert _run_sorted(c)


def test_new_keys_with_a_ttl_are_each_scheduled_once(monitor: Monitor) -> None:
    """New keys stored with ``ex`` reach the schedule through the fresh list, once each."""
    c = Cache(max_entries=10_000, monitor=monitor)
    for i in range(3000):
        c.set(f"k{i}", i, ex=3600)
    c.expire_now(0)  # folds the fresh list
    assert c._fresh == []
    assert sorted(c._deadline_keys()) == sorted(f"k{i}" for i in range(3000))
    assert _run_sorted(c)


def test_an_earlier_deadline_goes_to_the_heap_and_both_expire(monitor: Monitor) -> None:
    """A deadline earlier than the run's last one is heaped; the active step expires both."""
    c = Cache(max_entries=100, monitor=monitor)
    c.set("late", 1, px=40)
    c.set("early", 1, px=1)  # earlier than "late": not in the run's order
    c.set("late2", 1, px=40)
    c.expire_now(0)
    assert [k for _, k in c._expiry_heap] == ["early"]
    assert list(c._run_keys) == ["late", "late2"]
    time.sleep(0.1)  # every deadline has passed, however late the sleep ends
    assert c.expire_now(100) == 3
    assert len(c) == 0
    assert c._deadline_keys() == []
    assert c.stats()["evictions"]["expired"] == 3


def test_a_raised_deadline_is_rescheduled_not_expired(monitor: Monitor) -> None:
    """A run item whose key got a later deadline since is rescheduled, and the key stays."""
    c = Cache(max_entries=100, monitor=monitor)
    c.set("k", "a", px=1)
    c.set("k", "b", ex=3600)  # same weight, later deadline: the lock-free overwrite
    time.sleep(0.02)
    assert c.expire_now(100) == 0
    assert c.get("k") == "b"
    assert c.ttl("k") > 3000
    assert "k" in c._deadline_keys()


def test_rebuild_sorts_the_run_and_keeps_every_live_deadline(monitor: Monitor) -> None:
    """A rebuild leaves one item per live key with a TTL, in deadline order, and no heap."""
    c = Cache(max_entries=50, monitor=monitor)
    for i in range(5000):
        c.set(f"n{i}", "x", ex=100 + (i * 7919) % 1000)  # deadlines out of order, evicting
        if i % 3 == 0:
            c.set(f"p{i % 30}", "y")  # keys without a TTL are never scheduled
    with c._exclusive:
        c._rebuild_heap()
    assert c._expiry_heap == []
    assert _run_sorted(c)
    live = sorted(k for k, e in c._data.items() if e.expire)
    assert sorted(c._run_keys) == live
    assert c.expire_now(10_000) == 0


def test_a_filling_cache_schedules_each_key_once(monitor: Monitor) -> None:
    """Keys inserted into a cache with room are scheduled once each: nothing is stale."""
    c = Cache(max_entries=100_000, monitor=monitor)
    for i in range(20_000):
        c.set(f"k{i}", i, ex=3600)
    c.expire_now(0)
    assert len(c._deadline_keys()) == 20_000
    assert _run_sorted(c)


def test_flushdb_empties_the_run(monitor: Monitor) -> None:
    """FLUSHDB clears the run, and later deadlines of any order are scheduled afresh."""
    c = Cache(max_entries=100, monitor=monitor)
    c.set("a", 1, ex=3600)
    c.flushdb()
    assert c._deadline_keys() == []
    c.set("b", 1, ex=10)  # earlier than the flushed "a": the emptied run takes it
    c.expire_now(0)
    assert list(c._run_keys) == ["b"]
    assert c._expiry_heap == []
