"""Cache levels: named groups of entries with a default TTL and their own stats."""

from __future__ import annotations

from typing import ClassVar

from perflayer.errors import ConfigError

__all__ = ["CacheLevel"]


class CacheLevel:
    """A named level with a default TTL in seconds (None: no expiry).

    The presets are the levels of the original system; define your own with
    ``CacheLevel("sessions", ttl=600)`` and pass it as ``set(..., level=...)``.

    >>> CacheLevel.MCP_RESPONSES.ttl
    300.0
    """

    __slots__ = ("name", "ttl")

    FRAMEWORK_PATTERNS: ClassVar[CacheLevel]
    PERSONA_SELECTION: ClassVar[CacheLevel]
    CONTEXT_ANALYSIS: ClassVar[CacheLevel]
    MCP_RESPONSES: ClassVar[CacheLevel]
    STRATEGIC_MEMORY: ClassVar[CacheLevel]
    DEFAULT: ClassVar[CacheLevel]

    name: str
    ttl: float | None

    def __init__(self, name: str, ttl: float | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"level name must be a non-empty str, got {name!r}")
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
                raise ConfigError(f"level {name!r}: ttl must be seconds (int/float), got {ttl!r}")
            if not ttl > 0 or ttl == float("inf"):
                raise ConfigError(f"level {name!r}: ttl must be > 0 and finite, got {ttl!r}")
            ttl = float(ttl)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "ttl", ttl)

    def __setattr__(self, attr: str, value: object) -> None:
        """Refuse mutation: a level is a value."""
        raise AttributeError(f"CacheLevel is immutable (tried to set {attr!r})")

    def __repr__(self) -> str:
        """Return ``CacheLevel('name', ttl=...)``."""
        return f"CacheLevel({self.name!r}, ttl={self.ttl!r})"

    def __eq__(self, other: object) -> bool:
        """Compare by name and ttl."""
        if not isinstance(other, CacheLevel):
            return NotImplemented
        return self.name == other.name and self.ttl == other.ttl

    def __hash__(self) -> int:
        """Hash by name and ttl."""
        return hash((self.name, self.ttl))

    @classmethod
    def presets(cls) -> tuple[CacheLevel, ...]:
        """Return the preset levels (plus ``DEFAULT``, the level of keys set without one)."""
        return (
            cls.DEFAULT,
            cls.FRAMEWORK_PATTERNS,
            cls.PERSONA_SELECTION,
            cls.CONTEXT_ANALYSIS,
            cls.MCP_RESPONSES,
            cls.STRATEGIC_MEMORY,
        )


CacheLevel.FRAMEWORK_PATTERNS = CacheLevel("framework_patterns", 3600)
CacheLevel.PERSONA_SELECTION = CacheLevel("persona_selection", 1800)
CacheLevel.CONTEXT_ANALYSIS = CacheLevel("context_analysis", 900)
CacheLevel.MCP_RESPONSES = CacheLevel("mcp_responses", 300)
CacheLevel.STRATEGIC_MEMORY = CacheLevel("strategic_memory", 86400)
CacheLevel.DEFAULT = CacheLevel("default", None)
