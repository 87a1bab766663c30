"""The sprawl sample: every planted duplicate with its exact span, and no decoy flagged."""

from __future__ import annotations

import shutil
from pathlib import Path

from perflayer.analyze import Report, analyze

from .conftest import SPRAWL, spans

# Spans include decorators (``@dataclass`` lines); ``lines == end - start + 1``.
EXPECTED = {
    # cache: a multi-tier manager, an LRU manager, two textual copies of a small TTL cache,
    # and inline caches inside bigger classes (methods and a region of a method).
    ("cache", "acme/integrations/jira_client.py", "JiraClient._cache_lookup", 37, 43),
    ("cache", "acme/integrations/jira_client.py", "JiraClient._request", 53, 54),
    ("cache", "acme/performance/cache_manager.py", "LRUCacheManager", 20, 81),
    ("cache", "acme/personas/advanced_personality_engine.py", "CacheManager", 13, 35),
    ("cache", "acme/personas/personality_processor.py", "CacheManager", 14, 36),
    ("cache", "acme/personas/personality_processor.py", "PersonalityProcessor._get_cached", 65, 73),
    (
        "cache",
        "acme/personas/personality_processor.py",
        "PersonalityProcessor._store_cached",
        75,
        76,
    ),
    ("cache", "acme/utils/cache.py", "CacheManager", 22, 177),
    # memory: psutil/gc/streaming manager, an object pool, tracemalloc, a copied helper.
    ("memory", "acme/performance/memory_optimizer.py", "ObjectPool", 13, 41),
    ("memory", "acme/performance/memory_optimizer.py", "MemoryOptimizer", 44, 65),
    ("memory", "acme/services/report_service.py", "get_memory_usage", 25, 28),
    ("memory", "acme/utils/memory.py", "MemoryManager", 15, 104),
    ("memory", "acme/utils/timing.py", "get_memory_usage", 42, 45),
    # response: envelopes (dataclass, NamedTuple, plain class, dict builders) and a scheduler.
    ("response", "acme/integrations/http_client.py", "ApiResponse", 13, 26),
    ("response", "acme/integrations/http_client.py", "success_response", 29, 31),
    ("response", "acme/integrations/http_client.py", "error_response", 34, 36),
    ("response", "acme/mcp/conversational_data_manager.py", "DataResponse", 9, 15),
    ("response", "acme/mcp/conversational_interaction_manager.py", "InteractionResponse", 10, 23),
    ("response", "acme/mcp/mcp_integration.py", "MCPResponse", 14, 31),
    ("response", "acme/mcp/unified_bridge.py", "MCPResponse", 13, 30),
    ("response", "acme/performance/response_optimizer.py", "ResponseOptimizer", 22, 67),
    # monitoring: monitors, a benchmark, a metrics dataclass, a running-average helper with
    # inline counters, a timing decorator and one percentile function copied into 3 files.
    ("monitoring", "acme/benchmark.py", "PerformanceBenchmark", 10, 38),
    ("monitoring", "acme/context/realtime_monitor.py", "RealTimeMonitor", 16, 80),
    ("monitoring", "acme/core/hybrid_compatibility.py", "BridgePerformanceMetrics", 10, 28),
    ("monitoring", "acme/performance/performance_monitor.py", "PerformanceMonitor", 26, 98),
    (
        "monitoring",
        "acme/personas/advanced_personality_engine.py",
        "AdvancedPersonalityEngine.generate",
        65,
        65,
    ),
    (
        "monitoring",
        "acme/personas/advanced_personality_engine.py",
        "AdvancedPersonalityEngine.generate",
        69,
        69,
    ),
    (
        "monitoring",
        "acme/personas/advanced_personality_engine.py",
        "AdvancedPersonalityEngine._update_metrics",
        77,
        80,
    ),
    ("monitoring", "acme/services/report_service.py", "calculate_percentile", 15, 22),
    ("monitoring", "acme/services/search_service.py", "calculate_percentile", 14, 21),
    ("monitoring", "acme/utils/stats_helpers.py", "calculate_percentile", 8, 15),
    ("monitoring", "acme/utils/timing.py", "timed", 17, 34),
}

DECOYS = {
    ("acme/context/strategic_memory.py", "StrategicMemoryManager"),
    ("acme/context/workspace_monitor.py", "WorkspaceMonitor"),
    ("acme/analytics/business_metrics.py", "BusinessMetricsCalculator"),
    ("acme/analytics/team_velocity.py", "TeamVelocityStats"),
    ("acme/core/interfaces.py", "CacheBackend"),
    ("acme/core/interfaces.py", "MetricsSink"),
    ("acme/core/lightweight_fallback.py", "FallbackResponse"),
    ("acme/core/lightweight_fallback.py", "Redis"),
}


def test_exact_findings(sprawl_report: Report) -> None:
    """Every planted duplicate is found with its exact span, and nothing else is."""
    got = spans(sprawl_report)
    assert got - EXPECTED == set(), "unexpected findings"
    assert EXPECTED - got == set(), "missed duplicates"


def test_lines_is_span_length(sprawl_report: Report) -> None:
    """``lines`` equals end - start + 1 and matches the file's own lines."""
    for f in sprawl_report.findings:
        assert f.lines == f.end_line - f.start_line + 1
        text = (SPRAWL / f.path).read_text(encoding="utf-8").splitlines()
        assert f.end_line <= len(text)
        assert text[f.start_line - 1].strip(), f"{f.ref} starts on a blank line"


def test_decorator_included_in_span(sprawl_report: Report) -> None:
    """A decorated class starts at its first decorator."""
    f = next(x for x in sprawl_report.findings if x.symbol == "ApiResponse")
    first = (SPRAWL / f.path).read_text(encoding="utf-8").splitlines()[f.start_line - 1]
    assert first.strip() == "@dataclass"


def test_no_decoy_flagged(sprawl_report: Report) -> None:
    """No decoy is a finding."""
    flagged = {(f.path, f.symbol.split(".")[0]) for f in sprawl_report.findings}
    assert flagged & DECOYS == set()


def test_decoys_rejected_with_reasons(sprawl_report: Report) -> None:
    """The tempting look-alikes are listed as rejected, each with its specific reason."""
    reasons = {(r.path, r.symbol): r.reason for r in sprawl_report.rejected}
    assert (
        "conversation" in reasons[("acme/context/strategic_memory.py", "StrategicMemoryManager")]
        or "domain" in reasons[("acme/context/strategic_memory.py", "StrategicMemoryManager")]
    )
    assert (
        "file-system watcher" in reasons[("acme/context/workspace_monitor.py", "WorkspaceMonitor")]
    )
    assert (
        "business metrics"
        in reasons[("acme/analytics/business_metrics.py", "BusinessMetricsCalculator")]
    )
    assert "Protocol" in reasons[("acme/core/interfaces.py", "CacheBackend")]
    assert "Protocol" in reasons[("acme/core/interfaces.py", "MetricsSink")]
    assert "import-fallback" in reasons[("acme/core/lightweight_fallback.py", "FallbackResponse")]


_GENERATED_CACHE = """
import time


class GeneratedCache:
    def __init__(self):
        self._cache = {}

    def get(self, key):
        entry = self._cache.get(key)
        if entry and time.time() - entry[1] < 60:
            return entry[0]
        return None

    def set(self, key, value):
        self._cache[key] = (value, time.time())
"""


def test_gitignored_folder_not_scanned(tmp_path: Path) -> None:
    """generated/ is listed in the sample's .gitignore and never analyzed, cache or not."""
    # The folder is git-ignored, so a clone does not have it: plant it in a copy of the sample.
    tree = tmp_path / "sprawl"
    shutil.copytree(SPRAWL, tree, ignore=shutil.ignore_patterns("generated", "__pycache__"))
    (tree / "generated").mkdir()
    (tree / "generated" / "cache_gen.py").write_text(_GENERATED_CACHE, encoding="utf-8")
    report = analyze(str(tree), jobs=1)
    assert not any(f.path.startswith("generated/") for f in report.findings)
    assert report.files_scanned == sum(1 for p in tree.rglob("*.py") if "generated" not in p.parts)
    # The same file outside the ignored folder is a cache finding: the exclusion is what hid it.
    (tree / "acme" / "cache_gen.py").write_text(_GENERATED_CACHE, encoding="utf-8")
    again = analyze(str(tree), jobs=1)
    assert any(f.path == "acme/cache_gen.py" for f in again.findings)


def test_all_four_categories_planted(sprawl_report: Report) -> None:
    """The sample holds duplicates of every category, textual and functional."""
    cats = {f.category for f in sprawl_report.findings}
    assert cats == {"cache", "memory", "response", "monitoring"}
    by_ref = {f.ref: f for f in sprawl_report.findings}
    a = by_ref["acme/mcp/mcp_integration.py:MCPResponse"]
    b = by_ref["acme/mcp/unified_bridge.py:MCPResponse"]
    assert a.body_hash == b.body_hash  # textual copy
    assert a.overlap is not None and a.overlap.structural_similarity == 1.0
    c = by_ref["acme/utils/cache.py:CacheManager"]
    d = by_ref["acme/performance/cache_manager.py:LRUCacheManager"]
    assert c.body_hash != d.body_hash  # functional duplicate: different code, same job


def test_copied_function_evidence(sprawl_report: Report) -> None:
    """A helper copied into three files is flagged with the copy evidence."""
    copies = [f for f in sprawl_report.findings if f.symbol == "calculate_percentile"]
    assert len(copies) == 3
    for f in copies:
        assert any(e.kind == "copy" for e in f.evidence)


def test_consumers_from_imports_and_calls(sprawl_report: Report) -> None:
    """Consumers come from the import graph (absolute and module-alias imports) and calls."""
    cm = next(f for f in sprawl_report.findings if f.ref == "acme/utils/cache.py:CacheManager")
    paths = {c.path for c in cm.consumers}
    assert "acme/services/search_service.py" in paths
    assert "tests/test_cache.py" in paths
    assert cm.tested
    kinds = {(c.path, c.kind) for c in cm.consumers}
    assert ("acme/services/search_service.py", "import") in kinds
    assert ("acme/services/search_service.py", "call") in kinds
    lru = next(f for f in sprawl_report.findings if f.symbol == "LRUCacheManager")
    assert {c.path for c in lru.consumers} == {"acme/app.py"}
    assert not lru.tested


def test_canonical_is_perflayer_with_api_mapping(sprawl_report: Report) -> None:
    """By default every finding is a duplicate of perflayer's part, with an API mapping."""
    assert sprawl_report.canonicals["cache"] == "perflayer.Cache"
    cm = next(f for f in sprawl_report.findings if f.ref == "acme/utils/cache.py:CacheManager")
    assert cm.role == "duplicate" and cm.canonical == "perflayer.Cache"
    assert cm.overlap is not None
    assert cm.overlap.api_mapping["CacheManager.get"] == "perflayer.Cache.get"
    assert cm.overlap.api_mapping["CacheManager.set"] == "perflayer.Cache.set"
    assert "ttl" in cm.overlap.shared


def test_plan_phases_cover_every_duplicate(sprawl_report: Report) -> None:
    """The plan has one phase per category and its totals add up to the duplicates' lines."""
    plan = sprawl_report.plan
    assert {p.category for p in plan.phases} == {"cache", "memory", "response", "monitoring"}
    assert plan.total_lines == sum(f.lines for f in sprawl_report.duplicates)
    assert plan.phases[-1].cumulative_lines == plan.total_lines
    for p in plan.phases:
        assert p.steps and p.files and p.risk in ("LOW", "MEDIUM", "HIGH")
