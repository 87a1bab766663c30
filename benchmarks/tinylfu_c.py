"""Cost per call of the C W-TinyLFU (_tinylfu_c.TinyLFUPolicy) on the default's streams.

Run: ``.venv/bin/python -m benchmarks.tinylfu_c [--rounds N] [--keys N] [--baseline SO]``.

The default policy runs this class as its engine and, after its first switch, as an exact twin
stepped on every access (``twin.step(key, other)``): its per-call cost is the default's largest
single cost up to 2,048 entries. Each row is a capacity (500, 1,024, 2,048 entries: where
``policy="auto"`` simulates) and a stream, "new" (every key new: a miss into a full policy, after
5 x cap new keys) or "zipf" (Zipf 0.99 over 100,000 str keys, a new str object per access, 53-62%
hits, after 20,000 of them);
each column a call pattern, on a fresh default ``TinyLFUPolicy(cap, None)`` per run:

- ``add``: ``add(k, 1)`` (the core's new-key insert; "new" only);
- ``access``: ``access(k)`` (a simulation's read-or-insert);
- ``step``: ``step(k, lirs)`` (the twin's step; ``lirs`` a C LIRS engine of the same capacity,
  warmed on the same keys and not stepped: the victims' ``in`` tests cost what they cost);
- ``cache``: a cache's calls: ``hit(k)`` when a dict of the residents holds ``k``, else
  ``miss(k)`` then ``add(k, 1)`` and the victims deleted from the dict (the reads' ring drained at
  each write).

``--baseline SO`` adds the same columns on another build of the extension (a .so file, e.g. one
compiled from the previous commit), side by side in the same process: the fair way to compare two
builds on a shared machine (2 cores, shared: absolute ns are noisy, the ratios are what count).
Per round the columns run in a rotating order, the builds of a column back to back, timed in
this thread's CPU time; we report the median ns per call, and with a baseline the median of the
rounds' ratios new / base.

Results (2026-11-28, this VM: 2 shared AMD EPYC cores, Python 3.11, gcc -O3 via setuptools),
the session's speed work (8c69091, b7ba397, da11ee9) against the build of e0b4da7, in one
process (load 1.3-2.3)::

    nice -n 5 .venv/bin/python -m benchmarks.tinylfu_c --rounds 21 --keys 20000 \
        --baseline <build of e0b4da7>

    20000 timed str keys per run; ns/call (median), c (base, median of the rounds' c/base)
      cap stream                     add                  access                    step                   cache
      500 new       189.4 ( 214.3, 0.88)    299.0 ( 406.2, 0.66)    277.2 ( 422.5, 0.71)    551.2 ( 774.7, 0.79)
      500 zipf                         -    243.1 ( 411.6, 0.64)    308.1 ( 469.6, 0.67)    488.9 ( 527.5, 0.76)
     1024 new       207.9 ( 215.9, 0.96)    312.7 ( 375.9, 0.83)    354.8 ( 429.6, 0.85)    747.7 ( 806.7, 0.93)
     1024 zipf                         -    229.0 ( 295.2, 0.71)    313.2 ( 346.0, 0.74)    375.8 ( 430.4, 0.86)
     2048 new       156.0 ( 161.3, 0.95)    172.9 ( 204.2, 0.84)    227.8 ( 251.4, 0.87)    462.9 ( 482.7, 0.95)
     2048 zipf                         -    185.2 ( 249.3, 0.74)    198.0 ( 261.7, 0.76)    313.4 ( 400.6, 0.81)

Where it came from: exact strs hashed and compared in place (Zipf's keys are equal, never
identical objects), the keys' table at most a third full below 1 MB (at 500 entries it, and each
shadow's, ran at 49% load), the counts aged at their size instead of rebuilt small and doubled
back within every period, a new key's read counted without a ring round trip, drain's replay
reusing its probation-hit pass's lookups. The "cache" column is mostly the loop's own Python.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.engines_c import load_extension, stream_keys  # the same keys and loader
from perflayer.cache._engines_c import LIRSEngine
from perflayer.cache._tinylfu_c import TinyLFUPolicy

SIZES = (500, 1_024, 2_048)
STREAMS = ("new", "zipf")
CALLS = ("add", "access", "step", "cache")
BUILDS: dict[str, Any] = {"c": TinyLFUPolicy}


def load_baseline(path: str) -> None:
    """Add the TinyLFUPolicy of the extension built at ``path`` to BUILDS as "base"."""
    BUILDS["base"] = load_extension(path, "_tinylfu_c").TinyLFUPolicy


def call_loop(call: str, cls: Any, cap: int) -> Callable[[list[str]], None]:
    """Return a loop of ``call`` per key on a fresh policy of ``cls`` at ``cap``."""
    p = cls(cap, None)
    if call == "add":
        add = p.add

        def loop_add(keys: list[str]) -> None:
            for k in keys:
                add(k, 1)

        return loop_add
    if call == "access":
        access = p.access

        def loop_access(keys: list[str]) -> None:
            for k in keys:
                access(k)

        return loop_access
    if call == "step":
        step, lirs = p.step, LIRSEngine(cap)
        warmed = [False]

        def loop_step(keys: list[str]) -> None:
            if not warmed[0]:  # the warm-up run: the engine sees the same keys once
                for k in keys:
                    lirs.access(k)
                warmed[0] = True
            for k in keys:
                step(k, lirs)

        return loop_step
    resident: dict[str, None] = {}
    hit, miss, add = p.hit, p.miss, p.add

    def loop_cache(keys: list[str]) -> None:
        for k in keys:
            if k in resident:
                hit(k)
            else:
                miss(k)
                for v in add(k, 1):
                    del resident[v]
                resident[k] = None

    return loop_cache


def run(rounds: int, n: int) -> dict[tuple[int, str, str, str], float]:
    """Return the median ns per call of every (capacity, stream, call, build), and with a
    baseline the median of the per-round ratios c / base as build "ratio".

    Per round the calls run in a rotating order, and the builds of one call back to back (which
    goes first alternates): a ratio of two neighbouring runs shrugs off the slow swings in the
    machine's load that move the medians.
    """
    res = {}
    builds = list(BUILDS)
    for cap in SIZES:
        for stream in STREAMS:
            warm, keys = stream_keys(stream, cap, n)
            calls = [c for c in CALLS if not (c == "add" and stream == "zipf")]
            samples: dict[tuple[str, str], list[float]] = {
                (c, b): [] for c in calls for b in builds
            }
            for r in range(rounds):
                shift = r % len(calls)
                for call in calls[shift:] + calls[:shift]:
                    for build in builds if r % 2 == 0 else builds[::-1]:
                        loop = call_loop(call, BUILDS[build], cap)
                        loop(warm)
                        t0 = time.thread_time_ns()
                        loop(keys)
                        samples[(call, build)].append((time.thread_time_ns() - t0) / n)
            for (call, build), v in samples.items():
                res[(cap, stream, call, build)] = statistics.median(v)
            if "base" in BUILDS:
                for call in calls:
                    pairs = zip(samples[(call, "c")], samples[(call, "base")], strict=True)
                    res[(cap, stream, call, "ratio")] = statistics.median(c / b for c, b in pairs)
    return res


def report(res: dict[tuple[int, str, str, str], float], n: int) -> None:
    """Print ns per call per (capacity, stream) and call, and c / base with a baseline."""
    base = "base" in BUILDS
    print(
        f"{n} timed str keys per run; ns/call (median)"
        + (", c (base, median of the rounds' c/base)" if base else "")
    )
    width = 24 if base else 9
    print(f"{'cap':>5} {'stream':6}" + "".join(f"{c:>{width}}" for c in CALLS))
    for cap in SIZES:
        for stream in STREAMS:
            cells = []
            for call in CALLS:
                c = res.get((cap, stream, call, "c"))
                if c is None:
                    cells.append(f"{'-':>{width}}")
                elif base:
                    b = res[(cap, stream, call, "base")]
                    ratio = res[(cap, stream, call, "ratio")]
                    cells.append(f"{c:8.1f} ({b:6.1f}, {ratio:4.2f})")
                else:
                    cells.append(f"{c:9.1f}")
            print(f"{cap:5} {stream:6}" + "".join(f"{x:>{width}}" for x in cells))


def main(argv: list[str] | None = None) -> None:
    """Print the C W-TinyLFU's cost per call on the default's streams."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--keys", type=int, default=40_000)
    ap.add_argument("--baseline", metavar="SO", help="another build's _tinylfu_c .so")
    a = ap.parse_args(argv)
    if a.baseline:
        load_baseline(a.baseline)
    report(run(a.rounds, a.keys), a.keys)


if __name__ == "__main__":
    main()
