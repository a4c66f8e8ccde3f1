"""OpenAI SDK, asynchronous calls: span shape, content, metrics, streams and errors (twins of the sync tests)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.testing.fake_provider import Error, FakeProvider, Reply, ToolCall
from tests.conftest import Telemetry
from tests.sdk_support import http_client, requires_sdk


@pytest.fixture
def aoai(fake: FakeProvider) -> openai.AsyncOpenAI:
    """As in conftest, sharing one TLS context (loading CA certificates per client dominates run time)."""
    return openai.AsyncOpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0,
                              http_client=http_client(openai, asynchronous=True))


SYSTEM = {"role": "system", "content": "You are a support bot."}
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]
RESPONSES_TOOLS = [{"type": "function", "name": "lookup_order", "description": "Find an order",
                    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}]


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def port(fake: FakeProvider) -> int:
    return int(fake.url.rsplit(":", 1)[1])


# --------------------------------------------------------------------------- #
# chat.completions.create
# --------------------------------------------------------------------------- #


@requires_sdk("openai.service_tier")
async def test_async_chat_span_has_required_and_recommended_attributes(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """One CLIENT span 'chat gpt-4o' with operation, provider, server, request params, response and usage."""
    fake.script(Reply(text="Hello Ann", input_tokens=11, output_tokens=3, cached_input_tokens=4))
    result = await aoai.chat.completions.create(
        model="gpt-4o", messages=[SYSTEM, {"role": "user", "content": "Hi, I'm Ann"}], temperature=0.3, top_p=0.9,
        max_tokens=50, seed=7, stop=["END"], frequency_penalty=0.1, presence_penalty=0.2, n=2,
        service_tier="default",
    )
    assert result.choices[0].message.content == "Hello Ann"
    span = instrumented.span()
    a = span.attributes
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert a[sc.OPERATION_NAME] == "chat"
    assert a[sc.PROVIDER_NAME] == "openai"
    assert a[sc.REQUEST_MODEL] == "gpt-4o"
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert a[sc.SERVER_PORT] == port(fake)
    assert a[sc.REQUEST_TEMPERATURE] == 0.3
    assert a[sc.REQUEST_TOP_P] == 0.9
    assert a[sc.REQUEST_MAX_TOKENS] == 50
    assert a[sc.REQUEST_SEED] == 7
    assert a[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[sc.REQUEST_FREQUENCY_PENALTY] == 0.1
    assert a[sc.REQUEST_PRESENCE_PENALTY] == 0.2
    assert a[sc.REQUEST_CHOICE_COUNT] == 2
    assert a[sc.REQUEST_STREAM] is False
    assert a[sc.OPENAI_REQUEST_SERVICE_TIER] == "default"
    assert a[sc.OUTPUT_TYPE] == "text"
    assert a[sc.RESPONSE_ID] == result.id
    assert a[sc.RESPONSE_MODEL] == result.model == "gpt-4o"
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert a[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == result.system_fingerprint
    assert a[sc.USAGE_INPUT_TOKENS] == 11
    assert a[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens == 6  # type: ignore[union-attr]  # 3 x n=2
    assert a[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert a[sc.AUDIT_CONTENT_CAPTURED] is True
    assert sc.ERROR_TYPE not in a
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK not in a
    assert span.status.status_code is StatusCode.UNSET
    assert len(content(span, sc.OUTPUT_MESSAGES)) == 2


async def test_async_chat_content_is_full_prompt_chain_in_message_parts(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """System prompt, the tool call sent back, its tool result and the tool definitions are all recorded."""
    fake.script(Reply(text="It shipped."))
    history = [
        SYSTEM,
        {"role": "user", "content": "Where is order 42?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "42"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
        {"role": "user", "content": [{"type": "text", "text": "Retrieved doc: returns within 30 days"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
    ]
    await aoai.chat.completions.create(model="gpt-4o", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    span = instrumented.span()
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are a support bot."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_order",
                                         "arguments": {"id": "42"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": '{"status": "shipped"}'}]},
        {"role": "user", "parts": [{"type": "text", "content": "Retrieved doc: returns within 30 days"},
                                   {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"}]},
    ]
    assert content(span, sc.TOOL_DEFINITIONS) == [{
        "type": "function", "name": "lookup_order", "description": "Find an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    }]
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It shipped."}], "finish_reason": "stop"}]


async def test_async_tool_call_response_recorded(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """The model's tool calls become tool_call parts with parsed arguments; finish reason tool_calls."""
    fake.script(Reply(tool_calls=[ToolCall("lookup_order", {"id": "42"}, id="call_9"),
                                  ToolCall("lookup_order", {"id": "43"}, id="call_10")]))
    await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "orders 42, 43?"}],
                                       tools=TOOLS)  # type: ignore[arg-type]
    span = instrumented.span()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": "call_9", "name": "lookup_order", "arguments": {"id": "42"}},
        {"type": "tool_call", "id": "call_10", "name": "lookup_order", "arguments": {"id": "43"}},
    ]


@requires_sdk("openai.chat_helpers")
async def test_async_parse_is_traced_with_json_output(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """chat.completions.parse gets one span with output type json and the JSON text as output."""

    class Order(BaseModel):
        id: str
        status: str

    fake.script(Reply(text='{"id": "42", "status": "shipped"}', input_tokens=6, output_tokens=8))
    parsed = await aoai.chat.completions.parse(model="gpt-4o", messages=[{"role": "user", "content": "order?"}],
                                               response_format=Order)
    assert parsed.choices[0].message.parsed == Order(id="42", status="shipped")
    span = instrumented.span()
    assert span.name == "chat gpt-4o"
    assert span.attributes[sc.OUTPUT_TYPE] == "json"
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 8
    (message,) = content(span, sc.OUTPUT_MESSAGES)
    assert json.loads(message["parts"][0]["content"]) == {"id": "42", "status": "shipped"}


# --------------------------------------------------------------------------- #
# streams
# --------------------------------------------------------------------------- #


async def test_async_stream_records_output_usage_and_time_to_first_chunk(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """A consumed async stream gives one span with joined text and tool call, usage and time to first chunk."""
    fake.script(Reply(text="streamed answer here", tool_calls=[ToolCall("lookup_order", {"id": "5"}, id="call_5")],
                      input_tokens=9, output_tokens=4, chunk_size=3))
    stream = await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "go"}],
                                                tools=TOOLS, stream=True)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk must stay hidden"
    span = instrumented.span()
    a = span.attributes
    assert span.name == "chat gpt-4o"
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.USAGE_INPUT_TOKENS] == 9
    assert a[sc.USAGE_OUTPUT_TOKENS] == 4
    assert a[sc.RESPONSE_ID] == chunks[0].id
    assert a[sc.RESPONSE_MODEL] == "gpt-4o"
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert a[sc.AUDIT_STREAM_COMPLETED] is True
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert content(span, sc.OUTPUT_MESSAGES) == [{
        "role": "assistant",
        "parts": [{"type": "text", "content": "streamed answer here"},
                  {"type": "tool_call", "id": "call_5", "name": "lookup_order", "arguments": {"id": "5"}}],
        "finish_reason": "tool_calls",
    }]
    metrics = instrumented.metrics()
    (first_chunk,) = metrics[sc.METRIC_TIME_TO_FIRST_CHUNK]
    assert first_chunk.count == 1
    assert first_chunk.sum == pytest.approx(a[sc.RESPONSE_TIME_TO_FIRST_CHUNK])
    assert first_chunk.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.sum >= first_chunk.sum
    usage = {p.attributes[sc.TOKEN_TYPE]: p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert usage == {"input": 9, "output": 4}


@requires_sdk("openai.chat_helpers")
async def test_async_stream_helper_is_one_span(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """chat.completions.stream(...) (async) is traced as one chat span with the final text and usage."""
    fake.script(Reply(text="helper text", input_tokens=3, output_tokens=2))
    async with aoai.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "go"}]) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "helper text"
    span = instrumented.span()
    assert span.name == "chat gpt-4o"
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 3
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": "helper text"}]


# --------------------------------------------------------------------------- #
# embeddings and responses
# --------------------------------------------------------------------------- #


async def test_async_embeddings_span(instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider) -> None:
    """embeddings.create (async): operation embeddings, dimensions, encoding format, input tokens and text."""
    fake.script(Reply(input_tokens=2))
    result = await aoai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=16,
                                          encoding_format="float")
    assert len(result.data[0].embedding) == 16
    span = instrumented.span()
    a = span.attributes
    assert span.name == "embeddings text-embedding-3-small"
    assert span.kind is SpanKind.CLIENT
    assert a[sc.OPERATION_NAME] == "embeddings"
    assert a[sc.PROVIDER_NAME] == "openai"
    assert a[sc.SERVER_PORT] == port(fake)
    assert a[sc.EMBEDDINGS_DIMENSION_COUNT] == 16
    assert a[sc.REQUEST_ENCODING_FORMATS] == ("float",)
    assert a[sc.USAGE_INPUT_TOKENS] == 2
    assert a[sc.RESPONSE_MODEL] == "text-embedding-3-small"
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "alpha"}]},
        {"role": "user", "parts": [{"type": "text", "content": "beta"}]},
    ]
    usage = {p.attributes[sc.TOKEN_TYPE]: p.sum for p in instrumented.metrics()[sc.METRIC_TOKEN_USAGE]}
    assert usage == {"input": 2}


@requires_sdk("openai.responses")
async def test_async_responses_create_records_instructions_tools_and_tool_round_trip(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """responses.create (async): instructions, tool definitions, function call and its output sent back."""
    fake.script(Reply(text="It shipped.", input_tokens=15, output_tokens=3, response_id="resp_42"))
    history = [
        {"role": "user", "content": "Where is order 42?"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": '{"id": "42"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"status": "shipped"}'},
    ]
    response = await aoai.responses.create(model="gpt-4.1", instructions="Be brief.", input=history,
                                           tools=RESPONSES_TOOLS, max_output_tokens=100, temperature=0.5)
    span = instrumented.span()
    a = span.attributes
    assert span.name == "chat gpt-4.1"
    assert a[sc.OPERATION_NAME] == "chat"
    assert a[sc.REQUEST_MAX_TOKENS] == 100
    assert a[sc.REQUEST_TEMPERATURE] == 0.5
    assert a[sc.REQUEST_STREAM] is False
    assert a[sc.RESPONSE_ID] == response.id == "resp_42"
    assert a[sc.RESPONSE_MODEL] == "gpt-4.1"
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.USAGE_INPUT_TOKENS] == 15
    assert a[sc.USAGE_OUTPUT_TOKENS] == 3
    assert content(span, sc.SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "Be brief."}]
    assert content(span, sc.INPUT_MESSAGES) == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup_order",
                                         "arguments": {"id": "42"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": '{"status": "shipped"}'}]},
    ]
    assert content(span, sc.TOOL_DEFINITIONS)[0]["name"] == "lookup_order"
    assert content(span, sc.OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It shipped."}], "finish_reason": "stop"}]


@requires_sdk("openai.responses")
async def test_async_responses_tool_call_output(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """A Responses API function call in the output is recorded as a tool_call part."""
    fake.script(Reply(tool_calls=[ToolCall("lookup_order", {"id": "8"}, id="call_8")]))
    await aoai.responses.create(model="gpt-4.1", input="order 8?", tools=RESPONSES_TOOLS)
    span = instrumented.span()
    assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [
        {"type": "tool_call", "id": "call_8", "name": "lookup_order", "arguments": {"id": "8"}}]


@requires_sdk("openai.responses")
async def test_async_responses_streams_create_and_helper(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """responses.create(stream=True) and responses.stream() (async) each give one span with output and usage."""
    fake.script(Reply(text="first streamed", input_tokens=4, output_tokens=2),
                Reply(text="second streamed", input_tokens=5, output_tokens=2))
    events = [event async for event in await aoai.responses.create(model="gpt-4.1", input="one", stream=True)]
    async with aoai.responses.stream(model="gpt-4.1", input="two") as stream:
        final = await stream.get_final_response()
    first, second = instrumented.spans()
    for span, text, tokens in ((first, "first streamed", 4), (second, "second streamed", 5)):
        assert span.name == "chat gpt-4.1"
        assert span.attributes[sc.REQUEST_STREAM] is True
        assert span.attributes[sc.USAGE_INPUT_TOKENS] == tokens
        assert span.attributes[sc.RESPONSE_FINISH_REASONS] == ("stop",)
        assert span.attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert content(span, sc.OUTPUT_MESSAGES)[0]["parts"] == [{"type": "text", "content": text}]
    assert first.attributes[sc.AUDIT_STREAM_CHUNKS] == len(events)
    assert second.attributes[sc.RESPONSE_ID] == final.id
    assert len(instrumented.metrics()[sc.METRIC_TIME_TO_FIRST_CHUNK]) == 1, "one series, two points"
    assert instrumented.metrics()[sc.METRIC_TIME_TO_FIRST_CHUNK][0].count == 2


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("error", "exc_type"),
    [
        pytest.param(Error(429, "slow down", retry_after=0), openai.RateLimitError, id="429"),
        pytest.param(Error(500, "boom"), openai.InternalServerError, id="500"),
        pytest.param(Error(400, "bad request"), openai.BadRequestError, id="400"),
    ],
)
async def test_async_provider_error_is_recorded_and_reraised(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider, error: Error, exc_type: type
) -> None:
    """A provider error propagates unchanged; the span has error.type, status code, ERROR status, one event."""
    fake.script(error)
    with pytest.raises(exc_type) as caught:
        await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == error.status
    span = instrumented.span()
    assert span.name == "chat gpt-4o"
    assert span.attributes[sc.ERROR_TYPE] == exc_type.__qualname__
    assert span.attributes["http.response.status_code"] == error.status
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == f"{exc_type.__module__}.{exc_type.__qualname__}"
    assert sc.OUTPUT_MESSAGES not in span.attributes
    metrics = instrumented.metrics()
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes[sc.ERROR_TYPE] == exc_type.__qualname__
    assert sc.METRIC_TOKEN_USAGE not in metrics


async def test_async_stream_request_error_is_recorded(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """An error answering a stream request propagates from create(); the span is an error span."""
    fake.script(Error(503, "overloaded"))
    with pytest.raises(openai.APIStatusError) as caught:
        await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True)
    assert caught.value.status_code == 503
    span = instrumented.span()
    assert span.attributes[sc.REQUEST_STREAM] is True
    assert span.attributes["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR


async def test_async_connection_error_is_recorded(instrumented: Telemetry, fake: FakeProvider) -> None:
    """A connection failure (nothing listening) propagates as APIConnectionError and marks the span."""
    client = openai.AsyncOpenAI(api_key="test", base_url="http://127.0.0.1:9/v1", max_retries=0,
                                http_client=http_client(openai, asynchronous=True))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    span = instrumented.span()
    assert span.attributes[sc.ERROR_TYPE] == "APIConnectionError"
    assert span.attributes[sc.SERVER_PORT] == 9
    assert span.status.status_code is StatusCode.ERROR


# --------------------------------------------------------------------------- #
# metrics, context, settings
# --------------------------------------------------------------------------- #


async def test_async_metrics_token_usage_and_duration(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI, fake: FakeProvider
) -> None:
    """gen_ai.client.token.usage per token type and gen_ai.client.operation.duration, no time to first chunk."""
    fake.script(Reply(text="ok", input_tokens=12, output_tokens=5))
    await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    metrics = instrumented.metrics()
    points = {p.attributes[sc.TOKEN_TYPE]: p for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert {kind: p.sum for kind, p in points.items()} == {"input": 12, "output": 5}
    for point in points.values():
        assert point.attributes[sc.OPERATION_NAME] == "chat"
        assert point.attributes[sc.PROVIDER_NAME] == "openai"
        assert point.attributes[sc.REQUEST_MODEL] == "gpt-4o"
        assert point.attributes[sc.RESPONSE_MODEL] == "gpt-4o"
        assert point.attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1
    assert duration.sum > 0
    assert sc.ERROR_TYPE not in duration.attributes
    assert sc.METRIC_TIME_TO_FIRST_CHUNK not in metrics


async def test_async_concurrent_calls_get_separate_unnested_spans(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI
) -> None:
    """Calls awaited concurrently each get their own span with their own content, none a child of another."""
    prompts = [f"question number {i}" for i in range(5)]
    results = await asyncio.gather(*(
        aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": p}]) for p in prompts
    ))
    assert [r.choices[0].message.content for r in results] == [f"echo: {p}" for p in prompts]
    spans = instrumented.spans()
    assert len(spans) == 5
    assert all(span.parent is None for span in spans)
    for span in spans:
        asked = content(span, sc.INPUT_MESSAGES)[0]["parts"][0]["content"]
        answered = content(span, sc.OUTPUT_MESSAGES)[0]["parts"][0]["content"]
        assert answered == f"echo: {asked}"
        assert span.attributes[sc.RESPONSE_ID] in {r.id for r in results}


async def test_async_call_span_is_child_of_application_span(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI
) -> None:
    """A call made inside the application's span is recorded as its child."""
    tracer = instrumented.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    llm, app = instrumented.spans()
    assert app.name == "handle request"
    assert llm.parent is not None
    assert llm.parent.span_id == parent.get_span_context().span_id
    assert llm.context.trace_id == app.context.trace_id


@pytest.mark.parametrize("settings", [Settings(capture_content=False)])
async def test_async_content_capture_off_records_no_content(
    instrumented: Telemetry, aoai: openai.AsyncOpenAI
) -> None:
    """With capture off, no prompt or response text reaches the async call's span."""
    stream = await aoai.chat.completions.create(model="gpt-4o", stream=True,
                                                messages=[{"role": "user", "content": "secret plan"}])
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "echo: secret plan"
    a = instrumented.span().attributes
    assert sc.INPUT_MESSAGES not in a
    assert sc.OUTPUT_MESSAGES not in a
    assert a[sc.AUDIT_CONTENT_CAPTURED] is False
    assert not any("secret plan" in str(v) for v in a.values())
    assert a[sc.USAGE_OUTPUT_TOKENS] == 3


async def test_async_suppressed_context_is_not_traced(instrumented: Telemetry, aoai: openai.AsyncOpenAI) -> None:
    """Async calls made while instrumentation is suppressed produce no span."""
    with suppress_instrumentation():
        await aoai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert instrumented.spans() == []
