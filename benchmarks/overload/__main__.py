"""Run the overload benchmark: ``python -m benchmarks.overload [--duration 25] [--seed 7]``.

Every strategy gets the same seeded workload per load level, run on a virtual-time event loop
(exact and repeatable on a shared machine). The 0.5x latency comparison with the unbounded
gather is then repeated on the real clock, interleaved over several rounds (median), because
there only perflayer's own CPU overhead can make a difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from benchmarks.overload._model import (
    MIX,
    STRATEGIES,
    capacity,
    make_workload,
    run_strategy,
    summarize,
)
from benchmarks.overload._vloop import run_virtual

COLS = ("good_critical", "good_high", "good_normal", "good_low", "good_all")


def fluid(load: float) -> dict[str, float]:
    """Return the fluid (infinitely divisible) goodput bound per priority under strict priority."""
    left = 1.0
    out: dict[str, float] = {}
    total = 0.0
    for p, share in MIX:
        demand = load * share
        got = min(demand, max(0.0, left))
        left -= got
        out[f"good_{p.name.lower()}"] = got / demand
        total += got
    out["good_all"] = total / load
    return out


def fmt_row(name: str, s: dict[str, float]) -> str:
    cells = " ".join(f"{100 * s[c]:7.2f}" for c in COLS)
    lat = f"{s.get('p50_ms', float('nan')):7.1f} {s.get('p99_ms', float('nan')):7.1f}"
    waste = f"{100 * s.get('waste', 0):6.2f}"
    extra = ""
    if "lost" in s:
        extra = f" {int(s['lost']):5d} {int(s['late_ok']):7d}"
    if "limit_median" in s:
        extra += f"   limit {int(s['limit_median'])} [{int(s['limit_min'])}-{int(s['limit_max'])}]"
    return f"  {name:12s} {cells}  {lat} {waste}{extra}"


def check_bars(
    results: dict[float, dict[str, dict[str, float]]], p50_delta: float | None
) -> list[str]:
    """Return one line per bar of issue 4: met or not, with the number."""
    out: list[str] = []

    def bar(ok: bool, text: str) -> None:
        out.append(f"  [{'met' if ok else 'NOT MET'}] {text}")

    pl = {load: r["perflayer"] for load, r in results.items() if "perflayer" in r}
    if 1.0 in pl:
        worst = min(pl[1.0][c] for c in COLS[:4])
        bar(worst >= 0.99, f"1x: every priority >= 99% goodput (worst {100 * worst:.2f}%)")
    if 2.0 in pl:
        s = pl[2.0]
        bar(s["good_all"] >= 0.49, f"2x: overall >= 49% ({100 * s['good_all']:.2f}%)")
        ch = min(s["good_critical"], s["good_high"])
        bar(ch >= 0.99, f"2x: critical and high >= 99% (min {100 * ch:.2f}%)")
    if 4.0 in pl:
        s = pl[4.0]
        bar(s["good_all"] >= 0.25, f"4x: overall >= 25% ({100 * s['good_all']:.2f}%)")
        bar(s["good_critical"] >= 0.99, f"4x: critical >= 99% ({100 * s['good_critical']:.2f}%)")
    for load in (2.0, 4.0):
        if load in pl:
            w = pl[load]["waste"]
            bar(w <= 0.10, f"{load:g}x: waste <= 10% ({100 * w:.2f}%)")
    if p50_delta is not None:
        bar(
            abs(p50_delta) <= 1.0,
            f"0.5x: p50 within 1 ms of unbounded (real clock: {p50_delta:+.2f} ms)",
        )
    lost = sum(int(s["lost"]) for s in pl.values())
    late = sum(int(s["late_ok"]) for s in pl.values())
    bar(lost == 0, f"0 lost responses ({lost})")
    bar(late == 0, f"0 successes after their deadline ({late})")
    return out


def realtime_p50(duration: float, rounds: int, seed: int) -> tuple[float, list[float], list[float]]:
    """Interleave gather and perflayer at 0.5x on the real clock (same workload per round).

    Return the median of the per-round p50 differences (perflayer - gather, ms) and the rounds.
    """
    g50: list[float] = []
    p50: list[float] = []
    for i in range(rounds):
        order = (("gather", g50), ("perflayer", p50))
        for name, sink in order if i % 2 == 0 else order[::-1]:
            reqs = make_workload(0.5, duration, seed + 1000 + i)
            res = asyncio.run(run_strategy(name, reqs))
            sink.append(summarize(res)["p50_ms"])
    return statistics.median(p - g for p, g in zip(p50, g50, strict=True)), g50, p50


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__)
    ap.add_argument(
        "--duration", type=float, default=25.0, help="simulated seconds of arrivals per load level"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--loads", default="0.5,1,2,4")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument(
        "--realtime-rounds", type=int, default=3, help="0 skips the real-clock 0.5x comparison"
    )
    ap.add_argument("--realtime-duration", type=float, default=8.0)
    ap.add_argument(
        "--clock",
        choices=("virtual", "real"),
        default="virtual",
        help="real: run every load on the real clock (as an outside harness would); the rows "
        "then show the timer lag, the share of downstream time lost to the event loop waking late",
    )
    args = ap.parse_args(argv)
    loads = [float(x) for x in args.loads.split(",")]
    names = [n for n in args.strategies.split(",") if n]
    for n in names:
        if n not in STRATEGIES:
            ap.error(f"unknown strategy {n!r}; choose from {', '.join(STRATEGIES)}")
    print(
        f"overload: 16-slot downstream, U(20,50) ms/call, capacity {capacity():.0f}/s; "
        f"mix 10/20/40/30% critical/high/normal/low; deadline 400 ms; {args.duration:g} s per level; seed {args.seed}; "
        f"{args.clock} clock"
    )
    print(
        "goodput % (answered ok within 400 ms); p50/p99 ms of good answers; waste % of downstream time"
    )
    head = " ".join(f"{c[5:]:>7s}" for c in COLS)
    results: dict[float, dict[str, dict[str, float]]] = {}
    t_all = time.perf_counter()
    for load in loads:
        print(f"\n{load:g}x capacity ({load * capacity():.0f}/s offered)")
        print(f"  {'strategy':12s} {head}      p50     p99  waste  lost late_ok")
        results[load] = {}
        for n in names:
            reqs = make_workload(load, args.duration, args.seed)
            if args.clock == "real":
                res = asyncio.run(run_strategy(n, reqs))
            else:
                res = run_virtual(run_strategy(n, reqs))
            s = summarize(res)
            results[load][n] = s
            lag = f"   timer lag {100 * s['timer_lag']:.2f}%" if args.clock == "real" else ""
            print(fmt_row(n, s) + lag, flush=True)
        print(fmt_row("fluid bound", fluid(load)).split("  nan")[0])
    p50_delta = None
    if args.realtime_rounds > 0 and "perflayer" in names:
        p50_delta, gs, ps = realtime_p50(args.realtime_duration, args.realtime_rounds, args.seed)
        print(
            f"\n0.5x on the real clock, {args.realtime_rounds} interleaved rounds of {args.realtime_duration:g} s: "
            f"median per-round p50 difference perflayer - gather {p50_delta:+.2f} ms; "
            f"p50 gather {[round(x, 2) for x in gs]}, perflayer {[round(x, 2) for x in ps]} "
            f"(medians {statistics.median(gs):.2f} / {statistics.median(ps):.2f} ms)"
        )
    print("\nbars (issue 4):")
    print("\n".join(check_bars(results, p50_delta)))
    print(f"\n(total {time.perf_counter() - t_all:.0f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
