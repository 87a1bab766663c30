"""Research prototype: a switching rule for the adaptive policy that does not lose to the default.

Question (docs/research-adaptive.md, Session 9): ``adaptive2``'s candidate D
(``samp=0,escale=0.5,keeph=1``: full shadows and adoption up to 2,048 entries, today's default
alone above) is 57 of 60 points within 1 point of the best peer, but up to 4.64 points *below the
default* on syn-scan-mix, whose short phases are each won by a different engine. Which switching
rule keeps D's gains and never falls more than a point below the default?

Result (docs/research-adaptive.md, Session 9): rule G, ``make(c, samp=0, escale=0.5, keeph=1,
srb=0, acct=0.004, ret=0.5, a0=0.25, sync=0.02)``, is 57 / 28 / 26 / 26 points within 1 of the
best peer on the 60 / offset 100 / 200 / 300 families (the default 50 / 24 / 22 / 22, D 57 / 28 /
26 / 26) with better gaps to OPT on each, and at worst 0.87 / 0.58 / 0.55 / 0.62 points below the
default. ``srb=0`` makes the TinyLFU simulation the default's exact twin, so the account is exact.
Session 10: G with ``cp=1`` (a TinyLFU adoption as the C port makes it, keeping the simulation's
pending reads) has G's within-1 counts and gaps, at worst 0.98 / 0.54 / 0.56 / 0.59 points below
the default, and no ensemble member (shadow epochs 255 / 257) more than 1 below.

``Adaptive3`` is ``adaptive2.Adaptive2`` plus the options below (``CFG3``; ``make(c, **opts)``
for the sweep: ``py:benchmarks.prototypes.adaptive3.make,K=V,...``). With every new option at
its default (0) it makes exactly ``Adaptive2``'s decisions (tests/benchmarks/test_adaptive3.py).

- ``acct``: the *regret account* against the default (0: off). With full shadows the TinyLFU
  simulation is the default's twin, and the policy can tell a real hit from a real miss (a
  buffered read is a hit iff its key is resident when the buffer is observed). The account is
  the deficit: the TinyLFU simulation's hits minus the real cache's hits, summed over every
  sampled access since the start (never decayed: the bar is on the whole trace's hit ratio).
  Its budget is ``acct`` x the accesses seen plus ``a0`` x the mini cache's entries. While the
  deficit exceeds the budget the policy adopts the TinyLFU simulation at once (a hold does not
  apply) and leaves TinyLFU for no challenger; the budget grows with the accesses, so a cache
  that has lost on its switches earns the right to switch again only slowly.
- ``a0``: the account's initial allowance, in mini-cache entries (1).
- ``ret``: > 0 the account also charges the cost of a return now: ``ret`` x the number of the
  TinyLFU simulation's residents that the real cache lacks (each a miss the default would not
  take after the return); the deficit plus that charge is held to the budget (0: off).
- ``sync``: > 0 *re-synchronise* a real TinyLFU engine that trails its simulation: after a
  switch back to TinyLFU the real engine is a copy of the simulation restricted to the keys the
  real cache holds, and on a chaotic trace its climber can drift onto a worse path than the
  simulation's (the default's twin) and stay there; when the deficit has grown by more than
  ``sync`` x the mini cache's entries since the last adoption, the real engine adopts the
  TinyLFU simulation again (no key leaves; it counts as no switch and leaves the back-off as it
  is) (0: off).
- ``bz``: > 0 a challenger must also lead by ``bz`` standard deviations of a *block* estimate
  of the lead's variance (the decayed sum of the squared per-epoch lead increments: a burst of
  correlated disagreements counts as one large increment, not as many coins) (0: off).
- ``back``: 1 "switch back fast": within ``back_win`` epochs of a switch, if the engine left
  leads the current one again at the usual significance, return to it without the hold
  (and without raising the back-off level) (0: off).
- ``cp``: how a TinyLFU adoption (a switch or a re-sync) builds the real engine (Session 10).
  0 (default) as ``AdaptivePolicy._adopt``: a ``deepcopy`` of the simulation on the shared,
  just-cleared read buffer, so the simulation's *pending* reads (hits it recorded and has not
  yet replayed) are dropped. 1 the C port's recipe: ``sim.copy()`` (it keeps its read buffer),
  then remove the copy's residents the real cache lacks (a remove replays the buffer first),
  prepend the real cache's keys the copy lacks (``prepend``: no replay) and take the real
  weights (no replay), then carry whatever is still pending into the shared buffer, so the
  pending reads reach the adopted engine (at the first remove, or at its next write). 2 the
  same recipe with the pending reads dropped (a control: the same decisions as 0).
  Every TinyLFU adoption appends ``(accesses seen, reads pending in the simulation, reads
  carried into the shared buffer)`` to ``pending``, whatever ``cp`` is.
- ``view``: 1 an adoption (a switch or a re-sync) makes the simulation itself the engine, seen through
  ``perflayer.cache._policy_auto.SimEngine`` (the cache's keys the simulation lacks are evicted
  first; the simulation's residents the cache lacks take slots until it evicts them), and the
  simulation's step is the view's; 0 (default) a copy of the simulation restricted to the real
  keys (Session 12).
- ``nat``: 1 (default) the LIRS and ARC simulations are the C twins of the Python classes
  (``perflayer.cache._engines_c``: the same decisions, tests/cache/test_engines_c.py, about
  10x faster); 0 the Python classes as in ``adaptive2``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import perflayer.cache._policy_adaptive as _ad
import perflayer.cache._policy_auto as _pa
from benchmarks.hitratio import PolicySim
from benchmarks.prototypes.adaptive2 import CFG, Adaptive2
from perflayer.cache._policy import TinyLFUPolicy
from perflayer.errors import ConfigError

CFG3: dict[str, float] = {
    "acct": 0.0,
    "a0": 1.0,
    "ret": 0.0,
    "sync": 0.0,
    "bz": 0.0,
    "back": 0,
    "back_win": 8,
    "nat": 1,
    "cp": 0,
    "view": 0,
}


class Adaptive3(Adaptive2):
    """Adaptive2 with a regret account against the default, a block test and a fast return."""

    def __init__(self, max_entries: int | None, max_weight: int | None, **over: float) -> None:
        cfg3 = dict(CFG3)
        rest: dict[str, float] = {}
        for k, v in over.items():
            if k in cfg3:
                cfg3[k] = v
            elif k in CFG:
                rest[k] = v
            else:
                raise ConfigError(f"unknown adaptive3 option {k!r}")
        if cfg3["cp"] not in (0, 1, 2):
            raise ConfigError(f"adaptive3 option cp must be 0, 1 or 2, got {cfg3['cp']!r}")
        self.cfg3 = cfg3
        super().__init__(max_entries, max_weight, **rest)

    def _setup_shadows(self) -> None:
        super()._setup_shadows()
        n = len(_ad.ENGINES)
        self._deficit = 0.0  # TinyLFU simulation's hits minus the real cache's, since the start
        self._total = 0  # sampled accesses since the start
        self._rhits = 0  # this epoch's real hits
        self._bvar = [[0.0] * n for _ in range(n)]  # block variance of the pairwise leads
        self._prev = -1  # the engine left at the last switch
        self._since = 0  # epochs since the last switch
        self.locked = 0  # epochs spent locked on TinyLFU by the account (for the write-up)
        self.syncs = 0  # re-synchronisations of a trailing TinyLFU engine (the sync option)
        self._d0 = 0.0  # the deficit at the last adoption
        # (accesses seen, pending reads, reads carried) at every TinyLFU adoption (the cp option)
        self.pending: list[tuple[int, int, int]] = []
        if self._objs and self.cfg3["nat"]:
            mini = self._objs[1].c
            self._objs[1] = _ad._engine_class("lirs")(mini)
            self._objs[2] = _ad._engine_class("arc")(mini)
            self._shadows = [(nm, o.access) for nm, o in zip(_ad.ENGINES, self._objs, strict=True)]

    def _observe(self, keys: Iterable[Hashable], keep: object = _ad._NO_KEY) -> list[Hashable]:
        # AdaptivePolicy._observe, plus the real hits: a buffered read is a hit iff its key is
        # resident before the engine replays the buffer (a write's key is never resident)
        threshold = self._threshold
        a0, a1, a2 = [access for _name, access in self._shadows]
        pat = self._pat
        seen = self._seen
        rh = self._rhits
        engine = self._engine
        full = threshold > _ad._MASK64
        for k in keys:
            if not full and ((hash(k) * _ad._GOLDEN) & _ad._MASK64) >= threshold:
                continue
            seen += 1
            if k in engine:
                rh += 1
            p = 1 if a0(k) else 0
            if a1(k):
                p += 2
            if a2(k):
                p += 4
            pat[p] += 1
        self._seen = seen
        self._rhits = rh
        if seen >= self._epoch and keep is not _ad._NO_DECISION:
            return self._decide(keep)
        return []

    def _decide(self, keep: object) -> list[Hashable]:
        cfg3 = self.cfg3
        pat = self._pat
        n = len(_ad.ENGINES)
        hits = [sum(c for p, c in enumerate(pat) if p >> i & 1) for i in range(n)]
        self._total += self._seen
        self._deficit += hits[0] - self._rhits
        self._rhits = 0
        self._since += 1
        if cfg3["bz"]:
            d2 = self._decay * self._decay
            for i in range(n):
                row = self._bvar[i]
                for j in range(n):
                    row[j] = row[j] * d2 + (hits[i] - hits[j]) ** 2
        sync = float(cfg3["sync"])
        trail = self._deficit - self._d0
        if (
            sync
            and self.engine == "tinylfu"
            and self.switches
            and trail > sync * self._objs[0].p.max_entries
        ):
            self._resync(keep)
        acct = float(cfg3["acct"])
        if acct:
            sim0 = self._objs[0].p
            budget = acct * self._total + float(cfg3["a0"]) * sim0.max_entries
            owed = self._deficit
            if cfg3["ret"]:
                # the cost of a return: the default's residents the real cache lacks (each a
                # miss the default would not take)
                engine = self._engine
                owed += float(cfg3["ret"]) * sum(1 for k in sim0._where if k not in engine)
            if owed > budget:
                self.locked += 1
                if self.engine != "tinylfu":
                    # run the rest of Adaptive2's decision for the score updates, then overrule
                    self._hold = 1 << 30
                    super()._decide(keep)
                    self._hold = 0
                    victims = self._adopt(0, keep)
                    return victims
                self._hold = max(self._hold, 1)
                return super()._decide(keep)
        back = cfg3["back"] and self._hold > 0 and self._prev >= 0
        # switch back fast: the engine just left leads again (scores as updated this epoch)
        if back and self._since <= cfg3["back_win"] and self._leads(self._prev, pat):
            self._hold = 0
        return super()._decide(keep)

    def _leads(self, j: int, pat: list[int]) -> bool:
        """Return True if engine j will lead the current one significantly after this epoch."""
        cur = _ad.ENGINES.index(self.engine)
        decay = self._decay
        sj = self._score[j] * decay + sum(c for p, c in enumerate(pat) if p >> j & 1)
        sc = self._score[cur] * decay + sum(c for p, c in enumerate(pat) if p >> cur & 1)
        v = self._var[cur][j] * decay * decay + sum(
            c for p, c in enumerate(pat) if (p >> cur ^ p >> j) & 1
        )
        weight = self._weight * decay + self._seen
        gain = sj - sc
        z = float(self.cfg["z"])
        return gain > float(self.cfg["margin"]) * weight and gain * gain > z * z * v

    def _resync(self, keep: object) -> None:
        """Adopt the TinyLFU simulation again, as no switch (the back-off stays as it is)."""
        saved = (self._hold, self._level, self._quiet, self.switches, list(self.history))
        self._adopt_engine(0, keep)
        self._hold, self._level, self._quiet, self.switches, self.history = saved
        self._d0 = self._deficit
        self.syncs += 1

    def _significant(self, cur: int, j: int) -> bool:
        """Return True if engine j's lead over ``cur`` passes the block test (if on)."""
        bz = float(self.cfg3["bz"])
        if not bz:
            return True
        gain = self._score[j] - self._score[cur]
        return gain > 0 and gain * gain > bz * bz * self._bvar[cur][j]

    def _adopt(self, index: int, keep: object) -> list[Hashable]:
        cur = _ad.ENGINES.index(self.engine)
        if index != 0 and not self._significant(cur, index):
            return []
        prev, self._prev = self._prev, cur
        since, self._since = self._since, 0
        level = self._level
        victims = self._adopt_engine(index, keep)
        self._d0 = self._deficit
        if self.cfg3["back"] and index == prev and since <= self.cfg3["back_win"]:
            # a fast return: the last switch did not pay; no back-off for correcting it
            self._level = level
            self._hold = int(self.cfg["hold"])
        return victims

    def _switched(self, name: str) -> None:
        super()._switched(name)

    def _adopt_engine(self, index: int, keep: object) -> list[Hashable]:
        """Adopt engine ``index``'s simulation: ``AdaptivePolicy._adopt``, or the ``cp`` recipe."""
        try:
            return self._adopt_recipe(index, keep)
        finally:
            self._rebind()

    def _rebind(self) -> None:
        """Point each simulation's step at its object, or at the view that is the engine."""
        if not self._objs or not self.cfg3["view"]:
            return
        engine = self._engine
        steps = []
        for nm, o in zip(_ad.ENGINES, self._objs, strict=True):
            own = isinstance(engine, _pa._VIEWS) and engine.sim is _sim(o)
            steps.append((nm, engine.step if own else o.access))
        self._shadows = steps

    def _adopt_recipe(self, index: int, keep: object) -> list[Hashable]:
        if self.cfg3["view"]:
            real = list(_ad._order(self._engine))
            self._buf.clear()  # the simulation has seen these reads already
            sim = self._objs[index]
            self._engine = _pa.sim_engine(_sim(sim), real, self._buf)
            self._switched(_ad.ENGINES[index])
            return []
        if index != 0:
            return _ad.AdaptivePolicy._adopt(self, index, keep)
        sim = self._objs[0].p
        cp = int(self.cfg3["cp"])
        if not cp:
            self.pending.append((self._t, len(sim._buf), 0))
            return _ad.AdaptivePolicy._adopt(self, index, keep)
        real = dict(_ad._order(self._engine))
        tiny: TinyLFUPolicy = sim.copy()  # keeps the simulation's pending reads
        pend = len(tiny._buf)
        if cp == 2:
            tiny._buf.clear()
        # remove the copy's keys the real cache lacks (the first remove replays the reads),
        # prepend the real cache's keys the copy lacks, take the real weights (no replay)
        _ad.restrict(tiny, real)
        # the reads still pending move to the shared buffer (the real cache's own were seen by
        # the simulations already), which the engine replays at its next write
        buf = self._buf
        buf.clear()
        buf.extend(tiny._buf)
        self.pending.append((self._t, pend, len(buf)))
        tiny._buf = buf
        tiny.hit = tiny.miss = buf.append
        self._engine = tiny
        self._switched("tinylfu")
        return []


def _sim(obj: Any) -> Any:
    """Return the policy object of a simulation (a ``_TinyShadow`` wraps its TinyLFU)."""
    return obj.p if isinstance(obj, _ad._TinyShadow) else obj


def make(c: int, **over: Any) -> PolicySim:
    """Build the simulator of an ``Adaptive3`` cache of ``c`` entries (``CFG``/``CFG3`` overrides)."""
    return PolicySim(Adaptive3(c, None, **over), c)
