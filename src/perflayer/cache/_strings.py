"""Redis string semantics for Python values: encoding, integer and float parsing, glob matching.

Redis stores every string value as bytes. redis-py encodes ``str`` as UTF-8, ``int`` and
``float`` with ``repr()`` and passes ``bytes`` through; this module reproduces that view of a
Python value so that INCR, INCRBYFLOAT, APPEND, STRLEN and friends behave (and fail) exactly as
on a real server. INCRBYFLOAT is computed in exact rational arithmetic rounded to the x87
80-bit ``long double`` Redis uses and printed as Redis' ``"%.17Lf"`` with trailing zeros cut,
so even ``512.1 + 0`` gives Redis' ``"512.09999999999999998"``.
"""

from __future__ import annotations

import datetime
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

from perflayer.errors import ConfigError, ResponseError

__all__ = [
    "ERR_NAN",
    "ERR_NOT_FLOAT",
    "ERR_NOT_INT",
    "ERR_OVERFLOW",
    "ERR_WRONGTYPE",
    "as_bytes",
    "expiry_arg",
    "format_long_double",
    "glob_match",
    "incr_float",
    "parse_int64",
    "parse_long_double",
    "to_redis_int",
]

ERR_NOT_INT = "value is not an integer or out of range"
ERR_NOT_FLOAT = "value is not a valid float"
ERR_OVERFLOW = "increment or decrement would overflow"
ERR_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
ERR_NAN = "increment would produce NaN or Infinity"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_INT_RE = re.compile(rb"-?[1-9][0-9]{0,19}|0")
_FLOAT_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INF_RE = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
_HEX_RE = re.compile(
    rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
)


def as_bytes(value: Any) -> bytes | None:
    """Return the bytes redis-py would send for ``value``, or None if it is not a string value."""
    cls = value.__class__
    if cls is bytes:
        return value  # type: ignore[no-any-return]
    if cls is str:
        return value.encode("utf-8", "surrogateescape")  # type: ignore[no-any-return]
    if cls is int or cls is float:
        return repr(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return str(value).encode("utf-8", "surrogateescape")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value).encode()
    return None


def parse_int64(raw: bytes) -> int | None:
    """Parse ``raw`` as Redis' ``string2ll`` does (strict decimal, int64), or return None."""
    if len(raw) > 20 or _INT_RE.fullmatch(raw) is None:
        return None
    n = int(raw)
    if n < INT64_MIN or n > INT64_MAX:
        return None
    return n


def to_redis_int(value: Any) -> int:
    """Return ``value`` as the int64 Redis would parse from redis-py's encoding of it."""
    if value.__class__ is int:
        if INT64_MIN <= value <= INT64_MAX:
            return int(value)
        raise ResponseError(ERR_NOT_INT)
    if isinstance(value, bool):
        raise ConfigError(
            "Invalid input of type: 'bool'. Convert to a bytes, string, int or float first: "
            f"{value!r}"
        )
    raw = as_bytes(value)
    n = None if raw is None else parse_int64(raw)
    if n is None:
        raise ResponseError(ERR_NOT_INT)
    return n


# --- x87 long double emulation -------------------------------------------------------------

_MANT_BITS = 64  # x87 extended precision: a 64-bit significand, explicit integer bit
_MIN_EXP = -16445  # exponent of the smallest subnormal (2**-16445)
_MAX_VALUE = Fraction(2**64 - 1) * Fraction(2) ** (16383 - 63)


def _round_ld(x: Fraction) -> Fraction:
    """Round the exact rational ``x`` to the nearest x87 long double (ties to even)."""
    if x == 0:
        return x
    sign = -1 if x < 0 else 1
    a = abs(x)
    num, den = a.numerator, a.denominator
    e = num.bit_length() - den.bit_length()
    # normalise so that 2**e <= a < 2**(e+1)
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    shift = _MANT_BITS - 1 - e
    lowest = _MIN_EXP
    if e - (_MANT_BITS - 1) < lowest:  # subnormal: fewer significant bits
        shift = -lowest
    if shift >= 0:
        divisor = den
        q, r = divmod(num << shift, divisor)
    else:
        divisor = den << -shift
        q, r = divmod(num, divisor)
    twice = 2 * r
    if twice > divisor or (twice == divisor and q & 1):
        q += 1
    return sign * Fraction(q) / (Fraction(2) ** shift)


def parse_long_double(raw: bytes) -> Fraction | float | None:
    """Parse ``raw`` as Redis' ``string2ld`` (strtold, no spaces, no NaN), or return None.

    Returns an exact Fraction of the rounded long double, or ``±inf`` as a float.
    """
    if not raw or len(raw) >= 5 * 1024:
        return None
    if _FLOAT_RE.fullmatch(raw) is not None:
        value = _round_ld(Fraction(raw.decode()))
    elif _INF_RE.fullmatch(raw) is not None:
        return float("-inf") if raw.startswith(b"-") else float("inf")
    elif _HEX_RE.fullmatch(raw) is not None:
        value = _round_ld(Fraction(float.fromhex(raw.decode())))
    else:
        return None
    if abs(value) > _MAX_VALUE:
        return None  # ERANGE with HUGE_VAL
    if value == 0 and Fraction(raw.decode() if _FLOAT_RE.fullmatch(raw) else "0") != 0:
        return None  # ERANGE underflow to zero
    return value


def format_long_double(x: Fraction) -> bytes:
    """Format ``x`` as Redis' ``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf`` without trailing 0s."""
    scaled = x * 10**17
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q & 1):
        q += 1
    neg = q < 0 or (q == 0 and x < 0)
    digits = str(abs(q)).rjust(18, "0")
    text = digits[:-17] + "." + digits[-17:]
    text = text.rstrip("0").rstrip(".")
    if neg:
        text = "-" + text
    if text == "-0":
        text = "0"
    return text.encode()


def incr_float(current: bytes | None, amount: Any) -> bytes:
    """Return the new value of INCRBYFLOAT ``current`` by ``amount`` as Redis stores it."""
    if isinstance(amount, bool):
        raise ConfigError(f"Invalid input of type: 'bool'. Convert to a float first: {amount!r}")
    raw_amount = as_bytes(amount)
    base: Fraction | float | None = Fraction(0) if current is None else parse_long_double(current)
    if base is None:
        raise ResponseError(ERR_NOT_FLOAT)
    incr = None if raw_amount is None else parse_long_double(raw_amount)
    if incr is None:
        raise ResponseError(ERR_NOT_FLOAT)
    if isinstance(base, float) or isinstance(incr, float):
        raise ResponseError(ERR_NAN)
    total = _round_ld(base + incr)
    if abs(total) > _MAX_VALUE:
        raise ResponseError(ERR_NAN)
    return format_long_double(total)


# --- glob patterns --------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compile_glob(pattern: bytes) -> re.Pattern[bytes]:
    """Translate a Redis glob (``stringmatchlen``) to an anchored bytes regex."""
    out: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if c == b"*":
            while i + 1 < n and pattern[i + 1 : i + 2] == b"*":
                i += 1
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"[":
            i += 1
            negate = i < n and pattern[i : i + 1] == b"^"
            if negate:
                i += 1
            members: set[int] = set()
            while True:
                if i < n and pattern[i] == 0x5C and n - i >= 2:  # backslash escape
                    i += 1
                    members.add(pattern[i])
                elif i < n and pattern[i] == 0x5D:  # ']'
                    break
                elif i >= n:
                    i -= 1
                    break
                elif n - i >= 3 and pattern[i + 1] == 0x2D:  # 'a-z'
                    lo, hi = pattern[i], pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    members.update(range(lo, hi + 1))
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            if negate:
                members = set(range(256)) - members
            if members:
                out.append(b"[" + b"".join(re.escape(bytes([m])) for m in sorted(members)) + b"]")
            else:
                out.append(b"(?!)")
        elif c == b"\\" and n - i >= 2:
            i += 1
            out.append(re.escape(pattern[i : i + 1]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out), re.DOTALL)


def glob_match(pattern: bytes, key: bytes) -> bool:
    """Return True when ``key`` matches the Redis glob ``pattern`` (KEYS / SCAN MATCH)."""
    if pattern == b"*":
        return True
    if not key:
        # stringmatchlen never enters its loop for an empty string: only "" matches it.
        return not pattern
    return _compile_glob(pattern).fullmatch(key) is not None


def expiry_arg(value: Any, unit_ms: int, name: str) -> int:
    """Return a relative expiry (``ex``/``px``) as redis-py would send it; raise its errors."""
    if isinstance(value, datetime.timedelta):
        secs = value.total_seconds()
        return int(secs * 1000) if unit_ms == 1 else int(secs)
    if value.__class__ is int:
        return int(value)
    if unit_ms == 1000 and isinstance(value, str) and value.isdigit():
        return int(value)
    raise ConfigError(f"{name} must be datetime.timedelta or int, got {value!r}")
