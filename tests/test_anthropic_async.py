"""Anthropic SDK, asynchronous calls: span shape, system prompt, tool use, streams, metrics and errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from genai_audit import semconv as sc
from genai_audit.testing.fake_provider import Error, FakeProvider, Reply, ToolCall
from tests.conftest import Telemetry
from tests.sdk_support import http_client


@pytest.fixture
def aclaude(fake: FakeProvider) -> anthropic.AsyncAnthropic:
    """As in conftest, sharing one TLS context (loading CA certificates per client dominates run time)."""
    return anthropic.AsyncAnthropic(api_key="test", base_url=fake.anthropic_base_url, max_retries=0,
                                    http_client=http_client(anthropic, asynchronous=True))


MODEL = "claude-sonnet-4-6"
TOOLS = [{"name": "lookup_order", "description": "Find an order",
          "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


# --------------------------------------------------------------------------- #
# messages.create
# --------------------------------------------------------------------------- #


async def test_async_messages_create_span_attributes(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """One CLIENT span 'chat <model>': provider, server, params, response id/model/finish, usage with cache."""
    fake.script(Reply(text="Hi Bob", input_tokens=20, output_tokens=4, cached_input_tokens=10))
    message = await aclaude.messages.create(model=MODEL, max_tokens=64, system="Be kind.", stop_sequences=["##"],
                                            messages=[{"role": "user", "content": "hey"}])
    span = instrumented.span()
    a = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert a[sc.OPERATION_NAME] == "chat"
    assert a[sc.PROVIDER_NAME] == "anthropic"
    assert a[sc.REQUEST_MODEL] == MODEL
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert a[sc.SERVER_PORT] == int(fake.url.rsplit(":", 1)[1])
    assert a[sc.REQUEST_MAX_TOKENS] == 64
    assert a[sc.REQUEST_STOP_SEQUENCES] == ("##",)
    assert a[sc.REQUEST_STREAM] is False
    assert a[sc.OUTPUT_TYPE] == "text"
    assert a[sc.RESPONSE_ID] == message.id
    assert a[sc.RESPONSE_MODEL] == message.model == MODEL
    assert a[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[sc.USAGE_INPUT_TOKENS] == 20 + 10, "the convention counts cached input too"
    assert a[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 10
    assert a[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] == 0
    assert a[sc.USAGE_OUTPUT_TOKENS] == 4
    assert span.status.status_code is StatusCode.UNSET
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be kind."}]
    assert content(span, sc.INPUT_MESSAGES) == [{"role": "user", "parts": [{"type": "text", "content": "hey"}]}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hi Bob"}], "finish_reason": "end_turn"}]


async def test_async_system_prompt_as_blocks_is_recorded(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic
) -> None:
    """A system prompt given as text blocks is recorded block by block as system instructions."""
    system = [{"type": "text", "text": "You are a support bot."},
              {"type": "text", "text": "Policy: refunds within 30 days.", "cache_control": {"type": "ephemeral"}}]
    await aclaude.messages.create(model=MODEL, max_tokens=64, system=system,  # type: ignore[arg-type]
                                  messages=[{"role": "user", "content": "refund?"}])
    span = instrumented.span()
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [
        {"type": "text", "content": "You are a support bot."},
        {"type": "text", "content": "Policy: refunds within 30 days."},
    ]
    assert "support bot" not in span.attributes[sc.INPUT_MESSAGES], "the system prompt is not an input message"


async def test_async_tool_use_round_trip_recorded(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """tool_use output, and tool_use plus tool_result blocks sent back, become tool_call/tool_call_response parts."""
    fake.script(Reply(text="Let me check.", tool_calls=[ToolCall("lookup_order", {"id": "7"}, id="toolu_1")]),
                Reply(text="Shipped."))
    first = await aclaude.messages.create(model=MODEL, max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                          messages=[{"role": "user", "content": "order 7?"}])
    await aclaude.messages.create(model=MODEL, max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                  messages=[
                                      {"role": "user", "content": "order 7?"},
                                      {"role": "assistant", "content": first.content},
                                      {"role": "user", "content": [
                                          {"type": "tool_result", "tool_use_id": "toolu_1",
                                           "content": [{"type": "text", "text": "status: shipped"}]},
                                      ]},
                                  ])
    one, two = instrumented.spans()
    assert one.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert content(one, sc.OUTPUT_MESSAGES) == [{
        "role": "assistant",
        "parts": [{"type": "text", "content": "Let me check."},
                  {"type": "tool_call", "id": "toolu_1", "name": "lookup_order", "arguments": {"id": "7"}}],
        "finish_reason": "tool_use",
    }]
    assert content(one, sc.TOOL_DEFINITIONS) == [{
        "type": "function", "name": "lookup_order", "description": "Find an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    }]
    assert content(two, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "order 7?"}]},
        {"role": "assistant", "parts": [
            {"type": "text", "content": "Let me check."},
            {"type": "tool_call", "id": "toolu_1", "name": "lookup_order", "arguments": {"id": "7"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "toolu_1",
                                    "response": ["status: shipped"]}]},
    ]


async def test_async_tool_result_error_flag_recorded(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic
) -> None:
    """A tool_result marked is_error keeps the flag on its tool_call_response part."""
    await aclaude.messages.create(model=MODEL, max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                  messages=[
                                      {"role": "user", "content": "order 7?"},
                                      {"role": "assistant", "content": [
                                          {"type": "tool_use", "id": "toolu_2", "name": "lookup_order",
                                           "input": {"id": "7"}}]},
                                      {"role": "user", "content": [
                                          {"type": "tool_result", "tool_use_id": "toolu_2", "content": "timeout",
                                           "is_error": True}]},
                                  ])
    history = content(instrumented.span(), sc.INPUT_MESSAGES)
    assert history[2] == {"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "toolu_2", "response": "timeout", "is_error": True}]}


# --------------------------------------------------------------------------- #
# streams
# --------------------------------------------------------------------------- #


async def test_async_create_stream_true_records_text_usage_and_first_chunk(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """messages.create(stream=True) (async): events pass through, the span has text, usage and first-chunk time."""
    fake.script(Reply(text="a streamed reply", input_tokens=5, output_tokens=3, cached_input_tokens=2, chunk_size=4))
    stream = await aclaude.messages.create(model=MODEL, max_tokens=64, stream=True, system="Be brief.",
                                           messages=[{"role": "user", "content": "go"}])
    events = [event async for event in stream]
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"
    span = instrumented.span()
    a = span.attributes
    assert span.name == f"chat {MODEL}"
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.RESPONSE_ID] == events[0].message.id
    assert a[sc.RESPONSE_MODEL] == MODEL
    assert a[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[sc.USAGE_INPUT_TOKENS] == 5 + 2
    assert a[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 2
    assert a[sc.USAGE_OUTPUT_TOKENS] == 3
    assert a[sc.AUDIT_STREAM_COMPLETED] is True
    assert a[sc.AUDIT_STREAM_CHUNKS] == len(events)
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "a streamed reply"}], "finish_reason": "end_turn"}]
    metrics = instrumented.metrics()
    (first_chunk,) = metrics[sc.METRIC_TIME_TO_FIRST_CHUNK]
    assert first_chunk.count == 1
    assert first_chunk.attributes[sc.PROVIDER_NAME] == "anthropic"
    usage = {p.attributes[sc.TOKEN_TYPE]: p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert usage == {"input": 7, "output": 3}


async def test_async_messages_stream_manager_records_text_and_tool_use(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """messages.stream(...) (async): text_stream consumption is seen; tool input is rebuilt from JSON deltas."""
    fake.script(Reply(text="Let me check.", tool_calls=[ToolCall("lookup_order", {"id": "9"}, id="toolu_9")],
                      input_tokens=8, output_tokens=6, chunk_size=3))
    async with aclaude.messages.stream(model=MODEL, max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                       system="Be brief.", messages=[{"role": "user", "content": "order 9"}]) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Let me check."
    span = instrumented.span()
    a = span.attributes
    assert span.name == f"chat {MODEL}"
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.RESPONSE_ID] == final.id
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert a[sc.USAGE_INPUT_TOKENS] == 8
    assert a[sc.USAGE_OUTPUT_TOKENS] == 6
    assert a[sc.AUDIT_STREAM_COMPLETED] is True
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "lookup_order"
    assert content(span, sc.OUTPUT_MESSAGES) == [{
        "role": "assistant",
        "parts": [{"type": "text", "content": "Let me check."},
                  {"type": "tool_call", "id": "toolu_9", "name": "lookup_order", "arguments": {"id": "9"}}],
        "finish_reason": "tool_use",
    }]
    assert sc.METRIC_TIME_TO_FIRST_CHUNK in instrumented.metrics()


async def test_async_messages_stream_until_done_is_one_span(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """Consuming messages.stream() through until_done() also yields exactly one completed span."""
    fake.script(Reply(text="done text"))
    async with aclaude.messages.stream(model=MODEL, max_tokens=64,
                                       messages=[{"role": "user", "content": "x"}]) as stream:
        await stream.until_done()
    span = instrumented.span()
    assert span.attributes[sc.AUDIT_STREAM_COMPLETED] is True
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": "done text"}]


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("error", "exc_type"),
    [
        pytest.param(Error(429, "slow down", retry_after=0), anthropic.RateLimitError, id="429"),
        pytest.param(Error(500, "boom"), anthropic.InternalServerError, id="500"),
        pytest.param(Error(529, "Overloaded", error_type="overloaded_error"), anthropic.APIStatusError, id="529"),
    ],
)
async def test_async_create_error_is_recorded_and_reraised(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider, error: Error, exc_type: type
) -> None:
    """A provider error propagates unchanged from messages.create; the span has error.type, code and ERROR."""
    fake.script(error)
    with pytest.raises(exc_type) as caught:
        await aclaude.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == error.status
    span = instrumented.span()
    qualname = type(caught.value).__qualname__
    assert span.name == f"chat {MODEL}"
    assert span.attributes[sc.ERROR_TYPE] == qualname
    assert span.attributes["http.response.status_code"] == error.status
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    metrics = instrumented.metrics()
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes[sc.ERROR_TYPE] == qualname
    assert sc.METRIC_TOKEN_USAGE not in metrics


async def test_async_error_entering_stream_manager_is_recorded(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """A provider error when entering messages.stream (async) propagates and is recorded as an error span."""
    fake.script(Error(529, "Overloaded", error_type="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with aclaude.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "x"}]):
            pytest.fail("the block must not run")
    assert caught.value.status_code == 529
    span = instrumented.span()
    assert span.attributes[sc.REQUEST_STREAM] is True
    assert span.attributes["http.response.status_code"] == 529
    assert span.attributes[sc.ERROR_TYPE] == type(caught.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR


async def test_async_stream_true_request_error_is_recorded(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """An error answering create(stream=True) (async) propagates from the call and marks the span."""
    fake.script(Error(429, "slow down", retry_after=0))
    with pytest.raises(anthropic.RateLimitError):
        await aclaude.messages.create(model=MODEL, max_tokens=64, stream=True,
                                      messages=[{"role": "user", "content": "x"}])
    span = instrumented.span()
    assert span.attributes[sc.ERROR_TYPE] == "RateLimitError"
    assert span.status.status_code is StatusCode.ERROR


# --------------------------------------------------------------------------- #
# metrics and concurrency
# --------------------------------------------------------------------------- #


async def test_async_metrics_token_usage_and_duration(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic, fake: FakeProvider
) -> None:
    """gen_ai.client.token.usage per token type and gen_ai.client.operation.duration; no first-chunk metric."""
    fake.script(Reply(text="ok", input_tokens=12, output_tokens=5))
    await aclaude.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "x"}])
    metrics = instrumented.metrics()
    points = {p.attributes[sc.TOKEN_TYPE]: p for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert {kind: p.sum for kind, p in points.items()} == {"input": 12, "output": 5}
    for point in points.values():
        assert point.attributes[sc.PROVIDER_NAME] == "anthropic"
        assert point.attributes[sc.REQUEST_MODEL] == MODEL
        assert point.attributes[sc.OPERATION_NAME] == "chat"
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1
    assert duration.attributes[sc.RESPONSE_MODEL] == MODEL
    assert sc.METRIC_TIME_TO_FIRST_CHUNK not in metrics


async def test_async_concurrent_streams_get_separate_spans(
    instrumented: Telemetry, aclaude: anthropic.AsyncAnthropic
) -> None:
    """Streams consumed concurrently each end their own span, holding their own text."""

    async def ask(question: str) -> str:
        async with aclaude.messages.stream(model=MODEL, max_tokens=64,
                                           messages=[{"role": "user", "content": question}]) as stream:
            return "".join([piece async for piece in stream.text_stream])

    questions = [f"question number {i}" for i in range(4)]
    answers = await asyncio.gather(*(ask(q) for q in questions))
    assert answers == [f"echo: {q}" for q in questions]
    spans = instrumented.spans()
    assert len(spans) == 4
    assert all(span.parent is None for span in spans)
    for span in spans:
        asked = content(span, sc.INPUT_MESSAGES)[0]["parts"][0]["content"]
        assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": f"echo: {asked}"}]
