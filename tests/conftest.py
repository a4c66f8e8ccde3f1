"""Shared fixtures: a real fake-provider server, in-memory OpenTelemetry pipelines, instrumented SDKs."""

from __future__ import annotations

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
from tests import sdk_support
from tests.sdk_support import http_client

pytest_plugins = ["tests.es_fixtures"]


# --------------------------------------------------------------------------- #
# Tests of SDK features the installed SDK release lacks: deselected, and said so
# --------------------------------------------------------------------------- #

_SDK_DESELECTED = pytest.StashKey[dict[str, list[str]]]()


def pytest_report_header(config: pytest.Config) -> str:
    return "SDKs: " + ", ".join(f"{sdk} {sdk_support.installed(sdk)}" for sdk in ("openai", "anthropic"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect each test that ``@requires_sdk`` an SDK feature the installed SDK lacks (tests/sdk_support.py)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    by_feature: dict[str, list[str]] = {}
    for item in items:
        missing = sdk_support.absent(item)
        if missing:
            dropped.append(item)
            by_feature.setdefault(", ".join(missing), []).append(item.nodeid)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[_SDK_DESELECTED] = by_feature


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    by_feature = config.stash.get(_SDK_DESELECTED, {})
    if not by_feature:
        return
    terminalreporter.section("deselected: SDK features the installed SDKs lack")
    for names, nodeids in sorted(by_feature.items()):
        needs = "; ".join(
            f"{sdk_support.FEATURES[n].sdk} >= {sdk_support.FEATURES[n].since}, "
            f"installed {sdk_support.installed(sdk_support.FEATURES[n].sdk)}"
            for n in names.split(", ")
        )
        terminalreporter.write_line(f"{len(nodeids):4d} tests need {names} ({needs})")
        if config.option.verbose > 0:
            for nodeid in nodeids:
                terminalreporter.write_line(f"       {nodeid}")


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


@pytest.fixture
def oai(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0,
                         http_client=http_client(openai))


@pytest.fixture
def aoai(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="test", base_url=fake.openai_base_url, max_retries=0,
                              http_client=http_client(openai, asynchronous=True))


@pytest.fixture
def claude(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=fake.anthropic_base_url, max_retries=0,
                               http_client=http_client(anthropic))


@pytest.fixture
def aclaude(fake: FakeProvider) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", base_url=fake.anthropic_base_url, max_retries=0,
                                    http_client=http_client(anthropic, asynchronous=True))
