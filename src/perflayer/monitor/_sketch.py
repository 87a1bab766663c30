"""A mergeable relative-error quantile sketch (DDSketch, Masson, Rim & Lee, VLDB 2019).

Design in brief:

* A positive value ``v`` lands in bin ``ceil(log(v) / log(gamma))`` with
  ``gamma = (1 + a) / (1 - a)``; the bin's representative ``2 * gamma**i / (gamma + 1)`` is within
  relative error ``a`` of every value in the bin, so any quantile is answered within ``a`` of the
  exact order statistic at that rank.
* Bins are kept dense in an ``array('q')`` plus an offset: 8 bytes per bin, no per-bin objects,
  an O(1) increment. At ``a = 1%`` one decade takes ~116 bins; each store is capped at
  ``MAX_BINS`` (1792 bins = 14 KiB, a max/min ratio of 2.6e15, i.e. 15.4 decades) and collapses its
  lowest bins when a wider range comes in, as DDSketch's ``CollapsingLowestDenseStore`` does, so
  high quantiles stay exact to 1% and only the smallest magnitudes lose accuracy. Negative
  values use a second store; values within ``MIN_POSITIVE`` of zero are counted in a zero bin.
  Worst case, a series with both stores full is under 32 KiB with its ``le`` buckets.
* Two sketches with the same accuracy merge by adding bins; a sketch minus an older copy of itself
  is the sketch of the values observed in between. Sliding windows are built on that.

The histogram's batch fold (``HistogramChild._fold``) inlines ``add``; keep the two in step.
"""

from __future__ import annotations

import math
import sys
from array import array

__all__ = ["MAX_BINS", "MIN_POSITIVE", "RELATIVE_ACCURACY", "Sketch"]

#: Relative accuracy. A hair under 1% so that float rounding in log() never pushes a value past
#: the 1% bar at a bin edge.
RELATIVE_ACCURACY = 0.0099
GAMMA = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
#: Multiplier turning ``log(v)`` into a bin index: precomputed so that observe does one multiply.
MULT = 1.0 / math.log(GAMMA)
#: Values with ``abs(v) <= MIN_POSITIVE`` go to the zero bin.
MIN_POSITIVE = 1e-12
MAX_POSITIVE = 1e300
MAX_BINS = 1792
MAX_NEG_BINS = 1792
_CHUNK = 64
_REPR = 2.0 / (GAMMA + 1.0)


def index_of(value: float) -> int:
    """Return the bin index of a positive value."""
    return math.ceil(math.log(value) * MULT)


def value_of(index: int) -> float:
    """Return the representative value of a bin index."""
    return _REPR * GAMMA**index


class _Store:
    """A dense, bounded store of bin counts with lowest-bin collapsing."""

    __slots__ = ("bins", "max_bins", "off")

    def __init__(self, max_bins: int) -> None:
        self.bins = array("q")
        self.off = 0
        self.max_bins = max_bins

    def add(self, index: int, n: int = 1) -> None:
        """Add ``n`` to bin ``index``, growing or collapsing as needed."""
        i = index - self.off
        bins = self.bins
        if 0 <= i < len(bins):
            bins[i] += n
            return
        self._grow(index)
        i = index - self.off
        if i < 0:
            # Collapsed range: everything below the lowest kept bin lands in it.
            i = 0
        self.bins[i] += n

    def _grow(self, index: int) -> None:
        bins = self.bins
        if not bins:
            self.off = index - _CHUNK // 2
            bins.extend([0] * _CHUNK)
            return
        lo, hi = self.off, self.off + len(bins)  # [lo, hi)
        new_lo, new_hi = min(lo, index), max(hi, index + 1)
        if new_hi - new_lo > self.max_bins:
            # Keep the highest max_bins bins; fold the rest into the lowest kept bin.
            new_lo = new_hi - self.max_bins
        else:
            # Grow by whole chunks so a slowly drifting range does not resize every time.
            if new_lo < lo:
                new_lo = max(new_hi - self.max_bins, new_lo - _CHUNK)
            if new_hi > hi:
                new_hi = min(new_lo + self.max_bins, new_hi + _CHUNK)
        fresh = array("q", [0]) * (new_hi - new_lo)
        for j, c in enumerate(bins):
            if c:
                k = lo + j - new_lo
                fresh[k if k > 0 else 0] += c
        # A new exact-size array (not a slice assignment, which over-allocates); readers re-read
        # ``bins`` under the series lock, so swapping the object is safe.
        self.bins = fresh
        self.off = new_lo

    def total(self) -> int:
        """Return the sum of all bins."""
        return sum(self.bins)

    def items(self) -> list[tuple[int, int]]:
        """Return ``(index, count)`` for the non-empty bins, lowest index first."""
        off = self.off
        return [(off + j, c) for j, c in enumerate(self.bins) if c]

    def copy(self) -> _Store:
        """Return an independent copy."""
        s = _Store(self.max_bins)
        s.bins = array("q", self.bins)
        s.off = self.off
        return s

    def nbytes(self) -> int:
        """Return the bytes held by this store (array header, allocation and the object)."""
        return sys.getsizeof(self.bins) + sys.getsizeof(self)


class Sketch:
    """A DDSketch with 1% relative accuracy, mergeable, at most ~28.5 KiB.

    >>> s = Sketch()
    >>> for v in range(1, 1001):
    ...     s.add(float(v))
    >>> abs(s.quantile(0.5) - 500) / 500 < 0.01
    True
    """

    __slots__ = ("neg", "pos", "zero")

    def __init__(self) -> None:
        self.pos = _Store(MAX_BINS)
        self.neg = _Store(MAX_NEG_BINS)
        self.zero = 0

    def add(self, value: float, n: int = 1) -> None:
        """Record ``value`` ``n`` times; NaN is ignored, infinities are clamped."""
        if value > MIN_POSITIVE:
            self.pos.add(math.ceil(math.log(min(value, MAX_POSITIVE)) * MULT), n)
        elif value < -MIN_POSITIVE:
            self.neg.add(math.ceil(math.log(min(-value, MAX_POSITIVE)) * MULT), n)
        elif value == value:  # not NaN
            self.zero += n

    @property
    def count(self) -> int:
        """Return the number of values recorded."""
        return self.pos.total() + self.neg.total() + self.zero

    def quantile(self, q: float) -> float | None:
        """Return the ``q``-quantile (0 <= q <= 1) within 1% relative error, None when empty."""
        if not 0.0 <= q <= 1.0 or q != q:
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        neg = self.neg.items()
        pos = self.pos.items()
        count = sum(c for _, c in neg) + self.zero + sum(c for _, c in pos)
        if count == 0:
            return None
        rank = q * (count - 1)
        seen = 0
        for idx, c in reversed(neg):
            seen += c
            if seen > rank:
                return -value_of(idx)
        seen += self.zero
        if seen > rank:
            return 0.0
        for idx, c in pos:
            seen += c
            if seen > rank:
                return value_of(idx)
        return value_of(pos[-1][0]) if pos else 0.0  # pragma: no cover - float rounding only

    def merge(self, other: Sketch) -> None:
        """Add every value of ``other`` into this sketch."""
        for idx, c in other.pos.items():
            self.pos.add(idx, c)
        for idx, c in other.neg.items():
            self.neg.add(idx, c)
        self.zero += other.zero

    def copy(self) -> Sketch:
        """Return an independent copy."""
        s = Sketch()
        s.pos = self.pos.copy()
        s.neg = self.neg.copy()
        s.zero = self.zero
        return s

    def minus(self, older: Sketch) -> Sketch:
        """Return the sketch of values added since ``older`` (an earlier copy of this one)."""
        out = self.copy()
        for idx, c in older.pos.items():
            out.pos.add(idx, -c)
        for idx, c in older.neg.items():
            out.neg.add(idx, -c)
        out.zero -= older.zero
        # Collapsing can shift counts between bins of the two copies; never go negative.
        for store in (out.pos, out.neg):
            b = store.bins
            for j in range(len(b)):
                if b[j] < 0:
                    b[j] = 0
        out.zero = max(out.zero, 0)
        return out

    def nbytes(self) -> int:
        """Return the memory held by this sketch, in bytes."""
        return (
            sys.getsizeof(self) + self.pos.nbytes() + self.neg.nbytes() + sys.getsizeof(self.zero)
        )
