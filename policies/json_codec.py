"""JSON encoding and decoding for the hot paths (a sweep encodes every snapshot it reads three
times and decodes every GraphQL answer): orjson where it gives exactly what the standard
library gives, the standard library for whatever orjson refuses.

Results are the same as ``json`` either way, with one exception: NaN and the infinities, which
JSON cannot hold (``json`` writes the non-standard ``NaN``/``Infinity``), are written as
``null``. A snapshot never holds them (its numbers are integers). ``canonical_json`` is what
fingerprints hash, so its bytes must never change: orjson's output is used only where it is
byte for byte ``json.dumps(..., sort_keys=True, separators=(",", ":"))`` (ASCII text).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
_TEXT = orjson.OPT_NON_STR_KEYS  # {1: ...} -> {"1": ...}, as json.dumps does


def canonical_json(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":")).encode()``, the same bytes.

    orjson writes non-ASCII characters as UTF-8 where ``json`` escapes them (``\\u00e9``), so a
    non-ASCII result, or anything orjson refuses, is made by ``json`` itself."""
    try:
        encoded = orjson.dumps(value, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        encoded = b"\x80"  # not ASCII: take the standard library's answer
    if encoded.isascii():
        return encoded
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """JSON text of ``value`` (for the ledger's JSON columns): any valid JSON for it will do."""
    try:
        return orjson.dumps(value, option=_TEXT).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)


# 19 digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float.
_LONG_DIGITS_TEXT = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def loads(data: str | bytes) -> Any:
    """``json.loads``. What orjson reads differently (integers beyond 64 bits, as floats) or
    refuses (NaN, Infinity) is read by ``json``."""
    pattern = _LONG_DIGITS_TEXT if isinstance(data, str) else _LONG_DIGITS_BYTES
    if pattern.search(data) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def round_trip(value: Any) -> Any:
    """``json.loads(json.dumps(value))`` for a dataclass tree of str, int, bool, None,
    tuples, lists, str-keyed dicts, enums whose values are JSON, and datetimes (ISO 8601, as
    ``datetime.isoformat`` writes them). Raises TypeError for anything else; callers that may
    hold other values use their own encoder instead."""
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError as error:
        raise TypeError(str(error)) from error
