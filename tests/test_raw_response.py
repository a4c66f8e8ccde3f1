"""Calls made through ``with_raw_response`` and ``with_streaming_response`` record the whole answer.

These helpers hand the application a response object instead of the parsed
result (LangChain's ChatOpenAI calls ``with_raw_response`` on every request).
The span must still carry the response id and model, finish reasons, usage,
cost and output messages, and the application must get exactly what the SDK
returned.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from genai_audit import semconv as sc
from genai_audit.testing.fake_provider import Reply
from tests.conftest import Telemetry
from tests.sdk_support import requires_sdk

USER = [{"role": "user", "content": "Where is my parcel?"}]


def _assert_answer(span: ReadableSpan, response_id: str, text: str, *, stream: bool = False) -> None:
    a = span.attributes
    assert a[sc.RESPONSE_ID] == response_id
    assert a[sc.RESPONSE_MODEL]
    assert a[sc.USAGE_INPUT_TOKENS] > 0  # type: ignore[operator]
    assert a[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
    assert a[sc.RESPONSE_FINISH_REASONS] in (("stop",), ("end_turn",))
    output = json.loads(a[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
    assert output[0]["role"] == "assistant"
    assert output[0]["parts"][0]["content"] == text
    if stream:
        assert a[sc.AUDIT_STREAM_COMPLETED] is True


def test_openai_chat_with_raw_response(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """The LegacyAPIResponse reaches the application unchanged; its parsed answer is on the span."""
    fake.script(Reply(text="It is in Leeds."))
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    assert type(raw).__name__ == "LegacyAPIResponse"
    assert raw.headers.get("content-type", "").startswith("application/json")
    completion = raw.parse()
    assert completion.choices[0].message.content == "It is in Leeds."
    assert raw.parse() is completion
    _assert_answer(instrumented.span(), completion.id, "It is in Leeds.")


def test_openai_chat_with_raw_response_never_parsed(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """An application that only reads the raw body still gets an audited answer."""
    fake.script(Reply(text="Tomorrow."))
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    body = json.loads(raw.text)
    _assert_answer(instrumented.span(), body["id"], "Tomorrow.")


def test_openai_chat_with_raw_response_stream(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """A raw streamed call: the parsed stream is read through and the span holds the whole answer."""
    fake.script(Reply(text="It ships on Monday."))
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}  # type: ignore[arg-type]
    )
    assert not instrumented.spans()
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "It ships on Monday."
    _assert_answer(instrumented.span(), chunks[0].id, text, stream=True)


def test_openai_chat_with_raw_response_stream_not_changed(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """The raw body is the application's to read: genai-audit does not ask for the usage chunk there."""
    fake.script(Reply(text="Yes."))
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True  # type: ignore[arg-type]
    )
    chunks = list(raw.parse())
    assert all(c.usage is None for c in chunks)
    a = instrumented.span().attributes
    assert a[sc.RESPONSE_ID] == chunks[0].id
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)


def test_openai_chat_with_streaming_response(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """with_streaming_response: the span ends with the parsed answer, inside the context manager."""
    fake.script(Reply(text="It is in Leeds."))
    with oai.chat.completions.with_streaming_response.create(model="gpt-4o", messages=USER) as response:  # type: ignore[arg-type]
        completion = response.parse()
        assert completion.choices[0].message.content == "It is in Leeds."
    _assert_answer(instrumented.span(), completion.id, "It is in Leeds.")


def test_openai_chat_with_streaming_response_lines(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """Reading the lines of a streamed call by hand ends the span when the response closes."""
    fake.script(Reply(text="Lines."))
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=USER, stream=True  # type: ignore[arg-type]
    ) as response:
        lines = [line for line in response.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        assert not instrumented.spans()
    span = instrumented.span()
    assert span.attributes[sc.REQUEST_STREAM] is True


def test_openai_embeddings_with_raw_response(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    fake.script(Reply(input_tokens=5))
    raw = oai.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hello there")
    result = raw.parse()
    a = instrumented.span().attributes
    assert a[sc.RESPONSE_MODEL] == result.model
    assert a[sc.USAGE_INPUT_TOKENS] == 5
    assert a[sc.EMBEDDINGS_DIMENSION_COUNT] == len(result.data[0].embedding)


@requires_sdk("openai.responses")
def test_openai_responses_with_raw_response(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    fake.script(Reply(text="Done."))
    raw = oai.responses.with_raw_response.create(model="gpt-4o", input="Say done")
    response = raw.parse()
    a = instrumented.span().attributes
    assert a[sc.RESPONSE_ID] == response.id
    assert a[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Done."  # type: ignore[arg-type]


async def test_openai_async_with_raw_response(instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake) -> None:
    fake.script(Reply(text="Async answer."))
    raw = await aoai.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    completion = raw.parse()
    _assert_answer(instrumented.span(), completion.id, "Async answer.")


async def test_openai_async_with_raw_response_stream(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake
) -> None:
    fake.script(Reply(text="Async stream."))
    raw = await aoai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}  # type: ignore[arg-type]
    )
    chunks = [c async for c in raw.parse()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    _assert_answer(instrumented.span(), chunks[0].id, text, stream=True)


async def test_openai_async_with_streaming_response(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake
) -> None:
    fake.script(Reply(text="Async streamed."))
    async with aoai.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=USER  # type: ignore[arg-type]
    ) as response:
        completion = await response.parse()
    _assert_answer(instrumented.span(), completion.id, "Async streamed.")


def test_anthropic_with_raw_response(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    fake.script(Reply(text="Bonjour."))
    raw = claude.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    message = raw.parse()
    assert message.content[0].text == "Bonjour."  # type: ignore[union-attr]
    _assert_answer(instrumented.span(), message.id, "Bonjour.")


def test_anthropic_with_raw_response_stream(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    fake.script(Reply(text="Streamed bonjour."))
    raw = claude.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=USER, stream=True  # type: ignore[arg-type]
    )
    events = list(raw.parse())
    message_id = next(e.message.id for e in events if e.type == "message_start")
    _assert_answer(instrumented.span(), message_id, "Streamed bonjour.", stream=True)


async def test_anthropic_async_with_streaming_response(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake
) -> None:
    fake.script(Reply(text="Async bonjour."))
    async with aclaude.messages.with_streaming_response.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=USER  # type: ignore[arg-type]
    ) as response:
        message = await response.parse()
    _assert_answer(instrumented.span(), message.id, "Async bonjour.")


def test_raw_response_dropped_unread_ends_span(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """A streamed raw response dropped without reading still ends its span once."""
    fake.script(Reply(text="Never read."))
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True  # type: ignore[arg-type]
    )
    raw.http_response.close()
    del raw
    import gc

    gc.collect()
    assert len(instrumented.spans()) == 1


@pytest.mark.parametrize("with_to", [False, pytest.param(True, marks=requires_sdk("openai.parse_to_dict"))])
def test_raw_response_parse_to_dict(instrumented: Telemetry, oai: openai.OpenAI, fake, with_to: bool) -> None:
    """``parse(to=dict)`` gives the application a dict; the span still gets the typed answer."""
    fake.script(Reply(text="As a dict."))
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    body = raw.parse(to=dict) if with_to else raw.parse()
    response_id = body["id"] if with_to else body.id  # type: ignore[index,union-attr]
    _assert_answer(instrumented.span(), response_id, "As a dict.")
