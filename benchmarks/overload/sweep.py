"""Run perflayer over many seeds at 1x, 2x and 4x and print each bar per seed, with means.

``python -m benchmarks.overload.sweep --seeds 7-18 [--loads 4] [--kw '{"target_ms": 300}']``

The keyword arguments go to ``ResponseOptimizer`` (e.g. ``{"limits": {"sim": 16}}`` pins the
limit at the true capacity), so a change can be judged on many seeds, not tuned to one: the
virtual-time runs are exact, but a small change to the limiter's path moves single seeds by
+-0.2 points either way.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
from typing import Any

from benchmarks.overload._model import make_workload, run_strategy, summarize
from benchmarks.overload._vloop import run_virtual

__all__ = ["main", "run_seed"]

_PRIOS = ("good_critical", "good_high", "good_normal", "good_low")


def _run_one(args: tuple[int, float, float, dict[str, object]]) -> dict[str, float]:
    seed, load, duration, kw = args
    res = run_virtual(run_strategy("perflayer", make_workload(load, duration, seed), **kw))
    return summarize(res)


def run_seed(seed: int, duration: float, kw: dict[str, object]) -> dict[str, float]:
    """Return the bar quantities of one seed (fractions; bad = lost + late successes)."""
    return run_seeds([seed], duration, kw, 1)[seed]


def _collect(out: dict[str, float], runs: Any) -> dict[str, float]:
    for load, s in runs:
        out[f"{load:g}x_bound"] = s["bound"]
        if load == 1.0:
            out["1x_worst"] = min(s[c] for c in _PRIOS)
        elif load == 2.0:
            out["2x_all"] = s["good_all"]
            out["2x_crit_high"] = min(s["good_critical"], s["good_high"])
        else:
            out["4x_all"] = s["good_all"]
            out["4x_crit"] = s["good_critical"]
        if load > 1.0:
            out["waste"] = max(out["waste"], s["waste"])
        out["bad"] += s["lost"] + s["late_ok"]
    return out


def run_seeds(
    seeds: list[int],
    duration: float,
    kw: dict[str, object],
    jobs: int,
    loads: tuple[float, ...] = (1.0, 2.0, 4.0),
) -> dict[int, dict[str, float]]:
    """Return run_seed for every seed, with ``jobs`` worker processes (1: in this process)."""
    tasks = [(s, load, duration, kw) for s in seeds for load in loads]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            sums = pool.map(_run_one, tasks, chunksize=1)
    else:
        sums = [_run_one(t) for t in tasks]
    rows: dict[int, dict[str, float]] = {}
    for i, s in enumerate(seeds):
        part = sums[len(loads) * i : len(loads) * (i + 1)]
        rows[s] = _collect({"bad": 0.0, "waste": 0.0}, zip(loads, part, strict=True))
    return rows


_BARS = (
    ("1x_worst", 0.99),
    ("2x_all", 0.49),
    ("2x_crit_high", 0.99),
    ("4x_all", 0.25),
    ("4x_crit", 0.99),
)


def _seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the sweep and print one row per seed plus the means and the bars met."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.overload.sweep", description=__doc__)
    ap.add_argument("--seeds", default="7-18", help="e.g. 7-18 or 7,9,11")
    ap.add_argument("--duration", type=float, default=25.0)
    ap.add_argument("--kw", default="{}", help="ResponseOptimizer keyword arguments as JSON")
    ap.add_argument("--loads", default="1,2,4", help="a subset of 1,2,4 (e.g. 4 to iterate)")
    ap.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes"
    )
    args = ap.parse_args(argv)
    kw = json.loads(args.kw)
    if not isinstance(kw, dict):
        ap.error(f"--kw must be a JSON object, got {args.kw!r}")
    loads = tuple(float(x) for x in args.loads.split(","))
    if not loads or any(x not in (1.0, 2.0, 4.0) for x in loads):
        ap.error(f"--loads must be a subset of 1,2,4, got {args.loads!r}")
    rows = run_seeds(_seeds(args.seeds), args.duration, kw, max(1, args.jobs), loads)
    bars = [(n, bar) for n, bar in _BARS if float(n[0]) in loads]
    names = [n for n, _ in bars]
    print("seed " + " ".join(f"{n:>12s}" for n in names) + "   waste  bad  2x_bound 4x_bound")
    met = 0
    for s, r in rows.items():
        cells = []
        for n, bar in bars:
            ok = r[n] >= bar
            met += ok
            cells.append(f"{100 * r[n]:11.2f}{' ' if ok else '*'}")
        b2, b4 = (100 * r.get(f"{x}x_bound", math.nan) for x in (2, 4))
        bounds = f"{b2:9.2f} {b4:8.2f}"
        print(
            f"{s:4d} " + " ".join(cells) + f"  {100 * r['waste']:5.2f} {int(r['bad']):4d} {bounds}"
        )
    means = " ".join(f"{100 * statistics.mean(r[n] for r in rows.values()):11.2f} " for n in names)
    print(f"mean {means}")
    print(f"bars met {met}/{len(bars) * len(rows)} (* = missed); kw {kw}")
    clean = all(r["waste"] <= 0.10 and r["bad"] == 0 for r in rows.values())
    print(f"waste <= 10% and no lost or late-ok answers on every seed: {'yes' if clean else 'NO'}")
    print(
        "(x_bound: every slot busy from the first arrival to the last deadline, on the seed's"
        " mean work per call)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
