"""Tests of the adaptive policy: it switches engines when a simulation leads, bounds hold."""

from __future__ import annotations

import doctest
import random
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cache.test_policy import Model, hit_ratio, loop, recency, zipf

from perflayer.cache import _policy_adaptive
from perflayer.cache._policy import TinyLFUPolicy, make_policy
from perflayer.cache._policy_adaptive import ENGINES, AdaptivePolicy


def test_module_doctests() -> None:
    """The examples in the adaptive policy module run."""
    result = doctest.testmod(_policy_adaptive)
    assert result.attempted > 0
    assert result.failed == 0


def test_make_policy_builds_adaptive() -> None:
    """make_policy("adaptive") builds an AdaptivePolicy starting on the W-TinyLFU engine."""
    p = make_policy("adaptive", 100, None)
    assert isinstance(p, AdaptivePolicy)
    assert p.engine == "tinylfu"


def test_hit_is_one_c_call_for_life() -> None:
    """hit and miss are a deque's C append, and stay the same object across a switch."""
    p = AdaptivePolicy(50, None)
    hit = p.hit
    assert type(hit).__name__ == "builtin_function_or_method"
    m = Model(p, 50, None)
    for k in range(60):
        m.access(k)
    p._switch("lirs")
    assert p.hit is hit
    for k in range(60):
        m.access(k)
    assert p.engine == "lirs"
    assert 0 < len(p) <= 50


def test_switches_to_lirs_on_a_loop() -> None:
    """On a loop larger than the cache LIRS's simulation leads; the cache switches, gains."""
    keys = loop(600, 60)
    p = AdaptivePolicy(100, None)
    m = Model(p, 100, None)
    switched_at = None
    hits = 0
    for i, k in enumerate(keys):
        hits += m.access(k)
        if switched_at is None and p.switches:
            switched_at = i
    # against its own first engine: W-TinyLFU with the sample climber
    tiny = hit_ratio(TinyLFUPolicy(100, None, climber="sample"), 100, keys)
    assert p.engine == "lirs"
    assert p.switches == 1
    # a significant lead decides within a few loops, not after a fixed number of epochs
    assert switched_at is not None and switched_at < 3_000
    assert 100.0 * hits / len(keys) > tiny + 1.0


@pytest.mark.slow
def test_follows_a_phase_change() -> None:
    """A loop, then a recency stream, then a loop again: the engine follows each phase."""
    rec = [100_000 + k for k in recency(12_000, seed=3)]
    keys = loop(1_200, 6) + rec + [200_000 + k for k in loop(1_200, 6)]
    p = AdaptivePolicy(400, None)
    m = Model(p, 400, None)
    engines = []
    for i, k in enumerate(keys):
        m.access(k)
        if i + 1 in (7_200, 7_200 + 12_000, len(keys)):
            engines.append(p.engine)
    assert engines == ["lirs", "arc", "lirs"]
    m.check_bounds()


def test_adoption_keeps_every_resident_key() -> None:
    """With full shadows a switch copies the winner's simulation and evicts nothing."""
    rng = random.Random(5)
    keys = [rng.randrange(400) for _ in range(3_000)]
    for index, name in enumerate(ENGINES):
        p = AdaptivePolicy(100, None)
        m = Model(p, 100, None)
        for k in keys:
            m.access(k)
        before = set(m.resident)
        assert p._adopt(index, _policy_adaptive._NO_KEY) == []
        assert p.engine == name
        assert len(p) == len(before) == 100
        assert all(k in p for k in before)
        for k in keys[:500]:
            m.access(k)  # the adopted engine keeps serving within its bound
        m.check_bounds()
        assert len(p) == len(m.resident)


def test_sampled_switch_starts_from_the_simulation_tuning() -> None:
    """A sampled cache switching to TinyLFU starts on its simulation's window share."""
    keys = recency(30_000, seed=4)
    p = AdaptivePolicy(5_000, None, start="arc")
    m = Model(p, 5_000, None)
    for k in keys:
        m.access(k)
    shadow = p._objs[ENGINES.index("tinylfu")]
    assert isinstance(shadow, _policy_adaptive._TinyShadow)
    share = shadow.p.window_fraction
    assert share > 0.02  # the simulation's climber has grown the window on recency
    p._switch("tinylfu")
    engine = p._engine
    assert isinstance(engine, TinyLFUPolicy)
    assert abs(engine.window_fraction - share) < 0.001
    assert len(p) == len(m.resident)


def test_back_off_grows_with_switches_and_relaxes() -> None:
    """Each switch doubles the hold that follows it; quiet epochs halve it again."""
    p = AdaptivePolicy(100, None)
    holds = []
    for name in ("lirs", "arc", "lirs", "arc"):
        p._switch(name)
        holds.append(p._hold)
    base = _policy_adaptive._HOLD
    assert holds == [base, 2 * base, 4 * base, 8 * base]
    level = p._level
    p._hold = 0
    for _ in range(_policy_adaptive._RELAX):
        p._pat[0] += _policy_adaptive._EPOCH  # a quiet epoch: every engine missed
        p._seen = _policy_adaptive._EPOCH
        p._decide(_policy_adaptive._NO_KEY)
    assert p._level == level - 1
    assert p.engine == "arc"


@pytest.mark.slow
def test_switches_to_arc_on_a_recency_trace() -> None:
    """On a recency-heavy trace the ARC simulation leads, and the real cache follows it."""
    keys = recency(60_000, seed=3)
    p = AdaptivePolicy(500, None)
    ratio = hit_ratio(p, 500, keys)
    lru = hit_ratio(make_policy("lru", 500, None), 500, keys)
    assert p.engine == "arc"
    assert ratio > lru - 1.5


def test_no_flapping_on_a_stationary_trace() -> None:
    """On a stationary Zipf trace the policy settles: no switch after the first 20,000 reads."""
    keys = zipf(5_000, 60_000, 0.9, seed=7)
    p = AdaptivePolicy(250, None)
    m = Model(p, 250, None)
    hits = sum(m.access(k) for k in keys[:20_000])
    settled = p.switches
    # the mini-caches warm up at different speeds: early leads are real but short-lived
    assert settled <= 3
    hits += sum(m.access(k) for k in keys[20_000:])
    assert p.switches == settled
    tiny = hit_ratio(TinyLFUPolicy(250, None, climber="sample"), 250, keys)
    assert 100.0 * hits / len(keys) > tiny - 1.0


def test_large_caches_sample_keys() -> None:
    """Above the full-shadow size the mini-caches hold a sample, about 2,048 keys."""
    p = AdaptivePolicy(20_000, None)
    assert 0 < p._threshold < 1 << 64
    assert p._shadows
    small = AdaptivePolicy(1_000, None)
    assert small._threshold == 1 << 64


def test_weighted_cache_runs_tinylfu_without_simulation() -> None:
    """A max_weight cache runs TinyLFU alone; resizing to weights switches back to it."""
    p = AdaptivePolicy(None, 100)
    assert p.engine == "tinylfu"
    assert not p._shadows
    q = AdaptivePolicy(10, None)
    m = Model(q, 10, None)
    for k in range(20):
        m.access(k)
    q._switch("arc")
    victims = q.resize(None, 8)
    m.max_entries, m.max_weight = None, 8
    m.evict(victims)
    m.check_bounds()
    assert q.engine == "tinylfu"
    assert len(q) == len(m.resident)


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["access", "access", "access", "access", "update", "remove", "resize", "switch"]
        ),
        st.integers(0, 40),
        st.integers(1, 5),
    ),
    max_size=150,
)


@settings(max_examples=80, deadline=None)
@given(ops=ops, max_entries=st.integers(1, 12))
def test_bounds_hold_across_switches_against_a_model(
    ops: list[tuple[str, int, int]], max_entries: int
) -> None:
    """Random reads, writes, removals, resizes and engine switches keep the model's bounds."""
    p = AdaptivePolicy(max_entries, None)
    m = Model(p, max_entries, None)
    rng = random.Random(0)
    for op, key, w in ops:
        if op == "switch":
            before = set(m.resident)
            p._switch(rng.choice(ENGINES))
            assert {k for k in before if k in p} == before  # a switch evicts nothing
            m.check_bounds()
            assert len(p) == len(m.resident)
            assert p.weight == sum(m.resident.values())
        else:
            # Model.step applies the op, then checks the bounds, len and weight
            m.step(op, key, w, (1 + key % 12, None))
        for k in m.resident:
            assert k in p


def test_reads_of_removed_keys_are_harmless() -> None:
    """A buffered hit on a key removed meanwhile is ignored by every engine."""
    for engine in ENGINES:
        p = AdaptivePolicy(5, None)
        m = Model(p, 5, None)
        for k in range(8):
            m.access(k)
        p._switch(engine)
        victim: Hashable = next(iter(m.resident))
        p.hit(victim)
        p.remove(victim)
        del m.resident[victim]
        for k in range(8, 20):
            m.access(k)
        assert len(p) == len(m.resident) == 5


def test_cache_with_adaptive_policy_switches_and_keeps_its_bound() -> None:
    """perflayer.Cache(policy="adaptive") on a loop: it switches engines, dbsize stays bounded."""
    from perflayer import Cache

    c = Cache(max_entries=100, policy="adaptive", metrics=False)
    hits = 0
    for k in loop(600, 40):
        key = f"k{k}"
        if c.get(key) is not None:
            hits += 1
        else:
            c.set(key, k)
        assert c.dbsize() <= 100
    policy = c._policy
    assert isinstance(policy, AdaptivePolicy)
    assert policy.engine == "lirs"
    assert hits > 0
