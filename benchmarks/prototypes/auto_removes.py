"""Research prototype: the default policy's simulations see the cache's removals (Session 11).

Question (docs/research-adaptive.md, "Session 11: deletes and expiry"): ``AutoPolicy.remove(k)``
(a ``Cache.delete``, a TTL expiry, an invalidation by tag or pattern) removes ``k`` from the
real engine only; the W-TinyLFU twin and the LIRS and ARC simulations keep it and later "hit"
a key the real cache (and ``policy="tinylfu"`` in the same cache) no longer holds. The regret
account (twin hits - real hits) is then inflated by every such phantom hit, and so are the
simulations' scores. Does removing ``k`` from every simulation too gain hit ratio, and what
does it cost?

Result (benchmarks/hitratio_deletes.py, 39 points x 5 delete/expiry models): it switches where
the simulations lead (syn-phases@1621 +7.5 points over ``auto`` with 5% invalidation), is never
more than 1.13 points below ``policy="tinylfu"`` (``auto``: 7.43, lirs-cs@704 with expiry), and
cuts the re-syncs of delete-heavy caches 34x; it gives up ``auto``'s accidental re-sync gains
(up to 7.40 points). Recommended for the port with the forget rule below; ``ghost`` is at best
equal.

Ported (session 11): ``AutoPolicy.remove`` now runs the forget rule below, so ``RemovesPolicy``
with no option *is* ``AutoPolicy``; its options remain as the research alternatives. The rule
(``RemovesPolicy`` before the port: the pure-Python ``AutoPolicy`` whose ``remove(k)`` also
removed ``k``) removes ``k`` from:

- the twin, when there is one (before the first switch the engine is its own twin, so the real
  remove already is the twin's); the kept count of the twin's residents the engine lacks
  (``_absent``) loses ``k`` if the twin held it and the engine, after its own remove, lacks it
  (always, since the engine just removed it): the count stays exact;
- the LIRS and ARC simulations, by the engines' own ``remove``: the resident key is forgotten,
  its history with it (LIRS drops it from the stack, ARC keeps no ghost of it), exactly what the
  real LIRS or ARC engine does when the cache removes a key. A non-resident key (a LIRS
  history entry, an ARC ghost) is left alone, as the engines leave it.

``ghost=True`` (Python LIRS and ARC simulations only, so slower) instead keeps a ghost of a
removed resident in the simulations: LIRS makes it a non-resident history entry if it is on the
stack (as an eviction of a HIR key does), ARC moves it from T1 to B1 or from T2 to B2 (so a
re-insert is a ghost hit). That predicts a policy the real engines do not run (their remove
forgets), kept as the alternative the brief asked to try.

``clear()`` needs nothing new: ``AutoPolicy.clear`` already clears the twin, makes the engine a
copy of it and starts new simulations and a new account.

A lead found on the way (Session 11): ``auto`` gains up to 7.4 points over ``policy="tinylfu"``
on some delete-heavy points *because* its twin never sees the removals: held on TinyLFU by the
inflated account, it re-syncs to the twin nearly every epoch, and the twin still holds a removed
key where it was (in protected), so the key's re-insert lands in protected again instead of the
window. ``KeepRegionTinyLFU`` (pure Python) does that on purpose: a key removed from protected
(remembered, at most capacity keys, oldest forgotten first) goes back to protected when it is
added again. ``keep=True`` runs ``RemovesPolicy`` on it (engine and twin).

``make(c, **opts)`` returns a ``benchmarks.hitratio.PolicySim`` on ``RemovesPolicy(c, None,
**opts)``; ``opts``: ``ghost``, ``keep`` (0/1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from benchmarks.hitratio import PolicySim
from perflayer.cache import _policy_adaptive as _ad
from perflayer.cache._policy import TinyLFUPolicy
from perflayer.cache._policy_auto import AutoPolicy

__all__ = ["KeepRegionTinyLFU", "RemovesPolicy", "make", "sim_holds"]

_TINY = 0


def _lirs_ghost(sim: Any, key: Hashable) -> None:
    """Make the resident ``key`` of a Python LIRS simulation non-resident, keeping its history."""
    st = sim.state.get(key)
    if st is None or st == _ad._NONRES:
        return
    if st == _ad._LIR:
        sim.n_lir -= 1
    else:
        del sim.q[key]
    sim.n_res -= 1
    if key in sim.s:
        # on the stack: a history entry, as ``_evict_hir`` leaves an evicted HIR key
        sim.state[key] = _ad._NONRES
        sim.nonres[key] = None
        sim._prune()  # the stack's bottom is a LIR key again
    else:
        del sim.state[key]


def _arc_ghost(sim: Any, key: Hashable) -> None:
    """Move the resident ``key`` of a Python ARC simulation to its ghost list (T1->B1, T2->B2)."""
    if sim.t1.pop(key, 0) is None:
        sim.b1[key] = None
    elif sim.t2.pop(key, 0) is None:
        sim.b2[key] = None


_MISSING = object()


class KeepRegionTinyLFU(TinyLFUPolicy):
    """The Python W-TinyLFU whose removed protected key returns to protected when added again."""

    __slots__ = ("_kept", "quiet")

    def __init__(self, max_entries: int | None, max_weight: int | None) -> None:
        super().__init__(max_entries, max_weight)
        self._kept: OrderedDict[Hashable, None] = OrderedDict()
        self.quiet = False  # an adoption's restrict() removes keys the cache never lost

    def remove(self, key: Hashable) -> None:
        """Forget ``key``, remembering it if it was protected (at most capacity keys)."""
        if self._buf:
            self._drain()
        if not self.quiet and self._where.get(key) is self._protected:
            kept = self._kept
            kept[key] = None
            if len(kept) > (self.max_entries or 0):
                kept.popitem(last=False)
        super().remove(key)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` (into protected if it was removed from there) and return the victims."""
        victims = super().add(key, weight)
        if self._kept.pop(key, _MISSING) is None and self._where.get(key) is self._window:
            w = self._window.pop(key)
            self._ww -= w
            self._protected[key] = w
            self._pw += w
            self._where[key] = self._protected
            self._demote_protected()
        return victims

    def copy(self) -> KeepRegionTinyLFU:
        """Return an independent copy (``TinyLFUPolicy.copy``, the kept keys too)."""
        base = super().copy()
        new = KeepRegionTinyLFU.__new__(KeepRegionTinyLFU)
        for name in TinyLFUPolicy.__slots__:
            value = getattr(base, name, _MISSING)
            if value is not _MISSING:
                setattr(new, name, value)
        new._kept = OrderedDict(self._kept)
        new.quiet = self.quiet
        return new

    def clear(self) -> None:
        """Forget every key, every count and the kept keys."""
        super().clear()
        self._kept.clear()


class RemovesPolicy(AutoPolicy):
    """``AutoPolicy`` whose removals reach the twin and the LIRS and ARC simulations too."""

    def __init__(
        self,
        max_entries: int | None,
        max_weight: int | None,
        ghost: bool = False,
        keep: bool = False,
    ) -> None:
        self.ghost = ghost
        self.keep = keep
        super().__init__(max_entries, max_weight)
        if keep:
            # before any access: the engine (and the twin, its copy at the first switch) keeps
            # the region of a removed protected key
            self._engine = KeepRegionTinyLFU(max_entries, max_weight)
            self._bind()

    def _replace(self, index: int) -> None:
        if not self.keep:
            super()._replace(index)
            return
        # why: restrict() removes the twin's keys the cache lacks; they were never removed by
        # the cache, so their regions are not kept
        sim = self._sims[_TINY] or self._engine
        sim.quiet = True  # the copies made from it inherit it
        try:
            super()._replace(index)
        finally:
            for p in (sim, self._sims[_TINY], self._engine):
                if isinstance(p, KeepRegionTinyLFU):
                    p.quiet = False

    def _start(self) -> None:
        super()._start()
        if self.ghost and self._sims:
            c = self.max_entries
            # why: the ghost variant edits the engines' lists, which only the Python classes show
            self._sims[1] = _ad._engine_class("lirs", native=False)(c)
            self._sims[2] = _ad._engine_class("arc", native=False)(c)
            self._bind()

    def remove(self, key: Hashable) -> None:
        """``AutoPolicy.remove``; with ``ghost`` the LIRS and ARC simulations keep a ghost of key.

        (The forget rule is ``AutoPolicy``'s own since its port in session 11: the twin and the
        simulations forget ``key`` with the engine.)
        """
        if not (self.ghost and self._sims):
            super().remove(key)
            return
        r1, r2 = self._r1, self._r2
        self._r1 = self._r2 = _ignore  # the simulations' removal is the ghost's, below
        try:
            super().remove(key)
        finally:
            self._r1, self._r2 = r1, r2
        _lirs_ghost(self._sims[1], key)
        _arc_ghost(self._sims[2], key)


def _ignore(_key: Hashable) -> None:
    """A simulation's remove that does nothing (the ghost variant's own comes after)."""


def sim_holds(policy: AutoPolicy, key: Hashable) -> list[str]:
    """Return the names of the simulations (twin, lirs, arc) that hold ``key`` resident."""
    names = []
    twin = policy._twin if policy._twin is not None else policy._engine
    if policy._sims:
        for name, sim in zip(("twin", "lirs", "arc"), (twin, *policy._sims[1:]), strict=True):
            if key in sim:
                names.append(name)
    return names


def make(c: int, ghost: int = 0, keep: int = 0) -> PolicySim:
    """Return a memo simulator on ``RemovesPolicy(c, None, ghost=bool(ghost), keep=bool(keep))``."""
    return PolicySim(RemovesPolicy(c, None, ghost=bool(ghost), keep=bool(keep)), c)
