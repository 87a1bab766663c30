"""Hit-ratio replay with deletes and expiry: the default policy when the cache removes keys.

Run ``python -m benchmarks.hitratio_deletes`` from the repository root. Every trace of
``benchmarks.hitratio`` (../shared/traces and ``benchmarks.traces``' synthetic ones) is replayed
at its sizes of at most 2,048 entries (where ``policy="auto"`` runs its selection) as a
cache-aside memo at the Policy level, as perflayer.Cache drives a policy: a resident key is a
hit (``hit(k)``), any other a miss (``miss(k)``, then ``add(k, 1)``), and a removal is
``remove(k)``. The removals come from one of these models:

- ``none``: access-only, as benchmarks/hitratio.py (a check that the prototype is ``auto``).
- ``inv:Q``: invalidation. After every access, with probability Q, the key is deleted (a
  write-through application that invalidates on update). The coins come from one seeded RNG per
  point, drawn once per access, so every policy sees the same deletes (the key is resident in
  every policy right after its access).
- ``ttl:M``: expiry. A key expires ``M x capacity`` accesses after its insert (the clock is the
  access count; a hit does not renew it, as a memo's ``set(k, v, ex=...)`` on a miss). An
  expired key is removed lazily at its next access, which is then a miss (``remove``, ``miss``,
  ``add``, as ``Cache.get`` of an expired key and the memo's ``set``), and by a sweep every 16
  accesses of at most 16 due keys, oldest deadline first (Cache's amortized active expiry:
  at most 16 per pass).

Columns: ``tinylfu`` (``make_policy("tinylfu", c, None)``: the C W-TinyLFU where built),
``auto`` (``auto_class()(c, None)``: ``CAutoPolicy``, the C per-access half, where built),
``fix`` (benchmarks/prototypes/auto_removes.py ``RemovesPolicy``: the pure-Python
``AutoPolicy`` per-access half whose removals reach the twin and the simulations; its engines
and simulations are the C classes where built), ``LRU`` (``make_policy("lru", ...)``), ``LIRS``
and ``ARC`` (the engines of ``_policy_adaptive`` driven alone, C where built). Research columns,
run only when named in ``--policies``: ``auto-py`` (the pure-Python ``AutoPolicy``: the same
decisions as ``auto``), ``fix-ghost`` (``fix`` keeping a ghost of a removed key in Python LIRS and
ARC simulations), ``tinylfu-keep`` (the prototype's ``KeepRegionTinyLFU``, pure Python: a removed
protected key returns to protected when added again) and ``fix-keep`` (``fix`` on it). Hit ratio = hits / accesses, in %, cold misses and misses after a removal
included. For ``auto`` and ``fix`` the tables also give switches / re-syncs (none for ``auto`` since session 12: an adopted engine is its simulation) / locked epochs.

Options: ``--models`` (comma-separated, default ``inv:0.01,inv:0.05,inv:0.2,ttl:4,ttl:16``),
``--policies``, ``--only NAME`` (repeatable), ``--max-accesses N`` (replay each trace's first N
accesses; default 200,000, which cuts lirs-loop's 505,500 only), ``--sizes`` (``all`` or the
index list of a trace's sizes, e.g. ``0,2``), ``--seed``, ``--json PATH`` (one line per point),
``--markdown PATH``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from benchmarks.hitratio import machine
from benchmarks.traces import real_traces, synthetic_traces
from perflayer.cache import _policy_adaptive as _ad
from perflayer.cache._policy import make_policy
from perflayer.cache._policy_auto import FULL, AutoPolicy, auto_class

__all__ = ["COLUMNS", "Model", "main", "replay"]

_SWEEP_EVERY = 16  # accesses between two active-expiry sweeps,
_SWEEP_BUDGET = 16  # each removing at most this many due keys (Cache._active_expire's budget)
DEFAULT_MODELS = "inv:0.01,inv:0.05,inv:0.2,ttl:4,ttl:16"


class EnginePolicy:
    """A LIRS or ARC engine of ``_policy_adaptive`` driven as a Policy (reads on its buffer)."""

    def __init__(self, name: str, c: int) -> None:
        self.engine = _ad._engine_class(name)(c)
        self.hit = self.engine._buf.append
        self.miss = self.engine._buf.append  # a miss's key is not resident: the drain skips it
        self.add = self.engine.add
        self.remove = self.engine.remove


def _fix(c: int) -> Any:
    from benchmarks.prototypes.auto_removes import RemovesPolicy

    return RemovesPolicy(c, None)


def _fix_ghost(c: int) -> Any:
    from benchmarks.prototypes.auto_removes import RemovesPolicy

    return RemovesPolicy(c, None, ghost=True)


def _fix_keep(c: int) -> Any:
    from benchmarks.prototypes.auto_removes import RemovesPolicy

    return RemovesPolicy(c, None, keep=True)


def _tinylfu_keep(c: int) -> Any:
    from benchmarks.prototypes.auto_removes import KeepRegionTinyLFU

    return KeepRegionTinyLFU(c, None)


COLUMNS: dict[str, Callable[[int], Any]] = {
    "tinylfu": lambda c: make_policy("tinylfu", c, None),
    "auto": lambda c: auto_class()(c, None),
    "fix": _fix,
    "LRU": lambda c: make_policy("lru", c, None),
    "LIRS": lambda c: EnginePolicy("lirs", c),
    "ARC": lambda c: EnginePolicy("arc", c),
    # research columns
    "auto-py": lambda c: AutoPolicy(c, None),
    "fix-ghost": _fix_ghost,
    "tinylfu-keep": _tinylfu_keep,
    "fix-keep": _fix_keep,
}
DEFAULT_COLUMNS = "tinylfu,auto,fix,LRU,LIRS,ARC"
_SELECTING = ("auto", "fix", "auto-py", "fix-ghost", "fix-keep")


class Model:
    """A removal model: ``none``, ``inv:Q`` (delete after an access with probability Q), or
    ``ttl:M`` (expire M x capacity accesses after the insert)."""

    def __init__(self, spec: str) -> None:
        kind, _, arg = spec.partition(":")
        if kind not in ("none", "inv", "ttl") or (kind != "none" and not arg):
            raise ValueError(f"unknown removal model {spec!r}; expected none, inv:Q or ttl:M")
        self.spec = spec
        self.kind = kind
        self.arg = float(arg) if arg else 0.0


def replay(
    make: Callable[[int], Any], keys: Sequence[Hashable], c: int, model: Model, seed: int
) -> tuple[float, Any, int]:
    """Replay ``keys`` on ``make(c)`` under ``model``; return (hit %, the policy, removals)."""
    policy = make(c)
    hit, miss, add, remove = policy.hit, policy.miss, policy.add, policy.remove
    res: dict[Hashable, int] = {}  # resident key -> its deadline (0: none)
    hits = removals = 0
    kind = model.kind
    q = model.arg if kind == "inv" else 0.0
    ttl = max(1, round(model.arg * c)) if kind == "ttl" else 0
    coin = random.Random(seed).random
    due: deque[tuple[int, Hashable]] = deque()  # (deadline, key) in insert order
    for t, k in enumerate(keys):
        d = res.get(k)
        if d is not None and ttl and d <= t:
            # expired: removed lazily, then a miss
            remove(k)
            del res[k]
            removals += 1
            d = None
        if d is not None:
            hit(k)
            hits += 1
        else:
            miss(k)
            victims = add(k, 1)
            for v in victims:
                del res[v]
            res[k] = t + ttl if ttl else 0
            if len(res) > c or k in victims:
                raise AssertionError(f"policy broke its bound at key {k!r}")
            if ttl:
                due.append((t + ttl, k))
        if q and coin() < q:
            remove(k)
            del res[k]
            removals += 1
        elif ttl and t % _SWEEP_EVERY == 0:
            done = 0
            while due and due[0][0] <= t and done < _SWEEP_BUDGET:
                when, key = due.popleft()
                if res.get(key) == when:  # still resident from that insert
                    remove(key)
                    del res[key]
                    removals += 1
                    done += 1
    return 100.0 * hits / len(keys), policy, removals


def _points(args: argparse.Namespace) -> list[tuple[str, list[int], int]]:
    traces = [] if args.no_shared else real_traces()
    if not args.no_synthetic:
        traces += synthetic_traces()
    if args.only:
        traces = [t for t in traces if t.name in args.only]
    out = []
    for t in traces:
        sizes = [s for s in t.sizes if s <= FULL]
        if args.sizes != "all":
            idx = [int(i) for i in args.sizes.split(",")]
            sizes = [s for i, s in enumerate(sizes) if i in idx]
        keys = t.keys[: args.max_accesses] if args.max_accesses else t.keys
        out.extend((t.name, keys, s) for s in sizes)
    return out


def _stats(policy: Any) -> str:
    return f"{policy.switches}/{getattr(policy, 'syncs', 0)}/{policy.locked}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the replay and print one table per model."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hitratio_deletes")
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"default {DEFAULT_MODELS}")
    ap.add_argument("--policies", default=DEFAULT_COLUMNS, help=f"default {DEFAULT_COLUMNS}")
    ap.add_argument("--only", action="append", default=[], help="replay only this trace")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic traces")
    ap.add_argument("--no-shared", action="store_true", help="skip the traces of ../shared/traces")
    ap.add_argument("--max-accesses", type=int, default=200_000, help="0: whole traces")
    ap.add_argument("--sizes", default="all", help="all, or indexes into a trace's sizes <= 2,048")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", help="append one JSON line per point to this file")
    ap.add_argument("--markdown", help="write the tables to this file")
    args = ap.parse_args(argv)
    models = [Model(s) for s in args.models.split(",") if s]
    names = [n for n in args.policies.split(",") if n]
    for n in names:
        if n not in COLUMNS:
            raise SystemExit(f"unknown column {n!r}; expected one of {', '.join(COLUMNS)}")
    points = _points(args)
    t0 = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {m.spec: [] for m in models}
    for m in models:
        for name, keys, c in points:
            row: dict[str, Any] = {"model": m.spec, "trace": name, "size": c}
            for col in names:
                hr, policy, removals = replay(COLUMNS[col], keys, c, m, args.seed)
                row[col] = round(hr, 4)
                row["removals"] = removals  # the last column's (the same for inv:Q)
                if col in _SELECTING:
                    row[col + ":s"] = _stats(policy)
            rows[m.spec].append(row)
            print(
                f"{m.spec:9} {name:20} {c:>5} "
                + " ".join(f"{n}={row[n]:.2f}" for n in names)
                + "".join(f" {n}:{row[n + ':s']}" for n in names if n in _SELECTING),
                file=sys.stderr,
                flush=True,
            )
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
    text = render(rows, names)
    print(text)
    print(f"replayed in {time.perf_counter() - t0:.0f} s on {machine()}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


def render(rows: dict[str, list[dict[str, Any]]], names: Sequence[str]) -> str:
    """Return one Markdown table per model and a summary of fix - auto and auto/fix - tinylfu."""
    lines: list[str] = []
    sel = [n for n in names if n in _SELECTING]
    for spec, rs in rows.items():
        lines.append(f"### {spec}")
        lines.append("")
        head = "| trace | size | " + " | ".join(names)
        head += "".join(f" | {n} sw/sync/lock" for n in sel)
        lines.append(head + " | removals |")
        lines.append("|---|---:|" + "---:|" * len(names) + "---:|" * len(sel) + "---:|")
        for r in rs:
            top = max(r[n] for n in names)
            cells = [f"**{r[n]:.2f}**" if r[n] == top else f"{r[n]:.2f}" for n in names]
            cells += [r[n + ":s"] for n in sel]
            lines.append(
                f"| {r['trace']} | {r['size']} | " + " | ".join(cells) + f" | {r['removals']} |"
            )
        lines.append("")
    lines.append("### Summary (points: mean / min / max difference)")
    lines.append("")
    pairs = [(a, b) for a, b in (("fix", "auto"), ("auto", "tinylfu"), ("fix", "tinylfu"))]
    pairs += [(a, "tinylfu") for a in ("LRU", "LIRS", "ARC", "fix-ghost") if a in names]
    pairs += [("fix-ghost", "fix"), ("tinylfu-keep", "tinylfu"), ("fix-keep", "fix")]
    pairs += [("fix-keep", "tinylfu-keep"), ("fix-keep", "auto")]
    pairs = [(a, b) for a, b in pairs if a in names and b in names]
    lines.append("| model | points | " + " | ".join(f"{a} - {b}" for a, b in pairs) + " |")
    lines.append("|---|---:|" + "---|" * len(pairs))
    for spec, rs in rows.items():
        cells = []
        for a, b in pairs:
            d = [r[a] - r[b] for r in rs]
            if d:
                cells.append(f"{statistics.fmean(d):+.2f} / {min(d):+.2f} / {max(d):+.2f}")
            else:
                cells.append("-")
        lines.append(f"| {spec} | {len(rs)} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
