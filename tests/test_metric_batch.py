"""Metric points recorded in batches: nothing lost, nothing counted twice, every collection complete."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider

from genai_audit import semconv as sc
from genai_audit.config import ConfigError, Settings
from genai_audit.instrumentation import _core
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.testing.fake_provider import Reply
from tests.conftest import Telemetry, instrumenting

USER = [{"role": "user", "content": "Where is my order?"}]


@pytest.fixture
def batched(telemetry: Telemetry) -> Iterator[Telemetry]:
    """Instrumented with batches of three calls."""
    with instrumenting(telemetry, Settings(metric_batch=3)):
        yield telemetry


def _count(telemetry: Telemetry, name: str, token_type: str | None = None) -> int:
    points = telemetry.metrics().get(name, [])
    return sum(p.count for p in points if token_type is None or p.attributes[sc.TOKEN_TYPE] == token_type)


def test_points_wait_for_a_full_batch(batched: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    fake.script(*(Reply(text="ok", input_tokens=5, output_tokens=2) for _ in range(3)))
    for _ in range(2):
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert len(_core._PENDING) == 2
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert len(_core._PENDING) == 0
    assert _count(batched, sc.METRIC_OPERATION_DURATION) == 3


def test_a_collection_sees_every_finished_call(batched: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    """A batch not full yet is recorded before the reader collects: no point waits for the next one."""
    fake.script(Reply(text="ok", input_tokens=5, output_tokens=2), Reply(text="ok", input_tokens=7, output_tokens=3))
    stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    for _ in stream:
        pass
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert len(_core._PENDING) == 2
    metrics = batched.metrics()
    assert len(_core._PENDING) == 0
    assert sum(p.count for p in metrics[sc.METRIC_OPERATION_DURATION]) == 2
    assert sum(p.count for p in metrics[sc.METRIC_TIME_TO_FIRST_CHUNK]) == 1
    tokens = {p.attributes[sc.TOKEN_TYPE]: p.sum for p in metrics[sc.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": 12, "output": 5}
    # the instrument that does the recording reports nothing of its own
    assert sc.METRIC_POINTS_FLUSH not in metrics


def test_a_waiting_call_holds_its_spans_ids_only(batched: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    """Pending points keep the span's ids for their exemplars, not the ended span with its content."""
    fake.script(Reply(text="a long answer " * 100, input_tokens=5, output_tokens=2))
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    ((context, points),) = _core._PENDING
    held = trace.get_current_span(context)
    span = batched.span()
    assert not held.is_recording()
    assert held.get_span_context() == span.context
    assert len(points) == 3
    exemplars = [e for points in batched.metrics().values() for p in points for e in p.exemplars]
    assert len(exemplars) == 3
    assert {(e.trace_id, e.span_id) for e in exemplars} == {(span.context.trace_id, span.context.span_id)}


def test_a_batch_of_one_records_each_call_at_its_end(telemetry: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    with instrumenting(telemetry, Settings(metric_batch=1)):
        fake.script(Reply(text="ok"))
        oai.chat.completions.create(model="gpt-4o", messages=USER)
        assert len(_core._PENDING) == 0
        assert _count(telemetry, sc.METRIC_OPERATION_DURATION) == 1


def test_uninstrument_records_what_is_pending(telemetry: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        settings=Settings(metric_batch=50),
    )
    fake.script(Reply(text="ok"), Reply(text="ok"))
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert len(_core._PENDING) == 2
    instrumentor.uninstrument()
    assert len(_core._PENDING) == 0
    assert _count(telemetry, sc.METRIC_OPERATION_DURATION) == 2


def test_reinstrumenting_keeps_the_collection_hook(telemetry: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    """The SDK keeps the first registration of the hook instrument; it still records every call's points."""
    instrumentor = OpenAIInstrumentor()
    fake.script(Reply(text="ok"), Reply(text="ok"))
    for calls in (1, 2):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            settings=Settings(metric_batch=50),
        )
        oai.chat.completions.create(model="gpt-4o", messages=USER)
        assert len(_core._PENDING) == 1
        assert _count(telemetry, sc.METRIC_OPERATION_DURATION) == calls  # cumulative
        assert len(_core._PENDING) == 0
        instrumentor.uninstrument()


def test_points_from_many_threads_are_recorded_once(
    batched: Telemetry, oai: openai.OpenAI, fake: Any
) -> None:
    """Calls finishing in eight threads while another thread collects: every point lands exactly once."""
    threads, calls = 8, 12
    fake.script(*(Reply(text="ok", input_tokens=2, output_tokens=1) for _ in range(threads * calls)))
    collected: list[int] = []
    done = threading.Event()

    def work() -> None:
        for _ in range(calls):
            oai.chat.completions.create(model="gpt-4o", messages=USER)

    def collect() -> None:
        while not done.is_set():
            collected.append(_count(batched, sc.METRIC_OPERATION_DURATION))

    collector = threading.Thread(target=collect)
    workers = [threading.Thread(target=work) for _ in range(threads)]
    collector.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    collector.join()
    assert collected == sorted(collected)  # cumulative counts never go back
    assert _count(batched, sc.METRIC_OPERATION_DURATION) == threads * calls
    assert _count(batched, sc.METRIC_TOKEN_USAGE, "input") == threads * calls


class _Broken:
    def record(self, value: float, attributes: Any = None, context: Any = None) -> None:
        raise RuntimeError("exporter state broken")


def test_a_failing_point_does_not_stop_the_others(telemetry: Telemetry) -> None:
    meter = telemetry.meter_provider.get_meter("test")
    histogram = meter.create_histogram("h")
    before = _core.internal_errors()
    context = otel_context.Context()
    _core._PENDING.append((context, [(_Broken(), 1.0, {}), (histogram, 2.0, {"k": "v"})]))  # type: ignore[list-item]
    _core._PENDING.append((context, [(histogram, 3.0, {"k": "v"})]))
    _core.flush_metrics()
    assert _core.internal_errors() == before + 1
    (point,) = telemetry.metrics()["h"]
    assert (point.count, point.sum) == (2, 5.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_drops_its_parents_points(telemetry: Telemetry) -> None:
    histogram = telemetry.meter_provider.get_meter("test").create_histogram("h")
    _core._PENDING.append((otel_context.Context(), [(histogram, 1.0, {})]))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, then leave without running atexit
        os.write(write, str(len(_core._PENDING)).encode())
        os._exit(0)
    os.close(write)
    seen = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert seen == b"0"
    assert len(_core._PENDING) == 1
    _core.flush_metrics()
    assert telemetry.metrics()["h"][0].count == 1


def test_an_api_only_meter_provider_works(telemetry: Telemetry, oai: openai.OpenAI, fake: Any) -> None:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=NoOpMeterProvider())
    try:
        fake.script(Reply(text="fine"))
        result = oai.chat.completions.create(model="gpt-4o", messages=USER)
        assert result.choices[0].message.content == "fine"
        assert len(telemetry.spans()) == 1
    finally:
        instrumentor.uninstrument()
    assert len(_core._PENDING) == 0


def test_points_pending_at_exit_are_exported(fake: Any, tmp_path: Any) -> None:
    """An application that exits mid-batch: the SDK's exit-time export carries every call's points."""
    out = tmp_path / "points.txt"
    script = textwrap.dedent(
        f"""
        import openai
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
        from genai_audit.config import Settings
        from genai_audit.instrumentation.openai import OpenAIInstrumentor

        class Count(MetricExporter):
            def export(self, metrics_data, timeout_millis=10_000, **kwargs):
                with open({str(out)!r}, "a") as fh:
                    for rm in metrics_data.resource_metrics:
                        for sm in rm.scope_metrics:
                            for m in sm.metrics:
                                fh.write(f"{{m.name}} {{sum(p.count for p in m.data.data_points)}}\\n")
                return MetricExportResult.SUCCESS
            def force_flush(self, timeout_millis=10_000):
                return True
            def shutdown(self, timeout_millis=30_000, **kwargs):
                pass

        provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(Count(), 3_600_000)])
        OpenAIInstrumentor().instrument(meter_provider=provider, settings=Settings(metric_batch=10))
        client = openai.OpenAI(api_key="k", base_url={fake.openai_base_url!r}, max_retries=0)
        for _ in range(4):
            client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != sc.ENV_ENABLED}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.rsplit(" ", 1) for line in out.read_text().splitlines())
    assert lines[sc.METRIC_OPERATION_DURATION] == "4"
    assert lines[sc.METRIC_TOKEN_USAGE] == "8"
    assert sc.METRIC_POINTS_FLUSH not in lines


@pytest.mark.parametrize("raw", ["0", "-3", "ten"])
def test_a_bad_batch_size_is_a_clear_error(raw: str) -> None:
    with pytest.raises(ConfigError, match=sc.ENV_METRIC_BATCH):
        Settings.from_env({sc.ENV_METRIC_BATCH: raw})


def test_the_batch_size_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).metric_batch == 10
    assert Settings.from_env({sc.ENV_METRIC_BATCH: "1"}).metric_batch == 1
    assert Settings.from_env({sc.ENV_METRIC_BATCH: " 64 "}).metric_batch == 64
