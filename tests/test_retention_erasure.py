"""Retention and GDPR erasure: tombstoned deletions that leave `genai-audit verify` clean.

SQLite tests run at unit level against a sealed store in a temporary directory; the
`integration` tests do the same against the `es_node` fixture, each in a namespace of its own.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from genai_audit import semconv as sc
from genai_audit.checkpoint import SigningKey
from genai_audit.cli import main
from genai_audit.forensics import open_store
from genai_audit.forensics.erasure import erase, subject_for
from genai_audit.forensics.retention import apply_retention
from genai_audit.ledger import TOMBSTONES_SUFFIX
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.sqlite import SqliteSpanExporter
from genai_audit.verify import run
from tests.es_fixtures import RunningNode

DAY = 86_400 * 1_000_000_000
NOW = time.time_ns()
USER = "alice-user-4711"
EMAIL = "alice.wonder@example.com"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Integrity directory, signing key, pseudonym key, spool and dead-letter paths of this test."""
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(SigningKey.generate().pem())
    monkeypatch.setenv("GENAI_AUDIT_INTEGRITY_DIR", str(tmp_path / "integrity"))
    monkeypatch.setenv("GENAI_AUDIT_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("GENAI_AUDIT_PSEUDONYM_KEY", "retention-erasure-test-key-0123456789")
    monkeypatch.setenv("GENAI_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("GENAI_AUDIT_ES_DEAD_LETTER", str(tmp_path / "dead.jsonl"))
    for name in ("GENAI_AUDIT_POLICY_FILE", "GENAI_AUDIT_RETENTION_FLOOR_DAYS", "GENAI_AUDIT_STORE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def email_token() -> str:
    return subject_for(value=EMAIL, entity="EMAIL").tokens[0]


def populate(exporter: SpanExporter) -> None:
    """Spans of several classes and ages; alice's with her user id, bob's mentioning her e-mail token."""
    token = email_token()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    calls: list[tuple[str, str | None, int, str, list[str], bool]] = [
        # (user, classification, age in days, content, tokens, with an exception event)
        ("bob", "restricted", 10, "old restricted", [], False),
        ("bob", "public", 10, "old public", [], False),
        ("bob", "internal", 100, "old internal", [], False),
        ("bob", "confidential", 40, "old confidential", [], True),
        ("bob", None, 100, "old unclassified", [], False),
        ("bob", "restricted", 1, "fresh restricted", [], False),
        (USER, "internal", 1, "alice asks", [], True),
        (USER, "internal", 2, "alice again", [], False),
        ("bob", "confidential", 1, f"bob forwards {token}", [token], False),
    ]
    for user, level, age, content, tokens, failing in calls:
        attributes: dict[str, Any] = {
            sc.OPERATION_NAME: "chat",
            sc.REQUEST_MODEL: "gpt-4o",
            sc.ENDUSER_ID: user,
            sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": content}]}]),
        }
        if level is not None:
            attributes[sc.AUDIT_CLASSIFICATION] = level
        if tokens:
            attributes[sc.AUDIT_PII_TOKENS] = tokens
        start = NOW - age * DAY
        span = tracer.start_span(f"chat {content}", attributes=attributes, start_time=start)
        if failing:
            span.add_event("exception", {"exception.type": "X", "exception.message": f"failed for {user}"})
        span.end(end_time=start + 1_000_000)
    provider.shutdown()


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.fixture
def store(env: Path) -> Path:
    path = env / "audit.db"
    populate(SqliteSpanExporter(path))
    return path


def tombstones(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for file in folder.glob(f"*{TOMBSTONES_SUFFIX}") for line in file.read_text().splitlines()]


# --- retention on SQLite -----------------------------------------------------------------------------------


def test_retention_dry_run_counts_and_apply_deletes_with_tombstones(store: Path, env: Path) -> None:
    code, text = cli("retention", "apply", "--store", str(store), "--dry-run", "--format", "json")
    assert code == 0, text
    plan = json.loads(text)
    expired = {c["classification"]: c["expired"] for c in plan["classes"]}
    assert expired == {"restricted": 1, "confidential": 1, "internal": 1, "unclassified": 1, "public": 0}
    assert plan["deleted"] == 0 and plan["expired"] == 4
    oldest = {c["classification"]: c["oldest"] for c in plan["classes"]}
    assert oldest["public"] is None and oldest["internal"] is not None
    assert sqlite3.connect(store).execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 9

    code, text = cli("retention", "apply", "--store", str(store))
    assert code == 0, text
    assert "4 deleted (1 event documents), 4 tombstones written" in text
    conn = sqlite3.connect(store)
    contents = {row[0] for row in conn.execute("SELECT json_extract(doc, '$.name') FROM spans")}
    assert not any(name.startswith("chat old") and "public" not in name for name in contents)
    assert "chat old public" in contents and len(contents) == 5
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # ordinary deletes are still refused
        conn.execute("DELETE FROM spans")
    conn.close()
    assert {t["reason"] for t in tombstones(env / "integrity")} == {"retention"}
    code, text = cli("verify", "--store", str(store))
    assert code == 0, text
    assert "tombstone" in text
    # a second run finds nothing more
    code, text = cli("retention", "apply", "--store", str(store), "--format", "json")
    assert json.loads(text)["expired"] == 0


def test_retention_floor_days_protect_records(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_AUDIT_RETENTION_FLOOR_DAYS", "183")
    with open_store(str(store)) as opened:
        report = apply_retention(opened, dry_run=True)
    assert report.expired == 0 and {c.days for c in report.classes} == {183, 365}
    with open_store(str(store)) as opened:  # as of a later moment, the floor has passed for the old ones
        report = apply_retention(opened, now_ns=NOW + 100 * DAY)
    # 100 days on, only the records 100 days old are past the 183-day floor
    assert {c.classification: c.deleted for c in report.classes if c.deleted} == {"internal": 1, "unclassified": 1}
    assert run(str(store)).ok


# --- erasure on SQLite -------------------------------------------------------------------------------------


def spool_and_dead_letter(env: Path) -> tuple[Path, Path]:
    """A spool file with alice's undelivered rows (and bob's), and a dead-letter file with one line of hers."""
    from genai_audit.store.spool import Spool

    spool = Spool(env / "spool" / "target.db")
    doc = {"trace_id": "a" * 32, "span_id": "b" * 16, "attributes": {sc.ENDUSER_ID: USER}}
    bob = {"trace_id": "c" * 32, "span_id": "d" * 16, "attributes": {sc.ENDUSER_ID: "bob"}}
    spool.append(
        [
            ("traces-genai_audit.otel-x", "a" * 32 + "b" * 16, json.dumps(doc)),
            (
                "logs-genai_audit.otel-x",
                "a" * 32 + "b" * 16 + "-0",
                json.dumps({"trace_id": "a" * 32, "span_id": "b" * 16}),
            ),
            ("traces-genai_audit.otel-x", "c" * 32 + "d" * 16, json.dumps(bob)),
        ]
    )
    spool.close()
    dead = env / "dead.jsonl"
    dead.write_text(
        json.dumps({"id": "1", "reason": "x", "document": doc})
        + "\n"
        + json.dumps({"id": "2", "reason": "x", "document": bob})
        + "\n"
    )
    return env / "spool" / "target.db", dead


def raw(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_erasure_by_user_leaves_no_trace_and_certifies_without_pii(store: Path, env: Path) -> None:
    spool, dead = spool_and_dead_letter(env)
    token = email_token()
    certificate = env / "certificate.json"

    code, text = cli("erase", "--user", USER, "--store", str(store), "--dry-run")
    assert code == 0, text
    assert "would erase 2 record(s)" in text and "2 row(s)" in text and "1 line(s)" in text
    assert not certificate.exists() and USER.encode() in raw(store)

    code, text = cli("erase", "--user", USER, "--store", str(store), "--certificate", str(certificate))
    assert code == 0, text
    for path in (store, spool, dead):
        assert USER.encode() not in raw(path), path
        assert EMAIL.encode() not in raw(path), path
    assert b"bob" in raw(spool) and b"bob" in dead.read_bytes()
    assert [json.loads(line)["id"] for line in dead.read_text().splitlines()] == ["2"]
    body = json.loads(certificate.read_text())
    assert USER not in certificate.read_text() and EMAIL not in certificate.read_text()
    assert body["criteria"][0]["pseudonym"] == subject_for(user=USER).labels[0]["pseudonym"]
    assert body["criteria"][0]["pseudonym"].startswith("[ENDUSER_ID:")
    (result,) = body["stores"]
    assert (result["deleted"], result["events_deleted"], result["verify"]["ok"]) == (2, 1, True)
    assert body["spool"]["rows"] == 2 and body["dead_letter"]["lines"] == 1
    assert body["tombstone_files"] and "signature" in body
    assert {t["reason"] for t in tombstones(env / "integrity")} == {"erasure"}
    assert run(str(store)).ok
    # the e-mail token is still in bob's record: erasing by the value removes it
    assert token.encode() in raw(store)
    code, text = cli(
        "erase", "--value", EMAIL, "--type", "email", "--store", str(store), "--certificate", str(env / "c2.json")
    )
    assert code == 0, text
    assert token.encode() not in raw(store) and EMAIL not in (env / "c2.json").read_text()
    assert json.loads((env / "c2.json").read_text())["criteria"] == [{"kind": "value", "type": "EMAIL", "token": token}]
    code, text = cli("verify", "--store", str(store))
    assert code == 0, text


def test_erasure_by_token_through_the_api(store: Path, env: Path) -> None:
    report = erase(subject_for(token=email_token().strip("[]")), [str(store)], certificate=env / "c.json")
    assert report.stores[0].deleted == 1 and report.stores[0].verify["ok"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["erase"], "exactly one of --user"),
        (["erase", "--user", "u", "--token", "[EMAIL:abc]"], "exactly one of --user"),
        (["erase", "--value", "x@example.com"], "--value needs --type"),
        (["erase", "--value", "x@example.com", "--type", "NOPE"], "--type 'NOPE'"),
        (["erase", "--value", "not an address", "--type", "EMAIL"], "not recognised as EMAIL"),
        (["erase", "--token", "garbage"], "is not a pseudonym token"),
        (["retention", "apply", "--now", "yesterday-ish"], "bad time"),
        (["retention", "apply", "--format", "xml"], "--format 'xml'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_1(
    store: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = cli(*argv, "--store", str(store))
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1, err


def test_missing_store_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli("retention", "apply", "--store", str(env / "nope.db"))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no audit store" in err


# --- Elasticsearch -------------------------------------------------------------------------------------------


@pytest.fixture
def es_store(es_node: RunningNode, env: Path, monkeypatch: pytest.MonkeyPatch) -> str:

    from genai_audit.store.elasticsearch import ElasticsearchSpanExporter

    namespace = f"re{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("GENAI_AUDIT_ES_NAMESPACE", namespace)
    populate(ElasticsearchSpanExporter(es_node.url, namespace=namespace, dead_letter_path=env / "dl.jsonl"))
    es = negotiating_client(es_node.url, request_timeout=30)
    es.indices.refresh(index=f"traces-genai_audit.otel-{namespace},logs-genai_audit.otel-{namespace}")
    es.close()
    return es_node.url


def es_hits(url: str, query: dict[str, Any], index: str = "traces") -> int:

    es = negotiating_client(url, request_timeout=30)
    name = f"{index}-genai_audit.otel-{os.environ['GENAI_AUDIT_ES_NAMESPACE']}"
    es.indices.refresh(index=name)
    found = es.search(index=name, query=query, size=100)["hits"]["hits"]
    es.close()
    return len(found)


@pytest.mark.integration
def test_elasticsearch_retention_then_verify(es_store: str, env: Path) -> None:
    code, text = cli("retention", "apply", "--store", es_store, "--dry-run", "--format", "json")
    assert code == 0, text
    plan = json.loads(text)
    assert plan["expired"] == 4 and plan["deleted"] == 0 and plan["ilm"] is False
    assert es_hits(es_store, {"match_all": {}}) == 9
    code, text = cli("retention", "apply", "--store", es_store, "--format", "json")
    assert code == 0, text
    done = json.loads(text)
    assert (done["deleted"], done["events_deleted"], done["tombstones"]) == (4, 1, 4)
    assert es_hits(es_store, {"match_all": {}}) == 5
    code, text = cli("verify", "--store", es_store)
    assert code == 0, text


@pytest.mark.integration
def test_elasticsearch_erasure_is_complete(es_store: str, env: Path) -> None:
    spool, dead = spool_and_dead_letter(env)
    certificate = env / "cert.json"
    code, text = cli("erase", "--user", USER, "--store", es_store, "--certificate", str(certificate))
    assert code == 0, text
    assert es_hits(es_store, {"term": {f"attributes.{sc.ENDUSER_ID}": USER}}) == 0
    assert es_hits(es_store, {"query_string": {"query": f'"{USER}"'}}, "logs") == 0
    assert USER.encode() not in raw(spool) and USER.encode() not in dead.read_bytes()
    body = json.loads(certificate.read_text())
    assert USER not in certificate.read_text()
    assert (body["stores"][0]["deleted"], body["stores"][0]["verify"]["ok"]) == (2, True)
    token = email_token()
    code, text = cli("erase", "--token", token, "--store", es_store, "--certificate", str(env / "c2.json"))
    assert code == 0, text
    assert es_hits(es_store, {"term": {f"attributes.{sc.AUDIT_PII_TOKENS}": token}}) == 0
    code, text = cli("verify", "--store", es_store)
    assert code == 0, text
