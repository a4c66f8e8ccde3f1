"""The C reading of chat requests (``_fastread``) gives exactly what the Python reading gives.

Requests are generated over every argument the reading looks at, with values of every plain type and
of others (SDK sentinels, str subclasses, SDK models, numbers too large for a float); the C reading must
either decline (None, changing nothing) or give the same attributes, in the same order and of the same
types, and the same message parts. Where the Python reading raises, the public reading raises the same.
"""

from __future__ import annotations

import importlib
import math
import os
from typing import Any

import openai
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessage

from genai_audit.instrumentation.openai import _extract
from genai_audit.instrumentation.openai._extract import _read_chat_request, read_chat_request

fastread = importlib.import_module("genai_audit.instrumentation.openai._fastread")


def test_the_extension_is_built_and_used() -> None:
    # an install made by `make setup` (or pip with a C compiler) has it; without it Python reads every request
    assert _extract._C_CHAT_REQUEST is fastread.chat_request  # built, and it passed the import-time check
    source = os.path.join(os.path.dirname(_extract.__file__), "_fastread.c")
    if os.path.exists(source):  # an editable install: built from the checkout
        assert int(os.path.getmtime(fastread.__file__)) >= int(os.path.getmtime(source)), "stale: run make setup"


class Text(str):
    pass


SENTINEL = getattr(openai, "omit", None) or openai.NOT_GIVEN
words = st.sampled_from(["", "a", "tool", "function", "user", "system", "assistant", "é€", "\n"])
numbers = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
simple = st.one_of(st.none(), words, numbers, st.builds(Text, words), st.just(SENTINEL))
values = st.one_of(
    simple,
    st.lists(st.one_of(words, st.builds(Text, words), numbers), max_size=3),
    st.tuples(words, words),
    st.dictionaries(words, words, max_size=2),
)
plain_messages = st.fixed_dictionaries({"role": words, "content": words})
messages = st.lists(
    st.one_of(
        plain_messages,
        st.fixed_dictionaries({"content": words, "role": words}),
        st.fixed_dictionaries({"role": words, "content": st.one_of(st.none(), st.builds(Text, words), words)}),
        st.fixed_dictionaries({"role": st.builds(Text, words), "content": words}),
        st.fixed_dictionaries({"role": words, "content": words, "name": words}),
        st.just(ChatCompletionMessage(role="assistant", content="earlier")),
        words,
    ),
    max_size=4,
)
ARGS = [
    "model",
    "n",
    "seed",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "service_tier",
    "response_format",
    "tools",
    "functions",
    "user",
]
requests = st.fixed_dictionaries(
    {"messages": st.one_of(messages, messages.map(tuple), simple)},
    optional=dict.fromkeys(ARGS, values),
)


def typed(attributes: dict[str, Any]) -> list[tuple[str, type, str]]:
    # repr keeps NaN comparable and tells 1 from 1.0 and a list from a tuple
    return [(key, type(value), repr(value)) for key, value in attributes.items()]


def both(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    def run(reader: Any) -> Any:
        try:
            attributes, content = reader(None, dict(kwargs))
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc)
        return typed(attributes), repr(content)

    return run(read_chat_request), run(_read_chat_request)


@settings(max_examples=1500, deadline=None)
@given(requests)
def test_the_c_reading_gives_what_the_python_reading_gives(kwargs: dict[str, Any]) -> None:
    public, python = both(kwargs)
    assert public == python


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"model": words, "messages": st.lists(plain_messages, max_size=5)},
        optional={name: st.one_of(st.none(), words, numbers, st.lists(words, max_size=2)) for name in ARGS[1:13]},
    )
)
def test_plain_requests_are_read_in_c(kwargs: dict[str, Any]) -> None:
    """Requests of plain values and plain messages take the C reading (it does not decline them)."""
    if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023 for v in kwargs.values()):
        return
    if kwargs.get("response_format") is not None:
        return
    messages = kwargs["messages"]
    if any(m["role"] in ("tool", "function") for m in messages):
        return
    attributes: dict[str, Any] = {}
    assert fastread.chat_request(dict(kwargs), attributes) is not None
    public, python = both(kwargs)
    assert public == python


def test_a_declined_request_changes_nothing() -> None:
    kwargs = {"model": "m", "messages": [{"role": "tool", "content": "42"}], "temperature": 0.5}
    attributes = {"already": 1}
    assert fastread.chat_request(kwargs, attributes) is None
    assert attributes == {"already": 1}
    assert fastread.chat_request({"messages": [], "temperature": SENTINEL}, attributes) is None
    assert fastread.chat_request({"messages": [], "temperature": 10**400}, attributes) is None
    assert fastread.chat_request({"messages": [], "tools": []}, attributes) is None
    assert attributes == {"already": 1}


def test_the_bench_request_is_read_in_c_as_in_python() -> None:
    kwargs = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "Total due?"}],
        "temperature": 0.2,
        "max_tokens": 512,
    }
    attributes: dict[str, Any] = {}
    inputs = fastread.chat_request(dict(kwargs), attributes)
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "Be careful."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Total due?"}]},
    ]
    assert attributes == {
        "gen_ai.output.type": "text",
        "gen_ai.request.stream": False,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.temperature": 0.2,
    }
    assert both(kwargs)[0] == both(kwargs)[1]
    assert math.isnan(read_chat_request(None, {"messages": [], "top_p": math.nan})[0]["gen_ai.request.top_p"])
