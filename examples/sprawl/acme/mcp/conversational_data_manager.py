"""Conversational data queries: answers questions about team data in chat."""

from __future__ import annotations

import time
from typing import Any, Dict, List, NamedTuple, Optional


class DataResponse(NamedTuple):
    """What a data query returns to the chat layer."""

    status: str
    data: Optional[Dict[str, Any]]
    message: str
    timestamp: float


class ConversationalDataManager:
    """Answer simple questions ('how many open bugs') from a table of rows."""

    def __init__(self, rows: List[Dict[str, Any]]):
        self.rows = rows

    def query(self, question: str) -> DataResponse:
        """Answer ``question`` with a count of matching rows."""
        words = [w for w in question.lower().split() if len(w) > 3]
        if not words:
            return DataResponse("error", None, "question too short", time.time())
        matches = [r for r in self.rows if any(w in str(r).lower() for w in words)]
        return DataResponse("ok", {"count": len(matches), "rows": matches[:5]},
                            f"{len(matches)} matching rows", time.time())

    def columns(self) -> List[str]:
        """Return the column names seen in the rows."""
        seen: Dict[str, None] = {}
        for row in self.rows:
            for key in row:
                seen.setdefault(key, None)
        return list(seen)
