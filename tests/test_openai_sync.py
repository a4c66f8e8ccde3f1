"""OpenAI SDK, synchronous calls: span shape, content, metrics, errors, uninstrument."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.testing.fake_provider import Error, Reply, ToolCall
from tests.conftest import Telemetry
from tests.sdk_support import http_client, requires_sdk

SYSTEM = {"role": "system", "content": "You are a support bot."}
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]


def test_chat_span_has_required_and_recommended_attributes(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """One CLIENT span named '{operation} {model}' with request, response and usage attributes."""
    fake.script(Reply(text="Hello Ann", input_tokens=11, output_tokens=3, cached_input_tokens=4))
    result = oai.chat.completions.create(
        model="gpt-4o", messages=[SYSTEM, {"role": "user", "content": "Hi, I'm Ann"}], temperature=0.3, top_p=0.9,
        max_tokens=50, seed=7, stop=["END"], frequency_penalty=0.1, presence_penalty=0.2, n=2,
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
    assert a[sc.SERVER_PORT] == int(fake.url.rsplit(":", 1)[1])
    assert a[sc.REQUEST_TEMPERATURE] == 0.3
    assert a[sc.REQUEST_TOP_P] == 0.9
    assert a[sc.REQUEST_MAX_TOKENS] == 50
    assert a[sc.REQUEST_SEED] == 7
    assert a[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[sc.REQUEST_FREQUENCY_PENALTY] == 0.1
    assert a[sc.REQUEST_PRESENCE_PENALTY] == 0.2
    assert a[sc.REQUEST_CHOICE_COUNT] == 2
    assert a[sc.REQUEST_STREAM] is False
    assert a[sc.OUTPUT_TYPE] == "text"
    assert a[sc.RESPONSE_ID] == result.id
    assert a[sc.RESPONSE_MODEL] == result.model
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert a[sc.USAGE_INPUT_TOKENS] == result.usage.prompt_tokens  # type: ignore[union-attr]
    assert a[sc.USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens  # type: ignore[union-attr]
    assert a[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert span.status.status_code is StatusCode.UNSET


def test_chat_content_is_full_prompt_chain_in_message_parts(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """System prompt, tool call sent back, tool result and tool definitions are all recorded."""
    fake.script(Reply(text="It shipped."))
    history = [
        SYSTEM,
        {"role": "user", "content": "Where is order 42?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "42"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
        {"role": "user", "content": [{"type": "text", "text": "Retrieved doc: returns within 30 days"}]},
    ]
    oai.chat.completions.create(model="gpt-4o", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    a = instrumented.span().attributes
    messages = json.loads(a[sc.INPUT_MESSAGES])  # type: ignore[arg-type]
    assert messages[0] == {"role": "system", "parts": [{"type": "text", "content": "You are a support bot."}]}
    assert messages[2]["parts"] == [{"type": "tool_call", "id": "call_1", "name": "lookup_order",
                                     "arguments": {"id": "42"}}]
    assert messages[3] == {"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "call_1", "response": '{"status": "shipped"}'}]}
    assert messages[4]["parts"][0]["content"] == "Retrieved doc: returns within 30 days"
    tools = json.loads(a[sc.TOOL_DEFINITIONS])  # type: ignore[arg-type]
    assert tools[0]["name"] == "lookup_order"
    assert tools[0]["parameters"]["properties"] == {"id": {"type": "string"}}
    output = json.loads(a[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
    assert output == [{"role": "assistant", "parts": [{"type": "text", "content": "It shipped."}],
                       "finish_reason": "stop"}]


def test_tool_call_response_recorded(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """A model's tool call becomes a tool_call part with parsed arguments."""
    fake.script(Reply(tool_calls=[ToolCall("lookup_order", {"id": "42"}, id="call_9")]))
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "order 42?"}],
                                tools=TOOLS)  # type: ignore[arg-type]
    a = instrumented.span().attributes
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    output = json.loads(a[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
    assert output[0]["parts"] == [{"type": "tool_call", "id": "call_9", "name": "lookup_order",
                                   "arguments": {"id": "42"}}]


def test_stream_records_output_usage_and_time_to_first_chunk(
    instrumented: Telemetry, oai: openai.OpenAI, fake
) -> None:
    """A consumed stream gives one span with the joined text, usage and time to first chunk."""
    fake.script(Reply(text="streamed answer here", input_tokens=9, output_tokens=4))
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "go"}],
                                              stream=True))
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk must stay hidden"
    a = instrumented.span().attributes
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.USAGE_INPUT_TOKENS] == 9
    assert a[sc.USAGE_OUTPUT_TOKENS] == 4
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "streamed answer here"  # type: ignore[arg-type]
    metrics = instrumented.metrics()
    assert sc.METRIC_TIME_TO_FIRST_CHUNK in metrics


@requires_sdk("openai.chat_helpers")
def test_parse_is_traced(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """chat.completions.parse gets a span with output type json."""

    class Order(BaseModel):
        id: str
        status: str

    fake.script(Reply(text='{"id": "42", "status": "shipped"}'))
    parsed = oai.chat.completions.parse(model="gpt-4o", messages=[{"role": "user", "content": "order?"}],
                                        response_format=Order)
    assert parsed.choices[0].message.parsed == Order(id="42", status="shipped")
    a = instrumented.span().attributes
    assert a[sc.OUTPUT_TYPE] == "json"
    assert "shipped" in a[sc.OUTPUT_MESSAGES]  # type: ignore[operator]


def test_embeddings_span(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """embeddings.create: operation embeddings, dimension count, input tokens, input text."""
    oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=16)
    span = instrumented.span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 16
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 2
    assert "alpha" in span.attributes[sc.INPUT_MESSAGES]  # type: ignore[operator]


@requires_sdk("openai.responses")
def test_responses_create_and_stream(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """responses.create, plain and streamed, records instructions, input, output and usage."""
    oai.responses.create(model="gpt-4.1", instructions="Be brief.", input="Summarise ticket 7")
    with oai.responses.stream(model="gpt-4.1", input="Summarise ticket 8") as stream:
        final = stream.get_final_response()
    first, second = instrumented.spans()
    assert json.loads(first.attributes[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]  # type: ignore[arg-type]
    assert "echo: Summarise ticket 7" in first.attributes[sc.OUTPUT_MESSAGES]  # type: ignore[operator]
    assert second.attributes[sc.REQUEST_STREAM] is True
    assert second.attributes[sc.RESPONSE_ID] == final.id
    assert second.attributes[sc.USAGE_OUTPUT_TOKENS] == final.usage.output_tokens  # type: ignore[union-attr]
    assert "echo: Summarise ticket 8" in second.attributes[sc.OUTPUT_MESSAGES]  # type: ignore[operator]


def test_provider_error_is_recorded_and_reraised(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """A 429 propagates unchanged; the span has error.type, status code and ERROR status."""
    fake.script(Error(429, "slow down", retry_after=0))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 429
    span = instrumented.span()
    assert span.attributes[sc.ERROR_TYPE] == "RateLimitError"
    assert span.attributes["http.response.status_code"] == 429
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    duration = instrumented.metrics()[sc.METRIC_OPERATION_DURATION]
    assert duration[0].attributes[sc.ERROR_TYPE] == "RateLimitError"


def test_metrics_token_usage_and_duration(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """gen_ai.client.token.usage per token type, and gen_ai.client.operation.duration."""
    fake.script(Reply(text="ok", input_tokens=12, output_tokens=5))
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    metrics = instrumented.metrics()
    usage = {p.attributes[sc.TOKEN_TYPE]: p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert usage == {"input": 12, "output": 5}
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1
    assert duration.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_metric_points_link_to_the_calls_trace(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """Each point carries an exemplar of the call's span (the SDK's default trace_based exemplar filter)."""
    fake.script(Reply(text="ok", input_tokens=12, output_tokens=5), Reply(text="ok", input_tokens=1, output_tokens=1))
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    # another model: its points are not the first call's (a histogram bucket keeps one exemplar)
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}], stream=True)
    for _ in stream:
        pass
    spans = {span.context.span_id: span for span in instrumented.spans()}
    assert len(spans) == 2
    metrics = instrumented.metrics()
    names = (sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE, sc.METRIC_TIME_TO_FIRST_CHUNK)
    exemplars = [e for name in names for point in metrics[name] for e in point.exemplars]
    # duration: a point per call; first chunk: the streamed call's; tokens: 2 per call
    assert len(exemplars) == 3 + 4
    for exemplar in exemplars:
        span = spans[exemplar.span_id]
        assert exemplar.trace_id == span.context.trace_id


def test_exemplars_follow_the_sdks_filter(oai: openai.OpenAI, fake, settings: Settings) -> None:
    """With the exemplar filter off (OTEL_METRICS_EXEMPLAR_FILTER=always_off), points carry none."""
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from genai_audit.instrumentation.openai import OpenAIInstrumentor

    telemetry = Telemetry()
    telemetry.reader = InMemoryMetricReader()
    telemetry.meter_provider = MeterProvider(
        metric_readers=[telemetry.reader], exemplar_filter=AlwaysOffExemplarFilter()
    )
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, settings=settings
    )
    try:
        fake.script(Reply(text="ok", input_tokens=12, output_tokens=5))
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    finally:
        instrumentor.uninstrument()
    points = [p for points in telemetry.metrics().values() for p in points]
    assert len(points) == 3
    assert all(not p.exemplars for p in points)


def test_metric_points_keep_each_calls_own_attributes(instrumented: Telemetry, oai: openai.OpenAI, fake) -> None:
    """Calls to different models, and a failed one, land on separate points with their own attributes."""
    fake.script(
        Reply(text="a", input_tokens=1, output_tokens=2),
        Reply(text="b", input_tokens=10, output_tokens=20),
        Reply(text="c", input_tokens=100, output_tokens=200),
        Error(429, "slow down"),
    )
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4o"):
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    metrics = instrumented.metrics()
    usage = {
        (p.attributes[sc.REQUEST_MODEL], p.attributes[sc.TOKEN_TYPE]): p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]
    }
    assert usage == {
        ("gpt-4o", "input"): 101,
        ("gpt-4o", "output"): 202,
        ("gpt-4o-mini", "input"): 10,
        ("gpt-4o-mini", "output"): 20,
    }
    durations = {(p.attributes[sc.REQUEST_MODEL], p.attributes.get(sc.ERROR_TYPE)): p.count
                 for p in metrics[sc.METRIC_OPERATION_DURATION]}
    assert durations == {("gpt-4o", None): 2, ("gpt-4o-mini", None): 1, ("gpt-4o-mini", "RateLimitError"): 1}
    assert all(sc.ERROR_TYPE not in p.attributes for p in metrics[sc.METRIC_TOKEN_USAGE])


@pytest.mark.parametrize("settings", [Settings(capture_content=False)])
def test_content_capture_off_records_no_content(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """With capture off, no prompt or response text reaches the span."""
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "secret plan"}])
    a = instrumented.span().attributes
    assert sc.INPUT_MESSAGES not in a
    assert sc.OUTPUT_MESSAGES not in a
    assert a[sc.AUDIT_CONTENT_CAPTURED] is False
    assert not any("secret plan" in str(v) for v in a.values())


@pytest.mark.parametrize("settings", [Settings(max_content_chars=100)])
def test_oversized_content_is_cut_visibly(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """Content over the limit stays valid JSON and carries original length and SHA-256."""
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * 5000}])
    a = instrumented.span().attributes
    assert len(a[sc.INPUT_MESSAGES]) <= 101  # type: ignore[arg-type]
    json.loads(a[sc.INPUT_MESSAGES])  # type: ignore[arg-type]
    assert sc.INPUT_MESSAGES in a[sc.AUDIT_TRUNCATED]  # type: ignore[operator]
    assert a[sc.AUDIT_ORIGINAL_LENGTH_PREFIX + "input_messages"] > 5000  # type: ignore[operator]
    assert len(a[sc.AUDIT_SHA256_PREFIX + "input_messages"]) == 64  # type: ignore[arg-type]


def test_suppressed_context_is_not_traced(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """Calls made while instrumentation is suppressed (e.g. from an exporter) produce no span."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert instrumented.spans() == []


@pytest.mark.parametrize("key", ["keyed", "plain"])
def test_each_suppression_key_alone_is_honoured(instrumented: Telemetry, oai: openai.OpenAI, key: str) -> None:
    """Either key of is_instrumentation_enabled, set alone (as older libraries set the plain one), suppresses."""
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    from genai_audit.instrumentation import _core

    assert _core._SUPPRESSION_KEYS is not None  # the current context is read once per call
    name = _core._SUPPRESSION_KEYS[0] if key == "keyed" else "suppress_instrumentation"
    token = context.attach(context.set_value(name, True))
    try:
        assert not is_instrumentation_enabled()
        assert _core.suppressed()
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    finally:
        context.detach(token)
    assert instrumented.spans() == []
    assert not _core.suppressed()


@requires_sdk("openai.chat_helpers")
def test_uninstrument_restores_original_methods(telemetry: Telemetry) -> None:
    """uninstrument() puts back exactly the SDK's own functions."""
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import Embeddings

    from genai_audit.instrumentation.openai import OpenAIInstrumentor

    originals = (Completions.create, AsyncCompletions.create, Completions.parse, Embeddings.create)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    assert Completions.create is not originals[0]
    instrumentor.uninstrument()
    assert (Completions.create, AsyncCompletions.create, Completions.parse, Embeddings.create) == originals


@pytest.mark.parametrize("mode", ["with_raw_response", "with_streaming_response"])
def test_raw_response_streams_are_left_untouched(instrumented: Telemetry, oai: openai.OpenAI, mode: str) -> None:
    """Raw-response streams get no usage request (the app parses the body itself) and the span ends."""
    resource = getattr(oai.chat.completions, mode)
    if mode == "with_raw_response":
        chunks = list(resource.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True).parse())
    else:
        with resource.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True) as response:
            chunks = list(response.parse())
    assert chunks
    assert all(chunk.choices for chunk in chunks)
    assert instrumented.span().attributes[sc.REQUEST_STREAM] is True


def test_the_call_span_is_current_while_the_client_sends(instrumented: Telemetry, fake) -> None:
    """Inside the client's HTTP request the LLM span is current, over the application's context, and is
    no longer current once the call returns."""

    from opentelemetry import baggage, trace
    from opentelemetry import context as otel_context

    from genai_audit.instrumentation._core import suppressed

    seen: list[tuple[object, object, bool]] = []

    def hook(request: Any) -> None:
        seen.append((trace.get_current_span(), baggage.get_baggage("app.key"), suppressed()))

    client = openai.OpenAI(
        api_key="test",
        base_url=fake.openai_base_url,
        max_retries=0,
        http_client=http_client(openai, event_hooks={"request": [hook]}),
    )
    fake.script(Reply(text="ok"))
    app_span = instrumented.tracer_provider.get_tracer("app").start_span("handler")
    token = otel_context.attach(trace.set_span_in_context(app_span, baggage.set_baggage("app.key", "v")))
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert trace.get_current_span() is app_span
    finally:
        otel_context.detach(token)
        app_span.end()
    (llm,) = [s for s in instrumented.spans() if s.name == "chat gpt-4o"]
    current, value, inside = seen[0]
    assert current.get_span_context().span_id == llm.context.span_id  # type: ignore[attr-defined]
    assert llm.parent is not None and llm.parent.span_id == app_span.get_span_context().span_id
    assert value == "v"  # the application's context is kept under the span
    assert inside is True  # and a nested wrapped call would not open a second span
