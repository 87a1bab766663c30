"""Eviction and admission policies of the bounded in-process cache: adaptive W-TinyLFU and LRU.

The cache core owns key -> value; a policy owns only the order in which keys leave. The core
calls ``hit``/``miss`` on every read, ``add``/``update`` on writes and ``remove`` on deletes;
``make_policy("auto" | "tinylfu" | "adaptive" | "lru", max_entries, max_weight)`` builds one.
"auto" is the default (``perflayer.cache._policy_auto``, its own essay): this module's W-TinyLFU
alone on every cache but the entry-bounded ones of up to 2,048 entries, where it runs the
W-TinyLFU under a selection that adopts LIRS or ARC while their simulations lead and a regret
account against the W-TinyLFU's twin allows. "tinylfu" is the W-TinyLFU alone: the C twin of this
module's ``TinyLFUPolicy`` (``perflayer.cache._tinylfu_c``, same decisions, pinned by
tests/cache/test_tinylfu_c.py) where it was compiled, this class otherwise; see
``tinylfu_class``. Change the policy in both. "adaptive"
(``perflayer.cache._policy_adaptive.AdaptivePolicy``, its own essay) is the earlier selection,
on the sample-climber W-TinyLFU and without the account: kept for comparison, it is below the
default on the benchmark families (docs/research-adaptive.md).

Regions. ``TinyLFUPolicy`` splits the capacity into a small *window* LRU (1% at start) and a
*main* segmented LRU: *probation* and *protected* (80% of main). A new key always enters the
window, so a burst of new keys is cached at least briefly. A second use in probation promotes
a key to protected; protected overflow is demoted back to probation's MRU end.

Admission. Keys pushed out of the window are *candidates*. While the cache is over a bound, a
candidate competes with main's *victim* (probation's LRU key): the candidate enters only if its
estimated frequency beats the victim's by more than ``_ADMIT_MARGIN`` (1), otherwise it leaves.
Why a margin: our counters are exact, and a candidate's count includes the access that just
brought it in, while the victim's next access is usually still pending; on a loop larger than
the cache that +1 would admit every candidate and collapse to LRU (0% on the LIRS loop).
Caffeine's 4-bit count-min counters hide this bias through saturation and noise; we remove it.

Ghost admission with regret (``ghost=True``; docs/research-hitratio.md, Session 7, section 4,
and its prototype benchmarks/prototypes/ghost2.py, "E"). The margin also rejects a key that
comes back again and again while the victims' counts stay higher (a working set that shifted). So
a count-bounded cache remembers its rejected candidates in a *ghost*: a direct-mapped table of
2 x ``max_entries`` slots (a 32-bit fingerprint and the 32-bit access clock). A candidate the
frequency test rejects is admitted anyway when its fingerprint is in the ghost, rejected fewer
than ``max_entries`` accesses ago, and it lacks at most one count (``fc + 3 > fv + 1``); it is then
*flagged* until its first probation hit. A feedback score in [-16, 16] judges these admissions:
a flagged key's probation hit adds 1, a flagged key displaced by an admission subtracts 1, and a
victim displaced by a ghost admission is written to a *regret* table (``max_entries`` slots) and
subtracts 1 when it misses again within 2 x ``max_entries`` accesses (the cost the flags cannot
see: the displaced key was needed). While the score is negative only one eligible admission in 8
goes ahead (exploration, so the score can recover). Every other path is unchanged; the
shadows of the climber run without it. Both tables are built at the first admission test (a
cache that never fills never pays for them): 24-48 bytes per ``max_entries``. On the synthetic
families it raises the count of points within 1 point of the best peer 47 -> 50 of 60, 23 -> 24
and 21 -> 22 of 30; its worst loss against the plain policy is 0.71 points. On by default, in
this class and its C twin; ``ghost=False`` is the plain policy (the one the pinned DIGESTS and
SHADOW_DIGESTS of tests/cache/test_write_path_decisions.py record, and the one ``adaptive``'s
engines keep: they were tuned with it).

Sketch aging. ``FrequencySketch`` counts non-resident keys by ``hash(key)`` (so they are never
kept alive): a first sighting only sets a byte in the *doorkeeper* (a one-hash bytearray Bloom
filter), a second one allocates a counter in a dict. A key that becomes resident takes its count
into a dict keyed by the key itself (a hit is then one increment) and hands it back when it
leaves. Counters saturate at 15 when read. After 10 x capacity accesses every counter is halved
and the doorkeeper cleared (TinyLFU's reset), so the sketch holds at most the keys seen twice in
one sample period, and old popularity fades.

Hill climbing: two climbers move capacity between window and main, chosen by ``climber=``. The
*sample* climber ("sample", the default before the shadow climber) is Caffeine's simple one:
every 3 x capacity accesses (at least 256) it compares the sample's hit rate with the previous
one and moves 6.25% of the capacity (protected first), on in the same direction if the hit rate
rose, back if it fell; the step decays by 0.98 a sample and restarts when the rate jumps by 5
points. Unlike Caffeine's, a change below 0.5/sqrt(sample) is sampling noise and holds the split,
so a flat workload (a loop) does not random-walk its window, and the window may take all but one
unit of the capacity (Caffeine stops at protected), so recency-heavy workloads can reach plain
LRU; frequency- and loop-heavy ones shrink it to one unit. At most 1,000 keys move per step. Its
flaw: it compares two periods, so it cannot tell a change of workload from the effect of its own
last move, and it follows phase changes backwards. The *shadow* climber ("shadow", the default)
compares two windows at the same time instead: two shadow W-TinyLFUs (this class, climbing off)
see a hash sample of the keys (one in R: R a power of two with capacity / R >= 512, at most 64;
every key below 1,024 entries), each with capacity / R entries and a window at the real share
minus / plus a probe (6.25%). A sampled access that only one of them hits counts for "up" or
"down". Every 256 sampled accesses the real window moves toward the leader (6.25% of the
capacity, or half the probe if it has widened) if its lead is 3 sigma of a sign test (at least 16
disagreements) and a never-reset copy of the counts (decayed 1/32 an epoch) leads the same way at
2 sigma (so a short phase cannot move the window against the long-run gradient); the probe then
resets and the shadows re-centre on the new share. Otherwise the counts decay 1/8 and the probe
doubles, up to 50%: a flat stretch widens the comparison until it sees a difference (a loop that
fits only a much larger window). Integer arithmetic only. Whatever the workload does next, both
shadows see it, so a change of workload is never mistaken for the effect of a move
(benchmarks/prototypes/shadow_climber.py and docs/benchmarks.md, "A shadow-window climber": 47 of
60 trace/size points within 1 point of the best peer, 34 with the sample climber). Limits: the
shadows count entries, so a cache bounded by weight (or unbounded) runs the sample climber even
with ``climber="shadow"``; ``clear`` and ``resize`` rebuild the shadows empty (at the current
share, for the new capacity), and that is where ``adaptive`` is read for it; the shadows hold
their keys themselves, so up to 2 x capacity / R keys (and up to 4,096 buffered reads each) that
left the cache stay alive until the shadows drop them, ``clear`` or ``resize``; and they make
reads and misses dearer ("Cost per call").

Weights. With ``max_weight`` the regions are sized in weight, otherwise in entries; both bounds
always hold after a write, and the key just written is never returned as a victim.

Concurrency. ``hit`` and ``miss`` are the C ``append`` of a bounded deque: atomic under the GIL,
safe to call without the cache's lock. Every other method must run under the cache's lock; it
first replays the buffered reads in order. The buffer is lossy like Caffeine's read buffer: past
one read per entry (1,024 at least, 4,096 at most) between two writes the oldest are dropped
(only statistics suffer, never bounds). Why per entry: Caffeine drains a full buffer from the
reading thread, ours waits for a write, so an all-hit stretch (a loop or a hot set that fits,
read again) lost all but its last 1,024 reads; those keys were then never promoted nor counted
and the next scan flushed them (``syn-scan-mix`` at 3,197 entries: 53.3% hits, 55.9% now).

Adoption. ``order``, ``prepend``, ``set_weights`` and ``access`` (in both classes) let a policy
that switches engines adopt a simulation's copy (``copy``) and run its simulations through the
public API: the C twin has no internals to reach into.

Cost per call. ``hit``/``miss``: one C call (~40 ns here). Replaying a read: a dict lookup, a
counter increment and a ``move_to_end`` (a probation hit also promotes/demotes one key; a miss's
sketch increment is inlined), about 1.4-1.5x a ``cachetools.LRUCache.get`` including the write
that replays it, paid by that write. ``add``: O(1); the steady state of a full cache is inlined
with the sketch's increment/take/put (one comparison, one eviction, no nested Python call, each
tally written once), about 1.7x a cachetools set (1.95x before that inlining; the rest is the
dict/OrderedDict work and two doorkeeper index computations). Aging: O(counters) every
10 x capacity accesses. Climbing: O(moved keys) every sample. The shadow climber adds to every
replayed read and cache-aside miss a sampling test (a hash, a multiply, a compare), and to a
sampled one two shadow accesses: in this class 1.6x the instructions of an amortized read and
1.3x of a miss + add at 10,000 entries (one key in 16), 3.0x and 3.5x at 500 (full shadows;
callgrind, and wall-time ratios in docs/policy.md). ``LRUPolicy.hit`` is
``OrderedDict.move_to_end`` itself; ``LRUPolicy.add`` inlines the one-victim eviction of a full
count-bounded cache.

References. Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
ACM ToS 2017. Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management",
Middleware 2018. Manes, Caffeine: ``BoundedLocalCache`` and ``FrequencySketch``.
Karedla, Love, Wherry, "Caching strategies to improve disk system performance" (SLRU), 1994.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Hashable, Iterable, Mapping, Sequence

from perflayer.cache._native import native_enabled
from perflayer.cache._protocols import Policy
from perflayer.errors import ConfigError

__all__ = [
    "POLICIES",
    "FrequencySketch",
    "LRUPolicy",
    "TinyLFUPolicy",
    "make_policy",
    "read_buffer_size",
    "tinylfu_class",
]

_NO_KEY = object()


def read_buffer_size(max_entries: int | None) -> int:
    """Return the default read-buffer length for ``max_entries``: one read per entry, bounded."""
    return max(_READ_BUFFER, min(max_entries or 0, _READ_BUFFER_MAX))


def _check_bounds(max_entries: int | None, max_weight: int | None) -> None:
    """Raise ConfigError for a bound that is not None or a positive int."""
    for name, value in (("max_entries", max_entries), ("max_weight", max_weight)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an int or None, got {value!r}")
        if value < 1:
            raise ConfigError(f"{name} must be >= 1 or None, got {value!r}")


class LRUPolicy:
    """Evict the least recently used key first.

    >>> p = LRUPolicy(max_entries=2, max_weight=None)
    >>> p.add("a", 1), p.add("b", 1), p.hit("a"), p.add("c", 1)
    ([], [], None, ['b'])
    """

    __slots__ = ("_order", "_total", "hit", "max_entries", "max_weight")

    # why: ``hit`` is the hot path (every read hit); binding it to the OrderedDict's C method
    # makes a hit exactly one ``move_to_end`` with no Python frame in between.
    hit: Callable[[Hashable], None]

    def __init__(self, max_entries: int | None, max_weight: int | None) -> None:
        _check_bounds(max_entries, max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._order: OrderedDict[Hashable, int] = OrderedDict()
        self._total = 0
        self.hit = self._order.move_to_end

    def __len__(self) -> int:
        """Return the number of resident keys."""
        return len(self._order)

    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
        return self._total

    def miss(self, key: Hashable) -> None:
        """Record a miss (LRU keeps no history, so this does nothing)."""

    def _evict(self, keep: int) -> list[Hashable]:
        """Pop the coldest keys until in bounds, leaving at least ``keep`` keys."""
        order = self._order
        max_entries = self.max_entries
        max_weight = self.max_weight
        victims: list[Hashable] = []
        while len(order) > keep and (
            (max_entries is not None and len(order) > max_entries)
            or (max_weight is not None and self._total > max_weight)
        ):
            victim, w = order.popitem(last=False)
            self._total -= w
            victims.append(victim)
        return victims

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` as the most recent key and return the keys to evict."""
        order = self._order
        old = order.get(key)
        if old is not None:
            self._total -= old
            order.move_to_end(key)
        order[key] = weight
        max_entries = self.max_entries
        if self.max_weight is None:
            if max_entries is not None and len(order) > max_entries:
                # why: the steady state of a full count-bounded cache (one new key, one victim),
                # inlined from _evict(): no second Python frame, no loop.
                victim, w = order.popitem(last=False)
                self._total += weight - w
                return [victim]
            self._total += weight
            return []
        self._total += weight
        if (max_entries is not None and len(order) > max_entries) or self._total > self.max_weight:
            # ``key`` is last, so keeping one key keeps it.
            return self._evict(1)
        return []

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` (a write counts as a use) and return victims."""
        return self.add(key, weight)

    def remove(self, key: Hashable) -> None:
        """Forget ``key``; unknown keys are ignored."""
        w = self._order.pop(key, None)
        if w is not None:
            self._total -= w

    def clear(self) -> None:
        """Forget every key."""
        self._order.clear()
        self._total = 0

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds and return the keys to evict to meet them."""
        _check_bounds(max_entries, max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        return self._evict(0)


# ----------------------------------------------------------------------------------------------
# W-TinyLFU
# ----------------------------------------------------------------------------------------------

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing spreads int keys over the doorkeeper
_COUNTER_MAX = 15  # counters saturate, as Caffeine's 4-bit ones do
_SAMPLE_FACTOR = 10  # the sketch halves after 10 x capacity accesses
_MIN_CAPACITY = 16
_ADMIT_MARGIN = 1  # a candidate must beat the victim by more than this (see the essay)
_PERCENT_WINDOW = 0.01
_PERCENT_PROTECTED = 0.80
_CLIMB_FACTOR = 3.0  # the climber samples 3 x capacity accesses (min _CLIMB_MIN)
_CLIMB_MIN = 256
_CLIMB_NOISE = 0.5  # hold still while the hit-rate change is below 0.5 / sqrt(sample)
_CLIMB_RESTART = 0.05
_CLIMB_STEP = 0.0625
_CLIMB_DECAY = 0.98
_TRANSFER_MAX = 1_000
# the shadow climber (see the essay, "Hill climbing"; benchmarks/prototypes/shadow_climber.py)
_CLIMBERS = ("sample", "shadow")
_SHADOW_MIN = 512  # the shadows hold at least this many keys (full shadows below 2 x this)
_SHADOW_RATE_MAX = 64  # at most one key in 64 is sampled
_SHADOW_PROBE = 0.0625  # the shadows' windows sit at the real share -/+ this (at least)
_SHADOW_PROBE_MAX = 0.5  # a probe doubles per epoch without a decision, up to this
_SHADOW_EPOCH = 256  # sampled accesses between two decisions
_SHADOW_MIN_DIS = 16  # at least this many disagreements before deciding
_SHADOW_Z2 = 9  # the lead must exceed 3 sigma of a sign test: lead**2 > 9 * n
_SHADOW_LONG_Z2 = 4  # the long-horizon lead must agree at 2 sigma: lead**2 >= 4 * n
_SHADOW_DECAY = 3  # counts lose 1/8 per epoch without a decision
_SHADOW_LONG_DECAY = 5  # the long-horizon counts lose 1/32 per epoch, never reset
_SHADOW_BUF_MAX = 4_096  # the shadows replay their reads once their buffer is longer
_SHADOW_READ_BUFFER = 1 << 16  # never reached (see the line above): the shadows are not lossy
# ghost admission with regret (see the essay, "Ghost admission"; docs/research-hitratio.md,
# Session 7, section 4)
_GHOST_FACTOR = 2  # the ghost table has 2 x max_entries slots (rounded up to a power of two)
_REGRET_FACTOR = 1  # the regret table has max_entries slots (likewise)
_REGRET_AGE = 2  # a displaced victim back within 2 x max_entries accesses is a regret
_SCORE_MAX = 16  # the feedback score stays in [-16, 16]
_EXPLORE = 8  # while the score is negative, one eligible ghost admission in 8 goes ahead
_GHOST_BOOST = 3  # a ghost admission needs fc + 3 > fv + _ADMIT_MARGIN
_MASK32 = 0xFFFFFFFF
_READ_BUFFER = 1_024  # the read buffer holds one read per entry, at least this many
# why at most 4,096: the next write replays the whole buffer under the cache's lock, about
# 1.5-2.5 us a read here (a 16,384-read replay took 25-42 ms, 131,072 0.4-0.6 s); 4,096 keeps
# the hit-ratio gain of a per-entry buffer on the benchmark traces (docs/benchmarks.md)
_READ_BUFFER_MAX = 4_096  # and at most this many
# the C twin keeps weights and their total in an int64: set_weights and prepend refuse more
_INT64_MAX = (1 << 63) - 1


def _ghost_table(slots: int) -> tuple[array[int], int]:
    """Return an empty direct-mapped table of at least ``slots`` (>= 2) slots and its shift.

    A slot is ``fingerprint << 32 | clock`` (0: empty): a fingerprint is never 0.
    """
    bits = max(1, (max(1, slots) - 1).bit_length())
    return array("Q", bytes(8 << bits)), 64 - bits


class FrequencySketch:
    """Estimate how often each key was seen recently: doorkeeper + counters + periodic halving.

    Keys are counted by ``hash(key)``, so non-resident keys are never kept alive.
    """

    __slots__ = ("_counts", "_door", "_shift", "additions", "capacity", "period")

    def __init__(self, capacity: int) -> None:
        self._counts: dict[int, int] = {}
        self.additions = 0
        self._size(capacity)

    def _size(self, capacity: int) -> None:
        """Size the doorkeeper and the sample period for about ``capacity`` resident keys."""
        self.capacity = max(_MIN_CAPACITY, capacity)
        self.period = _SAMPLE_FACTOR * self.capacity
        bits = max(10, (8 * self.capacity - 1).bit_length())
        self._door = bytearray(1 << bits)
        self._shift = 64 - bits

    def increment(self, key: Hashable) -> None:
        """Count one access of ``key``."""
        h = hash(key)
        counts = self._counts
        c = counts.get(h)
        if c is None:
            # first sighting in this period sets the doorkeeper byte; the second gets a counter
            i = ((h * _GOLDEN) & _MASK64) >> self._shift
            door = self._door
            if door[i]:
                counts[h] = 1
            else:
                door[i] = 1
        else:
            counts[h] = c + 1  # saturates at _COUNTER_MAX when read
        self.additions += 1

    def frequency(self, key: Hashable) -> int:
        """Return the estimated recent access count of ``key`` (0..16)."""
        h = hash(key)
        c = self._counts.get(h, 0)
        if c > _COUNTER_MAX:
            c = _COUNTER_MAX
        return c + self._door[((h * _GOLDEN) & _MASK64) >> self._shift]

    def take(self, key: Hashable) -> int:
        """Return the estimate for ``key`` and drop its counter (the key becomes resident)."""
        h = hash(key)
        c = self._counts.pop(h, 0)
        if c > _COUNTER_MAX:
            c = _COUNTER_MAX
        return c + self._door[((h * _GOLDEN) & _MASK64) >> self._shift]

    def increment_and_take(self, key: Hashable) -> int:
        """Count one access of ``key``, then ``take`` it: one hash instead of two."""
        h = hash(key)
        i = ((h * _GOLDEN) & _MASK64) >> self._shift
        door = self._door
        c = self._counts.pop(h, None)
        if c is None:
            # first sighting in this period sets the doorkeeper byte; the second gets a count
            if door[i]:
                c = 1
            else:
                door[i] = 1
                c = 0
        else:
            c += 1
        self.additions += 1
        if c > _COUNTER_MAX:
            c = _COUNTER_MAX
        return c + door[i]

    def put(self, key: Hashable, estimate: int) -> None:
        """Store a leaving resident key's count, so its history outlives its residency."""
        h = hash(key)
        c = estimate - self._door[((h * _GOLDEN) & _MASK64) >> self._shift]
        if c > 0:
            self._counts[h] = c

    def age(self, capacity: int) -> None:
        """Halve every counter, clear the doorkeeper and resize for ``capacity`` keys."""
        cap = _COUNTER_MAX
        self._counts = {h: min(c, cap) >> 1 for h, c in self._counts.items() if c > 1}
        self.additions = 0
        self._size(capacity)

    def clear(self) -> None:
        """Forget every count."""
        self._counts.clear()
        self._door = bytearray(len(self._door))
        self.additions = 0

    def __len__(self) -> int:
        """Return the number of keys holding a counter (seen twice or more this period)."""
        return len(self._counts)


class TinyLFUPolicy:
    """Adaptive W-TinyLFU: a window LRU, a frequency-gated segmented main LRU, a hill climber.

    >>> p = TinyLFUPolicy(max_entries=100, max_weight=None)
    >>> p.add("a", 1)
    []
    >>> p.hit("a")
    """

    __slots__ = (
        "_adjust",
        "_buf",
        "_climb_sample",
        "_climber",
        "_climber_moves",
        "_dis_down",
        "_dis_up",
        "_freq",
        "_gage",
        "_gexplore",
        "_ghost_admits",
        "_ghost_on",
        "_gscore",
        "_gshift",
        "_gtab",
        "_hits",
        "_last_miss",
        "_long_down",
        "_long_up",
        "_new_down",
        "_new_up",
        "_pmax",
        "_prev_rate",
        "_probation",
        "_protected",
        "_pw",
        "_regrets",
        "_requests",
        "_rshift",
        "_rtab",
        "_shadow_cap",
        "_shadow_down",
        "_shadow_probe",
        "_shadow_seen",
        "_shadow_step",
        "_shadow_threshold",
        "_shadow_up",
        "_sketch",
        "_step",
        "_tick",
        "_total",
        "_unproven",
        "_where",
        "_window",
        "_wmax",
        "_ww",
        "adaptive",
        "hit",
        "max_entries",
        "max_weight",
        "miss",
    )

    # why: reads are the hot path, so ``hit`` and ``miss`` are the C ``append`` of a bounded
    # deque (no Python frame, safe without a lock); the buffered reads are replayed in order,
    # under the caller's lock, at the start of the next write. A full buffer drops its oldest
    # reads, as Caffeine's read buffer does.
    hit: Callable[[Hashable], None]
    miss: Callable[[Hashable], None]
    # the shadow climber's two shadow caches; None while it is not active (one test on the
    # hot paths)
    _shadow_up: TinyLFUPolicy | None
    _shadow_down: TinyLFUPolicy | None

    def __init__(
        self,
        max_entries: int | None,
        max_weight: int | None,
        *,
        window: float = _PERCENT_WINDOW,
        adaptive: bool = True,
        read_buffer: int | None = None,
        climber: str = "shadow",
        ghost: bool = True,
    ) -> None:
        _check_bounds(max_entries, max_weight)
        if read_buffer is None:
            read_buffer = read_buffer_size(max_entries)
        if not isinstance(window, (int, float)) or not 0.0 <= window <= 1.0:
            raise ConfigError(f"window must be a fraction in [0, 1], got {window!r}")
        if isinstance(read_buffer, bool) or not isinstance(read_buffer, int) or read_buffer < 1:
            raise ConfigError(f"read_buffer must be an int >= 1, got {read_buffer!r}")
        if not isinstance(climber, str) or climber not in _CLIMBERS:
            raise ConfigError(f"climber must be 'sample' or 'shadow', got {climber!r}")
        if not isinstance(ghost, bool):
            raise ConfigError(f"ghost must be True or False, got {ghost!r}")
        self._climber = climber
        self._ghost_on = ghost
        # ghost admission's state (the essay, "Ghost admission"): the access clock is never
        # reset; the tables are sized from max_entries
        self._tick = 0
        self._ghost_admits = self._regrets = 0
        self._unproven: set[Hashable] = set()  # the flagged keys: ghost-admitted, unproven
        self._gscore = self._gexplore = 0
        self._ghost_reset(max_entries)
        self._climber_moves = 0
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.adaptive = adaptive
        self._window: OrderedDict[Hashable, int] = OrderedDict()
        self._probation: OrderedDict[Hashable, int] = OrderedDict()
        self._protected: OrderedDict[Hashable, int] = OrderedDict()
        # key -> the OrderedDict (region) holding it; the values of the regions are weights
        self._where: dict[Hashable, OrderedDict[Hashable, int]] = {}
        # why: resident keys keep their frequency here, keyed by the key itself: a hit is then
        # one str-keyed increment, where the hash-keyed sketch would cost a hash() and a
        # large-int comparison. Keys move to and from the sketch as they enter and leave.
        self._freq: dict[Hashable, int] = {}
        self._ww = 0  # window weight
        self._pw = 0  # protected weight
        self._total = 0
        self._buf: deque[Hashable] = deque(maxlen=read_buffer)
        self.hit = self._buf.append
        self.miss = self._buf.append
        self._last_miss: object = _NO_KEY
        self._sketch = FrequencySketch(self._capacity_hint())
        self._hits = 0
        self._requests = 0  # hits + misses in the climber's sample
        self._prev_rate = 0.0
        self._adjust = 0
        self._wmax = 0
        self._pmax = 0
        self._step = 0.0
        self._climb_sample = 0
        self._size_regions(window)
        self._shadow_reset()

    # -- sizing ---------------------------------------------------------------------------------

    def _ghost_reset(self, max_entries: int | None) -> None:
        """Forget the ghost and regret tables; the next admission test builds them, empty."""
        # the age limit doubles as the switch: 0 (ghost off, or no entry bound) never admits
        # through the ghost nor charges a regret, and never builds the tables
        self._gage = (max_entries or 0) if self._ghost_on else 0
        # why lazily: the tables cost 24-48 bytes per max_entries; a cache that never fills
        # never runs an admission test, so it never reads them (built at the first rejection,
        # they hold exactly what tables built up front would)
        self._gtab: array[int] | None = None
        self._rtab: array[int] | None = None
        self._gshift = self._rshift = 64

    @property
    def _ghost_state(self) -> tuple[int, int, int, int, int]:
        """For tests: (ghost admissions, regrets, score, exploration counter, flagged keys)."""
        return (
            self._ghost_admits,
            self._regrets,
            self._gscore,
            self._gexplore,
            len(self._unproven),
        )

    def _ghost_build(self) -> array[int]:
        """Build the empty ghost and regret tables for the entry bound; return the ghost's."""
        cap = self._gage
        gtab, self._gshift = _ghost_table(_GHOST_FACTOR * cap)
        self._rtab, self._rshift = _ghost_table(_REGRET_FACTOR * cap)
        self._gtab = gtab
        return gtab

    @property
    def ghost(self) -> bool:
        """Return True if ghost admission with regret is on (see the module essay)."""
        return self._ghost_on

    def _ghost_pass(self, gi: int, v: int, fc: int, fv: int) -> bool:
        """Finish event 1's ghost test for a candidate whose fingerprint is in G's slot ``gi``."""
        if (self._tick - v) & _MASK32 >= self._gage or fc + _GHOST_BOOST <= fv + _ADMIT_MARGIN:
            return False
        if self._gscore < 0:
            # a negative score still lets one eligible admission in _EXPLORE through
            self._gexplore += 1
            if self._gexplore % _EXPLORE:
                return False
        gtab = self._gtab
        assert gtab is not None  # the caller read slot gi
        gtab[gi] = 0
        self._ghost_admits += 1
        return True

    def _ghost_reject(self, ck: Hashable, x: int, fc: int, fv: int) -> bool:
        """Event 1 for a candidate the frequency test rejected (``x``: its spread hash).

        Return True for a ghost admission (the candidate is flagged), else remember the
        candidate in the ghost and return False.
        """
        gtab = self._gtab
        if gtab is None:
            gtab = self._ghost_build()
        gi = x >> self._gshift
        fp = (x & _MASK32) | 1
        v = gtab[gi]
        if v >> 32 == fp and self._ghost_pass(gi, v, fc, fv):
            self._unproven.add(ck)
            return True
        gtab[gi] = fp << 32 | (self._tick & _MASK32)
        return False

    def _regret_put(self, key: Hashable) -> None:
        """Remember ``key``, displaced by a ghost admission, in the regret table."""
        rtab = self._rtab
        assert rtab is not None  # built with the ghost's, before any ghost admission
        x = (hash(key) * _GOLDEN) & _MASK64
        rtab[x >> self._rshift] = ((x & _MASK32) | 1) << 32 | (self._tick & _MASK32)

    def _maximum(self) -> int:
        """Return the bound regions are sized in: weight if weighted, else entries (0: none)."""
        if self.max_weight is not None:
            return self.max_weight
        return self.max_entries or 0

    def _capacity_hint(self) -> int:
        """Return about how many keys the cache holds when full (sizes the sketch)."""
        n = len(self._where) + 64
        return n if self.max_entries is None else min(self.max_entries, n)

    def _size_regions(self, window: float) -> None:
        """Split the maximum into window and protected targets; reset the hill climber."""
        maximum = self._maximum()
        self._wmax = max(1, round(window * maximum)) if maximum else 0
        self._pmax = int(_PERCENT_PROTECTED * (maximum - self._wmax))
        self._step = _CLIMB_STEP * maximum
        self._adjust = 0
        self._hits = self._requests = 0
        self._prev_rate = 0.0
        self._climb_sample = max(_CLIMB_MIN, int(_CLIMB_FACTOR * self._sketch.capacity))

    @property
    def window_fraction(self) -> float:
        """Return the current share of the maximum given to the window (the climber moves it)."""
        maximum = self._maximum()
        return self._wmax / maximum if maximum else 1.0

    @property
    def climber(self) -> str:
        """Return the window climber asked for: "sample" or "shadow" (see the module essay)."""
        return self._climber

    @property
    def climber_moves(self) -> int:
        """Return how many window moves the shadow climber made (0 while it is not active)."""
        return self._climber_moves

    def __len__(self) -> int:
        """Return the number of resident keys."""
        return len(self._where)

    @property
    def weight(self) -> int:
        """Return the sum of the resident keys' weights."""
        return self._total

    def __contains__(self, key: object) -> bool:
        """Return True if ``key`` is resident."""
        return key in self._where

    # -- the read buffer ------------------------------------------------------------------------

    def _drain(self) -> None:
        """Replay the buffered reads: reorder hit keys, count every read in the sketch."""
        buf = self._buf
        # why: copy-then-clear is two C calls; a read appended between them is dropped, which
        # a lossy buffer allows (popleft in a loop would cost a call per read).
        items = list(buf)
        buf.clear()
        unproven = self._unproven
        if unproven:
            # a probation hit proves a ghost-admitted key: the score gains, before the shadow
            # climber's decision can move keys between regions
            where_get = self._where.get
            probation = self._probation
            for key in items:
                if key in unproven and where_get(key) is probation:
                    unproven.discard(key)
                    if self._gscore < _SCORE_MAX:
                        self._gscore += 1
        if self._shadow_up is not None:
            # the shadow climber sees the reads first (as the prototype does): a decision it
            # makes moves the window before these reads are replayed
            self._observe(items)
        get_region = self._where.get
        where = self._where
        protected = self._protected
        probation = self._probation
        sketch = self._sketch
        counts = sketch._counts
        door = sketch._door
        shift = sketch._shift
        freq = self._freq
        protected_mte = protected.move_to_end
        weighted = self.max_weight is not None
        pmax = self._pmax
        pw = self._pw
        misses = 0
        last_miss: object = _NO_KEY
        # why: a key whose hash() or == raises stops the replay; the protected weight moved
        # so far is written back first, so the regions and their tallies stay consistent
        try:
            for key in items:
                region = get_region(key)
                if region is None:
                    last_miss = key
                    misses += 1
                    # FrequencySketch.increment, inlined (the additions are counted below)
                    h = hash(key)
                    c = counts.get(h)
                    if c is None:
                        i = ((h * _GOLDEN) & _MASK64) >> shift
                        if door[i]:
                            counts[h] = 1
                        else:
                            door[i] = 1
                    else:
                        counts[h] = c + 1  # saturates at _COUNTER_MAX when read
                    continue
                # the cap is applied when counters are read or halved
                freq[key] += 1
                if region is protected:
                    # why: the commonest hit of a warm cache, with the bound method bound once
                    protected_mte(key)
                elif region is probation:
                    # a second use in main: promote to protected, demote protected's LRU overflow
                    w = probation.pop(key)
                    protected[key] = w
                    where[key] = protected
                    pw += w
                    while protected and (pw if weighted else len(protected)) > pmax:
                        k2, w2 = protected.popitem(last=False)
                        pw -= w2
                        probation[k2] = w2
                        where[k2] = probation
                else:
                    region.move_to_end(key)
        except BaseException:
            self._pw = pw
            raise
        self._pw = pw
        n = len(items)
        self._hits += n - misses
        requests = self._requests + n
        self._requests = requests
        self._tick += n
        self._last_miss = last_miss
        additions = sketch.additions + n
        sketch.additions = additions
        # why: _maintain() inlined as a test; it runs once per sample period
        if additions >= sketch.period or (self.adaptive and requests >= self._climb_sample):
            self._maintain()

    def _maintain(self) -> None:
        """Age the sketch and run the hill climber when their sample periods are full."""
        sketch = self._sketch
        if sketch.additions >= sketch.period:
            sketch.age(self._capacity_hint())
            freq = self._freq
            cap = _COUNTER_MAX
            for k, c in freq.items():
                freq[k] = (c if c < cap else cap) >> 1
            self._climb_sample = max(_CLIMB_MIN, int(_CLIMB_FACTOR * sketch.capacity))
        if self.adaptive and self._requests >= self._climb_sample:
            if self._shadow_up is None:
                self._climb()
            else:
                # the shadow climber moves the window; the sample's counts only restart
                self._hits = self._requests = 0

    def _demote_protected(self) -> None:
        """Move protected LRU keys to probation's MRU end until protected is within its target."""
        protected = self._protected
        probation = self._probation
        where = self._where
        weighted = self.max_weight is not None
        while protected and (self._pw if weighted else len(protected)) > self._pmax:
            k, w = protected.popitem(last=False)
            self._pw -= w
            probation[k] = w
            where[k] = probation

    # -- hill climbing --------------------------------------------------------------------------

    def _climb(self) -> None:
        """Move window/main capacity in the direction that last raised the hit rate (Caffeine)."""
        requests = self._requests
        rate = self._hits / requests
        change = rate - self._prev_rate
        if abs(change) < _CLIMB_NOISE / requests**0.5:
            # within sampling noise: hold the current split
            self._prev_rate = rate
            self._hits = self._requests = 0
            return
        amount = self._step if change >= 0 else -self._step
        if abs(change) >= _CLIMB_RESTART:
            self._step = _CLIMB_STEP * self._maximum() * (1.0 if amount >= 0 else -1.0)
        else:
            self._step = _CLIMB_DECAY * amount
        self._prev_rate = rate
        self._hits = self._requests = 0
        self._move_window(int(amount))

    def _move_window(self, amount: int) -> None:
        """Move ``amount`` units of capacity into the window (out of it when negative)."""
        self._adjust = amount
        if amount > 0:
            self._increase_window()
        elif amount < 0:
            self._decrease_window()

    def _protected_cap(self) -> int:
        """Return the largest protected target for the current window: 80% of main."""
        return int(_PERCENT_PROTECTED * (self._maximum() - self._wmax))

    def _increase_window(self) -> None:
        """Take capacity from main (protected first), and move main's LRU keys into the window."""
        # the window may grow past protected into probation, up to all but one unit: a purely
        # recency-driven workload is then served by (nearly) plain LRU
        quota = min(self._adjust, max(0, self._maximum() - 1 - self._wmax))
        self._pmax = max(0, self._pmax - quota)
        self._wmax += quota
        self._demote_protected()
        weighted = self.max_weight is not None
        where = self._where
        window = self._window
        moved = 0
        while quota > 0 and moved < _TRANSFER_MAX:
            src = self._probation if self._probation else self._protected
            if not src:
                break
            k, w = src.popitem(last=False)
            if src is self._protected:
                self._pw -= w
            window[k] = w
            where[k] = window
            self._ww += w
            quota -= w if weighted else 1
            moved += 1
        # capacity not backed by moved keys goes back to protected, to be retried next climb
        if quota > 0:
            self._wmax -= quota
            self._pmax = min(self._pmax + quota, self._protected_cap())
        self._adjust = 0

    def _decrease_window(self) -> None:
        """Give window capacity to protected, and move the window's LRU keys into probation."""
        quota = min(-self._adjust, max(0, self._wmax - 1))
        self._wmax -= quota
        self._pmax = min(self._pmax + quota, self._protected_cap())
        weighted = self.max_weight is not None
        where = self._where
        window = self._window
        probation = self._probation
        moved = 0
        while window and (self._ww if weighted else len(window)) > self._wmax:
            if moved >= _TRANSFER_MAX:
                break
            k, w = window.popitem(last=False)
            self._ww -= w
            probation[k] = w
            where[k] = probation
            moved += 1
        self._adjust = 0

    # -- the shadow climber ---------------------------------------------------------------------

    def _shadow_reset(self) -> None:
        """Build the shadow climber's state for the current bounds and share, or switch it off.

        Active iff ``adaptive``, ``climber="shadow"`` and a count bound alone (the shadows count
        entries); evaluated here, at construction, ``clear()`` and ``resize()``. The moves made
        so far are kept.
        """
        cap = self.max_entries
        if not (self.adaptive and self._climber == "shadow" and self.max_weight is None and cap):
            self._shadow_up = self._shadow_down = None
            return
        # one key in r is sampled, r a power of two with cap / r >= 512, r <= 64
        r = 1
        while r < _SHADOW_RATE_MAX and cap // (2 * r) >= _SHADOW_MIN:
            r *= 2
        self._shadow_threshold = (1 << 64) if r == 1 else (1 << 64) // r
        cap_s = max(2, cap // r)
        self._shadow_cap = cap_s
        self._shadow_step = max(1, round(_CLIMB_STEP * cap))
        self._shadow_probe = _SHADOW_PROBE
        f = self._wmax / cap
        self._shadow_down = TinyLFUPolicy(
            cap_s,
            None,
            window=min(max(0.0, f - _SHADOW_PROBE), 1.0),
            adaptive=False,
            read_buffer=_SHADOW_READ_BUFFER,
            ghost=False,
        )
        self._shadow_up = TinyLFUPolicy(
            cap_s,
            None,
            window=min(max(0.0, f + _SHADOW_PROBE), 1.0),
            adaptive=False,
            read_buffer=_SHADOW_READ_BUFFER,
            ghost=False,
        )
        self._shadow_seen = 0
        self._dis_up = self._dis_down = 0
        self._new_up = self._new_down = 0
        self._long_up = self._long_down = 0

    def _shadow_target(self, shadow: TinyLFUPolicy, frac: float) -> None:
        """Move ``shadow``'s window to ``frac`` of its capacity (at least 1, at most all but 1)."""
        cap_s = self._shadow_cap
        target = min(max(1, round(frac * cap_s)), cap_s - 1)
        shadow._drain()
        shadow._move_window(target - shadow._wmax)

    def _shadow_retarget(self, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        """Centre the shadows' windows on the real share, the probe apart on either side."""
        f = self._wmax / self._maximum()
        p = self._shadow_probe
        self._shadow_target(down, f - p)
        self._shadow_target(up, f + p)

    def _observe(self, keys: Iterable[Hashable]) -> None:
        """Feed the sampled ``keys`` to both shadows; count the accesses they disagree on."""
        up = self._shadow_up
        down = self._shadow_down
        assert up is not None and down is not None  # only called while active
        threshold = self._shadow_threshold
        full = threshold > _MASK64
        uw = up._where
        dw = down._where
        ub = up._buf.append
        db = down._buf.append
        du = du0 = self._dis_up
        dd = dd0 = self._dis_down
        seen = self._shadow_seen
        # why try/finally: a key whose hash() or == raises stops the loop; the keys fed so
        # far stay counted
        try:
            for k in keys:
                if not full and ((hash(k) * _GOLDEN) & _MASK64) >= threshold:
                    continue
                seen += 1
                hu = k in uw
                hd = k in dw
                ub(k)
                if not hu:
                    up.add(k, 1)
                db(k)
                if not hd:
                    down.add(k, 1)
                if hu != hd:
                    if hu:
                        du += 1
                    else:
                        dd += 1
        finally:
            self._new_up += du - du0
            self._new_down += dd - dd0
            self._dis_up = du
            self._dis_down = dd
            self._shadow_seen = seen
        # all-hit stretches: keep the shadows' buffers short (they are never lossy)
        if len(up._buf) > _SHADOW_BUF_MAX:
            up._drain()
        if len(down._buf) > _SHADOW_BUF_MAX:
            down._drain()
        if seen >= _SHADOW_EPOCH:
            self._shadow_decide(up, down)

    def _shadow_decide(self, up: TinyLFUPolicy, down: TinyLFUPolicy) -> None:
        """End an epoch: move the window one step toward a significant leader, or widen the probe.

        Integers only, and bounded: an epoch ends at the first replay that brings it to 256
        sampled accesses, so the counts gain at most G = 255 + the read buffer's length per epoch
        (one per sampled access); ``_dis_*`` lose 1/8 per epoch (reset by a move or a wider
        probe), so stay below 8 x G; the long-horizon ``_long_*`` lose 1/32 per epoch and are
        never reset, so stay below 32 x G (about 1.4e5 with the default buffer: squared, 2e10).
        """
        self._shadow_seen = 0
        du = self._dis_up
        dd = self._dis_down
        n = du + dd
        lead = du - dd
        lu = self._long_up + self._new_up
        ld = self._long_down + self._new_down
        self._long_up = lu - (lu >> _SHADOW_LONG_DECAY)
        self._long_down = ld - (ld >> _SHADOW_LONG_DECAY)
        self._new_up = self._new_down = 0
        ll = lu - ld
        # the long-horizon lead must point the same way, at 2 sigma
        agree = ll != 0 and (ll > 0) == (lead > 0) and ll * ll >= _SHADOW_LONG_Z2 * (lu + ld)
        if agree and n >= _SHADOW_MIN_DIS and lead * lead > _SHADOW_Z2 * n:
            cap = self._maximum()
            # a decision at a widened probe moves half the probe (at least one step): the leader
            # is that far away (docs/research-hitratio.md, section 5: held-out family 20 -> 23 of
            # 30 points within 1 point of the best peer)
            step = max(self._shadow_step, round(self._shadow_probe * cap / 2))
            if lead > 0:
                amount = min(step, max(0, cap - 1 - self._wmax))
            else:
                amount = -min(step, max(0, self._wmax - 1))
            self._dis_up = self._dis_down = 0
            if amount:
                self._move_window(amount)
                self._climber_moves += 1
                self._shadow_probe = _SHADOW_PROBE
                self._shadow_retarget(up, down)
                return
            # pinned at a bound: as good as no decision (the probe may widen)
            du = dd = 0
        if self._shadow_probe < _SHADOW_PROBE_MAX:
            # no decision: compare farther apart
            self._shadow_probe = min(2 * self._shadow_probe, _SHADOW_PROBE_MAX)
            self._shadow_retarget(up, down)
            self._dis_up = self._dis_down = 0
            return
        self._dis_up = du - (du >> _SHADOW_DECAY)
        self._dis_down = dd - (dd >> _SHADOW_DECAY)

    # -- writes ---------------------------------------------------------------------------------

    def _over(self) -> bool:
        """Return True while the resident keys exceed a bound."""
        return (self.max_entries is not None and len(self._where) > self.max_entries) or (
            self.max_weight is not None and self._total > self.max_weight
        )

    def _drop(self, key: Hashable, region: OrderedDict[Hashable, int]) -> None:
        """Remove ``key`` from ``region`` and every tally."""
        w = region.pop(key)
        del self._where[key]
        self._sketch.put(key, self._freq.pop(key))
        self._total -= w
        if region is self._window:
            self._ww -= w
        elif region is self._protected:
            self._pw -= w

    def _evict(self, new_key: object) -> list[Hashable]:
        """Spill the window into main through the TinyLFU filter; evict until within bounds."""
        window = self._window
        probation = self._probation
        where = self._where
        sketch = self._sketch
        freq = self._freq
        weighted = self.max_weight is not None
        victims: list[Hashable] = []
        # 1. keys beyond the window's target leave it, oldest first, as admission candidates
        candidates: list[tuple[Hashable, int]] = []
        while window and (self._ww if weighted else len(window)) > self._wmax:
            k, w = window.popitem(last=False)
            self._ww -= w
            candidates.append((k, w))
        # 2. while over a bound, the candidate and main's LRU victim compete on frequency
        ci = 0
        nc = len(candidates)
        while self._over():
            vk, vregion = self._victim(new_key)
            if ci < nc:
                ck, cw = candidates[ci]
                if vregion is None:
                    if ck == new_key:
                        break  # only the new key is left: the core rejects oversized values
                    del where[ck]
                    sketch.put(ck, freq.pop(ck))
                    self._total -= cw
                    victims.append(ck)
                    ci += 1
                    continue
                ghost = False
                if ck != new_key:
                    fc = min(freq[ck], _COUNTER_MAX)
                    fv = min(freq[vk], _COUNTER_MAX)
                    if fc <= fv + _ADMIT_MARGIN:
                        # the frequency test rejects: a recently rejected candidate may still
                        # enter through the ghost (the essay, "Ghost admission")
                        if self._gage:
                            ghost = self._ghost_reject(ck, (hash(ck) * _GOLDEN) & _MASK64, fc, fv)
                        if not ghost:
                            # rejected: the candidate leaves
                            del where[ck]
                            sketch.put(ck, freq.pop(ck))
                            self._total -= cw
                            victims.append(ck)
                            ci += 1
                            continue
                # admitted: the victim leaves and the candidate enters probation
                self._drop(vk, vregion)
                victims.append(vk)
                if ghost:
                    self._regret_put(vk)  # a regret if it comes back soon
                if vk in self._unproven:
                    # a ghost-admitted key displaced before any probation hit
                    self._unproven.discard(vk)
                    if self._gscore > -_SCORE_MAX:
                        self._gscore -= 1
                probation[ck] = cw
                where[ck] = probation
                ci += 1
                continue
            if vregion is not None:
                self._drop(vk, vregion)
                victims.append(vk)
                continue
            # main is empty: evict from the window, never the new key (an empty window: an
            # update left one key over max_weight, which the core rejects up front)
            if not window:
                break
            vk = next(iter(window))
            if vk == new_key:
                break
            self._drop(vk, window)
            victims.append(vk)
        # 3. candidates not needed to decide anything enter probation
        for k, w in candidates[ci:]:
            probation[k] = w
            where[k] = probation
        unproven = self._unproven
        if unproven:
            # a key's flag leaves with it
            for k in victims:
                unproven.discard(k)
        return victims

    def _victim(self, new_key: object) -> tuple[Hashable, OrderedDict[Hashable, int] | None]:
        """Return main's least valuable key (probation LRU, then protected LRU) but ``new_key``."""
        for region in (self._probation, self._protected):
            for k in region:
                if k != new_key:
                    return k, region
        return _NO_KEY, None

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key`` into the window and return the keys to evict (never ``key``)."""
        # why: this is every new key's write, so the sketch's increment/take/put are inlined
        # (no Python frames), attributes are read once into locals, and the tallies of the
        # steady state are written once each.
        where = self._where
        if key in where:
            return self.update(key, weight)  # update() replays the buffer first
        h = hash(key)
        x = (h * _GOLDEN) & _MASK64
        # a regret: a victim displaced by a ghost admission is back soon (before the replay and
        # the clock, as specified); an empty slot (always, with the ghost off) costs one test
        rtab = self._rtab
        if rtab is not None:
            ri = x >> self._rshift
            v = rtab[ri]
            if v and v >> 32 == (x & _MASK32) | 1:
                rtab[ri] = 0
                if (self._tick - v) & _MASK32 < _REGRET_AGE * self._gage:
                    self._regrets += 1
                    if self._gscore > -_SCORE_MAX:
                        self._gscore -= 1
        buf = self._buf
        if buf:
            if len(buf) == 1 and buf[0] == key:
                # why: cache-aside: the only buffered read is the miss that led to this add;
                # counting it here skips a replay. The shadow climber sees the miss first,
                # with its sampling test inlined: only a sampled key costs a call (given the key,
                # not the deque: a read appended meanwhile by another thread would break an
                # iteration of the deque).
                if self._shadow_up is not None and x < self._shadow_threshold:
                    self._observe((key,))
                buf.clear()
                self._requests += 1
                self._tick += 1
                self._last_miss = _NO_KEY
                count = True
            else:
                self._drain()
                # the read miss before this write, or the write itself: one access either way
                count = self._last_miss != key
                self._last_miss = _NO_KEY
        else:
            last_miss = self._last_miss
            # why: an identity test first; ``_NO_KEY != key`` costs a reflected rich compare
            if last_miss is _NO_KEY:
                count = True
            else:
                count = last_miss != key
                self._last_miss = _NO_KEY
        sketch = self._sketch
        counts = sketch._counts
        door = sketch._door
        shift = sketch._shift
        i = x >> shift
        if count:
            # FrequencySketch.increment_and_take, inlined
            c = counts.pop(h, None)
            if c is None:
                if door[i]:
                    f = 2
                else:
                    door[i] = 1
                    f = 1
            else:
                f = (c + 1 if c < _COUNTER_MAX else _COUNTER_MAX) + door[i]
            additions = sketch.additions + 1
            sketch.additions = additions
            if additions >= sketch.period or self._requests >= self._climb_sample:
                freq = self._freq
                freq[key] = f
                self._maintain()
                f = freq[key]  # aging halves it too
                # aging may have resized the doorkeeper
                door = sketch._door
                shift = sketch._shift
                counts = sketch._counts
        else:
            # FrequencySketch.take, inlined
            c = counts.pop(h, 0)
            f = (c if c < _COUNTER_MAX else _COUNTER_MAX) + door[i]
        freq = self._freq
        freq[key] = f
        window = self._window
        window[key] = weight
        where[key] = window
        max_entries = self.max_entries
        if self.max_weight is None and max_entries is not None:
            n = len(window)
            wmax = self._wmax
            if n <= wmax:
                self._ww += weight
                self._total += weight
                if len(where) <= max_entries:
                    return []
                return self._evict(key)
            probation = self._probation
            if n == wmax + 1 and len(where) == max_entries + 1 and probation:
                # why: the steady state of a full count-bounded cache, inlined from _evict():
                # the window's LRU key and probation's LRU key compete, the loser leaves.
                ck, cw = window.popitem(last=False)
                self._ww += weight - cw
                vk = next(iter(probation))
                fc = freq[ck]
                if fc > _COUNTER_MAX:
                    fc = _COUNTER_MAX
                fv = freq[vk]
                if fv > _COUNTER_MAX:
                    fv = _COUNTER_MAX
                ghost = False
                if fc <= fv + _ADMIT_MARGIN:
                    hc = hash(ck)
                    xc = (hc * _GOLDEN) & _MASK64
                    # the ghost test (_ghost_reject, inlined: a rejection is the commonest
                    # outcome here; only a fingerprint match costs a call), then the rejection
                    if self._gage:
                        gtab = self._gtab
                        if gtab is None:
                            gtab = self._ghost_build()
                        gi = xc >> self._gshift
                        fp = (xc & _MASK32) | 1
                        v = gtab[gi]
                        if v >> 32 == fp and self._ghost_pass(gi, v, fc, fv):
                            self._unproven.add(ck)
                            ghost = True
                        else:
                            gtab[gi] = fp << 32 | (self._tick & _MASK32)
                    if not ghost:
                        unproven = self._unproven
                        if unproven:
                            unproven.discard(ck)
                        # rejected: the candidate leaves (FrequencySketch.put, inlined)
                        del where[ck]
                        c = freq.pop(ck) - door[xc >> shift]
                        if c > 0:
                            counts[hc] = c
                        self._total += weight - cw
                        return [ck]
                # admitted: the victim leaves and the candidate enters probation
                vw = probation.pop(vk)
                del where[vk]
                hv = hash(vk)
                c = freq.pop(vk) - door[((hv * _GOLDEN) & _MASK64) >> shift]
                if c > 0:
                    counts[hv] = c
                self._total += weight - vw
                probation[ck] = cw
                where[ck] = probation
                if ghost:
                    self._regret_put(vk)
                unproven = self._unproven
                if unproven and vk in unproven:
                    unproven.discard(vk)
                    if self._gscore > -_SCORE_MAX:
                        self._gscore -= 1
                return [vk]
            if n == wmax + 1 and len(where) <= max_entries:
                # why: a cache filling up, inlined from _evict(): the window's LRU key moves to
                # probation's MRU end and nothing competes (through _evict() this add cost
                # 17.3k instructions, inlined 12.8k; docs/benchmarks-cache-latency.md, "filling")
                ck, cw = window.popitem(last=False)
                self._ww += weight - cw
                self._total += weight
                probation[ck] = cw
                where[ck] = probation
                return []
            self._ww += weight
            self._total += weight
            return self._evict(key)
        self._ww += weight
        self._total += weight
        if (self._ww if self.max_weight is not None else len(window)) > self._wmax or self._over():
            return self._evict(key)
        return []

    def update(self, key: Hashable, weight: int) -> list[Hashable]:
        """Record a new weight for ``key`` (a write counts as a use) and return keys to evict."""
        if self._buf:
            self._drain()
        region = self._where.get(key)
        if region is None:
            return self.add(key, weight)
        self._freq[key] += 1
        self._sketch.additions += 1
        old = region[key]
        region[key] = weight
        region.move_to_end(key)
        delta = weight - old
        self._total += delta
        if region is self._window:
            self._ww += delta
        elif region is self._protected:
            self._pw += delta
            self._demote_protected()
        if self._over() or (self._ww if self.max_weight is not None else len(self._window)) > (
            self._wmax
        ):
            return self._evict(key)
        return []

    def remove(self, key: Hashable) -> None:
        """Forget ``key``; unknown keys are ignored."""
        if self._buf:
            self._drain()
        region = self._where.get(key)
        if region is not None:
            self._drop(key, region)
            self._unproven.discard(key)

    def clear(self) -> None:
        """Forget every key and every count; keep the bounds and the window share."""
        self._buf.clear()
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._where.clear()
        self._ww = self._pw = self._total = 0
        self._sketch.clear()
        self._freq.clear()
        self._last_miss = _NO_KEY
        self._hits = self._requests = 0
        self._ghost_reset(self.max_entries)
        self._unproven.clear()
        self._gscore = self._gexplore = 0
        self._shadow_reset()

    def resize(self, max_entries: int | None, max_weight: int | None) -> list[Hashable]:
        """Change the bounds (the window keeps its share) and return the keys to evict."""
        _check_bounds(max_entries, max_weight)
        if self._buf:
            self._drain()
        share = self.window_fraction if self._maximum() else _PERCENT_WINDOW
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._size_regions(share)
        # the protected target may have shrunk, and the window now counts in other units
        self._demote_protected()
        victims = self._evict(_NO_KEY)
        # new bounds: the ghost and regret tables are rebuilt empty for them (flags stay)
        self._ghost_reset(max_entries)
        # new bounds: the shadow climber starts over (or stops: a weight bound), after the
        # regions took their new sizes
        self._shadow_reset()
        return victims

    def copy(self) -> TinyLFUPolicy:
        """Return an independent copy that makes, from now on, exactly the decisions this one would.

        The key objects are shared, not copied (as the C twin's ``copy``); every structure that
        holds them (the regions, the key index, the frequencies, the flagged keys, the read
        buffer), the sketch, the ghost and regret tables and the shadow climber's two shadows
        (copied recursively) are new.
        """
        new = TinyLFUPolicy.__new__(TinyLFUPolicy)
        for name in TinyLFUPolicy.__slots__:
            # scalars, bounds, the last miss (a key); a shadow leaves its climber's slots unset
            value = getattr(self, name, _NO_KEY)
            if value is not _NO_KEY or name == "_last_miss":
                setattr(new, name, value)
        regions = {
            id(self._window): OrderedDict(self._window),
            id(self._probation): OrderedDict(self._probation),
            id(self._protected): OrderedDict(self._protected),
        }
        new._window = regions[id(self._window)]
        new._probation = regions[id(self._probation)]
        new._protected = regions[id(self._protected)]
        new._where = {k: regions[id(r)] for k, r in self._where.items()}
        new._freq = dict(self._freq)
        new._unproven = set(self._unproven)
        new._buf = deque(self._buf, maxlen=self._buf.maxlen)
        new.hit = new.miss = new._buf.append
        old = self._sketch
        sketch = FrequencySketch.__new__(FrequencySketch)
        sketch._counts = dict(old._counts)
        sketch._door = bytearray(old._door)
        sketch._shift = old._shift
        sketch.additions = old.additions
        sketch.capacity = old.capacity
        sketch.period = old.period
        new._sketch = sketch
        new._gtab = None if self._gtab is None else array(self._gtab.typecode, self._gtab)
        new._rtab = None if self._rtab is None else array(self._rtab.typecode, self._rtab)
        up, down = self._shadow_up, self._shadow_down
        new._shadow_up = None if up is None else up.copy()
        new._shadow_down = None if down is None else down.copy()
        return new

    # -- adoption: what a policy that switches engines needs (rule G's AutoPolicy) -------------
    # Neither order(), prepend() nor set_weights() replays the buffered reads (the C twin's do
    # not either): call them after a write, or after remove() of an absent key, to see them.

    def order(self) -> list[tuple[Hashable, int]]:
        """Return the resident (key, weight) pairs, least valuable first.

        Probation LRU..MRU, then protected LRU..MRU, then window LRU..MRU. Buffered reads are
        not replayed first.
        """
        return [*self._probation.items(), *self._protected.items(), *self._window.items()]

    def prepend(self, keys: Sequence[Hashable]) -> None:
        """Make ``keys`` (least valuable first) resident at probation's LRU end, weight 1 each.

        Each key takes its count out of the sketch, as a key entering the cache does; the total
        weight grows by ``len(keys)``. Nothing is evicted (the caller keeps the bounds) and the
        buffered reads are not replayed. A key that is resident already, or that appears twice
        in ``keys``, raises ValueError naming the first such key before anything changes.
        """
        items = tuple(keys)
        where = self._where
        seen: set[Hashable] = set()
        for k in items:
            if k in where:
                raise ValueError(f"TinyLFUPolicy.prepend: key {k!r} is resident already")
            if k in seen:
                raise ValueError(f"TinyLFUPolicy.prepend: key {k!r} appears twice in keys")
            seen.add(k)
        if self._total > _INT64_MAX - len(items):
            raise OverflowError(
                f"TinyLFUPolicy.prepend: the total weight would overflow int64 "
                f"(total {self._total}, {len(items)} keys)"
            )
        probation = self._probation
        freq = self._freq
        take = self._sketch.take
        for k in reversed(items):
            probation[k] = 1
            probation.move_to_end(k, last=False)
            where[k] = probation
            freq[k] = take(k)
        self._total += len(items)

    def set_weights(self, mapping: Mapping[Hashable, int]) -> None:
        """Set every resident key's weight to ``mapping.get(key, 1)``; recompute the tallies.

        A weight must be an int (not a bool), >= 0 and < 2**63, and the total must stay below
        2**63: otherwise TypeError, ValueError or OverflowError names the first bad key (in
        ``order()``'s order) and nothing changes. No key moves and nothing is evicted.
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"TinyLFUPolicy.set_weights: needs a mapping, got {mapping!r}")
        get = mapping.get
        regions = (self._probation, self._protected, self._window)
        new: list[list[tuple[Hashable, int]]] = []
        total = 0
        for region in regions:
            pairs: list[tuple[Hashable, int]] = []
            for k in region:
                w = get(k, 1)
                if isinstance(w, bool) or not isinstance(w, int):
                    raise TypeError(
                        f"TinyLFUPolicy.set_weights: the weight of key {k!r} must be an int, "
                        f"got {w!r}"
                    )
                if w < 0:
                    raise ValueError(
                        f"TinyLFUPolicy.set_weights: the weight of key {k!r} must be >= 0, "
                        f"got {w!r}"
                    )
                if w > _INT64_MAX:
                    raise OverflowError(
                        f"TinyLFUPolicy.set_weights: the weight of key {k!r} must be < 2**63, "
                        f"got {w!r}"
                    )
                total += w
                if total > _INT64_MAX:
                    raise OverflowError(
                        f"TinyLFUPolicy.set_weights: the total weight would overflow int64 "
                        f"at key {k!r}"
                    )
                pairs.append((k, w))
            new.append(pairs)
        for region, pairs in zip(regions, new, strict=True):
            region.update(pairs)
        self._pw = sum(w for _k, w in new[1])
        self._ww = sum(w for _k, w in new[2])
        self._total = total

    def access(self, key: Hashable) -> bool:
        """Simulate one read-or-insert of ``key`` (a memo's step); return True on a hit.

        A resident key's read is recorded (``hit``); any other key's read is recorded
        (``miss``), then it is added with weight 1 and its victims are discarded.
        """
        return self.step(key) is None

    def step(
        self, key: Hashable, other: Container[Hashable] | None = None, write: bool = False
    ) -> int | None:
        """Simulate ``access(key)``; return None on a hit, else how many victims ``other`` lacks.

        (0 when ``other`` is None.) The default policy steps its twin so (``_policy_auto``): the
        count keeps its tally of the twin's residents the real engine lacks, without a list.
        """
        victims = self.take(key, write)
        if victims is None:
            return None
        return 0 if other is None else sum(1 for v in victims if v not in other)

    def take(self, key: Hashable, write: bool = False) -> list[Hashable] | None:
        """Simulate ``access(key)``; return None on a hit, else the evicted keys.

        ``write``: a set of ``key`` that follows no read of it (``policy="tinylfu"`` gets only
        ``add``: no read miss is recorded); a resident key is a hit either way.
        """
        if key in self._where:
            self.hit(key)
            return None
        if not write:
            self.miss(key)
        return self.add(key, 1)


def _make_lru(max_entries: int | None, max_weight: int | None) -> Policy:
    return LRUPolicy(max_entries, max_weight)


def tinylfu_class() -> Callable[[int | None, int | None], Policy]:
    """Return the W-TinyLFU implementation ``policy="tinylfu"`` builds: C when built, else Python.

    The C class (``perflayer.cache._tinylfu_c``, compiled by hatch_build.py) makes exactly this
    module's decisions (tests/cache/test_tinylfu_c.py) at a fraction of the cost (an add is
    about 1/10: benchmarks/cache_latency.py's "(Python policy)" rows); ``PERFLAYER_PURE_PYTHON=1``
    in the environment, read when a cache is built, selects the Python one.
    """
    if not native_enabled():
        return TinyLFUPolicy
    try:
        from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFUPolicy
    except ImportError:  # no compiler at install time: the pure-Python policy
        return TinyLFUPolicy
    return CTinyLFUPolicy


def _make_tinylfu(max_entries: int | None, max_weight: int | None) -> Policy:
    return tinylfu_class()(max_entries, max_weight)


def _make_adaptive(max_entries: int | None, max_weight: int | None) -> Policy:
    from perflayer.cache._policy_adaptive import AdaptivePolicy

    return AdaptivePolicy(max_entries, max_weight)


def _make_auto(max_entries: int | None, max_weight: int | None) -> Policy:
    from perflayer.cache._policy_auto import auto_policy

    return auto_policy(max_entries, max_weight)


# Factories by name, for make_policy.
POLICIES: dict[str, Callable[[int | None, int | None], Policy]] = {
    "adaptive": _make_adaptive,
    "auto": _make_auto,
    "lru": _make_lru,
    "tinylfu": _make_tinylfu,
}


def make_policy(name: str, max_entries: int | None, max_weight: int | None) -> Policy:
    """Build the policy called ``name`` ("auto", "tinylfu", "adaptive" or "lru") for the bounds."""
    factory = POLICIES.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ConfigError(f"unknown cache policy {name!r}; expected one of {sorted(POLICIES)}")
    return factory(max_entries, max_weight)
