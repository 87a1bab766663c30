"""Find duplicate performance infrastructure in a Python tree and plan its consolidation.

``analyze(path)`` scans every ``.py`` file under ``path`` (honouring ``.gitignore``; skipping
virtualenvs, site-packages and build folders), detects caches, memory tools, response
envelopes/schedulers and monitors by evidence, rejects look-alikes with a reason, measures
exact spans, maps each duplicate to its canonical (perflayer's own part by default), finds
consumers from the import graph and call sites, and returns a :class:`Report` with a phased
plan. ``render(report, "markdown" | "json" | "sarif" | "html" | "table")`` writes it.

>>> from perflayer.analyze import analyze, render
>>> report = analyze("examples/sprawl")  # doctest: +SKIP
>>> print(render(report, "markdown"))  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "JSON_SCHEMA",
    "Consumer",
    "Detector",
    "Evidence",
    "Finding",
    "Overlap",
    "Phase",
    "Plan",
    "Rejected",
    "Report",
    "Skipped",
    "Verdict",
    "analyze",
    "detectors",
    "load_baseline",
    "register_detector",
    "render",
    "unregister_detector",
    "write_baseline",
]

from perflayer.analyze._analysis import analyze, load_baseline, write_baseline
from perflayer.analyze._detectors import (
    Detector,
    Verdict,
    detectors,
    register_detector,
    unregister_detector,
)
from perflayer.analyze._model import (
    CATEGORIES,
    Consumer,
    Evidence,
    Finding,
    Overlap,
    Phase,
    Plan,
    Rejected,
    Report,
    Skipped,
)
from perflayer.analyze._report import JSON_SCHEMA, render
