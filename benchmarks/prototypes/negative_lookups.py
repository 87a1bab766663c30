"""Hit ratio of the default when some lookups always miss and are never stored (session 12).

Why: after a switch the default's engine is its simulation itself (``_policy_auto.SimEngine``),
and a simulation takes every read miss as an insert. A key that is looked up but never stored
(a function result that is not cached, a missing row) becomes a *phantom*: a slot the simulation
holds for a key the cache lacks. This replays a trace at the Policy level as a cache-aside memo
in which a share of the keys (``neg``, drawn once per trace) are never stored: their lookups
reach the policy as misses only. The hit ratio counts the other keys' reads. Compare two builds
by running it under each (``PYTHONPATH=<other checkout>/src``).

``python -m benchmarks.prototypes.negative_lookups``
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

from benchmarks.traces import recency_heavy, zipf_shift
from perflayer.cache._policy import make_policy

__all__ = ["replay"]


def replay(
    keys: Sequence[Hashable], c: int, neg: float, policy_name: str = "auto", seed: int = 7
) -> tuple[float, str, int]:
    """Return (hit ratio of the stored keys' reads in %, final engine, switches)."""
    rng = random.Random(seed)
    never = {k for k in sorted(set(keys), key=repr) if rng.random() < neg}
    policy = make_policy(policy_name, c, None)
    held: set[Hashable] = set()
    hits = reads = 0
    for k in keys:
        if k in never:
            policy.miss(k)  # looked up, never stored
            continue
        reads += 1
        if k in held:
            policy.hit(k)
            hits += 1
            continue
        policy.miss(k)
        for v in policy.add(k, 1):
            held.remove(v)
        held.add(k)
        if len(held) > c:
            raise AssertionError(f"the policy broke its bound at {k!r}")
    engine = str(getattr(policy, "engine", "tinylfu"))
    return 100.0 * hits / max(reads, 1), engine, int(getattr(policy, "switches", 0))


def main() -> int:
    """Print one line per trace, size and share of never-stored keys."""
    traces = {"zipf-shift": zipf_shift()[:100_000], "recency": recency_heavy()[:100_000]}
    for name, keys in traces.items():
        for c in (500, 2_000):
            for neg in (0.0, 0.1, 0.3):
                ratio, engine, switches = replay(keys, c, neg)
                tiny, _e, _s = replay(keys, c, neg, "tinylfu")
                print(
                    f"{name:10} c={c:<5} neg={neg:.1f} auto={ratio:6.2f}% tinylfu={tiny:6.2f}% "
                    f"(auto ends on {engine}, {switches} switches)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
