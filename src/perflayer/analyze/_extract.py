"""Per-file work, run in the worker processes: read, parse, build units, detect, find refs.

Everything returned is small and picklable: findings without their global parts (overlap,
canonical, consumers from other files), rejections, copy candidates (normalized-text hashes of
functions that show some performance signal) and the file's in-tree imports with the lines where
the imported names are used.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import re
import warnings
from dataclasses import dataclass, field

from perflayer.analyze._detectors import Verdict, _stub_reason, detectors, only_builtin
from perflayer.analyze._facts import (
    Facts,
    Unit,
    collect,
    dotted,
    is_trivial,
    split_ident,
    walk,
)
from perflayer.analyze._model import Consumer, Evidence, Finding, Rejected, Skipped

__all__ = ["CopyCandidate", "FileResult", "Options", "extract_file", "module_name"]

_CACHE_WORDS = frozenset({"cache", "cached", "caching", "memo", "memoize", "lru"})
_MONITOR_ATTR_WORDS = frozenset(
    {
        "metrics",
        "stats",
        "statistics",
        "counters",
        "timings",
        "latencies",
        "perf",
        "performance",
        "telemetry",
        "durations",
        "measurements",
    }
)
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})


@dataclass(frozen=True, slots=True)
class Options:
    """Worker settings: the size limit and the set of in-tree dotted module suffixes."""

    max_bytes: int = 2_000_000
    modules: frozenset[str] = frozenset()


@dataclass(slots=True)
class CopyCandidate:
    """A function or method with some performance signal, kept to find copies across files."""

    path: str
    symbol: str
    kind: str
    start: int
    end: int
    body_hash: str
    verdict: Verdict
    shape: dict[str, int]


@dataclass(slots=True)
class FileResult:
    """What one file contributed: size, imports, uses of imported names, findings."""

    path: str
    module: str
    lines: int
    is_test: bool
    imports: list[tuple[str, str | None, str, int]] = field(default_factory=list)
    refs: list[tuple[str, str, int, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    copies: list[CopyCandidate] = field(default_factory=list)
    defined: list[str] = field(default_factory=list)


def module_name(rel: str) -> str:
    """Return the dotted module of a /-relative path: ``pkg/a/__init__.py`` -> ``pkg.a``."""
    mod = rel[:-3] if rel.endswith(".py") else rel
    parts = [p for p in mod.split("/") if p]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_test_path(rel: str) -> bool:
    """Return True for test files (tests/ folders, test_*.py, *_test.py, conftest.py)."""
    parts = rel.split("/")
    name = parts[-1]
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(p in ("tests", "test", "testing") for p in parts[:-1])
    )


# ------------------------------------------------------------------------------ unit building


def _decorator_names(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [dotted(d) for d in node.decorator_list]


def _start(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    # Spans include decorators: deleting a duplicate deletes its decorators too.
    line = node.lineno
    for d in node.decorator_list:
        line = min(line, d.lineno)
    return line


# A unit whose text holds none of these words, and whose name hints at no role, cannot be
# flagged by the built-in detectors (each needs one of them in a call, a name or a field), so
# it is not walked at all. The words are found once per file (one regex pass over the lowered
# text, C speed) and looked up per unit by line range. Plug-in detectors see every unit.
_KEYWORDS = (
    "cache",
    "memo",
    "lru",
    "ttl",
    "expir",
    "evict",
    "hits",
    "popitem",
    "move_to_end",
    "time(",
    "monotonic",
    "perf_counter",
    "now(",
    "psutil",
    "getrusage",
    "gc.",
    "getsizeof",
    "tracemalloc",
    "acquire",
    "success",
    "status",
    "percentil",
    "quantile",
    "p9",
    "avg",
    "averag",
    "mean",
    "alert",
    "metric",
    "monitor",
    "stats",
    "latenc",
    "duration",
    "elapsed",
)
_NAME_WORDS = frozenset(
    {
        "cache",
        "cached",
        "caching",
        "memo",
        "memoize",
        "lru",
        "memory",
        "mem",
        "gc",
        "pool",
        "response",
        "result",
        "reply",
        "envelope",
        "request",
        "monitor",
        "monitoring",
        "metrics",
        "metric",
        "stats",
        "statistics",
        "telemetry",
        "tracker",
        "profiler",
        "benchmark",
        "timer",
        "perf",
        "performance",
        "watcher",
        "watch",
        "observer",
        "analytics",
        "calculator",
        "collector",
        "instrumentation",
        "optimizer",
    }
)
_EXTRA_DETECTORS = False


class _Lines:
    """The source lines, and a keyword test on a range of them."""

    __slots__ = ("lines",)

    def __init__(self, text: str, lines: list[str]) -> None:
        self.lines = lines

    def any_between(self, start: int, end: int) -> bool:
        # Per unit, stopping at the first keyword found: dense performance code answers after
        # one or two substring scans, plain code pays one scan per keyword of its own text.
        chunk = "\n".join(self.lines[start - 1 : end]).lower()
        return any(kw in chunk for kw in _KEYWORDS)


def _wanted(src: _Lines | None, name: str, start: int, end: int) -> bool:
    if src is None or _EXTRA_DETECTORS:
        return True
    if _NAME_WORDS.intersection(split_ident(name)):
        return True
    return src.any_between(start, end)


def _function_unit(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    symbol: str,
    kind: str,
    fallback: bool,
    parent: Unit | None,
    lines: _Lines | None = None,
) -> Unit:
    start = _start(node)
    end = node.end_lineno or node.lineno
    if not _wanted(lines, node.name, start, end):
        return Unit(symbol, kind, node.name, start, end, node, Facts(), skip=True, parent=parent)
    facts = collect(node)
    inner = {
        s.name: s.lineno for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if not inner:
        # decorator factories: def deco(arg): def decorator(fn): def wrapper(...)
        for s in node.body:
            if isinstance(s, ast.FunctionDef):
                for s2 in s.body:
                    if isinstance(s2, ast.FunctionDef | ast.AsyncFunctionDef):
                        inner[s2.name] = s2.lineno
    if inner:
        for sub in walk(node):
            if (
                isinstance(sub, ast.Return)
                and isinstance(sub.value, ast.Name)
                and sub.value.id in inner
            ):
                facts.sig("returns_wrapper", inner[sub.value.id])
                facts.sig("wrapper_def", inner[sub.value.id])
                break
    return Unit(
        symbol=symbol,
        kind=kind,
        name=node.name,
        start=_start(node),
        end=node.end_lineno or node.lineno,
        node=node,
        facts=facts,
        decorators=_decorator_names(node),
        in_import_fallback=fallback,
        trivial=is_trivial(node.body),
        is_async=isinstance(node, ast.AsyncFunctionDef),
        parent=parent,
    )


def _class_unit(
    node: ast.ClassDef, prefix: str, fallback: bool, out: list[Unit], lines: _Lines | None
) -> Unit:
    symbol = prefix + node.name
    facts = Facts()
    start = _start(node)
    end = node.end_lineno or node.lineno
    if not _wanted(lines, node.name, start, end):
        for stmt in node.body:
            if isinstance(stmt, ast.ClassDef):
                out.append(_class_unit(stmt, symbol + ".", fallback, out, lines))
        return Unit(symbol, "class", node.name, start, end, node, facts, skip=True)
    unit = Unit(
        symbol=symbol,
        kind="class",
        name=node.name,
        start=_start(node),
        end=node.end_lineno or node.lineno,
        node=node,
        facts=facts,
        bases=[dotted(b) for b in node.bases],
        decorators=_decorator_names(node),
        in_import_fallback=fallback,
        trivial=is_trivial(node.body),
    )
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            m = _function_unit(stmt, f"{symbol}.{stmt.name}", "method", fallback, unit, None)
            unit.methods.append(m)
            facts.merge(m.facts)
            if stmt.name in ("__init__", "__post_init__"):
                for k, line in m.facts.stores.items():
                    if k.startswith("self."):
                        facts.fields.setdefault(k[5:], line)
            if any(d.endswith("property") for d in m.decorators):
                facts.fields.setdefault(stmt.name, stmt.lineno)
        elif isinstance(stmt, ast.ClassDef):
            out.append(_class_unit(stmt, symbol + ".", fallback, out, lines))
        else:
            facts.merge(collect(stmt))
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                facts.fields.setdefault(stmt.target.id, stmt.lineno)
            elif isinstance(stmt, ast.Assign):
                for tgt in stmt.targets:
                    # UPPER_CASE class attributes are constants (SUCCESS = "SUCCESS"), not fields.
                    if isinstance(tgt, ast.Name) and not tgt.id.isupper():
                        facts.fields.setdefault(tgt.id, stmt.lineno)
    for m in unit.methods:
        m.facts.attr_kinds.update(
            {k: v for k, v in facts.attr_kinds.items() if k not in m.facts.attr_kinds}
        )
    return unit


def _handler_catches_import(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    if t is None:
        return False
    names = [dotted(e) for e in t.elts] if isinstance(t, ast.Tuple) else [dotted(t)]
    return any(n.rsplit(".", 1)[-1] in _IMPORT_ERRORS for n in names)


def build_units(tree: ast.Module, lines: _Lines | None = None) -> list[Unit]:
    """Return the top-level functions and every class (nested classes flattened).

    With ``lines`` (the source), units that mention no performance word are not walked.
    """
    out: list[Unit] = []
    _visit(tree.body, False, out, lines)
    return out


def _visit(body: list[ast.stmt], fallback: bool, out: list[Unit], lines: _Lines | None) -> None:
    # A module-level function, not a recursive closure: a closure that calls itself is a
    # reference cycle (function <-> cell) that would keep the tree alive until the cyclic
    # collector runs, and the scan pauses that collector.
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            out.append(_class_unit(stmt, "", fallback, out, lines))
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append(_function_unit(stmt, stmt.name, "function", fallback, None, lines))
        elif isinstance(stmt, ast.If):
            if dotted(stmt.test).endswith("TYPE_CHECKING"):
                continue
            _visit(stmt.body, fallback, out, lines)
            _visit(stmt.orelse, fallback, out, lines)
        elif isinstance(stmt, ast.Try):
            _visit(stmt.body, fallback, out, lines)
            for h in stmt.handlers:
                _visit(h.body, fallback or _handler_catches_import(h), out, lines)
            _visit(stmt.orelse, fallback, out, lines)
            _visit(stmt.finalbody, fallback, out, lines)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            _visit(stmt.body, fallback, out, lines)


# ----------------------------------------------------------------------------- detection


def _norm_hash(lines: list[str], start: int, end: int) -> str:
    body: list[str] = []
    for raw in lines[start - 1 : end]:
        s = raw.strip()
        if s and not s.startswith("#"):
            body.append(s)
    return hashlib.blake2b("\n".join(body).encode("utf-8", "replace"), digest_size=8).hexdigest()


def _best(verdicts: list[Verdict]) -> Verdict | None:
    flagged = [v for v in verdicts if v.flagged]
    if flagged:
        return max(flagged, key=lambda v: v.score)
    return None


def _run(unit: Unit, level: str) -> list[Verdict]:
    cached = unit.verdicts.get(level)
    if cached is not None:
        return cached
    out: list[Verdict] = []
    unit.verdicts[level] = out
    for det in detectors():
        try:
            v = det.detect(unit, level)
        except Exception:  # a broken plug-in detector must not stop the scan
            continue
        if v is not None:
            out.append(v)
    return out


def _touches(stmt: ast.stmt, attrs: set[str]) -> bool:
    for sub in walk(stmt):
        if (
            isinstance(sub, ast.Attribute)
            and sub.attr in attrs
            and isinstance(sub.value, ast.Name)
            and sub.value.id in ("self", "cls")
        ):
            return True
    return False


def _containers(cls: Unit, category: str) -> set[str]:
    f = cls.facts
    out: set[str] = set()
    if category == "cache":
        for key in f.stores:
            if key.startswith("sub:") and key in f.loads:
                name = key[4:]
                if set(split_ident(name)) & _CACHE_WORDS and "self." + name in f.loads:
                    out.add(name)
    elif category == "monitoring":
        for attr, kind in f.attr_kinds.items():
            if kind in ("dict", "list", "deque", "counter") and (
                set(split_ident(attr)) & _MONITOR_ATTR_WORDS
            ):
                out.add(attr)
    return out


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def _make_finding(
    unit: Unit, v: Verdict, rel: str, lines: list[str], symbol: str | None = None
) -> Finding:
    return Finding(
        category=v.category,
        path=rel,
        symbol=symbol or unit.symbol,
        kind=unit.kind,
        start_line=unit.start,
        end_line=unit.end,
        confidence=v.confidence,
        evidence=list(v.evidence),
        capabilities=list(v.capabilities),
        body_hash=_norm_hash(lines, unit.start, unit.end),
        shape=unit.facts.shape_names(),
        methods=[m.name for m in unit.methods],
        fields=list(unit.facts.fields) if unit.kind == "class" else [],
    )


_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


def _leaf_spans(body: list[ast.stmt], attrs: set[str], out: list[tuple[int, int]]) -> None:
    """Collect (start, end) of the innermost statements that touch ``self.<attr>``."""
    for stmt in body:
        if isinstance(stmt, _COMPOUND):
            head: list[ast.AST] = []
            if isinstance(stmt, ast.If | ast.While):
                head = [stmt.test]
            elif isinstance(stmt, ast.For | ast.AsyncFor):
                head = [stmt.target, stmt.iter]
            elif isinstance(stmt, ast.With | ast.AsyncWith):
                head = [i.context_expr for i in stmt.items]
            if any(_touches_node(h, attrs) for h in head):
                # The condition itself uses the attribute: the whole block is the pattern.
                out.append((stmt.lineno, stmt.end_lineno or stmt.lineno))
                continue
            for sub in ("body", "orelse", "finalbody"):
                _leaf_spans(getattr(stmt, sub, []) or [], attrs, out)
            for h in getattr(stmt, "handlers", []) or []:
                _leaf_spans(h.body, attrs, out)
        elif _touches(stmt, attrs):
            out.append((stmt.lineno, stmt.end_lineno or stmt.lineno))


def _touches_node(node: ast.AST, attrs: set[str]) -> bool:
    for sub in walk(node):
        if (
            isinstance(sub, ast.Attribute)
            and sub.attr in attrs
            and isinstance(sub.value, ast.Name)
            and sub.value.id in ("self", "cls")
        ):
            return True
    return False


def _regions(m: Unit, attrs: set[str]) -> list[tuple[int, int]]:
    node = m.node
    assert not isinstance(node, ast.ClassDef)
    spans: list[tuple[int, int]] = []
    _leaf_spans(_statements(node.body), attrs, spans)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _mostly_elsewhere(m: Unit, v: Verdict, cls: Unit) -> bool:
    """Return True for a method flagged for a role that fills less than half of its body."""
    if v.category not in ("cache", "monitoring") or any(e.kind == "name" for e in v.evidence):
        return False
    attrs = _containers(cls, v.category)
    if not attrs:
        return False
    node = m.node
    assert not isinstance(node, ast.ClassDef)
    body = _statements(node.body)
    if not body:
        return False
    size = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
    covered = sum(e - s + 1 for s, e in _regions(m, attrs))
    return covered * 2 < size


def _inline(cls: Unit, rel: str, lines: list[str], res: FileResult) -> None:
    """Find cache, memory and monitoring code inside a class whose main job is something else."""
    method_verdicts: dict[int, list[Verdict]] = {}
    for m in cls.methods:
        if m.trivial:
            continue  # @overload stubs, abstract methods
        method_verdicts[id(m)] = _run(m, "method")
    flagged_methods: dict[int, Verdict] = {}
    for m in cls.methods:
        best = _best(method_verdicts.get(id(m), []))
        if best is not None and m.name not in ("__init__", "__post_init__"):
            flagged_methods[id(m)] = best
            if _mostly_elsewhere(m, best, cls):
                continue  # a long method that also caches: its regions are reported below
            res.findings.append(_make_finding(m, best, rel, lines))
    for category in ("cache", "monitoring"):
        attrs = _containers(cls, category)
        if not attrs:
            continue
        group = [v for v in flagged_methods.values() if v.category == category]
        if not group:
            continue
        group_caps = sorted({c for v in group for c in v.capabilities})
        for m in cls.methods:
            if m.name in ("__init__", "__post_init__") or m.trivial:
                continue
            if id(m) in flagged_methods and not _mostly_elsewhere(m, flagged_methods[id(m)], cls):
                continue
            runs = _regions(m, attrs)
            node = m.node
            assert not isinstance(node, ast.ClassDef)
            body = _statements(node.body)
            if (
                len(runs) == 1
                and body
                and runs[0][0] <= body[0].lineno
                and runs[0][1] >= (body[-1].end_lineno or body[-1].lineno)
            ):
                # Every statement of the method is the pattern: the method is a helper of it.
                f = _make_finding(m, group[0], rel, lines)
                f.evidence = [
                    Evidence("inline-method", f"only uses `self.{sorted(attrs)[0]}`", m.start, 1.0)
                ]
                f.confidence = 0.65
                f.capabilities = list(group_caps)
                res.findings.append(f)
                continue
            for i, (start, end) in enumerate(runs):
                ev = Evidence("inline-region", f"uses `self.{sorted(attrs)[0]}` inline", start, 1.0)
                f = Finding(
                    category=category,
                    path=rel,
                    symbol=m.symbol,
                    kind="region",
                    start_line=start,
                    end_line=end,
                    confidence=0.6,
                    evidence=[ev],
                    capabilities=list(group_caps),
                    body_hash=_norm_hash(lines, start, end),
                    shape={},
                )
                if len(runs) > 1:
                    f.part = i + 1
                res.findings.append(f)
    for m in cls.methods:
        if id(m) in flagged_methods or m.trivial or m.lines < 4:
            continue
        weak = [v for v in method_verdicts.get(id(m), []) if _strong_copy(v)]
        if weak:
            res.copies.append(
                CopyCandidate(
                    rel,
                    m.symbol,
                    "method",
                    m.start,
                    m.end,
                    _norm_hash(lines, m.start, m.end),
                    max(weak, key=lambda v: v.score),
                    m.facts.shape_names(),
                )
            )


def _dominant(cls: Unit, v: Verdict) -> bool:
    """Return True when the class's main job is ``v.category`` (not a big class with a helper).

    A class named for the role is dominant. Otherwise at least half of its method lines must
    be role code: whole methods the detector flags, plus the statements of other methods that
    use the role's attributes (``self._cache``, ``self.metrics``).
    """
    if v.category not in ("cache", "memory", "monitoring") or any(
        e.kind in ("object-pool", "name") for e in v.evidence
    ):
        return True
    if v.category == "cache":
        # A cache class offers get/set (or is a memoizer); a TTL dict inside a class that does
        # something else is an inline cache, reported as its methods and regions.
        return bool({"get_set", "memoize"} & set(v.capabilities))
    attrs = _containers(cls, v.category)
    if v.category == "cache":
        loads = cls.facts.loads
        attrs |= {
            k[4:] for k in cls.facts.stores if k.startswith("sub:") and "self." + k[4:] in loads
        }
    total = 0
    involved = 0
    for m in cls.methods:
        if m.name in ("__init__", "__post_init__") or m.trivial:
            continue
        node = m.node
        assert not isinstance(node, ast.ClassDef)
        body = _statements(node.body)
        if not body:
            continue
        size = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
        total += size
        mv = _best([x for x in _run(m, "method") if x.category == v.category])
        if mv is not None:
            involved += size
        elif attrs:
            involved += sum(e - s + 1 for s, e in _regions(m, attrs))
    if total == 0:
        return True
    return involved / total >= 0.5


def _rejections(unit: Unit, verdicts: list[Verdict], rel: str, res: FileResult) -> None:
    for v in verdicts:
        if v.reason and v.reason != "weak" and not v.reason.startswith("no keyed store"):
            res.rejected.append(
                Rejected(v.category, rel, unit.symbol, unit.start, unit.end, v.reason)
            )
            return


_HINTS = (
    ("cache", frozenset({"cache", "cached", "caching", "memo", "memoize", "lru"})),
    ("memory", frozenset({"memory", "mem", "gc", "pool"})),
    ("response", frozenset({"response", "result", "reply", "envelope"})),
    ("monitoring", frozenset({"monitor", "metrics", "metric", "stats", "telemetry", "tracker"})),
)


def _hinted(unit: Unit) -> list[Verdict]:
    words = set(split_ident(unit.name))
    for category, hint in _HINTS:
        if words & hint:
            return [Verdict(category, 0.0, False)]
    return []


def _strong_copy(v: Verdict) -> bool:
    """Return True when a copied function's evidence is about the role, not incidental."""
    strong = {
        "percentile",
        "running-average",
        "process-memory",
        "garbage-collector",
        "tracemalloc",
        "object-size",
        "envelope-dict",
        "memoize-decorator",
        "ttl-check",
        "timing-decorator",
        "hit-miss-stats",
        "samples",
    }
    return any(e.kind in strong for e in v.evidence)


_NOT_IMPLEMENTATIONS = frozenset(
    {
        "config",
        "configuration",
        "settings",
        "options",
        "params",
        "parameters",
        "error",
        "exception",
        "warning",
        "factory",
        "builder",
        "interface",
        "enum",
        "type",
        "types",
        "kind",
        "event",
        "test",
        "tests",
    }
)


def _analyze_units(units: list[Unit], rel: str, lines: list[str], res: FileResult) -> None:
    for unit in units:
        if unit.skip:
            continue
        if (
            unit.kind == "class"
            and split_ident(unit.name)[-1:]
            and (split_ident(unit.name)[-1] in _NOT_IMPLEMENTATIONS)
        ):
            continue  # CacheConfig, MemoryError, MetricsFactory: about the role, not doing it
        level = "class" if unit.kind == "class" else "function"
        verdicts = _run(unit, level)
        if not verdicts and unit.kind == "class" and not unit.methods:
            continue
        stub = _stub_reason(unit)
        if stub is not None:
            hinted = [v for v in verdicts if v.score > 0 or v.reason]
            if not hinted:
                hinted = _hinted(unit)
            if hinted and (unit.methods or unit.in_import_fallback):
                res.rejected.append(
                    Rejected(hinted[0].category, rel, unit.symbol, unit.start, unit.end, stub)
                )
            continue
        best = _best(verdicts)
        if best is not None and unit.kind == "class" and not _dominant(unit, best):
            best = None
            _inline(unit, rel, lines, res)
            continue
        if best is not None:
            res.findings.append(_make_finding(unit, best, rel, lines))
            continue
        _rejections(unit, verdicts, rel, res)
        if unit.kind == "class":
            _inline(unit, rel, lines, res)
        elif unit.lines >= 4:
            weak = [v for v in verdicts if _strong_copy(v)]
            if weak:
                res.copies.append(
                    CopyCandidate(
                        rel,
                        unit.symbol,
                        unit.kind,
                        unit.start,
                        unit.end,
                        _norm_hash(lines, unit.start, unit.end),
                        max(weak, key=lambda v: v.score),
                        unit.facts.shape_names(),
                    )
                )


# ------------------------------------------------------------------------------------- refs


def _resolve_relative(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    parts = module.split(".") if module else []
    if not is_pkg:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if target:
        parts.append(target)
    return ".".join(parts)


_IMPORT_LINE = re.compile(r"(?m)^[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?import[ \t(\\]")
_IMPORT_PREFIX = re.compile(r"[ \t]*(?:from[ \t]+[\w.]+[ \t]+)?")


def _import_lines(text: str, offsets: list[int]) -> list[int]:
    """Return the sorted lines where an import statement starts (what _IMPORT_LINE finds)."""
    # why: a multi-line anchored regex is tried at every character (slower than walking the
    # tree it is meant to spare); the word "import" is rare, so find it with str.find and test
    # only its own line.
    out: set[int] = set()
    find = text.find
    pos = find("import")
    while pos != -1:
        if text[pos + 6 : pos + 7] in (" ", "\t", "(", "\\"):
            start = text.rfind("\n", 0, pos) + 1
            if _IMPORT_PREFIX.fullmatch(text, start, pos):
                out.add(_line_of(offsets, pos))
        pos = find("import", pos + 6)
    return sorted(out)


def _imports(
    tree: ast.Module, module: str, is_pkg: bool, text: str = "", offsets: list[int] | None = None
) -> list[tuple[str, str | None, str, int]]:
    out: list[tuple[str, str | None, str, int]] = []
    # Lines that start an import statement, found by one regex pass: blocks that hold none of
    # them are not descended into (most function bodies).
    if text:
        if offsets is None:
            offsets = _newlines(text)
        starts = _import_lines(text, offsets)
    else:
        starts = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        stmt = stack.pop()
        if text and not isinstance(stmt, ast.Import | ast.ImportFrom):
            i = bisect.bisect_left(starts, stmt.lineno)
            if i >= len(starts) or starts[i] > (stmt.end_lineno or stmt.lineno):
                continue
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                out.append((a.name, None, a.asname or a.name.split(".")[0], stmt.lineno))
        elif isinstance(stmt, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_pkg, stmt.level, stmt.module)
                if stmt.level
                else stmt.module or ""
            )
            for a in stmt.names:
                if a.name != "*":
                    out.append((base, a.name, a.asname or a.name, stmt.lineno))
        else:
            for attr in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(stmt, attr, None)
                if sub:
                    stack.extend(sub)
    out.sort(key=lambda x: x[3])
    return out


def _newlines(text: str) -> list[int]:
    """Return the offset of every newline (computed once per file, shared by the passes)."""
    return [m.start() for m in re.finditer("\n", text)]


def _line_of(offsets: list[int], pos: int) -> int:
    return bisect.bisect_right(offsets, pos) + 1


def _refs(
    text: str,
    imports: list[tuple[str, str | None, str, int]],
    modules: frozenset[str],
    offsets: list[int] | None = None,
) -> list[tuple[str, str, int, str]]:
    """Find where in-tree imported names are used: (module, name, line, kind)."""
    names: dict[str, tuple[str, str]] = {}
    aliases: dict[str, str] = {}
    import_lines: set[int] = set()
    for mod, name, alias, line in imports:
        import_lines.add(line)
        if name is None:
            if mod in modules:
                aliases[alias if alias != mod.split(".")[0] else mod] = mod
        elif f"{mod}.{name}" in modules:
            aliases[alias] = f"{mod}.{name}"
        elif mod in modules:
            names[alias] = (mod, name)
    if not names and not aliases:
        return []
    if offsets is None:
        offsets = _newlines(text)
    out: list[tuple[str, str, int, str]] = []
    if names:
        rx = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b(\s*\()?")
        for m in rx.finditer(text):
            line = _line_of(offsets, m.start())
            if line in import_lines:
                continue
            mod, name = names[m.group(1)]
            out.append((mod, name, line, "call" if m.group(2) else "reference"))
    if aliases:
        rx = re.compile(
            r"\b(" + "|".join(re.escape(a) for a in aliases) + r")\.([A-Za-z_]\w*)\b(\s*\()?"
        )
        for m in rx.finditer(text):
            line = _line_of(offsets, m.start())
            if line in import_lines:
                continue
            out.append(
                (aliases[m.group(1)], m.group(2), line, "call" if m.group(3) else "reference")
            )
    for mod, name, _alias, line in imports:
        if name is not None and mod in modules:
            out.append((mod, name, line, "import"))
    return out


def _local_consumers(
    text: str, rel: str, res: FileResult, offsets: list[int] | None = None
) -> None:
    """Add same-file uses of each finding (``Cls(...)``, ``self.method(...)``), one regex pass."""
    wanted: dict[str, list[Finding]] = {}
    for f in res.findings:
        if f.kind != "region":
            wanted.setdefault(f.symbol.rsplit(".", 1)[-1], []).append(f)
    if not wanted:
        return
    if offsets is None:
        offsets = _newlines(text)
    # No optional prefix group: a leading "(\.)?" makes the engine try every position.
    rx = re.compile(r"\b(" + "|".join(map(re.escape, wanted)) + r")\b(\s*\()?")
    seen: set[tuple[int, int]] = set()
    for m in rx.finditer(text):
        start = m.start()
        if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue
        line = _line_of(offsets, start)
        dotted_use = start > 0 and text[start - 1] == "."
        for f in wanted[m.group(1)]:
            if f.kind == "method" and not dotted_use:
                continue
            if f.kind != "method" and dotted_use:
                continue
            if f.start_line <= line <= f.end_line or (id(f), line) in seen:
                continue
            seen.add((id(f), line))
            f.consumers.append(Consumer(rel, line, "call" if m.group(2) else "reference"))


# ------------------------------------------------------------------------------------ entry


def extract_file(path: str, rel: str, options: Options) -> FileResult | Skipped:
    """Analyze one file; every failure becomes a :class:`Skipped` with its reason."""
    try:
        return _extract(path, rel, options)
    except RecursionError:
        return Skipped(rel, "too deeply nested to analyze (recursion limit)")
    except MemoryError:
        return Skipped(rel, "too large or deep to analyze (out of memory)")
    except Exception as exc:  # degrade, never crash the whole scan
        return Skipped(rel, f"could not analyze: {type(exc).__name__}: {exc}"[:200])


def _extract(path: str, rel: str, options: Options) -> FileResult | Skipped:
    global _EXTRA_DETECTORS
    _EXTRA_DETECTORS = not only_builtin()
    try:
        with open(path, "rb") as fh:
            data = fh.read(options.max_bytes + 1)
    except OSError as exc:
        return Skipped(rel, f"unreadable: {exc.strerror or exc}")
    if len(data) > options.max_bytes:
        return Skipped(rel, f"huge file: over {options.max_bytes} bytes")
    if b"\0" in data:
        return Skipped(rel, "binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Skipped(rel, f"not UTF-8: invalid byte at offset {exc.start}")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=rel)
    except SyntaxError as exc:
        return Skipped(rel, f"syntax error at line {exc.lineno}: {exc.msg}")
    except (ValueError, OverflowError) as exc:
        return Skipped(rel, f"does not parse: {exc}")
    n_lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    module = module_name(rel)
    res = FileResult(rel, module, n_lines, is_test_path(rel))
    offsets = _newlines(text)
    res.imports = _imports(tree, module, rel.endswith("__init__.py"), text, offsets)
    res.defined = [
        s.name
        for s in tree.body
        if isinstance(s, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    if not res.is_test:
        lines = text.splitlines()
        units = build_units(tree, _Lines(text, lines))
        _analyze_units(units, rel, lines, res)
        _local_consumers(text, rel, res, offsets)
        # Break the unit <-> method cycles so refcounting frees the tree at once (the scan
        # runs with the cyclic collector paused).
        for u in units:
            for m in u.methods:
                m.parent = None
    res.refs = _refs(text, res.imports, options.modules, offsets)
    return res
