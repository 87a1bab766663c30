"""MCP server integration: call tools on MCP servers and wrap their answers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

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


class MCPIntegration:
    """Dispatch tool calls to registered MCP servers."""

    def __init__(self, servers: Dict[str, Any], timeout: float = 8.0):
        self.servers = servers
        self.timeout = timeout
        self.calls: List[str] = []

    async def call(self, server: str, tool: str, **params: Any) -> MCPResponse:
        """Call ``tool`` on ``server`` and wrap the result."""
        started = time.time()
        client = self.servers.get(server)
        if client is None:
            return MCPResponse(False, error=f"unknown server {server}")
        self.calls.append(f"{server}.{tool}")
        try:
            result = await asyncio.wait_for(client.call_tool(tool, params), self.timeout)
        except asyncio.TimeoutError:
            return MCPResponse(False, error="timeout", processing_time=time.time() - started)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MCP call failed: %s", exc)
            return MCPResponse(False, error=str(exc), processing_time=time.time() - started)
        return MCPResponse(True, content=result, processing_time=time.time() - started,
                           metadata={"server": server, "tool": tool})

    def available(self) -> List[str]:
        """Return the registered server names."""
        return sorted(self.servers)
