"""Fuzzing: random bytes, invalid UTF-8, mutated real sources, deep nesting: never a crash."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perflayer.analyze import analyze, render
from perflayer.analyze._extract import Options, extract_file
from perflayer.analyze._model import Skipped

from .conftest import SPRAWL

SOURCES = [p.read_text(encoding="utf-8") for p in sorted(SPRAWL.rglob("*.py"))]


def mutate(rng: random.Random, text: str) -> bytes:
    """Return a random mutation of ``text``: dropped lines, byte flips, cuts or splices."""
    lines = text.splitlines(keepends=True)
    op = rng.randrange(6)
    if op == 0 and lines:  # drop lines: often still valid Python with odd structure
        for _ in range(rng.randint(1, 5)):
            if lines:
                del lines[rng.randrange(len(lines))]
        return "".join(lines).encode()
    if op == 1:  # truncate anywhere
        return text.encode()[: rng.randrange(len(text) + 1)]
    if op == 2:  # flip bytes, including into invalid UTF-8
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if op == 3:  # dedent or indent a block
        out = [
            ln[4:] if rng.random() < 0.3 else "    " + ln if rng.random() < 0.1 else ln
            for ln in lines
        ]
        return "".join(out).encode()
    if op == 4:  # splice two sources
        other = rng.choice(SOURCES)
        return (text[: len(text) // 2] + other[len(other) // 2 :]).encode()
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))


def pathological(i: int) -> bytes:
    """Return one of the shapes that break naive parsers."""
    kind = i % 6
    if kind == 0:
        return ("x = " + "(" * 1000 + ")" * 1000 + "\n").encode()
    if kind == 1:
        return (
            "def f():\n"
            + "".join("    " * d + "if x:\n" for d in range(1, 120))
            + "    " * 120
            + "pass\n"
        ).encode()
    if kind == 2:
        return ("x = " + " + ".join(["1"] * 20000) + "\n").encode()
    if kind == 3:
        return b"\xff\xfe" + "class Cache:\n    pass\n".encode("utf-16-le")
    if kind == 4:
        return (
            "class A:\n"
            + "".join(f"    def m{j}(self): return self._cache[{j}]\n" for j in range(2000))
        ).encode()
    return ("x = [" + "[" * 180 + "]" * 180 + "]\n").encode()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.binary(max_size=2000)
    | st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass"))
)
def test_extract_never_raises(data: bytes, tmp_path: Path) -> None:
    """Any bytes become a result or a skip with a reason."""
    path = tmp_path / "f.py"
    path.write_bytes(data)
    got = extract_file(str(path), "f.py", Options())
    if isinstance(got, Skipped):
        assert got.reason


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_sources_never_raise(seed: int, tmp_path: Path) -> None:
    """Mutations of the sample's real sources never crash extraction."""
    rng = random.Random(seed)
    path = tmp_path / "m.py"
    path.write_bytes(mutate(rng, rng.choice(SOURCES)))
    extract_file(str(path), "m.py", Options())


def build_tree(root: Path, n: int, seed: int) -> None:
    """Write ``n`` fuzzed files into ``root``, spread over folders."""
    rng = random.Random(seed)
    for i in range(n):
        folder = root / f"d{i % 50}"
        folder.mkdir(exist_ok=True)
        if i % 97 == 0:
            data = pathological(i)
        else:
            # A random window of a real source keeps files small (and often still valid).
            lines = rng.choice(SOURCES).splitlines(keepends=True)
            start = rng.randrange(len(lines))
            data = mutate(rng, "".join(lines[start : start + rng.randint(1, 40)]))
        (folder / f"f{i}.py").write_bytes(data)


def test_fuzzed_tree_no_crash(tmp_path: Path) -> None:
    """A tree of 1,500 fuzzed files analyzes in parallel with every file accounted for."""
    build_tree(tmp_path, 1500, seed=7)
    report = analyze(str(tmp_path), jobs=2)
    assert report.files_scanned + len(report.skipped) == 1500
    assert all(s.reason for s in report.skipped)
    for fmt in ("json", "sarif", "markdown", "html", "table"):
        assert render(report, fmt)


@pytest.mark.slow
def test_ten_thousand_fuzzed_files(tmp_path: Path) -> None:
    """10,000 fuzzed, binary or invalid files: 0 crashes."""
    build_tree(tmp_path, 10_000, seed=11)
    report = analyze(str(tmp_path), jobs=2)
    assert report.files_scanned + len(report.skipped) == 10_000
