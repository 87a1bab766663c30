"""Persona personality processing: traits, tone and response shaping."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

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


@dataclass
class PersonalityTraits:
    """Numeric personality dimensions of a persona."""

    warmth: float = 0.5
    directness: float = 0.5
    formality: float = 0.5
    humor: float = 0.2
    keywords: List[str] = field(default_factory=list)


class PersonalityProcessor:
    """Apply a persona's traits to a draft answer."""

    TONE_MARKERS = {
        "warm": ["glad", "happy to", "great question"],
        "direct": ["in short", "bottom line", "the answer is"],
        "formal": ["therefore", "furthermore", "accordingly"],
    }

    def __init__(self, personas: Dict[str, PersonalityTraits], cache_ttl: float = 120.0):
        self.personas = personas
        self.cache_ttl = cache_ttl
        self._cache: Dict[str, Any] = {}
        self.processed = 0

    def _get_cached(self, key: str) -> Optional[str]:
        entry = self._cache.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if time.time() - stored_at > self.cache_ttl:
            del self._cache[key]
            return None
        return value

    def _store_cached(self, key: str, value: str) -> None:
        self._cache[key] = (value, time.time())

    def traits_for(self, persona: str) -> PersonalityTraits:
        """Return the traits of ``persona`` or neutral ones."""
        return self.personas.get(persona, PersonalityTraits())

    def detect_tone(self, text: str) -> Dict[str, int]:
        """Count tone markers in ``text``."""
        lowered = text.lower()
        return {tone: sum(lowered.count(m) for m in markers)
                for tone, markers in self.TONE_MARKERS.items()}

    def apply(self, persona: str, draft: str) -> str:
        """Rewrite ``draft`` in the voice of ``persona``."""
        key = f"{persona}:{hash(draft)}"
        cached = self._get_cached(key)
        if cached is not None:
            return cached
        traits = self.traits_for(persona)
        text = draft.strip()
        if traits.directness > 0.7:
            text = self._lead_with_answer(text)
        if traits.warmth > 0.6:
            text = "Happy to help. " + text
        if traits.formality > 0.7:
            text = re.sub(r"\bcan't\b", "cannot", text)
            text = re.sub(r"\bwon't\b", "will not", text)
        if traits.humor > 0.6 and not text.endswith("!"):
            text += " (No pressure!)"
        self.processed += 1
        self._store_cached(key, text)
        return text

    def _lead_with_answer(self, text: str) -> str:
        sentences = re.split(r"(?<=[.!?])\s+", text)
        if len(sentences) < 2:
            return text
        conclusion = sentences[-1]
        return " ".join([conclusion] + sentences[:-1])

    def score_alignment(self, persona: str, text: str) -> float:
        """Return how well ``text`` matches the persona's keywords (0..1)."""
        traits = self.traits_for(persona)
        if not traits.keywords:
            return 1.0
        words = set(re.findall(r"[a-z']+", text.lower()))
        found = sum(1 for k in traits.keywords if k in words)
        return found / len(traits.keywords)

    def summarize(self) -> Dict[str, Any]:
        """Return processing counters."""
        return {"processed": self.processed, "personas": len(self.personas)}
