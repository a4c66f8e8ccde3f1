"""Never break the host application: faults inside genai-audit stay inside genai-audit.

Every wrapped SDK method is run twice against the same scripted answer: once
uninstrumented (the baseline) and once instrumented with one of our own
functions made to raise. The application must get exactly the baseline:
the same text, tool calls, usage, chunks and events, and the same SDK errors.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.instrumentation import _core, _streams
from genai_audit.instrumentation import anthropic as anthropic_pkg
from genai_audit.instrumentation.anthropic import AnthropicInstrumentor
from genai_audit.instrumentation.anthropic import _extract as anthropic_extract
from genai_audit.instrumentation.anthropic import _managers as anthropic_managers
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.instrumentation.openai import _accumulate as openai_accumulate
from genai_audit.instrumentation.openai import _extract as openai_extract
from genai_audit.processors import WITHHELD, AuditRecord, ProcessingChain
from genai_audit.testing.fake_provider import Error, FakeProvider, Reply, ToolCall
from tests.sdk_support import requires_sdk

# --------------------------------------------------------------------------- #
# The calls an application makes
# --------------------------------------------------------------------------- #

USER = [{"role": "user", "content": "What is the weather in Paris today?"}]
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
CLAUDE_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
SYSTEM = "You are a terse weather bot."


class Weather(BaseModel):
    city: str
    temperature_c: int


def tool_reply() -> Reply:
    return Reply(
        text="Let me look that up for you right now",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_weather_1")],
        input_tokens=14,
        output_tokens=9,
        chunk_size=5,
        response_id="resp_fixed_0001",
    )


def json_reply() -> Reply:
    return Reply(
        text='{"city": "Paris", "temperature_c": 21}', input_tokens=14, output_tokens=9, response_id="resp_fixed_0002"
    )


def embeddings_reply() -> Reply:
    return Reply(input_tokens=6)


_VOLATILE = frozenset({"created", "created_at", "completed_at"})


def norm(value: Any) -> Any:
    """What the application sees, minus wall-clock stamps and server-made random item ids."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", warnings=False)
    if isinstance(value, dict):
        return {
            key: norm(item)
            for key, item in value.items()
            if key not in _VOLATILE
            and not (key in ("id", "item_id") and isinstance(item, str) and item.startswith(("msg_", "fc_")))
        }
    if isinstance(value, (list, tuple)):
        return [norm(item) for item in value]
    return value


# --- sync ------------------------------------------------------------------------------
def chat(client: openai.OpenAI) -> Any:
    return norm(client.chat.completions.create(model="gpt-4o", messages=USER, tools=CHAT_TOOLS, temperature=0.2))


def chat_stream(client: openai.OpenAI) -> Any:
    stream = client.chat.completions.create(model="gpt-4o", messages=USER, tools=CHAT_TOOLS, stream=True)
    return [norm(chunk) for chunk in stream]


def chat_parse(client: openai.OpenAI) -> Any:
    completion = client.chat.completions.parse(model="gpt-4o", messages=USER, response_format=Weather)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    return norm(completion), parsed


def chat_helper_stream(client: openai.OpenAI) -> Any:
    with client.chat.completions.stream(model="gpt-4o", messages=USER, tools=CHAT_TOOLS) as stream:
        events = [norm(event) for event in stream]
        final = norm(stream.get_final_completion())
    return events, final


def embeddings(client: openai.OpenAI) -> Any:
    return norm(client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"]))


def responses(client: openai.OpenAI) -> Any:
    return norm(client.responses.create(model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS))


def responses_stream(client: openai.OpenAI) -> Any:
    stream = client.responses.create(
        model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS, stream=True
    )
    return [norm(event) for event in stream]


def responses_helper_stream(client: openai.OpenAI) -> Any:
    with client.responses.stream(model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS) as stream:
        events = [norm(event) for event in stream]
        final = norm(stream.get_final_response())
    return events, final


def claude_create(client: anthropic.Anthropic) -> Any:
    return norm(
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS
        )
    )


def claude_create_stream(client: anthropic.Anthropic) -> Any:
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS, stream=True
    )
    return [norm(event) for event in stream]


def claude_helper_stream(client: anthropic.Anthropic) -> Any:
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS
    ) as stream:
        events = [norm(event) for event in stream]
        final = norm(stream.get_final_message())
    return events, final


# --- async -----------------------------------------------------------------------------
async def achat(client: openai.AsyncOpenAI) -> Any:
    return norm(await client.chat.completions.create(model="gpt-4o", messages=USER, tools=CHAT_TOOLS, temperature=0.2))


async def achat_stream(client: openai.AsyncOpenAI) -> Any:
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=CHAT_TOOLS, stream=True)
    return [norm(chunk) async for chunk in stream]


async def achat_parse(client: openai.AsyncOpenAI) -> Any:
    completion = await client.chat.completions.parse(model="gpt-4o", messages=USER, response_format=Weather)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    return norm(completion), parsed


async def achat_helper_stream(client: openai.AsyncOpenAI) -> Any:
    async with client.chat.completions.stream(model="gpt-4o", messages=USER, tools=CHAT_TOOLS) as stream:
        events = [norm(event) async for event in stream]
        final = norm(await stream.get_final_completion())
    return events, final


async def aembeddings(client: openai.AsyncOpenAI) -> Any:
    return norm(await client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"]))


async def aresponses(client: openai.AsyncOpenAI) -> Any:
    return norm(await client.responses.create(model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS))


async def aresponses_stream(client: openai.AsyncOpenAI) -> Any:
    stream = await client.responses.create(
        model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS, stream=True
    )
    return [norm(event) async for event in stream]


async def aresponses_helper_stream(client: openai.AsyncOpenAI) -> Any:
    async with client.responses.stream(
        model="gpt-4o", input=USER, instructions=SYSTEM, tools=RESPONSES_TOOLS
    ) as stream:
        events = [norm(event) async for event in stream]
        final = norm(await stream.get_final_response())
    return events, final


async def aclaude_create(client: anthropic.AsyncAnthropic) -> Any:
    return norm(
        await client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS
        )
    )


async def aclaude_create_stream(client: anthropic.AsyncAnthropic) -> Any:
    stream = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS, stream=True
    )
    return [norm(event) async for event in stream]


async def aclaude_helper_stream(client: anthropic.AsyncAnthropic) -> Any:
    async with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, system=SYSTEM, messages=USER, tools=CLAUDE_TOOLS
    ) as stream:
        events = [norm(event) async for event in stream]
        final = norm(await stream.get_final_message())
    return events, final


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    provider: str  # "openai" | "anthropic"
    run: Callable[[Any], Any]
    arun: Callable[[Any], Awaitable[Any]]
    reply: Callable[[], Reply]
    faults: tuple[str, ...]
    #: SDK features (tests/sdk_support.py) newer than the oldest supported SDK release
    needs: tuple[str, ...] = ()

    @property
    def marks(self) -> list[pytest.MarkDecorator]:
        return [requires_sdk(*self.needs)] if self.needs else []

    def client(self, request: pytest.FixtureRequest, is_async: bool) -> Any:
        name = {
            ("openai", False): "oai",
            ("openai", True): "aoai",
            ("anthropic", False): "claude",
            ("anthropic", True): "aclaude",
        }[self.provider, is_async]
        return request.getfixturevalue(name)


COMMON = ("LLMCall.__init__", "LLMCall._finish", "content_attributes")
CHAT_STREAM_FAULTS = (
    "read_chat_request",
    "with_stream_usage",
    "chat_accumulator",
    "ChatAccumulator.feed",
    "ChatAccumulator.finish",
    "read_response_ids",
    "LLMCall.mark_first_chunk",
    "stream proxy",
    *COMMON,
)
RESPONSES_STREAM_FAULTS = (
    "read_responses_request",
    "responses_accumulator",
    "ResponsesAccumulator.feed",
    "ResponsesAccumulator.finish",
    "read_responses_response",
    "LLMCall.mark_first_chunk",
    "stream proxy",
    *COMMON,
)
CLAUDE_STREAM_FAULTS = (
    "claude.read_request",
    "StreamAccumulator.feed",
    "StreamAccumulator.finish",
    "claude.read_response",
    "LLMCall.mark_first_chunk",
    "stream proxy",
    *COMMON,
)

SCENARIOS = [
    Scenario(
        "openai.chat.completions.create",
        "openai",
        chat,
        achat,
        tool_reply,
        ("read_chat_request", "read_chat_response", "with_stream_usage", *COMMON),
    ),
    Scenario(
        "openai.chat.completions.create(stream=True)",
        "openai",
        chat_stream,
        achat_stream,
        tool_reply,
        CHAT_STREAM_FAULTS,
    ),
    Scenario(
        "openai.chat.completions.parse",
        "openai",
        chat_parse,
        achat_parse,
        json_reply,
        ("read_chat_request", "read_chat_response", *COMMON),
        ("openai.chat_helpers",),
    ),
    Scenario(
        "openai.chat.completions.stream",
        "openai",
        chat_helper_stream,
        achat_helper_stream,
        tool_reply,
        CHAT_STREAM_FAULTS,
        ("openai.chat_helpers",),
    ),
    Scenario(
        "openai.embeddings.create",
        "openai",
        embeddings,
        aembeddings,
        embeddings_reply,
        ("read_embeddings_request", "read_embeddings_response", *COMMON),
    ),
    Scenario(
        "openai.responses.create",
        "openai",
        responses,
        aresponses,
        tool_reply,
        ("read_responses_request", "read_responses_response", *COMMON),
        ("openai.responses",),
    ),
    Scenario(
        "openai.responses.create(stream=True)",
        "openai",
        responses_stream,
        aresponses_stream,
        tool_reply,
        RESPONSES_STREAM_FAULTS,
        ("openai.responses",),
    ),
    Scenario(
        "openai.responses.stream",
        "openai",
        responses_helper_stream,
        aresponses_helper_stream,
        tool_reply,
        RESPONSES_STREAM_FAULTS,
        ("openai.responses",),
    ),
    Scenario(
        "anthropic.messages.create",
        "anthropic",
        claude_create,
        aclaude_create,
        tool_reply,
        ("claude.read_request", "claude.read_response", *COMMON),
    ),
    Scenario(
        "anthropic.messages.create(stream=True)",
        "anthropic",
        claude_create_stream,
        aclaude_create_stream,
        tool_reply,
        ("claude.stream_accumulator", *CLAUDE_STREAM_FAULTS),
    ),
    Scenario(
        "anthropic.messages.stream",
        "anthropic",
        claude_helper_stream,
        aclaude_helper_stream,
        tool_reply,
        ("claude._attach", *CLAUDE_STREAM_FAULTS),
    ),
]

# --------------------------------------------------------------------------- #
# Fault injection
# --------------------------------------------------------------------------- #

#: fault name -> (owner, attribute). Everything is patched before instrumentation, so the
#: functions a CallSpec captures are the faulty ones too.
FAULTS: dict[str, tuple[Any, str]] = {
    "read_chat_request": (openai_extract, "read_chat_request"),
    "read_chat_response": (openai_extract, "read_chat_response"),
    "read_response_ids": (openai_extract, "read_response_ids"),
    "with_stream_usage": (openai_accumulate, "with_stream_usage"),
    "chat_accumulator": (openai_accumulate, "chat_accumulator"),
    "ChatAccumulator.feed": (openai_accumulate.ChatAccumulator, "feed"),
    "ChatAccumulator.finish": (openai_accumulate.ChatAccumulator, "finish"),
    "read_embeddings_request": (openai_extract, "read_embeddings_request"),
    "read_embeddings_response": (openai_extract, "read_embeddings_response"),
    "read_responses_request": (openai_extract, "read_responses_request"),
    "read_responses_response": (openai_extract, "read_responses_response"),
    "responses_accumulator": (openai_accumulate, "responses_accumulator"),
    "ResponsesAccumulator.feed": (openai_accumulate.ResponsesAccumulator, "feed"),
    "ResponsesAccumulator.finish": (openai_accumulate.ResponsesAccumulator, "finish"),
    "claude.read_request": (anthropic_extract, "read_request"),
    "claude.read_response": (anthropic_extract, "read_response"),
    "claude.stream_accumulator": (anthropic_extract, "stream_accumulator"),
    "StreamAccumulator.feed": (anthropic_extract.StreamAccumulator, "feed"),
    "StreamAccumulator.finish": (anthropic_extract.StreamAccumulator, "finish"),
    "claude._attach": (anthropic_managers, "_attach"),
    "LLMCall.__init__": (_core.LLMCall, "__init__"),
    "LLMCall._finish": (_core.LLMCall, "_finish"),
    "LLMCall.mark_first_chunk": (_core.LLMCall, "mark_first_chunk"),
    "content_attributes": (_core, "content_attributes"),
    "stream proxy": (_streams._StreamBase, "__init__"),
}
#: faults after which no span can be started at all
NO_SPAN = frozenset(
    {
        "LLMCall.__init__",
        "read_chat_request",
        "read_embeddings_request",
        "read_responses_request",
        "claude.read_request",
    }
)


class InjectedFault(RuntimeError):
    """Raised by genai-audit code made faulty by a test."""


class Faults:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.hits: Counter[str] = Counter()

    def inject(self, name: str) -> None:
        owner, attribute = FAULTS[name]

        def boom(*args: Any, **kwargs: Any) -> Any:
            self.hits[name] += 1
            raise InjectedFault(f"injected fault in {name}")

        self.monkeypatch.setattr(owner, attribute, boom)
        if owner is anthropic_extract:
            # The anthropic CallSpec is built once at import: rebuild it from the (patched) extractors.
            spec = dataclasses.replace(
                anthropic_pkg.SPEC,
                read_request=anthropic_extract.read_request,
                read_response=anthropic_extract.read_response,
                stream_accumulator=anthropic_extract.stream_accumulator,
            )
            self.monkeypatch.setattr(anthropic_pkg, "SPEC", spec)


def _cases(with_faults: bool) -> Iterator[Any]:
    for scenario in SCENARIOS:
        for fault in scenario.faults if with_faults else (None,):
            yield pytest.param(
                scenario, fault, id=f"{scenario.name}-{fault}" if fault else scenario.name, marks=scenario.marks
            )


def _check_span_after_fault(telemetry: Any, fault: str) -> None:
    spans = telemetry.spans()
    if fault in NO_SPAN:
        assert spans == []
    else:
        assert len(spans) == 1, "the span must still be exported once, whatever failed"


# --------------------------------------------------------------------------- #
# Results are untouched by faults
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("scenario", "fault"), list(_cases(with_faults=True)))
def test_faulty_instrumentation_returns_exactly_the_uninstrumented_result_sync(
    scenario: Scenario, fault: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A raising extractor/accumulator/span helper leaves the sync call's result identical to an uninstrumented run."""
    client = scenario.client(request, is_async=False)
    fake.script(scenario.reply())
    expected = scenario.run(client)

    faults = Faults(monkeypatch)
    faults.inject(fault)
    telemetry = request.getfixturevalue("instrumented")
    fake.script(scenario.reply())
    assert scenario.run(client) == expected
    assert faults.hits[fault] > 0, f"{fault} was never called: the fault was not exercised"
    _check_span_after_fault(telemetry, fault)


@pytest.mark.parametrize(("scenario", "fault"), list(_cases(with_faults=True)))
async def test_faulty_instrumentation_returns_exactly_the_uninstrumented_result_async(
    scenario: Scenario, fault: str, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A raising extractor/accumulator/span helper leaves the async call's result identical to an uninstrumented run."""
    client = scenario.client(request, is_async=True)
    fake.script(scenario.reply())
    expected = await scenario.arun(client)

    faults = Faults(monkeypatch)
    faults.inject(fault)
    telemetry = request.getfixturevalue("instrumented")
    fake.script(scenario.reply())
    assert await scenario.arun(client) == expected
    assert faults.hits[fault] > 0, f"{fault} was never called: the fault was not exercised"
    _check_span_after_fault(telemetry, fault)


@pytest.mark.parametrize(("scenario", "fault"), list(_cases(with_faults=False)))
def test_healthy_instrumentation_returns_exactly_the_uninstrumented_result_sync(
    scenario: Scenario, fault: None, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    """With nothing faulty, the sync result is identical to an uninstrumented run and one span is exported."""
    client = scenario.client(request, is_async=False)
    fake.script(scenario.reply())
    expected = scenario.run(client)
    errors_before = _core.internal_errors()

    telemetry = request.getfixturevalue("instrumented")
    fake.script(scenario.reply())
    assert scenario.run(client) == expected
    assert len(telemetry.spans()) == 1
    assert _core.internal_errors() == errors_before, "healthy calls must not hit the error boundary"


@pytest.mark.parametrize(("scenario", "fault"), list(_cases(with_faults=False)))
async def test_healthy_instrumentation_returns_exactly_the_uninstrumented_result_async(
    scenario: Scenario, fault: None, fake: FakeProvider, request: pytest.FixtureRequest
) -> None:
    """With nothing faulty, the async result is identical to an uninstrumented run and one span is exported."""
    client = scenario.client(request, is_async=True)
    fake.script(scenario.reply())
    expected = await scenario.arun(client)
    errors_before = _core.internal_errors()

    telemetry = request.getfixturevalue("instrumented")
    fake.script(scenario.reply())
    assert await scenario.arun(client) == expected
    assert len(telemetry.spans()) == 1
    assert _core.internal_errors() == errors_before, "healthy calls must not hit the error boundary"


@requires_sdk("openai.chat_helpers", "openai.responses")
def test_every_fault_at_once_leaves_anthropic_and_openai_results_untouched(
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
) -> None:
    """With every non-short-circuiting piece of genai-audit raising at once, non-stream results are unchanged."""
    runs = [(chat, oai), (chat_parse, oai), (embeddings, oai), (responses, oai), (claude_create, claude)]
    replies = [tool_reply, json_reply, embeddings_reply, tool_reply, tool_reply]
    expected = []
    for (run, client), reply in zip(runs, replies):
        fake.script(reply())
        expected.append(run(client))
    faults = Faults(monkeypatch)
    for name in FAULTS:
        if name not in NO_SPAN:
            faults.inject(name)
    telemetry = request.getfixturevalue("instrumented")
    for (run, client), reply, want in zip(runs, replies, expected):
        fake.script(reply())
        assert run(client) == want
    assert len(telemetry.spans()) == len(runs)


# --------------------------------------------------------------------------- #
# SDK errors propagate unchanged, faulty or not
# --------------------------------------------------------------------------- #

ERRORS = [pytest.param(Error(500), id="500"), pytest.param(Error(429, retry_after=0), id="429")]
ERROR_FAULTS = [None, "LLMCall._finish", "LLMCall.__init__", "content_attributes", "request reader"]


def _request_reader(scenario: Scenario) -> str:
    if scenario.provider == "anthropic":
        return "claude.read_request"
    if "embeddings" in scenario.name:
        return "read_embeddings_request"
    if "responses" in scenario.name:
        return "read_responses_request"
    return "read_chat_request"


def _error_cases() -> Iterator[Any]:
    for scenario in SCENARIOS:
        for fault in ERROR_FAULTS:
            yield pytest.param(scenario, fault, id=f"{scenario.name}-{fault or 'healthy'}", marks=scenario.marks)


def _status(exc: BaseException) -> Any:
    return getattr(exc, "status_code", None)


def _check_error_span(spans: list[ReadableSpan], fault: str | None, exc: BaseException) -> None:
    if fault in ("LLMCall.__init__", "request reader"):
        assert spans == []
        return
    assert len(spans) == 1
    if fault is None:
        span = spans[0]
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[sc.ERROR_TYPE] == type(exc).__qualname__
        assert span.attributes["http.response.status_code"] == _status(exc)


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize(("scenario", "fault"), list(_error_cases()))
def test_sdk_error_propagates_unchanged_whether_or_not_our_code_is_faulty_sync(
    scenario: Scenario,
    fault: str | None,
    error: Error,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """A provider error reaches the sync caller with the same exception type and status code as uninstrumented."""
    client = scenario.client(request, is_async=False)
    fake.script(error)
    with pytest.raises(Exception) as baseline:  # noqa: PT011 - the type is what is compared
        scenario.run(client)

    if fault is not None:
        Faults(monkeypatch).inject(_request_reader(scenario) if fault == "request reader" else fault)
    telemetry = request.getfixturevalue("instrumented")
    fake.script(error)
    with pytest.raises(type(baseline.value)) as got:
        scenario.run(client)
    assert type(got.value) is type(baseline.value)
    assert _status(got.value) == _status(baseline.value) == error.status
    _check_error_span(telemetry.spans(), fault, got.value)


@pytest.mark.parametrize("error", ERRORS)
@pytest.mark.parametrize(("scenario", "fault"), list(_error_cases()))
async def test_sdk_error_propagates_unchanged_whether_or_not_our_code_is_faulty_async(
    scenario: Scenario,
    fault: str | None,
    error: Error,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """A provider error reaches the async caller with the same exception type and status code as uninstrumented."""
    client = scenario.client(request, is_async=True)
    fake.script(error)
    with pytest.raises(Exception) as baseline:  # noqa: PT011 - the type is what is compared
        await scenario.arun(client)

    if fault is not None:
        Faults(monkeypatch).inject(_request_reader(scenario) if fault == "request reader" else fault)
    telemetry = request.getfixturevalue("instrumented")
    fake.script(error)
    with pytest.raises(type(baseline.value)) as got:
        await scenario.arun(client)
    assert type(got.value) is type(baseline.value)
    assert _status(got.value) == _status(baseline.value) == error.status
    _check_error_span(telemetry.spans(), fault, got.value)


# --------------------------------------------------------------------------- #
# A faulty processing chain fails closed
# --------------------------------------------------------------------------- #


def classify_and_crash(record: AuditRecord) -> None:
    """A processing step that breaks (as a redactor hitting an unexpected shape would)."""
    record.attributes["gen_ai.audit.classification"] = "internal"
    raise ValueError("redactor crashed")


@pytest.fixture
def instrument_with(telemetry: Any) -> Iterator[Callable[[ProcessingChain], Any]]:
    """Instrument both SDKs into ``telemetry`` with a given processing chain."""
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]

    def instrument(chain: ProcessingChain) -> Any:
        for instrumentor in instrumentors:
            instrumentor.instrument(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                settings=Settings(),
                chain=chain,
            )
        return telemetry

    yield instrument
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


CONTENT_KEYS = (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS)
CHAIN_SCENARIOS = [s for s in SCENARIOS if "embeddings" not in s.name]


def _assert_withheld(span: ReadableSpan, expect_keys: tuple[str, ...]) -> None:
    attributes = dict(span.attributes or {})
    assert attributes[sc.AUDIT_PROCESSING_FAILED] == ("classify_and_crash",)
    for key in expect_keys:
        assert attributes[key] == WITHHELD, key
    for key in CONTENT_KEYS:
        if key in attributes:
            assert attributes[key] == WITHHELD, f"{key} leaked: {attributes[key]!r}"
    text = repr(attributes)
    for secret in ("Paris", "terse weather bot", "get_weather", "look that up"):
        assert secret not in text


def _expected_content_keys(scenario: Scenario) -> tuple[str, ...]:
    keys = [sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES]
    if "parse" not in scenario.name:
        keys.append(sc.TOOL_DEFINITIONS)
    if scenario.provider == "anthropic" or "responses" in scenario.name:
        keys.append(sc.SYSTEM_INSTRUCTIONS)
    return tuple(keys)


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name, marks=s.marks) for s in CHAIN_SCENARIOS])
def test_failing_chain_step_withholds_all_content_and_still_exports_the_span_sync(
    scenario: Scenario,
    fake: FakeProvider,
    request: pytest.FixtureRequest,
    instrument_with: Callable[[ProcessingChain], Any],
) -> None:
    """A raising processing step replaces every content attribute by WITHHELD; result and span survive (sync)."""
    client = scenario.client(request, is_async=False)
    fake.script(scenario.reply())
    expected = scenario.run(client)
    telemetry = instrument_with(ProcessingChain([classify_and_crash]))
    fake.script(scenario.reply())
    assert scenario.run(client) == expected
    span = telemetry.span()
    _assert_withheld(span, _expected_content_keys(scenario))
    assert span.attributes["gen_ai.audit.classification"] == "internal", "attributes a step added are kept"
    assert span.attributes[sc.RESPONSE_ID].startswith("resp_fixed_")
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name, marks=s.marks) for s in CHAIN_SCENARIOS])
async def test_failing_chain_step_withholds_all_content_and_still_exports_the_span_async(
    scenario: Scenario,
    fake: FakeProvider,
    request: pytest.FixtureRequest,
    instrument_with: Callable[[ProcessingChain], Any],
) -> None:
    """A raising processing step replaces every content attribute by WITHHELD; result and span survive (async)."""
    client = scenario.client(request, is_async=True)
    fake.script(scenario.reply())
    expected = await scenario.arun(client)
    telemetry = instrument_with(ProcessingChain([classify_and_crash]))
    fake.script(scenario.reply())
    assert await scenario.arun(client) == expected
    _assert_withheld(telemetry.span(), _expected_content_keys(scenario))


def test_failing_chain_step_withholds_the_provider_error_message(
    fake: FakeProvider, oai: openai.OpenAI, instrument_with: Callable[[ProcessingChain], Any]
) -> None:
    """On an error call, a raising step withholds the exception message (status and event) but keeps error.type."""
    telemetry = instrument_with(ProcessingChain([classify_and_crash]))
    fake.script(Error(500, message="quota exceeded for user alice@example.com"))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    span = telemetry.span()
    assert span.attributes[sc.ERROR_TYPE] == "InternalServerError"
    assert span.attributes[sc.AUDIT_PROCESSING_FAILED] == ("classify_and_crash",)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == WITHHELD
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.message"] == WITHHELD
    assert "alice@example.com" not in repr(dict(span.attributes)) + repr([dict(e.attributes) for e in span.events])


def test_failing_chain_step_after_a_good_step_still_withholds(
    fake: FakeProvider, claude: anthropic.Anthropic, instrument_with: Callable[[ProcessingChain], Any]
) -> None:
    """A raising step after a redacting step withholds everything; later steps still run on the placeholders."""
    seen: list[dict[str, Any]] = []

    def redact_paris(record: AuditRecord) -> None:
        record.content = {key: repr(value).replace("Paris", "[CITY]") for key, value in record.content.items()}

    def audit_after(record: AuditRecord) -> None:
        seen.append(dict(record.content))

    telemetry = instrument_with(ProcessingChain([redact_paris, classify_and_crash, audit_after]))
    fake.script(tool_reply())
    claude_create(claude)
    _assert_withheld(telemetry.span(), (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS))
    assert seen and all(value == WITHHELD for value in seen[0].values())


class _BrokenChain(ProcessingChain):
    """A chain whose own call raises, whatever its steps."""

    def __call__(self, record: AuditRecord) -> AuditRecord:
        raise RuntimeError("chain broke")


def test_chain_that_itself_raises_withholds_content(
    fake: FakeProvider,
    oai: openai.OpenAI,
    instrument_with: Callable[[ProcessingChain], Any],
) -> None:
    """A chain whose own call raises (not a step) must fail closed too: no raw content on the span."""
    telemetry = instrument_with(_BrokenChain([]))
    fake.script(tool_reply())
    chat(oai)
    span = telemetry.span()
    for key in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.TOOL_DEFINITIONS):
        assert span.attributes[key] == WITHHELD, f"{key} exported unprocessed"
    assert "processing chain" in span.attributes[sc.AUDIT_PROCESSING_FAILED]
    assert "Paris" not in repr(dict(span.attributes))
