"""Fixtures of the analyzer tests: the sprawl sample and a tree builder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from perflayer.analyze import Report, analyze

ROOT = Path(__file__).resolve().parents[2]
SPRAWL = ROOT / "examples" / "sprawl"


@pytest.fixture(scope="session")
def sprawl_report() -> Report:
    """Analyze examples/sprawl once per session (serially, so results are deterministic)."""
    return analyze(str(SPRAWL), jobs=1)


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Return a builder writing ``{relative path: content}`` under a fresh directory."""

    def build(files: dict[str, str | bytes]) -> Path:
        for rel, content in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return tmp_path

    return build


def spans(report: Report) -> set[tuple[str, str, str, int, int]]:
    """Return (category, path, symbol, start, end) of every finding."""
    return {(f.category, f.path, f.symbol, f.start_line, f.end_line) for f in report.findings}


__all__ = ["ROOT", "SPRAWL", "os", "spans"]
