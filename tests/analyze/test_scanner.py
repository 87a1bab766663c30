"""The scanner: discovery rules, skipped files with reasons, parallel == serial."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from perflayer.analyze import analyze
from perflayer.analyze._discover import GitIgnore

from .conftest import SPRAWL, spans

CACHE = """
import time


class TinyCache:
    def __init__(self):
        self._cache = {}

    def get(self, key):
        hit = self._cache.get(key)
        if hit and time.time() - hit[1] < 30:
            return hit[0]

    def set(self, key, value):
        self._cache[key] = (value, time.time())
"""

Tree = Callable[[dict[str, str | bytes]], Path]


def test_virtualenvs_site_packages_and_builds_skipped(make_tree: Tree) -> None:
    """Code under .venv, venv-like folders, site-packages, build and dist is not analyzed."""
    root = make_tree(
        {
            "app/cache.py": CACHE,
            ".venv/lib/python3.11/site-packages/x/cache.py": CACHE,
            "env2/pyvenv.cfg": "home = /usr/bin\n",
            "env2/lib/cache.py": CACHE,
            "vendor/site-packages/y.py": CACHE,
            "build/lib/app/cache.py": CACHE,
            "dist/cache.py": CACHE,
            "pkg.egg-info/cache.py": CACHE,
            "__pycache__/cache.py": CACHE,
        }
    )
    report = analyze(str(root), jobs=1)
    assert report.files_scanned == 1
    assert [f.path for f in report.findings] == ["app/cache.py"]


def test_gitignore_rules(make_tree: Tree) -> None:
    """Root and nested .gitignore files are honoured, with negation and anchoring."""
    root = make_tree(
        {
            ".gitignore": "gen/\n*_generated.py\n/top_only.py\n",
            "a/.gitignore": "local.py\n!keep_generated.py\n",
            "gen/cache.py": CACHE,
            "x_generated.py": CACHE,
            "top_only.py": CACHE,
            "sub/top_only.py": CACHE,
            "a/local.py": CACHE,
            "a/keep_generated.py": CACHE,
            "a/ok.py": CACHE,
        }
    )
    report = analyze(str(root), jobs=1)
    paths = sorted(f.path for f in report.findings)
    assert paths == ["a/keep_generated.py", "a/ok.py", "sub/top_only.py"]


def test_gitignore_matcher() -> None:
    """The matcher follows gitignore globbing: *, **, ?, dir-only and negation."""
    ig = GitIgnore("*.log\n**/tmp/**\nbuild/\n!important.log\ndocs/*.py\n")
    assert ig.ignored("x.log", False) is True
    assert ig.ignored("important.log", False) is False
    assert ig.ignored("a/tmp/b.py", False) is True
    assert ig.ignored("build", True) is True
    assert ig.ignored("build", False) is None
    assert ig.ignored("docs/a.py", False) is True
    assert ig.ignored("docs/sub/a.py", False) is None


def test_bad_files_are_skipped_with_reasons(make_tree: Tree) -> None:
    """Syntax errors, invalid UTF-8, binary and huge files are skipped, never fatal."""
    root = make_tree(
        {
            "ok.py": CACHE,
            "syntax.py": "def broken(:\n    pass\n",
            "latin.py": b"x = '\xe9t\xe9'\n",
            "binary.py": b"\x00\x01\x02ELF",
            "huge.py": "x = 1\n" * 50_000,
            "deep.py": "x = " + "(" * 300 + "1" + ")" * 300 + "\n",
            "nested_ok.py": "x = " + "[" * 150 + "1" + "]" * 150 + "\n",
            "deeper.py": "x = " + "-" * 100_000 + "1\n",
        }
    )
    report = analyze(str(root), jobs=1, max_bytes=200_000)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["syntax.py"].startswith("syntax error at line 1")
    assert reasons["latin.py"].startswith("not UTF-8")
    assert reasons["binary.py"].startswith("binary")
    assert reasons["huge.py"].startswith("huge file")
    assert "deep.py" in reasons
    assert "deeper.py" in reasons
    assert "nested_ok.py" not in reasons
    assert [f.path for f in report.findings] == ["ok.py"]
    assert report.files_scanned == 2


def test_parallel_equals_serial() -> None:
    """Two worker processes give exactly the serial result."""
    serial = analyze(str(SPRAWL), jobs=1)
    from perflayer.analyze import _scan

    old = _scan._INPROCESS_BYTES
    _scan._INPROCESS_BYTES = 0  # force the process pool even on a small tree
    try:
        parallel = analyze(str(SPRAWL), jobs=2)
    finally:
        _scan._INPROCESS_BYTES = old
    assert spans(parallel) == spans(serial)
    assert [r.symbol for r in parallel.rejected] == [r.symbol for r in serial.rejected]


def test_single_file_path(make_tree: Tree) -> None:
    """PATH may be one file."""
    root = make_tree({"one.py": CACHE})
    report = analyze(str(root / "one.py"), jobs=1)
    assert [(f.path, f.symbol) for f in report.findings] == [("one.py", "TinyCache")]


def test_bom_and_crlf(make_tree: Tree) -> None:
    """A UTF-8 BOM and CRLF line ends keep spans exact."""
    root = make_tree({"w.py": b"\xef\xbb\xbf" + CACHE.replace("\n", "\r\n").encode()})
    report = analyze(str(root), jobs=1)
    (f,) = report.findings
    assert (f.start_line, f.end_line) == (5, 15)
