"""JSON encoding and decoding for the hot paths (a sweep encodes every new snapshot for its
fingerprint and for the ledger, and decodes every GraphQL answer): orjson where it gives
exactly what the standard library gives, the standard library for whatever orjson refuses.

Results are the same as ``json`` either way, with two exceptions for floats, which a snapshot's
JSON does not hold (its numbers are integers): NaN and the infinities, which JSON cannot hold
(``json`` writes the non-standard ``NaN``/``Infinity``), are written as ``null``; and a float
may be written in another, equally exact, form (``5.96e-8`` for ``5.96e-08``).
``canonical_json`` is what fingerprints hash, so its bytes must not change: apart from floats,
orjson's output is used only where it is byte for byte
``json.dumps(..., sort_keys=True, separators=(",", ":"))`` (ASCII text).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
_TEXT = orjson.OPT_NON_STR_KEYS  # {1: ...} -> {"1": ...}, as json.dumps does


def canonical_json(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":")).encode()``, the same bytes
    (floats aside: see above).

    orjson writes non-ASCII characters as UTF-8 where ``json`` escapes them (``\\u00e9``), and
    DEL as it is (``json``: ``\\u007f``), so such a result, or anything orjson refuses, is made
    by ``json`` itself."""
    try:
        encoded = orjson.dumps(value, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        encoded = b"\x80"  # not ASCII: take the standard library's answer
    if encoded.isascii() and b"\x7f" not in encoded:  # ``json`` escapes DEL too (\u007f)
        return encoded
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class EncodedJSON(str):
    """JSON text already made by :func:`dumps_text`, which gives it back as it is: a value
    stored in two JSON columns (a new PR's row and its first observation) is encoded once."""

    __slots__ = ()


def dumps_text(value: Any) -> str:
    """JSON text of ``value`` (for the ledger's JSON columns): any valid JSON for it will do.
    An :class:`EncodedJSON` is that text already."""
    if value.__class__ is EncodedJSON:
        return str.__str__(value)
    try:
        return orjson.dumps(value, option=_TEXT).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)


# Every digit as "0", everything else as " ": 19 digits in a row may be an integer beyond 64
# bits, which orjson reads as a float. (bytes.translate and ``in`` are C loops; a regular
# expression for it cost several times the parse itself.)
_DIGIT_MARKS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def _may_hold_long_integers(data: str | bytes) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return _LONG_DIGITS in raw.translate(_DIGIT_MARKS)


def loads(data: str | bytes) -> Any:
    """``json.loads``. What orjson reads differently (integers beyond 64 bits, as floats) or
    refuses (NaN, Infinity) is read by ``json``."""
    if not _may_hold_long_integers(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)
