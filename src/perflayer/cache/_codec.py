"""Codecs turn cached values into bytes for the disk and Redis tiers, and back.

Two codecs, chosen per tier:

- ``JsonCodec`` (the default) holds str, bytes, int, float, and JSON values (None, bool, lists,
  and dicts with str keys, nested). It never runs code on decode, so it is safe for data that
  someone else could have written. Values it cannot hold exactly (tuples, sets, dicts with int
  keys, bytes nested in a list) raise ``TypeError`` on encode instead of coming back changed.
- ``PickleCodec(key)`` holds any picklable object, signed with HMAC-SHA256 under ``key``. It
  refuses unsigned or badly signed payloads before unpickling anything, and counts them.

Wire format: one tag byte, then the payload. ``b"s"`` UTF-8 str, ``b"b"`` raw bytes, ``b"i"``
decimal int, ``b"f"`` float ``repr``, ``b"j"`` JSON text, ``b"p"`` 32-byte HMAC + pickle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Any, Protocol, runtime_checkable

from perflayer.errors import CodecRefused, ConfigError

__all__ = ["Codec", "CodecRefused", "JsonCodec", "PickleCodec"]

# why: module-level encoder/decoder objects skip json.dumps/loads' per-call argument handling
# and (for loads on bytes) the encoding sniffing; together ~2x cheaper on small dicts.
_ENC = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DEC = json.JSONDecoder()


@runtime_checkable
class Codec(Protocol):
    """Turn a value into bytes and back; ``decode`` raises ``CodecRefused`` on bad input."""

    def encode(self, value: Any) -> bytes:
        """Return ``value`` as bytes; raise ``TypeError`` naming what cannot be held."""

    def decode(self, data: bytes) -> Any:
        """Return the value of ``data``; raise ``CodecRefused`` if it is not trustworthy."""


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _json_exact(value: Any) -> bool:
    """Return True if ``value`` comes back from JSON exactly as it went in (flat loop)."""
    # why: an explicit stack instead of recursion: one Python call per value, not per node.
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    scalars = _SCALARS
    while stack:
        v = pop()
        cls = v.__class__
        if cls in scalars:
            continue
        if cls is list:
            extend(v)
        elif cls is dict:
            for k in v:
                if k.__class__ is not str:
                    return False
            extend(v.values())
        else:
            return False
    return True


def _check_json(value: Any, path: str) -> None:
    """Raise TypeError naming where ``value`` would not come back from JSON exactly."""
    cls = value.__class__
    if value is None or cls in (str, int, float, bool):
        return
    if cls is list:
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if cls is dict:
        for k, item in value.items():
            if k.__class__ is not str:
                raise TypeError(
                    f"JsonCodec: dict key {k!r} at {path} is not a str "
                    "(JSON would turn it into one); use PickleCodec for such values"
                )
            _check_json(item, f"{path}[{k!r}]")
        return
    raise TypeError(
        f"JsonCodec cannot hold {cls.__name__} at {path}: {value!r:.80} "
        "(JSON values, str, bytes, int, float only; use PickleCodec for other objects)"
    )


class JsonCodec:
    """The safe default codec: str, bytes, int, float and JSON values; never unpickles.

    >>> c = JsonCodec()
    >>> c.decode(c.encode({"a": [1, 2.5, None]})), c.decode(c.encode(b"\\x00"))
    ({'a': [1, 2.5, None]}, b'\\x00')
    """

    __slots__ = ()

    def encode(self, value: Any) -> bytes:
        """Return the tagged bytes of ``value``."""
        cls = value.__class__
        # why: the scalar types a cache mostly holds skip JSON entirely.
        if cls is str:
            text: str = value
            return b"s" + text.encode("utf-8", "surrogatepass")
        if cls is bytes:
            raw: bytes = value
            return b"b" + raw
        if cls is int:
            return b"i" + str(value).encode()
        if cls is float:
            return b"f" + repr(value).encode()
        if not _json_exact(value):
            _check_json(value, "value")  # raises, naming the path of the offending part
        return b"j" + _ENC.encode(value).encode("utf-8", "surrogatepass")

    def decode(self, data: bytes) -> Any:
        """Return the value of tagged bytes; raise CodecRefused for anything else."""
        tag = data[:1]
        body = data[1:]
        try:
            if tag == b"s":
                return body.decode("utf-8", "surrogatepass")
            if tag == b"b":
                return bytes(body)
            if tag == b"i":
                return int(body)
            if tag == b"f":
                return float(body)
            if tag == b"j":
                return _DEC.decode(body.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CodecRefused(f"malformed {tag!r} payload: {exc}") from None
        if tag == b"p":
            raise CodecRefused("pickled payload refused: this tier uses JsonCodec (no pickle)")
        raise CodecRefused(f"unknown payload tag {tag!r}")

    def __repr__(self) -> str:
        """Return ``JsonCodec()``."""
        return "JsonCodec()"


class PickleCodec:
    """Opt-in codec for any picklable object, HMAC-SHA256 signed under a secret ``key``.

    Payloads without a valid signature are refused before unpickling (``refused`` counts them);
    str/bytes/int/float/JSON payloads written by ``JsonCodec`` still decode, unsigned, because
    decoding them runs no code.

    >>> c = PickleCodec(b"0123456789abcdef0123456789abcdef")
    >>> c.decode(c.encode({1, 2}))
    {1, 2}
    """

    __slots__ = ("_json", "_key", "refused")

    def __init__(self, key: bytes | str) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes) or len(key) < 16:
            raise ConfigError(
                f"PickleCodec key must be bytes or str of at least 16 bytes, got {key!r:.20}"
            )
        self._key = key
        self._json = JsonCodec()
        self.refused = 0

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def encode(self, value: Any) -> bytes:
        """Return ``b"p"`` + HMAC + pickle of ``value``."""
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"PickleCodec cannot pickle {type(value).__name__}: {exc}") from None
        return b"p" + self._sign(body) + body

    def decode(self, data: bytes) -> Any:
        """Verify the signature, then unpickle; raise CodecRefused (counted) if it fails."""
        if data[:1] != b"p":
            try:
                return self._json.decode(data)
            except CodecRefused:
                self.refused += 1
                raise
        sig = data[1:33]
        body = data[33:]
        if len(sig) != 32 or not hmac.compare_digest(sig, self._sign(body)):
            self.refused += 1
            raise CodecRefused("pickled payload refused: missing or bad HMAC signature")
        try:
            return pickle.loads(body)
        except Exception as exc:  # signed by us but unloadable (a class that moved)
            self.refused += 1
            raise CodecRefused(f"signed pickle could not be loaded: {exc}") from None

    def __repr__(self) -> str:
        """Return ``PickleCodec(key=<hidden>)``."""
        return "PickleCodec(key=<hidden>)"
