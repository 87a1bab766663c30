"""`perflayer serve --workload`: one monitor that every part reports into, served over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return str(r.read().decode())


def test_serve_workload_reports_every_part() -> None:
    """The sample service's cache, scheduler and guard all land in one valid /metrics."""
    with subprocess.Popen(
        [sys.executable, "-m", "perflayer.cli", "serve", "--workload", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        _check_served(proc)
    assert proc.returncode == 0


def _check_served(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("perflayer monitor on http://127.0.0.1:"), line
        url = line.split()[3]
        needed = (
            "perflayer_cache_hits_total{",
            "perflayer_response_requests_total{",
            "perflayer_memory_rss_bytes{",
        )
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = _get(url + "/metrics")
            hits = [ln for ln in text.splitlines() if ln.startswith(needed[0])]
            if all(n in text for n in needed) and any(float(h.split()[-1]) > 0 for h in hits):
                break
            time.sleep(0.5)
        for n in needed:
            assert n in text, n
        # the check has a 0.5 s timeout of its own, which a loaded machine can exceed once:
        # ask until it reports ok (bounded), the state the test is about
        deadline = time.monotonic() + 30
        health = json.loads(_get(url + "/health"))
        while not health["checks"]["sample-cache"]["ok"] and time.monotonic() < deadline:
            time.sleep(0.5)
            health = json.loads(_get(url + "/health"))
        assert health["checks"]["sample-cache"]["ok"] is True, health
        alerts = json.loads(_get(url + "/alerts"))["data"]["alerts"]
        assert {a["name"] for a in alerts} == {"SampleCacheHitRateLow", "SampleLatencyHigh"}
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.fail("promtool is not installed: run `make test`, which installs it")
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_rejects_bad_port() -> None:
    """A port out of range is a one-line usage error with exit code 2."""
    out = subprocess.run(
        [sys.executable, "-m", "perflayer.cli", "serve", "--port", "70000"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "70000" in out.stderr and "Traceback" not in out.stderr
