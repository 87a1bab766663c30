"""Instrument core: counters, gauges, histograms, labels, callbacks, registration, threads."""

from __future__ import annotations

import gc
import math
import threading

import pytest

from perflayer.errors import ConfigError
from perflayer.monitor import OVERFLOW_VALUE, Monitor, default


def test_counter_inc_and_get() -> None:
    """inc() by one and by n adds up; get() reads the total."""
    m = Monitor()
    c = m.counter("perflayer_t_total", "doc")
    c.inc()
    c.inc(3)
    c.inc(0.5)
    assert c.get() == 4.5


def test_counter_name_gets_total_suffix() -> None:
    """A counter name without _total gets it, and both spellings are one instrument."""
    m = Monitor()
    c = m.counter("perflayer_req", "doc")
    assert c.name == "perflayer_req_total"
    assert m.counter("perflayer_req_total", "doc") is c


def test_counter_rejects_negative_and_nan() -> None:
    """Counters only go up; the error names the bad amount."""
    c = Monitor().counter("perflayer_t_total", "doc")
    with pytest.raises(ValueError, match="-1"):
        c.inc(-1)
    with pytest.raises(ValueError, match="nan"):
        c.inc(math.nan)
    assert c.get() == 0


def test_labels_positional_and_keyword_are_one_child() -> None:
    """labels('a','b') and labels(x='a', y='b') are one child; non-str values are str()'d."""
    m = Monitor()
    c = m.counter("perflayer_t_total", "doc", labelnames=("x", "y"))
    a = c.labels("a", "b")
    assert c.labels(x="a", y="b") is a
    assert c.labels(y="b", x="a") is a
    a.inc(2)
    c.labels("a", 1).inc()
    assert c.labels("a", "1").get() == 1
    assert a.get() == 2
    assert c.get() == 3  # a labelled parent's get() sums its series


def test_labels_misuse_names_the_problem() -> None:
    """Wrong label count or names raise ValueError naming the metric."""
    c = Monitor().counter("perflayer_t_total", "doc", labelnames=("x",))
    with pytest.raises(ValueError, match="perflayer_t_total"):
        c.labels("a", "b")
    with pytest.raises(ValueError, match="perflayer_t_total"):
        c.labels(z="a")
    with pytest.raises(ValueError, match="both"):
        c.labels("a", x="a")
    unlabelled = Monitor().counter("perflayer_u_total", "doc")
    with pytest.raises(ValueError, match="no labels"):
        unlabelled.labels("a")


def test_parent_of_labelled_metric_is_the_empty_label_series() -> None:
    """inc() on a labelled parent counts into the series whose labels are all empty."""
    m = Monitor()
    c = m.counter("perflayer_x_total", "doc", labelnames=("prio",))
    c.inc()
    c.inc(3)
    c.labels("high").inc()
    text = m.exposition()
    assert 'perflayer_x_total{prio=""} 4.0' in text
    assert 'perflayer_x_total{prio="high"} 1.0' in text
    assert c.get() == 5


def test_gauge_set_inc_dec_function() -> None:
    """Gauges set, inc, dec and read from a function."""
    g = Monitor().gauge("perflayer_g", "doc")
    g.set(1.5)
    g.inc()
    g.dec(0.25)
    assert g.get() == 2.25
    g.set_function(lambda: 42)
    assert g.get() == 42.0


def test_gauge_function_that_raises_reads_nan() -> None:
    """A broken gauge function degrades to NaN instead of breaking the scrape."""
    m = Monitor()
    g = m.gauge("perflayer_g", "doc")

    def boom() -> float:
        raise RuntimeError("boom")

    g.set_function(boom)
    assert math.isnan(g.get())
    assert "perflayer_g NaN" in m.exposition()


def test_histogram_observe_quantile_buckets() -> None:
    """observe() feeds buckets (le inclusive), sum, count and the sketch."""
    h = Monitor().histogram("perflayer_h_seconds", "doc", buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(v)
    assert h.buckets() == [(0.1, 2), (1.0, 4), (math.inf, 5)]
    assert h.count == 5
    assert h.sum == pytest.approx(4.65)
    q = h.quantile(0.5)
    assert q is not None and abs(q - 0.5) / 0.5 <= 0.01


def test_histogram_negative_zero_nan() -> None:
    """Zero and negative values are kept; NaN is ignored."""
    h = Monitor().histogram("perflayer_h", "doc")
    for v in (-2.0, 0.0, 0.0, 4.0, math.nan):
        h.observe(v)
    assert h.count == 4
    assert h.quantile(0.0) == pytest.approx(-2.0, rel=0.01)
    assert h.quantile(0.4) == 0.0
    assert h.quantile(1.0) == pytest.approx(4.0, rel=0.01)


def test_histogram_quantile_empty_and_bad_q() -> None:
    """An empty histogram's quantile is None; q outside [0, 1] raises naming q."""
    h = Monitor().histogram("perflayer_h", "doc")
    assert h.quantile(0.5) is None
    with pytest.raises(ValueError, match=r"1\.5"):
        h.quantile(1.5)


def test_labelled_histogram_quantile_merges_series() -> None:
    """A labelled histogram's quantile() merges all its series."""
    h = Monitor().histogram("perflayer_h", "doc", labelnames=("k",))
    for i in range(1, 101):
        h.labels("a" if i % 2 else "b").observe(float(i))
    q = h.quantile(0.5)
    assert q is not None and abs(q - 50) / 50 <= 0.011
    assert h.count == 100


def test_same_name_same_shape_returns_same_instrument() -> None:
    """Re-asking for a metric returns it; a different type or labels raises naming it."""
    m = Monitor()
    g = m.gauge("perflayer_g", "doc", labelnames=("a",))
    assert m.gauge("perflayer_g", "other doc", labelnames=("a",)) is g
    with pytest.raises(ConfigError, match="perflayer_g"):
        m.gauge("perflayer_g", "doc", labelnames=("b",))
    with pytest.raises(ConfigError, match="perflayer_g"):
        m.histogram("perflayer_g", "doc", labelnames=("a",))
    with pytest.raises(ConfigError, match="perflayer_g_total"):
        m.counter_callback("perflayer_g_total", "doc", lambda: 1.0)
        m.counter("perflayer_g", "doc")


def test_invalid_names_and_buckets() -> None:
    """Bad metric names, label names and buckets raise ConfigError naming the value."""
    m = Monitor()
    with pytest.raises(ConfigError, match="9bad"):
        m.counter("9bad", "doc")
    with pytest.raises(ConfigError, match="a-b"):
        m.gauge("perflayer_g", "doc", labelnames=("a-b",))
    with pytest.raises(ConfigError, match="le"):
        m.histogram("perflayer_h", "doc", labelnames=("le",))
    with pytest.raises(ConfigError, match="strictly increasing"):
        m.histogram("perflayer_h2", "doc", buckets=(1.0, 0.5))
    with pytest.raises(ConfigError, match="str"):
        m.gauge("perflayer_g3", "doc", labelnames="abc")


def test_histogram_name_clash_with_its_series() -> None:
    """A gauge named like a histogram's _count series is rejected."""
    m = Monitor()
    m.histogram("perflayer_h", "doc")
    with pytest.raises(ConfigError, match="perflayer_h_count"):
        m.gauge("perflayer_h_count", "doc")


def test_cardinality_limit_folds_into_overflow_series() -> None:
    """Past max_series, new label sets land in one overflow series, and that is counted."""
    m = Monitor()
    c = m.counter("perflayer_t_total", "doc", labelnames=("user",), max_series=3)
    for i in range(10):
        c.labels(f"u{i}").inc()
    assert len(c.children()) == 4  # 3 real + overflow
    assert c.labels(OVERFLOW_VALUE).get() == 7
    assert c.get() == 10
    assert m.value("perflayer_monitor_series_overflow_total", {"metric": "perflayer_t_total"}) == 7


def test_four_threads_lose_no_increment() -> None:
    """4 threads x 50k inc() (by one and by 2) lose nothing, on parents and children."""
    m = Monitor()
    c = m.counter("perflayer_t_total", "doc")
    lc = m.counter("perflayer_l_total", "doc", labelnames=("k",))
    g = m.gauge("perflayer_g", "doc")
    h = m.histogram("perflayer_h", "doc")
    half = m.histogram("perflayer_half", "doc", ("k",)).labels("a")
    n = 50_000
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        child = lc.labels("x")
        for i in range(n):
            c.inc()
            c.inc(2)
            child.inc()
            g.inc()
            h.observe((i % 100 + 1) / 1000)
            half.observe(0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.get() == 3 * 4 * n
    assert lc.labels("x").get() == 4 * n
    assert g.get() == 4 * n
    assert h.count == 4 * n
    assert h.sketch().count == 4 * n
    assert half.sum == 0.5 * 4 * n and half.count == 4 * n  # batched observes lose nothing


def test_counter_callback_merges_owners_and_unregisters() -> None:
    """Two owners under one family merge their series; unregister() removes one."""
    m = Monitor()
    a = m.counter_callback(
        "perflayer_hits_total", "doc", lambda: {("a",): 3.0}, labelnames=("cache",)
    )
    m.counter_callback("perflayer_hits_total", "doc", lambda: {("b",): 4.0}, labelnames=("cache",))
    text = m.exposition()
    assert 'perflayer_hits_total{cache="a"} 3.0' in text
    assert 'perflayer_hits_total{cache="b"} 4.0' in text
    assert m.value("perflayer_hits_total") == 7.0
    a.unregister()
    a.unregister()
    assert m.value("perflayer_hits_total") == 4.0


def test_gauge_callback_scalar_and_labels_mismatch_degrades() -> None:
    """A scalar gauge callback renders; a callback with wrong label arity is skipped."""
    m = Monitor()
    m.gauge_callback("perflayer_bytes", "doc", lambda: 12)
    m.gauge_callback("perflayer_lv", "doc", lambda: {("a", "b"): 1.0}, labelnames=("x",))
    text = m.exposition()
    assert "perflayer_bytes 12.0" in text
    assert "perflayer_lv{" not in text


class _Owner:
    """Something that owns a callback through a bound method."""

    def __init__(self, v: float) -> None:
        self.v = v

    def read(self) -> float:
        """Return the value."""
        return self.v


def test_bound_method_callback_does_not_keep_owner_alive() -> None:
    """A gc'd owner's bound-method callback disappears instead of being kept alive."""
    m = Monitor()
    o = _Owner(5.0)
    m.gauge_callback("perflayer_owned", "doc", o.read)
    assert m.value("perflayer_owned") == 5.0
    del o
    gc.collect()
    assert m.value("perflayer_owned") is None


def test_callback_that_raises_is_skipped() -> None:
    """A raising callback costs its own series only."""
    m = Monitor()

    def boom() -> float:
        raise RuntimeError("x")

    m.counter_callback("perflayer_a_total", "doc", boom)
    m.counter_callback("perflayer_a_total", "doc", lambda: 2.0)
    assert m.value("perflayer_a_total") == 2.0


def test_register_collector() -> None:
    """A collector's families are rendered with the rest."""
    from perflayer.monitor import MetricFamily, Sample

    m = Monitor()
    unregister = m.register_collector(
        lambda: [
            MetricFamily(
                "perflayer_extra", "gauge", "doc", [Sample("perflayer_extra", {"a": "1"}, 2.0)]
            )
        ]
    )
    assert 'perflayer_extra{a="1"} 2.0' in m.exposition()
    unregister()
    assert "perflayer_extra" not in m.exposition()


def test_default_is_process_wide() -> None:
    """default() returns one Monitor per process."""
    assert default() is default()
    assert isinstance(default(), Monitor)


def test_overflow_counter_survives_many_overflowing_metrics() -> None:
    """Even the overflow counter's own overflow neither deadlocks nor raises."""
    m = Monitor(max_series=2)
    for i in range(5):
        c = m.counter(f"perflayer_m{i}_total", "doc", ("k",))
        for j in range(4):
            c.labels(str(j)).inc()
    assert m.value("perflayer_monitor_series_overflow_total") == 5 * 2


def test_histogram_windowed_quantile_without_loop() -> None:
    """h.quantile(q, window=...) works without an evaluation loop (lazy snapshots)."""
    m = Monitor()
    h = m.histogram("perflayer_h", "doc")
    h.observe(1.0)
    assert h.quantile(0.5, window=60) == pytest.approx(1.0, rel=0.01)
