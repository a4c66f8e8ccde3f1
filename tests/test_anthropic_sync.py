"""Anthropic SDK, synchronous calls: span shape, system prompt, tool use, streams, errors."""

from __future__ import annotations

import json

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from genai_audit import semconv as sc
from genai_audit.testing.fake_provider import Error, Reply, ToolCall
from tests.conftest import Telemetry

TOOLS = [{"name": "lookup_order", "description": "Find an order",
          "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}]


def test_messages_create_span(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    """messages.create: provider anthropic, system instructions, params, usage including cache."""
    fake.script(Reply(text="Hi Bob", input_tokens=20, output_tokens=4, cached_input_tokens=10))
    # anthropic 2.x dropped temperature/top_p/top_k from messages.create; older SDKs' values are read too.
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, system="Be kind.",
                                     stop_sequences=["##"], messages=[{"role": "user", "content": "hey"}])
    span = instrumented.span()
    a = span.attributes
    assert span.name == "chat claude-sonnet-4-6"
    assert a[sc.PROVIDER_NAME] == "anthropic"
    assert a[sc.REQUEST_MAX_TOKENS] == 64
    assert a[sc.REQUEST_STOP_SEQUENCES] == ("##",)
    assert a[sc.RESPONSE_ID] == message.id
    assert a[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    assert a[sc.USAGE_INPUT_TOKENS] == usage.input_tokens + cache_read + (usage.cache_creation_input_tokens or 0)
    assert a[sc.USAGE_CACHE_READ_INPUT_TOKENS] == cache_read
    assert a[sc.USAGE_OUTPUT_TOKENS] == 4
    assert json.loads(a[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be kind."}]  # type: ignore[arg-type]
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Hi Bob"}]  # type: ignore[arg-type]


def test_tool_use_round_trip_recorded(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    """tool_use blocks and tool_result blocks sent back become tool_call / tool_call_response parts."""
    fake.script(Reply(tool_calls=[ToolCall("lookup_order", {"id": "7"}, id="toolu_1")]), Reply(text="Shipped."))
    first = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                   messages=[{"role": "user", "content": "order 7?"}])
    claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                           messages=[
                               {"role": "user", "content": "order 7?"},
                               {"role": "assistant", "content": first.content},
                               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                             "content": "status: shipped"}]},
                           ])
    one, two = instrumented.spans()
    assert one.attributes[sc.RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert json.loads(one.attributes[sc.OUTPUT_MESSAGES])[0]["parts"] == [  # type: ignore[arg-type]
        {"type": "tool_call", "id": "toolu_1", "name": "lookup_order", "arguments": {"id": "7"}}]
    assert json.loads(one.attributes[sc.TOOL_DEFINITIONS])[0]["name"] == "lookup_order"  # type: ignore[arg-type]
    history = json.loads(two.attributes[sc.INPUT_MESSAGES])  # type: ignore[arg-type]
    assert history[1]["parts"][0]["type"] == "tool_call"
    assert history[2] == {"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "toolu_1", "response": "status: shipped"}]}


def test_create_stream_true(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    """messages.create(stream=True): events pass through unchanged, span has text and usage."""
    fake.script(Reply(text="a streamed reply", input_tokens=5, output_tokens=3))
    events = list(claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, stream=True,
                                         messages=[{"role": "user", "content": "go"}]))
    assert events[0].type == "message_start"
    a = instrumented.span().attributes
    assert a[sc.REQUEST_STREAM] is True
    assert a[sc.USAGE_INPUT_TOKENS] == 5
    assert a[sc.USAGE_OUTPUT_TOKENS] == 3
    assert "a streamed reply" in a[sc.OUTPUT_MESSAGES]  # type: ignore[operator]
    assert a[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0  # type: ignore[operator]


def test_messages_stream_manager(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    """messages.stream(...) context manager: text_stream consumption is seen, one span."""
    fake.script(Reply(tool_calls=[ToolCall("lookup_order", {"id": "9"})], text="Let me check."))
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                messages=[{"role": "user", "content": "order 9"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me check."
    a = instrumented.span().attributes
    assert a[sc.RESPONSE_ID] == final.id
    output = json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"]  # type: ignore[arg-type]
    assert output[0] == {"type": "text", "content": "Let me check."}
    assert output[1]["arguments"] == {"id": "9"}


def test_error_in_stream_manager_enter(instrumented: Telemetry, claude: anthropic.Anthropic, fake) -> None:
    """A provider error when entering messages.stream propagates and is recorded."""
    fake.script(Error(529, "Overloaded", error_type="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError) as caught, claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "x"}]
    ):
        pass
    assert caught.value.status_code == 529
    span = instrumented.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 529


def test_uninstrument_restores_anthropic(telemetry: Telemetry) -> None:
    """uninstrument() restores messages.create and messages.stream."""
    from anthropic.resources.messages import AsyncMessages, Messages

    from genai_audit.instrumentation.anthropic import AnthropicInstrumentor

    originals = (Messages.create, Messages.stream, AsyncMessages.create, AsyncMessages.stream)
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    assert Messages.stream is not originals[1]
    instrumentor.uninstrument()
    assert (Messages.create, Messages.stream, AsyncMessages.create, AsyncMessages.stream) == originals
