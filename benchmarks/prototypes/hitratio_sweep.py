"""Replay research columns on a subset of hit-ratio points; the peers come from a baseline log.

``python -m benchmarks.prototypes.hitratio_sweep --baseline LOG [--offset N] [--points P] SPEC...``

LOG is the stderr of one ``python -m benchmarks.hitratio`` run (its ``NAME SIZE col=value ...``
lines; the columns LRU, LFU, theine, ARC, LIRS, S3FIFO and OPT are read, and tinylfu-shadow as the
reference). ``--points`` is ``all`` or ``T@S,T@S,...``. A SPEC is one column:

- ``fixed:W[,P_NAME=V...]``: TinyLFUPolicy with a fixed window share W (climbing off);
- ``h3[:K=V,...]``: H3Policy with shadow_climber.CFG overrides;
- ``h4[:K=V,...]`` / ``h5[:K=V,...]``: H4Policy / H5Policy (shadow_climber2; CFG or CFG2 keys);
- ``adaptive``: AdaptivePolicy;
- ``py:MODULE.FACTORY[,K=V...]``: a prototype from any module: a policy class is built as
  ``FACTORY(c, None, **overrides)``, a function called as ``FACTORY(c, **overrides)``; a ``Policy``
  is wrapped in ``PolicySim``.

``P_NAME=V`` in any SPEC sets ``perflayer.cache._policy._NAME`` (e.g. ``P_ADMIT_MARGIN=0``; a name the
module lacks is an error) in
the replaying process. Every (SPEC, point) replays in a fresh process, so settings never leak.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Sequence
from multiprocessing import Pool

PEERS = ("LRU", "LFU", "theine", "ARC", "LIRS", "S3FIFO")


def baseline(path: str) -> dict[tuple[str, int], dict[str, float]]:
    """Read the per-point lines of a hitratio run's log."""
    rows: dict[tuple[str, int], dict[str, float]] = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\S+)\s+(\d+)\s+(\w.*=.*)$", line)
            if not m or "|" in line:
                continue
            kv = dict(re.findall(r"([\w-]+)=\s*([\d.]+)", m.group(3)))
            rows[(m.group(1), int(m.group(2)))] = {k: float(v) for k, v in kv.items()}
    return rows


def _set(over: dict[str, float], kv: str) -> None:
    import perflayer.cache._policy as pol

    k, v = kv.split("=")
    val: float
    if v in ("True", "False"):  # a flag, e.g. ``ghost=False``
        val = v == "True"
    else:
        val = float(v) if "." in v else int(v)
    if k.startswith("P_"):
        # why: a misspelt constant (``P__NAME``) would set a new, unused attribute and silently
        # replay the default (session 8 lost a run to it)
        if not hasattr(pol, k[1:]):
            # not SystemExit: raised in a pool worker, that would hang the pool
            raise ValueError(f"{k}: perflayer.cache._policy has no constant {k[1:]!r}")
        setattr(pol, k[1:], val)
    else:
        over[k] = val


def _check_constants(spec: str) -> None:
    """Exit with a clear message if SPEC sets a ``P_NAME`` the policy module does not have."""
    import perflayer.cache._policy as pol

    for kv in re.split(r"[,:]", spec):
        k, eq, _ = kv.partition("=")
        if eq and k.startswith("P_") and not hasattr(pol, k[1:]):
            raise SystemExit(f"{spec}: perflayer.cache._policy has no constant {k[1:]!r}")


def make(spec: str, c: int) -> object:
    """Build the simulator of one SPEC for a cache of ``c`` entries."""
    from benchmarks.hitratio import PolicySim
    from perflayer.cache._policy import TinyLFUPolicy

    kind, _, rest = spec.partition(":")
    over: dict[str, float] = {}
    if kind == "fixed":
        w, *ps = rest.split(",")
        for kv in ps:
            _set(over, kv)
        return PolicySim(TinyLFUPolicy(c, None, window=float(w), adaptive=False), c)
    if kind == "py":
        # py:MODULE.FACTORY[,K=V...]: FACTORY(c, **over) returns the policy (wrapped in PolicySim when
        # it has no replay method of its own); a helper's prototype plugs in without editing this file.
        import importlib

        target, *ps = rest.split(",")
        mod, _, fn = target.rpartition(".")
        for kv in ps:
            _set(over, kv)
        factory = getattr(importlib.import_module(mod), fn)
        # a Policy class takes (max_entries, max_weight); a function takes the entry count only
        pol = factory(c, None, **over) if isinstance(factory, type) else factory(c, **over)
        return pol if hasattr(pol, "access") else PolicySim(pol, c)
    if kind == "adaptive":
        from perflayer.cache._policy_adaptive import AdaptivePolicy

        return PolicySim(AdaptivePolicy(c, None), c)
    for kv in filter(None, rest.split(",")):
        _set(over, kv)
    import benchmarks.prototypes.shadow_climber as m1
    import benchmarks.prototypes.shadow_climber2 as m2

    for k, v in over.items():
        (m1.CFG if k in m1.CFG else m2.CFG2)[k] = v
    if kind == "h3":
        return PolicySim(m1.H3Policy(c, None), c)
    if kind == "h4":
        return m2.make_policy(c)
    if kind == "h5":
        return m2.make_h5(c)
    raise SystemExit(f"unknown spec {spec!r}")


def _job(args: tuple[str, int, str, int]) -> tuple[str, str, int, float]:
    from benchmarks.hitratio import replay
    from benchmarks.traces import real_traces, synthetic_traces

    spec, offset, name, size = args
    traces = ([] if offset else real_traces()) + synthetic_traces(offset)
    keys = next(t.keys for t in traces if t.name == name)
    return spec, name, size, replay(lambda c: make(spec, c), keys, size)  # type: ignore[arg-type,return-value]


def _table(
    specs: Sequence[str],
    pts: list[tuple[str, int]],
    base: dict[tuple[str, int], dict[str, float]],
    res: dict[tuple[str, str, int], float],
) -> None:
    """Print the candidates' distance to the best peer, a point per row, a SPEC per column."""
    for i, spec in enumerate(specs):
        print(f"c{i} = {spec}")
    print(
        f"{'point':30} {'best':>14} {'ref':>6} "
        + " ".join(f"{'c' + str(i):>6}" for i in range(len(specs)))
    )
    within = [0] * len(specs)
    gaps: list[list[float]] = [[] for _ in specs]
    for n, s in pts:
        b = base[(n, s)]
        bp = max(PEERS, key=lambda p: b[p])
        ref = b.get("tinylfu-shadow", float("nan"))
        cells = []
        for i, spec in enumerate(specs):
            d = res[(spec, n, s)] - b[bp]
            within[i] += d >= -1.0
            gaps[i].append(b["OPT"] - res[(spec, n, s)])
            cells.append(f"{d:+6.2f}" + ("*" if d < -1 else " "))
        print(f"{n + '@' + str(s):30} {b[bp]:6.2f} {bp:>7} {ref - b[bp]:+6.2f} " + "".join(cells))
    print(f"{'within 1':52}" + "".join(f"{w:>6}  " for w in within))
    print(f"{'gap to OPT':52}" + "".join(f"{statistics.fmean(g):6.3f} " for g in gaps))


def main(argv: Sequence[str] | None = None) -> int:
    """Replay every SPEC at every chosen point; print the count within 1 point and the gap."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.prototypes.hitratio_sweep")
    ap.add_argument("--baseline", required=True, help="stderr log of a benchmarks.hitratio run")
    ap.add_argument("--offset", type=int, default=0, help="--seed-offset of that run")
    ap.add_argument("--points", default="all", help="all, or NAME@SIZE,NAME@SIZE,...")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--table", action="store_true", help="one row per point, one column per SPEC")
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args(argv)
    base = baseline(a.baseline)
    pts = list(base)
    if a.points != "all":
        want = set(a.points.split(","))
        pts = [p for p in pts if f"{p[0]}@{p[1]}" in want]
    for sp in a.specs:  # fail before any replay, not in a worker
        _check_constants(sp)
    work = [(sp, a.offset, n, s) for sp in a.specs for n, s in pts]
    res: dict[tuple[str, str, int], float] = {}
    with Pool(a.jobs, maxtasksperchild=1) as pool:
        for spec, n, s, v in pool.imap_unordered(_job, work):
            res[(spec, n, s)] = v
    if a.table:
        _table(a.specs, pts, base, res)
        return 0
    for spec in a.specs:
        within = 0
        gaps = []
        lines = []
        for n, s in pts:
            b = base[(n, s)]
            bp = max(PEERS, key=lambda p: b[p])
            v = res[(spec, n, s)]
            d = v - b[bp]
            within += d >= -1.0
            gaps.append(b["OPT"] - v)
            ref = b.get("tinylfu-shadow", float("nan"))
            miss = "  MISS" if d < -1 else ""
            lines.append(
                f"  {n:24}{s:>6} {v:6.2f} h3={ref:6.2f} d={d:+6.2f} dh3={v - ref:+6.2f}"
                f" best={b[bp]:6.2f}({bp}){miss}"
            )
        print(f"== {spec}: within1 {within}/{len(pts)}  gap {statistics.fmean(gaps):.3f}")
        print("\n".join(lines))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
