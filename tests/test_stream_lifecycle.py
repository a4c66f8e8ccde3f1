"""A stream's span ends exactly once, on every way out of the stream, sync and async.

Ways out: read to the end; read part-way then ``close()``; ``with`` left early
(``break``); ``with`` left by the application's own exception; dropped
half-read and garbage-collected; the provider cutting the stream; a garbage
event. Each is run for OpenAI chat streams (``create(stream=True)`` and the
``chat.completions.stream()`` helper), OpenAI Responses streams (both forms)
and Anthropic streams (``create(stream=True)`` and ``messages.stream()``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from genai_audit import semconv as sc
from genai_audit.testing.fake_provider import FakeProvider, Malformed, Reply
from tests.sdk_support import requires_sdk


@pytest.fixture(scope="module", autouse=True)
def _small_heap() -> Any:
    """Keep gc.collect() cheap: objects that exist before this module's tests are frozen out of collection."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


# --------------------------------------------------------------------------- #
# Stream kinds
# --------------------------------------------------------------------------- #

TEXT = "The quick brown fox jumps over the lazy dog near the river bank"
USER = [{"role": "user", "content": "Tell me about the fox"}]
CLAUDE_MODEL = "claude-haiku-4-5"


def reply() -> Reply:
    return Reply(text=TEXT, chunk_size=4, input_tokens=12, output_tokens=13)


def _chat_text(chunk: Any) -> str | None:
    return chunk.choices[0].delta.content if chunk.choices else None


def _chat_helper_text(event: Any) -> str | None:
    return event.delta if event.type == "content.delta" else None


def _responses_text(event: Any) -> str | None:
    return event.delta if event.type == "response.output_text.delta" else None


def _claude_text(event: Any) -> str | None:
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        return str(event.delta.text)
    return None


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    provider: str
    #: True for the SDK helpers whose ``stream(...)`` returns a manager to enter
    helper: bool
    open: Callable[[Any], Any]
    #: create-style: returns an awaitable of the stream; helper: returns the async manager
    aopen: Callable[[Any], Any]
    text: Callable[[Any], str | None]
    #: SDK features (tests/sdk_support.py) newer than the oldest supported SDK release
    needs: tuple[str, ...] = ()

    def client(self, request: pytest.FixtureRequest, is_async: bool) -> Any:
        name = {
            ("openai", False): "oai",
            ("openai", True): "aoai",
            ("anthropic", False): "claude",
            ("anthropic", True): "aclaude",
        }[self.provider, is_async]
        return request.getfixturevalue(name)


KINDS = [
    Kind(
        "openai.chat.create",
        "openai",
        False,
        lambda c: c.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
        lambda c: c.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
        _chat_text,
    ),
    Kind(
        "openai.chat.stream",
        "openai",
        True,
        lambda c: c.chat.completions.stream(model="gpt-4o", messages=USER),
        lambda c: c.chat.completions.stream(model="gpt-4o", messages=USER),
        _chat_helper_text,
        ("openai.chat_helpers",),
    ),
    Kind(
        "openai.responses.create",
        "openai",
        False,
        lambda c: c.responses.create(model="gpt-4o", input=USER, stream=True),
        lambda c: c.responses.create(model="gpt-4o", input=USER, stream=True),
        _responses_text,
        ("openai.responses",),
    ),
    Kind(
        "openai.responses.stream",
        "openai",
        True,
        lambda c: c.responses.stream(model="gpt-4o", input=USER),
        lambda c: c.responses.stream(model="gpt-4o", input=USER),
        _responses_text,
        ("openai.responses",),
    ),
    Kind(
        "anthropic.messages.create",
        "anthropic",
        False,
        lambda c: c.messages.create(model=CLAUDE_MODEL, max_tokens=64, messages=USER, stream=True),
        lambda c: c.messages.create(model=CLAUDE_MODEL, max_tokens=64, messages=USER, stream=True),
        _claude_text,
    ),
    Kind(
        "anthropic.messages.stream",
        "anthropic",
        True,
        lambda c: c.messages.stream(model=CLAUDE_MODEL, max_tokens=64, messages=USER),
        lambda c: c.messages.stream(model=CLAUDE_MODEL, max_tokens=64, messages=USER),
        _claude_text,
    ),
]


def _kinds() -> list[Any]:
    return [pytest.param(kind, id=kind.name, marks=[requires_sdk(*kind.needs)] if kind.needs else []) for kind in KINDS]


# --- driving a stream --------------------------------------------------------------------
def start(kind: Kind, client: Any) -> tuple[Any, Any]:
    """(stream, manager or None), the request made and the stream ready to read."""
    if kind.helper:
        manager = kind.open(client)
        return manager.__enter__(), manager
    return kind.open(client), None


async def astart(kind: Kind, client: Any) -> tuple[Any, Any]:
    if kind.helper:
        manager = kind.aopen(client)
        return await manager.__aenter__(), manager
    return await kind.aopen(client), None


def context(kind: Kind, client: Any) -> Any:
    """What the application puts in its ``with`` statement."""
    return kind.open(client)


async def acontext(kind: Kind, client: Any) -> Any:
    """What the application puts in its ``async with`` statement."""
    return kind.aopen(client) if kind.helper else await kind.aopen(client)


def read_some(kind: Kind, stream: Any, deltas: int = 2) -> str:
    """Read until ``deltas`` text deltas arrived; return the text the application saw."""
    seen: list[str] = []
    for item in stream:
        text = kind.text(item)
        if text:
            seen.append(text)
            if len(seen) == deltas:
                break
    return "".join(seen)


async def aread_some(kind: Kind, stream: Any, deltas: int = 2) -> str:
    seen: list[str] = []
    async for item in stream:
        text = kind.text(item)
        if text:
            seen.append(text)
            if len(seen) == deltas:
                break
    return "".join(seen)


def read_all(kind: Kind, stream: Any) -> str:
    return "".join(text for item in stream if (text := kind.text(item)))


async def aread_all(kind: Kind, stream: Any) -> str:
    return "".join([text async for item in stream if (text := kind.text(item))])


# --- looking at the span ------------------------------------------------------------------
def only_span(telemetry: Any) -> ReadableSpan:
    spans = telemetry.spans()
    assert len(spans) == 1, f"expected the stream's span to have ended exactly once, got {len(spans)}"
    return spans[0]


def span_text(span: ReadableSpan) -> str:
    raw = (span.attributes or {}).get(sc.OUTPUT_MESSAGES)
    if raw is None:
        return ""
    return "".join(
        part.get("content", "")
        for message in json.loads(str(raw))
        for part in message["parts"]
        if part.get("type") == "text"
    )


def assert_completed(span: ReadableSpan) -> None:
    assert span.attributes[sc.AUDIT_STREAM_COMPLETED] is True
    assert span_text(span) == TEXT
    assert span.status.status_code is StatusCode.UNSET
    assert sc.ERROR_TYPE not in span.attributes
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13


def assert_cut_short(span: ReadableSpan, app_text: str) -> None:
    """Ended early, not as an error, holding the output collected so far."""
    assert span.attributes[sc.AUDIT_STREAM_COMPLETED] is False
    assert span.status.status_code is StatusCode.UNSET
    assert sc.ERROR_TYPE not in span.attributes
    assert not [event for event in span.events if event.name == "exception"]
    collected = span_text(span)
    assert app_text, "the test must have read some text"
    assert collected.startswith(app_text), (collected, app_text)
    assert TEXT.startswith(collected) and collected != TEXT, collected


async def collect_garbage() -> None:
    """Collect, letting the loop run the ``aclose()`` asyncio schedules for dropped async generators."""
    gc.collect()
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()


# --------------------------------------------------------------------------- #
# Exit paths
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", _kinds())
def test_fully_consumed_stream_ends_span_once_as_completed_sync(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """Reading a sync stream to the end inside ``with`` (then closing again) ends its span once, completed."""
    client = kind.client(request, is_async=False)
    fake.script(reply())
    with context(kind, client) as stream:
        assert read_all(kind, stream) == TEXT
        assert len(instrumented.spans()) == 1, "the span ends when the stream is exhausted"
    stream.close()
    assert_completed(only_span(instrumented))


@pytest.mark.parametrize("kind", _kinds())
async def test_fully_consumed_stream_ends_span_once_as_completed_async(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """Reading an async stream to the end inside ``async with`` (then closing again) ends its span once, completed."""
    client = kind.client(request, is_async=True)
    fake.script(reply())
    async with await acontext(kind, client) as stream:
        assert await aread_all(kind, stream) == TEXT
        assert len(instrumented.spans()) == 1, "the span ends when the stream is exhausted"
    await stream.close()
    assert_completed(only_span(instrumented))


@pytest.mark.parametrize("kind", _kinds())
def test_partially_read_stream_closed_ends_span_with_output_so_far_sync(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """``close()`` on a half-read sync stream ends its span once, not completed, with the text read so far."""
    client = kind.client(request, is_async=False)
    fake.script(reply())
    stream, manager = start(kind, client)
    try:
        seen = read_some(kind, stream)
        stream.close()
        assert_cut_short(only_span(instrumented), seen)
    finally:
        if manager is not None:
            manager.__exit__(None, None, None)
    assert len(instrumented.spans()) == 1


@pytest.mark.parametrize("kind", _kinds())
async def test_partially_read_stream_closed_ends_span_with_output_so_far_async(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """``await close()`` on a half-read async stream ends its span once, not completed, with the text so far."""
    client = kind.client(request, is_async=True)
    fake.script(reply())
    stream, manager = await astart(kind, client)
    try:
        seen = await aread_some(kind, stream)
        await stream.close()
        assert_cut_short(only_span(instrumented), seen)
    finally:
        if manager is not None:
            await manager.__aexit__(None, None, None)
    assert len(instrumented.spans()) == 1


@pytest.mark.parametrize("kind", _kinds())
def test_with_block_left_early_by_break_ends_span_sync(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """Breaking out of a sync stream's ``with`` ends its span once, when the block is left."""
    client = kind.client(request, is_async=False)
    fake.script(reply())
    with context(kind, client) as stream:
        seen = read_some(kind, stream)
        assert instrumented.spans() == []
    assert_cut_short(only_span(instrumented), seen)
    del stream
    gc.collect()
    assert len(instrumented.spans()) == 1


@pytest.mark.parametrize("kind", _kinds())
async def test_with_block_left_early_by_break_ends_span_async(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """Breaking out of an async stream's ``async with`` ends its span once, when the block is left."""
    client = kind.client(request, is_async=True)
    fake.script(reply())
    async with await acontext(kind, client) as stream:
        seen = await aread_some(kind, stream)
        assert instrumented.spans() == []
    assert_cut_short(only_span(instrumented), seen)
    del stream
    await collect_garbage()
    assert len(instrumented.spans()) == 1


class ApplicationError(Exception):
    """The application's own failure while handling a stream."""


def fail_inside_with(kind: Kind, client: Any, error: Exception, seen: list[str]) -> None:
    with context(kind, client) as stream:
        seen.append(read_some(kind, stream))
        raise error


async def afail_inside_with(kind: Kind, client: Any, error: Exception, seen: list[str]) -> None:
    async with await acontext(kind, client) as stream:
        seen.append(await aread_some(kind, stream))
        raise error


@pytest.mark.parametrize("kind", _kinds())
def test_application_exception_inside_with_propagates_unchanged_sync(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """The application's exception leaves a sync ``with`` unchanged; the span ends once, not marked as an error."""
    client = kind.client(request, is_async=False)
    fake.script(reply())
    error = ApplicationError("the application gave up")
    seen: list[str] = []
    with pytest.raises(ApplicationError) as raised:
        fail_inside_with(kind, client, error, seen)
    assert raised.value is error
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert_cut_short(only_span(instrumented), "".join(seen))


@pytest.mark.parametrize("kind", _kinds())
async def test_application_exception_inside_with_propagates_unchanged_async(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """The application's exception leaves an ``async with`` unchanged; the span ends once, not as an error."""
    client = kind.client(request, is_async=True)
    fake.script(reply())
    error = ApplicationError("the application gave up")
    seen: list[str] = []
    with pytest.raises(ApplicationError) as raised:
        await afail_inside_with(kind, client, error, seen)
    assert raised.value is error
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert_cut_short(only_span(instrumented), "".join(seen))


@pytest.mark.parametrize("kind", _kinds())
def test_dropped_half_read_stream_ends_span_when_garbage_collected_sync(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """A half-read sync stream the application drops ends its span once when collected, not completed."""
    client = kind.client(request, is_async=False)
    fake.script(reply())
    stream, manager = start(kind, client)
    seen = read_some(kind, stream)
    assert instrumented.spans() == []
    del stream, manager
    gc.collect()
    assert_cut_short(only_span(instrumented), seen)
    gc.collect()
    assert len(instrumented.spans()) == 1


@pytest.mark.parametrize("kind", _kinds())
async def test_dropped_half_read_stream_ends_span_when_garbage_collected_async(
    kind: Kind, fake: FakeProvider, instrumented: Any, request: pytest.FixtureRequest
) -> None:
    """A half-read async stream the application drops ends its span once when collected, not completed."""
    client = kind.client(request, is_async=True)
    fake.script(reply())
    stream, manager = await astart(kind, client)
    seen = await aread_some(kind, stream)
    assert instrumented.spans() == []
    del stream, manager
    await collect_garbage()
    assert_cut_short(only_span(instrumented), seen)
    await collect_garbage()
    assert len(instrumented.spans()) == 1


# --------------------------------------------------------------------------- #
# The provider breaks the stream
# --------------------------------------------------------------------------- #

BROKEN = [pytest.param("truncated_stream", id="truncated"), pytest.param("garbage_sse", id="garbage")]
#: a Malformed answer is built from the echo reply
ECHO = "echo: " + USER[-1]["content"]


def _consume(kind: Kind, client: Any, seen: list[str]) -> None:
    with context(kind, client) as stream:
        for item in stream:
            if text := kind.text(item):
                seen.append(text)


async def _aconsume(kind: Kind, client: Any, seen: list[str]) -> None:
    async with await acontext(kind, client) as stream:
        async for item in stream:
            if text := kind.text(item):
                seen.append(text)


def assert_failed(span: ReadableSpan, error: BaseException, app_text: str) -> None:
    assert span.attributes[sc.ERROR_TYPE] == type(error).__qualname__
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.AUDIT_STREAM_COMPLETED] is False
    (event,) = [event for event in span.events if event.name == "exception"]
    assert event.attributes["exception.type"] == f"{type(error).__module__}.{type(error).__qualname__}"
    collected = span_text(span)
    assert collected.startswith(app_text), (collected, app_text)
    assert ECHO.startswith(collected) and collected != ECHO, collected


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("kind", _kinds())
def test_provider_breaking_the_stream_raises_the_sdk_error_and_fails_the_span_sync(
    kind: Kind, broken: Any, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    """A cut or garbled sync stream raises what the SDK raises uninstrumented; the span ends once with ERROR."""
    client = kind.client(request, is_async=False)
    fake.script(Malformed(broken))
    with pytest.raises(Exception) as baseline:  # noqa: PT011 - whatever the SDK raises is the reference
        _consume(kind, client, [])

    telemetry = request.getfixturevalue("instrumented")
    fake.script(Malformed(broken))
    seen: list[str] = []
    with pytest.raises(type(baseline.value)) as raised:
        _consume(kind, client, seen)
    assert type(raised.value) is type(baseline.value)
    assert_failed(only_span(telemetry), raised.value, "".join(seen))


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("kind", _kinds())
async def test_provider_breaking_the_stream_raises_the_sdk_error_and_fails_the_span_async(
    kind: Kind, broken: Any, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    """A cut or garbled async stream raises what the SDK raises uninstrumented; the span ends once with ERROR."""
    client = kind.client(request, is_async=True)
    fake.script(Malformed(broken))
    with pytest.raises(Exception) as baseline:  # noqa: PT011 - whatever the SDK raises is the reference
        await _aconsume(kind, client, [])

    telemetry = request.getfixturevalue("instrumented")
    fake.script(Malformed(broken))
    seen: list[str] = []
    with pytest.raises(type(baseline.value)) as raised:
        await _aconsume(kind, client, seen)
    assert type(raised.value) is type(baseline.value)
    assert_failed(only_span(telemetry), raised.value, "".join(seen))


# --------------------------------------------------------------------------- #
# OpenAI stream usage
# --------------------------------------------------------------------------- #

_VOLATILE = frozenset({"created", "id"})


def norm(value: Any) -> Any:
    """A chunk as the application sees it, minus the server's random id and clock."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", warnings=False)
    if isinstance(value, dict):
        return {key: norm(item) for key, item in value.items() if key not in _VOLATILE}
    if isinstance(value, list):
        return [norm(item) for item in value]
    return value


def _usage_only(chunk: Any) -> bool:
    return not chunk.choices and chunk.usage is not None


def test_openai_stream_usage_recorded_without_application_seeing_usage_chunk_sync(
    fake: FakeProvider, oai: openai.OpenAI, request: pytest.FixtureRequest
) -> None:
    """Without stream_options, tokens are still recorded and the sync chunk list equals the uninstrumented one."""
    fake.script(reply())
    expected = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    telemetry = request.getfixturevalue("instrumented")
    fake.script(reply())
    got = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))

    assert [norm(chunk) for chunk in got] == [norm(chunk) for chunk in expected]
    assert not [chunk for chunk in got if _usage_only(chunk)]
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}, "usage was asked for on the wire"
    span = only_span(telemetry)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13
    assert span.attributes[sc.AUDIT_STREAM_CHUNKS] == len(got) + 1, "the hidden chunk was still read"


async def test_openai_stream_usage_recorded_without_application_seeing_usage_chunk_async(
    fake: FakeProvider, aoai: openai.AsyncOpenAI, request: pytest.FixtureRequest
) -> None:
    """Without stream_options, tokens are still recorded and the async chunk list equals the uninstrumented one."""
    fake.script(reply())
    expected = [c async for c in await aoai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)]
    telemetry = request.getfixturevalue("instrumented")
    fake.script(reply())
    got = [c async for c in await aoai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)]

    assert [norm(chunk) for chunk in got] == [norm(chunk) for chunk in expected]
    assert not [chunk for chunk in got if _usage_only(chunk)]
    span = only_span(telemetry)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13


@requires_sdk("openai.chat_helpers")
def test_openai_stream_helper_final_completion_unchanged_while_usage_recorded(
    fake: FakeProvider, oai: openai.OpenAI, request: pytest.FixtureRequest
) -> None:
    """Through chat.completions.stream(), the final completion has no usage, as uninstrumented; the span has it."""
    fake.script(reply())
    with oai.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
        expected = stream.get_final_completion()
    telemetry = request.getfixturevalue("instrumented")
    fake.script(reply())
    with oai.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
        got = stream.get_final_completion()
    assert got.usage is None and expected.usage is None
    assert norm(got) == norm(expected)
    span = only_span(telemetry)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13


def test_openai_stream_chunks_serialize_exactly_as_uninstrumented(
    fake: FakeProvider, oai: openai.OpenAI, request: pytest.FixtureRequest
) -> None:
    """The application's own ``chunk.to_dict()`` is the same with and without instrumentation."""
    fake.script(reply())
    expected = [chunk.to_dict() for chunk in oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)]
    request.getfixturevalue("instrumented")
    fake.script(reply())
    got = [chunk.to_dict() for chunk in oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)]
    assert norm(got) == norm(expected)


def test_openai_stream_usage_chunk_delivered_when_application_asks_sync(
    fake: FakeProvider, oai: openai.OpenAI, request: pytest.FixtureRequest
) -> None:
    """With stream_options.include_usage from the application, the sync stream DOES deliver the usage chunk."""
    options = {"include_usage": True}
    fake.script(reply())
    expected = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options=options))
    telemetry = request.getfixturevalue("instrumented")
    fake.script(reply())
    got = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options=options))

    assert [norm(chunk) for chunk in got] == [norm(chunk) for chunk in expected]
    assert _usage_only(got[-1])
    assert got[-1].usage.prompt_tokens == 12
    assert fake.requests[-1].body["stream_options"] == options
    span = only_span(telemetry)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13
    assert span.attributes[sc.AUDIT_STREAM_CHUNKS] == len(got)


async def test_openai_stream_usage_chunk_delivered_when_application_asks_async(
    fake: FakeProvider, aoai: openai.AsyncOpenAI, request: pytest.FixtureRequest
) -> None:
    """With stream_options.include_usage from the application, the async stream DOES deliver the usage chunk."""
    options = {"include_usage": True}
    telemetry = request.getfixturevalue("instrumented")
    fake.script(reply())
    stream = await aoai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options=options)
    got = [chunk async for chunk in stream]
    assert _usage_only(got[-1])
    assert got[-1].usage.completion_tokens == 13
    span = only_span(telemetry)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 12
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == 13


def test_openai_stream_without_usage_when_application_declines_it(
    fake: FakeProvider, oai: openai.OpenAI, instrumented: Any
) -> None:
    """An explicit include_usage=False from the application is respected: no usage chunk, no tokens invented."""
    fake.script(reply())
    got = list(
        oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": False})
    )
    assert fake.requests[-1].body["stream_options"] == {"include_usage": False}
    assert not [chunk for chunk in got if _usage_only(chunk)]
    span = only_span(instrumented)
    assert sc.USAGE_INPUT_TOKENS not in span.attributes
    assert span_text(span) == TEXT
