"""Hit-ratio replay: perflayer's policy against its peers and Belady's optimum, on real traces.

Run ``python -m benchmarks.hitratio`` from the repository root. Every trace in ../shared/traces
and every synthetic trace of ``benchmarks.traces`` is replayed as a cache-aside memo (``get(k)``;
on a miss ``set(k, v)``) at five cache sizes; hit ratio = hits / accesses, cold misses included.

Columns: ``perflayer`` (the default policy as ``perflayer.Cache`` builds it, ``policy="auto"``:
W-TinyLFU under a selection of LIRS or ARC up to 2,048 entries, W-TinyLFU alone above),
``tinylfu`` (W-TinyLFU alone, ``policy="tinylfu"``, the previous default), ``adaptive``
(AdaptivePolicy, ``policy="adaptive"``), all driven through the Policy protocol
as perflayer.Cache drives them, ``LRU`` and ``LFU`` (cachetools), ``theine`` (theine_core's Rust W-TinyLFU, replayed
without theine's lossy Python buffers), ``ARC``, ``LIRS`` and ``S3FIFO`` (benchmarks/policies,
from their papers) and ``OPT`` (Belady's optimum with bypass, exact).

Options: ``--only NAME`` (repeatable) replays a subset of traces; ``--no-synthetic`` skips the
generated traces, ``--no-shared`` the ones of ../shared/traces; ``--seed-offset N`` generates
them from other seeds (a held-out family);
``--markdown PATH`` writes the tables as Markdown; ``--cost`` measures the
per-call cost of the policy's calls instead (see ``cost_main``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

import cachetools
from theine_core import TlfuCore, spread

from benchmarks.policies import ARC, LIRS, S3FIFO, belady_hits
from benchmarks.traces import Trace, real_traces, synthetic_traces
from perflayer.cache._policy import TinyLFUPolicy, make_policy
from perflayer.cache._policy_adaptive import AdaptivePolicy
from perflayer.cache._protocols import Policy

__all__ = ["PEERS", "main", "replay"]


class Sim(Protocol):
    """A cache simulator: ``access(key)`` returns True on a hit."""

    def access(self, key: Hashable) -> bool: ...


class PolicySim:
    """Drive a perflayer Policy as perflayer.Cache does: hit/miss on reads, add on a miss."""

    def __init__(self, policy: Policy, capacity: int) -> None:
        self.policy = policy
        self.capacity = capacity
        self.resident: set[Hashable] = set()

    def access(self, key: Hashable) -> bool:
        res = self.resident
        if key in res:
            self.policy.hit(key)
            return True
        self.policy.miss(key)
        victims = self.policy.add(key, 1)
        for v in victims:
            res.remove(v)
        res.add(key)
        if len(res) > self.capacity or key in victims:
            raise AssertionError(f"policy broke its bound at key {key!r}")
        return False


class CachetoolsSim:
    """A cachetools cache used as a memo."""

    def __init__(self, cls: type[cachetools.Cache[Hashable, int]], capacity: int) -> None:
        self.cache = cls(maxsize=capacity)

    def access(self, key: Hashable) -> bool:
        c = self.cache
        if c.get(key) is not None:
            return True
        c[key] = 1
        return False


class TheineSim:
    """theine's Rust W-TinyLFU core, fed every access synchronously."""

    def __init__(self, capacity: int) -> None:
        self.core = TlfuCore(capacity)
        self.resident: set[int] = set()

    def access(self, key: Hashable) -> bool:
        h = spread(hash(key))
        if h in self.resident:
            self.core.access([h])
            return True
        self.resident.add(h)
        for v in self.core.set([(h, 0)]):
            self.resident.discard(v)
        return False


PEERS: dict[str, Callable[[int], Sim]] = {
    # the default as perflayer.Cache builds it: policy="auto" (AutoPolicy up to 2,048 entries,
    # the C TinyLFUPolicy above)
    "perflayer": lambda c: PolicySim(make_policy("auto", c, None), c),
    # W-TinyLFU alone (policy="tinylfu", the default before "auto")
    "tinylfu": lambda c: PolicySim(make_policy("tinylfu", c, None), c),
    "adaptive": lambda c: PolicySim(AdaptivePolicy(c, None), c),
    "LRU": lambda c: CachetoolsSim(cachetools.LRUCache, c),
    "LFU": lambda c: CachetoolsSim(cachetools.LFUCache, c),
    "theine": TheineSim,
    "ARC": ARC,
    "LIRS": LIRS,
    "S3FIFO": S3FIFO,
}
BAR_PEERS = ("LRU", "LFU", "theine", "ARC", "LIRS", "S3FIFO")
DEFAULT_COLUMNS = ",".join(PEERS)


def _shadow_prototype(c: int) -> Sim:
    from benchmarks.prototypes.shadow_climber import H3Policy

    return PolicySim(H3Policy(c, None), c)


# research columns, run only when named in --policies (docs/benchmarks.md, "A shadow-window climber"):
# the prototype the policy's shadow climber was ported from (same decisions), and the TinyLFU
# with the sample climber (the default before the shadow climber)
PEERS["tinylfu-shadow"] = _shadow_prototype
PEERS["tinylfu-sample"] = lambda c: PolicySim(TinyLFUPolicy(c, None, climber="sample"), c)


def replay(make: Callable[[int], Sim], keys: Sequence[Hashable], capacity: int) -> float:
    """Return the hit ratio (in %) of one simulator on one trace."""
    sim = make(capacity)
    access = sim.access
    hits = 0
    for k in keys:
        if access(k):
            hits += 1
    return 100.0 * hits / len(keys)


def run(traces: list[Trace], names: Sequence[str]) -> dict[tuple[str, int], dict[str, float]]:
    """Replay every trace at every size with every simulator; return hit ratios in %."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for t in traces:
        for size in t.sizes:
            row = {name: replay(PEERS[name], t.keys, size) for name in names}
            row["OPT"] = 100.0 * belady_hits(t.keys, size) / len(t.keys)
            out[(t.name, size)] = row
            print(
                f"{t.name:20} {size:>6} " + " ".join(f"{n}={v:5.2f}" for n, v in row.items()),
                file=sys.stderr,
            )
    return out


def render(
    traces: list[Trace], results: dict[tuple[str, int], dict[str, float]], names: Sequence[str]
) -> tuple[str, list[str]]:
    """Return the Markdown tables and the list of bar violations."""
    lines: list[str] = []
    cols = [*names, "OPT"]
    violations: list[str] = []
    gaps: dict[str, list[float]] = {n: [] for n in names}
    groups: dict[str, dict[str, list[float]]] = {}
    points = 0
    for t in traces:
        lines.append(f"### {t.name} ({len(t.keys):,} accesses, {t.distinct:,} keys, {t.source})")
        lines.append("")
        lines.append("| size | " + " | ".join(cols) + " | perflayer - best peer |")
        lines.append("|---:|" + "---:|" * len(cols) + "---:|")
        for size in t.sizes:
            row = results[(t.name, size)]
            # No peer column selected (--policies perflayer): there is no bar to compare with.
            best = max((row[p] for p in BAR_PEERS if p in row), default=None)
            margin = row["perflayer"] - best if "perflayer" in row and best is not None else 0.0
            if margin < -1.0:
                violations.append(f"{t.name}@{size}: {margin:+.2f} points vs best peer")
            points += 1
            group = groups.setdefault(
                "synthetic" if t.source == "synthetic" else "shared", {n: [] for n in names}
            )
            for n in names:
                gaps[n].append(row["OPT"] - row[n])
                group[n].append(row["OPT"] - row[n])
            top = max(row[n] for n in names)
            cells = [
                f"**{row[n]:.2f}**" if row[n] == top and n in names else f"{row[n]:.2f}"
                for n in cols
            ]
            lines.append(f"| {size} | " + " | ".join(cells) + f" | {margin:+.2f} |")
        lines.append("")
    lines.append("### Mean gap to the optimum (points, lower is better)")
    lines.append("")
    lines.append("| traces | points | " + " | ".join(names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    table = [("all", gaps), *sorted(groups.items())]
    for label, g in table:
        cells = " | ".join(f"{statistics.fmean(g[n]):.2f}" for n in names)
        lines.append(f"| {label} | {len(g[names[0]])} | {cells} |")
    lines.append("")
    if "perflayer" in names:
        lines.append(
            f"perflayer: points more than 1 point below the best of {', '.join(BAR_PEERS)}: "
            f"{len(violations)} of {points}."
        )
    # every column that is not a bar peer (ours, and research columns) gets the bar's count
    for n in names:
        if n in BAR_PEERS or n == "perflayer":
            continue
        below = sum(
            1
            for t in traces
            for size in t.sizes
            if results[(t.name, size)][n]
            < max(
                (results[(t.name, size)][p] for p in BAR_PEERS if p in results[(t.name, size)]),
                default=float("-inf"),
            )
            - 1.0
        )
        lines.append(f"Same count for the {n} column: {below} of {points}.")
    lines.append("")
    return "\n".join(lines), violations


def machine() -> str:
    """Describe the machine in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return float(time.perf_counter_ns() - t0)


def cost_main(rounds: int = 15, n: int = 20_000) -> int:
    """Time the policy's calls against OrderedDict/cachetools, interleaved, as ns per call."""
    import random
    from collections import OrderedDict

    from perflayer.cache._policy import LRUPolicy

    cap = 10_000
    keys = [f"key:{i}" for i in range(cap)]
    rng = random.Random(1)
    reads = [rng.choice(keys) for _ in range(n)]
    fresh = [f"new:{i}" for i in range(rounds * n * 2)]
    od: OrderedDict[str, int] = OrderedDict((k, 1) for k in keys)
    ct: cachetools.LRUCache[str, int] = cachetools.LRUCache(cap)
    lru = LRUPolicy(cap, None)
    tiny = TinyLFUPolicy(cap, None)
    # separate instances for the write cases, so the read cases keep reading resident keys
    ct_w: cachetools.LRUCache[str, int] = cachetools.LRUCache(cap)
    tiny_w = TinyLFUPolicy(cap, None)
    for k in keys:
        ct[k] = 1
        lru.add(k, 1)
        tiny.add(k, 1)
        ct_w[k] = 1
        tiny_w.add(k, 1)
    resident = set(keys)
    fresh_it = iter(fresh)
    # the adaptive policy: 10,000 entries (sampled simulations) and 1,000 (full shadows)
    small_keys = keys[:1_000]
    small_reads = [rng.choice(small_keys) for _ in range(n)]
    adapt = AdaptivePolicy(cap, None)
    adapt_w = AdaptivePolicy(cap, None)
    adapt_s = AdaptivePolicy(1_000, None)
    tiny_s = TinyLFUPolicy(1_000, None)
    for k in keys:
        adapt.add(k, 1)
        adapt_w.add(k, 1)
    for k in small_keys:
        adapt_s.add(k, 1)
        tiny_s.add(k, 1)

    def od_move() -> None:
        m = od.move_to_end
        for k in reads:
            m(k)

    def ct_get() -> None:
        g = ct.get
        for k in reads:
            g(k)

    def lru_hit() -> None:
        h = lru.hit
        for k in reads:
            h(k)

    def tiny_hit() -> None:
        h = tiny.hit
        for k in reads:
            h(k)

    chunks = [reads[i : i + 512] for i in range(0, n, 512)]

    def tiny_hit_amortized() -> None:
        # every read plus its share of the replay done by the next write (512-read batches)
        h = tiny.hit
        drain = tiny._drain
        for chunk in chunks:
            for k in chunk:
                h(k)
            drain()

    def amortized(policy: Policy, rs: list[str]) -> Callable[[], None]:
        # reads in 512-read batches, each followed by a locked call that replays them
        # (remove() of an absent key: the replay plus one dict lookup)
        batches = [rs[i : i + 512] for i in range(0, n, 512)]

        def run() -> None:
            h = policy.hit
            rm = policy.remove
            for chunk in batches:
                for k in chunk:
                    h(k)
                rm("absent")

        return run

    def add_new(policy: Policy) -> Callable[[], None]:
        def run() -> None:
            miss, add = policy.miss, policy.add
            for _ in range(n // 10):
                k = next(fresh_it)
                miss(k)
                add(k, 1)

        return run

    def ct_get_chunked() -> None:
        g = ct.get
        for chunk in chunks:
            for k in chunk:
                g(k)

    def ct_set_new() -> None:
        for _ in range(n // 10):
            ct_w[next(fresh_it)] = 1

    def tiny_add_new() -> None:
        miss, add = tiny_w.miss, tiny_w.add
        for _ in range(n // 10):
            k = next(fresh_it)
            miss(k)
            for v in add(k, 1):
                resident.discard(v)

    cases: dict[str, tuple[Callable[[], None], int]] = {
        "OrderedDict.move_to_end": (od_move, n),
        "cachetools.LRUCache.get (hit)": (ct_get, n),
        "cachetools.LRUCache.get (hit, same 512-read loop)": (ct_get_chunked, n),
        "LRUPolicy.hit": (lru_hit, n),
        "TinyLFUPolicy.hit (buffered)": (tiny_hit, n),
        "TinyLFUPolicy.hit (amortized, incl. replay)": (tiny_hit_amortized, n),
        "cachetools.LRUCache set (new key, full)": (ct_set_new, n // 10),
        "TinyLFUPolicy.miss + add (new key, full)": (tiny_add_new, n // 10),
        "TinyLFUPolicy.hit (amortized, replay by remove)": (amortized(tiny, reads), n),
        "AdaptivePolicy.hit (amortized, replay by remove)": (amortized(adapt, reads), n),
        "AdaptivePolicy.miss + add (new key, full)": (add_new(adapt_w), n // 10),
        "TinyLFUPolicy.hit (1,000 entries, amortized)": (amortized(tiny_s, small_reads), n),
        "AdaptivePolicy.hit (1,000 entries, full shadows, amortized)": (
            amortized(adapt_s, small_reads),
            n,
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (fn, calls) in cases.items():
            tiny._buf.clear()
            adapt._buf.clear()
            samples[name].append(_timed(fn) / calls)
    print(f"per-call cost, ns ({rounds} interleaved rounds; {machine()})")
    print("| call | median | p99 (max of rounds) |")
    print("|---|---:|---:|")
    for name, xs in samples.items():
        print(f"| {name} | {statistics.median(xs):.0f} | {max(xs):.0f} |")
    ref_get = statistics.median(samples["cachetools.LRUCache.get (hit, same 512-read loop)"])
    ref_set = statistics.median(samples["cachetools.LRUCache set (new key, full)"])
    amort = statistics.median(samples["TinyLFUPolicy.hit (amortized, incl. replay)"])
    add = statistics.median(samples["TinyLFUPolicy.miss + add (new key, full)"])
    print(f"tinylfu hit, amortized / cachetools get: {amort / ref_get:.2f}x")
    print(f"tinylfu miss+add / cachetools set: {add / ref_set:.2f}x")

    def med(name: str) -> float:
        return statistics.median(samples[name])

    a_hit = med("AdaptivePolicy.hit (amortized, replay by remove)")
    t_hit = med("TinyLFUPolicy.hit (amortized, replay by remove)")
    a_add = med("AdaptivePolicy.miss + add (new key, full)")
    s_a = med("AdaptivePolicy.hit (1,000 entries, full shadows, amortized)")
    s_t = med("TinyLFUPolicy.hit (1,000 entries, amortized)")
    print(f"adaptive hit, amortized / cachetools get: {a_hit / ref_get:.2f}x")
    print(f"  (tinylfu, same method: {t_hit / ref_get:.2f}x)")
    print(f"adaptive miss+add / cachetools set: {a_add / ref_set:.2f}x")
    print(
        f"1,000 entries, full shadows: adaptive hit, amortized / cachetools get: {s_a / ref_get:.2f}x"
    )
    print(f"  (tinylfu at 1,000 entries: {s_t / ref_get:.2f}x)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the replay and print the tables; exit 1 if a bar is missed."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hitratio")
    ap.add_argument("--only", action="append", default=[], help="replay only this trace")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic traces")
    ap.add_argument("--no-shared", action="store_true", help="skip the traces of ../shared/traces")
    ap.add_argument(
        "--seed-offset",
        type=int,
        default=0,
        help="generate the synthetic traces from their seeds plus this (a held-out family)",
    )
    ap.add_argument(
        "--policies",
        default=DEFAULT_COLUMNS,
        help=f"comma-separated columns (default {DEFAULT_COLUMNS}; also: tinylfu-shadow, tinylfu-sample)",
    )
    ap.add_argument("--markdown", help="write the tables to this file")
    ap.add_argument("--cost", action="store_true", help="measure per-call policy cost instead")
    args = ap.parse_args(argv)
    if args.cost:
        return cost_main()
    traces = [] if args.no_shared else real_traces()
    if not args.no_synthetic:
        traces += synthetic_traces(args.seed_offset)
    if args.only:
        traces = [t for t in traces if t.name in args.only]
    names = [n for n in args.policies.split(",") if n]
    t0 = time.perf_counter()
    results = run(traces, names)
    text, violations = render(traces, results, names)
    print(text)
    print(f"replayed in {time.perf_counter() - t0:.0f} s on {machine()}")
    if violations:
        print("bar missed (more than 1 point below the best peer):")
        for v in violations:
            print("  " + v)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
