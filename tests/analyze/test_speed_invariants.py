"""Invariants the speed work relies on: no reference cycles, output independent of hashing."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.analyze._extract import (
    _IMPORT_LINE,
    Options,
    _import_lines,
    _line_of,
    _newlines,
    extract_file,
)
from perflayer.analyze._report import _dumps

from .conftest import SPRAWL


def test_extraction_leaves_no_reference_cycles() -> None:
    """Per-file analysis frees everything by refcounting (the scan pauses the cyclic collector)."""
    files = sorted(SPRAWL.rglob("*.py"))
    assert files
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        for path in files:
            extract_file(str(path), path.relative_to(SPRAWL).as_posix(), Options())
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


def _json_report(seed: str, out: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    code = (
        "import sys; from perflayer.analyze import analyze, render; "
        "sys.stdout.write(render(analyze(sys.argv[1], jobs=1), 'json'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(SPRAWL)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, object] = json.loads(proc.stdout)
    summary = data["summary"]
    assert isinstance(summary, dict)
    summary.pop("elapsed_seconds")
    out.write_text(proc.stdout, encoding="utf-8")
    return data


def test_report_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    """Two interpreters with different string hashing give the same report, evidence included."""
    first = _json_report("1", tmp_path / "a.json")
    second = _json_report("4", tmp_path / "b.json")
    assert first == second


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=2)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_json_values)
def test_fast_indented_json_matches_json_module(value: object) -> None:
    """The report writer's indented JSON is byte for byte ``json.dumps(indent=2)``."""
    assert _dumps(value, 1) == json.dumps(value, indent=2) + "\n"


_IMPORT_TEXTS = [
    "import os\nfrom a.b import (c,\n    d)\n",
    "x = 1  # import y\n    import z\n\tfrom .m import\tn\n",
    "from   import import x\nimport\\\n  y\nimportlib.reload(m)\nreimport = 2\n",
    "from é.ü import y\nimport",
    "def f():\n    from . import g\n    return g\n",
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["import", "from", " ", "\t", "\n", "a.b", "(", "\\", "x", "é"])))
def test_import_line_finder_matches_the_regex(words: list[str]) -> None:
    """The str.find-based import-line finder agrees with the anchored regex it replaces."""
    for text in [*_IMPORT_TEXTS, "".join(words)]:
        offsets = _newlines(text)
        expected = sorted({_line_of(offsets, m.start()) for m in _IMPORT_LINE.finditer(text)})
        assert _import_lines(text, offsets) == expected
