"""``perflayer demo``: replay a real cache trace through ``perflayer.Cache`` as a cache-aside memo.

Each access is ``get(key)``; a miss is followed by ``set(key, value)``. The run prints the hit
ratio (next to LRU's: cachetools' when it is installed, else perflayer's own LRU policy) and the
median / p99 latency of ``get`` and ``set`` as the process saw them (timer overhead
subtracted). Traces come from the repository's sibling ``shared/traces`` folder (see its README
for the formats), found from the current directory or from the installed package, or from
``--trace PATH``.
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import os
import statistics
import struct
import time
from pathlib import Path
from typing import Any

from perflayer.errors import ConfigError

__all__ = ["find_traces_dir", "load_trace", "replay", "run_demo"]

DEFAULT_TRACE = "cache2k-web07.trace.xz"


def find_traces_dir() -> Path | None:
    """Return the ``shared/traces`` folder next to the repository, or None if none is found."""
    env = os.environ.get("PERFLAYER_TRACES")
    candidates = [Path(env)] if env else []
    here = Path.cwd().resolve()
    for base in (here, *here.parents):
        candidates.append(base / ".." / "shared" / "traces")
        candidates.append(base / "shared" / "traces")
        if (base / "pyproject.toml").exists():
            break
    pkg = Path(__file__).resolve()
    for base in pkg.parents:
        candidates.append(base / ".." / "shared" / "traces")
        if (base / "pyproject.toml").exists():
            break
    for c in candidates:
        if c.is_dir() and any(c.glob("*.trace.*")):
            return c.resolve()
    return None


def load_trace(path: Path) -> list[int]:
    """Return the keys of a trace: text (.gz, one int per line) or binary big-endian int32 (.xz)."""
    name = path.name
    if name.endswith(".xz"):
        with lzma.open(path, "rb") as f:
            raw = f.read()
        n = len(raw) // 4
        return list(struct.unpack(f">{n}i", raw[: n * 4]))
    opener: Any = gzip.open if name.endswith(".gz") else open
    keys: list[int] = []
    with opener(path, "rt") as f:
        for line in f:
            s = line.strip()
            if not s or s == "*":
                continue
            keys.append(int(s.split()[0]))
    return keys


def _lru_hit_ratio(keys: list[int], size: int) -> tuple[float, str]:
    """Return the LRU hit ratio of ``keys`` at ``size``, and what computed it."""
    try:
        import cachetools
    except ImportError:  # `make run` installs no dev tools: use perflayer's own LRU policy
        return replay(keys, size, policy="lru")["hit_ratio"], "perflayer policy='lru'"
    c: Any = cachetools.LRUCache(maxsize=size)
    hits = 0
    for k in keys:
        if c.get(k) is not None:
            hits += 1
        else:
            c[k] = k
    return hits / len(keys), "cachetools.LRUCache"


def _timer_overhead() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(2000):
        t0 = clock()
        samples.append(clock() - t0)
    return int(statistics.median(samples))


def replay(keys: list[int], size: int, policy: str = "auto") -> dict[str, Any]:
    """Replay ``keys`` through a Cache of ``size`` entries; return hit ratio and latencies."""
    from perflayer.cache import Cache
    from perflayer.monitor import Monitor

    cache = Cache(max_entries=size, policy=policy, name="demo", monitor=Monitor())
    names = [f"k{k}" for k in keys]
    get, set_ = cache.get, cache.set
    clock = time.perf_counter_ns
    get_ns: list[int] = []
    set_ns: list[int] = []
    hits = 0
    for name in names:
        t0 = clock()
        v = get(name)
        t1 = clock()
        get_ns.append(t1 - t0)
        if v is None:
            t0 = clock()
            set_(name, name)
            set_ns.append(clock() - t0)
        else:
            hits += 1
    over = _timer_overhead()

    def q(xs: list[int], p: float) -> float:
        if not xs:
            return 0.0
        s = sorted(xs)
        return float(max(0, s[min(len(s) - 1, int(p * len(s)))] - over))

    return {
        "accesses": len(keys),
        "distinct": len(set(keys)),
        "size": size,
        "hit_ratio": hits / len(keys) if keys else 0.0,
        "get_p50_ns": q(get_ns, 0.5),
        "get_p99_ns": q(get_ns, 0.99),
        "set_p50_ns": q(set_ns, 0.5),
        "set_p99_ns": q(set_ns, 0.99),
        "stats": cache.stats(),
        "policy": _describe(policy, cache._policy),
    }


def _describe(name: str, policy: Any) -> str:
    """Return the policy's name and, for a selecting one, its engine and switches."""
    engine = getattr(policy, "engine", None)
    if engine is None:
        return f"policy {name!r}"
    return f"policy {name!r}: {engine} engine, {policy.switches} switches"


def _rows(trace: str, res: dict[str, Any], lru: tuple[float, str]) -> list[tuple[str, str]]:
    ev = res["stats"]["evictions"]
    return [
        ("trace", f"{trace} ({res['accesses']:,} accesses, {res['distinct']:,} distinct keys)"),
        ("cache size", f"{res['size']:,} entries ({res['policy']})"),
        ("hit ratio", f"{res['hit_ratio'] * 100:.2f} %"),
        ("LRU hit ratio", f"{lru[0] * 100:.2f} % ({lru[1]})"),
        ("get latency", f"p50 {res['get_p50_ns']:.0f} ns, p99 {res['get_p99_ns']:.0f} ns"),
        ("set latency", f"p50 {res['set_p50_ns']:.0f} ns, p99 {res['set_p99_ns']:.0f} ns"),
        ("evictions", f"size {ev['size']:,}, expired {ev['expired']:,}, deleted {ev['deleted']:,}"),
    ]


def _print(rows: list[tuple[str, str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(k) for k, _ in rows)
        print("perflayer demo: cache-aside replay of a real trace")
        for k, v in rows:
            print(f"  {k.ljust(width)}  {v}")
        return
    table = Table(title="perflayer demo: cache-aside replay of a real trace", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo for the CLI; return the exit code (ConfigError maps to 2 in the CLI)."""
    trace_arg = getattr(args, "trace", None)
    size = getattr(args, "size", None)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"--size must be a positive number of entries, got {size!r}")
    if trace_arg:
        path = Path(trace_arg)
        if not path.is_file():
            raise ConfigError(f"trace file not found: {str(path)!r}")
    else:
        folder = find_traces_dir()
        if folder is None:
            raise ConfigError(
                "no trace folder found: expected ../shared/traces next to the repository "
                "(or set PERFLAYER_TRACES, or pass --trace PATH)"
            )
        path = folder / DEFAULT_TRACE
        if not path.is_file():
            found = sorted(folder.glob("*.trace.*"))
            if not found:
                raise ConfigError(f"no *.trace.* files in {str(folder)!r}")
            path = found[0]
    keys = load_trace(path)
    if not keys:
        raise ConfigError(f"trace {str(path)!r} holds no accesses")
    if size is None:
        size = max(1, len(set(keys)) // 10)
    res = replay(keys, size)
    _print(_rows(path.name, res, _lru_hit_ratio(keys, size)))
    return 0
