"""The short paths for SDK models read exactly what the general reading reads.

SDK response objects are read straight from their instance dict where the
model declares the field; everything else (dicts, undeclared names, extra
fields, other objects) goes through the general reading. Both must agree.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage

from genai_audit.config import Settings
from genai_audit.instrumentation._core import LLMCall, Telemetry
from genai_audit.instrumentation._parts import get
from genai_audit.instrumentation.openai import _accumulate, _extract

CHUNKS: list[dict[str, Any]] = [
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
            {"index": 1, "delta": {"role": "assistant", "content": "Other "}, "finish_reason": None},
        ],
    },
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "system_fingerprint": "fp_1",
        "service_tier": "default",
        "choices": [{"index": 0, "delta": {"content": "Looking "}, "finish_reason": None}],
    },
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"ci'},
                        },
                    ]
                },
                "finish_reason": None,
            }
        ],
    },
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]},
                "finish_reason": None,
            },
            {"index": 1, "delta": {"content": "answer"}, "finish_reason": "stop"},
        ],
    },
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
    },
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024",
        "choices": [],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
        },
    },
]


@pytest.fixture
def new_call(telemetry: Any) -> Any:
    tel = Telemetry("test", Settings(), None, telemetry.tracer_provider, telemetry.meter_provider)

    def make() -> LLMCall:
        return LLMCall(tel, "chat", {}, {})

    return make


def _finished(call: LLMCall, acc: _accumulate.ChatAccumulator) -> tuple[dict[str, Any], dict[str, Any]]:
    acc.finish(call)
    call.end()
    return dict(call.attributes), dict(call.content)


def test_chunk_models_and_their_dicts_give_the_same_record(new_call: Any) -> None:
    """SDK chunk objects (read from their instance dict) and the same chunks as dicts give one record."""
    from_models, from_dicts = _accumulate.ChatAccumulator(), _accumulate.ChatAccumulator()
    for raw in CHUNKS:
        from_models.feed(ChatCompletionChunk.model_validate(raw))
        from_dicts.feed(raw)
    models = _finished(new_call(), from_models)
    dicts = _finished(new_call(), from_dicts)
    assert models == dicts
    attributes, content = models
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attributes["openai.response.system_fingerprint"] == "fp_1"
    assert attributes["gen_ai.response.finish_reasons"] == ["tool_calls", "stop"]
    first, second = content["gen_ai.output.messages"]
    assert first["parts"] == [
        {"type": "text", "content": "Looking "},
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
    ]
    assert second["parts"] == [{"type": "text", "content": "Other answer"}]


def test_chunks_made_without_validation_are_read_like_dicts(new_call: Any) -> None:
    """Chunks built as the SDK builds them from the wire (no validation, fields may be missing or odd)."""
    odd = [
        ChatCompletionChunk.construct(id="c2", model="m", choices=[{"index": 0, "delta": None}]),
        ChatCompletionChunk.construct(id="c2", choices=[{"delta": {"content": "hi"}, "finish_reason": "stop"}]),
        ChatCompletionChunk.construct(id="c2", model="m2", service_tier="flex"),  # no choices at all
    ]
    from_models, from_dicts = _accumulate.ChatAccumulator(), _accumulate.ChatAccumulator()
    for chunk in odd:
        from_models.feed(chunk)
        from_dicts.feed(chunk.model_dump(exclude_unset=True))
    assert _finished(new_call(), from_models) == _finished(new_call(), from_dicts)


def test_get_on_models_agrees_with_attribute_access() -> None:
    """Declared fields, extra fields, missing fields and methods read as ``getattr`` reads them."""
    message = ChatCompletionMessage.construct(role="assistant", content="x", name="bot")  # name is not declared
    assert get(message, "content") == "x"
    assert get(message, "name") == "bot" == message.name  # type: ignore[attr-defined]
    assert get(message, "refusal", "none") == "none"
    assert get(message, "missing", 5) == 5
    assert get(message, "model_dump")() == message.model_dump()
    partial = ChatCompletion.construct(id="r1")  # required fields left out
    assert get(partial, "choices", []) == []
    assert get(partial, "id") == "r1"


def test_completion_model_and_dict_give_the_same_record(new_call: Any) -> None:
    """A non-streamed completion read as an SDK model and as a dict gives the same attributes and content."""
    raw = {
        "id": "r1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024",
        "service_tier": "default",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello", "refusal": None}}
        ],
        "usage": CompletionUsage(
            prompt_tokens=5,
            completion_tokens=2,
            total_tokens=7,
            prompt_tokens_details={"cached_tokens": 3},
            completion_tokens_details={"reasoning_tokens": 1},
        ).model_dump(),
    }
    by_model, by_dict = new_call(), new_call()
    _extract.read_chat_response(by_model, ChatCompletion.model_validate(raw))
    _extract.read_chat_response(by_dict, raw)
    assert (by_model.attributes, by_model.content) == (by_dict.attributes, by_dict.content)
    assert by_model.content["gen_ai.output.messages"] == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}
    ]
    assert by_model.attributes["gen_ai.usage.cache_read.input_tokens"] == 3
    assert by_model.attributes["gen_ai.usage.reasoning.output_tokens"] == 1
    by_model.end()
    by_dict.end()


def test_base_url_follows_the_client_through_a_change_of_url() -> None:
    import anthropic
    import openai

    from genai_audit.instrumentation._parts import base_url, server_attributes

    clients: list[Any] = [
        openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1"),
        anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9"),
    ]
    for client in clients:
        for _ in range(2):  # the first read learns the class, the second takes the short path
            assert base_url(client) is client.base_url
        client.base_url = "https://api.example.test:8443/v2"
        assert base_url(client) is client.base_url
        assert server_attributes(client) == {"server.address": "api.example.test", "server.port": 8443}


def test_base_url_of_a_computed_property_is_read_through_the_property() -> None:
    import openai

    from genai_audit.instrumentation._parts import base_url, server_attributes

    class Rotating(openai.OpenAI):
        hosts = iter(f"h{i}.example.test" for i in range(10))

        @property  # type: ignore[override]
        def base_url(self) -> Any:
            return super().base_url.copy_with(host=next(self.hosts))

    client = Rotating(api_key="k", base_url="http://127.0.0.1:9/v1")
    assert [server_attributes(client)["server.address"] for _ in range(3)] == [
        "h0.example.test",
        "h1.example.test",
        "h2.example.test",
    ]
    assert base_url(None) is None
    assert base_url(object()) is None


def test_a_request_reads_the_same_with_sentinels_and_nones_as_without() -> None:
    """Arguments left at the SDK's sentinels or None read as absent, on the short path and off it."""
    import openai

    from genai_audit.instrumentation._parts import plain_args

    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": None, "tool_calls": []},
        ChatCompletionMessage(role="assistant", content="Earlier answer"),
    ]
    plain = {"model": "gpt-4o", "messages": messages, "temperature": 0.5, "max_tokens": 9}
    sentinel = getattr(openai, "omit", None) or openai.NOT_GIVEN
    with_sentinels = {**plain, "seed": sentinel, "stop": openai.NOT_GIVEN, "top_p": None, "n": None}
    assert plain_args(plain) is plain
    assert plain_args(with_sentinels) == plain  # sentinels present: given_args, which drops None as well
    resource = client.chat.completions
    expected = _extract.read_chat_request(resource, plain)
    assert _extract.read_chat_request(resource, with_sentinels) == expected
    assert _extract.read_chat_request(resource, {**plain, "top_p": None, "stream": None}) == expected
    attributes, content = expected
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert [m["role"] for m in content["gen_ai.input.messages"]] == ["system", "user", "tool", "assistant", "assistant"]
    assert content["gen_ai.input.messages"][2]["parts"][0]["type"] == "tool_call_response"
    assert content["gen_ai.input.messages"][4]["parts"] == [{"type": "text", "content": "Earlier answer"}]


def test_the_context_short_paths_are_taken_and_agree_with_the_api() -> None:
    """The span and baggage keys are found at import, and reading through them gives what the API gives."""
    from opentelemetry import baggage, trace
    from opentelemetry import context as otel_context

    from genai_audit import audit_context
    from genai_audit.instrumentation import _core

    assert _core._SPAN_KEY is not None
    assert audit_context._BAGGAGE_KEY is not None
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    ours = otel_context.Context({_core._SPAN_KEY: span})
    assert ours == trace.set_span_in_context(span, otel_context.Context())
    ctx = baggage.set_baggage("enduser.id", "u7", baggage.set_baggage("unrelated", "x"))
    token = otel_context.attach(ctx)
    try:
        assert audit_context.current() == {"enduser.id": "u7"}
    finally:
        otel_context.detach(token)
    # whatever else sits under the baggage key reads as the API reads it: no entries
    token = otel_context.attach(otel_context.set_value(audit_context._BAGGAGE_KEY, ["not", "a", "dict"]))
    try:
        assert audit_context.current() == {} == dict(baggage.get_all())
    finally:
        otel_context.detach(token)
