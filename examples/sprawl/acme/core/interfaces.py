"""Interfaces shared by the core components."""

from __future__ import annotations

from typing import Any, Optional, Protocol


class CacheBackend(Protocol):
    """Anything that can store values by key."""

    def get(self, key: str) -> Optional[Any]: ...

    def set(self, key: str, value: Any, ttl: Optional[int] = None) -> None: ...

    def delete(self, key: str) -> None: ...


class MetricsSink(Protocol):
    """Anything that accepts metric samples."""

    def record(self, name: str, value: float) -> None: ...

    def increment(self, name: str) -> None: ...
