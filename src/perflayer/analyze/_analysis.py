"""The global half of the analysis: copies across files, consumers, canonicals, overlap, plan."""

from __future__ import annotations

import bisect
import gc
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping

from perflayer.analyze._canonical import PERFLAYER, map_api
from perflayer.analyze._detectors import detectors
from perflayer.analyze._extract import FileResult
from perflayer.analyze._model import (
    CATEGORIES,
    Consumer,
    Evidence,
    Finding,
    Overlap,
    Phase,
    Plan,
    Report,
)
from perflayer.analyze._scan import scan
from perflayer.errors import AnalyzeError, ConfigError

__all__ = ["analyze", "load_baseline", "parse_canonical", "write_baseline"]

_TITLES = {
    "cache": "Cache consolidation",
    "memory": "Memory management consolidation",
    "response": "Response handling unification",
    "monitoring": "Monitoring consolidation",
}


def parse_canonical(specs: list[str] | None) -> dict[str, str]:
    """Parse ``CATEGORY=path.py:Symbol`` (or ``CATEGORY=auto``, ``auto``) options."""
    out: dict[str, str] = {}
    for spec in specs or []:
        if spec == "auto":
            for c in CATEGORIES:
                out[c] = "auto"
            continue
        cat, sep, target = spec.partition("=")
        cat = cat.strip()
        target = target.strip()
        known = {d.category for d in detectors()}
        if not sep or not cat or not target:
            raise ConfigError(f"--canonical {spec!r}: expected CATEGORY=path.py:Symbol or =auto")
        if cat not in known:
            names = ", ".join(sorted(known))
            raise ConfigError(f"--canonical {spec!r}: unknown category {cat!r} (one of {names})")
        if target not in ("auto", "perflayer") and (
            ":" not in target or not target.split(":", 1)[0].endswith(".py")
        ):
            raise ConfigError(f"--canonical {spec!r}: target must be path.py:Symbol or auto")
        out[cat] = target
    return out


def load_baseline(path: str) -> set[str]:
    """Read the fingerprints a baseline file accepted."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise AnalyzeError(f"baseline {path!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise AnalyzeError(f"baseline {path!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("accepted"), list):
        raise AnalyzeError(f"baseline {path!r} has no 'accepted' list")
    return {str(x) for x in data["accepted"]}


def write_baseline(report: Report, path: str) -> None:
    """Record every current duplicate as accepted in ``path``."""
    data = {
        "tool": "perflayer analyze",
        "version": 1,
        "accepted": sorted(f.fingerprint for f in report.duplicates),
    }
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise AnalyzeError(f"cannot write baseline {path!r}: {exc.strerror or exc}") from None


# ----------------------------------------------------------------------------------- copies


def _copies(results: list[FileResult]) -> None:
    """Flag functions copied into several files (same normalized text) that show a signal."""
    groups: dict[str, list[tuple[FileResult, object]]] = defaultdict(list)
    for r in results:
        for f in r.findings:
            if f.kind in ("function", "method"):
                groups[f.body_hash].append((r, f))
        for c in r.copies:
            groups[c.body_hash].append((r, c))
    for items in groups.values():
        files = {r.path for r, _ in items}
        if len(files) < 2:
            continue
        flagged = [x for _, x in items if isinstance(x, Finding)]
        category = flagged[0].category if flagged else None
        for r, x in items:
            if isinstance(x, Finding):
                continue
            v = x.verdict  # type: ignore[attr-defined]
            others = sorted(files - {r.path})
            ev = Evidence(
                "copy",
                f"identical copy in {len(others)} other file(s): " + ", ".join(others[:3]),
                x.start,  # type: ignore[attr-defined]
                2.0,
            )
            r.findings.append(
                Finding(
                    category=category or v.category,
                    path=r.path,
                    symbol=x.symbol,  # type: ignore[attr-defined]
                    kind=x.kind,  # type: ignore[attr-defined]
                    start_line=x.start,  # type: ignore[attr-defined]
                    end_line=x.end,  # type: ignore[attr-defined]
                    confidence=round(1.0 - math.exp(-(v.score + 2.0) / 4.0), 3),
                    evidence=[*v.evidence, ev],
                    capabilities=list(v.capabilities),
                    body_hash=x.body_hash,  # type: ignore[attr-defined]
                    shape=x.shape,  # type: ignore[attr-defined]
                )
            )


# -------------------------------------------------------------------------------- consumers


def _module_index(results: list[FileResult]) -> dict[str, list[FileResult]]:
    index: dict[str, list[FileResult]] = defaultdict(list)
    for r in results:
        parts = r.module.split(".") if r.module else []
        for i in range(len(parts)):
            index[".".join(parts[i:])].append(r)
    return index


def _resolve(
    index: dict[str, list[FileResult]], module: str, name: str, depth: int = 0
) -> tuple[FileResult, str] | None:
    cands = index.get(module)
    if not cands:
        return None
    # Prefer the shortest (most specific) match when suffixes collide.
    target = min(cands, key=lambda r: len(r.module))
    if name in target.defined or depth >= 3:
        return target, name
    for mod, imported, alias, _ in target.imports:
        if imported is not None and alias == name:
            got = _resolve(index, mod, imported, depth + 1)
            if got is not None:
                return got
    return target, name


def _consumers(results: list[FileResult]) -> None:
    index = _module_index(results)
    by_symbol: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for r in results:
        for f in r.findings:
            if f.kind in ("class", "function"):
                by_symbol[(r.path, f.symbol)].append(f)
    if not by_symbol:
        return
    test_paths = {r.path for r in results if r.is_test}
    for r in results:
        seen: set[tuple[str, str, int]] = set()
        for mod, name, line, kind in r.refs:
            got = _resolve(index, mod, name)
            if got is None:
                continue
            target, real = got
            found = by_symbol.get((target.path, real))
            if not found:
                continue
            key = (target.path, real, line)
            if key in seen:
                continue
            seen.add(key)
            ckind = "test" if r.path in test_paths else kind
            for f in found:
                f.consumers.append(Consumer(r.path, line, ckind))
    for r in results:
        for f in r.findings:
            f.consumers.sort(key=lambda c: (c.path, c.line))
            f.tested = any(c.kind == "test" for c in f.consumers)


# ------------------------------------------------------------------------ canonical, overlap


def _cosine(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def _similarity(a: Finding, b: Finding) -> float:
    if a.body_hash and a.body_hash == b.body_hash:
        return 1.0
    shape = _cosine(a.shape, b.shape)
    if a.methods and b.methods:
        ma, mb = set(a.methods), set(b.methods)
        names = len(ma & mb) / len(ma | mb)
        return round(0.7 * shape + 0.3 * names, 3)
    # Different sizes cannot be the same structure: scale by the size ratio.
    sa, sb = sum(a.shape.values()), sum(b.shape.values())
    ratio = min(sa, sb) / max(sa, sb) if sa and sb else 0.0
    return round(shape * (0.5 + 0.5 * ratio), 3)


def _nearest(items: list[Finding]) -> dict[int, tuple[float, Finding | None]]:
    out: dict[int, tuple[float, Finding | None]] = {}
    by_hash: dict[str, list[Finding]] = defaultdict(list)
    for f in items:
        by_hash[f.body_hash].append(f)
    reps = sorted((v[0] for v in by_hash.values()), key=lambda g: g.lines)
    sizes = [g.lines for g in reps]
    # Pairwise among distinct bodies while few; beyond that only the 60 nearest in size, so a
    # big tree stays O(n log n) instead of O(n^2).
    window = reps if len(reps) <= 400 else None
    for f in items:
        best: tuple[float, Finding | None] = (0.0, None)
        twins = [g for g in by_hash[f.body_hash] if g is not f and g.path != f.path]
        if twins:
            best = (1.0, twins[0])
        else:
            pool = window
            if pool is None:
                i = bisect.bisect_left(sizes, f.lines)
                pool = reps[max(0, i - 30) : i + 30]
            for g in pool:
                if g is f or (g.path == f.path and g.symbol == f.symbol):
                    continue
                s = _similarity(f, g)
                if s > best[0]:
                    best = (s, g)
        out[id(f)] = best
    return out


def _pick_auto(items: list[Finding]) -> Finding:
    def rank(f: Finding) -> tuple[int, int, int]:
        users = len({c.path for c in f.consumers if c.kind != "test" and c.path != f.path})
        return (users, len(f.capabilities), f.lines)

    whole = [f for f in items if f.kind != "region"] or items
    return max(whole, key=rank)


def _assign(findings: list[Finding], canon: dict[str, str]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    by_cat: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_cat[f.category].append(f)
    for cat, items in by_cat.items():
        spec = canon.get(cat, "perflayer")
        keep: Finding | None = None
        if spec == "auto":
            keep = _pick_auto(items)
        elif spec != "perflayer":
            path, _, symbol = spec.partition(":")
            path = path.replace(os.sep, "/").lstrip("./") if path.startswith("./") else path
            for f in items:
                if f.path == path and f.symbol == symbol:
                    keep = f
                    break
            if keep is None:
                raise ConfigError(
                    f"--canonical {cat}={spec}: no {cat} implementation {symbol!r} in {path!r}"
                )
        part = PERFLAYER.get(cat)
        name = keep.ref if keep is not None else (part.name if part else f"perflayer ({cat})")
        chosen[cat] = name
        near = _nearest(items)
        canon_caps = (
            sorted(keep.capabilities)
            if keep is not None
            else sorted(part.capabilities)
            if part
            else []
        )
        for f in items:
            f.canonical = name
            f.role = "canonical" if f is keep else "duplicate"
            caps = sorted(f.capabilities)
            shared = sorted(set(caps) & set(canon_caps))
            missing = sorted(set(caps) - set(canon_caps))
            share = len(shared) / len(caps) if caps else (1.0 if keep is None else 0.0)
            if keep is not None and f is not keep:
                sim = _similarity(f, keep)
                most: str | None = keep.ref
            else:
                sim, other = near.get(id(f), (0.0, None))
                most = other.ref if other is not None else None
            mapping = map_api(cat, f.symbol, f.methods, f.fields) if keep is None else {}
            f.overlap = Overlap(caps, canon_caps, shared, missing, share, sim, most, mapping)
    for cat in canon:
        if cat not in chosen and canon[cat] not in ("auto", "perflayer"):
            raise ConfigError(f"--canonical {cat}={canon[cat]}: no {cat} findings in this tree")
    return chosen


# ------------------------------------------------------------------------------------- plan


def _risk(items: list[Finding]) -> float:
    users = {c.path for f in items for c in f.consumers if c.kind != "test" and c.path != f.path}
    untested = sum(1 for f in items if not f.tested)
    return len(users) + 0.5 * untested


def _plan(findings: list[Finding], chosen: dict[str, str], target: int | None) -> Plan:
    by_cat: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.role == "duplicate":
            by_cat[f.category].append(f)
    phases: list[Phase] = []
    for cat, items in by_cat.items():
        items.sort(key=lambda f: (-f.lines, f.path, f.start_line))
        lines = sum(f.lines for f in items)
        risk = _risk(items)
        per = risk / len(items)
        level = "LOW" if per <= 1.5 else "MEDIUM" if per <= 4 else "HIGH"
        users = sorted(
            {c.path for f in items for c in f.consumers if c.kind != "test" and c.path != f.path}
        )
        files = sorted({f.path for f in items} | set(users))
        canonical = chosen.get(cat, "")
        steps: list[str] = []
        missing = sorted({m for f in items if f.overlap for m in f.overlap.missing})
        if missing:
            steps.append(f"Check {canonical} covers: {', '.join(missing)} (port or adapt first)")
        mapping: dict[str, str] = {}
        for f in items:
            if f.overlap:
                mapping.update(f.overlap.api_mapping)
        if mapping:
            shown = list(mapping.items())[:6]
            steps.append(
                "Map the API: "
                + "; ".join(f"{a} -> {b}" for a, b in shown)
                + (" ..." if len(mapping) > 6 else "")
            )
        if users:
            steps.append(
                f"Migrate {len(users)} consumer file(s): "
                + ", ".join(users[:8])
                + (" ..." if len(users) > 8 else "")
            )
        for f in items[:10]:
            steps.append(
                f"Delete {f.path}:{f.symbol} (L{f.start_line}-{f.end_line}, {f.lines} lines)"
            )
        if len(items) > 10:
            steps.append(
                f"... and {len(items) - 10} more ({sum(f.lines for f in items[10:])} lines)"
            )
        untested = [f for f in items if not f.tested]
        if untested:
            steps.append(f"Add tests before migrating: {len(untested)} of {len(items)} have none")
        else:
            steps.append("Run the tests that cover every migrated consumer")
        phases.append(
            Phase(
                0,
                cat,
                _TITLES.get(cat, f"{cat} consolidation"),
                canonical,
                [f.fingerprint for f in items],
                files,
                lines,
                level,
                round(risk, 2),
                steps,
            )
        )
    # Most lines per unit of risk first: early phases pay the most for the least danger.
    phases.sort(key=lambda p: (-p.lines / (1.0 + p.risk_score), p.category))
    total = 0
    for i, p in enumerate(phases, 1):
        p.number = i
        total += p.lines
        p.cumulative_lines = total
    return Plan(phases, total, target)


# ------------------------------------------------------------------------------------ entry


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop findings nested inside a bigger finding of the same file (count lines once)."""
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_path[f.path].append(f)
    out: list[Finding] = []
    for items in by_path.values():
        items.sort(key=lambda f: (f.start_line, -f.end_line))
        last_end = 0
        for f in items:
            if f.start_line <= last_end and f.end_line <= last_end:
                continue
            out.append(f)
            last_end = max(last_end, f.end_line)
    return out


def analyze(
    path: str,
    *,
    jobs: int | None = None,
    target_lines: int | None = None,
    canonical: Mapping[str, str] | None = None,
    baseline: set[str] | None = None,
    max_bytes: int = 2_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Analyze the Python tree at ``path`` and return a :class:`Report`.

    >>> report = analyze("examples/sprawl")  # doctest: +SKIP
    >>> sorted({f.category for f in report.findings})  # doctest: +SKIP
    ['cache', 'memory', 'monitoring', 'response']
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AnalyzeError(f"path {path!r} does not exist")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    if target_lines is not None and target_lines < 0:
        raise ConfigError(f"target_lines must be >= 0, got {target_lines}")
    # why: the analysis builds millions of short-lived objects and no cycles; pausing the
    # cyclic collector saves its repeated sweeps of the growing result set.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(path, jobs, target_lines, canonical, baseline, max_bytes, progress)
    finally:
        if enabled:
            gc.enable()


def _analyze(
    path: str,
    jobs: int | None,
    target_lines: int | None,
    canonical: Mapping[str, str] | None,
    baseline: set[str] | None,
    max_bytes: int,
    progress: Callable[[int, int], None] | None,
) -> Report:
    t0 = time.perf_counter()
    results, skipped = scan(path, jobs=jobs, max_bytes=max_bytes, progress=progress)
    _copies(results)
    _consumers(results)
    findings = _dedupe([f for r in results for f in r.findings])
    rejected = [x for r in results for x in r.rejected]
    order = {c: i for i, c in enumerate([*CATEGORIES, *(d.category for d in detectors())])}
    findings.sort(key=lambda f: (order.get(f.category, 99), f.path, f.start_line, f.part))
    rejected.sort(key=lambda x: (x.path, x.start_line))
    chosen = _assign(findings, dict(canonical or {}))
    if baseline is not None:
        for f in findings:
            f.new = f.fingerprint not in baseline
    categories = [c for c in order if any(f.category == c for f in findings)]
    cats = list(dict.fromkeys([*CATEGORIES, *categories]))
    plan = _plan(findings, chosen, target_lines)
    for cat in cats:
        if cat not in chosen and cat in PERFLAYER:
            chosen[cat] = PERFLAYER[cat].name
    return Report(
        root=os.path.abspath(path),
        findings=findings,
        rejected=rejected,
        skipped=skipped,
        files_scanned=len(results),
        lines_scanned=sum(r.lines for r in results),
        plan=plan,
        canonicals=chosen,
        categories=cats,
        elapsed=time.perf_counter() - t0,
    )
