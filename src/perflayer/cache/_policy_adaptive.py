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

Deciding. An epoch is ``max(512, mini capacity)`` sampled accesses. At its end each
candidate's hits are added to a score decayed by 7/8 per epoch. If the best score leads the
current engine's by more than 1 point (of the decayed access count) in two consecutive epochs,
or by more than 4 points once, the cache switches to the first candidate (in the order
W-TinyLFU, LIRS, ARC) within 1 point of the best. No decision is taken in the first epoch nor
before 3 x mini capacity accesses (the mini-caches fill and churn first); after the n-th
switch none for ``4 x 2**(n-1)`` epochs (exponential back-off, so two engines that trade the
lead on a loop near the cache size cannot make the cache pay a switch every few epochs).

Switching. With full shadows the real cache *adopts* a copy of the winner's simulation, history
included (LIRS's non-resident stack, ARC's ghosts, TinyLFU's sketch): keys resident in both
stay, keys resident only in the simulation are dropped from the copy, and keys resident only in
the real cache are returned as victims of the write that triggered the switch (never the key
being written; the bounds hold). With sampling the resident keys migrate, least valuable first,
into a fresh engine of the winner, and nothing is evicted. A switch is O(resident keys).

Engines. ``TinyLFUPolicy`` (the first engine), ``_LIRSEngine`` (Jiang and Zhang, SIGMETRICS
2002, 1% HIR; the non-resident history in the stack is bounded to max(3 x capacity, 1,024)
keys, oldest dropped first) and ``_ARCEngine`` (Megiddo and Modha, FAST 2003). LIRS and ARC
count entries only, so a weight-bounded (``max_weight``) or unbounded cache runs TinyLFU alone,
without simulations, and resizing to a weight bound switches back to TinyLFU.

Concurrency and the read path: as TinyLFU's. ``hit`` and ``miss`` are the C ``append`` of one
bounded deque that every engine shares for the policy's life, so the core's bound ``policy.hit``
stays valid across switches; every other call runs under the cache's lock and first feeds the
buffered reads to the simulations, then lets the engine replay them.

Cost per access, paid by the next locked call for each buffered read: the engine's replay (as
TinyLFU's), one Python-level pass over the buffered keys to sample them (a hash, a multiply and a
comparison), and for a sampled key three simulator steps (about 1 us together). Measured
(``python -m benchmarks.hitratio --cost``, docs/benchmarks.md): about 2x TinyLFU's amortized read
at 10,000 entries (20% sampled) and about 4x at 1,000 entries (full shadows); ``add`` about 2.3x
TinyLFU's. That is why "tinylfu", not "adaptive", is the default.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from typing import Protocol

from perflayer.cache._policy import _READ_BUFFER, TinyLFUPolicy, _check_bounds
from perflayer.errors import ConfigError

__all__ = ["ENGINES", "AdaptivePolicy"]

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_FULL_SHADOW = 2_048  # caches up to this many entries simulate every key
_EPOCH_FACTOR = 1  # an epoch is the mini capacity in sampled accesses
_EPOCH_MIN = 512
_MARGIN = 0.01  # a challenger must lead the current engine by more than 1 point
_DECAY = 0.875  # scores are hit counts decayed by an eighth every epoch
_HOLD = 4  # after the n-th switch, hold the new engine for _HOLD x 2**(n-1) epochs
_STREAK = 2  # in this many consecutive epochs
_WARMUP = 1  # no decision in the first epoch,
_WARMUP_FACTOR = 3  # nor in the first 3 x mini capacity sampled accesses
_CLEAR_LEAD = 4  # a lead of 4 margins switches at once
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
        k, _ = self.s.popitem(last=False)
        self.state[k] = _HIR
        self.q[k] = None
        self.n_lir -= 1
        self._prune()

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
            self._demote_bottom_lir()
        else:
            s[x] = None
            q.move_to_end(x)

    def _insert(self, x: Hashable, st: int | None) -> list[Hashable]:
        """Make the non-resident ``x`` resident; return the evicted keys."""
        s, q, state = self.s, self.q, self.state
        victims: list[Hashable] = []
        if self.n_lir < self.l_lirs and self.n_res < self.c:
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
            victim, _ = q.popitem(last=False)
            if victim in s:
                state[victim] = _NONRES
                self.nonres[victim] = None
            else:
                del state[victim]
            self.n_res -= 1
            victims.append(victim)
        self.n_res += 1
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
        st = self.state.get(x)
        if st is not None and st != _NONRES:
            self._hit(x, st)
            return True
        self._insert(x, st)
        return False

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
        self.weight -= self.wt.pop(key)
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
            victim, _ = self.q.popitem(last=False)
            if victim in self.s:
                self.state[victim] = _NONRES
                self.nonres[victim] = None
            else:
                del self.state[victim]
            self.n_res -= 1
            victims.append(victim)
            self.weight -= self.wt.pop(victim)
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
        if x in self.t1 or x in self.t2:
            self._hit(x)
            return True
        self._insert(x)
        return False

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
            self.weight -= self.wt.pop(key)

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
            self.weight -= self.wt.pop(v)
        while len(self.b1) + len(self.b2) > self.c:
            (self.b1 if len(self.b1) >= len(self.b2) else self.b2).popitem(last=False)
        return victims

    def load(self, items: list[tuple[Hashable, int]]) -> None:
        """Fill an empty engine with ``items`` (least valuable first) without evicting."""
        for k, w in items:
            self.t2[k] = None
            self.wt[k] = w
            self.weight += w


# ----------------------------------------------------------------------------------------------
# TinyLFU as an engine
# ----------------------------------------------------------------------------------------------


def _tiny_order(p: TinyLFUPolicy) -> list[tuple[Hashable, int]]:
    """Return TinyLFU's resident keys, least valuable first (probation, protected, window)."""
    return [*p._probation.items(), *p._protected.items(), *p._window.items()]


class _TinyShadow:
    """A TinyLFUPolicy driven as a memo, for the miniature simulation."""

    def __init__(self, c: int) -> None:
        self.p = TinyLFUPolicy(c, None)

    def access(self, x: Hashable) -> bool:
        p = self.p
        if x in p._where:
            p.hit(x)
            return True
        p.miss(x)
        p.add(x, 1)
        return False


def _new_engine(name: str, c: int, buf: deque[Hashable]) -> _Engine:
    if name == "lirs":
        return _LIRSEngine(c, buf)
    if name == "arc":
        return _ARCEngine(c, buf)
    p = TinyLFUPolicy(c, None)
    p._buf = buf
    p.hit = p.miss = buf.append
    return p


def _order(engine: _Engine) -> list[tuple[Hashable, int]]:
    if isinstance(engine, TinyLFUPolicy):
        return _tiny_order(engine)
    assert isinstance(engine, (_LIRSEngine, _ARCEngine))
    return engine.order()


def _load(engine: _Engine, keys: list[tuple[Hashable, int]]) -> None:
    if isinstance(engine, TinyLFUPolicy):
        for k, w in keys:
            engine.add(k, w)
    else:
        assert isinstance(engine, (_LIRSEngine, _ARCEngine))
        engine.load(keys)


# Candidate engines, in order of preference on a tie.
ENGINES: tuple[str, ...] = ("tinylfu", "lirs", "arc")
_START = "tinylfu"
_SHADOWS: dict[str, Callable[[int], _TinyShadow | _LIRSEngine | _ARCEngine]] = {
    "tinylfu": _TinyShadow,
    "lirs": _LIRSEngine,
    "arc": _ARCEngine,
}


class AdaptivePolicy:
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
            self._engine = _new_engine(start, self.max_entries or 1, self._buf)
            self.engine = start

    def _make_tiny(self, max_entries: int | None, max_weight: int | None) -> TinyLFUPolicy:
        p = TinyLFUPolicy(max_entries, max_weight)
        p._buf = self._buf
        p.hit = p.miss = self._buf.append
        return p

    def _setup_shadows(self) -> None:
        """Size the sampling and the mini-caches for the current bounds (none if weighted)."""
        self._shadows: list[tuple[str, Callable[[Hashable], bool]]] = []
        self._objs: list[_TinyShadow | _LIRSEngine | _ARCEngine] = []
        self._hits = [0] * len(ENGINES)
        self._score = [0.0] * len(ENGINES)
        self._weight = 0.0
        self._seen = 0
        self._streak = 0
        self._hold = 0
        c = self.max_entries
        if c is None or self.max_weight is not None:
            self._threshold = 0
            self._epoch = 0
            return
        rate = 1.0 if c <= _FULL_SHADOW else _FULL_SHADOW / c
        mini = max(1, round(c * rate))
        self._threshold = 1 << 64 if rate >= 1.0 else int(rate * (1 << 64))
        self._epoch = max(_EPOCH_MIN, _EPOCH_FACTOR * mini)
        # why: the first epochs fill the mini-caches; deciding then follows warm-up noise
        self._hold = max(_WARMUP, -(-_WARMUP_FACTOR * mini // self._epoch))
        self._objs = [_SHADOWS[name](mini) for name in ENGINES]
        self._shadows = [(name, o.access) for name, o in zip(ENGINES, self._objs, strict=True)]

    def __len__(self) -> int:
        """Return the number of resident keys."""
        return len(self._engine)

    def __contains__(self, key: object) -> bool:
        """Return True if ``key`` is resident."""
        return key in self._engine

    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
        return self._engine.weight

    # -- simulation -----------------------------------------------------------------------------

    def _observe(self, keys: Iterable[Hashable], keep: object = _NO_KEY) -> list[Hashable]:
        """Feed the sampled keys among ``keys`` to every mini-cache; decide at an epoch's end.

        A switch may evict keys (see ``_adopt``), returned here; ``keep`` is never one of them.
        """
        threshold = self._threshold
        shadows = self._shadows
        hits = self._hits
        seen = self._seen
        full = threshold > _MASK64
        for k in keys:
            if not full and ((hash(k) * _GOLDEN) & _MASK64) >= threshold:
                continue
            seen += 1
            for i, (_name, access) in enumerate(shadows):
                if access(k):
                    hits[i] += 1
        self._seen = seen
        if seen >= self._epoch and keep is not _NO_DECISION:
            return self._decide(keep)
        return []

    def _decide(self, keep: object) -> list[Hashable]:
        """Switch engines when a challenger's decayed hit ratio leads the current one's."""
        score = self._score
        for i, h in enumerate(self._hits):
            score[i] = score[i] * _DECAY + h
        self._weight = self._weight * _DECAY + self._seen
        self._hits = [0] * len(ENGINES)
        self._seen = 0
        if self._hold > 0:
            self._hold -= 1
            return []
        cur = ENGINES.index(self.engine)
        top = max(score)
        margin = _MARGIN * self._weight
        if top - score[cur] > margin:
            self._streak += 1
            if self._streak >= _STREAK or top - score[cur] > _CLEAR_LEAD * margin:
                # among the engines within the margin of the leader, the first in ENGINES wins
                best = next(i for i in range(len(ENGINES)) if top - score[i] <= margin)
                if self._threshold > _MASK64:
                    return self._adopt(best, keep)
                self._switch(ENGINES[best])
        else:
            self._streak = 0
        return []

    def _switched(self, name: str) -> None:
        """Book-keeping after a switch to ``name``."""
        self.engine = name
        self.switches += 1
        self._streak = 0
        # why: exponential back-off; a trace on which two engines trade the lead (a loop near
        # the cache size) would otherwise pay a migration every few epochs
        self._hold = _HOLD << min(self.switches - 1, 8)

    def _adopt(self, index: int, keep: object) -> list[Hashable]:
        """Full shadows: the real cache takes a copy of the winner's simulation, history included.

        Keys resident in both stay; keys resident only in the simulation are dropped from the
        copy; keys resident only in the real cache are returned as victims (but ``keep``).
        """
        name = ENGINES[index]
        real = dict(_order(self._engine))
        shadow = self._objs[index]
        buf = self._buf
        buf.clear()  # the simulation has seen these reads already
        new: _Engine
        if isinstance(shadow, _TinyShadow):
            tiny = copy.deepcopy(shadow.p)
            tiny._buf = buf
            tiny.hit = tiny.miss = buf.append
            total = 0
            for region in (tiny._window, tiny._probation, tiny._protected):
                for k in region:
                    region[k] = real.get(k, 1)
                total += sum(region.values())
            tiny._ww = sum(tiny._window.values())
            tiny._pw = sum(tiny._protected.values())
            tiny._total = total
            resident = list(tiny._where)
            new = tiny
        else:
            other = copy.deepcopy(shadow)
            other._buf = buf
            resident = [k for k, _w in other.order()]
            other.wt = {k: real.get(k, 1) for k in resident}
            other.weight = sum(other.wt.values())
            new = other
        for k in resident:
            if k not in real:
                new.remove(k)
        victims = [k for k in real if k not in new and k != keep]
        if keep in real and keep not in new:
            # the key being written stays resident: the engine takes it on its add
            pass
        self._engine = new
        self._switched(name)
        return victims

    def _switch(self, name: str) -> None:
        """Migrate the resident keys into a fresh ``name`` engine (no key leaves)."""
        old = self._engine
        if self._buf:
            # replay pending reads into the old engine so its order is current
            old.remove(_SENTINEL)
        items = _order(old)
        c = self.max_entries
        assert c is not None
        new = _new_engine(name, c, self._buf)
        _load(new, items)
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
