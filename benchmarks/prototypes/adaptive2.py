"""Research prototype: the adaptive policy with today's default TinyLFU as engine and simulation.

Question (docs/research-adaptive.md): ``AdaptivePolicy`` (``perflayer.cache._policy_adaptive``)
runs miniature simulations of W-TinyLFU, LIRS and ARC and adopts the leader, but its TinyLFU engine
and simulation are the old ``climber="sample", ghost=False`` policy (34 of 60 points alone). How far
does it get when both are today's default ``TinyLFUPolicy(c, None)`` (shadow climber, ghost
admission, per-entry read buffer), and which points does it still miss?

Result (docs/research-adaptive.md): ``make(c)`` ("A") is 54 of 60 points within 1 point of the best
peer (the default 50, ``adaptive`` 49) and 25 / 26 / 25 of 30 held out, but up to 5.45 points
below the default on syn-scan-mix, mostly above 2,048 entries, where a switch migrates the keys
into a fresh engine without history; ``samp=0,escale=0.5,keeph=1`` ("D") is 57 of 60 and still
1.14 below the default at syn-scan-mix@1598. No variant passed the no-loss guard.

``Adaptive2`` is ``AdaptivePolicy`` with its constants and its TinyLFU flavours made options
(``make(c, **overrides)``, for the sweep:
``py:benchmarks.prototypes.adaptive2.make,K=V,...``); ``make(c)`` with no overrides is the
candidate "today's default as the engine". Options (``CFG``):

- ``eng``: the real cache's TinyLFU engine: 0 today's default (shadow climber + ghost), 1 the
  shadow climber without the ghost, 2 the old engine (sample climber, no ghost: ``adaptive``).
- ``sim``: the TinyLFU *simulation*, same codes.
- ``rb``: the shared read buffer of the real cache: 0 one read per entry (1,024-4,096, as the
  default's), else that many reads (``adaptive``: 1,024).
- ``srb``: the TinyLFU simulation's own read buffer: 0 per entry of the mini cache, else that many
  reads (``adaptive``: 1,024).
- ``z``, ``margin``, ``hold``, ``relax``, ``warm``, ``decay``, ``epoch``: the switching rule's
  ``_Z``, ``_MARGIN``, ``_HOLD``, ``_RELAX``, ``_WARMUP_FACTOR``, ``_DECAY``, ``_EPOCH``.
- ``full``: caches of up to this many entries simulate every key (``_FULL_SHADOW``, 2,048).
- ``cands``: which engines may be chosen: a bit per engine of ``ENGINES`` (1 tinylfu, 2 lirs,
  4 arc); 7 all (an engine outside the set is still simulated, never adopted).
- ``samp``: 1 caches larger than ``full`` sample their keys and migrate on a switch (as
  ``adaptive``); 0 they run the TinyLFU engine alone, without simulations (today's default).
- ``escale``, ``emin``, ``keeph``: with ``escale`` > 0 an epoch is ``escale`` x the mini cache's
  entries (at least ``emin``, at most ``epoch``); with ``keeph`` = 1 the decay per epoch is
  ``decay ** (epoch / 256)``, so the horizon in sampled accesses stays ~4,096 at any epoch.
- ``hmax``: the back-off doubles at most this many times (``_HOLD_MAX``, 8).
- ``urgent``: > 0 a challenger leading by more than ``urgent`` x the decayed accesses may win
  during a hold (the usual significance test still applies).
- ``long``: > 0 a challenger must also lead a long-horizon copy of the scores (decayed by
  ``long`` per 256 sampled accesses, never reset) at ``lz`` standard deviations of the sign
  test, as the shadow climber's long-horizon check does (0: off).
- ``bias``: a challenger's lead must also exceed ``bias`` x the decayed accesses when the current
  engine is TinyLFU (0: the rule as it is): a thumb on the default's side of the scale.

``make(c, old=1)`` rebuilds today's ``adaptive`` through this class (eng=2, sim=2, rb=1024,
srb=1024): the replays equal ``AdaptivePolicy``'s (tests/benchmarks/test_adaptive2.py checks it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import perflayer.cache._policy_adaptive as _ad
from benchmarks.hitratio import PolicySim
from perflayer.cache._policy import TinyLFUPolicy, _check_bounds, read_buffer_size
from perflayer.errors import ConfigError

CFG: dict[str, float] = {
    "eng": 0,
    "sim": 0,
    "rb": 0,
    "srb": 1_024,
    "z": _ad._Z,
    "margin": _ad._MARGIN,
    "hold": _ad._HOLD,
    "relax": _ad._RELAX,
    "warm": _ad._WARMUP_FACTOR,
    "decay": _ad._DECAY,
    "epoch": _ad._EPOCH,
    "full": _ad._FULL_SHADOW,
    "cands": 7,
    "bias": 0.0,
    "old": 0,
    "escale": 0.0,
    "emin": 64,
    "keeph": 0,
    "samp": 1,
    "hmax": _ad._HOLD_MAX,
    "urgent": 0.0,
    "long": 0.0,
    "lz": 2.0,
}

# TinyLFUPolicy keyword arguments of the three flavours (``eng`` / ``sim``)
_FLAVOURS: tuple[dict[str, Any], ...] = (
    {},  # today's default: shadow climber, ghost admission
    {"ghost": False},
    {"climber": "sample", "ghost": False},
)


def _tiny(c: int | None, w: int | None, flavour: int, **kw: Any) -> TinyLFUPolicy:
    return TinyLFUPolicy(c, w, **_FLAVOURS[flavour], **kw)


class _Shadow2(_ad._TinyShadow):
    """The TinyLFU miniature simulation, of a chosen flavour and read buffer."""

    def __init__(self, c: int, flavour: int = 0, rb: int = 1_024) -> None:
        self.p = _tiny(c, None, flavour, read_buffer=rb or read_buffer_size(c))


class Adaptive2(_ad.AdaptivePolicy):
    """AdaptivePolicy whose TinyLFU flavours and switching constants are options (``CFG``)."""

    def __init__(self, max_entries: int | None, max_weight: int | None, **over: float) -> None:
        _check_bounds(max_entries, max_weight)
        cfg = dict(CFG)
        for k, v in over.items():
            if k not in cfg:
                raise ConfigError(f"unknown adaptive2 option {k!r}")
            cfg[k] = v
        if cfg["old"]:
            cfg.update(eng=2, sim=2, rb=1_024, srb=1_024)
        self.cfg = cfg
        self.max_entries = max_entries
        self.max_weight = max_weight
        rb = int(cfg["rb"]) or read_buffer_size(max_entries)
        self._buf: deque[Hashable] = deque(maxlen=rb)
        self.hit = self._buf.append
        self.miss = self._buf.append
        self.switches = 0
        self.engine = "tinylfu"
        # (accesses seen, engine) at every switch, for the write-up
        self.history: list[tuple[int, str]] = []
        self._t = 0
        # set to a list to record (accesses seen, engine, the epoch's 8 hit-pattern counts)
        self.log: list[tuple[int, str, list[int]]] | None = None
        self._engine: _ad._Engine = self._make_tiny(max_entries, max_weight)
        self._setup_shadows()

    def _make_tiny(self, max_entries: int | None, max_weight: int | None) -> TinyLFUPolicy:
        return self._wire(_tiny(max_entries, max_weight, int(self.cfg["eng"])))

    def _wire(self, p: TinyLFUPolicy) -> TinyLFUPolicy:
        p._buf = self._buf
        p.hit = p.miss = self._buf.append
        return p

    def _setup_shadows(self) -> None:
        cfg = self.cfg
        self._shadows = []
        self._objs = []
        self._pat = [0] * 8
        self._score = [0.0] * len(_ad.ENGINES)
        self._var = [[0.0] * len(_ad.ENGINES) for _ in _ad.ENGINES]
        self._weight = 0.0
        self._seen = 0
        self._level = 0
        self._quiet = 0
        self._hold = 0
        # the long-horizon copies of the scores and disagreement counts (the ``long`` option)
        self._lscore = [0.0] * len(_ad.ENGINES)
        self._lvar = [[0.0] * len(_ad.ENGINES) for _ in _ad.ENGINES]
        self._ldecay = 0.0
        c = self.max_entries
        if c is None or self.max_weight is not None:
            self._threshold = 0
            self._epoch = 0
            return
        full = int(cfg["full"])
        if c > full and not cfg["samp"]:
            # samp=0: a cache too large for full shadows runs its TinyLFU engine alone
            self._threshold = 0
            self._epoch = 0
            return
        rate = 1.0 if c <= full else full / c
        mini = max(1, round(c * rate))
        self._threshold = 1 << 64 if rate >= 1.0 else int(rate * (1 << 64))
        self._epoch = int(cfg["epoch"])
        if cfg["escale"]:
            # a small cache decides on shorter epochs: mini x escale sampled accesses, at least
            # emin, at most the epoch option
            self._epoch = max(int(cfg["emin"]), min(self._epoch, round(cfg["escale"] * mini)))
        # the decay per epoch; keeph keeps the horizon in sampled accesses for shorter epochs
        self._decay = float(cfg["decay"])
        self._ldecay = float(cfg["long"])
        if cfg["keeph"]:
            self._decay **= self._epoch / cfg["epoch"]
            self._ldecay **= self._epoch / cfg["epoch"]
        self._hold = max(_ad._WARMUP, -(-int(cfg["warm"]) * mini // self._epoch))
        sim, srb = int(cfg["sim"]), int(cfg["srb"])
        self._objs = [
            _Shadow2(mini, sim, srb),
            _ad._LIRSEngine(mini),
            _ad._ARCEngine(mini),
        ]
        self._shadows = [(n, o.access) for n, o in zip(_ad.ENGINES, self._objs, strict=True)]

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` and return the keys to evict (never ``key``); count the accesses."""
        buf = self._buf
        self._t += len(buf) + (0 if buf and buf[-1] == key else 1)
        return super().add(key, weight)

    def _decide(self, keep: object) -> list[Hashable]:
        # AdaptivePolicy._decide with the constants from cfg (and the cands / bias options)
        cfg = self.cfg
        decay = self._decay
        z = float(cfg["z"])
        pat = self._pat
        self._pat = [0] * 8
        if self.log is not None:
            self.log.append((self._t, self.engine, pat))
        engines = _ad.ENGINES
        n = len(engines)
        cur = engines.index(self.engine)
        score = self._score
        var = self._var
        d2 = decay * decay
        for i in range(n):
            score[i] = score[i] * decay + sum(c for p, c in enumerate(pat) if p >> i & 1)
            row = var[i]
            for j in range(n):
                row[j] = row[j] * d2 + sum(c for p, c in enumerate(pat) if (p >> i ^ p >> j) & 1)
        ld = self._ldecay
        if ld:
            lscore, lvar, ld2 = self._lscore, self._lvar, ld * ld
            for i in range(n):
                lscore[i] = lscore[i] * ld + sum(c for p, c in enumerate(pat) if p >> i & 1)
                row = lvar[i]
                for j in range(n):
                    row[j] = row[j] * ld2 + sum(
                        c for p, c in enumerate(pat) if (p >> i ^ p >> j) & 1
                    )
        self._weight = self._weight * decay + self._seen
        self._seen = 0
        self._quiet += 1
        if self._quiet >= cfg["relax"] and self._level:
            self._level -= 1
            self._quiet = 0
        urgent = float(cfg["urgent"])
        if self._hold > 0:
            self._hold -= 1
            # urgent > 0: a lead of more than urgent x the decayed accesses overrides the hold
            if not urgent or max(score) - score[cur] <= urgent * self._weight:
                return []
        full = self._threshold > _ad._MASK64
        margin = float(cfg["margin"]) + (float(cfg["bias"]) if cur == 0 else 0.0)
        floor = margin * self._weight
        cands = int(cfg["cands"])
        best = cur
        lead = 0.0
        for j in range(n):
            if not cands >> j & 1:
                continue
            gain = score[j] - score[cur]
            if gain > lead and gain > floor and gain * gain > z * z * var[cur][j]:
                if ld:
                    # the long horizon must agree, at lz standard deviations
                    lg = self._lscore[j] - self._lscore[cur]
                    if lg <= 0 or lg * lg <= cfg["lz"] ** 2 * self._lvar[cur][j]:
                        continue
                best, lead = j, gain
        if best == cur:
            return []
        if full:
            return self._adopt(best, keep)
        self._switch(engines[best])
        return []

    def _switched(self, name: str) -> None:
        self.engine = name
        self.switches += 1
        self.history.append((self._t, name))
        self._hold = int(self.cfg["hold"]) << self._level
        self._level = min(self._level + 1, int(self.cfg["hmax"]))
        self._quiet = 0

    def _switch(self, name: str) -> None:
        # AdaptivePolicy._switch with this class's TinyLFU flavour for a fresh TinyLFU engine
        old = self._engine
        if self._buf:
            old.remove(_ad._SENTINEL)
        items = _ad._order(old)
        c = self.max_entries
        assert c is not None
        shadow = self._objs[_ad.ENGINES.index(name)] if self._objs else None
        new: _ad._Engine
        if name == "tinylfu":
            window = shadow.p.window_fraction if isinstance(shadow, _ad._TinyShadow) else 0.01
            tiny = self._wire(_tiny(c, None, int(self.cfg["eng"]), window=window))
            _ad._load(tiny, items)
            tiny._hits = tiny._requests = 0
            new = tiny
        else:
            new = _ad._new_engine(name, c, self._buf)
            _ad._load(new, items)
            if isinstance(new, _ad._ARCEngine) and isinstance(shadow, _ad._ARCEngine):
                new.p = min(float(c), shadow.p * c / shadow.c)
        self._engine = new
        self._switched(name)


def make(c: int, **over: float) -> PolicySim:
    """Build the simulator of an ``Adaptive2`` cache of ``c`` entries (``CFG`` overrides)."""
    return PolicySim(Adaptive2(c, None, **over), c)


def cost(sizes: tuple[int, ...] = (500, 978, 2_000, 5_000), rounds: int = 3) -> None:
    """Print the median ns per access of the default, ``adaptive``, A and B, and their ratios.

    One process, the policies interleaved, ``rounds`` rounds over the first 60,000 accesses of
    syn-zipf-shift: ``python -m benchmarks.prototypes.adaptive2``.
    """
    from benchmarks.traces import zipf_shift

    keys = zipf_shift()[:60_000]
    makers: dict[str, Callable[[int], Any]] = {
        "default": lambda c: PolicySim(TinyLFUPolicy(c, None), c),
        "adaptive": lambda c: PolicySim(_ad.AdaptivePolicy(c, None), c),
        "A": lambda c: make(c),
        "B (samp=0)": lambda c: make(c, samp=0),
    }
    time_per_access(makers, keys, sizes, rounds)


def time_per_access(
    makers: dict[str, Callable[[int], Any]],
    keys: list[int],
    sizes: tuple[int, ...],
    rounds: int,
) -> None:
    """Print, per size, each maker's median ns per access of ``keys`` and its ratio to the first.

    The makers build a fresh ``PolicySim`` per round (cold start included) and run interleaved
    in this process, ``rounds`` rounds; the first maker is the reference (the default).
    """
    import statistics
    import time

    ref = next(iter(makers))
    for c in sizes:
        runs: dict[str, list[float]] = {name: [] for name in makers}
        for _ in range(rounds):
            for name, mk in makers.items():
                access = mk(c).access
                t = time.perf_counter_ns()
                for k in keys:
                    access(k)
                runs[name].append((time.perf_counter_ns() - t) / len(keys))
        med = {name: statistics.median(v) for name, v in runs.items()}
        print(
            f"c={c:>6} "
            + "  ".join(f"{n} {v:8.0f} ns ({v / med[ref]:.2f}x)" for n, v in med.items()),
            flush=True,
        )


if __name__ == "__main__":
    cost()
