"""``perflayer analyze`` end to end: exit codes, one-line errors, baseline gate, formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from perflayer.cli import main

from .conftest import ROOT, SPRAWL

Tree = Callable[[dict[str, str | bytes]], Path]

CACHE = """import time


class C{n}:
    def __init__(self):
        self._cache = {{}}

    def get(self, key):
        v = self._cache.get(key)
        if v and time.time() - v[1] < 9:
            return v[0]

    def set(self, key, value):
        self._cache[key] = (value, time.time())
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``perflayer`` entry point in a subprocess."""
    exe = Path(sys.executable).with_name("perflayer")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, cwd=str(ROOT)
    )


def test_entry_point_table_exit_0() -> None:
    """The real command prints the table, exits 0, and writes no progress to a pipe."""
    proc = run_cli("analyze", str(SPRAWL))
    assert proc.returncode == 0, proc.stderr
    assert "acme/utils/cache.py" in proc.stdout
    assert "CacheManager" in proc.stdout
    assert "lines removable" in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "/no/such/dir"],
        ["analyze", str(SPRAWL), "--format", "xml"],
        ["analyze", str(SPRAWL), "--jobs", "0"],
        ["analyze", str(SPRAWL), "--target-lines", "many"],
        ["analyze", str(SPRAWL), "--canonical", "cache=nofile.py:X"],
        ["analyze", str(SPRAWL), "--canonical", "nonsense"],
        ["analyze", str(SPRAWL), "--baseline", "/no/such/baseline.json", "--fail-on-new"],
        ["analyze"],
    ],
)
def test_usage_errors_exit_2_one_line(args: list[str]) -> None:
    """Usage and configuration errors exit 2 with one line on stderr and no traceback."""
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("perflayer analyze: ")
    assert "Traceback" not in proc.stderr


def test_baseline_gate(make_tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> None:
    """--baseline records findings; --fail-on-new exits 1 only for new ones."""
    root = make_tree({"a.py": CACHE.format(n=1)})
    base = str(tmp_path_factory.mktemp("b") / "baseline.json")
    assert main(["analyze", str(root), "--baseline", base, "-f", "json", "-o", os.devnull]) == 0
    accepted = json.loads(Path(base).read_text())["accepted"]
    assert accepted == ["cache:a.py:C1"]
    gate = ["analyze", str(root), "--baseline", base, "--fail-on-new", "-o", os.devnull]
    assert main(gate) == 0
    # shifting lines does not make a finding new
    (root / "a.py").write_text("# moved\n\n" + CACHE.format(n=1))
    assert main(gate) == 0
    (root / "b.py").write_text(CACHE.format(n=2))
    assert main(gate) == 1
    assert main(["analyze", str(root), "--fail-on-new", "-o", os.devnull]) == 1
    assert main(["analyze", str(root), "-o", os.devnull]) == 0


def test_corrupt_baseline_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline that is not JSON is a configuration error."""
    bad = tmp_path / "b.json"
    bad.write_text("{nope")
    code = main(["analyze", str(SPRAWL), "--baseline", str(bad), "--fail-on-new"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not readable JSON" in err[0]


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "sarif", "html"])
def test_every_format_to_file(fmt: str, tmp_path: Path) -> None:
    """Each format writes a non-empty report with the findings."""
    out = tmp_path / f"report.{fmt}"
    assert main(["analyze", str(SPRAWL), "-f", fmt, "-o", str(out), "-j", "1"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "MCPResponse" in text
    if fmt in ("json", "sarif"):
        json.loads(text)


def test_unwritable_output_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An output path that cannot be written is a one-line error."""
    code = main(["analyze", str(SPRAWL), "-o", "/no/such/dir/report.txt"])
    assert code == 2
    assert "cannot write" in capsys.readouterr().err
