"""Coherent near-cache across two real processes sharing one real redis-server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from perflayer.cache import Cache
from perflayer.cache._disk import DiskTier
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiered import TieredCache

# Socket timeout of the tiers that talk to the healthy test server: the 0.25 s default is a
# latency bound a loaded 2-core machine can exceed once, turning a set into a counted failure.
# The partition test keeps the default: its detection time is computed from it.
TIMEOUT = 2.0

# The other process: a TieredCache(memory, redis) driven by JSON lines on stdin.
CHILD = r"""
import json, sys
from perflayer.cache import Cache
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiered import TieredCache
url, prefix = sys.argv[1], sys.argv[2]
red = RedisTier(url, prefix=prefix, timeout=2.0)  # TIMEOUT, as here
tc = TieredCache([Cache(metrics=False), red], metrics=False)
mem = tc.tiers[0]
print(json.dumps({"listener": red.listener_name, "subscribed": red.subscribed}), flush=True)
for line in sys.stdin:
    op, key, value = json.loads(line)
    if op == "get":
        out = tc.get(key)
    elif op == "near":
        out = mem.cache.get(key)
    elif op == "set":
        out = tc.set(key, value)
    elif op == "stats":
        st = tc.stats()
        out = [st["invalidations"], st["flushes"], red.subscribed]
    else:
        break
    print(json.dumps(out), flush=True)
tc.close()
"""


class Child:
    """A TieredCache in another Python process."""

    def __init__(self, url: str, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.hello = json.loads(self.proc.stdout.readline())

    def __call__(self, op: str, key: str = "", value: Any = None) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([op, key, value]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self("quit")
        except (BrokenPipeError, json.JSONDecodeError, ValueError):
            pass
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def eventually(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def publish(here: TieredCache, child: Child, key: str, value: Any) -> None:
    """Set ``key`` here and wait until the child has received the invalidation for it.

    Without the wait, the child's next read could race the message and (correctly) skip
    promoting the value it read, which would make the near-tier assertions flaky.
    """
    before = child("stats")[0]
    assert here.set(key, value) is True
    eventually(lambda: child("stats")[0] > before, f"the child received the message for {key!r}")


@pytest.fixture(scope="module")
def pair(redis_server: str) -> Iterator[tuple[TieredCache, Child]]:
    """Return a TieredCache here and one in a child process (one per module: spawning is slow).

    Every test uses its own keys; counters are compared before and after, never absolutely.
    """
    prefix = f"coh-{uuid.uuid4().hex[:10]}:"
    here = TieredCache(
        [Cache(metrics=False), RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT)],
        metrics=False,
    )
    child = Child(redis_server, prefix)
    try:
        # listen() waits only ~1 s for the first subscription; on a loaded machine it can take
        # longer, and a message published before it is lost by design: wait for both here.
        red = here.tiers[-1]
        assert isinstance(red, RedisTier)
        eventually(lambda: red.subscribed, "this process subscribed to the channel")
        eventually(lambda: child("stats")[2] is True, "the child subscribed to the channel")
        yield here, child
    finally:
        child.close()
        here.close()
        client = redis.Redis.from_url(redis_server)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_write_elsewhere_drops_the_near_copy(pair: tuple[TieredCache, Child]) -> None:
    """A value cached in the child's memory is dropped when this process overwrites it."""
    here, child = pair
    assert child.hello["listener"].startswith("perflayer-invalidate-")
    publish(here, child, "w", "v1")
    assert child("get", "w") == "v1"
    assert child("near", "w") == "v1"  # promoted into the child's memory tier
    here.set("w", "v2")
    eventually(lambda: child("near", "w") is None, "child's memory dropped the key on a remote set")
    assert child("get", "w") == "v2"


def test_delete_and_clear_elsewhere_reach_the_near_cache(pair: tuple[TieredCache, Child]) -> None:
    """A remote delete drops one key; a remote clear flushes the whole near tier."""
    here, child = pair
    flushes = child("stats")[1]
    publish(here, child, "del-a", 1)
    publish(here, child, "del-b", 2)
    assert child("get", "del-a") == 1 and child("get", "del-b") == 2
    here.delete("del-a")
    eventually(lambda: child("near", "del-a") is None, "child dropped a key on a remote delete")
    assert child("get", "del-a") is None
    assert child("near", "del-b") == 2
    here.clear()
    eventually(lambda: child("near", "del-b") is None, "child flushed after a remote clear")
    assert child("stats")[1] == flushes + 1


def test_child_writes_invalidate_us(pair: tuple[TieredCache, Child]) -> None:
    """Coherence runs both ways: the child's write drops our near copy; our own writes do not."""
    here, child = pair
    before = here.stats()["invalidations"]
    here.set("both", "ours")
    mem = here.tiers[0]
    assert mem.get("both") == "ours"
    assert child("set", "mark", 1) is True  # a later message from the child, as a fence
    eventually(lambda: here.stats()["invalidations"] > before, "the child's message arrived")
    assert here.stats()["invalidations"] == before + 1  # our own message was not counted
    assert child("set", "both", "theirs") is True
    eventually(lambda: mem.get("both") is None, "our memory dropped the key on the child's set")
    assert here.get("both") == "theirs"


def test_dropped_channel_flushes_the_near_cache_on_reconnect(
    pair: tuple[TieredCache, Child], redis_server: str
) -> None:
    """When Redis kills the subscriber connection, the child reconnects and flushes its memory."""
    here, child = pair
    flushes = child("stats")[1]
    publish(here, child, "re", "v1")
    assert child("get", "re") == "v1" and child("near", "re") == "v1"
    admin = redis.Redis.from_url(redis_server, decode_responses=True)
    try:
        ids = [c["id"] for c in admin.client_list() if c["name"] == child.hello["listener"]]
        assert len(ids) == 1
        admin.client_kill_filter(_id=ids[0])
    finally:
        admin.close()
    eventually(lambda: child("stats")[1] > flushes, "child flushed its near tier on reconnecting")
    assert child("near", "re") is None
    eventually(lambda: child("stats")[2] is True, "child resubscribed")
    assert child("get", "re") == "v1"
    here.set("re", "v2")
    eventually(lambda: child("near", "re") is None, "invalidations flow again after the reconnect")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_gets_its_own_origin_and_listener(redis_server: str, tmp_path: Path) -> None:
    """A cache made before fork (gunicorn --preload) stays coherent in the child, both ways."""
    prefix = f"fork-{uuid.uuid4().hex[:10]}:"
    red = RedisTier(redis_server, prefix=prefix, timeout=TIMEOUT)
    disk = DiskTier(tmp_path / "d.db")
    tc = TieredCache([Cache(metrics=False), disk, red], metrics=False)
    eventually(lambda: red.subscribed, "the parent subscribed before the fork")
    parent_origin = red.origin
    tc.set("k", "parent")
    r_fd, w_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            ok = tc.set("k", "child")  # restarts the listener under a new origin
            deadline = time.monotonic() + 30
            while not red.subscribed and time.monotonic() < deadline:
                time.sleep(0.02)
            report = {
                "ok": ok,
                "new_origin": red.origin != parent_origin,
                "subscribed": red.subscribed,
                "read": tc.get("k"),
            }
            os.write(w_fd, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w_fd)
    try:
        with os.fdopen(r_fd) as f:
            report = json.loads(f.read())
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert report == {"ok": True, "new_origin": True, "subscribed": True, "read": "child"}
        mem = tc.tiers[0]
        eventually(lambda: mem.get("k") is None, "the parent dropped its copy on the child's set")
        assert tc.get("k") == "child"
    finally:
        tc.clear()
        tc.close()


class Blackhole:
    """A real TCP proxy on loopback that can silently drop every existing flow (a partition)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = int(self.srv.getsockname()[1])
        self.flows: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        self.srv.settimeout(0.1)
        while not self.stop.is_set():
            try:
                a, _ = self.srv.accept()
            except OSError:
                continue
            b = socket.create_connection(self.target)
            flow: dict[str, Any] = {"dead": False, "socks": (a, b)}
            self.flows.append(flow)
            for src, dst in ((a, b), (b, a)):
                t = threading.Thread(target=self._pump, args=(src, dst, flow), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, flow: dict[str, Any]) -> None:
        src.settimeout(0.1)
        while not self.stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not flow["dead"]:  # a dead flow swallows bytes: no FIN, no RST, just silence
                try:
                    dst.sendall(data)
                except OSError:
                    return

    def partition(self) -> None:
        """Silently drop the traffic of every flow open now; new connections work."""
        for f in self.flows:
            f["dead"] = True

    def close(self) -> None:
        """Stop the proxy and close every socket."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        for f in self.flows:
            for s in f["socks"]:
                s.close()
        self.srv.close()


def test_silent_partition_is_detected_by_ping_and_flushes(redis_server: str) -> None:
    """A subscriber whose connection goes silent PINGs, gets no PONG, reconnects and flushes."""
    host, port = redis_server.split("//")[1].split("/")[0].split(":")
    proxy = Blackhole((host, int(port)))
    prefix = f"part-{uuid.uuid4().hex[:10]}:"
    red = RedisTier(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix)
    red.ping_every = 0.3  # read by the listener loop on every idle turn
    tc = TieredCache([Cache(metrics=False), red], metrics=False)
    try:
        # the subscriber's flow must exist before the partition, or it would never go silent
        eventually(lambda: red.subscribed, "the listener subscribed through the proxy")
        assert tc.set("k", "v") is True
        mem = tc.tiers[0]
        assert mem.get("k") == "v"
        proxy.partition()
        eventually(lambda: tc.flushes >= 1, "the listener noticed the silent channel and flushed")
        assert mem.get("k") is None
        eventually(lambda: red.subscribed, "the listener resubscribed on a fresh connection")
    finally:
        tc.close()
        proxy.close()
        client = redis.Redis.from_url(redis_server)
        client.delete(prefix + "k")
        client.close()
