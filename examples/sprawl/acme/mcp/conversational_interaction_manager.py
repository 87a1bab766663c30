"""Multi-turn interaction handling for chat."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Optional


class InteractionResponse:
    """The answer to one chat turn."""

    def __init__(self, content: str, success: bool = True, error: Optional[str] = None,
                 response_time: float = 0.0, request_id: Optional[str] = None):
        self.content = content
        self.success = success
        self.error = error
        self.response_time = response_time
        self.request_id = request_id or uuid.uuid4().hex

    def to_dict(self) -> Dict[str, Any]:
        return {"content": self.content, "success": self.success, "error": self.error,
                "response_time": self.response_time, "request_id": self.request_id}


class ConversationalInteractionManager:
    """Keep turns per conversation and produce answers."""

    def __init__(self, responder):
        self.responder = responder
        self.turns: Dict[str, List[str]] = {}

    def handle(self, conversation_id: str, text: str) -> InteractionResponse:
        """Answer ``text`` within ``conversation_id``."""
        started = time.time()
        turns = self.turns.setdefault(conversation_id, [])
        turns.append(text)
        try:
            answer = self.responder(turns)
        except Exception as exc:  # noqa: BLE001
            return InteractionResponse("", False, str(exc), time.time() - started)
        return InteractionResponse(answer, response_time=time.time() - started)
