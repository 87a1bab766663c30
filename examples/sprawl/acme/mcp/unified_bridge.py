"""Bridge between the legacy integration layer and MCP servers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

logger = logging.getLogger(__name__)


@dataclass
class MCPResponse:
    """Uniform answer of an MCP tool call."""

    success: bool
    content: Any = None
    error: Optional[str] = None
    processing_time: float = 0.0
    metadata: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "success": self.success,
            "content": self.content,
            "error": self.error,
            "processing_time": self.processing_time,
            "metadata": self.metadata,
        }


class UnifiedBridge:
    """Route legacy requests to MCP handlers, falling back to local handlers."""

    def __init__(self) -> None:
        self.handlers: Dict[str, Callable[[Dict[str, Any]], Any]] = {}
        self.fallbacks: Dict[str, Callable[[Dict[str, Any]], Any]] = {}

    def register(self, name: str, handler: Callable[[Dict[str, Any]], Any],
                 fallback: Optional[Callable[[Dict[str, Any]], Any]] = None) -> None:
        """Register a handler and an optional fallback for ``name``."""
        self.handlers[name] = handler
        if fallback is not None:
            self.fallbacks[name] = fallback

    def dispatch(self, name: str, payload: Dict[str, Any]) -> MCPResponse:
        """Run the handler for ``name``; use the fallback when it fails."""
        start = time.time()
        handler = self.handlers.get(name)
        if handler is None:
            return MCPResponse(False, error=f"no handler for {name}")
        try:
            return MCPResponse(True, content=handler(payload),
                               processing_time=time.time() - start)
        except Exception as exc:  # noqa: BLE001
            fallback = self.fallbacks.get(name)
            if fallback is None:
                return MCPResponse(False, error=str(exc), processing_time=time.time() - start)
            logger.info("falling back for %s: %s", name, exc)
            return MCPResponse(True, content=fallback(payload),
                               processing_time=time.time() - start,
                               metadata={"fallback": True})
