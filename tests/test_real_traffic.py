"""What recorded real provider traffic showed wrong, each pinned through the real SDK against the fake provider."""

from __future__ import annotations

import base64
import json
import struct

import anthropic
import openai
import pytest

from genai_audit import semconv as sc
from genai_audit.testing.fake_provider import FakeProvider, Reply
from tests.conftest import Telemetry
from tests.sdk_support import http_client, requires_sdk

USER = [{"role": "user", "content": "Summarise my order"}]


def _through_proxy(fake: FakeProvider, base_url: str) -> openai.OpenAI:
    """A client of ``base_url`` whose requests reach the fake provider as their HTTP proxy."""
    return openai.OpenAI(api_key="k", base_url=base_url, max_retries=0,
                         http_client=http_client(openai, proxy=fake.url))


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://api.deepseek.com/v1", "deepseek"),
        ("http://api.x.ai/v1", "x_ai"),
        ("http://api.groq.com/openai/v1", "groq"),
        ("http://api.perplexity.ai/v1", "perplexity"),
        ("http://api.mistral.ai/v1", "mistral_ai"),
        ("http://generativelanguage.googleapis.com/v1beta/openai/v1", "gcp.gemini"),
        ("http://my-resource.openai.azure.com/openai/v1", "azure.ai.openai"),
        ("http://llm-gateway.internal.example/v1", "openai"),
    ],
)
def test_provider_name_follows_the_endpoint(
    instrumented: Telemetry, fake: FakeProvider, base_url: str, expected: str
) -> None:
    fake.script(Reply(text="Done."))
    _through_proxy(fake, base_url).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    attributes = instrumented.span().attributes
    assert attributes[sc.PROVIDER_NAME] == expected
    assert attributes[sc.SERVER_ADDRESS] == base_url.split("/")[2]


def _azure(fake: FakeProvider) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(api_key="k", azure_endpoint=fake.url, api_version="2024-10-21", max_retries=0,
                              http_client=http_client(openai))


def test_azure_client_is_azure_openai_whatever_its_endpoint(instrumented: Telemetry, fake: FakeProvider) -> None:
    fake.script(Reply(text="Hi."))
    _azure(fake).chat.completions.create(model="prod-gpt4o", messages=USER)  # type: ignore[arg-type]
    assert instrumented.span().attributes[sc.PROVIDER_NAME] == "azure.ai.openai"


def test_azure_content_filtered_choice_is_the_assistants(instrumented: Telemetry, fake: FakeProvider) -> None:
    """A filtered choice has no message; its output message is still the assistant's, with its reason."""
    fake.script(Reply(text="never shown", finish_reason="content_filter"))
    completion = _azure(fake).chat.completions.create(model="prod-gpt4o", messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].finish_reason == "content_filter"
    attributes = instrumented.span().attributes
    assert attributes[sc.RESPONSE_FINISH_REASONS] == ("content_filter",)
    output = json.loads(attributes[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
    assert output == [{"role": "assistant", "parts": [], "finish_reason": "content_filter"}]


@requires_sdk("openai.responses")
def test_responses_request_service_tier(instrumented: Telemetry, oai: openai.OpenAI, fake: FakeProvider) -> None:
    fake.script(Reply(text="ok"))
    oai.responses.create(model="gpt-4o", input="hi", service_tier="flex")
    assert instrumented.span().attributes[sc.OPENAI_REQUEST_SERVICE_TIER] == "flex"


def test_base64_embeddings_have_their_dimension(
    instrumented: Telemetry, oai: openai.OpenAI, fake: FakeProvider
) -> None:
    fake.script(Reply(input_tokens=3))
    result = oai.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="base64")
    vector = result.data[0].embedding
    assert isinstance(vector, str)
    dimensions = len(base64.b64decode(vector)) // struct.calcsize("<f")
    assert instrumented.span().attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == dimensions


TOOL = {"name": "lookup_order", "description": "Find an order",
        "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}}}


def test_anthropic_tools_are_functions(
    instrumented: Telemetry, claude: anthropic.Anthropic, fake: FakeProvider
) -> None:
    fake.script(Reply(text="ok"))
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER, tools=[TOOL])  # type: ignore[list-item]
    tools = json.loads(instrumented.span().attributes[sc.TOOL_DEFINITIONS])  # type: ignore[arg-type]
    assert tools == [{"type": "function", "name": "lookup_order", "description": "Find an order",
                      "parameters": TOOL["input_schema"]}]


@requires_sdk("anthropic.output_config")
def test_anthropic_output_config_json_schema_is_json_output(
    instrumented: Telemetry, claude: anthropic.Anthropic, fake: FakeProvider
) -> None:
    fake.script(Reply(text='{"ok": true}'))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    claude.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=USER,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert instrumented.span().attributes[sc.OUTPUT_TYPE] == "json"


@requires_sdk("anthropic.beta_messages")
def test_anthropic_beta_messages_are_instrumented(
    instrumented: Telemetry, claude: anthropic.Anthropic, fake: FakeProvider
) -> None:
    fake.script(Reply(text="beta answer"), Reply(text="beta stream"))
    message = claude.beta.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    with claude.beta.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=USER) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
    assert text == "beta stream"
    first, second = instrumented.spans()
    assert first.attributes[sc.RESPONSE_ID] == message.id
    for span, answer in ((first, "beta answer"), (second, "beta stream")):
        assert span.attributes[sc.PROVIDER_NAME] == "anthropic"
        output = json.loads(span.attributes[sc.OUTPUT_MESSAGES])  # type: ignore[arg-type]
        assert output[0]["parts"][0]["content"] == answer


def test_anthropic_stream_dropped_before_any_event_records_no_answer(
    instrumented: Telemetry, claude: anthropic.Anthropic, fake: FakeProvider
) -> None:
    fake.script(Reply(text="never read"))
    stream = claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER, stream=True)  # type: ignore[arg-type]
    stream.close()
    attributes = instrumented.span().attributes
    assert sc.RESPONSE_FINISH_REASONS not in attributes
    assert sc.OUTPUT_MESSAGES not in attributes
    assert attributes[sc.AUDIT_STREAM_COMPLETED] is False
