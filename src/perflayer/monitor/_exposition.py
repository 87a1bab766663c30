"""Prometheus text 0.0.4 and OpenMetrics 1.0 rendering, content negotiation and a strict lint.

Rendering writes lines straight from the instruments into one list and joins it once; the
label part of every series (``{a="x"}``) is built once per series and cached, so a scrape is a
loop of f-strings (prometheus_client builds a Metric and a Sample namedtuple per value first).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perflayer.monitor._core import (
    Histogram,
    HistogramChild,
    MetricFamily,
    Sample,
    _log_once,
    escape_label,
    fmt_float,
    label_string,
)

if TYPE_CHECKING:
    from perflayer.monitor._core import Monitor

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "collect_families",
    "lint",
    "negotiate",
    "render",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def negotiate(accept: str | None) -> tuple[bool, str]:
    """Return ``(openmetrics, content_type)`` for an HTTP ``Accept`` header."""
    if accept:
        for part in accept.split(","):
            media, _, params = part.strip().partition(";")
            if media.strip().lower() != "application/openmetrics-text":
                continue
            q = 1.0
            version = ""
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
                elif k == "version":
                    version = v
            if q > 0 and version in ("", "1.0.0"):
                return True, CONTENT_TYPE_OPENMETRICS
    return False, CONTENT_TYPE_TEXT


def _help(doc: str, om: bool) -> str:
    d = doc.replace("\\", "\\\\").replace("\n", "\\n")
    if om:
        d = d.replace('"', '\\"')
    return d


# Cache of label strings per (labelnames, labelvalues): series are long-lived, scrapes frequent.
_lcache: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}


def _lstr(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    k = (names, values)
    s = _lcache.get(k)
    if s is None:
        if len(_lcache) > 100_000:
            _lcache.clear()
        s = _lcache[k] = label_string(names, values)
    return s


def _render_histogram(
    out: list[str], name: str, names: tuple[str, ...], hc: HistogramChild, om: bool
) -> None:
    raw, total, negative = hc._state()
    # OpenMetrics forbids a negative-capable _sum (and _count needs _sum); 0.0.4 has both.
    with_sum = not om or (total >= 0 and not negative)
    ls = _lstr(names, hc.labelvalues)
    pre = ls[:-1] + "," if ls else "{"
    acc = 0
    for le, c in zip(_le_strings(hc._bounds), raw, strict=False):
        acc += c
        out.append(f'{name}_bucket{pre}le="{le}"}} {acc}.0\n')
    if with_sum:
        out.append(f"{name}_count{ls} {acc}.0\n")
        out.append(f"{name}_sum{ls} {fmt_float(total)}\n")


_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_strings(bounds: tuple[float, ...]) -> tuple[str, ...]:
    s = _le_cache.get(bounds)
    if s is None:
        s = _le_cache[bounds] = (*(fmt_float(b) for b in bounds), "+Inf")
    return s


def render(monitor: Monitor, openmetrics: bool = False) -> str:
    """Render every family of ``monitor`` as Prometheus text (or OpenMetrics with ``# EOF``)."""
    om = openmetrics
    out: list[str] = []
    ap = out.append
    for m in monitor.metrics():
        name = m.name
        names = m.labelnames
        if isinstance(m, Histogram):
            series = m.all_series()
            if om:
                ap(f"# TYPE {name} histogram\n# HELP {name} {_help(m.documentation, om)}\n")
            else:
                ap(f"# HELP {name} {_help(m.documentation, om)}\n# TYPE {name} histogram\n")
            for hc in series:
                _render_histogram(out, name, names, hc, om)
            continue
        typ = m.type
        fam = name[:-6] if (om and typ == "counter") else name
        if om:
            ap(f"# TYPE {fam} {typ}\n# HELP {fam} {_help(m.documentation, om)}\n")
        else:
            ap(f"# HELP {name} {_help(m.documentation, om)}\n# TYPE {name} {typ}\n")
        for lv, v in m.series():
            ap(f"{name}{_lstr(names, lv)} {fmt_float(v)}\n")
    taken = set(monitor._metrics)
    for fam_ in _collector_families(monitor):
        base = fam_.name[:-6] if fam_.name.endswith("_total") else fam_.name
        if fam_.name in taken or base in taken or base + "_total" in taken:
            # Two families under one name would be duplicate series: the registered one wins.
            _log_once(f"collector family {fam_.name!r} clashes with a registered metric; skipped")
            continue
        taken.add(fam_.name)
        _render_family(out, fam_, om)
    if om:
        ap("# EOF\n")
    return "".join(out)


def _render_family(out: list[str], fam: Any, om: bool) -> None:
    name, typ = fam.name, fam.type
    if typ not in ("counter", "gauge", "histogram", "summary", "untyped", "unknown"):
        typ = "untyped"
    if typ == "unknown" and not om:
        typ = "untyped"
    if typ == "untyped" and om:
        typ = "unknown"
    header = name
    if typ == "counter":
        header = name[:-6] if name.endswith("_total") else name
        if not om:
            header += "_total"
    if om:
        out.append(f"# TYPE {header} {typ}\n# HELP {header} {_help(fam.documentation, om)}\n")
    else:
        out.append(f"# HELP {header} {_help(fam.documentation, om)}\n# TYPE {header} {typ}\n")
    for s in fam.samples:
        sname, labels, value = (
            s.name if hasattr(s, "name") else s[0],
            s.labels if hasattr(s, "labels") else s[1],
            s.value if hasattr(s, "value") else s[2],
        )
        if typ == "counter" and sname.endswith("_created"):
            continue  # optional in both formats; skipping keeps 0.0.4 free of a second family
        if not om and typ == "counter" and not sname.endswith("_total"):
            sname += "_total"
        ls = (
            "{" + ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items()) + "}"
            if labels
            else ""
        )
        out.append(f"{sname}{ls} {fmt_float(float(value))}\n")


def _collector_families(monitor: Monitor) -> list[Any]:
    fams: list[Any] = []
    with monitor._lock:
        collectors = list(monitor._collectors)
    for fn in collectors:
        try:
            fams.extend(fn())
        except Exception:  # degrade: one broken collector does not break the scrape
            _log_once(f"collector {fn!r} raised", exc_info=True)
    return fams


def collect_families(monitor: Monitor) -> list[MetricFamily]:
    """Return every family of ``monitor`` as ``MetricFamily`` objects (prometheus_client-shaped)."""
    out: list[MetricFamily] = []
    for m in monitor.metrics():
        names = m.labelnames
        if isinstance(m, Histogram):
            fam = MetricFamily(m.name, "histogram", m.documentation)
            for hc in m.all_series():
                base = dict(zip(names, hc.labelvalues, strict=False))
                for le, c in hc.buckets():
                    fam.samples.append(
                        Sample(m.name + "_bucket", {**base, "le": fmt_float(le)}, float(c))
                    )
                fam.samples.append(Sample(m.name + "_count", dict(base), float(hc.count)))
                fam.samples.append(Sample(m.name + "_sum", dict(base), hc.sum))
            out.append(fam)
            continue
        fname = m.name[:-6] if m.type == "counter" else m.name
        fam = MetricFamily(fname, m.type, m.documentation)
        for lv, v in m.series():
            fam.samples.append(Sample(m.name, dict(zip(names, lv, strict=False)), v))
        out.append(fam)
    for f in _collector_families(monitor):
        out.append(
            MetricFamily(
                f.name,
                f.type,
                f.documentation,
                [Sample(s[0], dict(s[1]), float(s[2])) for s in f.samples],
            )
        )
    return out


# --------------------------------------------------------------------------------- lint

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LVAL = r'"(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE_RE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>(?:{_LNAME}={_LVAL})(?:,{_LNAME}={_LVAL})*,?)?\}})?"
    r" (?P<value>\S+)(?: (?P<ts>-?\d+(?:\.\d+)?))?$"
)
_LABEL_RE = re.compile(rf"({_LNAME})=({_LVAL})")
_FLOAT_RE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v[1:-1])


def _pf(s: str) -> float:
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    return float(s)


def lint(text: str, openmetrics: bool = False) -> list[str]:
    """Return every problem found in an exposition (empty when clean).

    Checks: final newline (and ``# EOF`` for OpenMetrics), one HELP and one TYPE per family
    before its samples, family samples contiguous, valid names/labels/escapes/floats, counters
    end in ``_total``, no duplicate series, histogram buckets cumulative with ``+Inf`` equal to
    ``_count``, and a ``_count``/``_sum`` per histogram series.
    """
    errs: list[str] = []
    if not text.endswith("\n"):
        errs.append("exposition does not end with a newline")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if openmetrics:
        if not lines or lines[-1] != "# EOF":
            errs.append("OpenMetrics exposition does not end with '# EOF'")
        else:
            lines.pop()
    types: dict[str, str] = {}
    helps: set[str] = set()
    closed: set[str] = set()
    current: str | None = None
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    hist: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, Any]] = {}

    def family_of(sample: str) -> str:
        for suf in ("_bucket", "_count", "_sum", "_total", "_created", "_info"):
            if sample.endswith(suf) and sample[: -len(suf)] in types:
                base = sample[: -len(suf)]
                t = types[base]
                if suf == "_total" and t != "counter":
                    continue
                return base
        return sample

    for no, line in enumerate(lines, 1):
        if line == "":
            errs.append(f"line {no}: empty line")
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT"):
                fam = parts[2]
                if not re.match(rf"^{_NAME}$", fam):
                    errs.append(f"line {no}: invalid metric name {fam!r}")
                if fam in closed:
                    errs.append(f"line {no}: family {fam!r} appears again after other families")
                if current is not None and current != fam:
                    closed.add(current)
                current = fam
                if parts[1] == "TYPE":
                    if fam in types:
                        errs.append(f"line {no}: second TYPE for {fam!r}")
                    t = parts[3] if len(parts) > 3 else ""
                    ok = ("counter", "gauge", "histogram", "summary") + (
                        ("unknown", "gaugehistogram", "stateset", "info")
                        if openmetrics
                        else ("untyped",)
                    )
                    if t not in ok:
                        errs.append(f"line {no}: unknown type {t!r} for {fam!r}")
                    if t == "counter" and not openmetrics and not fam.endswith("_total"):
                        errs.append(f"line {no}: counter {fam!r} does not end in _total")
                    if t == "counter" and openmetrics and fam.endswith("_total"):
                        errs.append(
                            f"line {no}: OpenMetrics counter family {fam!r} must not end in _total"
                        )
                    types[fam] = t
                elif parts[1] == "HELP":
                    if fam in helps:
                        errs.append(f"line {no}: second HELP for {fam!r}")
                    helps.add(fam)
                    doc = parts[3] if len(parts) > 3 else ""
                    ok_esc = r"\\[\\n\"]" if openmetrics else r"\\[\\n]"
                    bad = "\\" in re.sub(ok_esc, "", doc)
                    if bad:
                        errs.append(f"line {no}: invalid escape in HELP of {fam!r}")
            elif openmetrics:
                errs.append(f"line {no}: unexpected comment in OpenMetrics: {line!r}")
            continue
        mt = _SAMPLE_RE.match(line)
        if not mt:
            errs.append(f"line {no}: malformed sample {line!r}")
            continue
        sname, value = mt.group("name"), mt.group("value")
        if not _FLOAT_RE.match(value):
            errs.append(f"line {no}: invalid value {value!r}")
            continue
        raw = mt.group("labels") or ""
        labels = [(k, _unescape(v)) for k, v in _LABEL_RE.findall(raw)]
        if len({k for k, _ in labels}) != len(labels):
            errs.append(f"line {no}: duplicate label name in {line!r}")
        fam = family_of(sname)
        if fam not in types:
            errs.append(f"line {no}: sample {sname!r} has no TYPE")
        if fam in closed or (current is not None and fam != current and fam in types):
            errs.append(f"line {no}: sample {sname!r} is not contiguous with its family")
        t = types.get(fam, "")
        if t == "counter":
            if openmetrics and not (sname == fam + "_total" or sname == fam + "_created"):
                errs.append(f"line {no}: counter sample {sname!r} must be {fam}_total")
            if not openmetrics and sname != fam:
                errs.append(f"line {no}: counter sample {sname!r} differs from family {fam!r}")
            if not sname.endswith("_total") and not sname.endswith("_created"):
                errs.append(f"line {no}: counter {sname!r} does not end in _total")
            v = _pf(value)
            if v < 0 or v != v:
                errs.append(f"line {no}: counter {sname!r} is negative or NaN")
        key = (sname, frozenset(labels))
        if key in seen:
            errs.append(f"line {no}: duplicate series {line.rsplit(' ', 1)[0]!r}")
        seen.add(key)
        if t == "histogram":
            ls = dict(labels)
            le = ls.pop("le", None)
            hk = (fam, frozenset(ls.items()))
            h = hist.setdefault(hk, {"buckets": [], "count": None, "sum": None})
            if sname == fam + "_bucket":
                if le is None:
                    errs.append(f"line {no}: bucket without le: {line!r}")
                else:
                    try:
                        h["buckets"].append((_pf(le), _pf(value), no))
                    except ValueError:
                        errs.append(f"line {no}: invalid le {le!r}")
            elif sname == fam + "_count":
                h["count"] = (_pf(value), no)
            elif sname == fam + "_sum":
                h["sum"] = (_pf(value), no)
            else:
                errs.append(f"line {no}: unexpected histogram sample {sname!r}")
    for (fam, ls_), h in hist.items():
        where = f"{fam}{dict(ls_)}"
        b = h["buckets"]
        if not b:
            errs.append(f"histogram {where}: no buckets")
            continue
        les = [x[0] for x in b]
        if les != sorted(les) or len(set(les)) != len(les):
            errs.append(f"histogram {where}: le values not strictly increasing")
        if les[-1] != math.inf:
            errs.append(f"histogram {where}: no +Inf bucket")
        counts = [x[1] for x in b]
        if any(a > c for a, c in itertools.pairwise(counts)):
            errs.append(f"histogram {where}: buckets are not cumulative")
        if h["count"] is None:
            if not openmetrics:
                errs.append(f"histogram {where}: no _count")
        elif les[-1] == math.inf and counts[-1] != h["count"][0]:
            errs.append(f"histogram {where}: +Inf bucket {counts[-1]} != _count {h['count'][0]}")
        if h["sum"] is None and not openmetrics:
            errs.append(f"histogram {where}: no _sum")
    return errs


def parse_values(text: str) -> Mapping[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return ``{(sample name, labels): value}`` of a text exposition (for tests and tools)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        mt = _SAMPLE_RE.match(line)
        if mt:
            labels = frozenset(
                (k, _unescape(v)) for k, v in _LABEL_RE.findall(mt.group("labels") or "")
            )
            out[(mt.group("name"), labels)] = _pf(mt.group("value"))
    return out
