"""The Elasticsearch store against a real single-node Elasticsearch 8.19 (the ``es_node`` fixture).

The tests marked ``es_smoke`` (templates, documents, idempotent re-export, rejections,
queries) run against the 9.x node as well.

Documents, templates and queries are checked on the node itself; faults are
produced by a real closed port and by a small HTTP proxy in front of the node
that answers chosen requests itself.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from elasticsearch import Elasticsearch
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind

import genai_audit
from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.instrumentation.anthropic import AnthropicInstrumentor
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.store.elasticsearch import (
    LOGS_TEMPLATE,
    TEMPLATE_PRIORITY,
    TRACES_TEMPLATE,
    AuditDocument,
    ElasticsearchSettings,
    ElasticsearchSpanExporter,
    RawJson,
    RetryPolicy,
    span_documents,
)
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.sqlite import Query, SqliteSpanExporter, connect, read_documents, read_events
from genai_audit.testing.fake_provider import Error, FakeProvider, Reply
from tests.es_fixtures import RunningNode

integration = pytest.mark.integration
es_smoke = pytest.mark.es_smoke  # also against the 9.x node
LINKED = SpanContext(trace_id=0x5B8EFFF798038103D269B633813FC60C, span_id=0xEEE19B7EC3C1B174, is_remote=True)
FAST_RETRY = RetryPolicy(max_attempts=3, max_seconds=10.0, initial_backoff=0.05, max_backoff=0.1)


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def es(es_node: RunningNode) -> Iterator[Elasticsearch]:
    client = negotiating_client(es_node.url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    """A data stream namespace of this test's own, so tests never see each other's documents."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def exporter(es_node: RunningNode, tmp_path: Path, namespace: str) -> Iterator[ElasticsearchSpanExporter]:
    made = ElasticsearchSpanExporter(
        es_node.url, namespace=namespace, dead_letter_path=tmp_path / "dead" / "letters.jsonl", env={}
    )
    yield made
    made.shutdown()


def spans_with(*attribute_sets: Mapping[str, Any], event: bool = False, link: bool = False) -> list[ReadableSpan]:
    """Finished spans from a real TracerProvider, one per attribute set (optionally with an event and a link)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-assistant"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai", "0.1.0")
    for attributes in attribute_sets:
        name = f"chat {attributes.get(sc.REQUEST_MODEL, 'gpt-4o')}"
        links = [Link(LINKED, {"link.reason": "retry of"})] if link else []
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=dict(attributes), links=links) as span:
            if event:
                span.add_event("exception", {"exception.type": "RateLimitError", "exception.message": "slow down"})
    provider.shutdown()
    return list(memory.get_finished_spans())


def chat_attributes(user: str = "alice", /, **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: "chat",
        sc.PROVIDER_NAME: "openai",
        sc.REQUEST_MODEL: "gpt-4o",
        sc.ENDUSER_ID: user,
        sc.SESSION_ID: "s-1",
        sc.USAGE_INPUT_TOKENS: 12,
        sc.USAGE_OUTPUT_TOKENS: 5,
        sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]),
    }
    attributes.update(extra)
    return attributes


def stream(kind: str, namespace: str) -> str:
    return f"{kind}-genai_audit.otel-{namespace}"


def search(es: Elasticsearch, index: str, query: Mapping[str, Any], **options: Any) -> list[dict[str, Any]]:
    es.indices.refresh(index=index, ignore_unavailable=True)
    found = es.search(index=index, query=dict(query), size=1000, ignore_unavailable=True, **options)
    return [hit["_source"] for hit in found["hits"]["hits"]]


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True)
    return int(es.count(index=index, ignore_unavailable=True)["count"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


Rule = Callable[[str, str, bytes], "tuple[int, dict[str, Any]] | None"]


class Proxy:
    """A real HTTP proxy in front of the node; ``rule`` may answer a request itself.

    It records each request's method, path and headers (names in lower case).
    """

    def __init__(self, upstream: str, rule: Rule) -> None:
        self.upstream = upstream
        self.rule = rule
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                answer = proxy.rule(self.command, self.path, body)
                if answer is not None:
                    status, payload = answer
                    self._reply(status, json.dumps(payload).encode(), "application/json")
                    return
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body or None,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self._reply(response.status, response.read(), response.headers.get("Content-Type", ""))
                except urllib.error.HTTPError as error:
                    self._reply(error.code, error.read(), error.headers.get("Content-Type", ""))

            def _reply(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def es_error(status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {
        "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
        "status": status,
    }


# --- documents ---------------------------------------------------------------------------------------


def test_attributes_copied_as_before_whatever_their_types() -> None:
    """The one-step copy of span attributes gives what the former per-attribute cleaning gave."""
    from genai_audit.serialize import span_document, valid_text

    class Text(str):
        pass

    lone = b"caf\xe9".decode("utf-8", "surrogateescape")
    attributes: dict[str, Any] = {
        "plain": "ascii",
        "accented": "zoë ☃",
        "lone": lone,
        f"key {lone}": 1,
        "subclass": Text("sub"),
        "numbers": (1, 2),
        "floats": (0.5, 1.5),
        "flags": (True, False),
        "texts": ("a", lone, "ü"),
        "int": 7,
        "float": 0.25,
        "bool": True,
    }
    (span,) = spans_with(attributes)

    def former(value: Any) -> Any:
        if isinstance(value, str):
            return valid_text(value)
        if isinstance(value, (tuple, list)):
            return [valid_text(v) if isinstance(v, str) else v for v in value]
        return value

    expected = {valid_text(key): former(value) for key, value in span.attributes.items()}
    copied = span_document(span)["attributes"]
    assert copied == expected
    assert list(copied) == list(expected)  # same order
    assert {key: type(value) for key, value in copied.items()} == {key: type(value) for key, value in expected.items()}
    assert copied["lone"] == "caf\ufffd" and copied["texts"] == ["a", "caf\ufffd", "ü"]
    json.dumps(copied, ensure_ascii=False).encode("utf-8")  # always encodable


# --- templates and mappings ------------------------------------------------------------------------


@integration
@es_smoke
def test_templates_installed_with_expected_mappings(
    exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str
) -> None:
    """Both templates are installed with priority, data stream and the typed audit fields."""
    spans = spans_with(
        chat_attributes(
            **{
                sc.USAGE_COST_USD: 0.0004,
                sc.AUDIT_CONSENT: "true",
                sc.AUDIT_CONTENT_CAPTURED: True,
                sc.AUDIT_TRUNCATED: [sc.INPUT_MESSAGES],
                sc.AUDIT_ORIGINAL_LENGTH_PREFIX + "input_messages": 2_000_000,
                sc.AUDIT_SHA256_PREFIX + "input_messages": "ab" * 32,
                sc.REQUEST_TEMPERATURE: 1,
                "custom.flag": "on",
            }
        ),
        event=True,
        link=True,
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS

    for name, pattern in ((TRACES_TEMPLATE, "traces-genai_audit.otel-*"), (LOGS_TEMPLATE, "logs-genai_audit.otel-*")):
        (template,) = es.indices.get_index_template(name=name)["index_templates"]
        body = template["index_template"]
        assert body["index_patterns"] == [pattern]
        assert body["priority"] == TEMPLATE_PRIORITY > 150  # above the stack's own otel templates
        assert "data_stream" in body
        assert body["_meta"]["managed_by"] == "genai-audit"

    (mapping,) = es.indices.get_mapping(index=stream("traces", namespace)).body.values()
    properties = mapping["mappings"]["properties"]
    assert properties["@timestamp"]["type"] == "date_nanos"
    assert properties["duration"]["type"] == "long"
    for keyword in ("trace_id", "span_id", "name", "kind"):
        assert properties[keyword]["type"] == "keyword"
    assert properties["status"]["properties"]["code"]["type"] == "keyword"
    attributes = properties["attributes"]
    assert attributes["type"] == "passthrough"
    fields = attributes["properties"]
    expected = {
        sc.REQUEST_MODEL: "keyword",
        sc.ENDUSER_ID: "keyword",
        sc.SESSION_ID: "keyword",
        sc.AUDIT_CONSENT: "keyword",
        sc.USAGE_INPUT_TOKENS: "long",
        sc.USAGE_OUTPUT_TOKENS: "long",
        sc.USAGE_COST_USD: "double",
        sc.AUDIT_CONTENT_CAPTURED: "boolean",
        sc.AUDIT_TRUNCATED: "keyword",
        sc.INPUT_MESSAGES: "text",
        sc.OUTPUT_MESSAGES: "text",
        sc.SYSTEM_INSTRUCTIONS: "text",
        sc.REQUEST_TEMPERATURE: "double",
        sc.AUDIT_ORIGINAL_LENGTH_PREFIX + "input_messages": "long",
        sc.AUDIT_SHA256_PREFIX + "input_messages": "keyword",
        "custom.flag": "keyword",  # other strings are keywords, with their dotted names kept flat
    }
    assert {name: fields[name]["type"] for name in expected} == expected
    assert properties["resource"]["properties"]["attributes"]["type"] == "passthrough"
    assert properties["scope"]["properties"]["attributes"]["type"] == "passthrough"
    assert properties["links"]["properties"]["attributes"]["type"] == "flattened"
    (stored,) = search(es, stream("traces", namespace), {"term": {"links.trace_id": format(LINKED.trace_id, "032x")}})
    assert stored["links"][0]["attributes"] == {"link.reason": "retry of"}

    (logs,) = es.indices.get_mapping(index=stream("logs", namespace)).body.values()
    log_fields = logs["mappings"]["properties"]["attributes"]["properties"]
    assert log_fields["exception.message"]["type"] == "text"
    assert log_fields["exception.type"]["type"] == "keyword"


@integration
def test_templates_not_rewritten_when_current(es_node: RunningNode, tmp_path: Path, namespace: str) -> None:
    """A second exporter finds the templates at the current version and only reads them."""
    first = ElasticsearchSpanExporter(es_node.url, namespace=namespace, dead_letter_path=tmp_path / "d", env={})
    first.install_templates()
    seen: list[tuple[str, str]] = []

    def watch(method: str, path: str, body: bytes) -> None:
        seen.append((method, path))

    with Proxy(es_node.url, watch) as proxy:
        second = ElasticsearchSpanExporter(proxy.url, namespace=namespace, dead_letter_path=tmp_path / "d", env={})
        second.install_templates()
        second.shutdown()
    first.shutdown()
    assert {method for method, _ in seen} == {"GET"}


# --- the documents ----------------------------------------------------------------------------------


@integration
@es_smoke
def test_same_documents_as_sqlite_store(
    es_node: RunningNode,
    es: Elasticsearch,
    tmp_path: Path,
    fake: FakeProvider,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
) -> None:
    """Instrumented calls stored by both stores give identical span and event documents."""
    sqlite = SqliteSpanExporter(tmp_path / "audit.db")
    exporter = ElasticsearchSpanExporter(es_node.url, dead_letter_path=tmp_path / "dead.jsonl", env={})
    provider = TracerProvider(resource=Resource.create({"service.name": "support-assistant"}))
    provider.add_span_processor(SimpleSpanProcessor(sqlite))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    try:
        with genai_audit.context(
            user_id="alice", session_id="s-es-1", feature="support-chat", consent=True, request_id="req-1"
        ):
            oai.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {"role": "system", "content": "You are a support assistant."},
                    {"role": "user", "content": "Where is my order 1234?"},
                ],
                temperature=0.2,
            )
            fake.script(Reply(text="It ships tomorrow, Ünïcödé ✓", chunk_size=4))
            for _ in oai.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "When?"}]
            ):
                pass
            oai.embeddings.create(model="text-embedding-3-small", input=["order 1234"])
            claude.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                system="Be brief.",
                messages=[{"role": "user", "content": "Summarise the order"}],
            )
            fake.script(Error(400, "bad request"))
            with pytest.raises(openai.BadRequestError):
                oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()

    conn = connect(tmp_path / "audit.db", create=False)
    stored = list(read_documents(conn, Query()))
    assert len(stored) == 5
    assert exporter.exported == 5 + 1  # five spans and the error's exception event
    trace_ids = sorted({doc["trace_id"] for doc in stored})
    indexed = search(es, stream("traces", "default"), {"terms": {"trace_id": trace_ids}})

    def key(doc: Mapping[str, Any]) -> tuple[str, str]:
        return doc["trace_id"], doc["span_id"]

    def content(doc: Mapping[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in doc.items() if name != "integrity"}

    # each store seals in a stream of its own; the sealed content, hence the leaf hash, is the same
    assert {key(doc): content(doc) for doc in indexed} == {key(doc): content(doc) for doc in stored}
    assert {key(doc): doc["integrity"]["leaf"] for doc in indexed} == {
        key(doc): doc["integrity"]["leaf"] for doc in stored
    }

    stored_events = [event for doc in stored for event in read_events(conn, doc["trace_id"], doc["span_id"])]
    indexed_events = search(es, stream("logs", "default"), {"terms": {"trace_id": trace_ids}})
    assert len(stored_events) == 1
    assert indexed_events == stored_events


@integration
@es_smoke
def test_reexport_is_idempotent(exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str) -> None:
    """Exporting the same spans again stores nothing new; the repeats are counted as duplicates."""
    spans = spans_with(chat_attributes("a"), chat_attributes("b"), chat_attributes("c"), event=True)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    report = exporter.export_documents(span_documents(spans, namespace))
    assert (report.indexed, report.duplicates, report.delivered) == (0, 6, True)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert (exporter.exported, exporter.duplicates, exporter.dead_lettered) == (6, 12, 0)
    assert count(es, stream("traces", namespace)) == 3
    assert count(es, stream("logs", namespace)) == 3


# --- permanent rejections ---------------------------------------------------------------------------


@integration
@es_smoke
def test_rejected_document_dead_lettered_with_reason(
    exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str
) -> None:
    """A type conflict rejects one document; the others of the same batch are stored."""
    spans = spans_with(
        chat_attributes("a"), chat_attributes("b", **{sc.USAGE_INPUT_TOKENS: "lots"}), chat_attributes("c")
    )
    bad_id = spans[1].context.trace_id if spans[1].context else 0
    report = exporter.export_documents(span_documents(spans, namespace))
    assert report.delivered
    assert report.indexed == 2
    (rejection,) = report.dead_lettered
    assert rejection.status == 400
    assert rejection.error_type in {"document_parsing_exception", "mapper_parsing_exception"}
    assert rejection.document.source["trace_id"] == format(bad_id, "032x")
    assert report.indexed + len(report.dead_lettered) == len(spans)
    assert count(es, stream("traces", namespace)) == report.indexed
    assert exporter.dead_lettered == 1

    path = exporter.dead_letter_path
    (line,) = path.read_text(encoding="utf-8").splitlines()
    letter = json.loads(line)
    assert letter["status"] == 400 and letter["id"] == rejection.document.id
    assert letter["index"] == stream("traces", namespace)
    assert sc.USAGE_INPUT_TOKENS in letter["error"]["reason"]
    assert letter["document"]["attributes"][sc.USAGE_INPUT_TOKENS] == "lots"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700

    # the export of the same batch stays SUCCESS: the rejected span is kept, not lost
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.duplicates == 2 and exporter.dead_lettered == 2


@integration
def test_too_large_document_dead_lettered_locally(
    es_node: RunningNode, es: Elasticsearch, tmp_path: Path, namespace: str
) -> None:
    """A document above the size limit is not sent; it goes to the dead-letter file."""
    exporter = ElasticsearchSpanExporter(
        es_node.url, namespace=namespace, dead_letter_path=tmp_path / "dead.jsonl", max_document_bytes=50_000, env={}
    )
    spans = spans_with(chat_attributes("a"), chat_attributes("b", **{sc.INPUT_MESSAGES: "x" * 60_000}))
    report = exporter.export_documents(span_documents(spans, namespace))
    exporter.shutdown()
    assert report.indexed == 1
    (rejection,) = report.dead_lettered
    assert (rejection.status, rejection.error_type) == (413, "document_too_large")
    assert count(es, stream("traces", namespace)) == 1


@integration
def test_request_rejected_as_too_large_is_split_to_find_the_document(
    es_node: RunningNode, es: Elasticsearch, tmp_path: Path, namespace: str
) -> None:
    """A request the server refuses as a whole (413) is halved until the offending document is alone."""

    def too_large(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path.startswith("/_bulk") and len(body) > 40_000:
            return 413, es_error(413, "content_too_long_exception", "request body is too large")
        return None

    with Proxy(es_node.url, too_large) as proxy:
        exporter = ElasticsearchSpanExporter(
            proxy.url, namespace=namespace, dead_letter_path=tmp_path / "dead.jsonl", env={}
        )
        spans = spans_with(
            *[chat_attributes(f"u{i}") for i in range(6)], chat_attributes("big", **{sc.INPUT_MESSAGES: "y" * 45_000})
        )
        report = exporter.export_documents(span_documents(spans, namespace))
        exporter.shutdown()
    assert report.indexed == 6
    (rejection,) = report.dead_lettered
    assert rejection.status == 413 and rejection.document.source["attributes"][sc.ENDUSER_ID] == "big"
    assert count(es, stream("traces", namespace)) == 6


@integration
def test_bulk_body_built_from_encoded_documents_and_answer_filtered(
    es_node: RunningNode, es: Elasticsearch, tmp_path: Path, namespace: str
) -> None:
    """The exporter writes the bulk body itself (spooled JSON as it is, ids and index names escaped) and asks
    only for each item's status and error; a mixed batch is stored, refused and reported item by item."""
    bodies: list[bytes] = []

    def watch(method: str, path: str, body: bytes) -> None:
        if path.startswith("/_bulk"):
            bodies.append(body)

    traces = stream("traces", namespace)
    good = {"@timestamp": "2026-01-02T03:04:05.000000000Z", "attributes": {sc.ENDUSER_ID: "zoë \"quoted\" \\ ☃"}}
    bad = {"@timestamp": "2026-01-02T03:04:05.000000000Z", "attributes": {sc.USAGE_INPUT_TOKENS: "lots"}}
    documents = [
        AuditDocument(traces, 'odd "id" \\ ☃', RawJson(json.dumps(good, ensure_ascii=False))),
        AuditDocument(traces, "refused", bad),
        AuditDocument(traces, "plain", dict(good)),
    ]
    with Proxy(es_node.url, watch) as proxy:
        exporter = ElasticsearchSpanExporter(
            proxy.url, namespace=namespace, dead_letter_path=tmp_path / "d.jsonl", retry=FAST_RETRY, env={}
        )
        report = exporter.export_documents(documents)
        again = exporter.export_documents(documents[:1])
        exporter.shutdown()
    bulk_paths = [path for _method, path, _headers in proxy.requests if path.startswith("/_bulk")]
    assert bulk_paths and all(p.endswith("?filter_path=items.*.status,items.*.error") for p in bulk_paths)
    lines = bodies[0].decode("utf-8").splitlines()
    assert json.loads(lines[0]) == {"create": {"_index": traces, "_id": 'odd "id" \\ ☃'}}
    assert lines[1] == json.dumps(good, ensure_ascii=False)  # the stored text, byte for byte
    assert bodies[0].endswith(b"\n") and len(lines) == 6
    assert (report.indexed, report.delivered, [r.document.id for r in report.dead_lettered]) == (2, True, ["refused"])
    assert report.dead_lettered[0].error_type in {"document_parsing_exception", "mapper_parsing_exception"}
    assert (again.indexed, again.duplicates) == (0, 1)  # 409 from the filtered answer: already stored
    assert search(es, traces, {"ids": {"values": ['odd "id" \\ ☃']}}) == [good]


# --- transient failures -----------------------------------------------------------------------------


@integration
@pytest.mark.parametrize("manage_templates", [True, False], ids=["templates", "bulk-only"])
def test_connection_refused_retried_then_failure(tmp_path: Path, manage_templates: bool) -> None:
    """A closed port: bounded retries, FAILURE without raising, every document reported undelivered."""
    exporter = ElasticsearchSpanExporter(
        f"http://127.0.0.1:{closed_port()}",
        dead_letter_path=tmp_path / "d.jsonl",
        retry=FAST_RETRY,
        manage_templates=manage_templates,
        env={},
    )
    spans = spans_with(chat_attributes("a"), chat_attributes("b"), event=True)
    started = time.monotonic()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 10
    assert (exporter.failed_batches, exporter.retries, exporter.undelivered) == (1, 2, 4)
    documents = list(span_documents(spans))
    report = exporter.export_documents(documents)
    assert not report.delivered and report.attempts == 3
    assert report.undelivered == documents
    assert report.last_error is not None and "ConnectionError" in report.last_error
    assert exporter.exported == 0 and not (tmp_path / "d.jsonl").exists()
    exporter.shutdown()


@integration
def test_throttling_and_server_errors_are_retried(
    es_node: RunningNode, es: Elasticsearch, tmp_path: Path, namespace: str
) -> None:
    """429 and 503 answers to the bulk request are retried with backoff until the node takes the batch."""
    answers = [
        (429, es_error(429, "es_rejected_execution_exception", "queue full")),
        (503, es_error(503, "unavailable_shards_exception", "primary not active")),
    ]

    def flaky(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        return answers.pop(0) if path.startswith("/_bulk") and answers else None

    with Proxy(es_node.url, flaky) as proxy:
        exporter = ElasticsearchSpanExporter(
            proxy.url, namespace=namespace, dead_letter_path=tmp_path / "d.jsonl", retry=FAST_RETRY, env={}
        )
        report = exporter.export_documents(span_documents(spans_with(chat_attributes("a")), namespace))
        exporter.shutdown()
    assert (report.delivered, report.indexed, report.attempts, exporter.retries) == (True, 1, 3, 2)
    assert count(es, stream("traces", namespace)) == 1


@integration
@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, "security_exception"), (403, "security_exception"), (400, "media_type_header_exception")],
)
def test_request_level_refusal_holds_documents(
    es_node: RunningNode, tmp_path: Path, namespace: str, status: int, error_type: str
) -> None:
    """An answer about the whole request is no document's fault: undelivered at once, nothing dead-lettered."""

    def refuse(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        return (status, es_error(status, error_type, "refused")) if path.startswith("/_bulk") else None

    with Proxy(es_node.url, refuse) as proxy:
        exporter = ElasticsearchSpanExporter(
            proxy.url, namespace=namespace, dead_letter_path=tmp_path / "d.jsonl", retry=FAST_RETRY, env={}
        )
        documents = list(span_documents(spans_with(chat_attributes("a"), chat_attributes("b")), namespace))
        report = exporter.export_documents(documents)
        exporter.shutdown()
    assert (report.delivered, report.attempts, report.dead_lettered) == (False, 1, [])
    assert report.undelivered == documents
    assert report.last_error is not None and error_type in report.last_error
    assert not (tmp_path / "d.jsonl").exists()


@integration
def test_shutdown_interrupts_backoff(tmp_path: Path) -> None:
    """Shutting down while the exporter waits to retry ends the wait; the batch is reported undelivered."""
    slow = RetryPolicy(max_attempts=10, max_seconds=120, initial_backoff=30, max_backoff=30)
    exporter = ElasticsearchSpanExporter(
        f"http://127.0.0.1:{closed_port()}", dead_letter_path=tmp_path / "d", retry=slow, env={}
    )
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export(spans_with(chat_attributes()))))
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    exporter.shutdown()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert results == [SpanExportResult.FAILURE]
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.FAILURE


# --- queries the stored documents answer ---------------------------------------------------------------


@integration
@es_smoke
def test_passthrough_fields_queryable_without_prefix(
    exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str
) -> None:
    """``gen_ai.request.model`` (span) and ``service.name`` (resource) are found without ``attributes.``."""
    spans = spans_with(
        chat_attributes(**{sc.REQUEST_MODEL: "gpt-4o"}), chat_attributes(**{sc.REQUEST_MODEL: "claude-sonnet-4-5"})
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    index = stream("traces", namespace)
    short = search(es, index, {"term": {sc.REQUEST_MODEL: "gpt-4o"}})
    full = search(es, index, {"term": {f"attributes.{sc.REQUEST_MODEL}": "gpt-4o"}})
    assert len(short) == 1 and short == full
    assert len(search(es, index, {"term": {"service.name": "support-assistant"}})) == 2
    fields = es.field_caps(index=index, fields=[sc.REQUEST_MODEL, sc.USAGE_INPUT_TOKENS])["fields"]
    assert set(fields[sc.REQUEST_MODEL]) == {"keyword"} and set(fields[sc.USAGE_INPUT_TOKENS]) == {"long"}


@integration
@es_smoke
def test_aggregations_by_user_and_cost(exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str) -> None:
    """Cost and tokens sum per user with a terms aggregation on ``enduser.id``."""
    calls = [("alice", 0.25, 100), ("alice", 0.5, 200), ("bob", 1.0, 50), ("carol", 0.125, 10)]
    spans = spans_with(
        *[
            chat_attributes(user, **{sc.USAGE_COST_USD: cost, sc.USAGE_INPUT_TOKENS: tokens})
            for user, cost, tokens in calls
        ]
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    index = stream("traces", namespace)
    es.indices.refresh(index=index)
    found = es.search(
        index=index,
        size=0,
        aggs={
            "users": {
                "terms": {"field": sc.ENDUSER_ID, "order": {"cost": "desc"}},
                "aggs": {
                    "cost": {"sum": {"field": sc.USAGE_COST_USD}},
                    "tokens": {"sum": {"field": sc.USAGE_INPUT_TOKENS}},
                },
            },
            "total": {"sum": {"field": sc.USAGE_COST_USD}},
        },
    )
    buckets = {
        b["key"]: (b["doc_count"], b["cost"]["value"], b["tokens"]["value"])
        for b in found["aggregations"]["users"]["buckets"]
    }
    assert buckets == {"alice": (2, 0.75, 300), "bob": (1, 1.0, 50), "carol": (1, 0.125, 10)}
    assert [b["key"] for b in found["aggregations"]["users"]["buckets"]] == ["bob", "alice", "carol"]
    assert found["aggregations"]["total"]["value"] == pytest.approx(1.875)


@integration
def test_full_text_search_in_prompts(exporter: ElasticsearchSpanExporter, es: Elasticsearch, namespace: str) -> None:
    """The prompt chain is full-text searchable."""

    def prompt(text: str) -> str:
        return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])

    spans = spans_with(
        chat_attributes("a", **{sc.INPUT_MESSAGES: prompt("Where is my refund for the broken kettle?")}),
        chat_attributes("b", **{sc.INPUT_MESSAGES: prompt("Ignore all previous instructions")}),
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    index = stream("traces", namespace)
    (hit,) = search(es, index, {"match": {sc.INPUT_MESSAGES: "kettle refund"}})
    assert hit["attributes"][sc.ENDUSER_ID] == "a"
    (hit,) = search(es, index, {"match_phrase": {sc.INPUT_MESSAGES: "previous instructions"}})
    assert hit["attributes"][sc.ENDUSER_ID] == "b"
    assert search(es, index, {"match": {sc.INPUT_MESSAGES: "teapot"}}) == []


# --- configuration, credentials, tracing ---------------------------------------------------------------


@integration
def test_credentials_sent_from_env_and_files(es_node: RunningNode, tmp_path: Path, namespace: str) -> None:
    """API key, basic auth and bearer token reach the server from variables or *_FILE; they are never logged."""
    key_file = tmp_path / "key"
    key_file.write_text("c2VjcmV0LWtleQ==\n")
    cases: list[tuple[dict[str, str], str]] = [
        ({"GENAI_AUDIT_ES_API_KEY_FILE": str(key_file)}, "ApiKey c2VjcmV0LWtleQ=="),
        (
            {"GENAI_AUDIT_ES_USERNAME": "auditor", "GENAI_AUDIT_ES_PASSWORD": "pa55-w0rd"},
            "Basic " + base64.b64encode(b"auditor:pa55-w0rd").decode(),
        ),
        ({"GENAI_AUDIT_ES_BEARER_TOKEN": "tok-123"}, "Bearer tok-123"),
    ]
    with Proxy(es_node.url, lambda method, path, body: None) as proxy:
        for env, expected in cases:
            proxy.requests.clear()
            exporter = ElasticsearchSpanExporter(
                env={
                    **env,
                    "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": proxy.url,
                    "GENAI_AUDIT_ES_NAMESPACE": namespace,
                    "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp_path / "d.jsonl"),
                }
            )
            assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.SUCCESS
            exporter.shutdown()
            assert {headers.get("authorization") for _, _, headers in proxy.requests} == {expected}
            secret = expected.split(" ", 1)[1]
            assert secret not in repr(exporter.settings) and secret not in repr(exporter.__dict__)


@integration
def test_secrets_absent_from_logs_on_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A failing export logs the endpoint without its credentials, and no key."""
    caplog.set_level(logging.DEBUG)
    url = f"http://auditor:url-pa55@127.0.0.1:{closed_port()}"
    exporter = ElasticsearchSpanExporter(
        url, api_key="the-api-key-value", dead_letter_path=tmp_path / "d", retry=FAST_RETRY, env={}
    )
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert "not delivered" in caplog.text
    assert "the-api-key-value" not in caplog.text and "url-pa55" not in caplog.text


def test_settings_from_environment(tmp_path: Path) -> None:
    """Endpoint, namespace and secrets resolve from the environment with clear errors naming the variable."""
    settings = ElasticsearchSettings.resolve(
        env={
            "GENAI_AUDIT_STORE": "https://es.internal:9200",
            "GENAI_AUDIT_ES_NAMESPACE": "prod_eu",
            "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": "http://ignored:9200",
        }
    )
    assert settings.hosts == ("https://es.internal:9200",) and settings.namespace == "prod_eu"
    settings = ElasticsearchSettings.resolve(
        env={
            "GENAI_AUDIT_STORE": "/var/lib/audit.db",
            "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": "http://a:9200, http://b:9200",
        }
    )
    assert settings.hosts == ("http://a:9200", "http://b:9200") and settings.namespace == "default"
    assert settings.dead_letter_path.name == "elasticsearch-dead-letter.jsonl"

    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n")
    both = {
        "GENAI_AUDIT_ES_USERNAME": "u",
        "GENAI_AUDIT_ES_PASSWORD": "p",
        "GENAI_AUDIT_ES_PASSWORD_FILE": str(secret_file),
    }
    failures: list[tuple[dict[str, str], str]] = [
        ({}, "no Elasticsearch endpoint"),
        ({"OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": "es.internal:9200"}, "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT"),
        ({"GENAI_AUDIT_ES_NAMESPACE": "Prod-EU"}, "GENAI_AUDIT_ES_NAMESPACE"),
        (both, "GENAI_AUDIT_ES_PASSWORD_FILE are both set"),
        ({"GENAI_AUDIT_ES_USERNAME": "u"}, "go together"),
        ({"GENAI_AUDIT_ES_API_KEY": "k", "GENAI_AUDIT_ES_BEARER_TOKEN": "t"}, "not API key and bearer token"),
        ({"GENAI_AUDIT_ES_API_KEY_FILE": str(tmp_path / "missing")}, "GENAI_AUDIT_ES_API_KEY_FILE"),
        ({"GENAI_AUDIT_ES_CA_CERTS": str(tmp_path / "none.pem")}, "GENAI_AUDIT_ES_CA_CERTS"),
    ]
    for env, message in failures:
        full = {"OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": "http://localhost:9200", **env} if env else env
        with pytest.raises(ConfigError, match=message) as raised:
            ElasticsearchSettings.resolve(env=full)
        assert "from-file" not in str(raised.value) and "'p'" not in str(raised.value)
    resolved = ElasticsearchSettings.resolve(
        env={
            "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT": "http://localhost:9200",
            "GENAI_AUDIT_ES_USERNAME": "u",
            "GENAI_AUDIT_ES_PASSWORD_FILE": str(secret_file),
        }
    )
    assert resolved.password == "from-file" and "from-file" not in repr(resolved)


@integration
def test_entry_point_builds_exporter_from_environment(
    es_node: RunningNode, es: Elasticsearch, tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``opentelemetry_traces_exporter`` names the exporter; with no arguments it reads the environment."""
    (entry,) = entry_points(group="opentelemetry_traces_exporter", name="elasticsearch")
    assert entry.load() is ElasticsearchSpanExporter
    monkeypatch.delenv("GENAI_AUDIT_STORE", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT", es_node.url)
    monkeypatch.setenv("GENAI_AUDIT_ES_NAMESPACE", namespace)
    monkeypatch.setenv("GENAI_AUDIT_ES_DEAD_LETTER", str(tmp_path / "d.jsonl"))
    exporter = entry.load()()
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert count(es, stream("traces", namespace)) == 1


_TRACING_PROBE = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)

from genai_audit.store.elasticsearch import ElasticsearchSpanExporter
from genai_audit.store.es_compat import negotiating_client

url, namespace, dead = sys.argv[1:4]
negotiating_client(url).cluster.health()
bare = [span.name for span in memory.get_finished_spans()]
memory.clear()
with provider.get_tracer("probe").start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat"}):
    pass
spans = memory.get_finished_spans()
memory.clear()
exporter = ElasticsearchSpanExporter(url, namespace=namespace, dead_letter_path=dead, env={})
result = exporter.export(spans)
print(json.dumps({"bare": bare, "ours": [span.name for span in memory.get_finished_spans()], "result": result.name}))
"""


@integration
def test_exporter_requests_are_not_traced(es_node: RunningNode, tmp_path: Path, namespace: str) -> None:
    """With a global tracer provider, a bare client traces its requests; the exporter's requests make no spans."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GENAI_AUDIT_"))}
    done = subprocess.run(
        [sys.executable, "-c", _TRACING_PROBE, es_node.url, namespace, str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["bare"]  # the probe does see the client's own spans
    assert probe == {"bare": probe["bare"], "ours": [], "result": "SUCCESS"}
