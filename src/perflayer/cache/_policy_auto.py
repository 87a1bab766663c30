"""The default policy: W-TinyLFU that adopts LIRS or ARC only while that provably pays.

``policy="auto"`` (the default of ``Cache``) is the default W-TinyLFU (``TinyLFUPolicy``, this
package's shadow-climbing, ghost-admitting one) on every cache that is not entry-bounded at up
to 2,048 entries: there ``make_policy`` returns the TinyLFU itself, at its cost. On an
entry-bounded cache of up to 2,048 entries ``AutoPolicy`` runs it under a *selection* between
W-TinyLFU, LIRS and ARC, the rule the research calls G (docs/research-adaptive.md, "Session 9",
"Port specification (candidate G)"; prototype benchmarks/prototypes/adaptive3.py).

Why. No policy wins everywhere: W-TinyLFU wins on frequency-skewed traces, LIRS on loops and on
traces ranked by reuse distance, ARC on recency-heavy traces and a moving hot set. On the 60
trace/size points of the hit-ratio benchmark the default TinyLFU is within a point of the best of
LRU, LFU, theine, ARC, LIRS and S3FIFO at 50; this selection at 57 (held-out seeds: 24 -> 28,
22 -> 26, 21 -> 26 of 30), and it is never more than 0.56 points below the default at any point
of the four families (docs/benchmarks.md).

Simulations. Beside the real engine run three full-size simulations, one per candidate, fed
every access the real cache sees (the buffered reads, and a write unless it follows its own
read miss): ``tinylfu`` is an exact twin of the default (the same class and read buffer, a copy
of the engine at the start), ``lirs`` and ``arc`` are the LIRS (Jiang and Zhang, SIGMETRICS 2002)
and ARC (Megiddo and Modha, FAST 2003) engines of ``_policy_adaptive``. Each access is counted
by its hit pattern (which simulations hit it), and whether the *real* cache holds the key.

Deciding (as ``AdaptivePolicy``, with short epochs). Every ``epoch`` accesses (half the
capacity, 64 to 256) each simulation's hits are added to a decayed score (a horizon of about
4,096 accesses) and every pair's disagreements to a decayed count; a challenger whose lead is
above half a point of the decayed accesses and above 3 standard deviations of a sign test (each
disagreement a fair coin) is adopted. No decision during a warm-up of 2 x capacity accesses;
after a switch none for ``2 << level`` epochs, the level growing per switch and relaxing after
64 quiet epochs.

The regret account: why the selection never costs much against the default. The TinyLFU
simulation is the default's exact twin, so ``deficit`` = its hits minus the real cache's hits,
summed since the start, is exactly what the selection has cost (or won: negative) against
running the default. The *budget* is 0.35% of the accesses plus a fifth of the capacity. While
the deficit plus the cost of a return (half the twin's residents the real cache lacks: each a
miss the default would not take) exceeds the budget, the policy adopts the twin and stays on
TinyLFU, whatever the scores say; the budget grows with the accesses, so a cache whose switches
have lost earns the right to switch again only slowly. After a return the engine is the twin
itself (below), so it cannot drift from it. (Until session 11 it was a copy of the twin that
could, and was re-synced when it trailed by 2% of the capacity.) The count of the
twin's residents the real cache lacks is kept from access to access while the account is within
a return of its budget (``_absent``: the twin's ``step`` counts its victims the engine lacks, the
writes count what the engine gains and loses that the twin holds), and counted afresh, O(capacity),
only after an adoption, a resize or a stretch far from the budget.

Adopting. A switch makes the winner's simulation itself the real engine, history included
(LIRS's non-resident stack, ARC's ghosts and target, TinyLFU's sketch, climbed window and
pending reads), seen through a ``SimEngine``: the cache's keys and weights beside it. The
simulation goes on being stepped once per access, as before, through the view, which keeps the
cache's keys beside it. The cache and the simulation differ only in two sets of keys:
- *phantoms*: the simulation's residents the cache lacks (at the switch, keys the old engine did
  not hold; later, a read miss never followed by its ``set``). Each takes a slot until the
  simulation evicts it or the cache adds it;
- *extras*: the cache's keys the simulation lacks (at the switch, the old engine's keys the
  simulation did not hold, least valuable first; later, the simulation's victims, which the cache
  holds until the next write). A write evicts extras, oldest first, while the cache holds more
  than the capacity.
No key leaves at a switch. O(capacity) once, at most once per epoch.

Why the simulation itself and not a copy (the recipe until session 11: a copy restricted to the
real keys, the cache's other keys prepended as its least valuable): the copy then ran beside its
simulation, so every access paid the same policy twice, and a LIRS or ARC copy replayed every
buffered read again. On the 150 points of the hit-ratio families the two recipes are within
0.4 points everywhere (the view +1 point within 1 of the best peer on one held-out family, the
mean gap 0.01-0.05 better on each; docs/research-adaptive.md, "Session 12").

Reads. ``hit`` and ``miss`` are one shared deque's C ``append`` for the policy's life (the
core binds them once), as lock-free as TinyLFU's. Every other call runs under the cache's lock
and first feeds the buffered reads to the simulations, then to the engine: a TinyLFU engine gets
them in its own read ring, LIRS and ARC engines drain the shared deque themselves. That
per-access half is ``AutoCore``, in C where built (``perflayer.cache._auto_c``: 2.4x fewer
instructions than the Python one per new key, 8,646 -> 3,547 at 1,024 entries).

Cost. The reads and an overwrite stay one deque append, as TinyLFU's; the next write pays for
every buffered read the simulations' steps (the twin, LIRS and ARC, one of them the engine
itself after a switch). ``python -m benchmarks.auto_latency --cpu-time`` (paired ratios to
cachetools.LRUCache at 500 / 1,024 / 2,048 entries, docs/benchmarks-cache-latency.md, session
12): a new key into a full cache 1.37x / 1.44x / 1.51x before any switch and 1.44x to 2.20x
after one, depending on the engine and the history (``policy="tinylfu"``: ~0.85x), a 90/10
Zipf get/set stream 1.87x / 1.77x / 1.74x (0.9-1.05x). A small cache that must write fast can
take ``policy="tinylfu"``; above 2,048 entries the two are the same object.


Bounds. A removal (a delete, an expiry, an invalidation) reaches the engine, the twin and both
simulations: each stands for its policy in this cache, which would see it. (Until session 11 only
the engine saw it: the twin then hit keys the cache had dropped, each delete read as regret, and
a delete-heavy cache re-synced every epoch and lost up to 7.4 points against the W-TinyLFU alone;
docs/research-adaptive.md, "Session 11: deletes and expiry".) A key the cache no longer holds is
not removed from the simulations when it expires or is deleted (the cache does not tell the
policy), and weights are not simulated (only an entry bound selects). ``resize`` resizes the
engine and every simulation alike (the memory guard's shrink-and-restore keeps the twin a
twin); to a weight bound, no bound or more than 2,048 entries the policy adopts the TinyLFU twin
if it was elsewhere and runs it alone from then on. ``clear`` forgets the keys, the simulations
and the account, and restarts on a copy of the (cleared) twin.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Hashable
from typing import Any

from perflayer.cache import _policy_adaptive as _ad
from perflayer.cache._native import native_enabled
from perflayer.cache._policy import _check_bounds, read_buffer_size, tinylfu_class
from perflayer.cache._protocols import Policy

try:  # the C per-access half (hatch_build.py compiles it; optional)
    _CAutoCore: Any = importlib.import_module("perflayer.cache._auto_c").AutoCore
except ImportError:  # pragma: no cover - built without a compiler
    _CAutoCore = None

__all__ = ["AutoPolicy", "auto_policy"]

FULL = _ad._FULL_SHADOW  # entry-bounded caches up to this size run the selection
_EPOCH_SCALE = 0.5  # an epoch is this share of the capacity,
_EPOCH_MIN = 64  # at least this many accesses, at most _ad._EPOCH
# why 0.35% and a fifth, not rule G's 0.4% and a quarter: the tighter budget keeps every
# family's points within 1 of the best peer and widens the worst margin against the W-TinyLFU
# from -0.98 to -0.45 points (docs/research-adaptive.md, "Session 10: the account's margin")
_ACCT = 0.0035  # the budget grows by this share of the accesses,
_A0 = 0.2  # from this share of the capacity
_RET = 0.5  # a return costs this share of the twin's residents the real cache lacks
_TINY, _LIRS, _ARC = 0, 1, 2


def selects(max_entries: int | None, max_weight: int | None) -> bool:
    """Return True if a cache with these bounds runs the selection (entry-bounded, <= FULL)."""
    return max_weight is None and max_entries is not None and max_entries <= FULL


def auto_policy(max_entries: int | None, max_weight: int | None) -> Policy:
    """Build ``policy="auto"``: ``AutoPolicy`` where it selects, else the default TinyLFU."""
    if selects(max_entries, max_weight):
        return auto_class()(max_entries, max_weight)
    return tinylfu_class()(max_entries, max_weight)


class SimEngine:
    """An adopted engine that *is* its simulation (the twin, LIRS or ARC), holding the cache's keys.

    Why: an adopted engine used to be a copy of the winning simulation that then ran beside it,
    every access paid twice (the copy's step and the simulation's) and the copy drained every
    buffered read again. This view makes the simulation the engine. (This class is the readable
    reference and serves the pure-Python build; the C build's ``_engines_c.SimEngine`` makes the
    same decisions with its own key table instead of ``wt`` and ``ex``:
    tests/cache/test_sim_engine.py.)

    The cache and the simulation differ in two ways, both kept here:

    - *phantoms*: keys the simulation holds that the cache does not (at the adoption, keys the
      simulation holds and the old engine did not; later, a read miss that is never followed by
      its ``set``: the simulation takes every access as a read-or-insert). Nothing records them:
      a phantom is a simulation resident missing from ``wt``. It takes a slot until the
      simulation evicts it or the cache adds it;
    - *extras* (``ex``, oldest first): keys the cache holds that the simulation does not (at the
      adoption, keys the old engine held and the simulation did not, least valuable first; then
      the simulation's own victims, which the cache holds until the next write evicts them).

    ``wt`` maps every key the cache holds to its weight. Membership (``key in view``) is ``key in
    wt``, and no simulation step changes it: a step moves keys between the simulation and the
    extras only; only the writes (``add``, ``update``, ``remove``, ``resize``) change what the
    cache holds, so a buffered read's key is resident here iff the cache held it when read. A
    write evicts extras, oldest first, while the cache holds more than the capacity; the
    simulation never holds more, so there is always an extra to evict.
    """

    def __init__(self, sim: Any, real: list[tuple[Hashable, int]], buf: deque[Hashable]) -> None:
        self.sim = sim
        self._buf = buf
        self.max_entries: int | None = sim.max_entries
        self.wt: dict[Hashable, int] = dict(real)
        self.weight = sum(self.wt.values())
        self.ex: OrderedDict[Hashable, None] = OrderedDict(
            (k, None) for k, _w in real if k not in sim
        )

    def __len__(self) -> int:
        return len(self.wt)

    def __contains__(self, key: object) -> bool:
        return key in self.wt

    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident keys and weights, least valuable first (the extras first)."""
        wt = self.wt
        return [(k, wt[k]) for k in self.ex] + [(k, wt[k]) for k, _w in self.sim.order() if k in wt]

    def _take(self, key: Hashable, write: bool = False) -> list[Hashable] | None:
        """The simulation's access of ``key``: None on a hit, else its victims; extras kept.

        ``write``: a set without a get, for a TinyLFU simulation (``take(key, True)``).
        """
        victims: list[Hashable] | None = self.sim.take(key, True) if write else self.sim.take(key)
        if victims is None:
            return None
        wt, ex = self.wt, self.ex
        for v in victims:
            if v in wt:
                ex[v] = None  # the cache holds it until the next write
        ex.pop(key, None)
        return victims

    def step(self, key: Hashable) -> bool:
        """The simulation's access of ``key`` (True on a hit), keeping the extras."""
        return self._take(key) is None

    def step_twin(
        self, key: Hashable, other: Container[Hashable] | None = None, write: bool = False
    ) -> int | None:
        """As ``step``, with the TinyLFU twin's ``step(key, other, write)`` contract.

        None on a hit, else how many of the simulation's victims ``other`` lacks (0 for None).
        ``write`` (a set without a get) reaches a TinyLFU simulation only: LIRS and ARC take
        every access as a read-or-insert.
        """
        victims = self._take(key, write)
        if victims is None:
            return None
        return 0 if other is None else sum(1 for v in victims if v not in other)

    def _evict(self) -> list[Hashable]:
        """Evict extras, oldest first, while the cache holds more than the capacity."""
        wt, ex = self.wt, self.ex
        c = self.max_entries
        assert c is not None
        victims: list[Hashable] = []
        while len(wt) > c:
            k, _ = ex.popitem(last=False)
            self.weight -= wt.pop(k)
            victims.append(k)
        return victims

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """The cache stores ``key``: a phantom (or a new key) becomes resident; evict extras."""
        self._buf.clear()  # the simulation has seen these reads (AutoCore's observation)
        wt = self.wt
        if key not in self.sim and key not in wt:
            self.step(key)  # (a write the observation did not see)
        self.weight += weight - wt.get(key, 0)
        wt[key] = weight
        return self._evict()

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` (an overwrite is not an access of the simulation)."""
        return self.add(key, weight)

    def remove(self, key: Hashable) -> None:
        """Forget ``key`` (the caller removes it from the simulation, as from every other)."""
        self._buf.clear()
        w = self.wt.pop(key, None)
        if w is not None:
            self.weight -= w
            self.ex.pop(key, None)

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Resize the simulation; evict extras down to the new capacity."""
        self._buf.clear()
        wt, ex = self.wt, self.ex
        for v in self.sim.resize(max_entries, max_weight):
            if v in wt:
                ex[v] = None
        self.max_entries = max_entries
        return self._evict()

    def clear(self) -> None:
        self._buf.clear()
        self.sim.clear()
        self.wt.clear()
        self.ex.clear()
        self.weight = 0


_ENG: Any = _ad._ENGINES_C
_CViews: Any = getattr(_ENG, "SimEngine", None)  # the C twin, over C LIRS/ARC
_CSIMS: tuple[type, ...] = (_ENG.LIRSEngine, _ENG.ARCEngine) if _CViews is not None else ()
if _CSIMS:
    try:  # the C TinyLFU (the twin, when built) is seen through the C view as well
        _CSIMS += (importlib.import_module("perflayer.cache._tinylfu_c").TinyLFUPolicy,)
    except ImportError:  # pragma: no cover - built without a compiler
        pass
_VIEWS: tuple[type, ...] = (SimEngine,) if _CViews is None else (SimEngine, _CViews)


def sim_engine(sim: Any, real: list[tuple[Hashable, int]], buf: deque[Hashable]) -> Any:
    """Return the engine that is ``sim``, holding the cache's ``real`` (least valuable first).

    The C view (``_engines_c.SimEngine``, decision-identical: tests/cache/test_sim_engine.py)
    over a C LIRS, ARC or TinyLFU simulation; the Python one over anything else.
    """
    if type(sim) in _CSIMS:
        return _CViews(sim, real, buf)
    return SimEngine(sim, real, buf)


class AutoCore:
    """The per-access half of ``AutoPolicy``: feed the simulations and the engine.

    ``AutoPolicy`` sets the state (``_buf``, ``_engine``, ``_tiny``, ``_twin``, ``_a1``, ``_a2``,
    ``_epoch``, ``_seen``, ``_rhits``, ``_pat``) and decides in ``_decide``, which this half
    calls at an epoch's end with the observed keys in ``_batch``. The C twin
    ``perflayer.cache._auto_c.AutoCore`` makes the same calls with the same results
    (tests/cache/test_auto_c.py); this one serves ``PERFLAYER_PURE_PYTHON`` and builds
    without a compiler.
    """

    _buf: deque[Hashable]
    _engine: Any  # a TinyLFUPolicy (C or Python), or a LIRS or ARC engine (C or Python)
    _tiny: bool  # the engine is a TinyLFU: it takes the buffered reads in its own ring
    _twin: Any  # None (the engine is its own twin) or the TinyLFU twin
    _a0: Callable[[Hashable, Any], int | None] | None = None  # the twin's step; None: its own
    _a1: Callable[[Hashable], bool]  # the LIRS simulation's step
    _a2: Callable[[Hashable], bool]  # the ARC simulation's step
    _r1: Callable[[Hashable], None]  # the LIRS simulation's remove
    _r2: Callable[[Hashable], None]  # the ARC simulation's remove
    _epoch: int  # accesses per decision; 0: no selection (the engine alone)
    _seen: int  # this epoch's accesses
    _rhits: int  # this epoch's real hits
    _pat: list[int]  # this epoch's accesses by hit pattern (bit i: simulation i hit)
    _batch: list[Hashable]  # the keys of the observation being decided on
    _wrote: bool = False  # its last key is a set without a get
    _absent: int  # the twin's residents the engine lacks, kept per access; -1: not kept

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` and return the keys to evict (never ``key``)."""
        if self._epoch:
            # the buffered reads, and the write itself unless it follows its own read miss (a
            # set without a get: the twin takes it as policy="tinylfu" does, add only)
            items = list(self._buf)
            write = not items or items[-1] != key
            if write:
                items.append(key)
            self._observe(items, True, write)
        if self._buf:
            self._hand_over()
        return self._write("add", key, weight)

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` and return the keys to evict."""
        if self._buf:
            if self._epoch:
                self._observe(list(self._buf), True)
            self._hand_over()
        return self._write("update", key, weight)

    def remove(self, key: Hashable) -> None:
        """Forget ``key`` in the engine, the twin and the simulations; unknown keys are ignored.

        Why the simulations too: each stands for its policy in this cache, which would see the
        removal (before the first switch the engine is the twin and always did); a twin that
        kept removed keys hit where the cache could not, so every delete read as the
        selection's regret (docs/research-adaptive.md, "Session 11: deletes and expiry").
        """
        if self._buf:
            if self._epoch:
                self._observe(list(self._buf), False)
            self._hand_over()
        engine = self._engine
        twin = self._twin
        if twin is None:
            engine.remove(key)
        elif self._absent < 0:
            engine.remove(key)
            twin.remove(key)
        else:
            held = key in engine
            n = self._absent
            self._absent = -1  # until the count is right again: an exception leaves it unknown
            engine.remove(key)
            if not held and key in twin:
                n -= 1  # absent from the engine, and now from the twin
            twin.remove(key)
            self._absent = n
        if self._epoch:
            self._r1(key)
            self._r2(key)

    def _write(self, name: str, key: Hashable, weight: int) -> list[Hashable]:
        """The engine's add or update of ``key``; the count of absent twin keys kept."""
        engine = self._engine
        if self._twin is None or self._absent < 0:
            victims: list[Hashable] = getattr(engine, name)(key, weight)
            return victims
        # the engine gains ``key`` unless it held it, and loses its victims (``key`` among them
        # only if it left: then its gain and loss cancel, or it was held); a twin resident it
        # gains is absent no more, one it loses is absent again
        held = key in engine
        n = self._absent
        self._absent = -1  # until the count is right again: an exception leaves it unknown
        victims = getattr(engine, name)(key, weight)
        twin = self._twin
        if not held and key in twin:
            n -= 1
        for v in victims:
            if v in twin:
                n += 1
        self._absent = n
        return victims

    def _hand_over(self) -> None:
        """Give the buffered reads to a TinyLFU engine's own ring (LIRS/ARC drain the deque)."""
        if self._tiny:
            buf = self._buf
            items = list(buf)
            buf.clear()
            deque(map(self._engine.hit, items), 0)  # a C loop of hit(k)

    def _observe(self, keys: list[Hashable], decide: bool, write: bool = False) -> None:
        """Feed ``keys`` to every simulation, count the real hits; decide at an epoch's end.

        ``write``: the last key is a set without a get (the twin steps it with ``write``).
        """
        engine = self._engine
        twin = self._twin
        a0: Any = None if twin is None else (twin.step if self._a0 is None else self._a0)
        a1, a2 = self._a1, self._a2
        pat = self._pat
        rh = 0
        n = self._absent
        self._absent = -1  # until the count is right again: an exception leaves it unknown
        other = engine if n >= 0 else None  # the twin counts its victims the engine lacks
        last = len(keys) - 1 if write else -1
        for i, k in enumerate(keys):
            # a buffered read is a real hit iff its key is resident before the engine replays
            # the buffer (a write's own key is never resident); until the first switch the
            # engine is the twin, so its hit is the twin's
            real = k in engine
            rh += real
            if a0 is None:
                p = int(real)
            else:
                lacks = a0(k, other, True) if i == last else a0(k, other)
                p = 1 if lacks is None else 0
                if not p and n >= 0:
                    # the twin gained ``k`` and lost its victims: each absent if the engine
                    # lacks it
                    n += (not real) - lacks
            if a1(k):
                p += 2
            if a2(k):
                p += 4
            pat[p] += 1
        self._absent = n
        self._rhits += rh
        self._seen += len(keys)
        if self._seen >= self._epoch and decide:
            self._batch = keys
            self._wrote = write
            try:
                self._decide()
            finally:
                self._batch = []

    def _missing(self) -> int:
        """Return how many of the twin's residents the real cache lacks.

        Counted (O(capacity)) when not kept (``_absent`` < 0), then kept from access to access.
        """
        twin = self._twin
        if twin is None:
            return 0
        n = self._absent
        if n < 0:
            engine = self._engine
            n = sum(1 for k, _w in twin.order() if k not in engine)
            self._absent = n
        return n

    def _decide(self) -> None:
        raise NotImplementedError  # AutoPolicy's


class _Selection(_ad.OnEngine):
    """The deciding half of the policy: the engine, the simulations, the account; see the module.

    A mixin: the per-access half (``AutoCore``, Python or C) comes second in the bases.
    """

    _buf: deque[Hashable]
    _engine: Any
    _tiny: bool
    _twin: Any
    _a0: Callable[[Hashable, Any], int | None] | None
    _a1: Callable[[Hashable], bool]
    _a2: Callable[[Hashable], bool]
    _r1: Callable[[Hashable], None]
    _r2: Callable[[Hashable], None]
    _epoch: int
    _seen: int
    _rhits: int
    _pat: list[int]
    _batch: list[Hashable]
    _wrote: bool
    # the per-access half's (annotations only: a definition here would shadow it)
    _observe: Callable[..., None]
    _hand_over: Callable[[], None]
    _missing: Callable[[], int]

    # why: the read path is one C call, as TinyLFU's: a shared deque's append, valid for life
    hit: Callable[[Hashable], None]
    miss: Callable[[Hashable], None]

    def __init__(self, max_entries: int | None, max_weight: int | None) -> None:
        _check_bounds(max_entries, max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._buf: deque[Hashable] = deque(maxlen=read_buffer_size(max_entries))
        self.hit = self._buf.append
        self.miss = self._buf.append
        self.engine = "tinylfu"  # the real engine's name
        self._engine: Any = tinylfu_class()(max_entries, max_weight)
        self.switches = 0  # engine changes
        self.locked = 0  # epochs the account held the policy on TinyLFU
        # (accesses seen, engine) at every switch, for the curious and the tests
        self.history: list[tuple[int, str]] = []
        self._sims: list[Any] = []  # the TinyLFU twin, the LIRS and ARC simulations; [] alone
        self._start()

    # -- the selection's state ------------------------------------------------------------------

    def _start(self) -> None:
        """Start the selection afresh on the current engine (a TinyLFU), or run it alone."""
        c = self.max_entries
        self._pat = [0] * 8  # this epoch's accesses by hit pattern (bit i: simulation i hit)
        self._score = [0.0, 0.0, 0.0]  # decayed simulated hits
        # decayed (squared weights) counts of the accesses simulations i and j disagree on
        self._var = [[0.0] * 3 for _ in range(3)]
        self._weight = 0.0  # decayed accesses
        self._seen = 0  # this epoch's accesses
        self._level = 0  # the back-off exponent
        self._quiet = 0  # epochs since the last switch
        self._t = 0  # accesses since the start (the account's total, at epoch ends)
        self._rhits = 0  # this epoch's real hits
        self._deficit = 0  # the twin's hits minus the real cache's, since the start
        self._batch = []
        self._wrote = False  # the last key of the batch is a set without a get
        if c is None or not selects(c, self.max_weight):
            self._sims = []
            self._epoch = 0
            self._hold = 0
            self._bind()
            return
        self._size(c)
        # why: while the simulations fill and first churn they differ only in how they treat
        # cold keys, a lead that does not last
        self._hold = max(_ad._WARMUP, -(-_ad._WARMUP_FACTOR * c // self._epoch))
        # why: until the first switch the engine is the default's twin itself (the same class,
        # bounds and accesses: the same decisions), so the twin is made, a copy of the engine,
        # only at the first switch; until then a real hit is the twin's hit, which saves a third
        # of the simulations' cost on every cache that never switches
        self._sims = [None, _ad._engine_class("lirs")(c), _ad._engine_class("arc")(c)]
        self._bind()

    def _size(self, c: int) -> None:
        """Set the epoch and the per-epoch decay for capacity ``c``."""
        self._epoch = max(_EPOCH_MIN, min(_ad._EPOCH, round(_EPOCH_SCALE * c)))
        # why: the decay per epoch keeps the horizon at ~4,096 accesses whatever the epoch
        self._decay = _ad._DECAY ** (self._epoch / _ad._EPOCH)

    def _bind(self) -> None:
        """Hand the per-access half its state (after any change of the engine or simulations)."""
        view: Any = self._engine if isinstance(self._engine, _VIEWS) else None
        # a TinyLFU engine takes the reads in its own ring; a view's simulation has them
        self._tiny = self.engine == "tinylfu" and view is None
        self._absent = -1  # a new engine or twin: counted afresh when next asked
        if self._sims:
            self._twin, lirs, arc = self._sims
            self._a0 = None  # the twin's own step
            self._a1 = lirs.access
            self._a2 = arc.access
            self._r1 = lirs.remove
            self._r2 = arc.remove
            # the engine is a simulation: that simulation's step is the view's
            if view is not None and view.sim is self._twin:
                self._a0 = view.step_twin
            elif view is not None and view.sim is lirs:
                self._a1 = view.step
            elif view is not None:
                self._a2 = view.step
        else:
            self._twin = None

    # -- Policy (len, in and weight are the engine's: _ad.OnEngine) ------------------------------

    def clear(self) -> None:
        """Forget every key, the simulations and the account; restart on the cleared twin."""
        self._buf.clear()
        if not self._epoch:
            self._engine.clear()
            return
        twin = self._sims[_TINY]
        if twin is None:  # never switched: the engine is the twin
            twin = self._engine
        twin.clear()
        self._engine = twin.copy()
        if self.engine != "tinylfu":
            self.engine = "tinylfu"
            self.switches += 1
            self.history.append((self._t + self._seen, "tinylfu"))
        self._start()

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds of the engine and the simulations; return the keys to evict.

        To bounds without the selection (a weight bound, no bound, more than ``FULL`` entries)
        a LIRS or ARC engine first adopts the TinyLFU twin; the TinyLFU then runs alone.
        """
        _check_bounds(max_entries, max_weight)
        if self._buf:
            if self._epoch:
                self._observe(list(self._buf), False)
            self._hand_over()
        keep = selects(max_entries, max_weight)
        if self._sims and not keep:
            if self.engine != "tinylfu":
                self._adopt(_TINY)
            self._alone()
            self._sims = []
            self._epoch = 0
            self._bind()
        self.max_entries = max_entries
        self.max_weight = max_weight
        victims: list[Hashable] = self._engine.resize(max_entries, max_weight)
        if self._sims and max_entries is not None:
            for sim in self._sims:
                if sim is not None:
                    sim.resize(max_entries, None)
            self._size(max_entries)
            self._absent = -1  # the engine and the twin both evicted: counted afresh
        elif keep:
            self._start()  # back to bounds that select: start afresh on the TinyLFU engine
        return victims

    def _alone(self) -> None:
        """Make a view of the twin a TinyLFU of its own holding the real keys (no selection)."""
        if isinstance(self._engine, _VIEWS):
            view: Any = self._engine
            real = dict(view.order())
            tiny = view.sim
            _ad.restrict(tiny, real)
            self._engine = tiny

    # -- simulation -----------------------------------------------------------------------------

    def _decide(self) -> None:
        """At an epoch's end: the account, then a switch if a challenger leads significantly."""
        pat = self._pat
        seen = self._seen
        c = self.max_entries
        assert c is not None
        self._t += seen
        twin_hits = pat[1] + pat[3] + pat[5] + pat[7]
        self._deficit += twin_hits - self._rhits
        self._rhits = 0
        deficit = self._deficit
        budget = _ACCT * self._t + _A0 * c
        # why: the missing count cannot tip the account while deficit + RET x c fits; it is
        # kept per access only while it might (O(1) an access, against O(c) an epoch counted)
        if deficit + _RET * c <= budget:
            self._absent = -1
        elif deficit + _RET * self._missing() > budget:
            self.locked += 1
            if self.engine != "tinylfu":
                self._update(pat, seen)
                self._adopt(_TINY)
                return
            self._hold = max(self._hold, 1)
        self._update(pat, seen)
        if self._hold > 0:
            self._hold -= 1
            return
        cur = _ad.ENGINES.index(self.engine)
        score = self._score
        var = self._var[cur]
        floor = _ad._MARGIN * self._weight
        best = cur
        lead = 0.0
        for j in range(3):
            gain = score[j] - score[cur]
            if gain > lead and gain > floor and gain * gain > _ad._Z * _ad._Z * var[j]:
                best, lead = j, gain
        if best != cur:
            self._adopt(best)

    def _update(self, pat: list[int], seen: int) -> None:
        """Fold the epoch's hit patterns into the decayed scores and disagreement counts."""
        decay = self._decay
        d2 = decay * decay
        hits = (
            pat[1] + pat[3] + pat[5] + pat[7],
            pat[2] + pat[3] + pat[6] + pat[7],
            pat[4] + pat[5] + pat[6] + pat[7],
        )
        # disagreements: 0-1 differ in patterns 1, 2, 5, 6; 0-2 in 1, 3, 4, 6; 1-2 in 2, 3, 4, 5
        d01 = pat[1] + pat[2] + pat[5] + pat[6]
        d02 = pat[1] + pat[3] + pat[4] + pat[6]
        d12 = pat[2] + pat[3] + pat[4] + pat[5]
        dis = ((0, d01, d02), (d01, 0, d12), (d02, d12, 0))
        score = self._score
        for i in range(3):
            score[i] = score[i] * decay + hits[i]
            row = self._var[i]
            di = dis[i]
            for j in range(3):
                row[j] = row[j] * d2 + di[j]
        self._weight = self._weight * decay + seen
        self._seen = 0
        pat[:] = (0, 0, 0, 0, 0, 0, 0, 0)
        self._quiet += 1
        if self._quiet >= _ad._RELAX and self._level:
            self._level -= 1
            self._quiet = 0

    def _adopt(self, index: int) -> None:
        """Make simulation ``index`` the real engine (a view holding the real keys); a switch."""
        self._replace(index)
        self.engine = _ad.ENGINES[index]
        self._bind()
        self.switches += 1
        self.history.append((self._t, self.engine))
        # why: exponential back-off that relaxes again: a trace on which two engines trade the
        # lead (a loop near the cache size) would otherwise pay an adoption every few epochs,
        # while a trace whose phases change slowly can still follow each phase
        self._hold = _ad._HOLD << self._level
        self._level = min(self._level + 1, _ad._HOLD_MAX)
        self._quiet = 0

    def _replace(self, index: int) -> None:
        """Make simulation ``index`` itself the engine, seen through a view of the real keys."""
        if self._sims[_TINY] is None:
            # the first switch: the twin is the engine as it was before this observation, plus
            # this observation's accesses (which the engine has not replayed yet)
            twin = self._engine.copy()
            batch = self._batch
            wrote = self._wrote and batch
            deque(map(twin.access, batch[:-1] if wrote else batch), 0)
            if wrote:
                twin.take(batch[-1], True)  # the write: as the engine's add will take it
            self._sims[_TINY] = twin
        real = dict(self._engine.order())
        buf = self._buf
        buf.clear()  # the simulations have seen these reads already
        # the simulation itself becomes the engine, seen through a view (SimEngine)
        self._engine = sim_engine(self._sims[index], list(real.items()), buf)


class AutoPolicy(_Selection, AutoCore):
    """W-TinyLFU that adopts LIRS or ARC while their simulations lead and it pays; see the module.

    The pure-Python build (``auto_class`` picks the one with the C per-access half when built).

    >>> p = AutoPolicy(max_entries=100, max_weight=None)
    >>> p.add("a", 1), p.engine
    ([], 'tinylfu')
    """


CAutoPolicy: Any = None  # the class below where the C per-access half was built
if _CAutoCore is not None:

    class CAutoPolicy(_Selection, _CAutoCore):  # type: ignore[misc,no-redef]
        """AutoPolicy on the C per-access half (``_auto_c.AutoCore``): the same decisions.

        >>> p = CAutoPolicy(max_entries=100, max_weight=None)
        >>> p.add("a", 1), p.engine
        ([], 'tinylfu')
        """


def auto_class() -> Callable[[int | None, int | None], Policy]:
    """Return the AutoPolicy class ``policy="auto"`` builds (the C per-access half when built).

    ``PERFLAYER_PURE_PYTHON=1`` in the environment, read when a cache is built, selects Python.
    """
    if CAutoPolicy is not None and native_enabled():
        return CAutoPolicy  # type: ignore[no-any-return]
    return AutoPolicy
