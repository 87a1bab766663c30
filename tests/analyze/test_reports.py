"""Report formats: JSON against its schema, SARIF 2.1.0 structure, HTML, Markdown."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from perflayer.analyze import JSON_SCHEMA, Report, render


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Check ``value`` against the JSON-Schema subset the report schema uses."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        py = {
            "object": dict,
            "array": list,
            "string": str,
            "boolean": bool,
            "null": type(None),
            "integer": int,
            "number": (int, float),
        }
        ok = any(
            isinstance(value, py[t])
            and not (t in ("integer", "number") and isinstance(value, bool))
            for t in allowed
        )
        if not ok:
            return [f"{path}: {type(value).__name__} is not {allowed}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += validate(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


def test_validator_rejects_bad_documents() -> None:
    """The schema check itself catches a missing field and a wrong type."""
    assert validate({"schema_version": 1}, JSON_SCHEMA)
    assert validate({"a": 1}, {"type": "object", "properties": {"a": {"type": "string"}}})


def test_json_matches_schema(sprawl_report: Report) -> None:
    """The JSON report validates against JSON_SCHEMA and carries the issue's fields."""
    data = json.loads(render(sprawl_report, "json"))
    assert validate(data, JSON_SCHEMA) == []
    f = data["findings"][0]
    for key in (
        "category",
        "path",
        "symbol",
        "start_line",
        "end_line",
        "lines",
        "role",
        "canonical",
        "overlap",
        "confidence",
        "evidence",
        "consumers",
    ):
        assert key in f
    assert data["summary"]["duplicates"] == len(sprawl_report.duplicates)
    assert data["plan"]["total_lines"] == sprawl_report.plan.total_lines
    assert all(not p.startswith("/") for p in (x["path"] for x in data["findings"]))


def test_json_schema_documented() -> None:
    """docs/analyze-json.md documents every top-level and finding field of the schema."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "analyze-json.md").read_text()
    for key in JSON_SCHEMA["properties"]:
        assert f"`{key}`" in doc
    for key in JSON_SCHEMA["properties"]["findings"]["items"]["properties"]:
        assert f"`{key}`" in doc


def test_sarif_structure(sprawl_report: Report) -> None:
    """The SARIF log has version 2.1.0, rules, and one located result per duplicate."""
    log = json.loads(render(sprawl_report, "sarif"))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"].startswith("file://")
    assert len(run["results"]) == len(sprawl_report.duplicates)
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("none", "note", "warning", "error")
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uriBaseId"] == "SRCROOT"
        region = loc["region"]
        assert 1 <= region["startLine"] <= region["endLine"]
        assert res["message"]["text"]
        assert res["partialFingerprints"]["perflayer/v1"]


def test_markdown_has_the_original_sections(sprawl_report: Report) -> None:
    """Markdown follows the original analysis: summary, KEEP/ELIMINATE trees, phases, metrics."""
    md = render(sprawl_report, "markdown")
    for heading in (
        "## Executive summary",
        "## Detailed duplication analysis",
        "## Consolidation strategy",
        "## Rejected look-alikes",
        "## Success metrics",
    ):
        assert heading in md
    assert "- ELIMINATE" in md and "- KEEP" in md
    assert "acme/utils/cache.py:CacheManager (L22-177, 156 lines) - ELIMINATE" in md
    assert re.search(r"Phase 1: .+ \(risk (LOW|MEDIUM|HIGH)", md)
    assert "`CacheManager.get` -> `perflayer.Cache.get`" in md


def test_html_is_self_contained(sprawl_report: Report) -> None:
    """The HTML report has an inline SVG chart and loads nothing from outside."""
    page = render(sprawl_report, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and page.count('class="bar"') == 4
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert "<script" not in page


def test_unknown_format(sprawl_report: Report) -> None:
    """An unknown format names itself in the error."""
    with pytest.raises(ValueError, match="'pdf'"):
        render(sprawl_report, "pdf")


@pytest.mark.browser
def test_html_renders_in_chromium(sprawl_report: Report, tmp_path: Path) -> None:
    """Real chromium draws one bar per category and the findings table."""
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(render(sprawl_report, "html"), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            bars = page.locator("svg rect.bar")
            assert bars.count() == 4
            widths = [float(bars.nth(i).get_attribute("width") or 0) for i in range(4)]
            assert all(w > 0 for w in widths)
            box = bars.first.bounding_box()
            assert box is not None and box["width"] > 0
            rows = page.locator("#findings tbody tr").count()
            assert rows == len(sprawl_report.findings)
        finally:
            browser.close()
