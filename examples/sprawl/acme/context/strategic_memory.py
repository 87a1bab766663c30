"""Strategic memory: remembers decisions, stakeholders and past conversations."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional


class StrategicMemoryManager:
    """Persist conversation history and strategic decisions per user."""

    def __init__(self, storage_dir: str = ".memory", max_turns: int = 200):
        self.storage_dir = storage_dir
        self.max_turns = max_turns
        self.conversations: Dict[str, List[Dict[str, Any]]] = {}
        self.decisions: List[Dict[str, Any]] = []

    def remember_turn(self, user: str, role: str, text: str) -> None:
        """Append one message to ``user``'s conversation."""
        turns = self.conversations.setdefault(user, [])
        turns.append({"role": role, "text": text, "at": time.time()})
        if len(turns) > self.max_turns:
            del turns[: len(turns) - self.max_turns]

    def recall(self, user: str, limit: int = 20) -> List[Dict[str, Any]]:
        """Return the last ``limit`` messages of ``user``."""
        return self.conversations.get(user, [])[-limit:]

    def record_decision(self, title: str, rationale: str,
                        stakeholders: Optional[List[str]] = None) -> None:
        """Remember a strategic decision and who was involved."""
        self.decisions.append({"title": title, "rationale": rationale,
                               "stakeholders": stakeholders or [], "at": time.time()})

    def search_decisions(self, text: str) -> List[Dict[str, Any]]:
        """Return decisions whose title or rationale mentions ``text``."""
        needle = text.lower()
        return [d for d in self.decisions
                if needle in d["title"].lower() or needle in d["rationale"].lower()]

    def save(self) -> None:
        """Write conversations and decisions to the storage directory."""
        os.makedirs(self.storage_dir, exist_ok=True)
        with open(os.path.join(self.storage_dir, "memory.json"), "w", encoding="utf-8") as fh:
            json.dump({"conversations": self.conversations, "decisions": self.decisions}, fh)

    def load(self) -> None:
        """Read conversations and decisions back."""
        path = os.path.join(self.storage_dir, "memory.json")
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        self.conversations = data.get("conversations", {})
        self.decisions = data.get("decisions", [])
