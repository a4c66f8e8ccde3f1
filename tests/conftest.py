"""Shared fixtures: a real fake-provider server, in-memory OpenTelemetry pipelines, instrumented SDKs."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_audit.config import Settings
from genai_audit.instrumentation.anthropic import AnthropicInstrumentor
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.testing.fake_provider import FakeProvider

pytest_plugins = ["tests.es_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _integrity_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every store the tests open keeps its integrity ledgers and signing key in a temporary directory.

    The user data directory is a temporary one too, so that nothing a test runs
    (default store, pseudonym key, ledgers, in subprocesses as well) touches the
    real one.
    """
    from genai_audit.checkpoint import SigningKey

    base = tmp_path_factory.mktemp("integrity")
    key = base / "signing-key.pem"
    key.write_bytes(SigningKey.generate().pem())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))
        patch.setenv("GENAI_AUDIT_INTEGRITY_DIR", str(base / "ledgers"))
        patch.setenv("GENAI_AUDIT_SIGNING_KEY_FILE", str(key))
        yield


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(provider: FakeProvider) -> Iterator[FakeProvider]:
    provider.reset()
    yield provider
    provider.reset()


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@contextmanager
def instrumenting(telemetry: Telemetry, settings: Settings) -> Iterator[Telemetry]:
    """Both SDKs instrumented into ``telemetry`` with ``settings``; uninstrumented on leaving."""
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, settings=settings
        )
    try:
        yield telemetry
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


@pytest.fixture
def instrumented(telemetry: Telemetry, settings: Settings) -> Iterator[Telemetry]:
    """Both SDKs instrumented into ``telemetry``; uninstrumented afterwards."""
    with instrumenting(telemetry, settings):
        yield telemetry


# One TLS context for every client: loading CA certificates per client dominates run time.
_TLS = ssl.create_default_context()


@pytest.fixture
def oai(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0,
                         http_client=openai.DefaultHttpxClient(verify=_TLS))


@pytest.fixture
def aoai(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0,
                              http_client=openai.DefaultAsyncHttpxClient(verify=_TLS))


@pytest.fixture
def claude(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=fake.anthropic_base_url, max_retries=0,
                               http_client=anthropic.DefaultHttpxClient(verify=_TLS))


@pytest.fixture
def aclaude(fake: FakeProvider) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", base_url=fake.anthropic_base_url, max_retries=0,
                                    http_client=anthropic.DefaultAsyncHttpxClient(verify=_TLS))
