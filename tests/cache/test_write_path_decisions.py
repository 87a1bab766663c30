"""The policies' decisions are pinned: the same accesses evict the same keys, in the same order.

The digests below were recorded from ``TinyLFUPolicy`` and ``LRUPolicy`` before the write-path
work (commit 8beab83); any speed change to the policies or the cache core must reproduce them
exactly. Keys are ints, so ``hash()`` (which the sketch uses) is the same in every process.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from perflayer.cache._policy import LRUPolicy, TinyLFUPolicy

# (op, key, weight): "r" a read (cache-aside: a miss is followed by an add), "w" a write,
# "d" a delete, "z" a resize to ``weight`` entries (0: back to the original bounds)
Op = tuple[str, int, int]


def _zipf(rng: random.Random, n: int, alpha: float) -> Callable[[], int]:
    cum: list[float] = []
    total = 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank**alpha
        cum.append(total)
    label = list(range(n))
    rng.shuffle(label)

    def draw() -> int:
        return label[rng.choices(range(n), cum_weights=cum)[0]]

    return draw


def zipf_with_writes() -> tuple[int | None, int | None, list[Op]]:
    """40k reads/writes/deletes, Zipf(0.9) over 8,000 keys, 500 entries, one resize."""
    rng = random.Random(101)
    draw = _zipf(rng, 8_000, 0.9)
    ops: list[Op] = []
    for i in range(40_000):
        if i == 20_000:
            ops.append(("z", 0, 300))
        if i == 26_000:
            ops.append(("z", 0, 0))
        u = rng.random()
        k = draw()
        if u < 0.85:
            ops.append(("r", k, 1))
        elif u < 0.98:
            ops.append(("w", k, 1))
        else:
            ops.append(("d", k, 1))
    return 500, None, ops


def scan_loop() -> tuple[int | None, int | None, list[Op]]:
    """30k reads: a 1,200-key loop over a 1,000-entry cache, hot keys and one-off scans."""
    rng = random.Random(202)
    ops: list[Op] = []
    loop = 0
    scan = 100_000
    while len(ops) < 30_000:
        u = rng.random()
        if u < 0.5:
            ops.append(("r", loop % 1_200, 1))
            loop += 1
        elif u < 0.8:
            ops.append(("r", 5_000 + rng.randrange(150), 1))
        else:
            for _ in range(rng.randrange(1, 60)):
                ops.append(("r", scan, 1))
                scan += 1
    return 1_000, None, ops


def weighted() -> tuple[int | None, int | None, list[Op]]:
    """30k reads and writes of weights 1-40 under max_weight=4,000 and max_entries=400."""
    rng = random.Random(303)
    draw = _zipf(rng, 3_000, 0.8)
    weights = {k: rng.randint(1, 40) for k in range(3_000)}
    ops: list[Op] = []
    for _ in range(30_000):
        k = draw()
        if rng.random() < 0.9:
            ops.append(("r", k, weights[k]))
        else:
            ops.append(("w", k, rng.randint(1, 40)))
    return 400, 4_000, ops


SEQUENCES: dict[str, Callable[[], tuple[int | None, int | None, list[Op]]]] = {
    "zipf_with_writes": zipf_with_writes,
    "scan_loop": scan_loop,
    "weighted": weighted,
}


def replay(
    max_entries: int | None,
    max_weight: int | None,
    ops: list[Op],
    cls: type[TinyLFUPolicy | LRUPolicy] = TinyLFUPolicy,
) -> str:
    """Drive a policy as the cache does; return a digest of victims, hits and final state."""
    p = cls(max_entries, max_weight)
    resident: dict[int, int] = {}
    victims: list[int] = []
    hits = 0

    def evict(vs: list[object]) -> None:
        for v in vs:
            assert isinstance(v, int)
            del resident[v]
            victims.append(v)

    for op, k, w in ops:
        if op == "r":
            if k in resident:
                p.hit(k)
                hits += 1
                continue
            p.miss(k)
            evict(p.add(k, w))
            resident[k] = w
        elif op == "w":
            evict(p.update(k, w) if k in resident else p.add(k, w))
            resident[k] = w
        elif op == "d":
            p.remove(k)
            resident.pop(k, None)
        else:
            evict(p.resize(w or max_entries, max_weight))
    assert len(p) == len(resident)
    share = round(p.window_fraction, 9) if isinstance(p, TinyLFUPolicy) else None
    state = (victims, hits, sorted(resident), p.weight, share)
    return hashlib.sha256(repr(state).encode()).hexdigest()[:32]


DIGESTS = {
    "zipf_with_writes": "cb9fc87e27bcfbfb845ace8b3fce8ce4",
    "scan_loop": "272f917b72503aef9f73535e310d7e23",
    "weighted": "2f034be8e1a7eedcae16277c226c8dc4",
}


LRU_DIGESTS = {
    "zipf_with_writes": "53943a461227d4838d6c95f8410a6b24",
    "scan_loop": "2e278b0ce5a7531a293c5e161ded75db",
    "weighted": "4b81c65812b499ecfb4d0ce6248fde2e",
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_tinylfu_evicts_the_recorded_keys(name: str) -> None:
    """Replaying a seeded sequence evicts exactly the keys the pre-change policy evicted."""
    assert replay(*SEQUENCES[name]()) == DIGESTS[name]


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_lru_evicts_the_recorded_keys(name: str) -> None:
    """LRUPolicy, whose add() now inlines the one-victim case, evicts the recorded keys."""
    assert replay(*SEQUENCES[name](), cls=LRUPolicy) == LRU_DIGESTS[name]
