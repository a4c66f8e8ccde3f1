"""Derived data against the sealed documents: indexed columns, full-text and token index, event filing.

Each test edits a copy of a sealed SQLite store as an attacker with the file would (triggers
dropped, rows changed with the sqlite3 module) and expects ``genai-audit verify`` to name the
record and the structure, and to exit 1; erasure must find the subject by the documents and
leave nothing of it behind, which verify then shows. The ``integration`` tests change what a real
Elasticsearch node indexes of a document (mapping, ``_id``) without touching its ``_source``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from genai_audit import semconv as sc
from genai_audit.cli import main
from genai_audit.forensics.erasure import subject_for
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.sqlite import METRIC_COLUMNS, SqliteSpanExporter
from genai_audit.verify import run
from tests.es_fixtures import RunningNode

#: every column of spans derived from the document
INDEX_COLUMNS = (
    "trace_id", "span_id", "start_ns", "duration_ns", "user_id", "session_id", "feature", "model", "provider",
    "operation", "request_id", "error_type", "status", "cost_usd", "input_tokens", "output_tokens",
)
TRIGGERS = (
    "spans_no_update", "spans_no_delete", "span_events_no_update", "span_events_no_delete",
    "span_pii_tokens_no_update", "span_pii_tokens_no_delete",
)
TEXT_VALUES = (
    "json_extract(doc, '$.attributes.\"gen_ai.system_instructions\"'), "
    "json_extract(doc, '$.attributes.\"gen_ai.input.messages\"'), "
    "json_extract(doc, '$.attributes.\"gen_ai.output.messages\"')"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own integrity directory (erasure writes tombstones), pseudonym key, spool and dead letters."""
    monkeypatch.setenv("GENAI_AUDIT_INTEGRITY_DIR", str(tmp_path / "integrity"))
    monkeypatch.setenv("GENAI_AUDIT_PSEUDONYM_KEY", "derived-integrity-test-key-0123456789")
    monkeypatch.setenv("GENAI_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("GENAI_AUDIT_ES_DEAD_LETTER", str(tmp_path / "dead.jsonl"))
    monkeypatch.setenv("GENAI_AUDIT_ERASURE_DIR", str(tmp_path / "certificates"))
    for name in ("GENAI_AUDIT_POLICY_FILE", "GENAI_AUDIT_STORE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def email_token() -> str:
    return subject_for(value="mallory@example.com", entity="EMAIL").tokens[0]


def messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def populate(exporter: SpanExporter) -> None:
    """Three users' calls with every indexed attribute, prompt text, pseudonym tokens and one exception event."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    calls = [
        ("alice", "ticket-summary", "summarise ticket 4411 for alice", []),
        ("bob", "refunds", "bob asks about refund R-5120", []),
        ("mallory", "refunds", f"mallory wants a zebraquokka refund, mail {email_token()}", [email_token()]),
        ("alice", "ticket-summary", "alice follows up", []),
    ]
    for number, (user, feature, text, tokens) in enumerate(calls):
        attributes: dict[str, Any] = {
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: "openai",
            sc.REQUEST_MODEL: "gpt-4o",
            sc.ENDUSER_ID: user,
            sc.SESSION_ID: f"s-{user}",
            sc.AUDIT_FEATURE: feature,
            sc.AUDIT_REQUEST_ID: f"req-{number}",
            sc.SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": "Be helpful."}]),
            sc.INPUT_MESSAGES: messages("user", text),
            sc.OUTPUT_MESSAGES: messages("assistant", f"answer {number}"),
            sc.USAGE_INPUT_TOKENS: 100 + number,
            sc.USAGE_OUTPUT_TOKENS: 20 + number,
            sc.USAGE_COST_USD: 0.001 * (number + 1),
        }
        if tokens:
            attributes[sc.AUDIT_PII_TOKENS] = tokens
        if user == "mallory":
            attributes[sc.ERROR_TYPE] = "RateLimitError"
        span = tracer.start_span(f"chat gpt-4o {number}", attributes=attributes)
        if user == "mallory":
            span.add_event("exception", {"exception.type": "RateLimitError", "exception.message": "mallory over quota"})
            span.set_status(Status(StatusCode.ERROR))
        span.end()
    provider.shutdown()


@pytest.fixture
def store(env: Path) -> Path:
    path = env / "audit.db"
    populate(SqliteSpanExporter(path))
    return path


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def attacker(path: Path) -> sqlite3.Connection:
    """The store opened with the sqlite3 module, its append-only triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def record(path: Path, user: str) -> tuple[int, dict[str, Any]]:
    """The store row and document of ``user``'s first call."""
    conn = sqlite3.connect(path)
    seq, text = conn.execute(
        "SELECT seq, doc FROM spans WHERE json_extract(doc, '$.attributes.\"enduser.id\"') = ? ORDER BY seq", (user,)
    ).fetchone()
    conn.close()
    return seq, json.loads(text)


def found(store: Path, *criteria: str) -> list[str]:
    """The span ids ``genai-audit query`` finds."""
    code, text = cli("query", *criteria, "--store", str(store), "--format", "json")
    assert code == 0, text
    return [json.loads(line)["span_id"] for line in text.splitlines()]


def named(doc: dict[str, Any]) -> str:
    return f"trace {doc['trace_id']} span {doc['span_id']}"


def failed_with(path: Path, *details: str, kind: str = "INDEX") -> str:
    """verify through the CLI exits 1 with one problem of ``kind`` saying each of ``details``; returns the text."""
    code, text = cli("verify", "--store", str(path))
    assert code == 1, text
    problems = [line for line in text.splitlines() if line.startswith(("MODIFIED", "DELETED", "INSERTED",
                                                                        "REORDERED", "INDEX", "LEDGER"))]
    assert len(problems) == 1 and problems[0].startswith(kind), text
    for detail in details:
        assert detail in problems[0], text
    assert f"FAILED: 1 {kind}" in text
    return problems[0]


def test_a_clean_store_verifies_with_every_derived_structure_filled(store: Path) -> None:
    """The fixture fills every structure the other tests edit, and verify finds nothing to report."""
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT COUNT(*) FROM spans_text_docsize").fetchone() == (4,)
    assert conn.execute("SELECT COUNT(*) FROM span_pii_tokens").fetchone() == (1,)
    assert conn.execute("SELECT COUNT(*) FROM span_events").fetchone() == (1,)
    nulls = conn.execute(f"SELECT {' + '.join(f'({c} IS NULL)' for c in INDEX_COLUMNS)} FROM spans").fetchall()
    conn.close()
    assert (0,) in nulls  # mallory's row: every column holds a value
    code, text = cli("verify", "--store", str(store))
    assert code == 0 and text.rstrip().endswith("OK: every record matches its signed ledger"), text


# --- the indexed columns of spans --------------------------------------------------------------------------


def _other(value: Any) -> Any:
    if value is None:
        return "tampered"
    if isinstance(value, str):
        return value + "-x"
    if isinstance(value, float):
        return value * 2 + 1
    return value + 1


@pytest.mark.parametrize("column", INDEX_COLUMNS)
def test_each_indexed_column_is_checked_against_its_document(store: Path, column: str) -> None:
    """A changed column (look-ups by user, session, feature, model, id, error, time; statistics) is named."""
    seq, doc = record(store, "mallory")
    conn = attacker(store)
    (value,) = conn.execute(f"SELECT {column} FROM spans WHERE seq = ?", (seq,)).fetchone()
    conn.execute(f"UPDATE spans SET {column} = ? WHERE seq = ?", (_other(value), seq))
    conn.close()
    line = failed_with(store, named(doc), f"indexed column {column} does not match the sealed document")
    assert "(look-ups by it miss this record or find it wrongly)" in line


def test_several_changed_columns_are_one_finding_naming_them_all(store: Path) -> None:
    seq, doc = record(store, "bob")
    conn = attacker(store)
    conn.execute("UPDATE spans SET user_id = 'mallory', session_id = 's-mallory' WHERE seq = ?", (seq,))
    conn.close()
    failed_with(store, named(doc), "indexed columns user_id, session_id do not match the sealed document",
                "(look-ups by them miss this record or find it wrongly)")


def test_metric_columns_of_a_row_stored_before_they_existed_are_taken_from_the_document(store: Path) -> None:
    """All three metric columns NULL is how an older store's rows look: readers use the document, verify accepts it."""
    seq, _ = record(store, "bob")
    conn = attacker(store)
    conn.execute(f"UPDATE spans SET {' = NULL, '.join(METRIC_COLUMNS)} = NULL WHERE seq = ?", (seq,))
    conn.close()
    assert run(str(store)).ok
    code, text = cli("stats", "--store", str(store), "--format", "json")
    assert code == 0 and json.loads(text)["total"]["input_tokens"] == 100 + 101 + 102 + 103, text


def test_the_reported_case_a_user_id_column_rewritten(store: Path, env: Path) -> None:
    """The user id column rewritten: queries and erasure by the column miss the record; verify names it;
    erasure finds it by its document all the same."""
    _, doc = record(store, "mallory")
    conn = attacker(store)
    conn.execute("UPDATE spans SET user_id = 'bob' WHERE user_id = 'mallory'")
    conn.close()
    assert found(store, "--user", "mallory") == []
    failed_with(store, named(doc), "indexed column user_id does not match the sealed document")
    code, text = cli("erase", "--user", "mallory", "--store", str(store))
    assert code == 0 and "erased 1 record(s), 1 event document(s), 1 tombstone(s); verify: OK" in text, text
    assert cli("verify", "--store", str(store))[0] == 0
    assert found(store, "--user", "bob") == [record(store, "bob")[1]["span_id"]]


def test_a_document_that_is_not_json_is_named_not_a_traceback(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq, doc = record(store, "bob")
    conn = attacker(store)
    conn.execute("UPDATE spans SET doc = 'not json' WHERE seq = ?", (seq,))
    conn.close()
    code, text = cli("verify", "--store", str(store))
    assert code == 1 and f"MODIFIED   ({named(doc)}): the stored document (row {seq}) is not a JSON object" in text
    assert "Traceback" not in capsys.readouterr().err


# --- the pseudonym-token index --------------------------------------------------------------------------------


@pytest.mark.parametrize("edit", ["delete", "insert", "update"])
def test_token_index_rows_are_checked_against_the_documents(store: Path, edit: str) -> None:
    """Token rows removed (the record escapes a token look-up), added (another record is found) or changed."""
    seq, mallory = record(store, "mallory")
    alice_seq, alice = record(store, "alice")
    conn = attacker(store)
    if edit == "delete":
        conn.execute("DELETE FROM span_pii_tokens WHERE span_seq = ?", (seq,))
        target, detail = mallory, "1 token row(s) missing"
    elif edit == "insert":
        conn.execute("INSERT INTO span_pii_tokens (token, span_seq) VALUES (?, ?)", (email_token(), alice_seq))
        target, detail = alice, "1 token row(s) the document does not give"
    else:
        conn.execute("UPDATE span_pii_tokens SET token = '[EMAIL:000000000000]' WHERE span_seq = ?", (seq,))
        target, detail = mallory, "1 token row(s) missing, 1 token row(s) the document does not give"
    conn.close()
    failed_with(store, named(target), "the pseudonym-token index does not match the sealed document", detail)


def test_token_rows_of_no_record_are_named(store: Path) -> None:
    conn = attacker(store)
    conn.execute("INSERT INTO span_pii_tokens (token, span_seq) VALUES (?, 4242)", (email_token(),))
    conn.close()
    failed_with(store, "the pseudonym-token index has entries for 1 store row(s) that hold no record (row 4242)")


# --- the full-text index ----------------------------------------------------------------------------------------


def _delete_text(conn: sqlite3.Connection, seq: int) -> None:
    """Remove a row's full-text entries (contentless: with the values they were indexed from)."""
    conn.execute(
        "INSERT INTO spans_text (spans_text, rowid, system_instructions, input_messages, output_messages) "
        f"SELECT 'delete', seq, {TEXT_VALUES} FROM spans WHERE seq = ?",
        (seq,),
    )


@pytest.mark.parametrize("edit", ["delete", "insert", "move", "orphan"])
def test_full_text_rows_are_checked_against_the_documents(store: Path, edit: str) -> None:
    """Full-text entries removed (text search misses the record), added, moved to another record, or to none."""
    seq, mallory = record(store, "mallory")
    alice_seq, alice = record(store, "alice")
    conn = attacker(store)
    assert found(store, "--text", "zebraquokka") == [mallory["span_id"]]
    if edit == "delete":
        _delete_text(conn, seq)
        expected = [(mallory, "term position(s) missing")]
        searched = []
    elif edit == "insert":
        conn.execute("INSERT INTO spans_text (rowid, input_messages) VALUES (?, 'zebraquokka')", (alice_seq,))
        expected = [(alice, "1 term position(s) the document does not give")]
        searched = [alice["span_id"], mallory["span_id"]]
    elif edit == "move":
        _delete_text(conn, seq)
        conn.execute(
            f"INSERT INTO spans_text (rowid, system_instructions, input_messages, output_messages) "
            f"SELECT ?, {TEXT_VALUES} FROM spans WHERE seq = ?",
            (alice_seq, seq),
        )
        expected = [(alice, "term position(s) the document does not give"), (mallory, "term position(s) missing")]
        searched = [alice["span_id"]]
    else:
        conn.execute("INSERT INTO spans_text (rowid, input_messages) VALUES (777, 'zebraquokka')")
        expected = [(None, "the full-text index has entries for 1 store row(s) that hold no record (row 777)")]
        searched = [mallory["span_id"]]
    conn.close()
    assert found(store, "--text", "zebraquokka") == searched  # what the edit does to a text search
    code, text = cli("verify", "--store", str(store))
    assert code == 1 and f"FAILED: {len(expected)} INDEX" in text, text
    for doc, detail in expected:
        where = f"({named(doc)})" if doc else "INDEX:"
        assert any(where in line and detail in line for line in text.splitlines()), text
    if edit != "orphan":
        assert "the full-text index does not match the sealed document" in text
        assert "text searches miss this record or find it wrongly" in text


# --- event documents ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit", ["refile", "orphan", "unsealed"])
def test_event_documents_are_filed_under_the_span_they_name(store: Path, edit: str) -> None:
    """An event filed under another span, left without its span, or added to a span whose seal binds none."""
    _, mallory = record(store, "mallory")
    _, bob = record(store, "bob")
    conn = attacker(store)
    (event_seq, event) = conn.execute("SELECT seq, doc FROM span_events").fetchone()
    if edit == "refile":  # replay and erasure of mallory's span no longer find her exception
        conn.execute("UPDATE span_events SET span_id = 'ffffffffffffffff' WHERE seq = ?", (event_seq,))
        kind, doc = "INDEX", {"trace_id": mallory["trace_id"], "span_id": "ffffffffffffffff"}
        detail = f"names trace {mallory['trace_id']} span {mallory['span_id']}"
    elif edit == "orphan":
        forged = json.loads(event)
        forged["span_id"] = "eeeeeeeeeeeeeeee"
        conn.execute(
            "INSERT INTO span_events (trace_id, span_id, doc) VALUES (?, ?, ?)",
            (forged["trace_id"], forged["span_id"], json.dumps(forged)),
        )
        kind, doc, detail = "INSERTED", forged, "belongs to no stored span"
    else:
        forged = json.loads(event)
        forged.update(trace_id=bob["trace_id"], span_id=bob["span_id"])
        conn.execute(
            "INSERT INTO span_events (trace_id, span_id, doc) VALUES (?, ?, ?)",
            (bob["trace_id"], bob["span_id"], json.dumps(forged)),
        )
        kind, doc, detail = "INSERTED", bob, "whose seal binds no events"
    conn.close()
    code, text = cli("verify", "--store", str(store))
    assert code == 1, text
    lines = [line for line in text.splitlines() if line.startswith(kind)]
    assert any(named(doc) in line and detail in line for line in lines), text
    if edit == "refile":  # and mallory's seal no longer finds the event it binds
        assert f"MODIFIED   ({named(mallory)}" in text


# --- SQLite's own indexes on the columns -----------------------------------------------------------------------------


def test_a_column_index_whose_definition_was_rewritten_is_named(store: Path) -> None:
    """The b-tree index look-ups by user use, redefined behind SQLite's back: its entries no longer match."""
    conn = attacker(store)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = replace(sql, '(user_id,', '(session_id,') WHERE name = 'spans_user'")
    conn.close()
    failed_with(store, "SQLite's integrity check of the store fails", "spans_user")


# --- erasure after tampering ------------------------------------------------------------------------------------------


def test_erasure_after_tampering_removes_the_subject_and_verify_proves_no_residue(store: Path, env: Path) -> None:
    """Every derived row of mallory's record edited; erasure still removes her record and everything derived."""
    seq, _ = record(store, "mallory")
    alice_seq, _ = record(store, "alice")
    conn = attacker(store)
    conn.execute("UPDATE spans SET user_id = 'bob' WHERE seq = ?", (seq,))
    conn.execute("UPDATE span_pii_tokens SET span_seq = 9999 WHERE span_seq = ?", (seq,))
    _delete_text(conn, seq)
    conn.execute(  # her text filed under another row number, and a copy of it under alice's
        f"INSERT INTO spans_text (rowid, system_instructions, input_messages, output_messages) "
        f"SELECT 9999, {TEXT_VALUES} FROM spans WHERE seq = ?",
        (seq,),
    )
    conn.execute("INSERT INTO spans_text (rowid, input_messages) VALUES (?, 'zebraquokka')", (alice_seq,))
    conn.execute("UPDATE span_events SET span_id = 'ffffffffffffffff'")  # her exception, filed under no span
    conn.close()
    assert cli("verify", "--store", str(store))[0] == 1

    certificate = env / "certificate.json"
    code, text = cli("erase", "--user", "mallory", "--store", str(store), "--certificate", str(certificate))
    assert code == 0, text
    (result,) = json.loads(certificate.read_text())["stores"]
    assert (result["deleted"], result["events_deleted"], result["verify"]["ok"]) == (1, 1, True)
    code, text = cli("verify", "--store", str(store), "--format", "json")
    body = json.loads(text)
    assert code == 0 and body["ok"] and body["problems"] == [], text
    assert [note["detail"] for note in body["notes"]] == ["1 record(s) absent with a signed tombstone (erasure)"]
    # nothing of hers in the file: her id, her token, her words, her exception
    data = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    for needle in ("mallory", email_token(), "zebraquokka", "over quota"):
        assert needle.encode() not in data, needle
    conn = sqlite3.connect(store)
    conn.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, spans_text, row)")
    terms = {term for (term,) in conn.execute("SELECT term FROM temp.terms")}
    assert "alice" in terms and not {"mallory", "zebraquokka", "quota"} & terms
    assert conn.execute("SELECT COUNT(*) FROM span_pii_tokens").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM span_events").fetchone() == (0,)
    conn.close()


def test_erasure_by_token_does_not_rely_on_the_token_index(store: Path, env: Path) -> None:
    seq, _ = record(store, "mallory")
    conn = attacker(store)
    conn.execute("DELETE FROM span_pii_tokens WHERE span_seq = ?", (seq,))
    conn.close()
    code, text = cli("erase", "--value", "mallory@example.com", "--type", "EMAIL", "--store", str(store))
    assert code == 0 and "erased 1 record(s)" in text and "verify: OK" in text, text
    assert email_token().encode() not in b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))


def test_erasure_trusts_documents_not_a_column_that_names_the_subject(store: Path, env: Path) -> None:
    """bob's row with a user id column saying mallory: bob's record stays, and verify after the erasure
    names the column that still carries her id (the erasure exits 1)."""
    seq, bob = record(store, "bob")
    conn = attacker(store)
    conn.execute("UPDATE spans SET user_id = 'mallory' WHERE seq = ?", (seq,))
    conn.close()
    code, text = cli("erase", "--user", "mallory", "--store", str(store), "--format", "json")
    assert code == 1, text
    (result,) = json.loads(text)["stores"]
    assert (result["deleted"], result["verify"]["ok"], result["verify"]["problems"]) == (1, False, 1)
    failed_with(store, named(bob), "indexed column user_id does not match the sealed document")


def test_a_copy_of_the_store_is_verified_without_writing_to_it(store: Path, env: Path) -> None:
    """The derived-data check builds its fresh index in the temporary database: the store file is not written."""
    copy = env / "copy.db"
    shutil.copy(store, copy)
    before = copy.read_bytes()
    assert run(str(copy), all_streams=True).ok
    assert copy.read_bytes() == before
    assert not (env / "copy.db-wal").exists() or (env / "copy.db-wal").stat().st_size == 0


# --- Elasticsearch: what the cluster indexed, against the documents ------------------------------------------------


@pytest.fixture
def es_store(es_node: RunningNode, env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from genai_audit.store.elasticsearch import ElasticsearchSpanExporter

    namespace = f"d{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("GENAI_AUDIT_ES_NAMESPACE", namespace)
    populate(ElasticsearchSpanExporter(es_node.url, namespace=namespace, dead_letter_path=env / "dl.jsonl"))
    es = negotiating_client(es_node.url, request_timeout=30)
    es.indices.refresh(index=f"traces-genai_audit.otel-{namespace},logs-genai_audit.otel-{namespace}")
    es.close()
    return es_node.url


def es_hits(url: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    es = negotiating_client(url, request_timeout=30)
    index = f"traces-genai_audit.otel-{os.environ['GENAI_AUDIT_ES_NAMESPACE']}"
    es.indices.refresh(index=index)
    hits = es.search(index=index, query=query, size=100)["hits"]["hits"]
    es.close()
    return list(hits)


def user_is(user: str) -> dict[str, Any]:
    return {"term": {f"attributes.{sc.ENDUSER_ID}": user}}


@pytest.mark.integration
def test_elasticsearch_indexed_fields_are_checked_against_the_documents(es_store: str) -> None:
    """A keyword field's ignore_above lowered and mallory's document indexed again: searches and erasure by
    user miss it while its seal still verifies; verify compares the indexed values with the document."""
    assert cli("verify", "--store", es_store)[0] == 0
    (hit,) = es_hits(es_store, user_is("mallory"))
    es = negotiating_client(es_store, request_timeout=30)
    es.indices.put_mapping(
        index=hit["_index"],
        properties={"attributes": {"type": "passthrough", "priority": 30,
                                   "properties": {sc.ENDUSER_ID: {"type": "keyword", "ignore_above": 3}}}},
    )
    es.delete(index=hit["_index"], id=hit["_id"], refresh=True)  # and indexed again, as it was
    stream = f"traces-genai_audit.otel-{os.environ['GENAI_AUDIT_ES_NAMESPACE']}"
    es.index(index=stream, id=hit["_id"], document=hit["_source"], op_type="create", refresh=True)
    es.close()
    assert es_hits(es_store, user_is("mallory")) == []
    assert "would erase 0 record(s)" in cli("erase", "--user", "mallory", "--store", es_store, "--dry-run")[1]
    line = failed_with_es(es_store, named(hit["_source"]), f"indexed field attributes.{sc.ENDUSER_ID} does not match")
    assert "(searches, erasure and retention by it miss this record or find it wrongly)" in line


@pytest.mark.integration
def test_elasticsearch_field_shadowed_by_another_mapping_is_named(es_store: str) -> None:
    """A runtime field of the same name shadows the indexed one in every search."""
    (hit,) = es_hits(es_store, {"term": {f"attributes.{sc.AUDIT_REQUEST_ID}": "req-2"}})
    es = negotiating_client(es_store, request_timeout=30)
    es.indices.put_mapping(index=hit["_index"], runtime={f"attributes.{sc.SESSION_ID}": {"type": "long"}})
    es.close()
    failed_with_es(es_store, f"field attributes.{sc.SESSION_ID} is mapped as long (the exporter maps it as keyword)")


@pytest.mark.integration
def test_elasticsearch_document_under_another_id_is_named_and_still_erased(es_store: str, env: Path) -> None:
    """bob's document stored again under an _id of its own: verify names it; erasure deletes it by that _id."""
    (hit,) = es_hits(es_store, user_is("bob"))
    es = negotiating_client(es_store, request_timeout=30)
    es.delete(index=hit["_index"], id=hit["_id"], refresh=True)
    stream = f"traces-genai_audit.otel-{os.environ['GENAI_AUDIT_ES_NAMESPACE']}"
    es.index(index=stream, id="not-its-id", document=hit["_source"], op_type="create", refresh=True)
    es.close()
    failed_with_es(es_store, named(hit["_source"]), "stored under _id not-its-id")
    code, text = cli("erase", "--user", "bob", "--store", es_store)
    assert code == 0 and "erased 1 record(s)" in text and "verify: OK" in text, text
    assert es_hits(es_store, user_is("bob")) == []


def failed_with_es(url: str, *details: str) -> str:
    """verify exits 1 with one INDEX problem saying each of ``details``."""
    code, text = cli("verify", "--store", url)
    assert code == 1 and "FAILED: 1 INDEX" in text, text
    (line,) = [line for line in text.splitlines() if line.startswith("INDEX")]
    for detail in details:
        assert detail in line, text
    return line
