"""Shared fixtures: a real redis-server on a free loopback port, a fresh Monitor per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI runs the suite once, and one failure throws the run away: there every property test draws
# the same examples on every run (derandomize), so CI fails only on a change, never on an input
# no earlier run happened to draw. Local runs keep exploring new inputs.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serves_dir(port: int, directory: str) -> bool:
    """Return True when the Redis server on ``port`` answers and works in ``directory``."""
    want = os.path.realpath(directory).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"CONFIG GET dir\r\n")
            reply = b""
            while want not in reply and reply.count(b"\r\n") < 5:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return want in reply
    except OSError:
        return False


def start_redis(exe: str, tmp: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server on a free port and wait (up to 30 s) until it answers.

    The port is free when picked but may be taken before redis-server binds it: then the
    server exits, and another port is tried, so a port race cannot fail a test run.
    """
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            # our --dir in the reply: the server on the port is ours, not a squatter's
            if _serves_dir(port, tmp):
                return proc, port
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    pytest.fail("redis-server did not start on any of 5 free ports within 30 s each")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """Start a real redis-server on a free loopback port; yield its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    tmp = tempfile.mkdtemp(prefix="perflayer-redis-")
    proc, port = start_redis(exe, tmp, "--save", "", "--appendonly", "no")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
