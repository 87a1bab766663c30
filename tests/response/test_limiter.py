"""AdaptiveLimiter on a small simulated backend (discrete events, no clock, no timing)."""

from __future__ import annotations

import heapq
import itertools
import random

import pytest

from perflayer.errors import ConfigError
from perflayer.response import AdaptiveLimiter
from perflayer.response._limiter import _Level


def drive(lim: AdaptiveLimiter, servers: list[int], calls: int, seed: int = 1) -> list[int]:
    """Keep ``lim.limit`` calls in flight against a FIFO backend; return the limit after each call.

    ``servers`` is a one-element list so a test can change the backend's capacity mid-run.
    Service times are uniform 20-50 ms; calls beyond the servers wait in the backend's queue.
    """
    rng = random.Random(seed)
    now = 0.0
    events: list[tuple[float, int, int, float]] = []  # (finish, seq, tag, dispatched)
    busy_until: list[float] = []  # finish times of calls holding a server
    backlog: list[tuple[int, float, float]] = []  # (tag, dispatched, service) waiting for a server
    inflight = 0
    seq = 0
    seen: list[int] = []

    def start(tag: int, dispatched: float, service: float) -> None:
        nonlocal seq
        heapq.heappush(busy_until, now + service)
        heapq.heappush(events, (now + service, seq, tag, dispatched))
        seq += 1

    for _ in range(calls):
        while inflight < lim.limit:
            inflight += 1
            tag = lim.on_dispatch(inflight)
            service = rng.uniform(0.020, 0.050)
            if len(busy_until) < servers[0]:
                start(tag, now, service)
            else:
                backlog.append((tag, now, service))
        finish, _, tag, dispatched = heapq.heappop(events)
        now = finish
        heapq.heappop(busy_until)
        inflight -= 1
        while backlog and len(busy_until) < servers[0]:
            t, d, s = backlog.pop(0)
            start(t, d, s)
        lim.on_sample(now - dispatched, tag)
        seen.append(lim.limit)
    return seen


def settled(seen: list[int]) -> list[int]:
    """Return the limits seen over the last third of a run."""
    return seen[-len(seen) // 3 :]


def test_limit_grows_to_the_backend_capacity() -> None:
    """From a small start the limit climbs to about the number of servers."""
    lim = AdaptiveLimiter(initial_limit=2)
    seen = drive(lim, [12], 20_000)
    tail = sorted(settled(seen))
    assert 11 <= tail[len(tail) // 2] <= 14
    assert lim.base >= 11


def test_limit_shrinks_when_it_starts_too_high() -> None:
    """Started far above capacity, the limit comes down to about the number of servers."""
    lim = AdaptiveLimiter(initial_limit=64, max_limit=200)
    seen = drive(lim, [6], 20_000)
    tail = sorted(settled(seen))
    assert 5 <= tail[len(tail) // 2] <= 8


def test_limit_follows_capacity_down_and_up() -> None:
    """When the backend loses servers the limit drops; when they come back it recovers."""
    servers = [16]
    lim = AdaptiveLimiter(initial_limit=4)
    drive(lim, servers, 15_000, seed=2)
    high = lim.base
    servers[0] = 4
    seen_low = drive(lim, servers, 15_000, seed=3)
    low = sorted(settled(seen_low))[len(seen_low) // 6]
    servers[0] = 16
    seen_back = drive(lim, servers, 30_000, seed=4)
    back = sorted(settled(seen_back))[len(seen_back) // 6]
    assert high >= 14
    assert low <= 6
    assert back >= 12


def test_a_probe_below_a_large_start_returns_while_its_calls_finish() -> None:
    """The window below a large initial limit does not hold the low level until it is back."""
    lim = AdaptiveLimiter(initial_limit=20)
    tags = [lim.on_dispatch(20) for _ in range(32)]
    for tag in tags:
        lim.on_sample(0.042, tag)
    assert lim.limit == 12 and lim.in_slow_start  # one window at 60% of the start
    tags = [lim.on_dispatch(12) for _ in range(32)]
    assert lim.limit == 20 and lim.in_slow_start  # all dispatched: back up while they run
    for tag in tags:
        lim.on_sample(0.030, tag)
    # Flat at 12, 1.4x slower at 20: Little's law puts the knee at 14.3, and slow start ends
    # one step above it.
    assert lim.limit == 16 and not lim.in_slow_start


def test_a_lost_slow_start_window_is_measured_again() -> None:
    """If no call of the awaited window comes back with a latency, its level is probed again."""
    lim = AdaptiveLimiter(initial_limit=20)
    for tag in [lim.on_dispatch(20) for _ in range(32)]:
        lim.on_sample(0.040, tag)
    for tag in [lim.on_dispatch(12) for _ in range(32)]:
        lim.on_drop(tag)
    assert lim.limit == 20
    for _ in range(32):
        lim.on_dispatch(20)
    assert lim.limit == 12 and lim.in_slow_start


def test_settled_limit_does_not_keep_probing_below() -> None:
    """At the knee of a steady backend, old samples below still vouch for it: no new probes."""
    lim = AdaptiveLimiter(initial_limit=4)
    seen = drive(lim, [16], 40_000, seed=3)
    base = lim.base
    late = seen[20_000:]
    probes_down = sum(1 for a, b in itertools.pairwise(late) if a == base and b < a)
    assert 15 <= base <= 17
    assert probes_down <= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_limit_comes_down_when_the_backend_loses_a_quarter(seed: int) -> None:
    """16 -> 12 servers is no collapse (latency +33%), yet the limit follows it down.

    The calls in flight at the switch never come back (``drive`` starts afresh): a probe window
    awaited then is lost, and the limiter must not wait for it forever (seed 1 did).
    """
    servers = [16]
    lim = AdaptiveLimiter(initial_limit=4)
    drive(lim, servers, 15_000, seed=seed)
    assert lim.base >= 15
    servers[0] = 12
    seen = drive(lim, servers, 20_000, seed=seed + 10)
    tail = sorted(settled(seen))
    assert 11 <= tail[len(tail) // 2] <= 13


def test_many_samples_below_pass_for_flat_on_the_flat_side_of_the_midpoint() -> None:
    """A difference just on the flat side is undecided after one probe, flat after four."""
    sd, r = 0.00866, 0.035  # U(20, 50) ms
    lim = AdaptiveLimiter(initial_limit=16)
    mid = 0.5 * r / 15  # halfway between flat and one step of queueing

    def verdict(n_below: int) -> int:
        lim._levels = {
            15: _Level(n_below, r, sd * sd * (n_below - 1), 0),
            16: _Level(1024, r + mid - 0.0003, sd * sd * 1023, 0),
        }
        return lim._verdict(15, 16, below=True)

    assert verdict(64) == 0  # 0.3 standard errors on the flat side: undecided
    assert verdict(256) == -1  # four windows: flat
    assert lim._verdict(15, 16) == 0  # between two levels above the base: still undecided


def test_app_limited_samples_do_not_move_the_limit() -> None:
    """Calls dispatched below the limit (not binding) leave it alone."""
    lim = AdaptiveLimiter(initial_limit=10)
    for _ in range(1000):
        tag = lim.on_dispatch(3)
        lim.on_sample(5.0, tag)
    assert lim.limit == 10 and lim.adjustments == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial_limit": 0}, "initial_limit"),
        ({"min_limit": 5, "max_limit": 2}, "max_limit"),
        ({"initial_limit": 50, "max_limit": 10}, "initial_limit"),
        ({"window": True}, "window"),
        ({"collapse": 1.0}, "collapse"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, object], name: str) -> None:
    """Bad settings raise ConfigError naming the setting."""
    with pytest.raises(ConfigError, match=name):
        AdaptiveLimiter(**kwargs)  # type: ignore[arg-type]
