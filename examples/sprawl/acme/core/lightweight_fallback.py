"""Lightweight fallbacks used when optional dependencies are missing."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)

try:
    from redis import Redis
except ImportError:
    class Redis:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError("redis is not installed")

try:
    from acme.mcp.mcp_integration import MCPResponse as FallbackResponse
except ImportError:
    class FallbackResponse:  # type: ignore[no-redef]
        success = False
        data = None
        error = "unavailable"


class FeatureFlags:
    """Which optional features are available."""

    def __init__(self) -> None:
        self.flags: Dict[str, bool] = {}

    def check(self, name: str) -> bool:
        """Return True when ``name`` imports."""
        if name not in self.flags:
            try:
                __import__(name)
                self.flags[name] = True
            except ImportError:
                self.flags[name] = False
        return self.flags[name]

    def describe(self) -> Optional[str]:
        """Return a one-line summary."""
        if not self.flags:
            return None
        return ", ".join(f"{k}={'on' if v else 'off'}" for k, v in sorted(self.flags.items()))
