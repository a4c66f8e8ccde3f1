"""The embedded SQLite store: document shape, durability settings, append-only, no duplicates."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

import genai_audit
from genai_audit import semconv as sc
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.store.sqlite import Query, SqliteSpanExporter, StoreError, connect, read_documents
from genai_audit.testing.fake_provider import FakeProvider


@pytest.fixture
def stored(tmp_path: Path, fake: FakeProvider):
    """An instrumented OpenAI client whose spans go to a fresh store."""
    exporter = SqliteSpanExporter(tmp_path / "sub" / "audit.db")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    client = openai.OpenAI(api_key="t", base_url=fake.openai_base_url, max_retries=0)
    yield exporter, client
    instrumentor.uninstrument()
    provider.shutdown()


def test_document_has_otel_native_shape(stored) -> None:
    """One document per span with the collector's otel-mode fields."""
    exporter, client = stored
    with genai_audit.context(user_id="u1", session_id="s1"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    (doc,) = read_documents(connect(exporter.path, create=False), Query())
    assert set(doc) >= {"@timestamp", "data_stream", "trace_id", "span_id", "name", "kind", "duration", "status",
                        "attributes", "resource", "scope"}
    assert doc["data_stream"] == {"type": "traces", "dataset": "genai_audit.otel", "namespace": "default"}
    assert len(doc["trace_id"]) == 32 and len(doc["span_id"]) == 16
    assert doc["kind"] == "Client"
    assert doc["status"] == {"code": "Unset"}
    assert isinstance(doc["duration"], int) and doc["duration"] > 0
    assert doc["@timestamp"].endswith("Z") and len(doc["@timestamp"]) == 30
    assert doc["attributes"][sc.ENDUSER_ID] == "u1"
    assert doc["attributes"][sc.RESPONSE_FINISH_REASONS] == ["stop"]
    assert doc["scope"]["name"] == "genai_audit.instrumentation.openai"


def test_filters_by_session_user_and_time(stored) -> None:
    """Queries select by session, user and start time through the indexed columns."""
    exporter, client = stored
    for user, session in (("a", "s1"), ("b", "s1"), ("a", "s2")):
        with genai_audit.context(user_id=user, session_id=session):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    conn = connect(exporter.path, create=False)
    assert len(list(read_documents(conn, Query(session_id="s1")))) == 2
    assert len(list(read_documents(conn, Query(user_id="a")))) == 2
    assert len(list(read_documents(conn, Query(user_id="a", session_id="s2")))) == 1
    assert list(read_documents(conn, Query(since_ns=2**62))) == []
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT doc FROM spans WHERE session_id='s1'"))
    assert "spans_session" in plan


def test_export_is_idempotent_and_store_append_only(tmp_path: Path, fake: FakeProvider) -> None:
    """Re-exporting a batch adds nothing; UPDATE and DELETE are refused."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("chat m", attributes={sc.OPERATION_NAME: "chat"}).end()
    spans = memory.get_finished_spans()
    exporter = SqliteSpanExporter(tmp_path / "a.db")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("SELECT COUNT(*) FROM spans").fetchone() == (1,)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE spans SET doc = '{}'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM spans")


def test_store_is_durable_wal_and_owner_only(tmp_path: Path) -> None:
    """WAL journal, synchronous=FULL, and a 0600 file in a 0700 directory."""
    path = tmp_path / "private" / "audit.db"
    exporter = SqliteSpanExporter(path)
    assert exporter._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert exporter._conn.execute("PRAGMA synchronous").fetchone() == (2,)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_failed_write_returns_failure_not_raise(tmp_path: Path) -> None:
    """An exporter that cannot write reports FAILURE and counts; it never raises into the SDK."""
    exporter = SqliteSpanExporter(tmp_path / "b.db")
    exporter.shutdown()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("x").end()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.FAILURE
    assert exporter.failed == 1


def test_opening_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not a store gives StoreError naming it."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=r"bad\.db"):
        connect(bad, create=False)


def test_exception_event_stored_without_raw_message_in_stack(stored, fake: FakeProvider) -> None:
    """The error's event is stored as its own document and its stack has no message text."""
    from genai_audit.store.sqlite import read_events
    from genai_audit.testing.fake_provider import Error

    exporter, client = stored
    fake.script(Error(400, "bad request about alice@example.com"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    conn = connect(exporter.path, create=False)
    (doc,) = read_documents(conn, Query())
    (event,) = read_events(conn, doc["trace_id"], doc["span_id"])
    assert event["event_name"] == "exception"
    assert event["data_stream"]["type"] == "logs"
    assert "alice@example.com" not in event["attributes"]["exception.stacktrace"]
    assert json.dumps(doc["status"]).count("Error") >= 1


def test_undecodable_text_is_stored_not_lost(tmp_path: Path) -> None:
    """Lone surrogates (bytes that were not UTF-8) must not make the store refuse a record."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from genai_audit.store.sqlite import Query, SqliteSpanExporter, connect, read_documents

    path = tmp_path / "s.db"
    exporter = SqliteSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bad = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    with provider.get_tracer("t").start_as_current_span(f"chat {bad}") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.input.messages", bad)
        span.set_attribute("list", [bad, "ok"])
    provider.shutdown()
    (doc,) = list(read_documents(connect(path, create=False), Query()))
    assert doc["attributes"]["gen_ai.input.messages"] == "caf\ufffd \ufffd"
    assert doc["attributes"]["list"] == ["caf\ufffd \ufffd", "ok"]
    assert doc["name"] == "chat caf\ufffd \ufffd"
