"""Response envelope and Priority: constructors, serialization, unwrap, misuse."""

from __future__ import annotations

import json

import pytest

from perflayer.errors import ConfigError, ShedError
from perflayer.response import ErrorInfo, Priority, Response


def test_success_round_trips_through_json() -> None:
    """A success survives to_json/from_json unchanged."""
    r = Response.success({"a": [1, 2]}, priority=Priority.HIGH, latency_ms=2.5, deadline_ms=100)
    back = Response.from_json(r.to_json())
    assert back == r
    assert back.ok and back.value == {"a": [1, 2]} and back.priority is Priority.HIGH


def test_failure_keeps_type_and_message_but_no_live_exception() -> None:
    """to_dict holds the error as plain data; the live exception stays out of it."""
    try:
        raise KeyError("missing")
    except KeyError as e:
        r: Response[int] = Response.failure(e, timed_out=False)
    d = r.to_dict()
    assert d["error"] == {"type": "KeyError", "message": "'missing'"}
    assert all(not isinstance(v, BaseException) for v in d.values())
    json.dumps(d)  # plain data
    back = Response.from_dict(d)
    assert back.error == ErrorInfo("KeyError", "'missing'") and back.exception is None
    with pytest.raises(KeyError):
        r.unwrap()


def test_unwrap_of_shed_and_timeout_raise_matching_errors() -> None:
    """A shed response unwraps to ShedError, a timed-out one to TimeoutError."""
    shed: Response[int] = Response.from_dict(
        {"ok": False, "shed": True, "error": {"type": "ShedError", "message": "overload"}}
    )
    with pytest.raises(ShedError, match="overload"):
        shed.unwrap()
    tmo: Response[int] = Response.from_dict({"ok": False, "timed_out": True, "error": "late"})
    with pytest.raises(TimeoutError):
        tmo.unwrap()


def test_unwrap_returns_fallback_value() -> None:
    """A failure that used a fallback unwraps to the fallback's value."""
    r = Response.failure("boom", value=7, fallback_used=True)
    assert r.unwrap() == 7 and not r.ok


def test_to_json_names_unserializable_value() -> None:
    """A value json cannot encode raises TypeError naming its type; default= fixes it."""
    r = Response.success(object())
    with pytest.raises(TypeError, match="object"):
        r.to_json()
    assert json.loads(r.to_json(default=repr))["ok"] is True


def test_response_is_frozen() -> None:
    """Fields cannot be reassigned."""
    r = Response.success(1)
    with pytest.raises(AttributeError):
        r.ok = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", Priority.CRITICAL),
        ("Low", Priority.LOW),
        (1, Priority.HIGH),
        (Priority.NORMAL, Priority.NORMAL),
    ],
)
def test_priority_parse(value: object, expected: Priority) -> None:
    """Priorities parse from names (any case), numbers and members."""
    assert Priority.parse(value) is expected


@pytest.mark.parametrize("bad", ["urgent", 9, None, True, 1.5])
def test_priority_parse_rejects_and_names_value(bad: object) -> None:
    """A bad priority raises ConfigError naming the value."""
    with pytest.raises(ConfigError, match=repr(bad).replace("(", r"\(").replace(")", r"\)")):
        Priority.parse(bad)


def test_from_dict_rejects_bad_data() -> None:
    """from_dict needs a mapping with 'ok' and numeric times."""
    with pytest.raises(TypeError):
        Response.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ok"):
        Response.from_dict({"value": 1})
    with pytest.raises(ConfigError, match="latency_ms"):
        Response.from_dict({"ok": True, "latency_ms": "fast"})


def test_failure_rejects_bad_error() -> None:
    """failure() needs an exception, ErrorInfo or str."""
    with pytest.raises(TypeError, match="42"):
        Response.failure(42)  # type: ignore[arg-type]
