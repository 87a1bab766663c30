"""Run perflayer over many seeds at 1x, 2x and 4x and print each bar per seed, with means.

``python -m benchmarks.overload.sweep --seeds 7-18 [--kw '{"target_ms": 300}']``

The keyword arguments go to ``ResponseOptimizer`` (e.g. ``{"limits": {"sim": 16}}`` pins the
limit at the true capacity), so a change can be judged on many seeds, not tuned to one: the
virtual-time runs are exact, but a small change to the limiter's path moves single seeds by
+-0.2 points either way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from benchmarks.overload._model import make_workload, run_strategy, summarize
from benchmarks.overload._vloop import run_virtual

__all__ = ["main", "run_seed"]

_PRIOS = ("good_critical", "good_high", "good_normal", "good_low")


def run_seed(seed: int, duration: float, kw: dict[str, object]) -> dict[str, float]:
    """Return the bar quantities of one seed (fractions; bad = lost + late successes)."""
    out: dict[str, float] = {"bad": 0.0, "waste": 0.0}
    for load in (1.0, 2.0, 4.0):
        res = run_virtual(run_strategy("perflayer", make_workload(load, duration, seed), **kw))
        s = summarize(res)
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
    args = ap.parse_args(argv)
    kw = json.loads(args.kw)
    if not isinstance(kw, dict):
        ap.error(f"--kw must be a JSON object, got {args.kw!r}")
    rows = {s: run_seed(s, args.duration, kw) for s in _seeds(args.seeds)}
    names = [n for n, _ in _BARS]
    print("seed " + " ".join(f"{n:>12s}" for n in names) + "   waste  bad")
    met = 0
    for s, r in rows.items():
        cells = []
        for n, bar in _BARS:
            ok = r[n] >= bar
            met += ok
            cells.append(f"{100 * r[n]:11.2f}{' ' if ok else '*'}")
        print(f"{s:4d} " + " ".join(cells) + f"  {100 * r['waste']:5.2f} {int(r['bad']):4d}")
    means = " ".join(f"{100 * statistics.mean(r[n] for r in rows.values()):11.2f} " for n in names)
    print(f"mean {means}")
    print(f"bars met {met}/{len(_BARS) * len(rows)} (* = missed); kw {kw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
