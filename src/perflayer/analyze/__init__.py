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

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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

# why: `perflayer --version`, `demo` and `serve` build the analyze sub-parser from
# perflayer.analyze.cli, which imports this package; loading the analyzer here on first use
# instead keeps ~150 ms of imports off every other command.
_LAZY: dict[str, str] = {
    "CATEGORIES": "perflayer.analyze._model",
    "Consumer": "perflayer.analyze._model",
    "Detector": "perflayer.analyze._detectors",
    "Evidence": "perflayer.analyze._model",
    "Finding": "perflayer.analyze._model",
    "JSON_SCHEMA": "perflayer.analyze._report",
    "Overlap": "perflayer.analyze._model",
    "Phase": "perflayer.analyze._model",
    "Plan": "perflayer.analyze._model",
    "Rejected": "perflayer.analyze._model",
    "Report": "perflayer.analyze._model",
    "Skipped": "perflayer.analyze._model",
    "Verdict": "perflayer.analyze._detectors",
    "analyze": "perflayer.analyze._analysis",
    "detectors": "perflayer.analyze._detectors",
    "load_baseline": "perflayer.analyze._analysis",
    "register_detector": "perflayer.analyze._detectors",
    "render": "perflayer.analyze._report",
    "unregister_detector": "perflayer.analyze._detectors",
    "write_baseline": "perflayer.analyze._analysis",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'perflayer.analyze' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, lazy ones included."""
    return sorted(set(globals()) | set(_LAZY))
