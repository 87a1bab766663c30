"""Search across documents and issues."""

from __future__ import annotations

import functools
import time
from typing import Any, Dict, List, Sequence

from acme.performance.performance_monitor import get_monitor
from acme.utils.cache import CacheManager
from acme.utils.timing import timed


def calculate_percentile(values: Sequence[float], percentile: float) -> float:
    """Return the ``percentile`` (0-100) of ``values`` by nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = int(len(ordered) * percentile / 100)
    index = min(max(index, 0), len(ordered) - 1)
    return ordered[index]


@functools.lru_cache(maxsize=256)
def normalize_query(query: str) -> str:
    """Lower-case and collapse whitespace."""
    return " ".join(query.lower().split())


class SearchService:
    """Rank documents by term overlap, caching results."""

    def __init__(self, documents: Dict[str, str]):
        self.documents = documents
        self.cache = CacheManager(cache_dir=".cache/search")
        self.latencies: List[float] = []

    @timed("search")
    def search(self, query: str, limit: int = 10) -> List[Dict[str, Any]]:
        """Return the best ``limit`` documents for ``query``."""
        started = time.perf_counter()
        key = normalize_query(query)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        terms = set(key.split())
        scored = []
        for doc_id, text in self.documents.items():
            words = set(text.lower().split())
            score = len(terms & words)
            if score:
                scored.append({"id": doc_id, "score": score})
        scored.sort(key=lambda item: item["score"], reverse=True)
        results = scored[:limit]
        self.cache.set(key, results, ttl=120)
        elapsed = (time.perf_counter() - started) * 1000
        self.latencies.append(elapsed)
        get_monitor().record("search", elapsed)
        return results

    def slow_queries(self) -> float:
        """Return the p95 search latency."""
        return calculate_percentile(self.latencies, 95)
