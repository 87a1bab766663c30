"""Latency of the default policy where it selects (caches of up to 2,048 entries), as ratios.

``policy="auto"`` runs W-TinyLFU alone above 2,048 entries (the same class and cost as
``policy="tinylfu"``: benchmarks/cache_latency.py measures it at 5,000-20,000 entries). Up to
2,048 entries it also simulates LIRS and ARC on every access, paid by the next write for the
buffered reads (perflayer.cache._policy_auto). This benchmark prices that where it runs, in one
process, side by side with cachetools.LRUCache and with ``policy="tinylfu"``:

- ``mixed``: a 90% get / 10% set Zipf(0.99) stream over 100,000 keys (cache-aside: a read miss
  is followed by its ``set``), warmed with 4 x capacity operations: every read is replayed by
  the policy, so this row charges the simulations to the workload;
- ``new key``: ``set`` of a key never seen, into a full cache (every insert evicts); after the
  mixed stream (the default has switched engines there: it runs a twin of the W-TinyLFU beside
  its engine from then on), and on a default that never switched (``unswitched``: filled with
  new keys only, its engine is its own twin), and on defaults driven onto each engine it can
  adopt (``on lirs``, ``on arc``, and ``on tinylfu after a switch``: back on W-TinyLFU after
  LIRS and ARC, with the twin beside it; ``driven``).

Rows rotate their order per round; a sample is a batch's time per call; the ratio is the median
over rounds of (row / cachetools.LRUCache) in the same round (``cache_latency.paired_ratio``).
``python -m benchmarks.auto_latency [--rounds N] [--batch N] [--cpu-time]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import cachetools

from benchmarks import cache_latency as cl
from benchmarks.traces import recency_heavy
from perflayer import Cache

SIZES = (500, 1_024, 2_048)
LRU = "cachetools.LRUCache"
TTL = cl.TTL


def _loops(cap: int) -> dict[str, tuple[Callable[[list[tuple[bool, str]]], int], Any]]:
    """Return per row a mixed-stream replay loop (returning read hits) and its cache."""
    auto = Cache(cap, metrics=False)
    tiny = Cache(cap, policy="tinylfu", metrics=False)
    lru: cachetools.LRUCache[str, int] = cachetools.LRUCache(maxsize=cap)
    ttlc: cachetools.TTLCache[str, int] = cachetools.TTLCache(maxsize=cap, ttl=TTL)

    return {
        "perflayer default (auto)+ttl": (cl.ttl_loop(auto), auto),
        "perflayer tinylfu+ttl": (cl.ttl_loop(tiny), tiny),
        LRU: (cl.plain_loop(lru.get, lru.__setitem__), lru),
        "cachetools.TTLCache": (cl.plain_loop(ttlc.get, ttlc.__setitem__), ttlc),
    }


def driven(cap: int, engine: str) -> Cache:
    """Return a default cache of ``cap`` entries driven (cache-aside) onto ``engine`` by a switch.

    ``lirs``: a loop over 1.5 x ``cap`` keys between keys read once; ``arc``: the recency-heavy synthetic trace;
    ``tinylfu``: the loop until LIRS is adopted, then a Zipf stream until W-TinyLFU is back.
    """
    cache = Cache(cap, metrics=False)
    policy = cache._policy
    get, put = cache.get, cache.set

    def feed(keys: list[str], until: Callable[[], bool]) -> None:
        for k in keys:
            if get(k) is None:
                put(k, 1, ex=TTL)
            if until():
                return
        raise RuntimeError(f"c={cap}: the stream did not drive the default onto {engine}")

    # why the one-off keys between: a bare loop is as good on W-TinyLFU as on LIRS
    loop = [k for i in range(60 * cap) for k in (f"loop:{i % (3 * cap // 2)}", f"once:{i}")]
    if engine == "arc":
        feed([f"rh:{k}" for k in recency_heavy()], lambda: policy.engine == "arc")
        return cache
    feed(loop, lambda: policy.engine == "lirs")
    if engine == "tinylfu":
        zipf = [k for _is_set, k in cl.zipf_ops(200 * cap, seed=cap)]
        feed(zipf, lambda: policy.engine == "tinylfu")
    return cache


def run(cap: int, rounds: int, batch: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Return the mixed and new-key samples (seconds per call) of every row at ``cap``."""
    warm = 4 * cap
    ops = cl.zipf_ops(warm + rounds * batch, seed=cap)
    loops = _loops(cap)
    for loop, _cache in loops.values():
        loop(ops[:warm])
    mixed: dict[str, list[float]] = {name: [] for name in loops}
    new: dict[str, list[float]] = {name: [] for name in loops}
    names = list(loops)
    setters: dict[str, Callable[[str], Any]] = {}
    for name, (_loop, cache) in loops.items():
        if isinstance(cache, Cache):
            setters[name] = lambda k, _s=cache.set: _s(k, 1, ex=TTL)
        else:
            setters[name] = lambda k, _s=cache.__setitem__: _s(k, 1)
    # a default that never switched: fed new keys only (an all-miss stream gives no lead)
    fresh = Cache(cap, metrics=False)
    for i in range(2 * cap):
        fresh.set(f"fill:{i}", 1, ex=TTL)
    unswitched = "perflayer default (auto)+ttl, unswitched"
    setters[unswitched] = lambda k, _s=fresh.set: _s(k, 1, ex=TTL)
    new[unswitched] = []
    # the default on each engine it can adopt, driven there by a stream that makes it switch
    on = {e: driven(cap, e) for e in ("lirs", "arc", "tinylfu")}
    for e, cache in on.items():
        name = f"perflayer default (auto)+ttl, on {e} after a switch"
        setters[name] = lambda k, _s=cache.set: _s(k, 1, ex=TTL)
        new[name] = []
    counter = 0
    for r in range(rounds):
        chunk = ops[warm + r * batch : warm + (r + 1) * batch]
        keys = [f"new:{counter + i}" for i in range(batch)]
        counter += batch
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = cl._clock()
            loops[name][0](chunk)
            mixed[name].append((cl._clock() - t0) / batch)
            new[name].append(cl._time_batch(setters[name], keys))
        new[unswitched].append(cl._time_batch(setters[unswitched], [f"u{k}" for k in keys]))
        for e in on:
            name = f"perflayer default (auto)+ttl, on {e} after a switch"
            new[name].append(cl._time_batch(setters[name], [f"{e}{k}" for k in keys]))
    auto = loops["perflayer default (auto)+ttl"][1]
    policy = auto._policy
    assert fresh._policy.switches == 0, "the unswitched row switched"
    print(
        f"c={cap}: the default's engine at the end: {policy.engine}, {policy.switches} switches",
        flush=True,
    )
    for e, cache in on.items():
        p = cache._policy
        print(f"c={cap}: the row driven onto {e} ended on {p.engine} ({p.switches} switches)")
    return mixed, new


def main(argv: list[str] | None = None) -> int:
    """Run every size and print the markdown tables with paired ratios to cachetools."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--cpu-time", action="store_true", help="time in this thread's CPU time")
    args = ap.parse_args(argv)
    if args.cpu_time:
        cl._clock = time.thread_time
    print("| size | workload | row | median ns | paired ratio to LRUCache |")
    print("|---:|---|---|---:|---:|")
    for cap in SIZES:
        mixed, new = run(cap, args.rounds, args.batch)
        for what, per in (("mixed 90/10", mixed), ("new key, full", new)):
            for name, xs in per.items():
                ratio = cl.paired_ratio(xs, per[LRU])
                med = statistics.median(xs) * 1e9
                print(f"| {cap:,} | {what} | {name} | {med:,.0f} | {ratio:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
