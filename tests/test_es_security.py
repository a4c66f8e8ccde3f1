"""TLS and credentials against a real Elasticsearch 8.19 node behind a TLS-terminating, credential-checking proxy.

The node the ``es_node`` fixture starts has no security module; :class:`TlsProxy`
gives it what a secured cluster has (HTTPS with a certificate from a test CA made
by ``openssl``; ``Basic``, ``ApiKey`` and ``Bearer`` credentials; ``401`` with
``WWW-Authenticate`` otherwise). A TCP tap between exporter and proxy records the
bytes the exporter puts on the wire, to show what it sends and what it never sends.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from genai_audit.bootstrap import remote_processor
from genai_audit.store.elasticsearch import ElasticsearchSpanExporter, span_documents
from genai_audit.store.es_compat import CLIENT_MAJOR, negotiating_client
from genai_audit.testing.fake_provider import FakeProvider
from tests.es_fixtures import RunningNode
from tests.test_elasticsearch import FAST_RETRY, chat_attributes, count, spans_with, stream
from tests.tls_proxy import (
    Certificates,
    Credentials,
    Exchange,
    TlsProxy,
    encode_api_key,
    make_certificates,
)

pytestmark = pytest.mark.integration

# Fresh secrets per run, so finding one anywhere can only mean it leaked from here.
USER = "auditor"
PASSWORD = f"pw-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"
API_KEY_ID = f"kid{uuid.uuid4().hex[:8]}"
API_KEY = uuid.uuid4().hex
API_KEY_ENCODED = encode_api_key(API_KEY_ID, API_KEY)
WRONG_API_KEY_ENCODED = encode_api_key(API_KEY_ID, f"wrongkey{uuid.uuid4().hex}")
TOKEN = f"tok-{uuid.uuid4().hex}"
WRONG_TOKEN = f"badtok-{uuid.uuid4().hex}"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = (
    PASSWORD,
    WRONG_PASSWORD,
    _basic(USER, PASSWORD),
    _basic(USER, WRONG_PASSWORD),
    API_KEY,
    API_KEY_ENCODED,
    WRONG_API_KEY_ENCODED,
    TOKEN,
    WRONG_TOKEN,
)

#: one way to authenticate: exporter arguments, environment variables (value or *_FILE), what the proxy sees
METHODS: dict[str, tuple[dict[str, str], dict[str, str], tuple[str, str]]] = {
    "basic": (
        {"username": USER, "password": PASSWORD},
        {"GENAI_AUDIT_ES_USERNAME": USER, "GENAI_AUDIT_ES_PASSWORD": PASSWORD},
        ("basic", USER),
    ),
    "api_key": ({"api_key": API_KEY_ENCODED}, {"GENAI_AUDIT_ES_API_KEY": API_KEY_ENCODED}, ("apikey", API_KEY_ID)),
    "bearer": ({"bearer_token": TOKEN}, {"GENAI_AUDIT_ES_BEARER_TOKEN": TOKEN}, ("bearer", "token")),
}
WRONG: dict[str, dict[str, str]] = {
    "basic": {"username": USER, "password": WRONG_PASSWORD},
    "api_key": {"api_key": WRONG_API_KEY_ENCODED},
    "bearer": {"bearer_token": WRONG_TOKEN},
}


def assert_no_secret(text: str | bytes, where: str) -> None:
    haystack = text.decode("latin-1") if isinstance(text, bytes) else text  # byte for byte
    for secret in SECRETS:
        assert secret not in haystack, f"a secret ({secret[:6]}...) appears in {where}"


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def running_proxy(es_node: RunningNode, certificates: Certificates) -> Iterator[TlsProxy]:
    credentials = Credentials(users={USER: PASSWORD}, api_keys={API_KEY_ID: API_KEY}, bearer_tokens=frozenset({TOKEN}))
    with TlsProxy(es_node.url, certificates, credentials) as proxy:
        yield proxy


@pytest.fixture
def proxy(running_proxy: TlsProxy) -> TlsProxy:
    """The module's proxy with this test's records only."""
    running_proxy.clear()
    return running_proxy


@pytest.fixture
def es_major(es_node: RunningNode) -> int:
    return es_node.major


def settled(exchanges: list[Exchange], server_major: int) -> list[Exchange]:
    """The exchanges after a client newer than the server had its media type refused once, at the start."""
    if server_major < CLIENT_MAJOR and exchanges and exchanges[0].status == 400:
        return exchanges[1:]
    return exchanges


@pytest.fixture
def es(es_node: RunningNode) -> Iterator[Elasticsearch]:
    client = negotiating_client(es_node.url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    return f"sec{uuid.uuid4().hex[:12]}"


class Tap:
    """A TCP relay in front of ``port`` that records every byte the client sends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


@pytest.fixture
def tap(proxy: TlsProxy) -> Iterator[Tap]:
    made = Tap(int(proxy.url.rsplit(":", 1)[1]))
    yield made
    made.close()


def exporter_for(url: str, namespace: str, tmp_path: Path, **options: Any) -> ElasticsearchSpanExporter:
    return ElasticsearchSpanExporter(
        url,
        namespace=namespace,
        dead_letter_path=tmp_path / "dead" / "letters.jsonl",
        retry=FAST_RETRY,
        env={},
        **options,
    )


def stored_documents(es: Elasticsearch, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in ("traces", "logs"):
        index = stream(kind, namespace)
        es.indices.refresh(index=index, ignore_unavailable=True)
        hits = es.search(index=index, size=1000, ignore_unavailable=True)["hits"]["hits"]
        found.extend(hit["_source"] for hit in hits)
    return found


# --- the proxy itself ---------------------------------------------------------------------------------


def test_proxy_answers_like_a_secured_cluster(proxy: TlsProxy, certificates: Certificates) -> None:
    """401 with the challenges for anything unauthenticated; accepted requests reach the node, bodies streamed."""
    context = ssl.create_default_context(cafile=str(certificates.ca_cert))
    port = int(proxy.url.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)  # the DNS name too
    try:
        connection.request("GET", "/_cluster/health")
        refused = connection.getresponse()
        body = json.loads(refused.read())
        assert refused.status == 401
        challenges = refused.headers.get_all("WWW-Authenticate") or []
        assert {c.split(" ", 1)[0] for c in challenges} == {"Basic", "Bearer", "ApiKey"}
        assert body["error"]["type"] == "security_exception" and body["status"] == 401
        assert refused.headers["X-Elastic-Product"] == "Elasticsearch"

        connection.request(
            "GET", "/_cluster/health", headers={"Authorization": f"Basic {_basic(USER, WRONG_PASSWORD)}"}
        )
        wrong = connection.getresponse()
        reason = json.loads(wrong.read())["error"]["reason"]
        assert wrong.status == 401 and f"[{USER}]" in reason and WRONG_PASSWORD not in reason

        connection.request("GET", "/_cluster/health", headers={"Authorization": f"Bearer {TOKEN}"})
        health = connection.getresponse()
        assert health.status == 200 and json.loads(health.read())["status"] in ("green", "yellow")
        assert health.headers["X-Elastic-Product"] == "Elasticsearch"  # the node's own header, passed through

        pieces = iter([b'{"query":', b'{"match_all":{}}', b"}"])  # a request body sent chunked
        connection.request(
            "POST",
            "/_search?size=0",
            body=pieces,
            encode_chunked=True,
            headers={"Authorization": f"ApiKey {API_KEY_ENCODED}", "Content-Type": "application/json"},
        )
        searched = connection.getresponse()
        assert searched.status == 200 and "hits" in json.loads(searched.read())
    finally:
        connection.close()
    deadline = time.monotonic() + 5  # the proxy records an exchange once its answer is sent
    while len(proxy.exchanges) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(e.scheme, e.status) for e in proxy.exchanges] == [
        (None, 401),
        ("basic", 401),
        ("bearer", 200),
        ("apikey", 200),
    ]


# --- credentials over verified TLS ----------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_each_credential_kind_over_verified_tls(
    method: str,
    proxy: TlsProxy,
    tap: Tap,
    certificates: Certificates,
    es: Elasticsearch,
    es_major: int,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Basic auth, an API key and a bearer token each store the batch over TLS verified with the CA bundle."""
    options, _, (scheme, principal) = METHODS[method]
    exporter = exporter_for(tap.url, namespace, tmp_path, ca_certs=str(certificates.ca_cert), **options)
    assert exporter.export(spans_with(chat_attributes("a"), chat_attributes("b"), event=True)) is (
        SpanExportResult.SUCCESS
    )
    exporter.shutdown()
    assert count(es, stream("traces", namespace)) == 2 and count(es, stream("logs", namespace)) == 2
    assert proxy.exchanges_for("/_bulk") and {(e.scheme, e.principal) for e in proxy.exchanges} == {(scheme, principal)}
    # 404: a template not yet there; a 400 only where a newer client's media type is refused once at the start
    assert all(200 <= e.status < 300 or e.status == 404 for e in settled(proxy.exchanges, es_major))
    # What crossed the wire is TLS: no credentials, no request line, no document text in clear.
    assert tap.sent.startswith(b"\x16\x03")
    assert_no_secret(bytes(tap.sent), "the bytes on the wire")
    for clear in (b"_bulk", b"uthorization", b"gen_ai.input.messages", b"hello"):
        assert clear not in tap.sent


@pytest.mark.parametrize("which", ["server", "server-colons", "ca"])
def test_fingerprint_instead_of_ca(
    which: str, proxy: TlsProxy, certificates: Certificates, es: Elasticsearch, namespace: str, tmp_path: Path
) -> None:
    """``ssl_assert_fingerprint`` (of the server certificate, or of its CA in the chain) replaces the CA bundle."""
    fingerprint = certificates.ca_fingerprint if which == "ca" else certificates.fingerprint
    if which == "server-colons":  # the form Elasticsearch prints at first start
        fingerprint = ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()
    exporter = exporter_for(
        proxy.url, namespace, tmp_path, ssl_assert_fingerprint=fingerprint, username=USER, password=PASSWORD
    )
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert count(es, stream("traces", namespace)) == 1
    assert proxy.exchanges_for("/_bulk")[-1].status == 200


# --- failing closed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(WRONG))
def test_wrong_credentials_hold_documents_with_a_clear_reason(
    method: str,
    proxy: TlsProxy,
    certificates: Certificates,
    es: Elasticsearch,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 401 leaves every document undelivered at once: not retried, not dead-lettered, nothing raised."""
    caplog.set_level(logging.DEBUG)
    exporter = exporter_for(proxy.url, namespace, tmp_path, ca_certs=str(certificates.ca_cert), **WRONG[method])
    documents = list(span_documents(spans_with(chat_attributes("a"), chat_attributes("b"), event=True), namespace))
    report = exporter.export_documents(documents)
    assert (report.delivered, report.attempts, report.indexed, report.dead_lettered) == (False, 1, 0, [])
    assert report.undelivered == documents
    assert report.last_error == "installing index templates: HTTP 401 security_exception"
    assert exporter.export(spans_with(chat_attributes("c"))) is SpanExportResult.FAILURE  # reported, not raised
    exporter.shutdown()
    assert exporter.retries == 0 and exporter.dead_lettered == 0 and exporter.undelivered == len(documents) + 1
    assert not exporter.dead_letter_path.exists()
    assert count(es, stream("traces", namespace)) == 0
    # refused at the first request (the index templates): no document is sent with bad credentials
    assert proxy.exchanges_for("/_bulk") == []
    templates = proxy.exchanges_for("/_index_template")
    assert len(templates) >= 2 and {e.status for e in templates} == {401}
    warnings = [r for r in caplog.records if r.name == "genai_audit.store" and "not delivered" in r.getMessage()]
    assert len(warnings) == 2 and {r.levelno for r in warnings} == {logging.WARNING}
    message = warnings[0].getMessage()
    assert f"{len(documents)} document(s) not delivered to Elasticsearch at {proxy.url}" in message
    assert "after 1 attempt(s): installing index templates: HTTP 401 security_exception" in message
    assert_no_secret(caplog.text, "the log")


def test_tls_without_trust_fails_closed(
    proxy: TlsProxy, tap: Tap, es: Elasticsearch, namespace: str, tmp_path: Path
) -> None:
    """https:// without a CA bundle or fingerprint for a private CA: nothing is sent, in clear or otherwise."""
    exporter = exporter_for(tap.url, namespace, tmp_path, username=USER, password=PASSWORD)
    documents = list(span_documents(spans_with(chat_attributes()), namespace))
    report = exporter.export_documents(documents)
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert (report.delivered, report.undelivered, report.dead_lettered) == (False, documents, [])
    assert report.last_error is not None and "TlsError" in report.last_error
    assert not exporter.dead_letter_path.exists()
    assert proxy.exchanges == []  # no request reached HTTP
    assert proxy.handshake_failures and all("UNKNOWN_CA" in f.upper() for f in proxy.handshake_failures)
    assert tap.sent.startswith(b"\x16\x03")  # only TLS handshakes ever left the exporter
    assert_no_secret(bytes(tap.sent), "the bytes on the wire")
    assert b"_bulk" not in tap.sent and b"uthorization" not in tap.sent
    assert count(es, stream("traces", namespace)) == 0


def test_wrong_fingerprint_fails_closed(proxy: TlsProxy, es: Elasticsearch, namespace: str, tmp_path: Path) -> None:
    """A fingerprint that matches no certificate of the chain: the connection is dropped before any request."""
    exporter = exporter_for(
        proxy.url, namespace, tmp_path, ssl_assert_fingerprint="ab" * 32, username=USER, password=PASSWORD
    )
    report = exporter.export_documents(span_documents(spans_with(chat_attributes()), namespace))
    exporter.shutdown()
    assert not report.delivered and report.dead_lettered == []
    assert report.last_error is not None and "TlsError" in report.last_error
    assert proxy.exchanges == []
    assert count(es, stream("traces", namespace)) == 0


# --- configuration from the environment ------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_credentials_and_ca_from_files(
    method: str, proxy: TlsProxy, certificates: Certificates, es: Elasticsearch, namespace: str, tmp_path: Path
) -> None:
    """GENAI_AUDIT_ES_*_FILE name files holding the secrets (trailing newline ignored); the CA bundle by path."""
    _, variables, (scheme, principal) = METHODS[method]
    env = {
        "GENAI_AUDIT_STORE": proxy.url,
        "GENAI_AUDIT_ES_CA_CERTS": str(certificates.ca_cert),
        "GENAI_AUDIT_ES_NAMESPACE": namespace,
        "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp_path / "dead.jsonl"),
    }
    for name, value in variables.items():
        secret_file = tmp_path / name.lower()
        secret_file.write_text(value + "\n", encoding="utf-8")
        secret_file.chmod(0o600)
        env[name + "_FILE"] = str(secret_file)
    exporter = ElasticsearchSpanExporter(env=env)
    assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert count(es, stream("traces", namespace)) == 1
    assert {(e.scheme, e.principal) for e in proxy.exchanges} == {(scheme, principal)}
    assert_no_secret(repr(exporter.settings), "the settings' repr")


# --- secrets never leave through logs or documents ------------------------------------------------------


def test_secrets_absent_from_debug_logs_and_documents(
    proxy: TlsProxy,
    certificates: Certificates,
    es: Elasticsearch,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything logged at DEBUG (ours and the client's) over failing and succeeding exports names no secret."""
    caplog.set_level(logging.DEBUG)
    ca = str(certificates.ca_cert)
    results = []
    for method, wrong in WRONG.items():  # refused
        exporter = exporter_for(proxy.url, namespace, tmp_path, ca_certs=ca, **wrong)
        results.append((method, False, exporter.export(spans_with(chat_attributes(f"refused-{method}")))))
        exporter.shutdown()
    untrusted = exporter_for(proxy.url, namespace, tmp_path, username=USER, password=PASSWORD)  # TLS refused
    results.append(("untrusted", False, untrusted.export(spans_with(chat_attributes("untrusted")))))
    untrusted.shutdown()
    for method, (options, _, _) in METHODS.items():  # accepted
        exporter = exporter_for(proxy.url, namespace, tmp_path, ca_certs=ca, **options)
        results.append((method, True, exporter.export(spans_with(chat_attributes(f"stored-{method}")))))
        exporter.shutdown()
    assert [(m, r) for m, ok, r in results if (r is SpanExportResult.SUCCESS) != ok] == []
    # the capture did see the client's request-level debug output and our warnings
    assert "/_bulk" in caplog.text and "not delivered" in caplog.text
    assert_no_secret(caplog.text, "the log")
    for record in caplog.records:
        assert_no_secret(repr(record.args) + repr(record.msg), f"the arguments of a {record.name} record")
    documents = stored_documents(es, namespace)
    assert sorted(d["attributes"]["enduser.id"] for d in documents) == [f"stored-{m}" for m in sorted(METHODS)]
    assert_no_secret(json.dumps(documents), "the stored documents")


# --- zero-code: GENAI_AUDIT_STORE=https://... through the spool ---------------------------------------------

APP = """
import logging, openai
logging.basicConfig(level=logging.DEBUG)
openai.OpenAI(max_retries=0).chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "zero code over TLS"}])
print("called")
"""
IDLE_APP = "print('idle')\n"


def _app_env(
    fake: FakeProvider, proxy: TlsProxy, certificates: Certificates, namespace: str, tmp_path: Path, password: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_AUDIT_", "OTEL_"))}
    env.update(
        {
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": "sk-test",
            "GENAI_AUDIT_ENABLED": "true",
            "GENAI_AUDIT_STORE": proxy.url,
            "GENAI_AUDIT_ES_USERNAME": USER,
            "GENAI_AUDIT_ES_PASSWORD": password,
            "GENAI_AUDIT_ES_CA_CERTS": str(certificates.ca_cert),
            "GENAI_AUDIT_ES_NAMESPACE": namespace,
            "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp_path / "dead.jsonl"),
            "GENAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
            "GENAI_AUDIT_PSEUDONYM_KEY": "test-pseudonym-key-0123456789",
            "GENAI_AUDIT_LOG_LEVEL": "DEBUG",
        }
    )
    return env


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "app.py").write_text(code)
    return subprocess.run(
        [sys.executable, "app.py"], env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def _spooled(spool_dir: Path) -> int:
    total = 0
    for path in spool_dir.glob("*.db"):
        with sqlite3.connect(path) as conn:
            total += conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0]
    return total


def _spool_bytes(spool_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(spool_dir.iterdir()) if path.is_file())


def test_zero_code_https_store_with_basic_auth_and_ca(
    fake: FakeProvider,
    proxy: TlsProxy,
    certificates: Certificates,
    es: Elasticsearch,
    namespace: str,
    tmp_path: Path,
) -> None:
    """GENAI_AUDIT_ENABLED + an https:// store + user/password + CA: an unmodified openai call arrives in the node."""
    env = _app_env(fake, proxy, certificates, namespace, tmp_path, PASSWORD)
    result = _run(APP, env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "called"
    assert "not enabled" not in result.stderr and "not delivered" not in result.stderr
    assert "/_bulk" in result.stderr  # the application's DEBUG logging saw the exporter's requests ...
    assert_no_secret(result.stderr + result.stdout, "the application's output")  # ... and no secret
    (document,) = stored_documents(es, namespace)  # the call's span only: the exporter's requests made none
    assert document["name"] == "chat gpt-4o"
    assert "zero code over TLS" in document["attributes"]["gen_ai.input.messages"]
    assert_no_secret(json.dumps(document), "the stored document")
    bulk = proxy.exchanges_for("/_bulk")
    assert bulk and {(e.scheme, e.principal, e.status) for e in bulk} == {("basic", USER, 200)}
    assert _spooled(tmp_path / "spool") == 0
    assert_no_secret(_spool_bytes(tmp_path / "spool"), "the spool files")


def test_zero_code_wrong_password_keeps_the_record_spooled_until_fixed(
    fake: FakeProvider,
    proxy: TlsProxy,
    certificates: Certificates,
    es: Elasticsearch,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Refused credentials keep the record in the spool (not dead-lettered); the next start delivers it."""
    refused = _run(APP, _app_env(fake, proxy, certificates, namespace, tmp_path, WRONG_PASSWORD), tmp_path)
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert refused.stdout.strip() == "called"
    assert "HTTP 401 security_exception" in refused.stderr
    assert "records remain in the spool" in refused.stderr
    assert_no_secret(refused.stderr + refused.stdout, "the application's output")
    assert count(es, stream("traces", namespace)) == 0
    assert _spooled(tmp_path / "spool") == 1
    assert not (tmp_path / "dead.jsonl").exists()
    assert proxy.exchanges_for("/_bulk") == []  # refused at the index templates: nothing sent
    assert {e.status for e in proxy.exchanges_for("/_index_template")} == {401}

    fixed = _run(IDLE_APP, _app_env(fake, proxy, certificates, namespace, tmp_path, PASSWORD), tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    (document,) = stored_documents(es, namespace)
    assert "zero code over TLS" in document["attributes"]["gen_ai.input.messages"]
    assert _spooled(tmp_path / "spool") == 0


# --- failure handling ----------------------------------------------------------------------------------------


def test_flush_with_refused_credentials_keeps_the_backoff(
    proxy: TlsProxy, certificates: Certificates, namespace: str, tmp_path: Path
) -> None:
    """While credentials are refused, waiting for delivery does not turn the retries into a request storm."""
    env = {
        "GENAI_AUDIT_ES_USERNAME": USER,
        "GENAI_AUDIT_ES_PASSWORD": WRONG_PASSWORD,
        "GENAI_AUDIT_ES_CA_CERTS": str(certificates.ca_cert),
        "GENAI_AUDIT_ES_NAMESPACE": namespace,
        "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp_path / "dead.jsonl"),
        "GENAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
    }
    processor = remote_processor(proxy.url, env)
    provider = TracerProvider(shutdown_on_exit=False)  # shut down here, not again at exit
    provider.add_span_processor(processor)
    with provider.get_tracer("genai_audit.test").start_as_current_span("chat m") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
    try:
        assert not processor.force_flush(3000)
    finally:
        processor.shutdown(100)
    refused = proxy.exchanges_for("/_")
    assert refused and {e.status for e in refused} == {401}
    assert len(refused) <= 6, f"{len(refused)} requests in 3 s with refused credentials"


def test_templates_installed_once_credentials_are_accepted(
    es_node: RunningNode, certificates: Certificates, namespace: str, tmp_path: Path
) -> None:
    """A 401 is not a 403: the templates are installed once the same exporter's credentials start working."""
    with TlsProxy(es_node.url, certificates, Credentials(users={USER: PASSWORD})) as own:
        exporter = exporter_for(
            own.url, namespace, tmp_path, username=USER, password=WRONG_PASSWORD, ca_certs=str(certificates.ca_cert)
        )
        assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.FAILURE
        own.credentials = Credentials(users={USER: WRONG_PASSWORD})  # the user's password was set on the cluster
        own.clear()
        assert exporter.export(spans_with(chat_attributes())) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert own.exchanges_for("/_index_template"), "the templates were never checked or installed"


def test_tls_failure_reason_names_the_certificate_problem(proxy: TlsProxy, namespace: str, tmp_path: Path) -> None:
    """The logged reason of a refused server certificate says why it was refused."""
    exporter = exporter_for(proxy.url, namespace, tmp_path, username=USER, password=PASSWORD)
    report = exporter.export_documents(span_documents(spans_with(chat_attributes()), namespace))
    exporter.shutdown()
    assert report.last_error is not None and "certificate verify failed" in report.last_error.lower()
