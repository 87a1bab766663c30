"""Value types of the analyzer: evidence, findings, rejections, skipped files and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CATEGORIES",
    "Consumer",
    "Evidence",
    "Finding",
    "Overlap",
    "Phase",
    "Plan",
    "Rejected",
    "Report",
    "Skipped",
]

#: The built-in categories, in report order (a registered detector may add more).
CATEGORIES: tuple[str, ...] = ("cache", "memory", "response", "monitoring")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observed fact that supports a finding: what it is, where, and its weight."""

    kind: str
    detail: str
    line: int
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "detail": self.detail, "line": self.line, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Consumer:
    """A place that uses a finding: an import, a call site, a subclass or a test."""

    path: str
    line: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"path": self.path, "line": self.line, "kind": self.kind}


@dataclass(slots=True)
class Overlap:
    """Capabilities a finding shares with its canonical, the ones it would lose, and likeness."""

    capabilities: list[str]
    canonical_capabilities: list[str]
    shared: list[str]
    missing: list[str]
    share: float
    structural_similarity: float
    most_similar: str | None
    api_mapping: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "capabilities": list(self.capabilities),
            "canonical_capabilities": list(self.canonical_capabilities),
            "shared": list(self.shared),
            "missing": list(self.missing),
            "share": round(self.share, 3),
            "structural_similarity": round(self.structural_similarity, 3),
            "most_similar": self.most_similar,
            "api_mapping": dict(self.api_mapping),
        }


@dataclass(slots=True)
class Finding:
    """One implementation of a performance role: a duplicate, or the canonical one kept."""

    category: str
    path: str
    symbol: str
    kind: str
    start_line: int
    end_line: int
    confidence: float
    evidence: list[Evidence]
    capabilities: list[str]
    role: str = "duplicate"
    canonical: str = ""
    overlap: Overlap | None = None
    consumers: list[Consumer] = field(default_factory=list)
    tested: bool = False
    new: bool = True
    body_hash: str = ""
    shape: dict[str, int] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    part: int = 0
    fields: list[str] = field(default_factory=list)

    @property
    def lines(self) -> int:
        """Return the number of lines of the span, ``end_line - start_line + 1``."""
        return self.end_line - self.start_line + 1

    @property
    def fingerprint(self) -> str:
        """Return the baseline key: category, path and symbol (stable across line shifts)."""
        tail = f"#{self.part}" if self.part else ""
        return f"{self.category}:{self.path}:{self.symbol}{tail}"

    @property
    def ref(self) -> str:
        """Return ``path:Symbol``, the form ``--canonical`` takes."""
        return f"{self.path}:{self.symbol}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form documented in docs/analyze-json.md."""
        return {
            "category": self.category,
            "path": self.path,
            "symbol": self.symbol,
            "kind": self.kind,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "lines": self.lines,
            "role": self.role,
            "canonical": self.canonical,
            "overlap": self.overlap.to_dict() if self.overlap is not None else None,
            "confidence": round(self.confidence, 3),
            "evidence": [e.to_dict() for e in self.evidence],
            "consumers": [c.to_dict() for c in self.consumers],
            "tested": self.tested,
            "new": self.new,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """A tempting candidate that is not a duplicate, with the reason it was rejected."""

    category: str
    path: str
    symbol: str
    start_line: int
    end_line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "category": self.category,
            "path": self.path,
            "symbol": self.symbol,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not analyzed, and why (syntax error, not UTF-8, binary, huge)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"path": self.path, "reason": self.reason}


@dataclass(slots=True)
class Phase:
    """One step of the consolidation plan: a category's duplicates and how to remove them."""

    number: int
    category: str
    title: str
    canonical: str
    findings: list[str]
    files: list[str]
    lines: int
    risk: str
    risk_score: float
    steps: list[str]
    cumulative_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "number": self.number,
            "category": self.category,
            "title": self.title,
            "canonical": self.canonical,
            "findings": list(self.findings),
            "files": list(self.files),
            "lines": self.lines,
            "cumulative_lines": self.cumulative_lines,
            "risk": self.risk,
            "risk_score": round(self.risk_score, 2),
            "steps": list(self.steps),
        }


@dataclass(slots=True)
class Plan:
    """The phased consolidation plan and its totals against the target."""

    phases: list[Phase]
    total_lines: int
    target_lines: int | None

    @property
    def target_share(self) -> float | None:
        """Return removable lines as a fraction of the target, or None without a target."""
        if not self.target_lines:
            return None
        return self.total_lines / self.target_lines

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        share = self.target_share
        return {
            "phases": [p.to_dict() for p in self.phases],
            "total_lines": self.total_lines,
            "target_lines": self.target_lines,
            "target_share": None if share is None else round(share, 3),
        }


@dataclass(slots=True)
class Report:
    """Everything one run of the analyzer found, ready for the report writers."""

    root: str
    findings: list[Finding]
    rejected: list[Rejected]
    skipped: list[Skipped]
    files_scanned: int
    lines_scanned: int
    plan: Plan
    canonicals: dict[str, str]
    categories: list[str]
    elapsed: float = 0.0
    baseline: str | None = None

    def by_category(self, category: str) -> list[Finding]:
        """Return the findings of ``category`` in report order."""
        return [f for f in self.findings if f.category == category]

    @property
    def duplicates(self) -> list[Finding]:
        """Return the findings whose role is ``duplicate``."""
        return [f for f in self.findings if f.role == "duplicate"]

    @property
    def new_findings(self) -> list[Finding]:
        """Return the duplicates not in the baseline."""
        return [f for f in self.findings if f.role == "duplicate" and f.new]
