"""``perflayer demo``: trace loading, the cache-aside replay and its CLI errors."""

from __future__ import annotations

import argparse
import gzip
import lzma
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from perflayer._demo import find_traces_dir, load_trace, replay, run_demo


def test_load_text_and_binary_traces(tmp_path: Path) -> None:
    """Text traces skip blank and '*' lines; .xz traces are big-endian int32."""
    txt = tmp_path / "t.trace.gz"
    with gzip.open(txt, "wt") as f:
        f.write("1\n2\n\n*\n3\n1\n")
    assert load_trace(txt) == [1, 2, 3, 1]
    binf = tmp_path / "b.trace.xz"
    with lzma.open(binf, "wb") as f:
        f.write(struct.pack(">4i", 7, -1, 7, 2**31 - 1))
    assert load_trace(binf) == [7, -1, 7, 2**31 - 1]


def test_replay_counts_hits_like_a_memo() -> None:
    """A loop that fits in the cache misses once per key and hits afterwards."""
    keys = list(range(50)) * 4
    res = replay(keys, size=100)
    assert res["hit_ratio"] == pytest.approx(150 / 200)
    assert res["stats"]["hits"] == 150 and res["stats"]["misses"] == 50
    assert res["get_p99_ns"] >= res["get_p50_ns"] >= 0


def test_shared_traces_found() -> None:
    """The repository's sibling shared/traces folder is found from the package."""
    folder = find_traces_dir()
    assert folder is not None and (folder / "README.md").exists()


def test_run_demo_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """run_demo on a given trace prints the hit ratio and latencies and returns 0."""
    trace = tmp_path / "x.trace.gz"
    with gzip.open(trace, "wt") as f:
        f.write("\n".join(str(i % 30) for i in range(600)))
    assert run_demo(argparse.Namespace(trace=str(trace), size=10)) == 0
    out = capsys.readouterr().out
    assert "hit ratio" in out and "get latency" in out and "x.trace.gz" in out


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    """A missing trace or a bad size exits 2 with one line naming the value."""
    for argv, needle in (
        (["demo", "--trace", str(tmp_path / "nope.gz")], "nope.gz"),
        (["demo", "--size", "0"], "--size"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "perflayer.cli", *argv], capture_output=True, text=True
        )
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0]
