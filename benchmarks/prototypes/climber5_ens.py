"""Judge hit-ratio candidates by an ensemble of runs (docs/research-climber.md, Session 8).

``python -m benchmarks.prototypes.climber5_ens --baseline LOG NAME=RUN[+RUN...] ...``

Each RUN is ``FILE#K``: the K-th ``== SPEC`` block (0-based) of a saved hitratio_sweep output
(the default, non-``--table`` form). A NAME's runs are one policy at several perturbations (e.g.
``_SHADOW_EPOCH`` 256, 255, 257); its value at a point is the *median* over its runs. Printed:
per NAME the count of points within 1 point of the best peer (LRU, LFU, theine, ARC, LIRS,
S3FIFO of LOG) and the mean gap to OPT, both of the per-point median and of every run; then, for
each NAME after the first (the reference), every point where the medians differ by 0.3 or more
or one of them crosses the 1-point line, with the per-run distances and the within-1 count over
the runs (a point within 1 in 3 of 3 runs is a stable hit, 0 of 3 a stable miss).
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Sequence

from benchmarks.prototypes.hitratio_sweep import PEERS, baseline

Point = tuple[str, int]


def blocks(path: str) -> list[tuple[str, dict[Point, tuple[float, bool]]]]:
    """Return the (spec, {point: (hit ratio, within 1)}) blocks of a hitratio_sweep output file.

    "Within 1" is the sweep's own test on the unrounded hit ratio (no ``MISS`` on the line): a
    point printed at ``d= -1.00`` may be either.
    """
    out: list[tuple[str, dict[Point, tuple[float, bool]]]] = []
    with open(path) as f:
        for line in f:
            if line.startswith("== "):
                out.append((line[3:].split(": within1")[0], {}))
                continue
            m = re.match(r"^\s+(\S+)\s+(\d+)\s+([\d.]+) h3=", line)
            if m and out:
                hit = (float(m.group(3)), not line.rstrip().endswith("MISS"))
                out[-1][1][(m.group(1), int(m.group(2)))] = hit
    return out


def run(ref: str) -> dict[Point, tuple[float, bool]]:
    """Read one ``FILE#K`` run."""
    path, _, k = ref.rpartition("#")
    return blocks(path)[int(k)][1]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ensemble comparison (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.prototypes.climber5_ens")
    ap.add_argument("--baseline", required=True)
    ap.add_argument(
        "--show", type=float, default=0.3, help="list points whose medians differ this much"
    )
    ap.add_argument("ensembles", nargs="+", help="NAME=FILE#K+FILE#K+...")
    a = ap.parse_args(argv)
    base = baseline(a.baseline)
    ens: dict[str, list[dict[Point, tuple[float, bool]]]] = {}
    for e in a.ensembles:
        name, _, runs = e.partition("=")
        ens[name] = [run(r) for r in runs.split("+")]
    pts = [p for p in base if all(p in r for rs in ens.values() for r in rs)]
    best = {p: max(base[p][q] for q in PEERS) for p in pts}
    # the median run of a point (an odd number of runs: one of them), with its own within-1 flag
    med = {n: {p: sorted(r[p] for r in rs)[len(rs) // 2] for p in pts} for n, rs in ens.items()}
    print(f"{len(pts)} points")
    for n, rs in ens.items():
        w = sum(med[n][p][1] for p in pts)
        g = statistics.fmean(base[p]["OPT"] - med[n][p][0] for p in pts)
        per = " ".join(
            f"{sum(r[p][1] for p in pts)}/{statistics.fmean(base[p]['OPT'] - r[p][0] for p in pts):.3f}"
            for r in rs
        )
        print(f"{n:10} median: within 1 {w:3d}  gap {g:.3f}   runs: {per}")
    names = list(ens)
    ref = names[0]
    for n in names[1:]:
        print(f"-- {n} vs {ref} (distance to the best peer per run; [k/r] runs within 1)")
        worst = min(pts, key=lambda p: med[n][p][0] - med[ref][p][0])
        for p in pts:
            dr = med[ref][p][0] - best[p]
            dn = med[n][p][0] - best[p]
            if abs(dn - dr) < a.show and med[ref][p][1] == med[n][p][1]:
                continue
            cells = []
            for m in (ref, n):
                ds = [r[p][0] - best[p] for r in ens[m]]
                k = sum(r[p][1] for r in ens[m])
                cells.append(" ".join(f"{d:+6.2f}" for d in ds) + f" [{k}/{len(ds)}]")
            print(
                f"  {p[0] + '@' + str(p[1]):30} med {dr:+6.2f} -> {dn:+6.2f} ({dn - dr:+5.2f})"
                f"  {ref}: {cells[0]}  {n}: {cells[1]}"
            )
        change = med[n][worst][0] - med[ref][worst][0]
        print(f"  worst median change: {worst[0]}@{worst[1]} {change:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
