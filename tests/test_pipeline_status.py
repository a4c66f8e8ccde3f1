"""The pipeline's own losses as status documents: when they are written, what they say, and the rule that reads them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from genai_audit import semconv as sc
from genai_audit.bootstrap import remote_processor
from genai_audit.kibana.rules import rules
from genai_audit.store.elasticsearch import (
    EVENT_ATTRIBUTE_TYPES,
    RESOURCE_ATTRIBUTE_TYPES,
    SPAN_ATTRIBUTE_TYPES,
    TEMPLATE_VERSION,
    AuditDocument,
    ElasticsearchSpanExporter,
    logs_template,
    traces_template,
)
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.pipeline_status import PipelineCounters, PipelineStatusReporter
from tests.es_fixtures import RunningNode
from tests.lens_queries import rule_on_cluster


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent() -> list[AuditDocument]:
    return []


def reporter(sent: list[AuditDocument], clock: Clock, *, stored: bool = True) -> PipelineStatusReporter:
    def send(document: AuditDocument) -> bool:
        sent.append(document)
        return stored

    return PipelineStatusReporter("ns1", send, clock=clock, now_ns=lambda: 1_700_000_000_123_456_789,
                                  resource={"host.name": "h"})


def attributes(document: AuditDocument) -> dict[str, Any]:
    assert isinstance(document.source, dict)
    return dict(document.source["attributes"])


def test_nothing_lost_and_nothing_waiting_writes_nothing(sent: list[AuditDocument]) -> None:
    status = reporter(sent, Clock())
    assert status.observe(lambda: PipelineCounters(spool_quota_bytes=1 << 30)) is False
    assert sent == []


def test_losses_are_reported_as_counts_since_the_previous_status(sent: list[AuditDocument]) -> None:
    """Each status counts what was lost since the one before; the first goes out at once."""
    clock = Clock()
    status = reporter(sent, clock)
    assert status.observe(lambda: PipelineCounters(dropped=2, refused=1, dead_lettered=3, spool_quota_bytes=100))
    (first,) = sent
    assert first.index == "logs-genai_audit.otel-ns1"
    assert isinstance(first.source, dict) and first.source["event_name"] == sc.PIPELINE_STATUS_EVENT
    assert first.source["@timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert attributes(first) == {
        sc.AUDIT_PIPELINE_DROPPED: 2, sc.AUDIT_PIPELINE_REFUSED: 1, sc.AUDIT_PIPELINE_DEAD_LETTERED: 3,
        sc.AUDIT_PIPELINE_LOST: 6, sc.AUDIT_PIPELINE_SPOOL_PENDING: 0, sc.AUDIT_PIPELINE_SPOOL_BYTES: 0,
        sc.AUDIT_PIPELINE_SPOOL_QUOTA_BYTES: 100, sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL: False,
    }
    clock.now += 10  # within the interval: nothing, however much is lost
    assert not status.observe(lambda: PipelineCounters(dropped=5, refused=1, dead_lettered=3))
    clock.now += 60
    assert status.observe(lambda: PipelineCounters(dropped=5, refused=1, dead_lettered=4, spool_quota_bytes=100))
    second = attributes(sent[1])
    assert (second[sc.AUDIT_PIPELINE_DROPPED], second[sc.AUDIT_PIPELINE_DEAD_LETTERED]) == (3, 1)
    assert second[sc.AUDIT_PIPELINE_LOST] == 4 and second[sc.AUDIT_PIPELINE_REFUSED] == 0
    assert sent[0].id != sent[1].id and sent[1].id.startswith("pipeline-")


def test_backlog_and_a_nearly_full_spool_are_reported_once_a_minute(sent: list[AuditDocument]) -> None:
    clock = Clock()
    status = reporter(sent, clock)
    assert not status.observe(lambda: PipelineCounters(spool_pending=999, spool_bytes=10, spool_quota_bytes=100))
    assert status.observe(lambda: PipelineCounters(spool_pending=40, spool_bytes=90, spool_quota_bytes=100))
    assert attributes(sent[0])[sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL] is True
    assert attributes(sent[0])[sc.AUDIT_PIPELINE_LOST] == 0
    clock.now += 59
    assert not status.observe(lambda: PipelineCounters(spool_pending=4000, spool_bytes=10, spool_quota_bytes=100))
    clock.now += 1
    assert status.observe(lambda: PipelineCounters(spool_pending=4000, spool_bytes=10, spool_quota_bytes=100))
    assert attributes(sent[1])[sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL] is False
    assert attributes(sent[1])[sc.AUDIT_PIPELINE_SPOOL_PENDING] == 4000


def test_a_status_not_stored_keeps_its_losses_for_the_next(sent: list[AuditDocument]) -> None:
    clock = Clock()
    failing = reporter(sent, clock, stored=False)
    assert not failing.observe(lambda: PipelineCounters(refused=7))
    failing.send = lambda document: sent.append(document) is None  # the cluster answers again
    assert failing.observe(lambda: PipelineCounters(refused=9))  # no interval wait after a failure
    assert attributes(sent[-1])[sc.AUDIT_PIPELINE_REFUSED] == 9


def test_templates_type_the_status_fields_and_keep_content_searchable() -> None:
    """Version 3: the status fields, the resource's environment and service; content stays full-text."""
    assert TEMPLATE_VERSION == 3
    logs = logs_template()["mappings"]["properties"]["attributes"]["properties"]
    assert {name: logs[name]["type"] for name in EVENT_ATTRIBUTE_TYPES if name.startswith("gen_ai.audit.pipeline")} == {
        sc.AUDIT_PIPELINE_DROPPED: "long", sc.AUDIT_PIPELINE_REFUSED: "long", sc.AUDIT_PIPELINE_DEAD_LETTERED: "long",
        sc.AUDIT_PIPELINE_LOST: "long", sc.AUDIT_PIPELINE_SPOOL_PENDING: "long", sc.AUDIT_PIPELINE_SPOOL_BYTES: "long",
        sc.AUDIT_PIPELINE_SPOOL_QUOTA_BYTES: "long", sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL: "boolean",
    }
    traces = traces_template()["mappings"]["properties"]
    resource = traces["resource"]["properties"]["attributes"]["properties"]
    assert set(resource) == set(RESOURCE_ATTRIBUTE_TYPES) == {"service.name", sc.DEPLOYMENT_ENVIRONMENT}
    content = traces["attributes"]["properties"]
    for name in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS):
        assert content[name] == {"type": "text"} and SPAN_ATTRIBUTE_TYPES[name] == {"type": "text"}


# --- against the node ---------------------------------------------------------------------------------------------


def _spans(*attribute_sets: dict[str, Any]) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "pipeline-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai", "0.1.0")
    for attributes_ in attribute_sets:
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes_):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture
def namespace() -> str:
    return f"p{uuid.uuid4().hex[:12]}"


@pytest.fixture
def processor_env(tmp_path: Path, namespace: str) -> dict[str, str]:
    return {
        "GENAI_AUDIT_ES_NAMESPACE": namespace,
        sc.ENV_SPOOL_DIR: str(tmp_path / "spool"),
        sc.ENV_SPOOL_QUOTA_MB: "1",
        "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp_path / "dead-letters.jsonl"),
    }


@pytest.mark.integration
def test_spool_refusal_and_rejection_reach_elasticsearch_and_fire_the_rule(
    es_node: RunningNode, processor_env: dict[str, str], namespace: str
) -> None:
    """A span the full spool refuses and one the cluster rejects are counted in a status document the rule sees."""
    (spec,) = [r for r in rules() if r.key == "audit-pipeline-loss"]
    params = spec.params()
    es = negotiating_client(es_node.url, request_timeout=30)
    logs = f"logs-genai_audit.otel-{namespace}"
    # first a healthy backlog: a status document the rule must not fire on
    exporter = ElasticsearchSpanExporter(es_node.url, namespace=namespace, env={}, integrity=False,
                                         dead_letter_path=processor_env["GENAI_AUDIT_ES_DEAD_LETTER"])
    healthy = PipelineStatusReporter(namespace, exporter.create_once)
    assert healthy.observe(lambda: PipelineCounters(spool_pending=2000, spool_bytes=10, spool_quota_bytes=1 << 30))
    exporter.shutdown()
    es.indices.refresh(index=logs)
    assert es.count(index=logs)["count"] == 1
    assert rule_on_cluster(es, params, time.time_ns() // 1_000_000 + 1000, [logs]) == []
    started_ms = time.time_ns() // 1_000_000
    processor = remote_processor(es_node.url, processor_env)
    chat = {sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-4o"}
    try:
        (huge,) = _spans({**chat, sc.INPUT_MESSAGES: "x" * 1_200_000})  # above the 1 MB spool quota
        processor.on_end(huge)
        assert processor.flush_to_spool(10_000)
        for span in _spans({**chat, sc.USAGE_INPUT_TOKENS: "many"}, chat):  # the first is refused by the mapping
            processor.on_end(span)
        assert processor.force_flush(30_000)
    finally:
        processor.shutdown()
    assert processor.stats.refused == 1
    es.indices.refresh(index=logs)
    hits = es.search(
        index=logs, query={"range": {"@timestamp": {"gte": started_ms, "format": "epoch_millis"}}}
    )["hits"]["hits"]
    assert {h["_source"]["event_name"] for h in hits} == {sc.PIPELINE_STATUS_EVENT}
    totals = {
        name: sum(h["_source"]["attributes"][name] for h in hits)
        for name in (sc.AUDIT_PIPELINE_REFUSED, sc.AUDIT_PIPELINE_DEAD_LETTERED, sc.AUDIT_PIPELINE_LOST)
    }
    assert totals == {sc.AUDIT_PIPELINE_REFUSED: 1, sc.AUDIT_PIPELINE_DEAD_LETTERED: 1, sc.AUDIT_PIPELINE_LOST: 2}
    fields = es.field_caps(index=logs, fields="gen_ai.audit.pipeline.*")["fields"]
    assert set(fields[sc.AUDIT_PIPELINE_LOST]) == {"long"}
    assert set(fields[sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL]) == {"boolean"}
    dead = [json.loads(line) for line in Path(processor_env["GENAI_AUDIT_ES_DEAD_LETTER"]).read_text().splitlines()]
    assert len(dead) == 1
    assert rule_on_cluster(es, params, time.time_ns() // 1_000_000 + 1000, [logs]) == [("all documents", 1.0)]
    assert rule_on_cluster(es, params, started_ms - 1, [logs]) == []  # the healthy backlog alone
    es.close()
