"""Adaptive policy selection: miniature simulations of candidate policies pick the real one.

No single policy wins everywhere: W-TinyLFU wins on frequency-skewed traces, LIRS on loops and
on traces ranked by reuse distance, ARC on recency-heavy traces and on a moving hot set.
``AdaptivePolicy`` (``make_policy("adaptive", ...)``) keeps one of three *engines* as the real
policy and runs a miniature simulation of every candidate beside it (Waldspurger et al., "Cache
Modeling and Optimization using Miniature Simulations", USENIX ATC 2017).

Sampling. A key is sampled when its Fibonacci-spread hash falls below ``rate x 2**64`` (spatial
sampling: a sampled key is sampled on every access). Each mini-cache holds ``capacity x rate``
keys. Caches of up to ``_FULL_SHADOW`` (2,048) entries use ``rate = 1``, full shadow metadata,
since a sample would make the mini-caches too coarse; larger ones use ``2,048 / capacity`` (20%
at 10,000 entries, 2% at 100,000), so every mini-cache holds about 2,048 keys. The simulations
see the buffered reads and writes that did not follow their own read miss; removals, expiry and
weights are not simulated.

Deciding. Every sampled access is counted by its hit pattern (which of the three simulations
hit it). Every 256 sampled accesses (an epoch) each candidate's hits are added to a score
decayed by 15/16 per epoch (a horizon of about 4,096 sampled accesses), and for every pair of
candidates the accesses they disagree on (one hit, the other missed) are added to a count
decayed by (15/16)**2. A challenger's lead over the current engine is significant when it
exceeds 3 standard deviations of a sign test (each disagreement a fair coin if the two were
equal: the variance is the decayed disagreement count) and half a point of the decayed access
count; the challenger with the largest significant lead wins. So a clear lead (a loop, a switch
to a recency phase) decides within a few epochs, on a short trace too, while two engines that
differ by noise never switch. No decision in the first 2 x mini capacity sampled accesses (the
mini-caches fill and first churn, when the engines differ only in how they treat cold keys).
After a switch none for ``2 x 2**level`` epochs, where ``level`` grows by one per switch and
falls by one per 64 epochs without a switch: two engines that trade the lead with a trace's
period (a loop tenant near the cache size) back off, a trace whose phases change every few
thousand accesses is still followed.

Switching. With full shadows the real cache *adopts* a copy of the winner's simulation, history
included (LIRS's non-resident stack, ARC's ghosts, TinyLFU's sketch and climbed window): keys
resident in both stay where the simulation has them, keys resident only in the simulation are
dropped from the copy, and keys resident only in the real cache join the copy as its least
valuable residents (probation's LRU end, LIRS's HIR queue front, ARC's T1 LRU end). Nothing is
evicted, so a switch costs no capacity and a short hold is affordable. With sampling the
resident keys migrate, least valuable first, into a fresh engine of the winner, which starts
from its simulation's tuning (TinyLFU's window share, ARC's T1 target scaled to the real
capacity); nothing is evicted. A switch is O(resident keys).

Engines. ``TinyLFUPolicy`` (the first engine), ``_LIRSEngine`` (Jiang and Zhang, SIGMETRICS
2002, 1% HIR; the non-resident history in the stack is bounded to max(3 x capacity, 1,024)
keys, oldest dropped first) and ``_ARCEngine`` (Megiddo and Modha, FAST 2003). LIRS and ARC
count entries only, so a weight-bounded (``max_weight``) or unbounded cache runs TinyLFU alone,
without simulations, and resizing to a weight bound switches back to TinyLFU.
LIRS and ARC, as engines and as simulations, are the C twins of these classes
(``perflayer.cache._engines_c``: the same decisions, tests/cache/test_engines_c.py; about 0.1x
their cost per simulated access, benchmarks/engines_c.py) when the extension is built and
``PERFLAYER_PURE_PYTHON`` is not set; the TinyLFU engine and simulation stay Python (adoption
copies their internals). An adopted C simulation is copied with ``copy()``, which shares the key
objects where ``copy.deepcopy`` of a Python one copies them.

Concurrency and the read path: as TinyLFU's. ``hit`` and ``miss`` are the C ``append`` of one
bounded deque that every engine shares for the policy's life, so the core's bound ``policy.hit``
stays valid across switches; every other call runs under the cache's lock and first feeds the
buffered reads to the simulations, then lets the engine replay them.

Cost per access, paid by the next locked call for each buffered read: the engine's replay (as
TinyLFU's), one Python-level pass over the buffered keys to sample them (a hash, a multiply and a
comparison), and for a sampled key three simulator steps and one list increment (about 1 us
together); a decision is O(1) per epoch. Measured
(``python -m benchmarks.hitratio --cost``, docs/benchmarks.md): about 2x TinyLFU's amortized read
at 10,000 entries (20% sampled) and about 4x at 1,000 entries (full shadows); ``add`` about 2.3x
TinyLFU's. Its successor, ``policy="auto"`` (``_policy_auto``: the default W-TinyLFU as engine
and twin, full simulations only, a regret account), is the default.
"""

from __future__ import annotations

import copy
import importlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from types import ModuleType
from typing import Any, Protocol

from perflayer.cache._native import native_enabled
from perflayer.cache._policy import _READ_BUFFER, TinyLFUPolicy, _check_bounds
from perflayer.errors import ConfigError

_ENGINES_C: ModuleType | None
try:  # the C twins of the LIRS and ARC engines (hatch_build.py); absent without a compiler
    _ENGINES_C = importlib.import_module("perflayer.cache._engines_c")
except ImportError:
    _ENGINES_C = None

__all__ = ["ENGINES", "AdaptivePolicy"]

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_FULL_SHADOW = 2_048  # caches up to this many entries simulate every key
_EPOCH = 256  # sampled accesses between two decisions
_DECAY = 0.9375  # scores are hit counts decayed by a sixteenth every epoch
_Z = 3.0  # a challenger's lead must exceed _Z standard deviations of the sign test,
_MARGIN = 0.005  # and half a point of the decayed accesses
_HOLD = 2  # epochs without a decision after a switch, doubled per recent switch (back-off)
_RELAX = 64  # quiet epochs that halve the back-off again
_HOLD_MAX = 8  # the back-off doubles at most this many times
_WARMUP = 1  # no decision in the first epoch,
_WARMUP_FACTOR = 2  # nor in the first 2 x mini capacity sampled accesses
_NONRES_FACTOR = 3  # LIRS keeps at most 3 x capacity (at least _NONRES_MIN) non-resident keys
_NONRES_MIN = 1_024
_LIR, _HIR, _NONRES = 0, 1, 2
_SENTINEL = object()
_NO_KEY = object()
_NO_DECISION = object()


class _Engine(Protocol):
    """What AdaptivePolicy needs of an engine: the Policy calls plus an eviction order."""

    max_entries: int | None

    @property
    def weight(self) -> int: ...
    def add(self, key: Hashable, weight: int) -> list[Hashable]: ...
    def update(self, key: Hashable, weight: int) -> list[Hashable]: ...
    def remove(self, key: Hashable) -> None: ...
    def clear(self) -> None: ...
    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def order(self) -> list[tuple[Hashable, int]]: ...


def _copy_py_engine(engine: Any, buf: deque[Hashable] | None) -> Any:
    """Return a copy of a Python LIRS/ARC engine on ``buf``, sharing the key objects.

    As the C engines' ``copy``: the structures are new, the keys the same, and every resident
    key has a weight (a simulation keeps none: 1 each).
    """
    new = object.__new__(type(engine))
    for name, value in vars(engine).items():
        setattr(new, name, value.copy() if isinstance(value, (dict, set)) else value)
    new._buf = buf if buf is not None else deque(maxlen=_READ_BUFFER)
    new.wt = dict(engine.order())
    new.weight = sum(new.wt.values())
    return new


def _set_py_weights(engine: Any, mapping: Mapping[Hashable, int]) -> None:
    """Set every resident key's weight to ``mapping.get(key, 1)`` (a Python LIRS/ARC engine)."""
    engine.wt = {k: mapping.get(k, 1) for k, _w in engine.order()}
    engine.weight = sum(engine.wt.values())


# ----------------------------------------------------------------------------------------------
# LIRS
# ----------------------------------------------------------------------------------------------


class _LIRSEngine:
    """LIRS over entries; reads are replayed from the shared buffer on the next locked call."""

    def __init__(self, c: int, buf: deque[Hashable] | None = None) -> None:
        self._buf: deque[Hashable] = buf if buf is not None else deque(maxlen=_READ_BUFFER)
        self.state: dict[Hashable, int] = {}
        self.s: OrderedDict[Hashable, None] = OrderedDict()  # the LIRS stack, last = top
        self.q: OrderedDict[Hashable, None] = OrderedDict()  # resident HIR, first = victim
        self.nonres: OrderedDict[Hashable, None] = OrderedDict()  # oldest first
        self.n_lir = 0
        self.n_res = 0
        self.wt: dict[Hashable, int] = {}  # resident key -> weight (engines only)
        self.weight = 0
        self._size(c)

    def _size(self, c: int) -> None:
        self.max_entries: int | None = c
        self.c = c
        self.l_hirs = max(1, int(c * 0.01)) if c > 1 else 0
        self.l_lirs = c - self.l_hirs

    def __len__(self) -> int:
        return self.n_res

    def __contains__(self, key: object) -> bool:
        st = self.state.get(key)
        return st is not None and st != _NONRES

    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident keys and weights, least valuable first (HIR, then LIR bottom-up)."""
        state, wt = self.state, self.wt
        keys = list(self.q) + [k for k in self.s if state[k] == _LIR]
        return [(k, wt.get(k, 1)) for k in keys]

    def copy(self, buf: deque[Hashable] | None = None) -> _LIRSEngine:
        """Return a copy (the same key objects) on the read buffer ``buf``."""
        new: _LIRSEngine = _copy_py_engine(self, buf)
        return new

    def set_weights(self, mapping: Mapping[Hashable, int]) -> None:
        """Set every resident key's weight to ``mapping.get(key, 1)``."""
        _set_py_weights(self, mapping)

    def _prune(self) -> None:
        s, state = self.s, self.state
        while s:
            k = next(iter(s))
            st = state[k]
            if st == _LIR:
                return
            del s[k]
            if st == _NONRES:
                del state[k]
                del self.nonres[k]

    def _demote_bottom_lir(self) -> None:
        # why: after removes/resizes the bottom of the stack can be a HIR or non-resident key
        # (no LIR key below it to prune to); prune first so only a LIR key is demoted
        self._prune()
        k, _ = self.s.popitem(last=False)
        self.state[k] = _HIR
        self.q[k] = None
        self.n_lir -= 1
        self._prune()

    def _evict_hir(self) -> Hashable:
        """Evict the oldest resident HIR key (its history stays while it is on the stack)."""
        victim, _ = self.q.popitem(last=False)
        if victim in self.s:
            self.state[victim] = _NONRES
            self.nonres[victim] = None
        else:
            del self.state[victim]
        self.n_res -= 1
        return victim

    def _hit(self, x: Hashable, st: int) -> None:
        s, q, state = self.s, self.q, self.state
        if st == _LIR:
            s.move_to_end(x)
            self._prune()
        elif x in s:
            s.move_to_end(x)
            del q[x]
            state[x] = _LIR
            self.n_lir += 1
            if self.n_lir > self.l_lirs:
                self._demote_bottom_lir()
            else:  # the LIR set had room (after removes or a resize): nothing to demote
                self._prune()
        else:
            s[x] = None
            q.move_to_end(x)

    def _insert(self, x: Hashable, st: int | None) -> list[Hashable]:
        """Make the non-resident ``x`` resident; return the evicted keys."""
        s, q, state = self.s, self.q, self.state
        victims: list[Hashable] = []
        if self.n_lir < self.l_lirs and (self.n_res < self.c or q):
            # warm-up, or a LIR deficit left by removals or an adoption: the new key is LIR
            if self.n_res >= self.c:
                victims.append(self._evict_hir())
            if st == _NONRES:
                del self.nonres[x]
            state[x] = _LIR
            s[x] = None
            s.move_to_end(x)
            self.n_lir += 1
            self.n_res += 1
            return victims
        while self.n_res >= self.c and self.n_res > 0:
            if not q:
                self._demote_bottom_lir()
            victims.append(self._evict_hir())
        self.n_res += 1
        if st == _NONRES and x not in self.nonres:
            # the evictions above pruned x's own history off the stack: x arrives as new
            st = None
        if st == _NONRES:
            del self.nonres[x]
            s.move_to_end(x)
            state[x] = _LIR
            self.n_lir += 1
            self._demote_bottom_lir()
        else:
            state[x] = _HIR
            s[x] = None
            q[x] = None
        nonres = self.nonres
        if len(nonres) > max(_NONRES_FACTOR * self.c, _NONRES_MIN) + 16:
            # bound the history: forget the oldest non-resident keys
            for _ in range(len(nonres) - max(_NONRES_FACTOR * self.c, _NONRES_MIN)):
                k, _v = nonres.popitem(last=False)
                del s[k]
                del state[k]
        return victims

    def access(self, x: Hashable) -> bool:
        """Simulate one read-or-insert of ``x``; return True on a hit."""
        return self.take(x) is None

    def take(self, x: Hashable, write: bool = False) -> list[Hashable] | None:
        """Simulate one read-or-insert of ``x``; return None on a hit, else the evicted keys.

        (``write``, a set without a get, is the same access to LIRS.)
        """
        st = self.state.get(x)
        if st is not None and st != _NONRES:
            self._hit(x, st)
            return None
        return self._insert(x, st)

    def _drain(self) -> None:
        buf = self._buf
        items = list(buf)
        buf.clear()
        state = self.state
        hit = self._hit
        for k in items:
            st = state.get(k)
            if st is not None and st != _NONRES:
                hit(k, st)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        if self._buf:
            self._drain()
        st = self.state.get(key)
        wt = self.wt
        if st is not None and st != _NONRES:
            self._hit(key, st)
            self.weight += weight - wt[key]
            wt[key] = weight
            return []
        victims = self._insert(key, st)
        wt[key] = weight
        self.weight += weight
        for v in victims:
            self.weight -= wt.pop(v)
        return victims

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        return self.add(key, weight)

    def remove(self, key: Hashable) -> None:
        if self._buf:
            self._drain()
        st = self.state.get(key)
        if st is None or st == _NONRES:
            return
        del self.state[key]
        self.weight -= self.wt.pop(key, 1)  # (a simulation's keys have no weight: 1, as in C)
        self.s.pop(key, None)
        if st == _LIR:
            self.n_lir -= 1
        else:
            del self.q[key]
        self.n_res -= 1
        self._prune()

    def clear(self) -> None:
        self._buf.clear()
        self.state.clear()
        self.s.clear()
        self.q.clear()
        self.nonres.clear()
        self.wt.clear()
        self.n_lir = self.n_res = self.weight = 0

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        if self._buf:
            self._drain()
        assert max_entries is not None and max_weight is None
        self._size(max_entries)
        victims: list[Hashable] = []
        while self.n_lir > self.l_lirs:
            self._demote_bottom_lir()
        while self.n_res > self.c:
            if not self.q:
                self._demote_bottom_lir()
            victim = self._evict_hir()
            victims.append(victim)
            self.weight -= self.wt.pop(victim, 1)  # a simulation keeps none: 1, as in C
        return victims

    def load(self, items: list[tuple[Hashable, int]]) -> None:
        """Fill an empty engine with ``items`` (least valuable first) without evicting."""
        self.wt.update(items)
        self.weight = sum(self.wt.values())
        keys = [k for k, _w in items]
        n_hir = max(len(keys) - self.l_lirs, 0)
        for i, k in enumerate(keys):
            if i < n_hir:
                self.state[k] = _HIR
                self.q[k] = None
            else:
                self.state[k] = _LIR
                self.s[k] = None
                self.n_lir += 1
        self.n_res = len(keys)

    def prepend(self, keys: list[Hashable]) -> None:
        """Make ``keys`` (least valuable first) resident HIR keys at the victim end, weight 1."""
        state, q, nonres, wt = self.state, self.q, self.nonres, self.wt
        for k in reversed(keys):
            if state.get(k) == _NONRES:
                # why: out of the stack, a hit does not make it LIR over the simulated LIR keys
                del nonres[k]
                del self.s[k]
            state[k] = _HIR
            q[k] = None
            q.move_to_end(k, last=False)
            wt[k] = 1
            self.weight += 1
            self.n_res += 1


# ----------------------------------------------------------------------------------------------
# ARC
# ----------------------------------------------------------------------------------------------


class _ARCEngine:
    """ARC over entries; reads are replayed from the shared buffer on the next locked call."""

    def __init__(self, c: int, buf: deque[Hashable] | None = None) -> None:
        self._buf: deque[Hashable] = buf if buf is not None else deque(maxlen=_READ_BUFFER)
        self.max_entries: int | None = c
        self.c = c
        self.p = 0.0
        self.t1: OrderedDict[Hashable, None] = OrderedDict()
        self.t2: OrderedDict[Hashable, None] = OrderedDict()
        self.b1: OrderedDict[Hashable, None] = OrderedDict()
        self.b2: OrderedDict[Hashable, None] = OrderedDict()
        self.wt: dict[Hashable, int] = {}  # resident key -> weight (engines only)
        self.weight = 0

    def __len__(self) -> int:
        return len(self.t1) + len(self.t2)

    def __contains__(self, key: object) -> bool:
        return key in self.t1 or key in self.t2

    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident keys and weights, least valuable first (T1, then T2)."""
        wt = self.wt
        return [(k, wt.get(k, 1)) for k in (*self.t1, *self.t2)]

    def copy(self, buf: deque[Hashable] | None = None) -> _ARCEngine:
        """Return a copy (the same key objects) on the read buffer ``buf``."""
        new: _ARCEngine = _copy_py_engine(self, buf)
        return new

    def set_weights(self, mapping: Mapping[Hashable, int]) -> None:
        """Set every resident key's weight to ``mapping.get(key, 1)``."""
        _set_py_weights(self, mapping)

    def _replace(self, in_b2: bool) -> Hashable:
        t1, t2 = self.t1, self.t2
        if t1 and (len(t1) > self.p or (in_b2 and len(t1) == self.p) or not t2):
            k, _ = t1.popitem(last=False)
            self.b1[k] = None
        else:
            k, _ = t2.popitem(last=False)
            self.b2[k] = None
        return k

    def _insert(self, x: Hashable) -> list[Hashable]:
        """Make the non-resident ``x`` resident; return the evicted keys."""
        t1, t2, b1, b2, c = self.t1, self.t2, self.b1, self.b2, self.c
        victims: list[Hashable] = []
        full = len(t1) + len(t2) >= c
        if x in b1:
            delta = 1.0 if len(b1) >= len(b2) else len(b2) / len(b1)
            self.p = min(float(c), self.p + delta)
            if full:
                victims.append(self._replace(False))
            del b1[x]
            t2[x] = None
        elif x in b2:
            delta = 1.0 if len(b2) >= len(b1) else len(b1) / len(b2)
            self.p = max(0.0, self.p - delta)
            if full:
                victims.append(self._replace(True))
            del b2[x]
            t2[x] = None
        else:
            l1 = len(t1) + len(b1)
            if l1 >= c:
                if len(t1) < c and b1:
                    b1.popitem(last=False)
                    if full:
                        victims.append(self._replace(False))
                else:
                    k, _ = t1.popitem(last=False)
                    victims.append(k)
            elif l1 + len(t2) + len(b2) >= c:
                if l1 + len(t2) + len(b2) >= 2 * c and b2:
                    b2.popitem(last=False)
                if full:
                    victims.append(self._replace(False))
            t1[x] = None
        # removals can leave the cache over its bound only through resize, handled there
        return victims

    def _hit(self, x: Hashable) -> None:
        t1 = self.t1
        if x in t1:
            del t1[x]
            self.t2[x] = None
        else:
            self.t2.move_to_end(x)

    def access(self, x: Hashable) -> bool:
        """Simulate one read-or-insert of ``x``; return True on a hit."""
        return self.take(x) is None

    def take(self, x: Hashable, write: bool = False) -> list[Hashable] | None:
        """Simulate one read-or-insert of ``x``; return None on a hit, else the evicted keys.

        (``write``, a set without a get, is the same access to ARC.)
        """
        if x in self.t1 or x in self.t2:
            self._hit(x)
            return None
        return self._insert(x)

    def _drain(self) -> None:
        buf = self._buf
        items = list(buf)
        buf.clear()
        t1, t2 = self.t1, self.t2
        for k in items:
            if k in t1:
                del t1[k]
                t2[k] = None
            elif k in t2:
                t2.move_to_end(k)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        if self._buf:
            self._drain()
        wt = self.wt
        if key in self.t1 or key in self.t2:
            self._hit(key)
            self.weight += weight - wt[key]
            wt[key] = weight
            return []
        victims = self._insert(key)
        wt[key] = weight
        self.weight += weight
        for v in victims:
            self.weight -= wt.pop(v)
        return victims

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        return self.add(key, weight)

    def remove(self, key: Hashable) -> None:
        if self._buf:
            self._drain()
        if self.t1.pop(key, 0) is None or self.t2.pop(key, 0) is None:
            self.weight -= self.wt.pop(key, 1)  # (a simulation's keys have no weight: 1, as in C)

    def clear(self) -> None:
        self._buf.clear()
        for od in (self.t1, self.t2, self.b1, self.b2):
            od.clear()
        self.wt.clear()
        self.p = 0.0
        self.weight = 0

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        if self._buf:
            self._drain()
        assert max_entries is not None and max_weight is None
        self.c = self.max_entries = max_entries
        self.p = min(self.p, float(max_entries))
        victims: list[Hashable] = []
        while len(self.t1) + len(self.t2) > self.c:
            v = self._replace(False)
            victims.append(v)
            self.weight -= self.wt.pop(v, 1)  # a simulation keeps none: 1, as in C
        while len(self.b1) + len(self.b2) > self.c:
            (self.b1 if len(self.b1) >= len(self.b2) else self.b2).popitem(last=False)
        return victims

    def load(self, items: list[tuple[Hashable, int]]) -> None:
        """Fill an empty engine with ``items`` (least valuable first) without evicting."""
        for k, w in items:
            self.t2[k] = None
            self.wt[k] = w
            self.weight += w

    def prepend(self, keys: list[Hashable]) -> None:
        """Make ``keys`` (least valuable first) resident at T1's LRU end, weight 1."""
        t1, b1, b2, wt = self.t1, self.b1, self.b2, self.wt
        for k in reversed(keys):
            b1.pop(k, None)
            b2.pop(k, None)
            t1[k] = None
            t1.move_to_end(k, last=False)
            wt[k] = 1
            self.weight += 1


# ----------------------------------------------------------------------------------------------
# TinyLFU as an engine
# ----------------------------------------------------------------------------------------------


class _TinyShadow:
    """A TinyLFUPolicy driven as a memo, for the miniature simulation."""

    def __init__(self, c: int) -> None:
        # the simulations keep the 1,024-read buffer their switching rule was tuned with
        self.p = TinyLFUPolicy(c, None, read_buffer=_READ_BUFFER, climber="sample", ghost=False)

    def access(self, x: Hashable) -> bool:
        """Simulate one read-or-insert of ``x`` (``TinyLFUPolicy.access``); True on a hit."""
        return self.p.access(x)


def restrict(engine: Any, real: Mapping[Hashable, int]) -> None:
    """Make a copied simulation hold exactly ``real``'s keys, with ``real``'s weights.

    The adoption's three steps, on any engine (TinyLFU, LIRS or ARC, C or Python): the copy's
    keys the real cache lacks leave (``remove``: a TinyLFU replays its pending reads first), the
    real cache's keys the copy lacks join as its least valuable residents (``prepend``), and every
    resident takes its real weight (``set_weights``). No key is evicted.
    """
    for k in [k for k, _w in engine.order() if k not in real]:
        engine.remove(k)
    engine.prepend([k for k in real if k not in engine])
    engine.set_weights(real)


def _engine_class(name: str, native: bool = True) -> Any:
    """Return the class of the LIRS or ARC engine: the C twin when built and allowed, else Python.

    The C classes (``perflayer.cache._engines_c``) make exactly the Python classes' decisions
    (tests/cache/test_engines_c.py) at a fraction of the cost (benchmarks/engines_c.py);
    ``PERFLAYER_PURE_PYTHON=1`` in the environment, read when an engine is built, selects Python.
    """
    if native and _ENGINES_C is not None and native_enabled():
        return _ENGINES_C.LIRSEngine if name == "lirs" else _ENGINES_C.ARCEngine
    return _LIRSEngine if name == "lirs" else _ARCEngine


def _is_arc(engine: object) -> bool:
    """Return True for an ARC engine, Python or C."""
    return isinstance(engine, _ARCEngine) or (
        _ENGINES_C is not None and isinstance(engine, _ENGINES_C.ARCEngine)
    )


def _new_engine(
    name: str, c: int, buf: deque[Hashable], window: float = 0.01, *, native: bool = False
) -> _Engine:
    """Return a fresh engine ``name`` on the shared read buffer (C LIRS/ARC if ``native``)."""
    if name in ("lirs", "arc"):
        engine: _Engine = _engine_class(name, native)(c, buf)
        return engine
    p = TinyLFUPolicy(c, None, window=window, climber="sample", ghost=False)
    p._buf = buf
    p.hit = p.miss = buf.append
    return p


def _order(engine: _Engine) -> list[tuple[Hashable, int]]:
    """Return the engine's resident (key, weight) pairs, least valuable first (no replay)."""
    return engine.order()


def _load(engine: _Engine, keys: list[tuple[Hashable, int]]) -> None:
    if isinstance(engine, TinyLFUPolicy):
        for k, w in keys:
            engine.add(k, w)
    else:  # a LIRS or ARC engine, Python or C
        engine.load(keys)  # type: ignore[attr-defined]


# Candidate engines, in order of preference on a tie.
ENGINES: tuple[str, ...] = ("tinylfu", "lirs", "arc")
_START = "tinylfu"
_SHADOWS: dict[str, Callable[[int], Any]] = {
    "tinylfu": _TinyShadow,
    "lirs": lambda c: _engine_class("lirs")(c),
    "arc": lambda c: _engine_class("arc")(c),
}


class OnEngine:
    """The Policy reads of a policy that runs a real engine (``_engine``): len, in, weight."""

    _engine: Any

    def __len__(self) -> int:
        """Return the number of resident keys."""
        return len(self._engine)

    def __contains__(self, key: object) -> bool:
        """Return True if ``key`` is resident."""
        return key in self._engine

    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
        w: int = self._engine.weight
        return w


class AdaptivePolicy(OnEngine):
    """Run the engine (W-TinyLFU, LIRS or ARC) whose miniature simulation leads; see the module.

    >>> p = AdaptivePolicy(max_entries=100, max_weight=None)
    >>> p.add("a", 1), p.engine
    ([], 'tinylfu')
    """

    # why: the read path is one C call, as TinyLFU's: a shared deque's append, valid for life
    hit: Callable[[Hashable], None]
    miss: Callable[[Hashable], None]

    def __init__(
        self, max_entries: int | None, max_weight: int | None, *, start: str = _START
    ) -> None:
        _check_bounds(max_entries, max_weight)
        if start not in ENGINES:
            raise ConfigError(f"start must be one of {ENGINES}, got {start!r}")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._buf: deque[Hashable] = deque(maxlen=_READ_BUFFER)
        self.hit = self._buf.append
        self.miss = self._buf.append
        self.switches = 0
        self.engine = "tinylfu"
        self._engine: _Engine = self._make_tiny(max_entries, max_weight)
        self._setup_shadows()
        if start != "tinylfu" and self._shadows:
            self._engine = _new_engine(start, self.max_entries or 1, self._buf, native=True)
            self.engine = start

    def _make_tiny(self, max_entries: int | None, max_weight: int | None) -> TinyLFUPolicy:
        # the sample climber without the ghost: the policy this one was measured with
        # (docs/benchmarks.md)
        p = TinyLFUPolicy(max_entries, max_weight, climber="sample", ghost=False)
        p._buf = self._buf
        p.hit = p.miss = self._buf.append
        return p

    def _setup_shadows(self) -> None:
        """Size the sampling and the mini-caches for the current bounds (none if weighted)."""
        self._shadows: list[tuple[str, Callable[[Hashable], bool]]] = []
        self._objs: list[Any] = []  # _TinyShadow, then the LIRS and ARC engines (C or Python)
        self._pat = [0] * 8  # this epoch's sampled accesses by hit pattern (bit i: engine i)
        self._score = [0.0] * len(ENGINES)  # decayed simulated hits
        # decayed (squared weights) counts of sampled accesses engines i and j disagree on
        self._var = [[0.0] * len(ENGINES) for _ in ENGINES]
        self._weight = 0.0
        self._seen = 0
        self._level = 0  # the back-off exponent
        self._quiet = 0  # epochs since the last switch
        self._hold = 0
        c = self.max_entries
        if c is None or self.max_weight is not None:
            self._threshold = 0
            self._epoch = 0
            return
        rate = 1.0 if c <= _FULL_SHADOW else _FULL_SHADOW / c
        mini = max(1, round(c * rate))
        self._threshold = 1 << 64 if rate >= 1.0 else int(rate * (1 << 64))
        self._epoch = _EPOCH
        # why: while the mini-caches fill and first churn, the engines differ in how they
        # treat cold keys, a lead that does not last
        self._hold = max(_WARMUP, -(-_WARMUP_FACTOR * mini // _EPOCH))
        self._objs = [_SHADOWS[name](mini) for name in ENGINES]
        self._shadows = [(name, o.access) for name, o in zip(ENGINES, self._objs, strict=True)]

    # -- simulation -----------------------------------------------------------------------------

    def _observe(self, keys: Iterable[Hashable], keep: object = _NO_KEY) -> list[Hashable]:
        """Feed the sampled keys among ``keys`` to every mini-cache; decide at an epoch's end.

        A switch may evict keys (see ``_adopt``), returned here; ``keep`` is never one of them.
        """
        threshold = self._threshold
        a0, a1, a2 = [access for _name, access in self._shadows]
        pat = self._pat
        seen = self._seen
        full = threshold > _MASK64
        for k in keys:
            if not full and ((hash(k) * _GOLDEN) & _MASK64) >= threshold:
                continue
            seen += 1
            # why: one list increment per sampled access; the per-engine hits and the pairwise
            # disagreements the decision needs are read off the 8 patterns once per epoch
            p = 1 if a0(k) else 0
            if a1(k):
                p += 2
            if a2(k):
                p += 4
            pat[p] += 1
        self._seen = seen
        if seen >= self._epoch and keep is not _NO_DECISION:
            return self._decide(keep)
        return []

    def _decide(self, keep: object) -> list[Hashable]:
        """Switch engines when a challenger's decayed lead is both large and significant.

        The lead of engine j over the current engine i is the decayed count of sampled accesses
        that j hit and i missed minus the converse; under "no difference" each disagreement is a
        fair coin, so the lead's variance is the decayed (squared-weight) disagreement count.
        """
        pat = self._pat
        self._pat = [0] * 8
        n = len(ENGINES)
        cur = ENGINES.index(self.engine)
        score = self._score
        var = self._var
        d2 = _DECAY * _DECAY
        for i in range(n):
            score[i] = score[i] * _DECAY + sum(c for p, c in enumerate(pat) if p >> i & 1)
            row = var[i]
            for j in range(n):
                row[j] = row[j] * d2 + sum(c for p, c in enumerate(pat) if (p >> i ^ p >> j) & 1)
        self._weight = self._weight * _DECAY + self._seen
        self._seen = 0
        self._quiet += 1
        if self._quiet >= _RELAX and self._level:
            self._level -= 1
            self._quiet = 0
        if self._hold > 0:
            self._hold -= 1
            return []
        full = self._threshold > _MASK64
        floor = _MARGIN * self._weight
        best = cur
        lead = 0.0
        for j in range(n):
            gain = score[j] - score[cur]
            if gain > lead and gain > floor and gain * gain > _Z * _Z * var[cur][j]:
                best, lead = j, gain
        if best == cur:
            return []
        if full:
            return self._adopt(best, keep)
        self._switch(ENGINES[best])
        return []

    def _switched(self, name: str) -> None:
        """Book-keeping after a switch to ``name``."""
        self.engine = name
        self.switches += 1
        # why: exponential back-off that relaxes again: a trace on which two engines trade the
        # lead (a loop near the cache size) would otherwise pay a migration every few epochs,
        # while a trace whose phases change slowly can still follow each phase
        self._hold = _HOLD << self._level
        self._level = min(self._level + 1, _HOLD_MAX)
        self._quiet = 0

    def _adopt(self, index: int, keep: object) -> list[Hashable]:
        """Full shadows: the real cache takes a copy of the winner's simulation, history included.

        Keys resident in both stay where the simulation has them; keys resident only in the
        simulation are dropped from the copy; keys resident only in the real cache join the copy
        as its least valuable residents (the next victims). No key leaves, so a switch costs no
        capacity. Returns the victims of the switch: none (kept for the callers' contract).
        """
        name = ENGINES[index]
        real = dict(_order(self._engine))
        shadow = self._objs[index]
        buf = self._buf
        buf.clear()  # the simulation has seen these reads already
        new: _Engine
        if isinstance(shadow, _TinyShadow):
            # why: the simulation's pending reads are dropped (the buffer swapped for ours): the
            # policy was measured so (the default's AutoPolicy keeps them)
            new = copy.deepcopy(shadow.p)
            new._buf = buf
            new.hit = new.miss = buf.append
        else:
            # a LIRS or ARC engine, C or Python: a copy that shares the key objects
            new = shadow.copy(buf)
        restrict(new, real)
        self._engine = new
        self._switched(name)
        return []

    def _switch(self, name: str) -> None:
        """Migrate the resident keys into a fresh ``name`` engine (no key leaves)."""
        old = self._engine
        if self._buf:
            # replay pending reads into the old engine so its order is current
            old.remove(_SENTINEL)
        items = _order(old)
        c = self.max_entries
        assert c is not None
        # why: a fresh engine forgets what its simulation has learnt of the trace; start it
        # from the simulation's tuning instead (TinyLFU's window share, ARC's T1 target), so a
        # switch in the middle of a recency phase does not start on a 1% window
        shadow = self._objs[ENGINES.index(name)] if self._objs else None
        window = shadow.p.window_fraction if isinstance(shadow, _TinyShadow) else 0.01
        new = _new_engine(name, c, self._buf, window, native=True)
        _load(new, items)
        if isinstance(new, TinyLFUPolicy):
            new._hits = new._requests = 0  # the load's writes are not a sample of the trace
        elif shadow is not None and _is_arc(new) and _is_arc(shadow):
            new.p = min(float(c), shadow.p * c / shadow.c)  # type: ignore[attr-defined]
        self._engine = new
        self._switched(name)

    # -- Policy ---------------------------------------------------------------------------------

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` and return the keys to evict (never ``key``)."""
        if not self._threshold:
            return self._engine.add(key, weight)
        # the buffered reads, and the write itself unless it follows its own read miss
        items = list(self._buf)
        if not items or items[-1] != key:
            items.append(key)
        victims = self._observe(items, key)
        if victims:
            return victims + self._engine.add(key, weight)
        return self._engine.add(key, weight)

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` and return keys to evict."""
        if self._threshold and self._buf:
            victims = self._observe(list(self._buf), key)
            if victims:
                return victims + self._engine.update(key, weight)
        return self._engine.update(key, weight)

    def remove(self, key: Hashable) -> None:
        """Forget ``key``; unknown keys are ignored."""
        if self._threshold and self._buf:
            self._observe(list(self._buf), _NO_DECISION)
        self._engine.remove(key)

    def clear(self) -> None:
        """Forget every key; the current engine stays."""
        self._engine.clear()

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds and return the keys to evict; a weighted cache runs TinyLFU."""
        _check_bounds(max_entries, max_weight)
        if self._threshold and self._buf:
            self._observe(list(self._buf), _NO_DECISION)
        if (max_weight is not None or max_entries is None) and self.engine != "tinylfu":
            self._switch("tinylfu")
        self.max_entries = max_entries
        self.max_weight = max_weight
        victims = self._engine.resize(max_entries, max_weight)
        self._setup_shadows()
        return victims
