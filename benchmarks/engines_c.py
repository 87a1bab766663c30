"""Cost per access of the adaptive policy's engines: the C twins (_engines_c) vs the Python ones.

Run: ``.venv/bin/python -m benchmarks.engines_c [--rounds N] [--keys N] [--instructions]``
or ``.venv/bin/python -m benchmarks.engines_c --streams [--rounds N] [--keys N] [--baseline SO]
[--c-only]`` or ``.venv/bin/python -m benchmarks.engines_c --view [--rounds N] [--keys N]
[--baseline SO]``.

Two workloads on one seeded skewed trace (Pareto ranks over 4,000 keys, a cache of 500):
"access", the miniature simulation's step (``engine.access(k)``), and "add", the real engine's
write path with one buffered read replayed per write (``buf.append(k); engine.add(k, 1)``).

Timing (default): per round, each (workload, engine, implementation) runs the whole trace once on
a fresh engine, in a rotating order, timed in this thread's CPU time; we report the median ns
per access and the ratio C / Python of the medians. The machine has 2 cores shared by several
engineers running benchmarks: absolute ns are noisy, the ratios are what count.

``--streams`` prices the simulation step ``access(k)`` on the two streams a simulation sees,
at 500, 1,024 and 2,048 entries (where ``policy="auto"`` simulates): "new" (every key new: a
miss into a full engine) and "zipf" (Zipf 0.99 over 100,000 str keys), C and Python engines
beside the yardstick, an ``OrderedDict`` LRU's read-or-insert step written in Python.
``--baseline SO`` adds the C engines of another build of the extension (a .so file, e.g. one
compiled from the previous commit), side by side in the same process: the fair way to compare two
builds on a shared machine. ``--c-only`` leaves the (slow) Python engines out.

``--instructions`` counts instructions with callgrind instead (deterministic): each
(workload, engine, implementation) runs once under valgrind, and a second run that builds
everything but skips the loop is subtracted; the difference divided by the keys is the
instructions per access.

Results (2026-11-28, this VM, Python 3.11, gcc -O3 from sysconfig's CFLAGS via setuptools;
"base" is the build of commit dca8c26, before the session-11 work on the engines' cost):

``.venv/bin/python -m benchmarks.engines_c --instructions --keys 20000`` (deterministic; base
from the same command on the base build)::

    workload engine       python          c  c/python       base  c/base
    access   arc          2174.3      278.6     0.128      304.8   0.914
    access   lirs         3862.5      311.6     0.081      350.8   0.888
    add      arc          6397.0     1089.3     0.170     1791.5   0.608
    add      lirs        10885.2     1186.5     0.109     1906.6   0.622
    add      adaptive    38331.7    32890.1     0.858

``nice -n 5 .venv/bin/python -m benchmarks.engines_c --rounds 9 --keys 40000 --baseline SO``
(CPU time, 2 shared cores, load 2.4, noisy; ratios only)::

    workload engine       python          c  c/python       base  c/base
    access   arc           278.2       31.5     0.113       30.1   1.046
    access   lirs          418.5       35.3     0.084       35.7   0.990
    add      arc           756.2      118.3     0.156      196.6   0.602
    add      lirs         1531.9      145.9     0.095      198.2   0.736
    add      adaptive     7785.6     6045.3     0.776

``nice -n 5 .venv/bin/python -m benchmarks.engines_c --streams --rounds 15 --keys 40000 --c-only
--baseline SO`` (load 2.2; docs/benchmarks-cache-latency.md has the table with the Python
engines)::

      cap stream              lru        lirs base           lirs c         arc base            arc c
      500 new        428.7 (1.00)     123.8 (0.29)      98.4 (0.23)     111.0 (0.26)      75.2 (0.18)
      500 zipf       187.1 (1.00)      75.2 (0.40)      63.2 (0.34)      70.3 (0.38)      50.9 (0.27)
     1024 new        248.0 (1.00)      86.4 (0.35)      63.7 (0.26)      64.3 (0.26)      41.5 (0.17)
     1024 zipf       187.7 (1.00)      86.3 (0.46)      72.8 (0.39)      67.5 (0.36)      63.3 (0.34)
     2048 new        314.9 (1.00)      98.6 (0.31)      73.3 (0.23)      97.6 (0.31)      70.6 (0.22)
     2048 zipf       180.1 (1.00)     103.9 (0.58)      78.9 (0.44)      71.7 (0.40)      58.6 (0.33)

``--view`` prices ``_engines_c.SimEngine``, the adopted engine that is its simulation (the
default policy's LIRS or ARC engine after a switch, and its TinyLFU twin once it returns),
against the plain C simulation, at 500, 1,024 and 2,048 entries on str keys: a new key's
``step`` (the observation's read miss: full simulation, the victim a cached key, which becomes
an extra; the twin's ``step_twin(k)``) and the ``add`` that follows it (the cache's set: the
phantom becomes cached, the extra leaves), beside the plain ``access`` of a new key and, for the
design it replaced, a plain engine's ``add`` of a new key (the adopted copy's write beside the
simulation's access); hits; ``k in`` each. Each call is timed alone (``perf_counter_ns`` around
it, an empty bracket's mean subtracted), the mean per run, the median of the runs.
``--baseline SO`` runs another build's views beside these, round by round in alternating order,
and prints the ratios (a build whose SimEngine takes no TinyLFU: the Python view over it).

``nice -n 5 .venv/bin/python -m benchmarks.engines_c --view --rounds 9 --keys 40000 --baseline
SO``, SO the build of commit cfad195 (``wt`` a dict, ex a lazy list; load 0.8-1.3; ns/call)::

    [c]
    engine     cap  access   step    add  add new  engine add  acc hit  step hit  in eng  in view
    lirs       500    60.9   85.4   80.8    143.1       100.2     31.4      33.6    20.4     19.4
    lirs      1024    60.8   87.6   79.9    140.2        99.9     44.8      45.7    31.3     22.0
    lirs      2048    60.5   98.0   82.3    140.8        99.0     46.1      57.2    38.6     29.4
    arc        500    49.8   68.2   71.2    128.4        93.7     31.4      29.5    20.4     21.8
    arc       1024    39.1   65.6   71.1    118.0        85.6     31.0      33.3    19.5     19.9
    arc       2048    40.8   75.7   75.9    129.6        86.3     31.6      39.5    30.6     26.8
    tinylfu    500   277.9  361.8   98.8    478.2       125.5     25.9      43.6    18.1     16.3
    tinylfu   1024   181.9  284.5   96.6    331.3       126.9     27.9      48.0    20.0     20.0
    tinylfu   2048   152.9  248.4   86.8    306.1       142.0     34.2      55.8    26.7     27.8

    [c] ratios
    engine     cap  step/access  step+add/access  step+add/(access+engine add)  step hit/acc hit
    lirs       500         1.40             2.73                          1.03              1.07
    lirs      1024         1.44             2.75                          1.04              1.02
    lirs      2048         1.62             2.98                          1.13              1.24
    arc        500         1.37             2.80                          0.97              0.94
    arc       1024         1.68             3.50                          1.10              1.07
    arc       2048         1.86             3.72                          1.19              1.25
    tinylfu    500         1.30             1.66                          1.14              1.68
    tinylfu   1024         1.56             2.10                          1.23              1.72
    tinylfu   2048         1.62             2.19                          1.14              1.63

    c/base
    engine     cap   step    add  step+add     in
    lirs       500   0.90   0.56      0.70   0.83
    lirs      1024   0.97   0.56      0.72   0.83
    lirs      2048   1.03   0.57      0.75   1.14
    arc        500   0.89   0.51      0.65   0.98
    arc       1024   1.01   0.53      0.68   0.87
    arc       2048   1.11   0.52      0.71   1.02
    tinylfu    500   0.94   0.53      0.81   0.67
    tinylfu   1024   1.01   0.57      0.84   0.83
    tinylfu   2048   1.00   0.51      0.80   1.05

A hit costs the view what it costs the engine (a step is the engine's find and hit). A miss
(step + add) costs about what the design before the view paid for it, the simulation's access
plus the adopted copy's add (0.97-1.19x), and 0.65-0.75x what it cost with ``wt`` a dict
(there 1.4-1.75x the old design's): the write's eviction takes the extra's node in hand, no dict
insert or pop (SimEngine's note in _engines_c.c). The view also saves the copy's replay of every
buffered read (a second step per hit). Against the build of commit 2aebaea, whose SimEngine took
no TinyLFU (the twin under _policy_auto's Python view), the TinyLFU rows' step + add is
0.23-0.30x (step 0.35-0.46x, add 0.11-0.14x; two runs, load 1.1, noisy).

The "access" rows (int keys over 4,000, tables that stay in the CPU caches) gain instructions,
not time; the streams (str keys, 2,000-8,000 nodes) gain both. The C "add" rows are still
mostly the protocol (a result list per call, the buffer's replay), not the engine's own work.
The "adaptive" row (AdaptivePolicy at 500 entries, full shadows, on the Python vs the C
LIRS/ARC) gains little because its cost is almost all Python: the TinyLFU engine, the TinyLFU
simulation and the sampling loop in ``_observe``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, NamedTuple

from benchmarks.cache_latency import zipf_ops
from perflayer.cache import _engines_c
from perflayer.cache._engines_c import ARCEngine as CARC
from perflayer.cache._engines_c import LIRSEngine as CLIRS
from perflayer.cache._policy_adaptive import AdaptivePolicy
from perflayer.cache._policy_adaptive import _ARCEngine as PyARC
from perflayer.cache._policy_adaptive import _LIRSEngine as PyLIRS
from perflayer.cache._policy_auto import SimEngine as PyView
from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFU

CAPACITY = 500
UNIVERSE = 4_000


def _adaptive(pure: bool) -> Callable[[int], Any]:
    """Return a factory of AdaptivePolicy on the Python (``pure``) or the C LIRS/ARC engines."""

    def make(c: int) -> Any:
        old = os.environ.get("PERFLAYER_PURE_PYTHON")
        os.environ["PERFLAYER_PURE_PYTHON"] = "1" if pure else "0"
        try:
            return _PureSwitch(AdaptivePolicy(c, None), pure)
        finally:
            if old is None:
                del os.environ["PERFLAYER_PURE_PYTHON"]
            else:
                os.environ["PERFLAYER_PURE_PYTHON"] = old

    return make


class _PureSwitch:
    """An AdaptivePolicy whose add runs with PERFLAYER_PURE_PYTHON as at its construction."""

    def __init__(self, p: Any, pure: bool) -> None:
        self.p = p
        self.flag = "1" if pure else "0"
        self._buf = p._buf

    def add(self, key: Any, weight: int) -> list[Any]:
        os.environ["PERFLAYER_PURE_PYTHON"] = self.flag  # a switch builds its engine now
        victims: list[Any] = self.p.add(key, weight)
        return victims


IMPLS: dict[str, dict[str, Any]] = {
    "arc": {"python": PyARC, "c": CARC},
    "lirs": {"python": PyLIRS, "c": CLIRS},
    "adaptive": {"python": _adaptive(True), "c": _adaptive(False)},
}
WORKLOADS = ("access", "add")


def trace(n: int) -> list[int]:
    """Return ``n`` seeded keys, Pareto-ranked over ``UNIVERSE`` keys (a skewed, shifting mix)."""
    rng = random.Random(20261128)
    return [int(rng.paretovariate(0.8)) % UNIVERSE for _ in range(n)]


def _pairs() -> list[tuple[str, str]]:
    """Return the (workload, engine) pairs: both workloads per engine, "add" for AdaptivePolicy."""
    return [(w, e) for w in WORKLOADS for e in IMPLS if w == "add" or e != "adaptive"]


def runner(workload: str, cls: Any, keys: list[int]) -> Callable[[], None]:
    """Return a function that runs ``keys`` through a fresh engine of ``cls``."""

    def run_access() -> None:
        e = cls(CAPACITY)
        access = e.access
        for k in keys:
            access(k)

    def run_add() -> None:
        e = cls(CAPACITY)
        append = e._buf.append
        add = e.add
        for k in keys:
            append(k)
            add(k, 1)

    return run_access if workload == "access" else run_add


def timing(rounds: int, n: int) -> dict[tuple[str, str, str], float]:
    """Return the median ns per access of every (workload, engine, implementation)."""
    keys = trace(n)
    cases = [(w, e, i) for w, e in _pairs() for i in IMPLS[e]]
    samples: dict[tuple[str, str, str], list[float]] = {c: [] for c in cases}
    for r in range(rounds):
        shift = r % len(cases)
        for case in cases[shift:] + cases[:shift]:
            w, e, i = case
            fn = runner(w, IMPLS[e][i], keys)
            t0 = time.thread_time_ns()
            fn()
            samples[case].append((time.thread_time_ns() - t0) / n)
    return {c: statistics.median(v) for c, v in samples.items()}


def _callgrind(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(
            [*cmd, "-m", "benchmarks.engines_c", *args],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(out, encoding="utf-8") as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def instructions(n: int) -> dict[tuple[str, str, str], float]:
    """Return the instructions per access of every (workload, engine, implementation)."""
    result = {}
    for w, e in _pairs():
        for i in IMPLS[e]:
            full = _callgrind(["--one", w, e, i, "--keys", str(n)])
            base = _callgrind(["--one", w, e, i, "--keys", str(n), "--skip"])
            result[(w, e, i)] = (full - base) / n
    return result


# -- the simulations' streams (``--streams``) --------------------------------------------------

SIZES = (500, 1_024, 2_048)
VIEW_ENGINES = ("lirs", "arc", "tinylfu")
STREAM_IMPLS = ("lru", "lirs python", "lirs base", "lirs c", "arc python", "arc base", "arc c")


def load_extension(path: str, name: str) -> Any:
    """Load the extension module ``name`` (its init's name) built at ``path``, as "baseline.NAME".

    Another build's .so beside this one in one process (``--baseline``): the ratio of two builds
    measured side by side, not in two processes on a loaded machine.
    """
    spec = importlib.util.spec_from_file_location(f"baseline.{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline: cannot load {path!r}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_baseline(path: str) -> None:
    """Add the engines of the extension built at ``path`` to IMPLS as "base"."""
    mod = load_extension(path, "_engines_c")
    IMPLS["lirs"]["base"] = mod.LIRSEngine
    IMPLS["arc"]["base"] = mod.ARCEngine


def stream_keys(stream: str, cap: int, n: int) -> tuple[list[str], list[str]]:
    """Return (warm-up keys, timed keys) of ``stream`` at ``cap``, hashed once (cached).

    "new": every key new, after 5 x cap new keys (a full engine with a full LIRS history);
    "zipf": Zipf(0.99) over 100,000 keys (benchmarks.cache_latency's), after 20,000 of them.
    """
    if stream == "new":
        warm = [f"w:{cap}:{i}" for i in range(5 * cap)]
        keys = [f"new:{cap}:{i}" for i in range(n)]
    else:
        ops = [k for _s, k in zipf_ops(20_000 + n, seed=cap)]
        warm, keys = ops[:20_000], ops[20_000:]
    for k in warm + keys:
        hash(k)  # a str caches its hash, as after the cache's own dict lookup
    return warm, keys


def lru_step_loop(cap: int) -> Callable[[list[str]], None]:
    """Return a loop of the yardstick: an OrderedDict LRU's read-or-insert step per key."""
    od: OrderedDict[str, None] = OrderedDict()

    def loop(keys: list[str]) -> None:
        move, pop = od.move_to_end, od.popitem
        for k in keys:
            if k in od:
                move(k)
            else:
                od[k] = None
                if len(od) > cap:
                    pop(last=False)

    return loop


def engine_loop(impl: str, cap: int) -> Callable[[list[str]], None]:
    """Return a loop of ``access(k)`` per key on a fresh engine of ``impl`` at ``cap``."""
    if impl == "lru":
        return lru_step_loop(cap)
    engine, lang = impl.split()
    access = IMPLS[engine][lang](cap).access

    def loop(keys: list[str]) -> None:
        for k in keys:
            access(k)

    return loop


def streams(rounds: int, n: int, impls: list[str]) -> dict[tuple[int, str, str], float]:
    """Return the median ns per access of every (capacity, stream, implementation).

    Per round, each implementation warms a fresh engine (untimed), then runs the stream's
    ``n`` timed keys; the order of the implementations rotates per round.
    """
    res = {}
    for cap in SIZES:
        for stream in ("new", "zipf"):
            warm, keys = stream_keys(stream, cap, n)
            samples: dict[str, list[float]] = {i: [] for i in impls}
            for r in range(rounds):
                shift = r % len(impls)
                for impl in impls[shift:] + impls[:shift]:
                    loop = engine_loop(impl, cap)
                    loop(warm)
                    t0 = time.thread_time_ns()
                    loop(keys)
                    samples[impl].append((time.thread_time_ns() - t0) / n)
            for impl, v in samples.items():
                res[(cap, stream, impl)] = statistics.median(v)
    return res


def print_streams(res: dict[tuple[int, str, str], float], n: int, impls: list[str]) -> None:
    """Print ns per access and the ratio to the OrderedDict LRU step, per capacity and stream."""
    print(f"{n} timed str keys per run; ns/access (median), (x: / the OrderedDict LRU step)")
    head = "".join(f"{i:>17}" for i in impls)
    print(f"{'cap':>5} {'stream':6}{head}")
    for cap in SIZES:
        for stream in ("new", "zipf"):
            lru = res[(cap, stream, "lru")]
            cells = "".join(
                f"{res[(cap, stream, i)]:10.1f} ({res[(cap, stream, i)] / lru:4.2f})" for i in impls
            )
            print(f"{cap:5} {stream:6}{cells}")


# -- the adopted engine as its simulation (``--view``) ------------------------------------------

VIEW_ROWS = (
    "access",
    "step",
    "add",
    "add new",
    "engine add",
    "acc hit",
    "step hit",
    "in eng",
    "in view",
)


class ViewImpl(NamedTuple):
    """One ``--view`` case: a fresh simulation ``sim(cap, buf)``, the view class over it."""

    sim: Callable[..., Any]
    view: Any
    twin: bool  # the view is stepped by step_twin(k) (the default policy's TinyLFU twin)


def _tiny(cap: int, buf: Any = None) -> Any:
    return CTinyLFU(cap, None)


def view_impls(mod: Any) -> dict[str, ViewImpl]:
    """Return the ``--view`` cases of the ``_engines_c`` build ``mod``.

    Its LIRS and ARC engines under its SimEngine, and the C TinyLFU (the default policy's twin)
    under its SimEngine where that takes one, else under _policy_auto's Python view (the twin's
    view before the C one took a TinyLFU).
    """
    try:
        mod.SimEngine(CTinyLFU(4, None), [], deque())
        tiny_view = mod.SimEngine
    except TypeError:
        tiny_view = PyView
    return {
        "lirs": ViewImpl(lambda cap, buf=None: mod.LIRSEngine(cap, buf), mod.SimEngine, False),
        "arc": ViewImpl(lambda cap, buf=None: mod.ARCEngine(cap, buf), mod.SimEngine, False),
        "tinylfu": ViewImpl(_tiny, tiny_view, True),
    }


def _view_setup(impl: ViewImpl, cap: int, warm: list[str]) -> Any:
    """Return a view on a fresh simulation warmed by ``warm``, holding all its residents.

    Every simulation resident is a cached key, so the victim of a new key's step is real: it
    becomes an extra, which the following add evicts (the cost the view adds to a miss).
    """
    buf: deque[Any] = deque(maxlen=1024)
    sim = impl.sim(cap, buf)
    for k in warm:
        sim.access(k)
    return impl.view(sim, sim.order(), buf)


def _stepper(impl: ViewImpl, view: Any) -> Callable[[Any], Any]:
    return view.step_twin if impl.twin else view.step  # type: ignore[no-any-return]


def check_view_stream(impl: ViewImpl, cap: int, n: int) -> None:
    """Check (untimed) that the timed view loop is what it claims: one real victim per step.

    (A TinyLFU's new key may be its own victim, refused admission: only the count is checked.)
    """
    warm, keys = stream_keys("new", cap, n)
    view = _view_setup(impl, cap, warm)
    step = _stepper(impl, view)
    for k in keys[:2_000]:
        assert step(k) in ((0,) if impl.twin else (False,)), k
        victims = view.add(k, 1)
        assert len(view) == cap and (impl.twin or len(victims) == 1), k


def _timed(fn: Callable[..., Any], keys: list[str], weighed: bool = False) -> float:
    """Return the mean ns of ``fn(k)`` (``fn(k, 1)`` if ``weighed``) per key, each timed alone."""
    clock = time.perf_counter_ns
    t = 0
    if weighed:
        for k in keys:
            t0 = clock()
            fn(k, 1)
            t += clock() - t0
    else:
        for k in keys:
            t0 = clock()
            fn(k)
            t += clock() - t0
    return t / len(keys)


def view_round(impl: ViewImpl, cap: int, warm: list[str], keys: list[str]) -> dict[str, float]:
    """Return the mean ns per call of each VIEW_ROWS case on fresh engines (bracket included).

    "access": the plain C simulation's access(k) of a new key; "step": the view's step(k) (a
    TinyLFU twin's: step_twin(k)) of a new key (full simulation, real victim) and "add": the
    add(k, 1) that follows it (the phantom becomes resident, the extra leaves); "add new": the
    view's add(k, 1) of a key never stepped (its step inside); "engine add": a plain engine's
    add(k, 1) of a new key (what an adopted copy paid beside the simulation's access before the
    view). Hits, over the warmed residents: "acc hit" access(k), "step hit" the view's step(k);
    "in eng" and "in view": ``k in`` the simulation and the view.
    """
    clock = time.perf_counter_ns
    n = len(keys)
    out: dict[str, float] = {}
    sim = impl.sim(cap)
    for k in warm:
        sim.access(k)
    out["access"] = _timed(sim.access, keys)
    view = _view_setup(impl, cap, warm)
    step, add = _stepper(impl, view), view.add
    ts = ta = 0
    for k in keys:
        t0 = clock()
        step(k)
        t1 = clock()
        add(k, 1)
        t2 = clock()
        ts += t1 - t0
        ta += t2 - t1
    out["step"], out["add"] = ts / n, ta / n
    out["add new"] = _timed(_view_setup(impl, cap, warm).add, keys, weighed=True)
    eng = impl.sim(cap)
    for k in warm:
        eng.add(k, 1)
    out["engine add"] = _timed(eng.add, keys, weighed=True)
    # hits: the residents of the warmed simulation, shuffled, over and over
    view = _view_setup(impl, cap, warm)
    sim = impl.sim(cap)
    for k in warm:
        sim.access(k)
    hot = [k for k, _w in sim.order()]
    assert hot == [k for k, _w in view.order()]
    random.Random(cap).shuffle(hot)
    hits = (hot * (n // len(hot) + 1))[:n]
    out["acc hit"] = _timed(sim.access, hits)
    out["step hit"] = _timed(_stepper(impl, view), hits)
    for row, obj in (("in eng", sim), ("in view", view)):
        t = 0
        for k in hits:
            t0 = clock()
            k in obj  # noqa: B015 (the lookup is the measure)
            t += clock() - t0
        out[row] = t / n
    return out


def bracket_ns(n: int) -> float:
    """Return the mean ns of an empty perf_counter_ns bracket (subtracted from every call)."""
    clock = time.perf_counter_ns
    t = 0
    for _ in range(n):
        t0 = clock()
        t += clock() - t0
    return t / n


def views(
    rounds: int, n: int, builds: dict[str, dict[str, ViewImpl]]
) -> dict[tuple[str, str, int, str], float]:
    """Return the median over rounds of each case's ns per call, the bracket subtracted.

    ``builds`` maps a build's name ("c", "base") to its cases; in each round the builds run one
    after the other on the same keys, in an order that alternates (side by side: their ratio is
    fair on a shared machine).
    """
    res = {}
    names = list(builds)
    for engine in VIEW_ENGINES:
        for cap in SIZES:
            for name in names:
                check_view_stream(builds[name][engine], cap, n)
            warm, keys = stream_keys("new", cap, n)
            samples: dict[tuple[str, str], list[float]] = {
                (b, r): [] for b in names for r in VIEW_ROWS
            }
            for i in range(rounds):
                for name in names if i % 2 == 0 else names[::-1]:
                    b = bracket_ns(n)
                    for row, ns in view_round(builds[name][engine], cap, warm, keys).items():
                        samples[(name, row)].append(ns - b)
            for (name, row), runs in samples.items():
                res[(name, engine, cap, row)] = statistics.median(runs)
    return res


def print_views(res: dict[tuple[str, str, int, str], float], n: int, builds: list[str]) -> None:
    """Print ns per call and the ratios: the view's miss and hit costs to the plain engine's.

    With a baseline, then the ratios of this build to it (step, add, step + add, ``in``).
    """

    def table(
        title: str, cols: list[str], rows: Callable[[str, int], list[float]], digits: int
    ) -> None:
        widths = [max(len(c), 5) + 2 for c in cols]
        print(f"\n{title}")
        head = "".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
        print(f"{'engine':8} {'cap':>5}{head}")
        for engine in VIEW_ENGINES:
            for cap in SIZES:
                cells = zip(rows(engine, cap), widths, strict=True)
                print(f"{engine:8} {cap:5}" + "".join(f"{x:{w}.{digits}f}" for x, w in cells))

    print(f"{n} str keys per run, full simulations; ns/call (median of runs' means)")
    for build in builds:
        table(
            f"[{build}]",
            list(VIEW_ROWS),
            lambda e, c, b=build: [res[(b, e, c, r)] for r in VIEW_ROWS],  # type: ignore[misc]
            1,
        )
    ratios = {
        "step/access": (("step",), ("access",)),
        "step+add/access": (("step", "add"), ("access",)),
        "step+add/(access+engine add)": (("step", "add"), ("access", "engine add")),
        "step hit/acc hit": (("step hit",), ("acc hit",)),
    }

    def ratio(build: str, base: str, num: tuple[str, ...], den: tuple[str, ...]) -> Any:
        return lambda e, c: (
            sum(res[(build, e, c, r)] for r in num) / sum(res[(base, e, c, r)] for r in den)
        )

    b0 = builds[0]
    fns = [ratio(b0, b0, num, den) for num, den in ratios.values()]
    table(f"[{b0}] ratios", list(ratios), lambda e, c: [f(e, c) for f in fns], 2)
    if len(builds) < 2:
        return
    cmp = {"step": ("step",), "add": ("add",), "step+add": ("step", "add"), "in": ("in view",)}
    fns = [ratio(b0, builds[1], rows, rows) for rows in cmp.values()]
    table(f"{b0}/{builds[1]}", list(cmp), lambda e, c: [f(e, c) for f in fns], 2)


def main(argv: list[str] | None = None) -> None:
    """Print the per-access cost of each engine, C vs Python, and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--instructions", action="store_true")
    ap.add_argument("--streams", action="store_true")
    ap.add_argument("--baseline", metavar="SO", help="another build's _engines_c .so (timing)")
    ap.add_argument("--c-only", action="store_true", help="no Python engines (--streams)")
    ap.add_argument(
        "--view", action="store_true", help="SimEngine's step and add vs access (--baseline SO)"
    )
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--skip", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:  # one callgrind run: build everything, run the loop unless --skip
        w, e, i = a.one
        fn = runner(w, IMPLS[e][i], trace(a.keys))
        if not a.skip:
            fn()
        return
    if a.view:
        builds = {"c": view_impls(_engines_c)}
        if a.baseline:
            builds["base"] = view_impls(load_extension(a.baseline, "_engines_c"))
        print_views(views(a.rounds, a.keys, builds), a.keys, list(builds))
        return
    if a.baseline and not a.instructions:
        load_baseline(a.baseline)
    if a.streams:
        impls = [
            i
            for i in STREAM_IMPLS
            if not (i.endswith(" base") and not a.baseline)
            and not (i.endswith(" python") and a.c_only)
        ]
        print_streams(streams(a.rounds, a.keys, impls), a.keys, impls)
        return
    if a.instructions:
        res, unit = instructions(a.keys), "instr/access"
    else:
        res, unit = timing(a.rounds, a.keys), "ns/access (median)"
    print(f"capacity {CAPACITY}, {a.keys} keys over {UNIVERSE}; {unit}")
    print(f"{'workload':8} {'engine':8} {'python':>10} {'c':>10} {'c/python':>9}", end="")
    print(f" {'base':>10} {'c/base':>7}" if a.baseline else "")
    for w, e in _pairs():
        py, c = res[(w, e, "python")], res[(w, e, "c")]
        print(f"{w:8} {e:8} {py:10.1f} {c:10.1f} {c / py:9.3f}", end="")
        base = res.get((w, e, "base"))
        print(f" {base:10.1f} {c / base:7.3f}" if base else "")


if __name__ == "__main__":
    main()
