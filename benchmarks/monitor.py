"""perflayer.monitor against prometheus_client (speed) and ddsketch / HdrHistogram (accuracy).

Run: ``.venv/bin/python -m benchmarks.monitor`` (``--quick`` for a smoke run).

Speed: each case runs our call and the peer's call alternately, ROUNDS times, N calls per round,
in one process; the table gives per-call median and p99 over rounds and the ratio of medians
(ours / peer; below 1.0 is faster). Accuracy: 1M values from lognormal, bimodal and Pareto
distributions, relative error at p50/p90/p99/p99.9 against the exact order statistic.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import threading
import time
import timeit
from typing import Any

from ddsketch import DDSketch
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PCounter
from prometheus_client import Gauge as PGauge
from prometheus_client import Histogram as PHistogram

from perflayer.monitor import Monitor, Sketch


def per_call_ns(stmt: str, env: dict[str, Any], number: int) -> float:
    """Return nanoseconds per call of ``stmt`` run ``number`` times."""
    return timeit.Timer(stmt, globals=env).timeit(number) / number * 1e9


def interleaved(
    ours: tuple[str, dict[str, Any]], peer: tuple[str, dict[str, Any]], number: int, rounds: int
) -> tuple[list[float], list[float]]:
    """Time ours and peer alternately (ours first on even rounds, peer first on odd ones)."""
    a: list[float] = []
    b: list[float] = []
    per_call_ns(ours[0], ours[1], number // 10 or 1)  # warm up both
    per_call_ns(peer[0], peer[1], number // 10 or 1)
    for r in range(rounds):
        gc.collect()
        if r % 2 == 0:
            a.append(per_call_ns(ours[0], ours[1], number))
            b.append(per_call_ns(peer[0], peer[1], number))
        else:
            b.append(per_call_ns(peer[0], peer[1], number))
            a.append(per_call_ns(ours[0], ours[1], number))
    return a, b


def p99(xs: list[float]) -> float:
    """Return the 99th percentile (nearest rank) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


def speed(rounds: int, n: int) -> list[tuple[str, float, float, float, float, float, str]]:
    """Run the speed cases; return rows (case, ours med, ours p99, peer med, peer p99, ratio, bar)."""
    rows = []
    rng = random.Random(42)
    values = [rng.lognormvariate(-4, 1.2) for _ in range(1000)]

    m = Monitor()
    reg = CollectorRegistry()
    c = m.counter("bench_inc_total", "doc")
    pc = PCounter("bench_inc", "doc", registry=reg)
    a, b = interleaved(("c.inc()", {"c": c}), ("c.inc()", {"c": pc}), n, rounds)
    rows.append(("counter inc()", a, b, 1.0))

    lc = m.counter("bench_lab_total", "doc", ("code", "path"))
    plc = PCounter("bench_lab", "doc", ("code", "path"), registry=reg)
    a, b = interleaved(
        ('c.labels("200", "/api").inc()', {"c": lc}),
        ('c.labels("200", "/api").inc()', {"c": plc}),
        n,
        rounds,
    )
    rows.append(("labels(..).inc()", a, b, None))

    a, b = interleaved(("c.inc(2.5)", {"c": c}), ("c.inc(2.5)", {"c": pc}), n, rounds)
    rows.append(("counter inc(2.5)", a, b, None))

    h = m.histogram("bench_obs_seconds", "doc")
    ph = PHistogram("bench_obs_seconds", "doc", registry=reg)
    loop = "for v in vals: h.observe(v)"
    a, b = interleaved(
        (loop, {"h": h, "vals": values}),
        (loop, {"h": ph, "vals": values}),
        max(1, n // 1000),
        rounds,
    )
    a = [x / 1000 for x in a]
    b = [x / 1000 for x in b]
    rows.append(("histogram observe() (sketch+buckets)", a, b, 1.5))

    # render: the same families in both registries
    m2 = Monitor()
    reg2 = CollectorRegistry()
    for i in range(20):
        oc = m2.counter(f"bench_c{i}_total", "A counter.", ("code", "method"))
        pc2 = PCounter(f"bench_c{i}", "A counter.", ("code", "method"), registry=reg2)
        for code in ("200", "404", "500"):
            for meth in ("GET", "POST"):
                oc.labels(code, meth).inc(7)
                pc2.labels(code, meth).inc(7)
    for i in range(10):
        m2.gauge(f"bench_g{i}", "A gauge.").set(i)
        PGauge(f"bench_g{i}", "A gauge.", registry=reg2).set(i)
    for i in range(5):
        oh = m2.histogram(f"bench_h{i}_seconds", "A histogram.", ("op",))
        ph2 = PHistogram(f"bench_h{i}_seconds", "A histogram.", ("op",), registry=reg2)
        for op in ("get", "set"):
            for v in values[:200]:
                oh.labels(op).observe(v)
                ph2.labels(op).observe(v)
    a, b = interleaved(
        ("m.exposition()", {"m": m2}),
        ("g(r)", {"g": generate_latest, "r": reg2}),
        max(1, n // 2000),
        rounds,
    )
    rows.append(("render (20 counters x6, 10 gauges, 5 histograms x2)", a, b, 1.0))

    out = []
    for name, a, b, bar in rows:
        ratio = statistics.median(a) / statistics.median(b)
        verdict = "" if bar is None else ("MET" if ratio <= bar else "NOT MET")
        bar_s = "" if bar is None else f"<= {bar:.1f}x {verdict}"
        out.append((name, statistics.median(a), p99(a), statistics.median(b), p99(b), ratio, bar_s))
    return out


def lost_increments() -> tuple[int, int]:
    """4 threads x 250k inc(); return (expected, got) for our counter."""
    m = Monitor()
    c = m.counter("bench_threads_total", "doc")
    n = 250_000

    def work() -> None:
        for _ in range(n):
            c.inc()

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return 4 * n, int(c.get())


def detection_latency(trials: int, for_: float, interval: float) -> list[float]:
    """Seconds from a gauge crossing its threshold to the firing notification (real thread)."""
    out = []
    for _ in range(trials):
        m = Monitor()
        g = m.gauge("bench_v", "doc")
        m.add_alert(name="A", metric="bench_v", threshold=1, for_=for_)
        fired = threading.Event()

        def on_note(n: Any, fired: threading.Event = fired) -> None:
            if n.kind == "firing":
                fired.set()

        m.add_alert_handler(on_note)
        m.start(interval=interval)
        time.sleep(interval * random.random())  # cross at a random phase of the loop
        t0 = time.monotonic()
        g.set(5)
        fired.wait(60)
        out.append(time.monotonic() - t0)
        m.stop()
    return out


def datasets(n: int) -> dict[str, list[float]]:
    """Return the three distributions, n values each (seconds-like magnitudes)."""
    rng = random.Random(2024)
    lognormal = [rng.lognormvariate(-4, 1.2) for _ in range(n)]
    bimodal = [
        abs(rng.gauss(0.005, 0.001) if rng.random() < 0.8 else rng.gauss(0.2, 0.03)) + 1e-6
        for _ in range(n)
    ]
    pareto = [rng.paretovariate(1.5) * 0.001 for _ in range(n)]
    return {"lognormal": lognormal, "bimodal": bimodal, "pareto": pareto}


def accuracy(n: int) -> list[tuple[str, str, dict[float, float], int]]:
    """Return rows (dataset, implementation, {q: relative error}, bytes)."""
    qs = (0.5, 0.9, 0.99, 0.999)
    rows = []
    for name, vals in datasets(n).items():
        exact_sorted = sorted(vals)
        exact = {q: exact_sorted[int(q * (n - 1))] for q in qs}
        m = Monitor()
        h = m.histogram("acc_seconds", "doc")
        for v in vals:
            h.observe(v)
        rows.append(
            (
                name,
                "perflayer Histogram",
                {q: abs(h.quantile(q) - exact[q]) / exact[q] for q in qs},
                h.nbytes(),
            )
        )  # type: ignore[operator]
        dd = DDSketch(0.01)
        for v in vals:
            dd.add(v)
        rows.append(
            (
                name,
                "ddsketch 3 (1%)",
                {q: abs(dd.get_quantile_value(q) - exact[q]) / exact[q] for q in qs},
                # a Python list of int objects (ints above 256 are separate objects)
                sys.getsizeof(dd._store.bins)
                + sum(sys.getsizeof(c) for c in dd._store.bins if c > 256),
            )
        )
        # HdrHistogram records integers: nanoseconds, 2 significant figures (1% buckets) and 3.
        for sig in (2, 3):
            hdr = HdrHistogram(1, 10**13, sig)
            for v in vals:
                hdr.record_value(max(1, round(v * 1e9)))
            errs = {
                q: abs(hdr.get_value_at_percentile(q * 100) / 1e9 - exact[q]) / exact[q] for q in qs
            }
            rows.append(
                (
                    name,
                    f"HdrHistogram ({sig} sig. fig.)",
                    errs,
                    hdr.counts_len * hdr.word_size,  # its counts array
                )
            )
        s = Sketch()
        for v in vals[: n // 2]:
            s.add(v)
        s2 = Sketch()
        for v in vals[n // 2 :]:
            s2.add(v)
        s.merge(s2)
        rows.append(
            (
                name,
                "perflayer Sketch, 2 halves merged",
                {q: abs(s.quantile(q) - exact[q]) / exact[q] for q in qs},
                s.nbytes(),
            )
        )  # type: ignore[operator]
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the speed, thread-safety and accuracy tables."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and 100k values")
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 21)
    n = 20_000 if args.quick else 200_000
    nvals = 100_000 if args.quick else 1_000_000
    print(
        f"python {platform.python_version()} on {platform.machine()}, {sys.platform}; shared 2-core machine"
    )
    print(
        f"speed: {rounds} interleaved rounds; per-call ns (median / p99 over rounds); ratio = ours/peer\n"
    )
    print("| case | perflayer med | p99 | prometheus_client med | p99 | ratio | bar |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, am, ap99, bm, bp99, ratio, bar in speed(rounds, n):
        print(f"| {name} | {am:.0f} | {ap99:.0f} | {bm:.0f} | {bp99:.0f} | {ratio:.2f}x | {bar} |")
    exp, got = lost_increments()
    print(f"\n4 threads x 250k inc(): expected {exp}, got {got}, lost {exp - got}\n")
    for for_, interval in ((0.5, 0.2), (1.0, 0.5)):
        lat = detection_latency(5 if args.quick else 15, for_, interval)
        bound = for_ + interval
        over = max(lat) - bound
        verdict = "MET" if over <= 0 else f"NOT MET by {over * 1000:.0f} ms (thread wake-up jitter)"
        print(
            f"alert detection, for_={for_}s interval={interval}s, {len(lat)} trials: "
            f"median {statistics.median(lat):.3f}s, max {max(lat):.3f}s; "
            f"bound for_ + interval = {bound:.1f}s: {verdict}"
        )
    print()
    print(f"accuracy: {nvals:,} values per distribution; relative error vs exact order statistic\n")
    print("| data | implementation | p50 | p90 | p99 | p99.9 | bytes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, impl, errs, size in accuracy(nvals):
        cells = " | ".join(f"{errs[q] * 100:.3f}%" for q in (0.5, 0.9, 0.99, 0.999))
        print(f"| {name} | {impl} | {cells} | {size if size >= 0 else 'n/a'} |")


if __name__ == "__main__":
    main()
