"""Detectors on small snippets: evidence, decoys, inline regions, registry, canonicals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from perflayer.analyze import (
    Evidence,
    Verdict,
    analyze,
    detectors,
    register_detector,
    unregister_detector,
)
from perflayer.analyze._facts import Unit
from perflayer.errors import ConfigError

Tree = Callable[[dict[str, str | bytes]], Path]


def one(make_tree: Tree, code: str) -> list[tuple[str, str, str, int, int]]:
    """Analyze one module and return (category, symbol, kind, start, end) per finding."""
    root = make_tree({"m.py": code})
    report = analyze(str(root), jobs=1)
    return [(f.category, f.symbol, f.kind, f.start_line, f.end_line) for f in report.findings]


def test_memoize_decorator_is_a_cache(make_tree: Tree) -> None:
    """A decorator that stores results by arguments is a cache."""
    code = """import functools


def memoize(func):
    results = {}

    @functools.wraps(func)
    def wrapper(*args):
        if args in results:
            return results[args]
        results[args] = value = func(*args)
        return value

    return wrapper
"""
    assert one(make_tree, code) == [("cache", "memoize", "function", 4, 14)]


def test_plain_dict_registry_is_not_a_cache(make_tree: Tree) -> None:
    """A dict with get/register but no TTL, eviction or stats is not a cache."""
    code = """class PluginRegistry:
    def __init__(self):
        self._plugins = {}

    def register(self, name, plugin):
        self._plugins[name] = plugin

    def get(self, name):
        return self._plugins.get(name)
"""
    assert one(make_tree, code) == []


def test_lru_cache_use_is_not_a_duplicate(make_tree: Tree) -> None:
    """Using functools.lru_cache is using a library, not re-implementing a cache."""
    code = """import functools


@functools.lru_cache(maxsize=128)
def parse(text):
    return text.split()
"""
    assert one(make_tree, code) == []


def test_redis_wrapper_is_a_cache(make_tree: Tree) -> None:
    """A class wrapping a redis client with setex/get is a cache."""
    code = """import json
import redis


class RedisCache:
    def __init__(self, url):
        self.client = redis.Redis.from_url(url)

    def get(self, key):
        raw = self.client.get(key)
        return json.loads(raw) if raw else None

    def set(self, key, value, ttl=60):
        self.client.setex(key, ttl, json.dumps(value))
"""
    assert one(make_tree, code) == [("cache", "RedisCache", "class", 5, 14)]


def test_connection_pool_is_not_memory(make_tree: Tree) -> None:
    """A connection pool is not a memory tool; an object pool is."""
    code = """class ConnectionPool:
    def __init__(self, factory):
        self._idle = []
        self.factory = factory

    def acquire(self):
        return self._idle.pop() if self._idle else self.factory()

    def release(self, conn):
        self._idle.append(conn)


class BufferPool:
    def __init__(self):
        self._free = []

    def acquire(self):
        return self._free.pop() if self._free else bytearray(4096)

    def release(self, buf):
        self._free.append(buf)
"""
    assert one(make_tree, code) == [("memory", "BufferPool", "class", 13, 21)]


def test_http_response_with_behaviour_is_not_an_envelope(make_tree: Tree) -> None:
    """A protocol Response with many methods is not a result envelope."""
    code = """class Response:
    def __init__(self, status, content, error=None):
        self.status = status
        self.content = content
        self.error = error

    def json(self):
        import json
        return json.loads(self.content)

    def raise_for_status(self):
        if self.status >= 400:
            raise RuntimeError(self.error or "http error")
        return self

    def iter_lines(self):
        for line in self.content.splitlines():
            if line:
                yield line

    def close(self):
        self.content = b""
        self.status = 0
        self.error = None
        return None

    def headers_dict(self):
        out = {}
        for k, v in []:
            out[k] = v
        return out
"""
    assert one(make_tree, code) == []


def test_timing_method_in_client_is_not_a_monitor(make_tree: Tree) -> None:
    """A method that times a request and counts retries is not a monitor by itself."""
    code = """import time


class Client:
    def __init__(self):
        self.retries = 0

    def call(self, fn):
        start = time.monotonic()
        while True:
            try:
                return fn()
            except OSError:
                self.retries += 1
                if time.monotonic() - start > 5:
                    raise
"""
    assert one(make_tree, code) == []


def test_memory_helper_in_big_class_is_an_inline_method(make_tree: Tree) -> None:
    """A psutil helper inside a bigger class is reported as that method only."""
    code = """import psutil


class Worker:
    def __init__(self, jobs):
        self.jobs = jobs

    def run(self):
        for job in self.jobs:
            job()

    def describe(self):
        return ", ".join(str(j) for j in self.jobs)

    def names(self):
        return [getattr(j, "__name__", "?") for j in self.jobs]

    def _memory_mb(self):
        return psutil.Process().memory_info().rss / 1e6
"""
    assert one(make_tree, code) == [("memory", "Worker._memory_mb", "method", 18, 19)]


def test_import_fallback_with_full_implementation_is_kept(make_tree: Tree) -> None:
    """A real implementation in an ``except ImportError:`` block is still a duplicate."""
    body = "\n".join(f"    # line {i}" for i in range(3))
    code = f"""import time

try:
    from cachetools import TTLCache
except ImportError:
    class TTLCache:
{body}
        def __init__(self, maxsize, ttl):
            self.maxsize = maxsize
            self.ttl = ttl
            self._cache = {{}}

        def __getitem__(self, key):
            value, at = self._cache[key]
            if time.monotonic() - at > self.ttl:
                del self._cache[key]
                raise KeyError(key)
            return value

        def __setitem__(self, key, value):
            if len(self._cache) >= self.maxsize:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (value, time.monotonic())
"""
    assert one(make_tree, code) == [("cache", "TTLCache", "class", 6, 25)]


class _QueueDetector:
    """A plug-in detector: home-grown job queues."""

    category = "queue"

    def detect(self, unit: Unit, level: str) -> Verdict | None:
        if level == "class" and {"enqueue", "dequeue"} <= {m.name for m in unit.methods}:
            ev = Evidence("api", "enqueue/dequeue", unit.start, 5.0)
            return Verdict("queue", 5.0, True, ["fifo"], [ev])
        return None


def test_registry_takes_more_detectors(make_tree: Tree) -> None:
    """A registered detector adds a category end to end; unregistering removes it."""
    code = """class JobQueue:
    def __init__(self):
        self.items = []

    def enqueue(self, job):
        self.items.append(job)

    def dequeue(self):
        return self.items.pop(0)
"""
    register_detector(_QueueDetector())
    try:
        assert "queue" in {d.category for d in detectors()}
        assert one(make_tree, code) == [("queue", "JobQueue", "class", 1, 9)]
    finally:
        unregister_detector("queue")
    assert one(make_tree, code) == []
    with pytest.raises(TypeError, match="lacks"):
        register_detector(object())  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="nope"):
        unregister_detector("nope")


def test_canonical_options(make_tree: Tree) -> None:
    """--canonical picks an in-repo keeper; =auto picks the most used and complete one."""
    from perflayer.analyze._analysis import parse_canonical

    cache = """import time


class {name}:
    def __init__(self):
        self._cache = {{}}

    def get(self, key):
        v = self._cache.get(key)
        if v and time.time() - v[1] < 9:
            return v[0]

    def set(self, key, value):
        self._cache[key] = (value, time.time())
"""
    root = make_tree(
        {
            "a.py": cache.format(name="ACache"),
            "b.py": cache.format(name="BCache"),
            "use1.py": "from a import ACache\nACache()\n",
            "use2.py": "from a import ACache\nx = ACache()\n",
        }
    )
    report = analyze(str(root), jobs=1, canonical=parse_canonical(["cache=b.py:BCache"]))
    roles = {f.symbol: (f.role, f.canonical) for f in report.findings}
    assert roles == {"ACache": ("duplicate", "b.py:BCache"), "BCache": ("canonical", "b.py:BCache")}
    auto = analyze(str(root), jobs=1, canonical=parse_canonical(["cache=auto"]))
    assert {f.symbol: f.role for f in auto.findings} == {
        "ACache": "canonical",
        "BCache": "duplicate",
    }
    dup = next(f for f in auto.findings if f.symbol == "BCache")
    assert dup.overlap is not None and dup.overlap.structural_similarity > 0.9
    with pytest.raises(ConfigError, match="nosuch"):
        analyze(str(root), jobs=1, canonical=parse_canonical(["cache=b.py:nosuch"]))
    for bad in ("cache", "cache=", "bogus=a.py:X", "cache=a.txt:X"):
        with pytest.raises(ConfigError):
            parse_canonical([bad])


def test_relative_imports_and_reexports_resolve(make_tree: Tree) -> None:
    """Consumers are found through relative imports and package re-exports."""
    cache = """import time


class Cache:
    def __init__(self):
        self._cache = {}

    def get(self, key):
        v = self._cache.get(key)
        if v and time.time() - v[1] < 9:
            return v[0]

    def set(self, key, value):
        self._cache[key] = (value, time.time())
"""
    root = make_tree(
        {
            "pkg/__init__.py": "from .store.core import Cache\n",
            "pkg/store/__init__.py": "",
            "pkg/store/core.py": cache,
            "pkg/api.py": "from . import Cache\n\n\ndef handler():\n    return Cache().get('k')\n",
            "pkg/other.py": "import pkg.store.core as core\n\nc = core.Cache()\n",
        }
    )
    report = analyze(str(root), jobs=1)
    (f,) = report.findings
    users = {(c.path, c.kind) for c in f.consumers}
    assert ("pkg/api.py", "call") in users
    assert ("pkg/other.py", "call") in users
    assert ("pkg/__init__.py", "import") in users


def test_target_lines_and_phase_order(make_tree: Tree) -> None:
    """The plan totals are measured against the target; bigger, safer phases come first."""
    from .conftest import SPRAWL

    report = analyze(str(SPRAWL), jobs=1, target_lines=1000)
    plan = report.plan
    assert plan.target_lines == 1000
    assert plan.target_share == pytest.approx(plan.total_lines / 1000)
    keys = [p.lines / (1 + p.risk_score) for p in plan.phases]
    assert keys == sorted(keys, reverse=True)
    with pytest.raises(ConfigError):
        analyze(str(SPRAWL), jobs=1, target_lines=-1)


def test_metrics_record_and_queue_pool(make_tree: Tree) -> None:
    """A performance-metrics dataclass is monitoring; a queue-backed object pool is memory."""
    code = """import queue
from dataclasses import dataclass


@dataclass
class RequestMetrics:
    response_time_ms: float
    cpu_percent: float
    memory_usage_mb: float
    endpoint: str = ""


@dataclass
class InvoiceTotals:
    amount: float
    tax: float


class ParserPool:
    def __init__(self, size):
        self._idle = queue.Queue(size)

    def acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return object()

    def release(self, parser):
        self._idle.put_nowait(parser)
"""
    assert one(make_tree, code) == [
        ("memory", "ParserPool", "class", 19, 30),
        ("monitoring", "RequestMetrics", "class", 5, 10),
    ]
