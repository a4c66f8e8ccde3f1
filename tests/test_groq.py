"""The groq SDK, driven for real against the fake provider (the Groq API speaks the OpenAI wire protocol)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import groq
import pytest
from opentelemetry.trace import StatusCode

from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.instrumentation.groq import GroqInstrumentor
from genai_audit.testing.fake_provider import Error, FakeProvider, Reply, ToolCall
from tests.conftest import Telemetry
from tests.sdk_support import http_client

USER = [{"role": "user", "content": "My card is 4111 1111 1111 1111, why was it declined?"}]


@pytest.fixture
def instrumented_groq(telemetry: Telemetry) -> Iterator[Telemetry]:
    from genai_audit.processors.pipeline import build_chain

    instrumentor = GroqInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            settings=Settings(), chain=build_chain(alerts=None))
    yield telemetry
    instrumentor.uninstrument()


@pytest.fixture
def client(fake: FakeProvider) -> groq.Groq:
    return groq.Groq(api_key="gsk-test", base_url=fake.url, max_retries=0,
                     http_client=http_client(groq))


@pytest.fixture
def aclient(fake: FakeProvider) -> groq.AsyncGroq:
    return groq.AsyncGroq(api_key="gsk-test", base_url=fake.url, max_retries=0,
                          http_client=http_client(groq, asynchronous=True))


def test_chat_is_one_span_for_groq_with_redacted_content(
    instrumented_groq: Telemetry, client: groq.Groq, fake: FakeProvider
) -> None:
    fake.script(Reply(text="Your card ending 1111 was declined.", input_tokens=14, output_tokens=7))
    result = client.chat.completions.create(model="llama-3.3-70b-versatile", messages=USER, temperature=0.2)  # type: ignore[arg-type]
    span = instrumented_groq.span()
    a = span.attributes
    assert span.name == "chat llama-3.3-70b-versatile"
    assert a[sc.PROVIDER_NAME] == "groq"
    assert a[sc.REQUEST_TEMPERATURE] == 0.2
    assert a[sc.RESPONSE_ID] == result.id
    assert a[sc.USAGE_INPUT_TOKENS] == 14 and a[sc.USAGE_OUTPUT_TOKENS] == 7
    assert a[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    prompt = json.loads(a[sc.INPUT_MESSAGES])  # type: ignore[arg-type]
    assert "4111" not in json.dumps(prompt) and "[CREDIT_CARD:" in prompt[0]["parts"][0]["content"]
    assert json.loads(a[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Your card ending 1111 was declined."  # type: ignore[arg-type]


def test_stream_and_tool_calls(instrumented_groq: Telemetry, client: groq.Groq, fake: FakeProvider) -> None:
    fake.script(Reply(tool_calls=[ToolCall("lookup_card", {"last4": "1111"})]))
    chunks = list(client.chat.completions.create(
        model="llama-3.3-70b-versatile", messages=USER, stream=True,  # type: ignore[call-overload]
    ))
    assert chunks[-1].x_groq is not None and chunks[-1].x_groq.usage is not None  # the Groq API's usage
    a = instrumented_groq.span().attributes
    assert a[sc.REQUEST_STREAM] is True and a[sc.AUDIT_STREAM_COMPLETED] is True
    assert a[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert a[sc.USAGE_OUTPUT_TOKENS] > 0  # type: ignore[operator]
    output = json.loads(a[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
    assert output[0]["parts"][0]["name"] == "lookup_card"


def test_requests_are_not_changed(instrumented_groq: Telemetry, client: groq.Groq, fake: FakeProvider) -> None:
    """Unlike the openai instrumentation, nothing is added to a groq request (no usage chunk asked for)."""
    fake.script(Reply(text="ok"))
    list(client.chat.completions.create(model="m", messages=USER, stream=True))  # type: ignore[call-overload]
    assert "stream_options" not in fake.requests[-1].body


async def test_async_and_errors(instrumented_groq: Telemetry, aclient: groq.AsyncGroq, fake: FakeProvider) -> None:
    fake.script(Reply(text="async ok"), Error(status=429, message="slow down"))
    await aclient.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(groq.RateLimitError):
        await aclient.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    ok, failed = instrumented_groq.spans()
    assert ok.attributes[sc.PROVIDER_NAME] == "groq"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[sc.ERROR_TYPE] == "RateLimitError"
    assert failed.attributes["http.response.status_code"] == 429


def test_raw_response(instrumented_groq: Telemetry, client: groq.Groq, fake: FakeProvider) -> None:
    fake.script(Reply(text="raw"))
    completion = client.chat.completions.with_raw_response.create(model="m", messages=USER).parse()  # type: ignore[arg-type]
    assert instrumented_groq.span().attributes[sc.RESPONSE_ID] == completion.id
