"""Report writers: table (rich or plain), Markdown, JSON, SARIF 2.1.0 and self-contained HTML.

Each writer is a function ``(report) -> str`` registered in :data:`WRITERS`; the JSON form is
documented in docs/analyze-json.md and described by :data:`JSON_SCHEMA`.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii as _str_json
from typing import Any

from perflayer.analyze._model import Finding, Report

__all__ = [
    "JSON_SCHEMA",
    "WRITERS",
    "render",
    "to_dict",
    "write_html",
    "write_json",
    "write_markdown",
    "write_sarif",
    "write_table",
]

SCHEMA_VERSION = 1
_TITLES = {
    "cache": "Duplicate Caching Implementations",
    "memory": "Memory Management Duplication",
    "response": "Response Handling Duplication",
    "monitoring": "Monitoring Implementation Duplication",
}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("perflayer")
    except Exception:
        return "0.0.0"


def to_dict(report: Report) -> dict[str, Any]:
    """Return the JSON-ready dict of ``report`` (the schema in docs/analyze-json.md)."""
    by_cat: dict[str, dict[str, Any]] = {}
    for cat in report.categories:
        items = report.by_category(cat)
        dups = [f for f in items if f.role == "duplicate"]
        by_cat[cat] = {
            "canonical": report.canonicals.get(cat, ""),
            "findings": len(items),
            "duplicates": len(dups),
            "lines": sum(f.lines for f in dups),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "perflayer analyze", "version": _version()},
        "root": report.root,
        "summary": {
            "files_scanned": report.files_scanned,
            "lines_scanned": report.lines_scanned,
            "files_skipped": len(report.skipped),
            "findings": len(report.findings),
            "duplicates": len(report.duplicates),
            "new": len(report.new_findings),
            "lines_removable": report.plan.total_lines,
            "target_lines": report.plan.target_lines,
            "elapsed_seconds": round(report.elapsed, 3),
            "categories": by_cat,
        },
        "findings": [f.to_dict() for f in report.findings],
        "rejected": [r.to_dict() for r in report.rejected],
        "skipped": [s.to_dict() for s in report.skipped],
        "plan": report.plan.to_dict(),
    }


class _Unsupported(Exception):
    pass


_INF = float("inf")


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _indented(data: Any, out: Callable[[str], None], level: int) -> None:
    """Write ``data`` as ``json.dumps(data, indent=2)`` would, byte for byte."""
    t = type(data)
    if t is str:
        out(_str_json(data))
    elif t is dict:
        if not data:
            out("{}")
            return
        inner = "\n" + "  " * (level + 1)
        sep = "{" + inner
        for k, v in data.items():
            if type(k) is not str:
                raise _Unsupported
            out(sep)
            sep = "," + inner
            out(_str_json(k))
            out(": ")
            tv = type(v)
            if tv is str:
                out(_str_json(v))
            elif tv is int:
                out(int.__repr__(v))
            elif v is None:
                out("null")
            else:
                _indented(v, out, level + 1)
        out("\n" + "  " * level + "}")
    elif t is list or t is tuple:
        if not data:
            out("[]")
            return
        inner = "\n" + "  " * (level + 1)
        sep = "[" + inner
        for v in data:
            out(sep)
            sep = "," + inner
            if type(v) is str:
                out(_str_json(v))
            else:
                _indented(v, out, level + 1)
        out("\n" + "  " * level + "]")
    elif data is None:
        out("null")
    elif data is True:
        out("true")
    elif data is False:
        out("false")
    elif t is int:
        out(int.__repr__(data))
    elif t is float:
        out(_float(data))
    else:
        raise _Unsupported


def _dumps(data: Any, items: int) -> str:
    # why: any ``indent`` makes json use its pure-Python encoder (5-10x slower); big reports
    # are for machines, so they are written compact by the C encoder. Smaller ones go through
    # _indented, which writes the same text as json's indent=2 in about 60% of its time
    # (flat appends instead of nested generators); anything it does not know falls back.
    if items <= 2000:
        parts: list[str] = []
        try:
            _indented(data, parts.append, 0)
        except _Unsupported:
            return json.dumps(data, indent=2) + "\n"
        parts.append("\n")
        return "".join(parts)
    return json.dumps(data, separators=(",", ":")) + "\n"


def write_json(report: Report) -> str:
    """Return the report as JSON (indented up to 2,000 findings, compact beyond)."""
    return _dumps(to_dict(report), len(report.findings))


# ----------------------------------------------------------------------------------- table


def _span(f: Finding) -> str:
    return f"{f.start_line}-{f.end_line}"


def _plain_table(report: Report) -> str:
    rows = [("CATEGORY", "ROLE", "LOCATION", "LINES", "SPAN", "CONF", "SHARE", "USERS")]
    for f in report.findings:
        share = f"{f.overlap.share:.0%}" if f.overlap else "-"
        users = len({c.path for c in f.consumers})
        rows.append(
            (
                f.category,
                f.role,
                f.ref,
                str(f.lines),
                _span(f),
                f"{f.confidence:.2f}",
                share,
                str(users),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.append("")
    out.extend(_summary_lines(report))
    return "\n".join(out) + "\n"


def _summary_lines(report: Report) -> list[str]:
    plan = report.plan
    lines = [
        f"{len(report.duplicates)} duplicates, {plan.total_lines} lines removable, in "
        f"{report.files_scanned} files ({report.lines_scanned} lines) scanned in "
        f"{report.elapsed:.2f} s; {len(report.rejected)} look-alikes rejected, "
        f"{len(report.skipped)} files skipped."
    ]
    if plan.target_lines:
        lines.append(
            f"Target {plan.target_lines} lines: {plan.total_lines} identified "
            f"({plan.target_share or 0:.0%} of target)."
        )
    for p in plan.phases:
        lines.append(
            f"Phase {p.number}: {p.title} -> {p.canonical}: {p.lines} lines, risk {p.risk}"
        )
    return lines


def write_table(report: Report, color: bool | None = None) -> str:
    """Return a terminal table: rich when installed, plain text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return _plain_table(report)
    import io

    width = shutil.get_terminal_size((150, 40)).columns
    console = Console(
        file=io.StringIO(),
        record=True,
        width=max(110, width),
        force_terminal=bool(color),
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
    )
    table = Table(
        title=f"perflayer analyze: {os.path.basename(report.root) or report.root}",
        show_lines=False,
        header_style="bold",
    )
    table.add_column("Category")
    table.add_column("Role")
    table.add_column("Path", overflow="fold")
    table.add_column("Symbol", overflow="fold")
    for name in ("Lines", "Span", "Conf", "Shared", "Users"):
        table.add_column(name, justify="right")
    last = None
    for f in report.findings:
        if last is not None and f.category != last:
            table.add_section()
        last = f.category
        share = f"{f.overlap.share:.0%}" if f.overlap else "-"
        role = "[green]KEEP[/]" if f.role == "canonical" else "ELIMINATE"
        users = len({c.path for c in f.consumers})
        symbol = f.symbol + (" (inline)" if f.kind == "region" else "")
        table.add_row(
            f.category,
            role,
            f.path,
            symbol,
            str(f.lines),
            _span(f),
            f"{f.confidence:.2f}",
            share,
            str(users),
        )
    console.print(table)
    for line in _summary_lines(report):
        console.print(line, markup=False)
    return console.export_text(styles=bool(color))


# -------------------------------------------------------------------------------- markdown


def _tree(items: list[str]) -> list[str]:
    out = []
    for i, item in enumerate(items):
        out.append(("└── " if i == len(items) - 1 else "├── ") + item)
    return out


def write_markdown(report: Report) -> str:
    """Return the report in the form of the original hand-made analysis, with exact lines."""
    plan = report.plan
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out: list[str] = [
        "# Performance Duplication Analysis",
        "",
        f"**Date**: {today}  ",
        f"**Tree**: `{report.root}` ({report.files_scanned} files, {report.lines_scanned} lines)  ",
        f"**Tool**: perflayer analyze {_version()} (exact spans from the syntax tree)",
        "",
        "## Executive summary",
        "",
    ]
    if plan.target_lines:
        out.append(f"- **Target**: {plan.target_lines} lines of duplicate performance code")
        out.append(
            f"- **Identified**: **{plan.total_lines} lines** for elimination "
            f"({plan.target_share or 0:.0%} of target)"
        )
    else:
        out.append(f"- **Identified**: **{plan.total_lines} lines** for elimination")
    cats = [c for c in report.categories if report.by_category(c)]
    out.append(f"- **Categories**: {len(cats)} ({', '.join(cats) or 'none'})")
    out.append(f"- **Duplicates**: {len(report.duplicates)} implementations")
    out.append(f"- **Rejected look-alikes**: {len(report.rejected)} (listed below with reasons)")
    risks = [p.risk for p in plan.phases]
    overall = "HIGH" if "HIGH" in risks else "MEDIUM" if "MEDIUM" in risks else "LOW"
    out.append(f"- **Risk level**: **{overall}** (from consumers and test coverage)")
    out.append("")
    out.append("## Detailed duplication analysis")
    for n, cat in enumerate(cats, 1):
        items = report.by_category(cat)
        dups = [f for f in items if f.role == "duplicate"]
        total = sum(f.lines for f in dups)
        out += [
            "",
            f"### Category {n}: {_TITLES.get(cat, cat.title())}",
            f"**Elimination**: **{total} lines** in {len(dups)} implementations",
            "",
        ]
        out.append("| Location | Symbol | Lines | Span | Shared | Consumers | Confidence |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for f in items:
            share = f"{f.overlap.share:.0%}" if f.overlap else "-"
            users = len({c.path for c in f.consumers})
            keep = " (KEEP)" if f.role == "canonical" else ""
            out.append(
                f"| `{f.path}` | `{f.symbol}`{keep} | {f.lines} | {f.start_line}-{f.end_line} "
                f"| {share} | {users} | {f.confidence:.2f} |"
            )
        out += ["", "```"]
        for f in dups:
            out.append(
                f"{f.path}:{f.symbol} (L{f.start_line}-{f.end_line}, {f.lines} lines) - ELIMINATE"
            )
            details = [f"{e.detail} (line {e.line})" for e in f.evidence[:5]]
            if f.overlap and f.overlap.missing:
                details.append("not in canonical: " + ", ".join(f.overlap.missing))
            out += _tree(details)
            out.append("")
        canon = report.canonicals.get(cat, "")
        keeper = [f for f in items if f.role == "canonical"]
        if keeper:
            k = keeper[0]
            out.append(
                f"{k.path}:{k.symbol} (L{k.start_line}-{k.end_line}, {k.lines} lines) - KEEP"
            )
            out += _tree(k.capabilities)
        else:
            out.append(f"{canon} - KEEP (perflayer)")
            caps = sorted({c for f in dups if f.overlap for c in f.overlap.canonical_capabilities})
            out += _tree(caps)
        out.append("```")
        mapping: dict[str, str] = {}
        for f in dups:
            if f.overlap:
                mapping.update(f.overlap.api_mapping)
        if mapping:
            out += ["", "API mapping:", ""]
            out += [f"- `{a}` -> `{b}`" for a, b in list(mapping.items())[:20]]
    out += ["", "## Consolidation strategy", "", "```"]
    for p in plan.phases:
        out.append(
            f"Phase {p.number}: {p.title} (risk {p.risk}, {p.lines} lines, "
            f"cumulative {p.cumulative_lines})"
        )
        out += _tree(p.steps)
        out.append("")
    out.append("```")
    if report.rejected:
        out += ["", "## Rejected look-alikes (not duplicates)", ""]
        out += [
            f"- `{r.path}:{r.symbol}` (L{r.start_line}-{r.end_line}): {r.reason}"
            for r in report.rejected
        ]
    if report.skipped:
        out += ["", "## Skipped files", ""]
        out += [f"- `{s.path}`: {s.reason}" for s in report.skipped]
    out += ["", "## Success metrics", "", "```", "Line elimination metrics:"]
    metric_items = []
    if plan.target_lines:
        metric_items.append(f"Target: {plan.target_lines} lines")
    metric_items.append(f"Identified: {plan.total_lines} lines")
    for p in plan.phases:
        metric_items.append(f"{p.title}: {p.lines} lines")
    out += _tree(metric_items)
    out += ["", "Validation:"]
    out += _tree(
        [
            "Re-run `perflayer analyze --baseline` after each phase: findings must only disappear",
            "Every migrated consumer keeps passing its tests",
            f"{sum(1 for f in report.duplicates if not f.tested)} duplicates have no test "
            "consumer: add tests first",
        ]
    )
    out += ["```", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------- SARIF

_RULES = {
    "cache": ("PL001", "duplicate-cache", "Home-grown cache duplicating perflayer.Cache"),
    "memory": (
        "PL002",
        "duplicate-memory",
        "Home-grown memory management duplicating perflayer.MemoryGuard",
    ),
    "response": (
        "PL003",
        "duplicate-response",
        "Home-grown response envelope or scheduler duplicating perflayer.Response",
    ),
    "monitoring": (
        "PL004",
        "duplicate-monitoring",
        "Home-grown monitoring duplicating perflayer.Monitor",
    ),
}


def _rule(cat: str) -> tuple[str, str, str]:
    return _RULES.get(cat, (f"PL-{cat}", f"duplicate-{cat}", f"Duplicate {cat} implementation"))


def write_sarif(report: Report) -> str:
    """Return a SARIF 2.1.0 log with one result per duplicate."""
    cats = list(dict.fromkeys([*report.categories, *(f.category for f in report.findings)]))
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for cat in cats:
        rid, name, text = _rule(cat)
        index[cat] = len(rules)
        rules.append(
            {
                "id": rid,
                "name": name,
                "shortDescription": {"text": text},
                "fullDescription": {
                    "text": f"{text}. Consolidate into "
                    f"{report.canonicals.get(cat, 'the canonical')}."
                },
                "defaultConfiguration": {"level": "warning"},
                "properties": {"category": cat},
            }
        )
    results = []
    for f in report.findings:
        if f.role != "duplicate":
            continue
        rid, _, _ = _rule(f.category)
        msg = (
            f"{f.symbol} duplicates {f.canonical} ({f.category}, {f.lines} lines"
            + (f", shares {f.overlap.share:.0%} of its capabilities" if f.overlap else "")
            + ")"
        )
        results.append(
            {
                "ruleId": rid,
                "ruleIndex": index[f.category],
                "level": "warning",
                "message": {"text": msg},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.path, "uriBaseId": "SRCROOT"},
                            "region": {"startLine": f.start_line, "endLine": f.end_line},
                        },
                        "logicalLocations": [
                            {
                                "fullyQualifiedName": f.symbol,
                                "kind": "type" if f.kind == "class" else "function",
                            }
                        ],
                    }
                ],
                "partialFingerprints": {"perflayer/v1": f.fingerprint},
                "baselineState": "new" if f.new else "unchanged",
                "properties": {
                    "confidence": f.confidence,
                    "lines": f.lines,
                    "canonical": f.canonical,
                    "capabilities": f.capabilities,
                    "consumers": len(f.consumers),
                },
            }
        )
    root_uri = "file://" + report.root.replace(os.sep, "/").rstrip("/") + "/"
    notes = [
        {
            "level": "note",
            "message": {"text": f"skipped {s.path}: {s.reason}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": s.path, "uriBaseId": "SRCROOT"}}}
            ],
        }
        for s in report.skipped
    ]
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "perflayer analyze",
                        "version": _version(),
                        "informationUri": "https://pypi.org/project/perflayer/",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": root_uri}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "results": results,
            }
        ],
    }
    return _dumps(log, len(results))


# ------------------------------------------------------------------------------------ HTML

_COLORS = {"cache": "#4e79a7", "memory": "#f28e2b", "response": "#59a14f", "monitoring": "#e15759"}


def _svg_chart(report: Report) -> str:
    cats = [c for c in report.categories if report.by_category(c)]
    values = [sum(f.lines for f in report.by_category(c) if f.role == "duplicate") for c in cats]
    top = max([*values, 1])
    bar_h, gap, left, width = 28, 12, 110, 420
    height = len(cats) * (bar_h + gap) + gap + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" '
        f'height="{height}" role="img" aria-label="Removable lines per category">'
    ]
    for i, (cat, val) in enumerate(zip(cats, values, strict=True)):
        y = gap + i * (bar_h + gap)
        w = max(1, int(width * val / top))
        color = _COLORS.get(cat, "#76b7b2")
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h * 0.68:.0f}" text-anchor="end" '
            f'font-size="13">{html.escape(cat)}</text>'
        )
        parts.append(
            f'<rect class="bar" x="{left}" y="{y}" width="{w}" height="{bar_h}" '
            f'fill="{color}"><title>{html.escape(cat)}: {val} lines</title></rect>'
        )
        parts.append(
            f'<text x="{left + w + 6}" y="{y + bar_h * 0.68:.0f}" font-size="13">{val}</text>'
        )
    if report.plan.target_lines:
        x = left + min(width, int(width * report.plan.target_lines / top))
        parts.append(
            f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 16}" stroke="#333" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{x}" y="{height - 4}" font-size="11" text-anchor="middle">'
            f"target {report.plan.target_lines}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html(report: Report) -> str:
    """Return a self-contained HTML report (inline CSS and an inline SVG chart, no scripts)."""
    e = html.escape
    rows = []
    for f in report.findings:
        share = f"{f.overlap.share:.0%}" if f.overlap else "-"
        missing = ", ".join(f.overlap.missing) if f.overlap and f.overlap.missing else ""
        ev = "<br>".join(e(f"{x.detail} (line {x.line})") for x in f.evidence[:4])
        rows.append(
            f"<tr class='{e(f.role)}'><td>{e(f.category)}</td><td>{e(f.role)}</td>"
            f"<td><code>{e(f.path)}</code></td><td><code>{e(f.symbol)}</code></td>"
            f"<td class='n'>{f.start_line}-{f.end_line}</td><td class='n'>{f.lines}</td>"
            f"<td class='n'>{share}</td><td>{e(missing)}</td>"
            f"<td class='n'>{len({c.path for c in f.consumers})}</td>"
            f"<td class='n'>{f.confidence:.2f}</td><td class='ev'>{ev}</td></tr>"
        )
    phases = "".join(
        f"<li><b>Phase {p.number}: {e(p.title)}</b> &rarr; {e(p.canonical)} "
        f"({p.lines} lines, risk {e(p.risk)})<ul>"
        + "".join(f"<li>{e(s)}</li>" for s in p.steps)
        + "</ul></li>"
        for p in report.plan.phases
    )
    rejected = "".join(
        f"<li><code>{e(r.path)}:{e(r.symbol)}</code> (L{r.start_line}-{r.end_line}): "
        f"{e(r.reason)}</li>"
        for r in report.rejected
    )
    skipped = "".join(f"<li><code>{e(s.path)}</code>: {e(s.reason)}</li>" for s in report.skipped)
    plan = report.plan
    target = (
        f" of a {plan.target_lines}-line target ({plan.target_share or 0:.0%})"
        if plan.target_lines
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>perflayer analyze: {e(os.path.basename(report.root))}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px 6px;vertical-align:top}}
th{{background:#f3f3f3}} td.n{{text-align:right}} td.ev{{font-size:12px;color:#555}}
tr.canonical{{background:#eef8ee}} code{{font-size:12px}}
</style></head><body>
<h1>Performance duplication analysis</h1>
<p id="summary"><b>{plan.total_lines}</b> lines removable in <b>{len(report.duplicates)}</b>
duplicates{target}; {report.files_scanned} files ({report.lines_scanned} lines) scanned in
{report.elapsed:.2f} s.</p>
<h2>Removable lines per category</h2>
<div id="chart">{_svg_chart(report)}</div>
<h2>Findings</h2>
<table id="findings"><thead><tr><th>Category</th><th>Role</th><th>Path</th><th>Symbol</th>
<th>Span</th><th>Lines</th><th>Shared</th><th>Missing in canonical</th><th>Users</th>
<th>Conf.</th><th>Evidence</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<h2>Plan</h2><ol id="plan">{phases}</ol>
<h2>Rejected look-alikes</h2><ul id="rejected">{rejected}</ul>
<h2>Skipped files</h2><ul id="skipped">{skipped}</ul>
</body></html>
"""


WRITERS: dict[str, Callable[[Report], str]] = {
    "table": write_table,
    "markdown": write_markdown,
    "json": write_json,
    "sarif": write_sarif,
    "html": write_html,
}


def render(report: Report, fmt: str) -> str:
    """Render ``report`` in format ``fmt`` (one of :data:`WRITERS`)."""
    try:
        writer = WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(WRITERS)}") from None
    return writer(report)


def _schema() -> dict[str, Any]:
    s, i, n, b = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
    ns = {"type": ["string", "null"]}
    strings = {"type": "array", "items": s}
    evidence = {
        "type": "object",
        "required": ["kind", "detail", "line", "weight"],
        "properties": {"kind": s, "detail": s, "line": i, "weight": n},
    }
    consumer = {
        "type": "object",
        "required": ["path", "line", "kind"],
        "properties": {
            "path": s,
            "line": i,
            "kind": {"enum": ["import", "call", "reference", "test"]},
        },
    }
    overlap = {
        "type": ["object", "null"],
        "required": [
            "capabilities",
            "canonical_capabilities",
            "shared",
            "missing",
            "share",
            "structural_similarity",
            "most_similar",
            "api_mapping",
        ],
        "properties": {
            "capabilities": strings,
            "canonical_capabilities": strings,
            "shared": strings,
            "missing": strings,
            "share": n,
            "structural_similarity": n,
            "most_similar": ns,
            "api_mapping": {"type": "object"},
        },
    }
    finding = {
        "type": "object",
        "required": [
            "category",
            "path",
            "symbol",
            "kind",
            "start_line",
            "end_line",
            "lines",
            "role",
            "canonical",
            "overlap",
            "confidence",
            "evidence",
            "consumers",
            "tested",
            "new",
            "fingerprint",
        ],
        "properties": {
            "category": s,
            "path": s,
            "symbol": s,
            "kind": {"enum": ["class", "function", "method", "region"]},
            "start_line": i,
            "end_line": i,
            "lines": i,
            "role": {"enum": ["duplicate", "canonical"]},
            "canonical": s,
            "overlap": overlap,
            "confidence": n,
            "evidence": {"type": "array", "items": evidence},
            "consumers": {"type": "array", "items": consumer},
            "tested": b,
            "new": b,
            "fingerprint": s,
        },
    }
    rejected = {
        "type": "object",
        "required": ["category", "path", "symbol", "start_line", "end_line", "reason"],
        "properties": {
            "category": s,
            "path": s,
            "symbol": s,
            "start_line": i,
            "end_line": i,
            "reason": s,
        },
    }
    skipped = {
        "type": "object",
        "required": ["path", "reason"],
        "properties": {"path": s, "reason": s},
    }
    phase = {
        "type": "object",
        "required": [
            "number",
            "category",
            "title",
            "canonical",
            "findings",
            "files",
            "lines",
            "cumulative_lines",
            "risk",
            "risk_score",
            "steps",
        ],
        "properties": {
            "number": i,
            "category": s,
            "title": s,
            "canonical": s,
            "findings": strings,
            "files": strings,
            "lines": i,
            "cumulative_lines": i,
            "risk": {"enum": ["LOW", "MEDIUM", "HIGH"]},
            "risk_score": n,
            "steps": strings,
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "perflayer analyze report",
        "type": "object",
        "required": [
            "schema_version",
            "tool",
            "root",
            "summary",
            "findings",
            "rejected",
            "skipped",
            "plan",
        ],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "tool": {
                "type": "object",
                "required": ["name", "version"],
                "properties": {"name": s, "version": s},
            },
            "root": s,
            "summary": {
                "type": "object",
                "required": [
                    "files_scanned",
                    "lines_scanned",
                    "files_skipped",
                    "findings",
                    "duplicates",
                    "new",
                    "lines_removable",
                    "target_lines",
                    "elapsed_seconds",
                    "categories",
                ],
                "properties": {
                    "files_scanned": i,
                    "lines_scanned": i,
                    "files_skipped": i,
                    "findings": i,
                    "duplicates": i,
                    "new": i,
                    "lines_removable": i,
                    "target_lines": {"type": ["integer", "null"]},
                    "elapsed_seconds": n,
                    "categories": {"type": "object"},
                },
            },
            "findings": {"type": "array", "items": finding},
            "rejected": {"type": "array", "items": rejected},
            "skipped": {"type": "array", "items": skipped},
            "plan": {
                "type": "object",
                "required": ["phases", "total_lines", "target_lines", "target_share"],
                "properties": {
                    "phases": {"type": "array", "items": phase},
                    "total_lines": i,
                    "target_lines": {"type": ["integer", "null"]},
                    "target_share": {"type": ["number", "null"]},
                },
            },
        },
    }


#: JSON Schema (draft 2020-12) of :func:`write_json`'s output.
JSON_SCHEMA: dict[str, Any] = _schema()
