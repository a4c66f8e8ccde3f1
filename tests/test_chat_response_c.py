"""The C reading of chat responses (``_fastread.chat_response``) gives exactly what the Python reading gives.

Completions are built as the SDK builds them (``ChatCompletion.model_validate``) and, for values the
SDK's validation would not let through, with ``model_construct``: ids of every kind, usage with and
without counts and details, any number of choices with every finish reason, text, tool calls, function
calls, refusals and extra fields. Once the Python reading has met their classes, the C reading must
either decline (None) or give the same attributes, in the same order and of the same types, and the
same message parts.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.completion_usage import CompletionTokensDetails, CompletionUsage, PromptTokensDetails

from genai_audit import semconv as sc
from genai_audit.instrumentation.openai import _extract
from genai_audit.instrumentation.openai._extract import _C_CACHES, _read_chat_response, _Scratch, _typed

fastread = importlib.import_module("genai_audit.instrumentation.openai._fastread")


class Text(str):
    pass


def python_reading(response: Any) -> tuple[dict[str, Any], Any]:
    scratch = _Scratch()
    _read_chat_response(scratch, response)
    return scratch.attributes, scratch.content.get(sc.OUTPUT_MESSAGES)


def agrees(response: Any) -> bool | None:
    """None when the C reading declines; else whether it gives exactly the Python reading."""
    expected = python_reading(response)  # first: it fills the caches of readable classes
    read = fastread.chat_response(response, _C_CACHES)
    if read is None:
        return None
    updates, outputs = read
    return _typed((updates, outputs or None)) == _typed(expected)


words = st.sampled_from(["", "a", "stop", "length", "tool", "function", "user", "assistant", "é€", "\n"])
counts = st.one_of(st.none(), st.integers(0, 10**6), st.just(True), st.just(2.5), st.just("7"))
ids = st.one_of(st.none(), words, st.builds(Text, words), st.integers(0, 3))


@st.composite
def usages(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return None
    prompt = (
        draw(st.sampled_from([None, PromptTokensDetails(cached_tokens=draw(st.one_of(st.none(), st.integers(0, 9))))]))
        if draw(st.booleans())
        else PromptTokensDetails.model_construct(cached_tokens=draw(counts))
    )
    completion = draw(
        st.sampled_from([None, CompletionTokensDetails(reasoning_tokens=draw(st.one_of(st.none(), st.integers(0, 9))))])
    )
    values = {
        "prompt_tokens": draw(counts),
        "completion_tokens": draw(counts),
        "total_tokens": 0,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": completion,
    }
    if draw(st.booleans()):  # extra fields the provider sent, as the Responses API names them
        values["input_tokens"] = draw(counts)
    return CompletionUsage.model_construct(**values)


@st.composite
def messages(draw: st.DrawFn) -> Any:
    values: dict[str, Any] = {
        "role": draw(st.one_of(st.none(), words, st.builds(Text, words))),
        "content": draw(st.one_of(st.none(), words, st.builds(Text, words), st.just(["a"]))),
        "refusal": draw(st.one_of(st.none(), words)),
        "tool_calls": draw(st.sampled_from([None, [], [{"id": "c1", "type": "function"}]])),
        "function_call": draw(st.sampled_from([None, {"name": "f", "arguments": "{}"}])),
    }
    message = ChatCompletionMessage.model_construct(**values)
    if draw(st.booleans()):  # extra fields, as a provider may send them
        extra = draw(st.dictionaries(st.sampled_from(["name", "reasoning", "annotations"]), words, max_size=2))
        object.__setattr__(message, "__pydantic_extra__", extra)
    return message


@st.composite
def completions(draw: st.DrawFn) -> Any:
    choices = [
        Choice.model_construct(
            index=i,
            finish_reason=draw(st.one_of(st.none(), words, st.builds(Text, words))),
            message=draw(st.one_of(messages(), st.just(None))) if draw(st.integers(0, 9)) else None,
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return ChatCompletion.model_construct(
        id=draw(ids),
        model=draw(ids),
        system_fingerprint=draw(ids),
        service_tier=draw(ids),
        choices=choices or draw(st.sampled_from([choices, None])),
        usage=draw(usages()),
        object="chat.completion",
        created=0,
    )


@settings(max_examples=1500, deadline=None)
@given(completions())
def test_the_c_reading_declines_or_agrees(response: Any) -> None:
    assert agrees(response) is not False


usual_messages = st.builds(
    lambda role, content: ChatCompletionMessage(role="assistant", content=content, refusal=None),
    st.just("assistant"),
    words,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["stop", "length", "content_filter"]), words), min_size=0, max_size=3),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.booleans(),
)
def test_the_usual_response_is_read_in_c(choices: list[tuple[str, str]], cached: int | None, details: bool) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "service_tier": "default",
        "choices": [
            {"index": i, "finish_reason": reason, "message": {"role": "assistant", "content": text}, "logprobs": None}
            for i, (reason, text) in enumerate(choices)
        ],
        "usage": {
            "prompt_tokens": 287,
            "completion_tokens": 241,
            "total_tokens": 528,
            **({"prompt_tokens_details": {"cached_tokens": cached}} if details else {}),
            **({"completion_tokens_details": {"reasoning_tokens": 0}} if details else {}),
        },
    }
    response = ChatCompletion.model_validate(body)
    assert agrees(response) is True  # accepted, and the same as Python


def test_unknown_classes_are_left_to_python() -> None:
    class Mine:
        choices = ()

    assert fastread.chat_response(Mine(), _C_CACHES) is None
    assert fastread.chat_response({"choices": []}, _C_CACHES) is None
    assert fastread.chat_response(None, _C_CACHES) is None
    assert fastread.chat_response(ChatCompletion.model_construct(choices=[]), ({},) * 6) is None  # no class known
    assert fastread.chat_response(ChatCompletion.model_construct(choices=[]), ()) is None  # wrong caches


def test_tool_calls_and_refusals_are_left_to_python() -> None:
    for message in (
        ChatCompletionMessage.model_validate(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            }
        ),
        ChatCompletionMessage(role="assistant", content=None, refusal="no"),
    ):
        response = ChatCompletion.model_construct(
            id="x", model="m", choices=[Choice.model_construct(index=0, finish_reason="stop", message=message)]
        )
        assert agrees(response) is None


def text_answer() -> ChatCompletion:
    """A completion of one text answer, as the SDK parses it."""
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


def test_read_chat_response_uses_c_after_one_agreeing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_extract, "_C_CHAT_RESPONSE", None)
    monkeypatch.setattr(_extract, "_C_CHECKS", [3])
    response = text_answer()
    python_reading(response)  # the caches know the classes
    read = _extract._check_c_response(response)
    assert read is not None
    assert _extract._C_CHAT_RESPONSE is fastread.chat_response


def test_a_disagreeing_c_reading_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # a reading that drifted from Python's (here: one that drops the usage) is checked and given up
    def drifted(response: Any, caches: Any) -> Any:
        read = fastread.chat_response(response, caches)
        if read is None:
            return None
        updates, outputs = read
        return {k: v for k, v in updates.items() if "usage" not in k}, outputs

    monkeypatch.setattr(_extract, "_C_RESPONSE", drifted)
    monkeypatch.setattr(_extract, "_C_CHAT_RESPONSE", None)
    monkeypatch.setattr(_extract, "_C_CHECKS", [3])
    response = text_answer()
    python_reading(response)
    for left in (2, 1, 0):
        assert _extract._check_c_response(response) is None
        assert _extract._C_CHECKS[0] == left
        assert _extract._C_CHAT_RESPONSE is None
    assert _extract._check_c_response(response) is None  # given up: not even tried


def test_the_extension_reads_responses_in_the_instrumented_call() -> None:
    assert _extract._C_RESPONSE is fastread.chat_response
