"""Codecs: the safe JSON codec holds exactly what it can, the pickle codec is signed and strict."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflayer.cache._codec import Codec, CodecRefused, JsonCodec, PickleCodec
from perflayer.errors import ConfigError, TierError

KEY = b"k" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(json_values, st.binary()))
def test_json_codec_round_trips_exactly(value: Any) -> None:
    """Every JSON value, str, bytes, int and float comes back equal and of the same type."""
    c = JsonCodec()
    out = c.decode(c.encode(value))
    assert out == value
    assert type(out) is type(value)


@pytest.mark.parametrize(
    ("value", "named"),
    [((1, 2), "tuple"), ({1, 2}, "set"), ({1: "a"}, "dict key 1"), ([b"x"], "bytes at value[0]")],
)
def test_json_codec_refuses_values_it_would_change(value: Any, named: str) -> None:
    """Tuples, sets, non-str dict keys and nested bytes raise TypeError naming the problem."""
    with pytest.raises(TypeError, match=named.split()[0]) as info:
        JsonCodec().encode(value)
    assert named in str(info.value)


def test_json_codec_refuses_pickle_and_garbage() -> None:
    """A pickled payload or an unknown tag is refused, never unpickled."""
    c = JsonCodec()
    evil = b"p" + b"\x00" * 32 + pickle.dumps(object())
    with pytest.raises(CodecRefused, match="pickled payload refused"):
        c.decode(evil)
    with pytest.raises(CodecRefused, match="unknown payload tag"):
        c.decode(b"zzz")
    with pytest.raises(CodecRefused, match="malformed"):
        c.decode(b"inot-a-number")
    assert issubclass(CodecRefused, TierError)


def test_pickle_codec_round_trips_any_object() -> None:
    """Sets, tuples and custom objects come back equal from a signed payload."""
    c = PickleCodec(KEY)
    for value in ({1, 2}, (1, "a"), {1: b"x"}, complex(1, 2), "plain", 7):
        assert c.decode(c.encode(value)) == value
    assert isinstance(c, Codec) and isinstance(JsonCodec(), Codec)


def test_pickle_codec_refuses_tampered_unsigned_and_foreign_payloads() -> None:
    """A flipped byte, a missing signature or another key's signature is refused and counted."""
    c = PickleCodec(KEY)
    good = c.encode({"a": 1})
    tampered = good[:-2] + bytes([good[-2] ^ 1]) + good[-1:]
    unsigned = b"p" + pickle.dumps({"a": 1})
    foreign = PickleCodec(b"x" * 32).encode({"a": 1})
    for bad in (tampered, unsigned, foreign, b"p"):
        with pytest.raises(CodecRefused, match="signature"):
            c.decode(bad)
    assert c.refused == 4
    assert c.decode(good) == {"a": 1}


def test_pickle_codec_refuses_a_signed_payload_that_runs_code() -> None:
    """The signature is checked before unpickling: a payload signed elsewhere never executes."""
    ran: list[int] = []

    class Boom:
        def __reduce__(self) -> Any:
            return (ran.append, (1,))

    body = pickle.dumps(Boom())
    with pytest.raises(CodecRefused):
        PickleCodec(KEY).decode(b"p" + b"\x01" * 32 + body)
    assert ran == []


@pytest.mark.parametrize("key", [b"short", "", 123, None])
def test_pickle_codec_needs_a_real_key(key: Any) -> None:
    """A key under 16 bytes or not bytes/str is a ConfigError."""
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        PickleCodec(key)


def test_pickle_codec_refuses_unpicklable_values() -> None:
    """An unpicklable value raises TypeError naming its type."""
    with pytest.raises(TypeError, match="function"):
        PickleCodec(KEY).encode(lambda: 1)
