"""Analyzer speed: lines per second on examples/sprawl replicated, against pylint duplicate-code.

Usage::

    python -m benchmarks.analyze_speed [--lines 1000000] [--rounds 3] [--jobs 2]
        [--pylint-lines 20000] [--keep DIR]

The sample is copied N times (package ``acme`` -> ``acme_i``, imports rewritten so the import
graph stays real) until the tree holds the requested number of lines. perflayer and pylint
(``--disable=all --enable=duplicate-code``) run alternately, several rounds, in fresh
subprocesses; we report the median and worst wall time and lines/s. pylint is run on a smaller
replica when the full one would take too long, and its rate is extrapolated linearly (its
duplicate-code check is at best linear in the tree size, so the extrapolation flatters pylint).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPRAWL = ROOT / "examples" / "sprawl"
BIN = Path(sys.executable).parent


def sample_lines() -> int:
    return sum(
        len(p.read_text(encoding="utf-8").splitlines())
        for p in SPRAWL.rglob("*.py")
        if "generated" not in p.parts
    )


def replicate(dest: Path, target_lines: int) -> int:
    """Write copies of the sample under ``dest`` until ``target_lines``; return lines written."""
    per_copy = sum(
        len(p.read_text(encoding="utf-8").splitlines()) for p in (SPRAWL / "acme").rglob("*.py")
    )
    copies = max(1, round(target_lines / per_copy))
    sources = [
        (p.relative_to(SPRAWL / "acme"), p.read_text(encoding="utf-8"))
        for p in (SPRAWL / "acme").rglob("*.py")
    ]
    total = 0
    for i in range(copies):
        pkg = f"acme_{i}"
        for rel, text in sources:
            out = dest / pkg / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            body = text.replace("from acme.", f"from {pkg}.").replace(
                "import acme.", f"import {pkg}."
            )
            out.write_text(body, encoding="utf-8")
            total += len(body.splitlines())
    return total


CPU: dict[str, list[float]] = {}


def time_cmd(cmd: list[str], key: str) -> float:
    """Run ``cmd``; return its wall time and record its CPU time (user+sys) under ``key``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(key, []).append(cpu)
    if proc.returncode not in (0, 1, 8, 16, 24, 30):  # pylint ORs message bits into its code
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def perflayer_cmd(tree: Path, jobs: int) -> list[str]:
    return [
        str(BIN / "perflayer"),
        "analyze",
        str(tree),
        "--format",
        "json",
        "--output",
        os.devnull,
        "--jobs",
        str(jobs),
    ]


def pylint_cmd(tree: Path, jobs: int) -> list[str]:
    pkgs = sorted(str(p) for p in tree.iterdir() if p.is_dir())
    return [
        str(BIN / "pylint"),
        "--disable=all",
        "--enable=duplicate-code",
        f"--jobs={jobs}",
        "--score=n",
        *pkgs,
    ]


def summarize(name: str, key: str, lines: int, times: list[float]) -> tuple[float, float]:
    med = statistics.median(times)
    worst = max(times)
    cpu = statistics.median(CPU[key])
    print(
        f"{name:<32} {lines:>9,} lines  wall median {med:7.2f} s  max {worst:7.2f} s  "
        f"{lines / med:>9,.0f} lines/s  CPU {cpu:7.2f} s ({lines / cpu:,.0f} lines/CPU-s)"
    )
    return med, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--small-lines", type=int, default=77_000)
    ap.add_argument("--pylint-lines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None, help="keep the replicas in this folder")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="perflayer-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
        f"shared with other jobs; jobs={args.jobs}; sample = {sample_lines()} lines"
    )
    try:
        trees = {}
        for label, n in (
            ("small", args.small_lines),
            ("large", args.lines),
            ("pylint", args.pylint_lines),
        ):
            tree = base / label
            if tree.exists():
                shutil.rmtree(tree)
            tree.mkdir()
            trees[label] = (tree, replicate(tree, n))
        results: dict[str, list[float]] = {
            "p-small": [],
            "p-large": [],
            "pylint": [],
            "p-pylint": [],
        }
        for _ in range(args.rounds):
            # Interleaved: peer and ours alternate so load on the shared machine hits both.
            for key, cmd in (
                ("pylint", pylint_cmd(trees["pylint"][0], args.jobs)),
                ("p-pylint", perflayer_cmd(trees["pylint"][0], args.jobs)),
                ("p-small", perflayer_cmd(trees["small"][0], args.jobs)),
                ("p-large", perflayer_cmd(trees["large"][0], args.jobs)),
            ):
                results[key].append(time_cmd(cmd, key))
            print(
                f"round {len(results['pylint'])}: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()),
                flush=True,
            )
        print()
        s_med, _ = summarize(
            "perflayer analyze (small)", "p-small", trees["small"][1], results["p-small"]
        )
        l_med, l_max = summarize(
            "perflayer analyze (large)", "p-large", trees["large"][1], results["p-large"]
        )
        pp_med, _ = summarize(
            "perflayer analyze (pylint-size)", "p-pylint", trees["pylint"][1], results["p-pylint"]
        )
        py_med, _ = summarize(
            "pylint duplicate-code", "pylint", trees["pylint"][1], results["pylint"]
        )
        print()
        print(
            f"ratio on the same {trees['pylint'][1]:,}-line tree: pylint / perflayer = "
            f"{py_med / pp_med:.1f}x (median)"
        )
        rate = trees["pylint"][1] / py_med
        print(
            f"pylint extrapolated to {trees['large'][1]:,} lines: >= "
            f"{trees['large'][1] / rate:,.0f} s (linear; its similarity pass is worse)"
        )
        cpu_large = statistics.median(CPU["p-large"])
        cpu_small = statistics.median(CPU["p-small"])
        print(
            f"CPU-bound estimate on 2 idle cores: small {cpu_small / 2:.2f} s, large "
            f"{cpu_large / 2:.2f} s (CPU time / 2; wall times above include other jobs' load)"
        )
        print(
            f"bars: {trees['small'][1]:,} lines in {s_med:.2f} s (<= 2 s scaled to 77k: "
            f"{s_med * 77_000 / trees['small'][1]:.2f} s); {trees['large'][1]:,} lines in "
            f"{l_med:.2f} s median, {l_max:.2f} s max (<= 30 s)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
