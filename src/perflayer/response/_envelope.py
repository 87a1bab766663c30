"""The one response envelope (``Response[T]``) and the request priorities."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from perflayer.errors import ConfigError, ShedError

__all__ = ["ErrorInfo", "Priority", "Response"]

T = TypeVar("T")

_SCHEMA = 1


class Priority(enum.IntEnum):
    """How much a request matters; a lower number is served first and shed last."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BACKGROUND = 4

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Return the Priority named or numbered by ``value`` (``"high"``, ``1``, a Priority)."""
        if type(value) is Priority:
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        names = ", ".join(p.name.lower() for p in cls)
        raise ConfigError(f"priority must be one of {names} (or 0-4), got {value!r}")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong, as plain data: the exception's type name and message."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Capture ``exc`` as its type name and ``str()``."""
        return cls(type(exc).__name__, str(exc))

    def to_dict(self) -> dict[str, str]:
        """Return ``{"type": ..., "message": ...}``."""
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True, slots=True)
class Response(Generic[T]):
    """The outcome of one call: value or error, and how it was scheduled.

    ``ok`` is True only when the call itself returned in time. A shed, timed-out or failed
    call has ``ok=False``; its ``value`` is the fallback's value when one was given
    (``fallback_used=True``). ``started``/``finished`` are wall-clock Unix seconds;
    ``latency_ms`` is measured on the monotonic clock from submission to completion.

    >>> r = Response.success(42, latency_ms=3.5)
    >>> r.ok, r.value, Response.from_json(r.to_json()) == r
    (True, 42, True)
    """

    ok: bool
    value: T | None = None
    error: ErrorInfo | None = None
    priority: Priority = Priority.NORMAL
    started: float | None = None
    finished: float | None = None
    latency_ms: float = 0.0
    deadline_ms: float | None = None
    shed: bool = False
    timed_out: bool = False
    fallback_used: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # why: kept so unwrap() can re-raise the original with its traceback; never serialized.
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def success(
        cls,
        value: T,
        *,
        priority: Priority = Priority.NORMAL,
        started: float | None = None,
        finished: float | None = None,
        latency_ms: float = 0.0,
        deadline_ms: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Response[T]:
        """Return a successful Response carrying ``value``."""
        return cls(
            ok=True,
            value=value,
            priority=Priority.parse(priority),
            started=started,
            finished=finished,
            latency_ms=latency_ms,
            deadline_ms=deadline_ms,
            metadata=dict(metadata or {}),
        )

    @classmethod
    def failure(
        cls,
        error: BaseException | ErrorInfo | str,
        *,
        value: T | None = None,
        priority: Priority = Priority.NORMAL,
        started: float | None = None,
        finished: float | None = None,
        latency_ms: float = 0.0,
        deadline_ms: float | None = None,
        shed: bool = False,
        timed_out: bool = False,
        fallback_used: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> Response[T]:
        """Return a failed Response; ``error`` is an exception, an ErrorInfo or a message."""
        exc: BaseException | None = None
        if isinstance(error, BaseException):
            exc = error
            info = ErrorInfo.from_exception(error)
        elif isinstance(error, ErrorInfo):
            info = error
        elif isinstance(error, str):
            info = ErrorInfo("Error", error)
        else:
            raise TypeError(f"error must be an exception, ErrorInfo or str, got {error!r}")
        return cls(
            ok=False,
            value=value,
            error=info,
            priority=Priority.parse(priority),
            started=started,
            finished=finished,
            latency_ms=latency_ms,
            deadline_ms=deadline_ms,
            shed=shed,
            timed_out=timed_out,
            fallback_used=fallback_used,
            metadata=dict(metadata or {}),
            exception=exc,
        )

    def unwrap(self) -> T:
        """Return the value if ok or a fallback was used; otherwise raise the error."""
        if self.ok or self.fallback_used:
            return self.value  # type: ignore[return-value]
        if self.exception is not None:
            raise self.exception
        info = self.error or ErrorInfo("Error", "failed")
        if self.shed:
            raise ShedError(info.message)
        if self.timed_out:
            raise TimeoutError(info.message)
        raise RuntimeError(f"{info.type}: {info.message}")

    def to_dict(self) -> dict[str, Any]:
        """Return plain data (no live exception): JSON-ready if ``value`` and metadata are."""
        return {
            "schema": _SCHEMA,
            "ok": self.ok,
            "value": self.value,
            "error": None if self.error is None else self.error.to_dict(),
            "priority": self.priority.name.lower(),
            "started": self.started,
            "finished": self.finished,
            "latency_ms": self.latency_ms,
            "deadline_ms": self.deadline_ms,
            "shed": self.shed,
            "timed_out": self.timed_out,
            "fallback_used": self.fallback_used,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Response[Any]:
        """Rebuild a Response from ``to_dict()`` output; unknown keys are ignored."""
        if not isinstance(data, Mapping):
            raise TypeError(f"from_dict needs a mapping, got {type(data).__name__}")
        if "ok" not in data:
            raise ConfigError(f"response data has no 'ok' field: {sorted(data)!r}")
        err = data.get("error")
        info: ErrorInfo | None
        if err is None:
            info = None
        elif isinstance(err, Mapping):
            info = ErrorInfo(str(err.get("type", "Error")), str(err.get("message", "")))
        else:
            info = ErrorInfo("Error", str(err))
        meta = data.get("metadata") or {}
        if not isinstance(meta, Mapping):
            raise ConfigError(f"response metadata must be a mapping, got {meta!r}")
        return cls(
            ok=bool(data["ok"]),
            value=data.get("value"),
            error=info,
            priority=Priority.parse(data.get("priority", Priority.NORMAL)),
            started=_opt_float(data.get("started"), "started"),
            finished=_opt_float(data.get("finished"), "finished"),
            latency_ms=_opt_float(data.get("latency_ms"), "latency_ms") or 0.0,
            deadline_ms=_opt_float(data.get("deadline_ms"), "deadline_ms"),
            shed=bool(data.get("shed", False)),
            timed_out=bool(data.get("timed_out", False)),
            fallback_used=bool(data.get("fallback_used", False)),
            metadata=dict(meta),
        )

    def to_json(self, **dumps_kwargs: Any) -> str:
        """Serialize ``to_dict()`` with ``json.dumps`` (pass ``default=`` for custom values)."""
        try:
            return json.dumps(self.to_dict(), **dumps_kwargs)
        except TypeError as exc:
            raise TypeError(
                f"response value {type(self.value).__name__!r} is not JSON-serializable: {exc}; "
                "pass default=... to to_json()"
            ) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Response[Any]:
        """Parse the output of ``to_json()``."""
        return cls.from_dict(json.loads(text))


def _opt_float(v: object, name: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(float(v)):
        raise ConfigError(f"response field {name!r} must be a number or null, got {v!r}")
    return float(v)
