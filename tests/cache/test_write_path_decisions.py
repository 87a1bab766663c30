"""The policies' decisions are pinned: the same accesses evict the same keys, in the same order.

The digests below were recorded from ``TinyLFUPolicy`` and ``LRUPolicy`` before the write-path
work (commit 8beab83; the phase sequences with the shadow climber's introduction); any speed
change to the policies or the cache core must reproduce them exactly. SHADOW_DIGESTS pin
``climber="shadow"``; ``replay(..., cls=C, climber="shadow")`` reproduces them with another class.
DIGESTS and SHADOW_DIGESTS pin the plain policy (``ghost=False``); GHOST_DIGESTS the default, with
ghost admission and regret (recorded at its introduction, Python and C agreeing).
Keys are ints, so ``hash()`` (which the sketch uses) is the same in every process.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

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


def _phases(cap: int, length: int, seed: int) -> list[Op]:
    """Phases of 8 x ``cap`` accesses: a loop of 1.3 x ``cap`` keys, then re-reads of recent keys
    with new keys, writes and deletes; a resize to half the entries from the middle for 1/8."""
    rng = random.Random(seed)
    ops: list[Op] = []
    span = cap * 13 // 10
    fresh = 1_000_000
    recent: list[int] = []
    while len(ops) < length:
        ops.extend(("r", i % span, 1) for i in range(8 * cap))
        for _ in range(8 * cap):
            u = rng.random()
            if not recent or u < 0.3:
                recent.append(fresh)
                k = fresh
                fresh += 1
            else:
                k = recent[-min(len(recent), 1 + int(rng.expovariate(3 / cap)))]
            ops.append(("r" if u < 0.9 else "w" if u < 0.97 else "d", k, 1))
    del ops[length:]
    ops.insert(length // 2 + length // 8, ("z", 0, 0))
    ops.insert(length // 2, ("z", 0, cap // 2))
    return ops


def phases() -> tuple[int | None, int | None, list[Op]]:
    """40k phase-changing reads/writes/deletes at 600 entries (the shadow climber: full shadows,
    44 moves)."""
    return 600, None, _phases(600, 40_000, 404)


def phases_sampled() -> tuple[int | None, int | None, list[Op]]:
    """100k phase-changing reads/writes/deletes at 2,500 entries (the shadow climber: one key in 4
    sampled, 29 moves)."""
    return 2_500, None, _phases(2_500, 100_000, 505)


SEQUENCES: dict[str, Callable[[], tuple[int | None, int | None, list[Op]]]] = {
    "zipf_with_writes": zipf_with_writes,
    "scan_loop": scan_loop,
    "weighted": weighted,
    "phases": phases,
    "phases_sampled": phases_sampled,
}


def replay(
    max_entries: int | None,
    max_weight: int | None,
    ops: list[Op],
    cls: type[TinyLFUPolicy | LRUPolicy] = TinyLFUPolicy,
    **options: Any,
) -> str:
    """Drive a policy as the cache does; return a digest of victims, hits and final state.

    ``options`` go to the policy's constructor (``climber="shadow"`` for SHADOW_DIGESTS).
    """
    return drive(cls(max_entries, max_weight, **options), max_entries, max_weight, ops)


def drive(
    p: TinyLFUPolicy | LRUPolicy, max_entries: int | None, max_weight: int | None, ops: list[Op]
) -> str:
    """Drive ``p`` (built for these bounds) through ``ops``; return the digest ``replay`` does."""
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
    # recorded with the shadow climber's introduction (the policy's decisions unchanged)
    "phases": "2b74bc16b9d6ea5f101b6fcec452f623",
    "phases_sampled": "a5175987a1a382ff0615cbc9aa60b363",
}


# the shadow climber (climber="shadow"), recorded from the Python class when a decision at a
# widened probe began to move half the probe (the C class agreed); "weighted" is DIGESTS' (a
# weight-bounded cache uses the sample climber)
SHADOW_DIGESTS = {
    "zipf_with_writes": "21be92cb0c39d38d58a6780d18cabbfb",
    "scan_loop": "bc4a0d9b8df765c95e96c4e983055f5a",
    "weighted": "2f034be8e1a7eedcae16277c226c8dc4",
    "phases": "b3b78e757dcd1a36ccbbe99c4d0415d1",
    "phases_sampled": "fa62aa3d4e1f3b03ddf654dc493933f1",
}

# the shadow climber's moves on each sequence, so its digests cannot pin a climber that never acts
SHADOW_MOVES = {
    "zipf_with_writes": 2,
    "scan_loop": 1,
    "weighted": 0,
    "phases": 44,
    "phases_sampled": 29,
}


# the default: the shadow climber with ghost admission and regret (docs/research-hitratio.md,
# Session 7), recorded from the Python class at the ghost's introduction (the C class agreed);
# "weighted" has an entry bound beside its weight bound, so the ghost too (and the sample climber)
GHOST_DIGESTS = {
    "zipf_with_writes": "8b92a96f458331db3b52b46ef5e4113e",
    "scan_loop": "fe702ef6dec0a80adebbcfdc16cfc80a",
    "weighted": "393423f17a4ee05b728236b710fbc490",
    "phases": "3ad92ccfbb0329c60457dd11e167b3c0",
    "phases_sampled": "4eeb3ef71172ae0fc9ffa9cb32de82ec",
}


LRU_DIGESTS = {
    "zipf_with_writes": "53943a461227d4838d6c95f8410a6b24",
    "scan_loop": "2e278b0ce5a7531a293c5e161ded75db",
    "weighted": "4b81c65812b499ecfb4d0ce6248fde2e",
    "phases": "2504fbffbea066e5c3834b167084bd37",
    "phases_sampled": "2b9738847eb582bd33dcd4cce89f4d28",
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_tinylfu_evicts_the_recorded_keys(name: str) -> None:
    """Replaying a seeded sequence evicts exactly the keys the pre-change policy evicted."""
    assert replay(*SEQUENCES[name](), climber="sample", ghost=False) == DIGESTS[name]


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_lru_evicts_the_recorded_keys(name: str) -> None:
    """LRUPolicy, whose add() now inlines the one-victim case, evicts the recorded keys."""
    assert replay(*SEQUENCES[name](), cls=LRUPolicy) == LRU_DIGESTS[name]


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_shadow_climber_evicts_the_recorded_keys(name: str) -> None:
    """climber="shadow" evicts the keys recorded at its introduction, and moves the window as
    often as it did then (the C class is held to the same digests by test_tinylfu_c)."""
    max_entries, max_weight, ops = SEQUENCES[name]()
    p = TinyLFUPolicy(max_entries, max_weight, climber="shadow", ghost=False)
    assert drive(p, max_entries, max_weight, ops) == SHADOW_DIGESTS[name]
    assert p.climber_moves == SHADOW_MOVES[name]


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_default_policy_evicts_the_recorded_keys(name: str) -> None:
    """The default (the shadow climber with the ghost admission) evicts the keys recorded at
    the ghost's introduction (the C class is held to the same digests by test_tinylfu_c)."""
    assert replay(*SEQUENCES[name]()) == GHOST_DIGESTS[name]
    assert replay(*SEQUENCES[name](), climber="shadow", ghost=True) == GHOST_DIGESTS[name]
