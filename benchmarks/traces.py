"""Cache access traces for the hit-ratio benchmark: the real ones in ../shared/traces and synthetic ones.

Real traces are read in the formats described in ``../shared/traces/README.md``: gzip text with one
integer per line (empty and ``*`` lines are markers, skipped) and xz binary big-endian signed
32-bit integers. Synthetic traces are generated from a fixed seed, so every run replays the same
accesses; they exist to check the policy is not tuned to the shared traces alone.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perflayer._demo import find_traces_dir
from perflayer._demo import load_trace as read_keys  # one reader of the trace formats

__all__ = [
    "SYNTHETIC",
    "Trace",
    "load_trace",
    "real_traces",
    "shared_traces_dir",
    "synthetic_traces",
]

LOOP_SIZES = (128, 256, 512, 768, 1000)
PERCENTS = (0.01, 0.05, 0.10, 0.25, 0.50)


@dataclass(frozen=True)
class Trace:
    """One named access sequence and the cache sizes to replay it at."""

    name: str
    keys: list[int]
    sizes: tuple[int, ...]
    source: str

    @property
    def distinct(self) -> int:
        """Return the number of distinct keys."""
        return len(set(self.keys))


def shared_traces_dir() -> Path:
    """Return the shared traces folder (as ``perflayer demo`` finds it), else ../shared/traces."""
    found = find_traces_dir()
    return found or Path(__file__).resolve().parent.parent.parent / "shared" / "traces"


def _sizes_for(name: str, keys: list[int]) -> tuple[int, ...]:
    if "loop" in name:
        return LOOP_SIZES
    distinct = len(set(keys))
    return tuple(max(1, round(p * distinct)) for p in PERCENTS)


def load_trace(path: Path) -> Trace:
    """Load one trace file from the shared folder."""
    name = path.name.split(".trace")[0]
    keys = read_keys(path)
    return Trace(name, keys, _sizes_for(name, keys), f"shared/{path.name}")


def real_traces(folder: Path | None = None) -> list[Trace]:
    """Load every trace in the shared traces folder, sorted by name."""
    folder = folder or shared_traces_dir()
    return [load_trace(p) for p in sorted(folder.glob("*.trace.*"))]


def _zipf_sampler(n: int, alpha: float, rng: random.Random) -> Callable[[], int]:
    """Return a function drawing ranks 0..n-1 with P(rank r) ~ 1 / (r + 1) ** alpha."""
    weights = [1.0 / (r + 1) ** alpha for r in range(n)]
    total = sum(weights)
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cum.append(acc)

    def draw() -> int:
        return min(bisect.bisect_left(cum, rng.random()), n - 1)

    return draw


def zipf_shift(seed: int = 1) -> list[int]:
    """Zipf(0.9) over 20,000 keys whose popularity ranking shifts every 20,000 accesses."""
    rng = random.Random(seed)
    n = 20_000
    draw = _zipf_sampler(n, 0.9, rng)
    keys: list[int] = []
    offset = 0
    for _phase in range(10):
        # a new hot set every phase: the ranking is rotated by a random offset
        offset = (offset + rng.randrange(1_000, n)) % n
        for _ in range(20_000):
            keys.append((draw() + offset) % n)
    return keys


def scan_loop_mix(seed: int = 2) -> list[int]:
    """A Zipf hot set, interrupted by one-off scans of new keys and by loops over 3,000 keys."""
    rng = random.Random(seed)
    draw = _zipf_sampler(5_000, 0.8, rng)
    keys: list[int] = []
    fresh = 1_000_000
    loop_base = 500_000
    for _ in range(40):
        kind = rng.random()
        if kind < 0.4:
            keys.extend(draw() for _ in range(4_000))
        elif kind < 0.7:
            # a scan: keys never seen again
            keys.extend(range(fresh, fresh + 3_000))
            fresh += 3_000
        else:
            # a loop over the same 3,000 keys, twice
            keys.extend(list(range(loop_base, loop_base + 3_000)) * 2)
    return keys


def recency_heavy(seed: int = 3) -> list[int]:
    """Mostly re-reads of keys touched a short time ago, plus a stream of new keys (LRU-friendly)."""
    rng = random.Random(seed)
    keys: list[int] = []
    fresh = 0
    for _ in range(200_000):
        if not keys or rng.random() < 0.25:
            keys.append(fresh)
            fresh += 1
        else:
            d = min(len(keys), 1 + int(rng.expovariate(1.0 / 400.0)))
            keys.append(keys[-d])
    return keys


def recency_bursts(seed: int = 4) -> list[int]:
    """Keys read in short bursts right after they appear, then rarely again; a small Zipf background."""
    rng = random.Random(seed)
    draw = _zipf_sampler(2_000, 1.0, rng)
    keys: list[int] = []
    fresh = 10_000
    live: list[int] = []
    for _ in range(200_000):
        r = rng.random()
        if r < 0.15:
            live.append(fresh)
            if len(live) > 600:
                live.pop(0)
            keys.append(fresh)
            fresh += 1
        elif r < 0.85 and live:
            # favour the newest live keys
            i = len(live) - 1 - min(len(live) - 1, int(rng.expovariate(1.0 / 150.0)))
            keys.append(live[i])
        else:
            keys.append(draw())
    return keys


def regime_phases(seed: int = 5) -> list[int]:
    """Phases that favour different policies in turn: Zipf, recency stream, loop, Zipf again."""
    rng = random.Random(seed)
    draw = _zipf_sampler(8_000, 0.9, rng)
    keys: list[int] = []
    fresh = 1_000_000
    for _round in range(3):
        keys.extend(draw() for _ in range(25_000))
        recent: list[int] = []
        for _ in range(25_000):
            if not recent or rng.random() < 0.3:
                recent.append(fresh)
                fresh += 1
            else:
                recent.append(recent[-min(len(recent), 1 + int(rng.expovariate(1.0 / 300.0)))])
        keys.extend(recent)
        keys.extend(list(range(500_000, 502_500)) * 6)
    return keys


def tenants(seed: int = 6) -> list[int]:
    """Two tenants interleaved at random: a Zipf(0.8) over 10,000 keys and a 4,000-key loop."""
    rng = random.Random(seed)
    draw = _zipf_sampler(10_000, 0.8, rng)
    keys: list[int] = []
    pos = 0
    for _ in range(200_000):
        if rng.random() < 0.6:
            keys.append(draw())
        else:
            keys.append(100_000 + pos)
            pos = (pos + 1) % 4_000
    return keys


SYNTHETIC: dict[str, Callable[[], list[int]]] = {
    "syn-zipf-shift": zipf_shift,
    "syn-scan-mix": scan_loop_mix,
    "syn-recency": recency_heavy,
    "syn-recency-bursts": recency_bursts,
    "syn-phases": regime_phases,
    "syn-tenants": tenants,
}


def synthetic_traces(seed_offset: int = 0) -> list[Trace]:
    """Generate every synthetic trace (deterministic).

    ``seed_offset`` adds to every generator's default seed: a fresh family of the same shapes
    (named ``NAME-sOFFSET``), to check that a policy tuned on one family holds on another.
    """
    out = []
    for name, fn in SYNTHETIC.items():
        if seed_offset:
            default = fn.__defaults__[0] if fn.__defaults__ else 0
            keys = fn(default + seed_offset)
            label = f"{name}-s{seed_offset}"
        else:
            keys = fn()
            label = name
        out.append(Trace(label, keys, _sizes_for(name, keys), "synthetic"))
    return out


if __name__ == "__main__":
    for t in real_traces() + synthetic_traces():
        print(f"{t.name:22} {len(t.keys):>8} accesses {t.distinct:>7} distinct sizes={t.sizes}")
