"""Tier benchmarks, side by side with the peers in one process (interleaved rounds).

Run: .venv/bin/python -m benchmarks.tiers --rounds 7 --n 2000  (starts its own redis-server)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import diskcache
import redis
from cashews import Cache as CashewsCache

from perflayer.cache import Cache
from perflayer.cache._disk import DiskTier
from perflayer.cache._redis_tier import RedisTier
from perflayer.cache._tiered import TieredCache

ROUNDS = int(os.environ.get("ROUNDS", "7"))
N = int(os.environ.get("N", "2000"))
VALUE = {"user": 42, "name": "Ada Lovelace", "roles": ["admin", "dev"], "score": 3.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[int], object], n: int) -> list[int]:
    out = []
    pc = time.perf_counter_ns
    for i in range(n):
        t0 = pc()
        fn(i)
        out.append(pc() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    global ROUNDS, N
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.tiers",
        description="Tier latency against redis-py, cashews and diskcache (starts a redis-server).",
    )
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved rounds (env ROUNDS)")
    ap.add_argument("--n", type=int, default=N, help="operations per round and case (env N)")
    args = ap.parse_args(argv)
    ROUNDS, N = args.rounds, args.n
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-tiers-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        r = redis.Redis.from_url(url)
        tc = TieredCache([Cache(metrics=False), RedisTier(url, prefix="b:")], metrics=False)
        rt = RedisTier(url, prefix="c:")
        disk = DiskTier(os.path.join(tmp, "ours.db"), max_bytes=1 << 28)
        dc = diskcache.Cache(os.path.join(tmp, "dc"))
        tc.set("hot", VALUE)
        r.set("p:hot", json.dumps(VALUE))
        rt.set("hot", VALUE)
        loop = asyncio.new_event_loop()
        cw = CashewsCache()
        cw.setup(url, client_side=True)
        loop.run_until_complete(cw.set("cw:hot", VALUE))
        loop.run_until_complete(cw.get("cw:hot"))

        def cashews_timed(op: Callable[[int], object]) -> Callable[[int], list[int]]:
            async def run(n: int) -> list[int]:
                out = []
                pc = time.perf_counter_ns
                for i in range(n):
                    t0 = pc()
                    await op(i)  # type: ignore[misc]
                    out.append(pc() - t0)
                return out

            def batch(n: int) -> list[int]:
                return loop.run_until_complete(run(n))

            batch.is_batch = True  # type: ignore[attr-defined]
            return batch

        for i in range(N):
            disk.set(f"k{i}", VALUE)
            dc.set(f"k{i}", VALUE)
        pairs: dict[str, tuple[Callable[[int], object], Callable[[int], object], str]] = {
            "near-cache read hit (TieredCache memory+redis vs redis-py GET+json)": (
                lambda i: tc.get("hot"),
                lambda i: json.loads(r.get("p:hot")),  # type: ignore[arg-type]
                "redis-py",
            ),
            "near-cache read hit (TieredCache memory+redis vs cashews client_side=True, awaited)": (
                lambda i: tc.get("hot"),
                cashews_timed(lambda i: cw.get("cw:hot")),
                "cashews",
            ),
            "write-through set (TieredCache memory+redis vs cashews client_side=True set, awaited)": (
                lambda i: tc.set(f"w{i % 100}", VALUE),
                cashews_timed(lambda i: cw.set(f"cw:w{i % 100}", VALUE)),
                "cashews",
            ),
            "redis tier read (RedisTier.get vs redis-py GET+json)": (
                lambda i: rt.get("hot"),
                lambda i: json.loads(r.get("p:hot")),  # type: ignore[arg-type]
                "redis-py",
            ),
            "write-through set (TieredCache memory+redis vs redis-py SET json)": (
                lambda i: tc.set(f"w{i % 100}", VALUE),
                lambda i: r.set(f"p:w{i % 100}", json.dumps(VALUE)),
                "redis-py",
            ),
            "disk read hit (DiskTier vs diskcache.Cache)": (
                lambda i: disk.get(f"k{i % N}"),
                lambda i: dc.get(f"k{i % N}"),
                "diskcache",
            ),
            "disk write (DiskTier vs diskcache.Cache)": (
                lambda i: disk.set(f"w{i % 500}", VALUE),
                lambda i: dc.set(f"w{i % 500}", VALUE),
                "diskcache",
            ),
        }
        print(
            f"# {platform.platform()}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs (shared with other engineers' runs), "
            f"redis-server 7 on loopback, {ROUNDS} rounds x {N} ops, interleaved"
        )
        print(
            "| operation | peer | ours median (µs) | peer median (µs) | ours p99 | peer p99 | ratio ours/peer |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, (ours, peer, pname) in pairs.items():
            om: list[float] = []
            pm: list[float] = []
            oall: list[int] = []
            pall: list[int] = []
            for rnd in range(ROUNDS):
                order = [(ours, om, oall), (peer, pm, pall)]
                if rnd % 2:
                    order.reverse()
                for fn, meds, alls in order:
                    s = fn(N) if getattr(fn, "is_batch", False) else timed(fn, N)
                    meds.append(statistics.median(s))
                    alls.extend(s)
            o, p = statistics.median(om), statistics.median(pm)
            o99 = statistics.quantiles(oall, n=100)[98]
            p99 = statistics.quantiles(pall, n=100)[98]
            print(
                f"| {label} | {pname} | {o / 1000:.2f} | {p / 1000:.2f} | {o99 / 1000:.1f} | {p99 / 1000:.1f} | {o / p:.3f} |"
            )
        loop.run_until_complete(cw.close())
        loop.close()
        tc.close()
        rt.close()
        disk.close()
        dc.close()
        r.close()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
