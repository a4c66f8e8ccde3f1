"""Tests for genai_audit.testing.fake_provider, driven through the real openai and anthropic SDKs."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from genai_audit.testing.fake_provider import (
    Error,
    FakeProvider,
    Malformed,
    RecordedRequest,
    Reply,
    ToolCall,
)

USER = [{"role": "user", "content": "hello there"}]


# --------------------------------------------------------------------------- #
# Helpers (the ``fake``, ``oai`` and ``claude`` fixtures come from conftest.py)
# --------------------------------------------------------------------------- #


def async_oai(fake: FakeProvider, max_retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=max_retries)


def async_ant(fake: FakeProvider, max_retries: int = 0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=max_retries)


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def raw_post(fake: FakeProvider, path: str, body: Any, headers: dict[str, str] | None = None) -> RawResponse:
    """POST with the stdlib client, to look at the wire format itself (raises IncompleteRead on a cut body)."""
    port = int(fake.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request("POST", path, body=json.dumps(body), headers=all_headers)
        response = conn.getresponse()
        return RawResponse(response.status, response.headers, response.read())
    finally:
        conn.close()


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    out: list[tuple[str | None, str]] = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        event = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        out.append((event, "\n".join(data)))
    return out


WEATHER = ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}, id="call_weather1")
LOOKUP = ToolCall(name="lookup", arguments={"q": "x" * 30})  # id generated; arguments span several deltas


# --------------------------------------------------------------------------- #
# Server basics
# --------------------------------------------------------------------------- #


def test_lifecycle_urls_and_stop() -> None:
    provider = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = provider.openai_base_url
    provider.start()
    try:
        assert provider.url.startswith("http://127.0.0.1:")
        assert provider.openai_base_url == provider.url + "/v1"
        assert provider.anthropic_base_url == provider.url
        with pytest.raises(RuntimeError):
            provider.start()
        port = int(provider.url.rsplit(":", 1)[1])
        client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="m", messages=USER)  # leaves a keep-alive connection open
    finally:
        started = time.perf_counter()
        provider.stop()
        assert time.perf_counter() - started < 1.0
    provider.stop()  # idempotent
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_script_is_fifo_then_default_and_reset(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="one"), Reply(text="two"))
    fake.script(Reply(text="three"))
    assert fake.pending == 3
    texts = [oai.chat.completions.create(model="m", messages=USER).choices[0].message.content for _ in range(4)]
    assert texts == ["one", "two", "three", "echo: hello there"]
    assert len(fake.requests) == 4
    fake.script(Reply(text="unused"))
    fake.reset()
    assert fake.requests == []
    assert fake.pending == 0
    with pytest.raises(TypeError):
        fake.script("nope")  # type: ignore[arg-type]  # deliberately wrong type
    with pytest.raises(ValueError, match="kind"):
        Malformed("nope")  # type: ignore[arg-type]  # deliberately wrong literal


def test_recorded_request(fake: FakeProvider, oai: openai.OpenAI) -> None:
    oai.chat.completions.create(model="gpt-test", messages=USER, temperature=0.5)
    (request,) = fake.requests
    assert isinstance(request, RecordedRequest)
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"model": "gpt-test", "messages": USER, "temperature": 0.5}
    assert list(fake.iter_requests("/v1/chat/completions")) == [request]
    assert list(fake.iter_requests("/v1/messages")) == []


def test_requests_are_recorded_thread_safely(fake: FakeProvider, oai: openai.OpenAI) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": f"w{n} {i}"}])
                assert reply.choices[0].message.content == f"echo: w{n} {i}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.requests) == 80


def test_many_calls_are_fast(fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    started = time.perf_counter()
    for _ in range(100):
        oai.chat.completions.create(model="m", messages=USER)
        for _event in claude.messages.create(model="c", max_tokens=5, messages=USER, stream=True):
            pass
    # ~1 ms each on a laptop; a Nagle/delayed-ACK stall would be 40 ms per call.
    assert time.perf_counter() - started < 4.0


def test_delay_and_client_timeout(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="slow", delay_s=0.15))
    started = time.perf_counter()
    reply = oai.chat.completions.create(model="m", messages=USER)
    assert reply.choices[0].message.content == "slow"
    assert time.perf_counter() - started >= 0.15
    fake.script(Reply(text="too slow", delay_s=0.5))
    with pytest.raises(openai.APITimeoutError):
        oai.chat.completions.create(model="m", messages=USER, timeout=0.1)


# --------------------------------------------------------------------------- #
# OpenAI chat completions
# --------------------------------------------------------------------------- #


def test_openai_chat_default_echo(fake: FakeProvider, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
        ],
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "gpt-test"
    assert reply.system_fingerprint
    assert reply.choices[0].message.content == "echo: second part"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 6  # words of all messages
    assert reply.usage.completion_tokens == 3
    assert reply.usage.total_tokens == 9


def test_openai_chat_scripted_text_and_usage(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(
        Reply(
            text="Hello!",
            input_tokens=11,
            output_tokens=7,
            cached_input_tokens=4,
            model="gpt-4o-2024-08-06",
            response_id="chatcmpl-fixed",
            finish_reason="length",
        )
    )
    reply = oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert reply.id == "chatcmpl-fixed"
    assert reply.model == "gpt-4o-2024-08-06"
    assert reply.choices[0].message.content == "Hello!"
    assert reply.choices[0].finish_reason == "length"
    usage = reply.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_openai_chat_finish_reason_vocabulary_is_mapped(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="x", finish_reason="max_tokens"), Reply(text="x", finish_reason="content_filter"))
    assert oai.chat.completions.create(model="m", messages=USER).choices[0].finish_reason == "length"
    assert oai.chat.completions.create(model="m", messages=USER).choices[0].finish_reason == "content_filter"


def test_openai_chat_tool_calls(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(tool_calls=[WEATHER, LOOKUP]))
    reply = oai.chat.completions.create(model="m", messages=USER)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert [c.type for c in calls] == ["function", "function"]
    first, second = calls
    assert isinstance(first, openai.types.chat.ChatCompletionMessageFunctionToolCall)
    assert isinstance(second, openai.types.chat.ChatCompletionMessageFunctionToolCall)
    assert first.id == "call_weather1"
    assert first.function.name == "get_weather"
    assert json.loads(first.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert second.id.startswith("call_")
    assert json.loads(second.function.arguments) == LOOKUP.arguments


def test_openai_chat_n_choices(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="same", output_tokens=2))
    reply = oai.chat.completions.create(model="m", messages=USER, n=3)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {"same"}
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 6


@pytest.mark.asyncio
async def test_openai_chat_async(fake: FakeProvider) -> None:
    fake.script(Reply(text="async hi", input_tokens=3, output_tokens=2, tool_calls=[WEATHER]))
    async with async_oai(fake) as client:
        reply = await client.chat.completions.create(model="m", messages=USER)
        default = await client.chat.completions.create(model="m", messages=USER)
    assert reply.choices[0].message.content == "async hi"
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.tool_calls is not None
    assert reply.choices[0].message.tool_calls[0].id == "call_weather1"
    assert reply.usage is not None
    assert reply.usage.total_tokens == 5
    assert default.choices[0].message.content == "echo: hello there"


def test_openai_chat_stream(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="Hello streaming world", chunk_size=5, input_tokens=9, output_tokens=3))
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True))
    assert fake.requests[0].body.get("stream_options") is None  # the SDK does not add it by itself
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    deltas = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert deltas == ["Hello", " stre", "aming", " worl", "d"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert all(c.usage is None for c in chunks)


def test_openai_chat_stream_include_usage(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="abc", input_tokens=9, output_tokens=3, cached_input_tokens=2))
    chunks = list(
        oai.chat.completions.create(model="m", messages=USER, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (9, 3, 12)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 2
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_stream_wire_format(fake: FakeProvider) -> None:
    fake.script(Reply(text="hi"), Reply(text="hi"))
    body = {"model": "m", "messages": USER, "stream": True}
    response = raw_post(fake, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}})
    assert response.status == 200
    assert response.headers.get("Content-Type", "").startswith("text/event-stream")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert response.headers.get("x-request-id", "").startswith("req_")
    events = sse_events(response.text)
    assert all(event is None for event, _ in events)
    assert events[-1] == (None, "[DONE]")
    payloads = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" in p for p in payloads)
    assert all(p["usage"] is None for p in payloads[:-1])
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"]["total_tokens"] > 0

    response = raw_post(fake, "/v1/chat/completions", body)
    events = sse_events(response.text)
    assert events[-1] == (None, "[DONE]")
    assert all("usage" not in json.loads(data) for _, data in events[:-1])


def test_openai_chat_stream_tool_calls(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="Let me check.", tool_calls=[WEATHER, LOOKUP], chunk_size=6))
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Let me check."
    tool_deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    headers = [tc for tc in tool_deltas if tc.id is not None]
    assert (headers[0].index, headers[0].id, headers[0].type) == (0, "call_weather1", "function")
    assert headers[1].index == 1
    assert headers[1].id is not None
    assert headers[1].id.startswith("call_")
    assert all(h.function is not None and h.function.arguments == "" for h in headers)
    assert [h.function.name for h in headers if h.function] == ["get_weather", "lookup"]
    arguments: dict[int, str] = {0: "", 1: ""}
    for tc in tool_deltas:
        if tc.id is None:
            assert tc.function is not None
            assert tc.function.name is None
            arguments[tc.index] += tc.function.arguments or ""
    assert json.loads(arguments[0]) == WEATHER.arguments
    assert json.loads(arguments[1]) == LOOKUP.arguments
    assert sum(1 for tc in tool_deltas if tc.index == 1 and tc.id is None) > 1  # fragmented
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_chat_stream_tool_call_only_starts_with_header(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(tool_calls=[WEATHER]))
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True))
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.content is None
    assert first.tool_calls is not None
    assert first.tool_calls[0].id == "call_weather1"


def test_openai_chat_stream_n_choices(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="abcdefghij", chunk_size=4))
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True, n=2))
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == index]
        assert "".join(ch.delta.content or "" for ch in mine) == "abcdefghij"
        assert mine[-1].finish_reason == "stop"


def test_openai_chat_stream_helper(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="helper text", tool_calls=[WEATHER], input_tokens=5, output_tokens=4))
    with oai.chat.completions.stream(model="m", messages=USER, stream_options={"include_usage": True}) as stream:
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == "helper text"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 9


@pytest.mark.asyncio
async def test_openai_chat_stream_async(fake: FakeProvider) -> None:
    fake.script(Reply(text="async stream", chunk_size=3, tool_calls=[WEATHER], input_tokens=2, output_tokens=8))
    async with async_oai(fake) as client:
        stream = await client.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "async stream"
    arguments = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function
    )
    assert json.loads(arguments) == WEATHER.arguments
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 10


# --------------------------------------------------------------------------- #
# OpenAI embeddings
# --------------------------------------------------------------------------- #


def test_openai_embeddings_default_request_is_base64(fake: FakeProvider, oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma"])
    # openai 3.x asks for base64 unless told otherwise, and decodes it to floats itself.
    assert fake.requests[0].body["encoding_format"] == "base64"
    assert result.object == "list"
    assert result.model == "text-embedding-3-small"
    assert [e.index for e in result.data] == [0, 1]
    assert all(e.object == "embedding" for e in result.data)
    assert all(len(e.embedding) == 8 for e in result.data)
    assert all(isinstance(v, float) for v in result.data[0].embedding)
    assert result.data[0].embedding != result.data[1].embedding
    assert abs(sum(v * v for v in result.data[0].embedding) - 1.0) < 1e-5
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)

    again = oai.embeddings.create(model="text-embedding-3-small", input="alpha beta", encoding_format="float")
    assert fake.requests[1].body["encoding_format"] == "float"
    assert again.data[0].embedding == result.data[0].embedding  # deterministic, same in both encodings


def test_openai_embeddings_explicit_base64_and_dimensions(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(input_tokens=42, model="emb-x"))
    result = oai.embeddings.create(model="emb", input="some text", dimensions=16, encoding_format="base64")
    raw = result.data[0].embedding
    assert isinstance(raw, str)  # the SDK hands back what was explicitly asked for
    decoded = struct.unpack("<16f", base64.b64decode(raw))
    floats = oai.embeddings.create(model="emb", input="some text", dimensions=16, encoding_format="float")
    assert list(decoded) == floats.data[0].embedding
    assert result.model == "emb-x"
    assert result.usage.prompt_tokens == 42


@pytest.mark.asyncio
async def test_openai_embeddings_async(fake: FakeProvider) -> None:
    async with async_oai(fake) as client:
        result = await client.embeddings.create(model="emb", input=["a", "b", "c"], dimensions=4)
    assert [len(e.embedding) for e in result.data] == [4, 4, 4]
    assert result.usage.prompt_tokens == 3


# --------------------------------------------------------------------------- #
# OpenAI responses
# --------------------------------------------------------------------------- #


def test_openai_responses_create(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="Answer.", tool_calls=[WEATHER], input_tokens=20, output_tokens=6, cached_input_tokens=8))
    response = oai.responses.create(model="gpt-5", input="what is the weather")
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "gpt-5"
    assert response.output_text == "Answer."
    message, call = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.status == "completed"
    assert message.content[0].type == "output_text"
    assert message.content[0].annotations == []
    assert call.type == "function_call"
    assert call.call_id == "call_weather1"
    assert call.id is not None
    assert call.id.startswith("fc_")
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == WEATHER.arguments
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (20, 6, 26)
    assert usage.input_tokens_details.cached_tokens == 8
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_openai_responses_default_echo_with_list_input(fake: FakeProvider, oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model="m",
        instructions="be brief",
        input=[
            {"role": "user", "content": "old"},
            {"role": "user", "content": [{"type": "input_text", "text": "newest question"}]},
        ],
    )
    assert response.output_text == "echo: newest question"
    assert response.instructions == "be brief"
    assert response.usage is not None
    assert response.usage.input_tokens == 5


def test_openai_responses_incomplete(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="cut", finish_reason="length"))
    response = oai.responses.create(model="m", input="x")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_openai_responses_stream_events(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="Streaming answer", chunk_size=6, tool_calls=[LOOKUP], input_tokens=4, output_tokens=5))
    events = list(oai.responses.create(model="m", input="x", stream=True))
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    arg_deltas = types.count("response.function_call_arguments.delta")
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * arg_deltas,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert deltas == 3
    assert arg_deltas > 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text_deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert text_deltas == ["Stream", "ing an", "swer"]
    created = events[0]
    assert created.type == "response.created"
    assert created.response.status == "in_progress"
    assert created.response.output == []
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.id == created.response.id
    assert completed.response.output_text == "Streaming answer"
    assert completed.response.usage is not None
    assert completed.response.usage.total_tokens == 9
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(args) == LOOKUP.arguments


def test_openai_responses_stream_wire_has_event_lines(fake: FakeProvider) -> None:
    response = raw_post(fake, "/v1/responses", {"model": "m", "input": "x", "stream": True})
    events = sse_events(response.text)
    assert all(event == json.loads(data)["type"] for event, data in events)
    assert events[-1][0] == "response.completed"


def test_openai_responses_stream_helper(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="final words", tool_calls=[WEATHER], input_tokens=3, output_tokens=3))
    with oai.responses.stream(model="m", input="x") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == "final words"
    assert final.output_text == "final words"
    assert final.output[1].type == "function_call"
    assert final.usage is not None
    assert final.usage.total_tokens == 6


@pytest.mark.asyncio
async def test_openai_responses_async(fake: FakeProvider) -> None:
    fake.script(
        Reply(text="async resp", input_tokens=1, output_tokens=2),
        Reply(text="async stream", chunk_size=4),
        Reply(text="async helper", tool_calls=[WEATHER]),
    )
    async with async_oai(fake) as client:
        response = await client.responses.create(model="m", input="x")
        stream = await client.responses.create(model="m", input="x", stream=True)
        events = [event async for event in stream]
        async with client.responses.stream(model="m", input="x") as helper:
            final = await helper.get_final_response()
    assert response.output_text == "async resp"
    assert response.usage is not None
    assert response.usage.total_tokens == 3
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "async stream"
    assert events[-1].type == "response.completed"
    assert final.output_text == "async helper"
    assert final.output[1].type == "function_call"


# --------------------------------------------------------------------------- #
# Anthropic messages
# --------------------------------------------------------------------------- #


def test_anthropic_messages_default_echo(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-test",
        max_tokens=50,
        system="be nice",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
        ],
    )
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.model == "claude-test"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: second part"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 6
    assert message.usage.output_tokens == 3
    request = fake.requests[0]
    assert request.path == "/v1/messages"
    # anthropic 2.x sends the key as a bearer token; older SDKs used x-api-key.
    assert "Bearer test" in request.headers.get("authorization", "") or request.headers.get("x-api-key") == "test"
    assert "anthropic-version" in request.headers


def test_anthropic_messages_scripted(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.script(
        Reply(
            text="Checking.",
            tool_calls=[WEATHER, LOOKUP],
            input_tokens=30,
            output_tokens=12,
            cached_input_tokens=10,
            model="claude-x-20250101",
            response_id="msg_fixed",
        )
    )
    message = claude.messages.create(model="claude-x", max_tokens=50, messages=USER)
    assert message.id == "msg_fixed"
    assert message.model == "claude-x-20250101"
    assert message.stop_reason == "tool_use"
    text, weather, lookup = message.content
    assert text.type == "text"
    assert text.text == "Checking."
    assert weather.type == "tool_use"
    assert weather.id == "call_weather1"
    assert weather.name == "get_weather"
    assert weather.input == WEATHER.arguments
    assert lookup.type == "tool_use"
    assert lookup.id.startswith("toolu_")
    assert lookup.input == LOOKUP.arguments
    assert message.usage.input_tokens == 30
    assert message.usage.output_tokens == 12
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.cache_creation_input_tokens == 0


def test_anthropic_stop_reason_vocabulary_is_mapped(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.script(Reply(text="x", finish_reason="length"), Reply(text="x", finish_reason="stop_sequence"))
    assert claude.messages.create(model="c", max_tokens=5, messages=USER).stop_reason == "max_tokens"
    assert claude.messages.create(model="c", max_tokens=5, messages=USER).stop_reason == "stop_sequence"


@pytest.mark.asyncio
async def test_anthropic_messages_async(fake: FakeProvider) -> None:
    fake.script(Reply(text="async claude", tool_calls=[WEATHER], input_tokens=4, output_tokens=9))
    async with async_ant(fake) as client:
        message = await client.messages.create(model="c", max_tokens=5, messages=USER)
        default = await client.messages.create(model="c", max_tokens=5, messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text == "async claude"
    assert message.content[1].type == "tool_use"
    assert message.content[1].input == WEATHER.arguments
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 9)
    assert default.content[0].type == "text"
    assert default.content[0].text == "echo: hello there"


def test_anthropic_stream_events(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.script(Reply(text="Hello there!", chunk_size=5, tool_calls=[WEATHER], input_tokens=7, output_tokens=11))
    events = list(claude.messages.create(model="c", max_tokens=5, messages=USER, stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == []
    assert start.message.stop_reason is None
    assert start.message.usage.input_tokens == 7
    assert start.message.usage.output_tokens == 1
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Hello there!"
    text_deltas = [e for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert [e.delta.text for e in text_deltas] == ["Hello", " ther", "e!"]
    block_starts = [e for e in events if e.type == "content_block_start"]
    assert [b.index for b in block_starts] == [0, 1]
    tool_start = block_starts[1].content_block
    assert tool_start.type == "tool_use"
    assert (tool_start.id, tool_start.name, tool_start.input) == ("call_weather1", "get_weather", {})
    partial = [
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(partial) > 2
    assert json.loads("".join(partial)) == WEATHER.arguments
    assert [e.index for e in events if e.type == "content_block_stop"] == [0, 1]
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "tool_use"
    assert delta.delta.stop_sequence is None
    assert delta.usage.output_tokens == 11


def test_anthropic_stream_wire_has_ping(fake: FakeProvider) -> None:
    response = raw_post(
        fake,
        "/v1/messages",
        {"model": "c", "max_tokens": 5, "messages": USER, "stream": True},
        {"anthropic-version": "2023-06-01"},
    )
    assert response.headers.get("request-id", "").startswith("req_")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    events = sse_events(response.text)
    names = [event for event, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    assert all(event == json.loads(data)["type"] for event, data in events)


def test_anthropic_stream_helper(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.script(
        Reply(text="streamed via helper", chunk_size=4, input_tokens=6, output_tokens=3, cached_input_tokens=2),
        Reply(tool_calls=[WEATHER]),
    )
    with claude.messages.stream(model="c", max_tokens=5, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["stre", "amed", " via", " hel", "per"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "streamed via helper"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 3)
    assert final.usage.cache_read_input_tokens == 2

    with claude.messages.stream(model="c", max_tokens=5, messages=USER) as stream:
        final = stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.input == WEATHER.arguments
    assert final.stop_reason == "tool_use"


@pytest.mark.asyncio
async def test_anthropic_stream_async(fake: FakeProvider) -> None:
    fake.script(Reply(text="async events", chunk_size=5), Reply(text="async helper", chunk_size=5, output_tokens=2))
    async with async_ant(fake) as client:
        stream = await client.messages.create(model="c", max_tokens=5, messages=USER, stream=True)
        events = [event async for event in stream]
        async with client.messages.stream(model="c", max_tokens=5, messages=USER) as helper:
            pieces = [text async for text in helper.text_stream]
            final = await helper.get_final_message()
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "async events"
    assert events[-1].type == "message_stop"
    assert pieces == ["async", " help", "er"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "async helper"
    assert final.usage.output_tokens == 2


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_openai_errors(
    fake: FakeProvider, oai: openai.OpenAI, status: int, exc_type: type[openai.APIStatusError], error_type: str
) -> None:
    fake.script(Error(status=status, message="boom", retry_after=3 if status == 429 else None))
    with pytest.raises(exc_type) as info:
        oai.chat.completions.create(model="m", messages=USER)
    err = info.value
    assert err.status_code == status
    assert err.message.startswith(f"Error code: {status}")
    assert isinstance(err.body, dict)
    assert err.body["message"] == "boom"
    assert err.body["param"] is None
    assert err.type == error_type
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    if status == 429:
        assert err.code == "rate_limit_exceeded"
        assert err.response.headers["retry-after"] == "3"
    else:
        assert "retry-after" not in err.response.headers


def test_openai_error_custom_type_and_fractional_retry_after(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Error(status=429, message="quota", error_type="insufficient_quota", retry_after=1.5))
    with pytest.raises(openai.RateLimitError) as info:
        oai.embeddings.create(model="emb", input="x")
    assert info.value.type == "insufficient_quota"
    assert info.value.code is None
    assert info.value.response.headers["retry-after"] == "1.5"


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_anthropic_errors(
    fake: FakeProvider,
    claude: anthropic.Anthropic,
    status: int,
    exc_type: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    fake.script(Error(status=status, message="kaboom", retry_after=7 if status == 429 else None))
    with pytest.raises(exc_type) as info:
        claude.messages.create(model="c", max_tokens=5, messages=USER)
    err = info.value
    assert err.status_code == status
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"
    assert err.body["error"] == {"type": error_type, "message": "kaboom"}
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert err.body["request_id"] == err.request_id
    if status == 429:
        assert err.response.headers["retry-after"] == "7"


def test_anthropic_error_on_stream_request(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.script(Error(status=529, message="busy"))
    with pytest.raises(anthropic.OverloadedError), claude.messages.stream(model="c", max_tokens=5, messages=USER) as s:
        s.get_final_message()


@pytest.mark.asyncio
async def test_errors_async(fake: FakeProvider) -> None:
    fake.script(Error(status=429, retry_after=2), Error(status=500, error_type="overloaded_error"))
    async with async_oai(fake) as oclient:
        with pytest.raises(openai.RateLimitError) as oinfo:
            await oclient.chat.completions.create(model="m", messages=USER, stream=True)
    assert oinfo.value.response.headers["retry-after"] == "2"
    async with async_ant(fake) as aclient:
        with pytest.raises(anthropic.InternalServerError) as ainfo:
            await aclient.messages.create(model="c", max_tokens=5, messages=USER)
    assert isinstance(ainfo.value.body, dict)
    assert ainfo.value.body["error"]["type"] == "overloaded_error"


def test_unknown_paths_get_provider_404s(fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    fake.script(Reply(text="stays queued"))
    with pytest.raises(openai.NotFoundError) as oinfo:
        oai.models.list()
    assert isinstance(oinfo.value.body, dict)
    assert oinfo.value.body["message"] == "Invalid URL (GET /v1/models)"
    assert oinfo.value.body["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as ainfo:
        claude.models.list()
    assert isinstance(ainfo.value.body, dict)
    assert ainfo.value.body["error"]["type"] == "not_found_error"
    assert [r.path.split("?")[0] for r in fake.requests] == ["/v1/models", "/v1/models"]
    assert fake.pending == 1  # 404s do not consume the script


def test_retry_after_429_then_success(fake: FakeProvider) -> None:
    fake.script(Error(status=429, retry_after=0), Reply(text="after retry"))
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=1)
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "after retry"
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]
    client.close()

    fake.reset()
    fake.script(Error(status=429, retry_after=0), Reply(text="claude after retry"))
    aclient = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=1)
    message = aclient.messages.create(model="c", max_tokens=5, messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text == "claude after retry"
    assert len(fake.requests) == 2
    aclient.close()


@pytest.mark.asyncio
async def test_retry_after_429_then_success_async(fake: FakeProvider) -> None:
    fake.script(Error(status=429, retry_after=0), Reply(text="a1"), Error(status=429, retry_after=0), Reply(text="a2"))
    async with async_oai(fake, max_retries=1) as oclient:
        reply = await oclient.chat.completions.create(model="m", messages=USER)
    async with async_ant(fake, max_retries=1) as aclient:
        message = await aclient.messages.create(model="c", max_tokens=5, messages=USER)
    assert reply.choices[0].message.content == "a1"
    assert message.content[0].type == "text"
    assert message.content[0].text == "a2"
    assert len(fake.requests) == 4


# --------------------------------------------------------------------------- #
# Malformed answers: which exception each SDK raises
# --------------------------------------------------------------------------- #

JSONError = json.JSONDecodeError
# (kind, streamed?) -> exception, for openai (chat, embeddings, responses) and anthropic.
OPENAI_RAISES: dict[tuple[str, bool], type[BaseException]] = {
    ("invalid_json", False): JSONError,  # the SDK calls response.json() unwrapped
    ("invalid_json", True): JSONError,
    ("truncated_json", False): openai.APIConnectionError,
    ("truncated_json", True): openai.APIConnectionError,
    ("truncated_stream", False): openai.APIConnectionError,
    ("truncated_stream", True): openai.APIConnectionError,
    ("garbage_sse", False): JSONError,
    ("garbage_sse", True): JSONError,  # sse.json() unwrapped
}
# Older anthropic releases let a transport error raised while iterating a stream through
# unwrapped; newer ones wrap it in APIConnectionError, as they do for a plain call.
STREAM_TRANSPORT_ERROR = (httpx2.RemoteProtocolError, anthropic.APIConnectionError)
ANTHROPIC_RAISES: dict[tuple[str, bool], type[BaseException] | tuple[type[BaseException], ...]] = {
    ("invalid_json", False): JSONError,
    ("invalid_json", True): JSONError,
    ("truncated_json", False): anthropic.APIConnectionError,
    ("truncated_json", True): STREAM_TRANSPORT_ERROR,
    ("truncated_stream", False): anthropic.APIConnectionError,
    ("truncated_stream", True): STREAM_TRANSPORT_ERROR,
    ("garbage_sse", False): JSONError,
    ("garbage_sse", True): JSONError,
}
KINDS = ["invalid_json", "truncated_json", "truncated_stream", "garbage_sse"]


def _consume(result: Any) -> None:
    if isinstance(result, (openai.Stream, anthropic.Stream)):
        for _ in result:
            pass


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_openai(fake: FakeProvider, oai: openai.OpenAI, kind: Any) -> None:
    calls: list[tuple[bool, Callable[[], Any]]] = [
        (False, lambda: oai.chat.completions.create(model="m", messages=USER)),
        (True, lambda: oai.chat.completions.create(model="m", messages=USER, stream=True)),
        (False, lambda: oai.embeddings.create(model="e", input="x")),
        (False, lambda: oai.responses.create(model="m", input="x")),
        (True, lambda: oai.responses.create(model="m", input="x", stream=True)),
    ]
    for streamed, call in calls:
        fake.script(Malformed(kind))
        with pytest.raises(OPENAI_RAISES[kind, streamed]):
            _consume(call())
    fake.script(Malformed(kind))
    with pytest.raises(OPENAI_RAISES[kind, True]), oai.responses.stream(model="m", input="x") as stream:
        stream.get_final_response()
    assert fake.pending == 0


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_anthropic(fake: FakeProvider, claude: anthropic.Anthropic, kind: Any) -> None:
    fake.script(Malformed(kind))
    with pytest.raises(ANTHROPIC_RAISES[kind, False]):
        claude.messages.create(model="c", max_tokens=5, messages=USER)
    fake.script(Malformed(kind))
    with pytest.raises(ANTHROPIC_RAISES[kind, True]):
        _consume(claude.messages.create(model="c", max_tokens=5, messages=USER, stream=True))
    fake.script(Malformed(kind))
    expected = ANTHROPIC_RAISES[kind, True]
    with pytest.raises(expected), claude.messages.stream(model="c", max_tokens=5, messages=USER) as stream:
        stream.get_final_message()
    assert fake.pending == 0


def test_malformed_stream_shapes_on_the_wire(fake: FakeProvider) -> None:
    body = {"model": "m", "messages": USER, "stream": True}
    good = sse_events(raw_post(fake, "/v1/chat/completions", body).text)
    fake.script(Malformed("garbage_sse"), Malformed("truncated_stream"))
    garbage = sse_events(raw_post(fake, "/v1/chat/completions", body).text)
    assert len(garbage) == len(good) + 1
    assert garbage[-1] == (None, "[DONE]")
    bad = [data for _, data in garbage if data != "[DONE]" and not data.startswith('{"id"')]
    assert len(bad) == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad[0])
    with pytest.raises(http.client.IncompleteRead):
        raw_post(fake, "/v1/chat/completions", body)


@pytest.mark.asyncio
async def test_malformed_async(fake: FakeProvider) -> None:
    async with async_oai(fake) as oclient:
        fake.script(Malformed("truncated_json"))
        with pytest.raises(openai.APIConnectionError):
            await oclient.chat.completions.create(model="m", messages=USER)
        fake.script(Malformed("truncated_stream"))
        stream = await oclient.chat.completions.create(model="m", messages=USER, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass
        fake.script(Malformed("garbage_sse"))
        with pytest.raises(json.JSONDecodeError):
            async with oclient.responses.stream(model="m", input="x") as rstream:
                await rstream.get_final_response()
        fake.script(Malformed("invalid_json"))
        with pytest.raises(json.JSONDecodeError):
            await oclient.embeddings.create(model="e", input="x")
    async with async_ant(fake) as aclient:
        fake.script(Malformed("truncated_json"))
        with pytest.raises(anthropic.APIConnectionError):
            await aclient.messages.create(model="c", max_tokens=5, messages=USER)
        fake.script(Malformed("truncated_stream"))
        with pytest.raises(STREAM_TRANSPORT_ERROR):
            async with aclient.messages.stream(model="c", max_tokens=5, messages=USER) as mstream:
                await mstream.get_final_message()
        fake.script(Malformed("garbage_sse"))
        astream = await aclient.messages.create(model="c", max_tokens=5, messages=USER, stream=True)
        with pytest.raises(json.JSONDecodeError):
            async for _ in astream:
                pass
    assert fake.pending == 0


def test_json_answers_have_content_length(fake: FakeProvider) -> None:
    response = raw_post(fake, "/v1/chat/completions", {"model": "m", "messages": USER})
    payload = response.body
    assert response.status == 200
    assert response.headers.get("Content-Type") == "application/json"
    assert int(response.headers.get("Content-Length", "-1")) == len(payload)
    assert json.loads(payload)["object"] == "chat.completion"
    fake.script(Malformed("truncated_json"))
    with pytest.raises(http.client.IncompleteRead):
        raw_post(fake, "/v1/chat/completions", {"model": "m", "messages": USER})
