"""Exposition: real promtool, a strict lint, prometheus_client's parsers, content negotiation."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families

from perflayer.monitor import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    MetricFamily,
    Monitor,
    Sample,
    lint,
    negotiate,
)

WEIRD = 'quote " backslash \\ newline \n unicode é'


def rich_monitor() -> Monitor:
    """Return a Monitor with every kind of family, odd label values and odd floats."""
    m = Monitor()
    c = m.counter(
        "perflayer_requests_total", 'Requests, with "quotes" and \\ and\nnewline.', ("code", "path")
    )
    c.labels("200", "/").inc(5)
    c.labels("500", WEIRD).inc()
    c.inc()  # the empty-label series
    m.counter("perflayer_plain_total", "Plain.").inc(1e21)
    g = m.gauge("perflayer_temp", "A gauge.", ("room",))
    g.labels("a").set(-3.5)
    g.labels("b").set(math.inf)
    g.labels("c").set(math.nan)
    g.labels("d").set(1e-7)
    h = m.histogram("perflayer_latency_seconds", "Latency.", ("op",), buckets=(0.01, 0.1, 1))
    for v in (0.001, 0.01, 0.05, 0.5, 5.0):
        h.labels("get").observe(v)
    h.labels("set").observe(0.02)
    m.histogram("perflayer_empty_seconds", "Never observed.")
    m.histogram("perflayer_neg", "Negative too.").observe(-1.0)
    m.counter_callback(
        "perflayer_hits_total", "Hits.", lambda: {("l1",): 3, ("l2",): 4}, ("level",)
    )
    m.counter_callback("perflayer_hits_total", "Hits.", lambda: {("l3",): 1}, ("level",))
    m.gauge_callback("perflayer_bytes", "Bytes.", lambda: 1024)
    lim = m.counter("perflayer_users_total", "Per user.", ("user",), max_series=2)
    for u in "abcde":
        lim.labels(u).inc()
    m.register_collector(
        lambda: [
            MetricFamily(
                "perflayer_collected",
                "gauge",
                "From a collector.",
                [Sample("perflayer_collected", {"k": "v"}, 1.0)],
            ),
            MetricFamily(
                "perflayer_events",
                "counter",
                "A collected counter.",
                [Sample("perflayer_events_total", {}, 2.0)],
            ),
        ]
    )
    return m


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    """Run the real `promtool check metrics` on text."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed: run `make test` (Debian package prometheus)")
    return subprocess.run(
        [exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


@pytest.mark.promtool
def test_promtool_accepts_everything() -> None:
    """promtool check metrics reports nothing for a Monitor with every kind of family."""
    out = promtool(rich_monitor().exposition())
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == ""


@pytest.mark.promtool
def test_promtool_catches_a_bad_exposition() -> None:
    """The promtool check can fail: a counter without _total and HELP is reported."""
    out = promtool("# TYPE bad counter\nbad 1\n")
    assert out.returncode != 0
    assert "_total" in out.stdout + out.stderr


def test_strict_lint_clean_in_both_formats() -> None:
    """The strict lint finds nothing in 0.0.4 or OpenMetrics output."""
    m = rich_monitor()
    assert lint(m.exposition()) == []
    assert lint(m.exposition(openmetrics=True), openmetrics=True) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# HELP a_total x\n# TYPE a_total counter\na_total 1", "newline"),
        ("# HELP a x\n# TYPE a counter\na 1\n", "_total"),
        ("# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"),
        ("# TYPE a gauge\na 1\na 2\n", "duplicate series"),
        ('# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n', "duplicate series"),
        ('# TYPE a gauge\na{x="\\q"} 1\n', "malformed"),
        ("# TYPE a gauge\na one\n", "invalid value"),
        ("b 1\n", "no TYPE"),
        (
            '# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_count 3\nh_sum 1\n',
            "cumulative",
        ),
        (
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_count 4\nh_sum 1\n',
            "_count",
        ),
        ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\nh_sum 1\n', "+Inf"),
        ("# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n", "contiguous"),
        ("# TYPE a_total counter\na_total -1\n", "negative"),
    ],
)
def test_strict_lint_catches(text: str, problem: str) -> None:
    """Each defect the lint exists for is reported."""
    errs = lint(text)
    assert any(problem in e for e in errs), errs


def test_openmetrics_lint_wants_eof() -> None:
    """OpenMetrics text must end in # EOF."""
    assert any("EOF" in e for e in lint("# TYPE a gauge\na 1\n", openmetrics=True))


def test_prometheus_client_parser_reads_every_value() -> None:
    """prometheus_client's 0.0.4 parser reads back the values we hold, escapes included."""
    m = rich_monitor()
    fams = {f.name: f for f in text_string_to_metric_families(m.exposition())}
    req = fams["perflayer_requests"]
    assert req.type == "counter"
    vals = {(s.labels["code"], s.labels["path"]): s.value for s in req.samples}
    assert vals[("200", "/")] == 5.0
    assert vals[("500", WEIRD)] == 1.0
    assert vals[("", "")] == 1.0
    assert req.documentation == 'Requests, with "quotes" and \\ and\nnewline.'
    temp = {s.labels["room"]: s.value for s in fams["perflayer_temp"].samples}
    assert (
        temp["a"] == -3.5 and temp["b"] == math.inf and math.isnan(temp["c"]) and temp["d"] == 1e-7
    )
    lat = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for s in fams["perflayer_latency_seconds"].samples
    }
    assert lat[("perflayer_latency_seconds_bucket", (("le", "0.01"), ("op", "get")))] == 2.0
    assert lat[("perflayer_latency_seconds_bucket", (("le", "+Inf"), ("op", "get")))] == 5.0
    assert lat[("perflayer_latency_seconds_count", (("op", "get"),))] == 5.0
    assert lat[("perflayer_latency_seconds_sum", (("op", "get"),))] == pytest.approx(5.561)
    hits = {s.labels["level"]: s.value for s in fams["perflayer_hits"].samples}
    assert hits == {"l1": 3.0, "l2": 4.0, "l3": 1.0}
    users = {s.labels["user"]: s.value for s in fams["perflayer_users"].samples}
    assert users == {"a": 1.0, "b": 1.0, "__overflow__": 3.0}
    assert fams["perflayer_plain"].samples[0].value == 1e21
    assert fams["perflayer_events"].samples[0].value == 2.0


def test_openmetrics_parser_reads_every_value() -> None:
    """prometheus_client's strict OpenMetrics parser accepts our OpenMetrics output."""
    m = rich_monitor()
    fams = {f.name: f for f in om_families(m.exposition(openmetrics=True))}
    assert fams["perflayer_requests"].type == "counter"
    vals = {
        s.labels["path"]: s.value
        for s in fams["perflayer_requests"].samples
        if s.name.endswith("_total")
    }
    assert vals[WEIRD] == 1.0
    assert fams["perflayer_latency_seconds"].type == "histogram"
    assert fams["perflayer_bytes"].samples[0].value == 1024.0


def test_content_negotiation() -> None:
    """OpenMetrics only when asked for (and not refused with q=0); 0.0.4 otherwise."""
    assert negotiate(None) == (False, CONTENT_TYPE_TEXT)
    assert negotiate("text/plain") == (False, CONTENT_TYPE_TEXT)
    assert negotiate("application/openmetrics-text; version=1.0.0; charset=utf-8") == (
        True,
        CONTENT_TYPE_OPENMETRICS,
    )
    prom = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
    )
    assert negotiate(prom)[0] is True
    assert negotiate("application/openmetrics-text;q=0")[0] is False
    assert negotiate("application/openmetrics-text;version=2.0.0")[0] is False


def test_exposition_ends_with_newline_and_eof() -> None:
    """Text ends with a newline; OpenMetrics ends with # EOF; an empty monitor is valid."""
    m = Monitor()
    assert m.exposition() == ""
    assert m.exposition(openmetrics=True) == "# EOF\n"
    m.gauge("perflayer_g", "doc").set(1)
    assert m.exposition().endswith("\n")
    assert m.exposition(openmetrics=True).endswith("# EOF\n")


def test_collector_family_clashing_with_an_instrument_is_skipped() -> None:
    """A collector family named like a registered metric is dropped, never a duplicate series."""
    m = Monitor()
    m.gauge("perflayer_g", "doc").set(1)
    m.register_collector(
        lambda: [MetricFamily("perflayer_g", "gauge", "dup", [Sample("perflayer_g", {}, 2.0)])]
    )
    text = m.exposition()
    assert text.count("\nperflayer_g ") == 1 and "perflayer_g 1.0" in text and "dup" not in text
    assert lint(text) == []


label_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@settings(max_examples=60, deadline=None)
@given(
    doc=label_text,
    values=st.lists(
        st.tuples(label_text, label_text, st.floats(min_value=0, max_value=1e12)), max_size=8
    ),
    gauges=st.lists(st.tuples(label_text, st.floats(allow_nan=False)), max_size=6),
    observations=st.lists(finite, max_size=30),
)
def test_any_content_renders_lint_clean_and_round_trips(
    doc: str,
    values: list[tuple[str, str, float]],
    gauges: list[tuple[str, float]],
    observations: list[float],
) -> None:
    """Arbitrary docs, label values and numbers render lint-clean and parse back to our values."""
    m = Monitor()
    c = m.counter("perflayer_c_total", doc, ("a", "b"))
    expect: dict[tuple[str, str], float] = {}
    for a, b, v in values:
        c.labels(a, b).inc(v)
        expect[(a, b)] = expect.get((a, b), 0.0) + v
    g = m.gauge("perflayer_g", doc, ("k",))
    for k, v in gauges:
        g.labels(k).set(v)
    h = m.histogram("perflayer_h", doc)
    for v in observations:
        h.observe(v)
    text = m.exposition()
    assert lint(text) == []
    assert lint(m.exposition(openmetrics=True), openmetrics=True) == []
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    if expect:
        got = {(s.labels["a"], s.labels["b"]): s.value for s in fams["perflayer_c"].samples}
        assert got == pytest.approx(expect)
        if doc == doc.strip():  # prometheus_client's parser strips the HELP line's ends
            assert fams["perflayer_c"].documentation == doc
    count = [s.value for s in fams["perflayer_h"].samples if s.name == "perflayer_h_count"]
    assert count == [float(len(observations))]
    list(om_families(m.exposition(openmetrics=True)))  # the strict OpenMetrics parser accepts it
