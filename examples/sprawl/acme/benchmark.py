"""Micro-benchmarks of the persona pipeline."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List


class PerformanceBenchmark:
    """Run a callable many times and report latency statistics."""

    def __init__(self, warmup: int = 5, rounds: int = 50):
        self.warmup = warmup
        self.rounds = rounds
        self.results: Dict[str, List[float]] = {}

    def run(self, name: str, func: Callable[[], object]) -> Dict[str, float]:
        """Time ``func`` ``rounds`` times after ``warmup`` calls."""
        for _ in range(self.warmup):
            func()
        durations: List[float] = []
        for _ in range(self.rounds):
            start = time.perf_counter()
            func()
            durations.append((time.perf_counter() - start) * 1000)
        self.results[name] = durations
        return self.report(name)

    def report(self, name: str) -> Dict[str, float]:
        """Return mean, median, p95 and max in ms."""
        durations = sorted(self.results[name])
        return {
            "mean_ms": statistics.fmean(durations),
            "median_ms": statistics.median(durations),
            "p95_ms": durations[int(len(durations) * 0.95) - 1],
            "max_ms": durations[-1],
        }
