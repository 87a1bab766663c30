"""The DDSketch: relative accuracy against exact quantiles, merging, subtraction, memory."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.monitor import Monitor, Sketch
from perflayer.monitor._sketch import MAX_BINS

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0)


def exact(sorted_values: list[float], q: float) -> float:
    """Return the order statistic at rank floor(q * (n - 1)), the one the sketch targets."""
    return sorted_values[int(q * (len(sorted_values) - 1))]


def rel_err(got: float | None, want: float) -> float:
    """Return the relative error of got against want."""
    assert got is not None
    if want == 0:
        return abs(got)
    return abs(got - want) / abs(want)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        # Within the sketch's full-accuracy range: magnitudes spanning at most 2.6e15.
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).filter(
            lambda v: v == 0 or abs(v) >= 1e-6
        ),
        min_size=1,
        max_size=400,
    ),
    st.sampled_from(QS),
)
def test_quantile_within_one_percent_of_exact(values: list[float], q: float) -> None:
    """Any quantile of any data is within 1% of the exact order statistic."""
    s = Sketch()
    for v in values:
        s.add(v)
    assert rel_err(s.quantile(q), exact(sorted(values), q)) <= 0.01


@pytest.mark.parametrize(
    "dist",
    ["lognormal", "bimodal", "pareto"],
)
def test_histogram_accuracy_on_heavy_tails(dist: str) -> None:
    """p50/p90/p99/p99.9 of 200k lognormal, bimodal and Pareto values are within 1%."""
    rng = random.Random(7)
    n = 200_000
    if dist == "lognormal":
        values = [rng.lognormvariate(-4, 1.2) for _ in range(n)]
    elif dist == "bimodal":
        values = [
            rng.gauss(0.005, 0.001) if rng.random() < 0.8 else rng.gauss(0.2, 0.03)
            for _ in range(n)
        ]
        values = [abs(v) + 1e-6 for v in values]
    else:
        values = [rng.paretovariate(1.5) * 0.001 for _ in range(n)]
    h = Monitor().histogram("perflayer_h_seconds", "doc")
    for v in values:
        h.observe(v)
    values.sort()
    for q in (0.5, 0.9, 0.99, 0.999):
        assert rel_err(h.quantile(q), exact(values, q)) <= 0.01, (dist, q)


def test_merge_equals_one_sketch_of_all_values() -> None:
    """Merging two sketches answers like one sketch fed everything."""
    rng = random.Random(1)
    a, b, both = Sketch(), Sketch(), Sketch()
    for i in range(5000):
        v = rng.expovariate(10)
        (a if i % 2 else b).add(v)
        both.add(v)
    a.merge(b)
    for q in QS:
        assert a.quantile(q) == both.quantile(q)
    assert a.count == 5000


def test_minus_is_the_values_in_between() -> None:
    """current.minus(older copy) is exactly the sketch of the values added since."""
    s = Sketch()
    for v in range(1, 1001):
        s.add(float(v))
    old = s.copy()
    later = Sketch()
    for v in range(5000, 6001):
        s.add(float(v))
        later.add(float(v))
    d = s.minus(old)
    assert d.count == later.count == 1001
    for q in QS:
        assert d.quantile(q) == later.quantile(q)


def test_memory_is_bounded_per_series() -> None:
    """A series over a huge range stays under 32 KiB (bins collapse at the low end)."""
    h = Monitor().histogram("perflayer_h", "doc")
    v = 1e-11
    while v < 1e12:
        h.observe(v)
        h.observe(-v)
        v *= 1.005
    assert len(h._sketch.pos.bins) <= MAX_BINS
    assert h.nbytes() <= 32 * 1024
    # The high quantiles survive collapsing: the top value is still within 1%.
    top = h.quantile(1.0)
    assert top is not None and abs(top - v / 1.005) / (v / 1.005) <= 0.01


def test_typical_latency_series_is_small() -> None:
    """A latency histogram from 10us to 100s holds well under 32 KiB."""
    h = Monitor().histogram("perflayer_h", "doc")
    rng = random.Random(3)
    for _ in range(50_000):
        h.observe(min(100.0, 1e-5 * math.exp(rng.uniform(0, math.log(1e7)))))
    assert h.nbytes() < 16 * 1024


def test_empty_and_copy() -> None:
    """An empty sketch has no quantile; copies are independent."""
    s = Sketch()
    assert s.quantile(0.5) is None
    s.add(1.0)
    c = s.copy()
    c.add(100.0)
    assert s.count == 1 and c.count == 2
