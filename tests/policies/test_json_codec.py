"""``policies.json_codec`` gives what the standard library gives: fingerprints hash
``canonical_json``, so a byte of difference would make every stored PR look changed."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.json_codec import EncodedJSON, canonical_json, dumps_text, loads

# What a snapshot's JSON is made of, and a little more: any text (control characters, non-ASCII,
# lone surrogates), big integers, int keys.
leaves = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text()
finite_floats = st.floats(allow_nan=False, allow_infinity=False)


def trees(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )


values = trees(leaves)
values_with_floats = trees(leaves | finite_floats)


@settings(max_examples=400)
@given(values)
def test_canonical_json_is_the_standard_librarys_bytes(value: Any) -> None:
    assert (
        canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    )


@settings(max_examples=300)
@given(values_with_floats)
def test_floats_may_be_written_otherwise_but_read_back_the_same(value: Any) -> None:
    assert json.loads(canonical_json(value)) == value
    assert canonical_json(value) == canonical_json(json.loads(json.dumps(value)))


@settings(max_examples=300)
@given(values_with_floats)
def test_text_reads_back_as_the_same_value(value: Any) -> None:
    text = dumps_text(value)
    assert loads(text) == json.loads(json.dumps(value))
    assert loads(text.encode()) == loads(text)


def test_nan_and_infinities_are_written_as_null() -> None:
    # JSON has no such numbers; json.dumps writes NaN/Infinity, which PostgreSQL refuses
    assert canonical_json([math.nan, math.inf, -math.inf]) == b"[null,null,null]"
    assert dumps_text({"x": math.inf}) == '{"x":null}'


def test_what_orjson_refuses_is_still_encoded_and_read() -> None:
    assert json.loads(dumps_text({1: "a", "b": 2**80})) == {"1": "a", "b": 2**80}
    assert (
        loads("[NaN, 1e400, 123456789012345678901234567890]")[2] == 123456789012345678901234567890
    )
    assert math.isnan(loads("[NaN]")[0])
    assert (
        canonical_json({"é": "\x00\u2028\ud800"})
        == json.dumps({"é": "\x00\u2028\ud800"}, sort_keys=True, separators=(",", ":")).encode()
    )


def test_encoded_json_is_given_back_as_it_is_not_encoded_again() -> None:
    value = {"title": 'a "quoted" title', "n": [1, 2]}
    text = dumps_text(value)
    again = dumps_text(EncodedJSON(text))
    assert again == text and type(again) is str  # a plain str, for any driver
    assert loads(again) == value
    assert dumps_text("plain text") == '"plain text"'  # a str that is not EncodedJSON is a value


def test_canonical_json_of_every_ascii_character_is_the_standard_librarys() -> None:
    # Found by the property test above: orjson writes DEL (0x7f) as it is, json escapes it.
    for code in range(128):
        value = {"k" + chr(code): "a" + chr(code) + "b"}
        expected = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        assert canonical_json(value) == expected, code
