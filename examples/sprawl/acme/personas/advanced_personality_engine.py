"""The advanced persona engine: context-aware persona selection and generation."""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Dict, List, Optional

logger = logging.getLogger(__name__)


class CacheManager:
    """Small TTL cache for persona lookups."""

    def __init__(self, ttl: int = 300):
        self.ttl = ttl
        self._store: Dict[str, Any] = {}
        self._timestamps: Dict[str, float] = {}

    def get(self, key: str) -> Optional[Any]:
        if key in self._store:
            if time.time() - self._timestamps[key] < self.ttl:
                return self._store[key]
            del self._store[key]
            del self._timestamps[key]
        return None

    def set(self, key: str, value: Any) -> None:
        self._store[key] = value
        self._timestamps[key] = time.time()

    def clear(self) -> None:
        self._store.clear()
        self._timestamps.clear()


class AdvancedPersonalityEngine:
    """Pick the best persona for a request and generate its answer."""

    def __init__(self, generator: Callable[[str, str], str], personas: List[str]):
        self.generator = generator
        self.personas = personas
        self.cache = CacheManager(ttl=600)
        self.history: List[Dict[str, Any]] = []
        self.metrics = {"requests": 0, "errors": 0, "avg_latency_ms": 0.0}

    def select_persona(self, request: str) -> str:
        """Return the persona whose name appears in the request, else a stable choice."""
        lowered = request.lower()
        for persona in self.personas:
            if persona.lower() in lowered:
                return persona
        rng = random.Random(len(request))
        return rng.choice(self.personas)

    def generate(self, request: str) -> str:
        """Generate an answer for ``request`` in the selected persona's voice."""
        persona = self.select_persona(request)
        key = f"{persona}:{request}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        self.metrics["requests"] += 1
        try:
            answer = self.generator(persona, request)
        except Exception:
            self.metrics["errors"] += 1
            logger.exception("generation failed for %s", persona)
            raise
        self._update_metrics((time.perf_counter() - started) * 1000)
        self.cache.set(key, answer)
        self.history.append({"persona": persona, "request": request})
        return answer

    def _update_metrics(self, latency_ms: float) -> None:
        n = self.metrics["requests"]
        avg = self.metrics["avg_latency_ms"]
        self.metrics["avg_latency_ms"] = (avg * (n - 1) + latency_ms) / n

    def recent(self, limit: int = 10) -> List[Dict[str, Any]]:
        """Return the last ``limit`` requests."""
        return self.history[-limit:]

    def persona_counts(self) -> Dict[str, int]:
        """Return how often each persona was selected."""
        counts: Dict[str, int] = {}
        for item in self.history:
            counts[item["persona"]] = counts.get(item["persona"], 0) + 1
        return counts
