"""Tests of the eviction policies: bounds, victims, weights, resize, hit ratios on known traces."""

from __future__ import annotations

import copy
import doctest
import random
import re
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache import _policy
from perflayer.cache._policy import LRUPolicy, TinyLFUPolicy, make_policy
from perflayer.cache._protocols import Policy
from perflayer.errors import ConfigError

NAMES = ["adaptive", "lru", "tinylfu"]


class Model:
    """A cache-aside memo over a policy, checking the policy's answers against a dict model."""

    def __init__(self, policy: Policy, max_entries: int | None, max_weight: int | None) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.resident: dict[Hashable, int] = {}

    def check_bounds(self) -> None:
        if self.max_entries is not None:
            assert len(self.resident) <= self.max_entries
        if self.max_weight is not None:
            assert sum(self.resident.values()) <= self.max_weight

    def evict(self, victims: list[Hashable], keep: Hashable | None = None) -> None:
        assert len(set(victims)) == len(victims), f"duplicate victims {victims}"
        for v in victims:
            assert v != keep, f"the key just written ({keep!r}) was returned as a victim"
            assert v in self.resident, f"victim {v!r} is not resident"
            del self.resident[v]

    def access(self, key: Hashable, weight: int = 1) -> bool:
        if key in self.resident:
            self.policy.hit(key)
            return True
        self.policy.miss(key)
        victims = self.policy.add(key, weight)
        self.resident[key] = weight
        self.evict(victims, keep=key)
        self.check_bounds()
        return False

    def step(self, op: str, key: Hashable, w: int, bounds: tuple[int | None, int | None]) -> None:
        """Apply one op of the model tests (``bounds``: a resize's new bounds); check the policy."""
        policy = self.policy
        if op == "access":
            self.access(key, w)
        elif op == "update":
            if key in self.resident:
                victims = policy.update(key, w)
                self.resident[key] = w
                self.evict(victims, keep=key)
        elif op == "remove":
            policy.remove(key)
            self.resident.pop(key, None)
        elif op == "resize":
            victims = policy.resize(*bounds)
            self.max_entries, self.max_weight = bounds
            self.evict(victims)
        else:
            policy.clear()
            self.resident.clear()
        self.check_bounds()
        assert len(policy) == len(self.resident)  # type: ignore[arg-type]
        assert policy.weight == sum(self.resident.values())  # type: ignore[attr-defined]


def hit_ratio(policy: Policy, capacity: int, keys: list[int]) -> float:
    """Replay ``keys`` as a memo and return the hit ratio in percent."""
    m = Model(policy, capacity, None)
    hits = sum(m.access(k) for k in keys)
    return 100.0 * hits / len(keys)


@pytest.mark.parametrize("name", NAMES)
def test_make_policy_builds_a_policy(name: str) -> None:
    """make_policy returns an object that satisfies the Policy protocol."""
    p = make_policy(name, 10, None)
    assert isinstance(p, Policy)


def test_make_policy_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """The names map to the documented classes: "tinylfu" is the C class (built by make test),
    or the pure-Python one when PERFLAYER_PURE_PYTHON is set."""
    from perflayer.cache import _tinylfu_c

    assert isinstance(make_policy("lru", 1, None), LRUPolicy)
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "0")  # (a suite run with it set tests the rest)
    assert isinstance(make_policy("tinylfu", 1, None), _tinylfu_c.TinyLFUPolicy)
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    assert isinstance(make_policy("tinylfu", 1, None), TinyLFUPolicy)


@pytest.mark.parametrize("bad", ["arc", "", "LRU", None, 3])
def test_unknown_policy_name_is_a_config_error(bad: object) -> None:
    """An unknown name raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=re.escape(repr(bad))):
        make_policy(bad, 10, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("max_entries", "max_weight", "bad"),
    [(0, None, "0"), (-1, None, "-1"), (None, 0, "0"), (1.5, None, "1.5"), (True, None, "True")],
)
def test_bad_bounds_are_config_errors(
    name: str, max_entries: object, max_weight: object, bad: str
) -> None:
    """A bound that is not None or a positive int raises ConfigError naming the value."""
    with pytest.raises(ConfigError, match=re.escape(bad)):
        make_policy(name, max_entries, max_weight)  # type: ignore[arg-type]


def test_bad_tinylfu_options_are_config_errors() -> None:
    """Out-of-range window share and read-buffer size raise ConfigError naming the value."""
    with pytest.raises(ConfigError, match=re.escape("1.5")):
        TinyLFUPolicy(10, None, window=1.5)
    with pytest.raises(ConfigError, match="0"):
        TinyLFUPolicy(10, None, read_buffer=0)


def test_module_doctests() -> None:
    """The examples in the policy module run."""
    result = doctest.testmod(_policy)
    assert result.attempted > 0
    assert result.failed == 0


ops = st.lists(
    st.tuples(
        st.sampled_from(["access", "access", "access", "update", "remove", "resize", "clear"]),
        st.integers(0, 40),
        st.integers(1, 5),
    ),
    max_size=120,
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(
    ops=ops,
    max_entries=st.one_of(st.none(), st.integers(1, 12)),
    max_weight=st.one_of(st.none(), st.integers(5, 30)),
)
def test_bounds_always_hold_against_a_model(
    name: str, ops: list[tuple[str, int, int]], max_entries: int | None, max_weight: int | None
) -> None:
    """Random reads, writes, removals and resizes never break a bound or evict the new key."""
    policy = make_policy(name, max_entries, max_weight)
    m = Model(policy, max_entries, max_weight)
    for op, key, w in ops:
        m.step(
            op, key, w, (None if key % 3 == 0 else 1 + key % 10, None if key % 4 == 0 else 5 + key)
        )
        if isinstance(policy, TinyLFUPolicy):
            assert set(policy._freq) == set(m.resident)


@pytest.mark.parametrize("name", NAMES)
def test_weighted_entries_stay_under_max_weight(name: str) -> None:
    """Weights, not counts, bound a max_weight policy; a heavy key evicts several light ones."""
    p = make_policy(name, None, 10)
    m = Model(p, None, 10)
    for k in range(10):
        m.access(k, 1)
    assert len(m.resident) == 10
    m.access("heavy", 7)
    assert "heavy" in m.resident
    assert sum(m.resident.values()) <= 10
    assert len(m.resident) <= 4


@pytest.mark.parametrize("name", NAMES)
def test_update_changes_weight_and_evicts_others(name: str) -> None:
    """Growing a key's weight evicts other keys, never the updated one."""
    p = make_policy(name, None, 10)
    m = Model(p, None, 10)
    for k in range(5):
        m.access(k, 2)
    victims = p.update(3, 8)
    m.resident[3] = 8
    m.evict(victims, keep=3)
    assert 3 in m.resident
    assert sum(m.resident.values()) <= 10


@pytest.mark.parametrize("name", NAMES)
def test_resize_shrinks_and_grows(name: str) -> None:
    """Shrinking evicts down to the new bound; growing evicts nothing and makes room."""
    p = make_policy(name, 100, None)
    m = Model(p, 100, None)
    for k in range(100):
        m.access(k)
    victims = p.resize(10, None)
    assert len(victims) == 90
    m.evict(victims)
    assert len(m.resident) == 10
    assert p.resize(50, None) == []
    m.max_entries = 50
    for k in range(100, 140):
        m.access(k)
    assert len(m.resident) == 50


@pytest.mark.parametrize("name", NAMES)
def test_remove_and_clear_forget_keys(name: str) -> None:
    """remove() forgets one key (unknown keys are ignored), clear() forgets all."""
    p = make_policy(name, 3, None)
    m = Model(p, 3, None)
    for k in "abc":
        m.access(k)
    p.remove("b")
    del m.resident["b"]
    p.remove("never-added")
    assert len(p) == 2  # type: ignore[arg-type]
    m.access("d")
    assert set(m.resident) == {"a", "c", "d"}
    p.clear()
    m.resident.clear()
    assert len(p) == 0  # type: ignore[arg-type]
    assert p.weight == 0  # type: ignore[attr-defined]
    for k in "wxyz":
        m.access(k)
    assert len(m.resident) == 3


def test_lru_evicts_least_recently_used() -> None:
    """LRU evicts the key read longest ago."""
    p = LRUPolicy(2, None)
    assert p.add("a", 1) == []
    assert p.add("b", 1) == []
    p.hit("a")
    assert p.add("c", 1) == ["b"]


def test_tinylfu_single_entry_cache_keeps_the_new_key() -> None:
    """With room for one key, each new key replaces the old one."""
    p = TinyLFUPolicy(1, None)
    assert p.add("a", 1) == []
    assert p.add("b", 1) == ["a"]
    assert "b" in p


def test_tinylfu_hits_on_removed_keys_are_harmless() -> None:
    """A buffered read of a key removed before the buffer drains counts as a miss."""
    p = TinyLFUPolicy(4, None)
    p.add("a", 1)
    p.hit("a")
    p.remove("a")
    p.hit("a")
    assert p.add("b", 1) == []
    assert "a" not in p


def test_tinylfu_read_buffer_overflow_drops_old_reads() -> None:
    """More reads than the buffer holds between two writes are dropped, not accumulated."""
    p = TinyLFUPolicy(8, None, read_buffer=16)
    p.add("a", 1)
    for _ in range(10_000):
        p.hit("a")
    assert len(p._buf) == 16
    assert p.add("b", 1) == []
    assert len(p._buf) == 0


def test_frequency_sketch_counts_and_ages() -> None:
    """The sketch counts repeats (doorkeeper first) and halves counts after its period."""
    s = _policy.FrequencySketch(16)
    assert s.frequency("k") == 0
    s.increment("k")
    assert s.frequency("k") == 1
    for _ in range(5):
        s.increment("k")
    assert s.frequency("k") == 6
    for _ in range(100):
        s.increment("k")
    assert s.frequency("k") == 16  # saturated: 15 + the doorkeeper bit
    s.age(16)
    assert s.frequency("k") == 7
    s.clear()
    assert s.frequency("k") == 0


def test_increment_and_take_matches_increment_then_take() -> None:
    """The fused sketch call gives the same estimates as the two calls it replaces."""
    a = _policy.FrequencySketch(16)
    b = _policy.FrequencySketch(16)
    for key in [1, 2, 1, 3, 1, 2, 4, 1, 1]:
        a.increment(key)
        got = b.increment_and_take(key)
        assert got == a.take(key)
        a.put(key, got)
        b.put(key, got)
        assert a.frequency(key) == b.frequency(key)


def test_tinylfu_add_keeps_sketch_counts_like_the_sketch_methods() -> None:
    """The sketch work inlined in add() (take on entry, put on exit) matches FrequencySketch's."""
    rng = random.Random(5)
    p = TinyLFUPolicy(max_entries=40, max_weight=None)
    checked = {"increment_and_take": 0, "take": 0, "put": 0}
    for step in range(4_000):
        key = rng.randrange(150) if rng.random() < 0.8 else 1_000 + step
        if key in p:
            p.hit(key)
            continue
        p.miss(key)
        if rng.random() < 0.3:
            # an overwrite replays the buffer and leaves this miss as the last one: the add
            # that follows then takes the count without counting the write again
            p.update(next(iter(p._window)), 1)
        elif rng.random() < 0.5:
            p.hit(next(iter(p._window)))  # more than the one miss buffered: add replays
        sketch = p._sketch
        before = sketch.additions
        simple = list(p._buf) in ([], [key])
        counted = list(p._buf) == [key] or p._last_miss != key
        freq_before = dict(p._freq)
        reference = copy.deepcopy(sketch)
        victims = p.add(key, 1)
        if sketch.additions < before or not simple:
            continue  # the sketch aged, or reads were replayed first: no simple reference
        if counted:
            assert p._freq[key] == reference.increment_and_take(key)
            checked["increment_and_take"] += 1
        else:
            assert p._freq[key] == reference.take(key)
            checked["take"] += 1
        for v in victims:
            assert sketch.frequency(v) == min(freq_before[v], 15)
            checked["put"] += 1
    assert min(checked.values()) > 100, checked


def loop(n: int, rounds: int) -> list[int]:
    """Return the LIRS 'loop' pattern: keys 0..n-1 in order, repeated."""
    return list(range(n)) * rounds


def zipf(n: int, length: int, alpha: float, seed: int) -> list[int]:
    """Return ``length`` draws of a Zipf(alpha) distribution over ``n`` keys."""
    rng = random.Random(seed)
    weights = [1.0 / (r + 1) ** alpha for r in range(n)]
    return rng.choices(range(n), weights=weights, k=length)


def recency(length: int, seed: int) -> list[int]:
    """Return a trace of re-reads of recently touched keys plus a stream of new keys."""
    rng = random.Random(seed)
    keys: list[int] = []
    fresh = 0
    for _ in range(length):
        if not keys or rng.random() < 0.25:
            keys.append(fresh)
            fresh += 1
        else:
            keys.append(keys[-min(len(keys), 1 + int(rng.expovariate(1 / 400)))])
    return keys


@pytest.mark.slow
def test_tinylfu_beats_lru_on_a_loop() -> None:
    """On a 1,011-key loop at 512 entries, LRU scores 0 and tinylfu keeps about half."""
    keys = loop(1011, 60)
    lru = hit_ratio(make_policy("lru", 512, None), 512, keys)
    tiny = hit_ratio(make_policy("tinylfu", 512, None), 512, keys)
    assert lru == 0.0
    assert tiny > 45.0


def test_tinylfu_beats_lru_on_zipf() -> None:
    """On a skewed (Zipf 0.9) workload, frequency admission beats plain recency."""
    keys = zipf(5_000, 60_000, 0.9, seed=7)
    lru = hit_ratio(make_policy("lru", 250, None), 250, keys)
    tiny = hit_ratio(make_policy("tinylfu", 250, None), 250, keys)
    assert tiny > lru + 3.0


@pytest.mark.slow
def test_tinylfu_adapts_to_recency() -> None:
    """On a recency-heavy trace the hill climber grows the window, to within 3 points of LRU."""
    keys = recency(120_000, seed=3)
    lru = hit_ratio(make_policy("lru", 2_000, None), 2_000, keys)
    p = TinyLFUPolicy(2_000, None)
    tiny = hit_ratio(p, 2_000, keys)
    static = hit_ratio(TinyLFUPolicy(2_000, None, adaptive=False), 2_000, keys)
    assert tiny > static + 5.0
    assert tiny > lru - 3.0
    assert p.window_fraction > 0.2


def test_tinylfu_read_buffer_holds_one_read_per_entry() -> None:
    """The default read buffer holds one read per entry (1,024 at least, 4,096 at most)."""
    assert _policy.read_buffer_size(None) == 1_024
    assert _policy.read_buffer_size(10) == 1_024
    assert _policy.read_buffer_size(3_000) == 3_000
    assert _policy.read_buffer_size(10**7) == 4_096
    assert TinyLFUPolicy(3_000, None)._buf.maxlen == 3_000
    assert TinyLFUPolicy(None, 50_000)._buf.maxlen == 1_024
    # the adaptive policy keeps the 1,024 reads its switching rule was tuned with
    assert make_policy("adaptive", 5_000, None)._buf.maxlen == 1_024  # type: ignore[attr-defined]


def test_tinylfu_replays_a_hit_run_as_long_as_the_cache() -> None:
    """3,000 hits with no write between them all count: every re-read key reaches protected."""
    p = TinyLFUPolicy(4_000, None, adaptive=False)  # no climbing: regions stay put
    for k in range(3_000):
        p.miss(k)
        assert p.add(k, 1) == []
    in_main = [k for k in range(3_000) if k in p._probation]
    for k in range(3_000):
        p.hit(k)
    assert p.add(-1, 1) == []
    assert len(in_main) > 2_900
    assert all(k in p._protected for k in in_main)


def test_update_over_max_weight_with_an_empty_window_evicts_nothing_else() -> None:
    """A key re-weighed past max_weight alone in the cache is not an error for the policy (the
    core rejects such values up front): no StopIteration, the key stays (as in the C class)."""
    from perflayer.cache._tinylfu_c import TinyLFUPolicy as CTinyLFUPolicy

    for cls in (TinyLFUPolicy, CTinyLFUPolicy):
        p = cls(None, 10)
        assert p.add("a", 5) == []
        assert p.update("a", 20) == []
        assert "a" in p


def test_a_raising_key_in_the_replay_keeps_the_protected_weight() -> None:
    """An unhashable buffered read stops the replay with TypeError; the weight of a key promoted
    before it is still counted in protected, so later demotions stay in bounds."""
    p = TinyLFUPolicy(None, 80)
    for k in "abcdefgh":
        p.add(k, 10)
    p.hit("b")
    p.hit([])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.add("z", 10)
    assert p._pw == sum(p._protected.values())


# -- the shadow climber ---------------------------------------------------------------------------


def phases(length: int, cap: int, seed: int) -> list[int]:
    """Return phases that alternate a loop of 1.3 x ``cap`` keys (a small window is best) and
    re-reads of recent keys plus new keys (a large window is best)."""
    rng = random.Random(seed)
    keys: list[int] = []
    span = max(2, cap * 13 // 10)
    plen = max(4_000, 20 * cap)
    fresh = 10**7
    recent: list[int] = []
    while len(keys) < length:
        keys.extend(i % span for i in range(plen))
        for _ in range(plen):
            if not recent or rng.random() < 0.3:
                recent.append(fresh)
                keys.append(fresh)
                fresh += 1
            else:
                keys.append(recent[-min(len(recent), 1 + int(rng.expovariate(3 / cap)))])
    return keys[:length]


def scan_hot(length: int, hot: int, seed: int) -> list[int]:
    """Return reads of ``hot`` keys interrupted by one-off scans of new keys."""
    rng = random.Random(seed)
    keys: list[int] = []
    scan = 10**6
    while len(keys) < length:
        if rng.random() < 0.9:
            keys.append(rng.randrange(hot))
        else:
            n = rng.randrange(1, 2 * hot)
            keys.extend(range(scan, scan + n))
            scan += n
    return keys[:length]


def _stream(name: str, cap: int, length: int) -> list[int]:
    if name == "zipf":
        return zipf(5 * cap, length, 0.9, seed=cap)
    if name == "loop":
        return loop(cap * 3 // 2, length // (cap * 3 // 2) + 1)[:length]
    if name == "recency":
        return recency(length, seed=cap)
    if name == "phases":
        return phases(length, cap, seed=cap)
    return scan_hot(length, max(2, cap // 4), seed=cap)


def _with_writes(keys: list[int], seed: int) -> list[tuple[str, int]]:
    """Turn reads into cache-aside reads ("r"), with some writes ("w") and deletes ("d")."""
    rng = random.Random(seed)
    ops: list[tuple[str, int]] = []
    for k in keys:
        u = rng.random()
        ops.append(("r" if u < 0.9 else "w" if u < 0.97 else "d", k))
    return ops


def _replay_with_prototype(cap: int, ops: list[tuple[str, int]]) -> tuple[TinyLFUPolicy, int]:
    """Drive ``climber="shadow"`` and the prototype alike, asserting the same answer to each call;
    return ours and its hit count."""
    from benchmarks.prototypes.shadow_climber import H3Policy

    # (the prototype predates the ghost admission: both run without it)
    ours = TinyLFUPolicy(cap, None, climber="shadow", ghost=False)
    # the prototype is a TinyLFUPolicy subclass with its own climber in place of the sample one
    proto = H3Policy(cap, None, climber="sample")
    resident: set[int] = set()
    hits = 0
    for i, (op, k) in enumerate(ops):
        if op == "d":
            ours.remove(k)
            proto.remove(k)
            resident.discard(k)
            continue
        if k in resident:
            if op == "r":
                ours.hit(k)
                proto.hit(k)
                hits += 1
                continue
            victims = ours.update(k, 1)
            assert victims == proto.update(k, 1), i
        else:
            if op == "r":
                ours.miss(k)
                proto.miss(k)
            victims = ours.add(k, 1)
            assert victims == proto.add(k, 1), i
            resident.add(k)
        resident.difference_update(victims)
        if i % 1_000 == 0:
            assert ours.window_fraction == proto.window_fraction, i
    assert ours.add(-1, 1) == proto.add(-1, 1)  # replays the last reads
    assert ours.window_fraction == proto.window_fraction
    assert ours.climber_moves == proto._h3_moves
    for region in ("_window", "_probation", "_protected"):
        assert list(getattr(ours, region)) == list(getattr(proto, region))
    assert ours._freq == proto._freq
    return ours, hits


SHADOW_CASES = [
    # (capacity, stream, accesses, whether the window moves): tiny caches (2, 10, 100), full
    # shadows (600, 1,000), sampled shadows (5,000: one key in 8; 20,000: one in 32)
    (2, "zipf", 20_000, False),
    (2, "phases", 20_000, False),
    (10, "phases", 20_000, True),
    (10, "scan_hot", 20_000, False),
    (100, "recency", 20_000, True),
    (100, "phases", 20_000, True),
    (100, "zipf", 20_000, False),
    (600, "loop", 24_000, True),
    (600, "phases", 40_000, True),
    (600, "scan_hot", 24_000, False),
    (1_000, "recency", 40_000, True),
    (1_000, "zipf", 40_000, True),
    (5_000, "phases", 200_000, True),
    (5_000, "loop", 200_000, True),
    pytest.param(20_000, "phases", 800_000, True, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("cap", "stream", "length", "moves"), SHADOW_CASES)
def test_shadow_climber_decides_like_the_prototype(
    cap: int, stream: str, length: int, moves: bool
) -> None:
    """climber="shadow" evicts the prototype's keys and moves its window (reads, writes,
    deletes; full and sampled shadows); the streams marked as moving do move."""
    ops = _with_writes(_stream(stream, cap, length), seed=cap + length)
    ours, _ = _replay_with_prototype(cap, ops)
    assert (ours.climber_moves > 0) == moves, ours.climber_moves


def _memo(p: TinyLFUPolicy, cap: int, keys: list[int]) -> int:
    """Replay ``keys`` as a memo over ``p``; return the hits."""
    m = Model(p, cap, None)
    return sum(m.access(k) for k in keys)


def _active(p: TinyLFUPolicy) -> bool:
    """Return True while ``p``'s shadow climber is on (it has shadows)."""
    return p._shadow_up is not None and p._shadow_down is not None


def _assert_fresh_shadows(p: TinyLFUPolicy, cap_s: int, step: int) -> None:
    """The shadow climber's state is as the constructor builds it at the current share."""
    down, up = p._shadow_down, p._shadow_up
    assert down is not None and up is not None
    assert p._shadow_cap == cap_s and down.max_entries == up.max_entries == cap_s
    assert p._shadow_step == step
    assert len(down) == len(up) == 0
    assert p._shadow_probe == 0.0625
    assert p._dis_up == p._dis_down == p._long_up == p._long_down == 0
    assert p._new_up == p._new_down == p._shadow_seen == 0
    f = p.window_fraction
    assert down._wmax == max(1, round(min(max(0.0, f - 0.0625), 1.0) * cap_s))
    assert up._wmax == max(1, round(min(max(0.0, f + 0.0625), 1.0) * cap_s))


def test_shadow_climber_samples_by_capacity() -> None:
    """Full shadows below 1,024 entries; above, one key in R (cap / R >= 512, R <= 64)."""
    for cap, r in [(2, 1), (1_023, 1), (1_024, 2), (5_000, 8), (20_000, 32), (10**6, 64)]:
        p = TinyLFUPolicy(cap, None, climber="shadow")
        assert p._shadow_threshold == (1 << 64 if r == 1 else (1 << 64) // r)
        _assert_fresh_shadows(p, max(2, cap // r), max(1, round(0.0625 * cap)))
        assert p.climber == "shadow" and p.climber_moves == 0


def test_shadow_climber_clear_rebuilds_the_shadows_and_keeps_share_and_moves() -> None:
    """clear() empties the shadows at the current window share and zeroes the counts; the share
    and the moves made so far are kept."""
    p = TinyLFUPolicy(1_000, None, climber="shadow")
    _memo(p, 1_000, recency(40_000, seed=1_000))
    moves = p.climber_moves
    share = p.window_fraction
    assert moves > 0 and share > 0.5
    old = p._shadow_up
    p.clear()
    assert len(p) == 0 and p._shadow_up is not old
    assert p.window_fraction == share and p.climber_moves == moves
    _assert_fresh_shadows(p, 1_000, 62)
    # and it keeps climbing from there: a loop larger than the cache shrinks the window
    _memo(p, 1_000, loop(1_500, 40))
    assert p.climber_moves > moves and p.window_fraction < share


def test_shadow_climber_resize_rebuilds_for_the_new_capacity() -> None:
    """resize() to a new count bound rebuilds the shadows for it (sampling, size, step) at the
    post-resize share; the moves made so far are kept."""
    p = TinyLFUPolicy(1_000, None, climber="shadow")
    _memo(p, 1_000, recency(40_000, seed=1_000))
    moves = p.climber_moves
    share = p.window_fraction
    p.resize(5_000, None)
    assert p.climber_moves == moves and p.window_fraction == share
    assert p._shadow_threshold == (1 << 64) // 8
    _assert_fresh_shadows(p, 625, 312)
    p.resize(300, None)
    assert len(p) == 300
    assert p._shadow_threshold == 1 << 64
    _assert_fresh_shadows(p, 300, 19)


def test_shadow_climber_is_off_when_weight_bounded_and_back_on_after() -> None:
    """Weight-bounded (or unbounded) caches use the sample climber; a resize to a count bound
    alone turns the shadow climber back on, at the share the sample climber left."""
    p = TinyLFUPolicy(1_000, None, climber="shadow")
    m = Model(p, 1_000, None)
    for k in recency(20_000, seed=1):
        m.access(k)
    moves = p.climber_moves
    assert moves > 0
    m.evict(p.resize(1_000, 1_000))
    m.max_weight = 1_000
    assert not _active(p)
    assert p.climber == "shadow"
    assert p._prev_rate == 0.0  # the sample climber's last rate: it never ran so far
    for k in zipf(5_000, 20_000, 0.9, seed=1):
        m.access(k)
    # the sample climber ran (the shadow climber made no move)
    assert p._prev_rate > 0.0 and p.climber_moves == moves
    m.evict(p.resize(None, None))
    assert not _active(p)
    m.evict(p.resize(800, None))
    assert len(p) == 800
    assert _active(p) and p.climber_moves == moves
    _assert_fresh_shadows(p, 800, 50)


def test_shadow_climber_with_a_weight_bound_decides_like_the_sample_climber() -> None:
    """climber="shadow" under max_weight (and with adaptive=False) is the "sample" policy."""
    keys = phases(20_000, 300, seed=3)
    cases: list[tuple[tuple[int | None, int | None], bool]] = [
        ((None, 600), True),
        ((300, 600), True),
        ((300, None), False),
    ]
    for bounds, adaptive in cases:
        a = TinyLFUPolicy(*bounds, climber="shadow", adaptive=adaptive)
        b = TinyLFUPolicy(*bounds, climber="sample", adaptive=adaptive)
        assert not _active(a)
        ma = Model(a, *bounds)
        mb = Model(b, *bounds)
        for i, k in enumerate(keys):
            w = 1 + k % 3
            assert ma.access(k, w) == mb.access(k, w)
            if i % 1_000 == 0:
                assert ma.resident == mb.resident
                assert a.window_fraction == b.window_fraction
        assert ma.resident == mb.resident
        assert a.window_fraction == b.window_fraction
        assert a.climber_moves == 0


@pytest.mark.parametrize("bad", ["", "Shadow", "lru", None, 1, b"shadow"])
def test_a_bad_climber_is_a_config_error(bad: object) -> None:
    """An unknown climber raises ConfigError naming it; nothing is built."""
    with pytest.raises(ConfigError) as error:
        TinyLFUPolicy(10, None, climber=bad)  # type: ignore[arg-type]
    assert str(error.value) == f"climber must be 'sample' or 'shadow', got {bad!r}"


def test_climber_and_climber_moves_are_read_only() -> None:
    """``climber`` returns the climber asked for, ``climber_moves`` counts moves; neither is set."""
    assert TinyLFUPolicy(10, None).climber == "shadow"  # the default
    assert TinyLFUPolicy(10, None, climber="sample").climber_moves == 0
    p = TinyLFUPolicy(10, None, climber="shadow")
    assert p.climber == "shadow"
    with pytest.raises(AttributeError):
        p.climber = "sample"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.climber_moves = 3  # type: ignore[misc]


@pytest.mark.parametrize(("cap", "stream"), [(1_000, "phases"), (1_000, "recency")])
def test_shadow_climber_beats_the_sample_climber_where_it_tracks_the_workload(
    cap: int, stream: str
) -> None:
    """Where the prototype follows a phase change (loop <-> recency), and on a recency-heavy
    stream, the shadow climber gets more hits than the sample climber."""
    keys = _stream(stream, cap, 40 * cap)
    shadow = TinyLFUPolicy(cap, None, climber="shadow")
    sample = TinyLFUPolicy(cap, None, climber="sample")
    assert _memo(shadow, cap, keys) > _memo(sample, cap, keys) * 1.05
    assert shadow.climber_moves > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shadow_climber_keeps_the_bounds_against_a_model(seed: int) -> None:
    """A phase stream with writes, deletes, and a resize or clear every 2,500 ops (to count,
    weight, both or no bounds): bounds hold, the new key stays, the shadow climber is on exactly
    while the cache is count-bounded alone, and it moves the window."""
    rng = random.Random(seed)
    policy = TinyLFUPolicy(100, None, climber="shadow")
    m = Model(policy, 100, None)
    bounds: tuple[int | None, int | None] = (100, None)
    for i, k in enumerate(phases(20_000, 100, seed=seed)):
        u = rng.random()
        if i % 2_500 == 2_499:
            op = "clear" if u < 0.25 else "resize"
            entries = rng.randint(1, 200)
            weight = rng.randint(50, 300)
            # a resize's new bounds (a clear keeps the bounds)
            bounds = rng.choice(
                [(entries, None), (entries, None), (None, weight), (entries, weight), (None, None)]
            )
        else:
            op = "access" if u < 0.9 else "update" if u < 0.97 else "remove"
        m.step(op, k, 1 + k % 3, bounds)
        assert _active(policy) == (m.max_weight is None and m.max_entries is not None)
    assert policy.climber_moves > 0


class _ReadingKey:
    """An int-like key whose ``__hash__`` records a read of another key on its ``fire``-th call,
    as another thread's ``hit`` would between two bytecodes of a write."""

    def __init__(self, policy: TinyLFUPolicy, fire: int) -> None:
        self.policy = policy
        self.calls = 0
        self.fire = fire

    def __hash__(self) -> int:
        self.calls += 1
        if self.calls == self.fire:
            self.policy.hit("other")
        return 7

    def __eq__(self, other: object) -> bool:
        return self is other


@pytest.mark.parametrize("fire", range(1, 8))
def test_a_read_recorded_while_the_shadows_are_fed_does_not_break_the_write(fire: int) -> None:
    """hit() from another thread may append to the read buffer at any point of a cache-aside add,
    also while the shadow climber reads the miss: the add succeeds (the read may be dropped, as
    the lossy buffer allows; iterating the deque raised "deque mutated during iteration")."""
    p = TinyLFUPolicy(10, None, climber="shadow")
    for k in range(10):
        p.miss(k)
        p.add(k, 1)
    key = _ReadingKey(p, fire)
    p.miss(key)
    assert len(p.add(key, 1)) == 1
    assert key in p and len(p) == 10
    p.add(100, 1)  # the next write replays whatever was recorded
    assert len(p) == 10 and 100 in p
