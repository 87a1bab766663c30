"""Persona registry: definitions loaded from YAML-like dicts, validated and looked up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional


class PersonaValidationError(ValueError):
    """A persona definition is incomplete or contradictory."""


@dataclass
class Persona:
    """One persona: who it is, what it is good at, how it talks."""

    name: str
    title: str
    domains: List[str] = field(default_factory=list)
    tone: str = "neutral"
    escalates_to: Optional[str] = None

    def covers(self, topic: str) -> bool:
        """Return True when ``topic`` is one of the persona's domains."""
        topic = topic.lower()
        return any(topic == d or topic.startswith(d + ".") for d in self.domains)


class PersonaRegistry:
    """Hold personas by name and route topics to them."""

    TONES = ("neutral", "warm", "direct", "formal")

    def __init__(self, personas: Iterable[Persona] = ()) -> None:
        self._personas: Dict[str, Persona] = {}
        for persona in personas:
            self.register(persona)

    def register(self, persona: Persona) -> None:
        """Add ``persona`` after validating it."""
        if not persona.name or not persona.title:
            raise PersonaValidationError(f"persona {persona!r} needs a name and a title")
        if persona.tone not in self.TONES:
            raise PersonaValidationError(f"unknown tone {persona.tone!r} for {persona.name}")
        if persona.escalates_to == persona.name:
            raise PersonaValidationError(f"{persona.name} cannot escalate to itself")
        self._personas[persona.name] = persona

    def load(self, data: List[Dict[str, Any]]) -> int:
        """Register personas from plain dicts; return how many."""
        for item in data:
            self.register(Persona(
                name=item["name"],
                title=item.get("title", ""),
                domains=[d.lower() for d in item.get("domains", [])],
                tone=item.get("tone", "neutral"),
                escalates_to=item.get("escalates_to"),
            ))
        return len(data)

    def route(self, topic: str) -> Optional[Persona]:
        """Return the persona covering ``topic`` with the most specific domain."""
        best: Optional[Persona] = None
        best_len = -1
        for persona in self._personas.values():
            for domain in persona.domains:
                if topic.lower().startswith(domain) and len(domain) > best_len:
                    best, best_len = persona, len(domain)
        return best

    def escalation_chain(self, name: str) -> List[str]:
        """Return ``name`` and whoever it escalates to, transitively, without loops."""
        chain: List[str] = []
        current: Optional[str] = name
        while current and current not in chain:
            chain.append(current)
            persona = self._personas.get(current)
            current = persona.escalates_to if persona else None
        return chain

    def names(self) -> List[str]:
        """Return the registered names, sorted."""
        return sorted(self._personas)
