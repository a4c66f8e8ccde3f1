"""Captured content as JSON: the C encoder (genai_audit._jsonenc) against the standard library.

``content.to_json`` must give exactly ``json.dumps(value, ensure_ascii=False, separators=(",", ":"),
default=str)`` whatever it is given. Values of the plain built-in types go through the C encoder; for
everything else it answers None and the standard library encodes the value, so both paths are
compared with the reference here.
"""

from __future__ import annotations

import enum
import importlib
import json
import math
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genai_audit
from genai_audit import content

jsonenc = importlib.import_module("genai_audit._jsonenc")


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def test_the_extension_is_built() -> None:
    # an install made by `make setup` (or pip with a C compiler) has it; without it the standard library encodes
    assert content._plain_dumps is jsonenc.dumps
    package = os.path.dirname(genai_audit.__file__)
    source = os.path.join(package, "_jsonenc.c")
    if os.path.exists(os.path.join(package, os.pardir, "setup.py")):  # an editable install: built from the checkout
        assert int(os.path.getmtime(jsonenc.__file__)) >= int(os.path.getmtime(source)), "stale: run make setup"


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**90), max_value=2**90)
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0xFF))
    | st.text(alphabet=st.sampled_from('ab"\\\n\t\x00\x1f\x7f\x80é€\u2028😀'))
)
plain_values = st.recursive(
    _leaves,
    lambda children: st.lists(children) | st.tuples(children, children) | st.dictionaries(st.text(), children),
    max_leaves=40,
)


@settings(max_examples=600, deadline=None)
@given(plain_values)
def test_plain_values_are_encoded_exactly_as_the_standard_library_does(value: Any) -> None:
    expected = reference(value)
    got = jsonenc.dumps(value)
    if got is None:  # only a lone surrogate (no UTF-8 form) sends a plain value back to the standard library
        assert _has_surrogate(expected)
    else:
        assert got == expected
    assert content.to_json(value) == expected


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Number(float):
    pass


class Thing:
    def __str__(self) -> str:
        return "thing \u00e9"


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"key": Colour.RED},
        [Text("sub\nclass")],
        {"n": Number(1.5)},
        [Thing(), b"bytes"],
        {1: "int key", None: "none key", 2.5: "float key", False: "bool key"},
        {"lone": "\ud800 surrogate"},
        _nested(199),
        _nested(200),
        _nested(201),
        _nested(500),
        {"deep": _nested(400), "after": 1},
    ],
    ids=[
        "int-enum",
        "str-subclass",
        "float-subclass",
        "other-objects",
        "non-str-keys",
        "surrogate",
        "depth-199",
        "depth-200",
        "depth-201",
        "depth-500",
        "deep-inside-dict",
    ],
)
def test_other_values_are_left_to_the_standard_library(value: Any) -> None:
    assert content.to_json(value) == reference(value)


def test_which_values_the_c_encoder_declines() -> None:
    assert jsonenc.dumps(Thing()) is None
    assert jsonenc.dumps({"a": [1, Colour.RED]}) is None
    assert jsonenc.dumps({1: 2}) is None
    assert jsonenc.dumps(["\udfff"]) is None
    assert jsonenc.dumps(_nested(500)) is None
    assert jsonenc.dumps(_nested(100)) == reference(_nested(100))


@pytest.mark.parametrize(
    "value",
    [
        "",
        [],
        {},
        [[], {}, ()],
        "\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1e\x1f\x20\x7f",
        'quote " and backslash \\ and slash /',
        "latin-1 ÿ é ü and DEL \x7f",
        "UCS-2 € \u2028 \u2029 \ufeff \uffff",
        "astral 😀 𝄞 \U0010ffff",
        [0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40, -(10**40)],
        [0.0, -0.0, 1.5, 1e16, 1e-7, 123456789.123456789, 5e-324, 1.7976931348623157e308],
        [math.inf, -math.inf, math.nan],
        [True, False, None],
        {"gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]},
    ],
)
def test_edge_values(value: Any) -> None:
    assert jsonenc.dumps(value) == reference(value)


@pytest.mark.parametrize("special", ['"', "\\", "\n", "\x00", "\x1f", "é", "€", "😀"])
def test_escapes_at_every_position_of_a_word(special: str) -> None:
    # the ASCII runs are scanned 16 bytes at a time, then 8: a character to escape must be found wherever it
    # falls, in the first block, the second, or the tail
    for length in range(1, 40):
        for at in range(length):
            text = "x" * at + special + "y" * (length - at - 1)
            assert jsonenc.dumps(text) == reference(text)


def test_long_content_beyond_the_first_buffer() -> None:
    answer = ("Line with a \"quote\", a tab\tand é; " * 2000) + "\n"
    value = [{"role": "assistant", "parts": [{"type": "text", "content": answer * 3}], "finish_reason": "stop"}]
    assert len(reference(value)) > 200_000
    assert jsonenc.dumps(value) == reference(value)


@pytest.mark.parametrize("other", ["é", "\u20ac", "\U0001f600"])
def test_one_character_above_ascii_anywhere_is_kept(other: str) -> None:
    # all-ASCII output is copied into the string as it is; one character above ASCII, in a key, a value or
    # past the first buffer, must make the output be read as UTF-8
    ascii_value = {"role": "user", "parts": [{"type": "text", "content": "plain " * 1000}]}
    assert jsonenc.dumps(ascii_value) == reference(ascii_value)
    assert jsonenc.dumps(ascii_value).isascii()
    for value in (
        {"r" + other: "plain"},
        ["plain " * 1000, other],
        [{"type": "text", "content": "plain " * 1000 + other}],
        ["a", 1, 2.5, None, True, other],
    ):
        encoded = jsonenc.dumps(value)
        assert encoded == reference(value)
        assert not encoded.isascii()


def test_the_standard_library_path_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": ["é\n", 1, 2.5, None, True], "b": {"c": "\u2028"}}
    expected = reference(value)
    assert content.to_json(value) == expected
    monkeypatch.setattr(content, "_plain_dumps", None)
    assert content.to_json(value) == expected
