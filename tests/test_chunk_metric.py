"""gen_ai.client.operation.time_per_output_chunk: a point per stream chunk after the first, when switched on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError, Settings
from genai_audit.testing.fake_provider import Reply
from tests.conftest import Telemetry, instrumenting

USER = [{"role": "user", "content": "Tell me about my order"}]


@pytest.fixture
def chunked(telemetry: Telemetry) -> Iterator[Telemetry]:
    with instrumenting(telemetry, Settings(chunk_metric=True)):
        yield telemetry


def _chunk_points(telemetry: Telemetry) -> tuple[int, float]:
    points = telemetry.metrics().get(sc.METRIC_TIME_PER_OUTPUT_CHUNK, [])
    return sum(p.count for p in points), sum(p.sum for p in points)


def test_a_point_per_chunk_the_application_sees_after_the_first(
    chunked: Telemetry, oai: openai.OpenAI, fake: Any
) -> None:
    fake.script(Reply(text="your order ships on Monday", input_tokens=6, output_tokens=5, chunk_size=4))
    stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)  # the usage chunk asked for is hidden, and not timed
    count, total = _chunk_points(chunked)
    assert count == len(chunks) - 1
    metrics = chunked.metrics()
    (duration,) = metrics[sc.METRIC_OPERATION_DURATION]
    assert 0 <= total <= duration.sum
    (point,) = metrics[sc.METRIC_TIME_PER_OUTPUT_CHUNK]
    assert point.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert list(point.explicit_bounds)[:2] == [0.01, 0.02]


def test_off_by_default(instrumented: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    fake.script(Reply(text="your order ships on Monday", chunk_size=4))
    assert len(list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))) > 2  # type: ignore[arg-type]
    metrics = instrumented.metrics()
    assert sc.METRIC_TIME_TO_FIRST_CHUNK in metrics
    assert sc.METRIC_TIME_PER_OUTPUT_CHUNK not in metrics


def test_no_points_without_a_stream(chunked: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    fake.script(Reply(text="fine"))
    oai.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    assert _chunk_points(chunked)[0] == 0


def test_a_stream_closed_early_counts_what_was_seen(chunked: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    fake.script(Reply(text="a b c d e f g h i j k l", chunk_size=2))
    stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)  # type: ignore[arg-type]
    next(stream), next(stream), next(stream)
    stream.close()
    assert _chunk_points(chunked)[0] == 2


async def test_async_stream(chunked: Telemetry, aoai: openai.AsyncOpenAI, fake: Any) -> None:
    fake.script(Reply(text="your order ships on Monday", chunk_size=5))
    stream = await aoai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream]
    assert _chunk_points(chunked)[0] == len(chunks) - 1


def test_anthropic_events_and_stream_manager(chunked: Telemetry, claude: anthropic.Anthropic, fake: Any) -> None:
    fake.script(Reply(text="a streamed reply", output_tokens=3), Reply(text="from the manager", output_tokens=3))
    events = list(claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, stream=True,
                                         messages=[{"role": "user", "content": "go"}]))
    assert _chunk_points(chunked)[0] == len(events) - 1
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64,
                                messages=[{"role": "user", "content": "go"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "from the manager"
    count, _ = _chunk_points(chunked)
    assert count > len(events) - 1 + 1  # the manager's raw events, several after its first


def test_the_switch_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).chunk_metric is False
    assert Settings.from_env({sc.ENV_CHUNK_METRIC: "true"}).chunk_metric is True
    with pytest.raises(ConfigError, match=sc.ENV_CHUNK_METRIC):
        Settings.from_env({sc.ENV_CHUNK_METRIC: "sometimes"})
