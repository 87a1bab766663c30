"""The C entry (_fastpath_c.Entry): untracked by the cyclic GC while it can be in no cycle.

An entry whose value, key, tags and level refer to nothing that can lead back to it is left out
of the collector's lists; storing anything that could (a container, an object) tracks it, on
every path that writes an entry: the C fast paths, the Python methods, the locked store, the
attribute setters. A cycle through a cached value is still collected once the cache is dropped.
The extension is imported at module level on purpose: if it is not built, these tests fail.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from tests.cache.test_fastpath_c import _bind, _unbind

from perflayer.cache import Cache, CacheLevel, _core, _fastpath_c
from perflayer.cache._fastpath_c import Entry
from perflayer.cache._native import native_enabled
from perflayer.cache._size import estimate
from perflayer.monitor import Monitor

# (a suite run with PERFLAYER_PURE_PYTHON=1 keeps the Python entry: the cache-level tests skip)
c_entry = pytest.mark.skipif(
    not native_enabled(), reason="PERFLAYER_PURE_PYTHON: the core uses the Python entry"
)


BINDS = {"c": _bind, "python": _unbind}


def _cache(bind: str, **kw: Any) -> Cache:
    return BINDS[bind](Cache(monitor=Monitor(), **kw))


def _tracked(c: Cache, key: str) -> bool:
    return gc.is_tracked(c._data[key])


class Obj:
    """A plain object (tracked by the GC, weak-referenceable) that may point anywhere."""

    def __init__(self, ref: Any = None) -> None:
        self.ref = ref


ATOMIC: list[Any] = ["s", "é", "", 7, 2**70, 1.5, b"b", None, True, 1 + 2j, bytearray(b"z")]
ATOMIC += [("t", 1), ((1,), "x")]
CONTAINERS: list[Any] = [[1], {"a": 1}, {1}, Obj(), ([],)]


@c_entry
def test_the_core_uses_the_c_entry() -> None:
    """Where the extension is built (and not disabled), the core's entries are the C type."""
    assert _core._Entry is Entry


@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_atomic_values_leave_entries_untracked(bind: str) -> None:
    """set (plain, ex, tags, level), mset, incr and append store untracked entries."""
    c = _cache(bind, max_entries=1000)
    for i, v in enumerate(ATOMIC):
        c.set(f"a{i}", v)
        c.set(f"x{i}", v, ex=100)
        c.set(f"t{i}", v, tags=["t1", "t2"])
        c.set(f"l{i}", v, level=CacheLevel.MCP_RESPONSES, px=5000)
    c.mset({"m1": 1, "m2": "two"})
    c.incr("n")
    c.incrbyfloat("f", 1.5)
    c.append("s", "abc")
    c.rename("m1", "m3")
    for k in c._data:
        assert not _tracked(c, k), (k, c._data[k].value)


@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_container_values_track_entries(bind: str) -> None:
    """A value that can refer to other objects tracks its entry on every insert path."""
    c = _cache(bind, max_entries=1000)
    for i, v in enumerate(CONTAINERS):
        c.set(f"a{i}", v)
        c.set(f"x{i}", v, ex=100)
        c.set(f"t{i}", v, tags=["t"])
        c.mset({f"m{i}": v})
    for k in c._data:
        assert _tracked(c, k), (k, c._data[k].value)


def _same_weight_str(value: Any) -> str:
    """Return an ASCII str weighing what ``value`` weighs (so a SET of one over the other is
    the lock-free overwrite, which keeps the entry's weight)."""
    return "x" * (estimate(value) - 49)


@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_a_container_stored_over_an_atomic_value_tracks_the_entry(bind: str) -> None:
    """Every path that overwrites a value tracks the entry when the new value is a container."""
    c = _cache(bind, max_entries=1000)
    box = [1, 2, 3]
    big = [box, box, box, "more"]
    writes: dict[str, Callable[[str], Any]] = {
        "lock-free": lambda k: c.set(k, box),
        "lock-free with ex": lambda k: c.set(k, box, ex=200),
        "new weight": lambda k: c.set(k, big),
        "tags": lambda k: c.set(k, box, tags=["t"]),
        "level": lambda k: c.set(k, box, level=CacheLevel.MCP_RESPONSES),
        "get": lambda k: c.set(k, box, get=True),
        "xx": lambda k: c.set(k, box, xx=True),
        "keepttl": lambda k: c.set(k, box, keepttl=True),
        "mset": lambda k: c.mset({k: box}),
    }
    for name, write in writes.items():
        key = f"k-{name}"
        c.set(key, _same_weight_str(box), ex=100)
        e = c._data[key]
        assert not gc.is_tracked(e)
        write(key)
        assert c._data[key] is e  # the same entry, overwritten in place
        assert gc.is_tracked(e), name
        assert c.get(key) is (big if name == "new weight" else box)


@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_string_commands_keep_entries_untracked(bind: str) -> None:
    """INCR, INCRBYFLOAT and APPEND results are atomic: the overwritten entry stays untracked."""
    c = _cache(bind, max_entries=100)
    c.set("n", 1, ex=100)
    c.set("s", "ab", tags=["t"])
    c.set("f", 1.5)
    c.incr("n")
    c.append("s", "cd")
    c.incrbyfloat("f", 2)
    assert [c.get(k) for k in ("n", "s", "f")] == [2, "abcd", 3.5]
    assert not any(_tracked(c, k) for k in ("n", "s", "f"))


def test_entry_setters_track_for_every_attribute() -> None:
    """Assigning any attribute an object that may lead to a cycle tracks the entry."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    for attr, bad in [
        ("value", []),
        ("key", Obj()),
        ("expire", Obj()),
        ("weight", Obj()),
        ("plain_vw", {}),
        ("tags", ("a", [])),
        ("lvl", Obj()),
        ("lvl", _core.LevelStats(CacheLevel("custom-level", ttl=5))),  # (exact: untracked)
    ]:
        e = Entry("k", 1, 0.0, lvl, 100, ("a", "b"), -2)
        assert not gc.is_tracked(e)
        setattr(e, attr, bad)
        assert getattr(e, attr) is bad
        assert gc.is_tracked(e) is not isinstance(bad, _core.LevelStats), attr
    e = Entry("k", 1, 0.0, lvl, 100, None, -2)
    e.value = ("atomic", 1)
    e.tags = ("x",)
    assert not gc.is_tracked(e)


@c_entry
def test_a_level_that_may_refer_back_tracks_the_entry() -> None:
    """A LevelStats of a CacheLevel subclass (which may carry a __dict__) tracks its entries."""

    class MyLevel(CacheLevel):
        pass

    odd = _core.LevelStats(MyLevel("mine", ttl=10))
    plain = _core.LevelStats(CacheLevel("plain", ttl=10))
    assert gc.is_tracked(Entry("k", 1, 0.0, odd, 100, None, -2))
    assert not gc.is_tracked(Entry("k", 1, 0.0, plain, 100, None, -2))
    c = _cache("c", max_entries=10, levels=[MyLevel("mine2", ttl=10)])
    c.set("k", 1, level="mine2")
    assert _tracked(c, "k")


def test_entry_construction_and_attributes_match_the_python_class() -> None:
    """Entry takes the Python class' arguments (by position or name); expire becomes a float."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    args = ("k", "v", 5, lvl, 120, None, 33)
    names = ("key", "value", "expire", "lvl", "weight", "tags", "plain_vw")
    for cls in (Entry, _core._PyEntry):
        made = [cls(*args), cls(**dict(zip(names, args, strict=True)))]
        made.append(cls("k", "v", 5, lvl, 120, None, plain_vw=33))
        for e in made:
            got = (e.key, e.value, e.expire, e.lvl, e.weight, e.tags, e.plain_vw)
            assert got == ("k", "v", 5.0, lvl, 120, None, 33)
            assert type(e.expire) is float
            del e.value
            with pytest.raises(AttributeError, match="value"):
                e.value  # noqa: B018
            with pytest.raises(AttributeError, match="value"):
                del e.value
            e.value = "back"
            assert e.value == "back"
        with pytest.raises(TypeError):
            cls("k", "v", 5, lvl, 120, None)  # type: ignore[call-arg]
        with pytest.raises(ValueError):
            cls("k", "v", "soon", lvl, 120, None, 33)


def test_a_tracked_entry_reports_its_referents() -> None:
    """The collector sees all seven references of a tracked entry (tp_traverse)."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    box: list[int] = []
    e = Entry("k", box, 1.0, lvl, 120, ("t",), -2)
    assert gc.is_tracked(e)
    refs = gc.get_referents(e)
    for part in ("k", box, lvl, ("t",)):
        assert any(r is part or (r == part and type(r) is type(part)) for r in refs)
    assert len(refs) == 7


def _cycle_paths(c: Cache) -> dict[str, Callable[[str, Any], Any]]:
    """Every way a value reaches an entry: new keys and overwrites, C or Python, locked or not."""
    return {
        "new": lambda k, v: c.set(k, v),
        "new ex": lambda k, v: c.set(k, v, ex=100),
        "overwrite": lambda k, v: (c.set(k, _same_weight_str(v)), c.set(k, v)),
        "overwrite ex": lambda k, v: (c.set(k, _same_weight_str(v), ex=9), c.set(k, v, ex=9)),
        "locked overwrite": lambda k, v: (c.set(k, 1), c.set(k, v)),
        "tags": lambda k, v: (c.set(k, 1, tags=["t"]), c.set(k, v, tags=["t"])),
        "mset": lambda k, v: (c.mset({k: 1}), c.mset({k: v})),
        "rename": lambda k, v: (c.set(k + "-src", v), c.rename(k + "-src", k)),
    }


@pytest.mark.parametrize("bind", BINDS)
@pytest.mark.parametrize("path", list(_cycle_paths(Cache(metrics=False))))
def test_a_value_that_refers_to_its_cache_is_collected(bind: str, path: str) -> None:
    """cache -> entry -> value -> cache: freed by the collector once the cache is dropped."""
    c = _cache(bind, max_entries=100)
    v = Obj()
    _cycle_paths(c)[path]("k", v)
    v.ref = c  # (after the store: the value's weight stays small)
    assert c.get("k") is v
    cref, vref = weakref.ref(c), weakref.ref(v)
    del c, v
    gc.collect()
    assert cref() is None
    assert vref() is None


@pytest.mark.parametrize("bind", BINDS)
@pytest.mark.parametrize("path", list(_cycle_paths(Cache(metrics=False))))
def test_a_value_in_a_cycle_of_its_own_is_collected(bind: str, path: str) -> None:
    """A list containing itself (and an object pointing to it) is freed once the cache is."""
    c = _cache(bind, max_entries=100)
    loop: list[Any] = []
    loop.append(loop)
    watch = Obj(loop)
    loop.append(watch)
    _cycle_paths(c)[path]("k", loop)
    wref = weakref.ref(watch)
    del loop, watch
    c.delete("k-src")
    gc.collect()
    assert wref() is not None  # the cache keeps it
    cref = weakref.ref(c)
    del c
    gc.collect()
    assert cref() is None
    assert wref() is None


def test_an_entry_in_a_cycle_with_itself_is_collected() -> None:
    """An entry whose value refers back to the entry is freed (tp_traverse and tp_clear)."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    e = Entry("k", 1, 0.0, lvl, 100, None, -2)
    o = Obj(e)
    e.value = o
    oref = weakref.ref(o)
    del e, o
    gc.collect()
    assert oref() is None


def test_the_pure_python_mode_uses_the_python_entry() -> None:
    """With PERFLAYER_PURE_PYTHON=1 at import the core keeps its Python class, which works."""
    code = (
        "import gc\n"
        "from perflayer.cache import Cache, _core\n"
        "assert _core._Entry is _core._PyEntry, _core._Entry\n"
        "c = Cache(max_entries=10, metrics=False)\n"
        "assert 'set' not in c.__dict__\n"
        "c.set('a', 1, ex=100); c.set('a', 2); c.set('b', [1]); c.incr('n'); c.mset({'m': 'x'})\n"
        "assert [c.get(k) for k in 'abnm'] == [2, [1], 1, 'x']\n"
        "assert all(gc.is_tracked(e) for e in c._data.values())\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PERFLAYER_PURE_PYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("bind", BINDS)
def test_the_real_clock_read_in_c_gives_the_python_deadlines(bind: str) -> None:
    """With the core's clock left as time.time, the C paths read it in C: the same deadlines."""
    import time

    assert _core._time is time.time
    c = _cache(bind, max_entries=10)
    before = time.time() * 1000.0
    c.set("k", "v", ex=100)
    after = time.time() * 1000.0
    e = c._data["k"]
    assert before + 100_000.0 <= e.expire <= after + 100_000.0
    e.expire = time.time() * 1000.0 + 3_600_000.0  # due in an hour: a hit
    assert c.get("k") == "v"
    e.expire = time.time() * 1000.0 - 1.0  # already due: expired on read
    assert c.get("k") is None
    assert "k" not in c._data


# -- the allocation: outside the cyclic GC's allocation count (see entry_alloc in _fastpath_c.c)

uncounted = pytest.mark.skipif(
    not _fastpath_c._ENTRY_UNCOUNTED,
    reason="this CPython's GC layout is not the one entry_alloc copies: PyObject_GC_New is used",
)


def _gc_allocations(fn: Callable[[], Any]) -> int:
    """Return how far ``fn()`` moves the collector's gen-0 count (no pass runs meanwhile)."""
    was = gc.isenabled()
    gc.disable()
    try:
        before = gc.get_count()[0]
        fn()
        return gc.get_count()[0] - before
    finally:
        if was:
            gc.enable()


@uncounted
def test_new_entries_do_not_count_towards_a_gc_pass() -> None:
    """10,000 entries move the gen-0 count by ~0; 10,000 lists (the control) by ~10,000."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    keep: list[Any] = []
    assert _gc_allocations(lambda: keep.extend([[] for _ in range(10_000)])) >= 9_000
    keep.clear()
    made = _gc_allocations(
        lambda: keep.extend(Entry(f"k{i}", i, 0.0, lvl, 100, None, 28) for i in range(10_000))
    )
    assert made < 50
    assert len(keep) == 10_000 and not any(gc.is_tracked(e) for e in keep)
    assert sys.getsizeof(keep[0]) == sys.getsizeof(Entry("k", [], 0.0, lvl, 1, None, -2))


@uncounted
@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_a_filling_cache_runs_no_gc_pass_of_its_own(bind: str) -> None:
    """New keys with scalar values (TTL or not) add nothing to the gen-0 count, on both paths."""
    c = _cache(bind, max_entries=100_000)

    def fill() -> None:
        for i in range(5_000):
            c.set(f"t{i}", i, ex=100)
            c.set(f"p{i}", "v")

    assert _gc_allocations(fill) < 50
    assert c.dbsize() == 10_000


@c_entry
@pytest.mark.parametrize("bind", BINDS)
def test_an_uncounted_entry_then_a_list_referring_to_it_is_collected(bind: str) -> None:
    """An entry made with an atomic value, then given a list that holds the entry: collected."""

    class Box(list):  # type: ignore[type-arg]
        """A list that takes weak references."""

    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    e = Entry("k", 1, 0.0, lvl, 100, None, 28)
    assert not gc.is_tracked(e)
    box = Box([e])
    e.value = box
    assert gc.is_tracked(e)
    bref = weakref.ref(box)
    del e, box
    gc.collect()
    assert bref() is None
    # the same through the cache: an atomic value, then a list that refers to its own entry
    c = _cache(bind, max_entries=100)
    assert c.set("k", 1) is True and not gc.is_tracked(c._data["k"])
    box2 = Box()
    assert c.set("k", box2) is True
    box2.append(c._data["k"])
    assert gc.is_tracked(c._data["k"])
    bref = weakref.ref(box2)
    cref = weakref.ref(c)
    del box2, c
    gc.collect()
    assert cref() is None and bref() is None


def test_many_entries_made_and_freed_tracked_or_not() -> None:
    """Entries made, tracked at any point and freed in any order leave nothing behind."""
    lvl = _core.LevelStats(CacheLevel.DEFAULT)
    for _round in range(3):
        es = [Entry(f"k{i}", i, 0.0, lvl, 100, None, 28) for i in range(2_000)]
        for i, e in enumerate(es):
            if i % 3 == 0:
                e.value = Obj(e)  # tracked, in a cycle with its value
            elif i % 3 == 1:
                e.tags = ("a", "b")  # atomic: stays untracked
        refs = [weakref.ref(e.value) for e in es[::3]]
        del es, e
        gc.collect()
        assert all(r() is None for r in refs)
