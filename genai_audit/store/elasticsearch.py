"""Elasticsearch as the audit store: an OpenTelemetry span exporter writing data streams.

Every span becomes the document :func:`genai_audit.serialize.span_document`
builds (the same document the embedded SQLite store keeps), written to the data
stream ``traces-genai_audit.otel-<namespace>``; span events (exceptions) go to
``logs-genai_audit.otel-<namespace>``, one document each. The shape is the one
the OpenTelemetry Collector's Elasticsearch exporter writes in ``otel`` mode,
so Kibana's views and the Collector can share the data.

Delivery
    Documents are written with bulk ``create`` operations and deterministic ids
    (``<trace_id><span_id>``; events ``<trace_id><span_id>-<n>``), so a retried
    batch never duplicates a record: a 409 means "already stored" and counts as
    delivered. Throttling (429), server errors (5xx) and connection failures are
    retried with exponential backoff and jitter, bounded in attempts and time.
    Documents the cluster rejects for good (mapping conflicts, malformed or too
    large documents) are appended with the reason to a dead-letter file (JSON
    lines, owner-only) and counted. An error about the request as a whole
    (credentials, permissions, a client/server version mismatch) is not the
    documents' fault: they are reported undelivered at once, without retries. :meth:`ElasticsearchSpanExporter.export`
    never raises; it returns FAILURE when documents could not be delivered, and
    :meth:`ElasticsearchSpanExporter.export_documents` reports exactly which.

    Within a data stream the ``create`` conflict is detected per backing index:
    a retry that lands after a rollover is stored a second time with the same
    ``_id``.

Index templates
    ``genai-audit-traces`` and ``genai-audit-logs`` (priority 300, above the
    stack's own ``traces-*.otel-*``/``logs-*.otel-*`` templates) are installed
    before the first write unless an installed template of the same name already
    has the same or a higher ``version`` (raise it to take a template over).
    ``attributes``, ``resource.attributes`` and ``scope.attributes`` are
    ``passthrough`` objects, so ``gen_ai.request.model`` can be queried without
    the ``attributes.`` prefix (span attributes win over scope and resource
    attributes of the same name). Audit and usage fields have explicit types;
    prompt and response content is ``text`` (full-text searchable); other
    strings are keywords.

Configuration (constructor arguments win over the environment)
    endpoint: ``GENAI_AUDIT_STORE`` when it is an ``http(s)://`` URL, else
    ``OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT`` (comma-separated for several nodes);
    ``GENAI_AUDIT_ES_NAMESPACE`` (default ``default``);
    ``GENAI_AUDIT_ES_API_KEY``, ``GENAI_AUDIT_ES_USERNAME`` + ``GENAI_AUDIT_ES_PASSWORD``
    or ``GENAI_AUDIT_ES_BEARER_TOKEN`` (one of them; each also as ``<NAME>_FILE``
    naming a file that holds the secret); ``GENAI_AUDIT_ES_CA_CERTS`` (CA bundle path),
    ``GENAI_AUDIT_ES_FINGERPRINT`` (SHA-256 of the server certificate);
    ``GENAI_AUDIT_ES_DEAD_LETTER`` (dead-letter file). Secrets are never logged.

Tamper evidence
    :meth:`ElasticsearchSpanExporter.export` seals each span document
    (:mod:`genai_audit.integrity`: ``integrity`` field, ledger line, signed
    checkpoints) before sending it, configured by the process environment;
    :meth:`ElasticsearchSpanExporter.export_documents` sends documents as given
    (the spool path seals them before they are spooled).

The exporter's own requests run with OpenTelemetry instrumentation suppressed
and with the Elasticsearch client's built-in tracing off, so writing the audit
trail never produces spans of its own.
"""

from __future__ import annotations

import copy
import json
import json.encoder
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import ApiError, Elasticsearch, TransportError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.integrity import Sealer, elasticsearch_store_name, entries_of, sealer_for
from genai_audit.serialize import DATASET, event_documents, span_document
from genai_audit.store.es_compat import NegotiatingTransport

logger = logging.getLogger("genai_audit.store")

# --- configuration names --------------------------------------------------------------
ENV_ENDPOINT: Final = "OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT"
ENV_NAMESPACE: Final = "GENAI_AUDIT_ES_NAMESPACE"
ENV_API_KEY: Final = "GENAI_AUDIT_ES_API_KEY"
ENV_USERNAME: Final = "GENAI_AUDIT_ES_USERNAME"
ENV_PASSWORD: Final = "GENAI_AUDIT_ES_PASSWORD"
ENV_BEARER_TOKEN: Final = "GENAI_AUDIT_ES_BEARER_TOKEN"
ENV_CA_CERTS: Final = "GENAI_AUDIT_ES_CA_CERTS"
ENV_FINGERPRINT: Final = "GENAI_AUDIT_ES_FINGERPRINT"
ENV_DEAD_LETTER: Final = "GENAI_AUDIT_ES_DEAD_LETTER"
FILE_SUFFIX: Final = "_FILE"

TRACES_TEMPLATE: Final = "genai-audit-traces"
LOGS_TEMPLATE: Final = "genai-audit-logs"
TEMPLATE_PRIORITY: Final = 300
#: bump when the templates below change; installed templates with a lower version are replaced
#: (3: the pipeline status fields of the logs template, typed resource environment and service name)
TEMPLATE_VERSION: Final = 3

_NAMESPACE_RE = re.compile(r"^[a-z0-9_][a-z0-9_.]{0,99}$")
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: item answers that are about the index or the credentials, not the document: hold, do not dead-letter
_HOLD_STATUS = frozenset({401, 403, 404})
#: the parts of a bulk answer the exporter reads: each item's status, and its error when it failed.
#: Every item has a status, so the filtered list keeps one entry per document, in order.
BULK_FILTER_PATH: Final = ("items.*.status", "items.*.error")
#: a string as JSON (quoted and escaped, non-ASCII kept), as json.dumps writes it
_json_string: Final = json.encoder.encode_basestring
_HINTS: Final[Mapping[str, str]] = {
    "media_type_header_exception": " (the elasticsearch client's major version must match the server's)",
}


def data_stream(kind: str, namespace: str) -> str:
    """``traces-genai_audit.otel-<namespace>`` or ``logs-genai_audit.otel-<namespace>``."""
    return f"{kind}-{DATASET}-{namespace}"


# --- index templates ------------------------------------------------------------------------

_KEYWORD: Final = {"type": "keyword", "ignore_above": 1024}
_TEXT: Final = {"type": "text"}
_LONG: Final = {"type": "long"}
_DOUBLE: Final = {"type": "double"}
_BOOLEAN: Final = {"type": "boolean"}

#: span attributes with a fixed type; everything else is mapped by the dynamic templates
SPAN_ATTRIBUTE_TYPES: Final[Mapping[str, Mapping[str, Any]]] = {
    # GenAI semantic conventions
    sc.OPERATION_NAME: _KEYWORD,
    sc.PROVIDER_NAME: _KEYWORD,
    sc.CONVERSATION_ID: _KEYWORD,
    sc.OUTPUT_TYPE: _KEYWORD,
    sc.REQUEST_MODEL: _KEYWORD,
    sc.REQUEST_CHOICE_COUNT: _LONG,
    sc.REQUEST_SEED: _LONG,
    sc.REQUEST_STREAM: _BOOLEAN,
    sc.REQUEST_MAX_TOKENS: _LONG,
    sc.REQUEST_TEMPERATURE: _DOUBLE,
    sc.REQUEST_TOP_P: _DOUBLE,
    sc.REQUEST_TOP_K: _DOUBLE,
    sc.REQUEST_FREQUENCY_PENALTY: _DOUBLE,
    sc.REQUEST_PRESENCE_PENALTY: _DOUBLE,
    sc.REQUEST_STOP_SEQUENCES: _KEYWORD,
    sc.REQUEST_ENCODING_FORMATS: _KEYWORD,
    sc.RESPONSE_ID: _KEYWORD,
    sc.RESPONSE_MODEL: _KEYWORD,
    sc.RESPONSE_FINISH_REASONS: _KEYWORD,
    sc.RESPONSE_TIME_TO_FIRST_CHUNK: _DOUBLE,
    sc.USAGE_INPUT_TOKENS: _LONG,
    sc.USAGE_OUTPUT_TOKENS: _LONG,
    sc.USAGE_CACHE_READ_INPUT_TOKENS: _LONG,
    sc.USAGE_CACHE_CREATION_INPUT_TOKENS: _LONG,
    sc.USAGE_REASONING_OUTPUT_TOKENS: _LONG,
    sc.USAGE_COST_USD: _DOUBLE,
    sc.EMBEDDINGS_DIMENSION_COUNT: _LONG,
    sc.OPENAI_REQUEST_SERVICE_TIER: _KEYWORD,
    sc.OPENAI_RESPONSE_SERVICE_TIER: _KEYWORD,
    sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: _KEYWORD,
    sc.INPUT_MESSAGES: _TEXT,
    sc.OUTPUT_MESSAGES: _TEXT,
    sc.SYSTEM_INSTRUCTIONS: _TEXT,
    sc.TOOL_DEFINITIONS: _TEXT,
    sc.SERVER_ADDRESS: _KEYWORD,
    sc.SERVER_PORT: _LONG,
    sc.ERROR_TYPE: _KEYWORD,
    "http.response.status_code": _LONG,
    # audit context
    sc.ENDUSER_ID: _KEYWORD,
    sc.SESSION_ID: _KEYWORD,
    sc.DEPLOYMENT_ENVIRONMENT: _KEYWORD,
    sc.AUDIT_FEATURE: _KEYWORD,
    sc.AUDIT_CONSENT: _KEYWORD,  # true/false/granted/denied/unknown, carried as baggage text
    sc.AUDIT_CLASSIFICATION: _KEYWORD,
    sc.AUDIT_REQUEST_ID: _KEYWORD,
    sc.AUDIT_TENANT: _KEYWORD,
    # content bookkeeping
    sc.AUDIT_CONTENT_CAPTURED: _BOOLEAN,
    sc.AUDIT_TRUNCATED: _KEYWORD,  # names of the cut attributes
    sc.AUDIT_STREAM_COMPLETED: _BOOLEAN,
    sc.AUDIT_STREAM_CHUNKS: _LONG,
    sc.AUDIT_PROCESSING_FAILED: _KEYWORD,  # names of the failed steps
    # processors
    sc.AUDIT_PII_DETECTED: _BOOLEAN,
    sc.AUDIT_PII_TYPES: _KEYWORD,
    sc.AUDIT_PII_COUNT: _LONG,
    sc.AUDIT_PII_TOKENS: _KEYWORD,
    sc.AUDIT_SECRETS_DETECTED: _BOOLEAN,
    sc.AUDIT_REDACTED: _BOOLEAN,
    sc.AUDIT_RETENTION_DAYS: _LONG,
    sc.AUDIT_DECLARED_CLASSIFICATION: _KEYWORD,
    sc.AUDIT_INJECTION_DETECTED: _BOOLEAN,
    sc.AUDIT_INJECTION_SCORE: _DOUBLE,
    sc.AUDIT_INJECTION_TECHNIQUE: _KEYWORD,
    sc.AUDIT_INJECTION_SOURCE: _KEYWORD,
    sc.AUDIT_SECURITY_SCORE: _DOUBLE,
    sc.AUDIT_COST_UNKNOWN_MODEL: _BOOLEAN,
    sc.AUDIT_ALERTS: _KEYWORD,
}

EVENT_ATTRIBUTE_TYPES: Final[Mapping[str, Mapping[str, Any]]] = {
    "exception.type": _KEYWORD,
    "exception.message": _TEXT,
    "exception.stacktrace": _TEXT,
    "exception.escaped": _BOOLEAN,
    # the pipeline's own status documents (genai_audit.store.pipeline_status)
    sc.AUDIT_PIPELINE_DROPPED: _LONG,
    sc.AUDIT_PIPELINE_REFUSED: _LONG,
    sc.AUDIT_PIPELINE_DEAD_LETTERED: _LONG,
    sc.AUDIT_PIPELINE_LOST: _LONG,
    sc.AUDIT_PIPELINE_SPOOL_PENDING: _LONG,
    sc.AUDIT_PIPELINE_SPOOL_BYTES: _LONG,
    sc.AUDIT_PIPELINE_SPOOL_QUOTA_BYTES: _LONG,
    sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL: _BOOLEAN,
}

#: resource attributes with a fixed type, so that dashboards can rely on them before any document has one
RESOURCE_ATTRIBUTE_TYPES: Final[Mapping[str, Mapping[str, Any]]] = {
    "service.name": _KEYWORD,
    sc.DEPLOYMENT_ENVIRONMENT: _KEYWORD,
}

# passthrough priorities: the more specific level wins a name clash (span over scope over resource)
_PRIORITY_RESOURCE, _PRIORITY_SCOPE, _PRIORITY_SPAN = 10, 20, 30


def _passthrough(priority: int, properties: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    mapping: dict[str, Any] = {"type": "passthrough", "dynamic": True, "priority": priority}
    if properties:
        mapping["properties"] = {name: dict(spec) for name, spec in properties.items()}
    return mapping


def _dynamic_templates() -> list[dict[str, Any]]:
    return [
        {
            "content_original_length": {
                "path_match": f"attributes.{sc.AUDIT_ORIGINAL_LENGTH_PREFIX}*",
                "mapping": dict(_LONG),
            }
        },
        {"content_sha256": {"path_match": f"attributes.{sc.AUDIT_SHA256_PREFIX}*", "mapping": dict(_KEYWORD)}},
        {"strings_as_keywords": {"match_mapping_type": "string", "mapping": dict(_KEYWORD)}},
        {"floats_as_doubles": {"match_mapping_type": "double", "mapping": dict(_DOUBLE)}},
    ]


_KW = dict(_KEYWORD)

_COMMON_SETTINGS: Final[Mapping[str, Any]] = {
    "index": {"mapping": {"total_fields": {"limit": 2000, "ignore_dynamic_beyond_limit": True}}},
}


def _template_body(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Settings and mappings shared by both templates, with each one's own ``properties``."""
    return copy.deepcopy(
        {
            "settings": _COMMON_SETTINGS,
            "mappings": {
                "date_detection": False,
                "dynamic_templates": _dynamic_templates(),
                "properties": {
                    "@timestamp": {"type": "date_nanos"},
                    "data_stream": {"properties": {"type": _KW, "dataset": _KW, "namespace": _KW}},
                    "trace_id": _KW,
                    "span_id": _KW,
                    "resource": {
                        "properties": {"attributes": _passthrough(_PRIORITY_RESOURCE, RESOURCE_ATTRIBUTE_TYPES)}
                    },
                    **properties,
                },
            },
        }
    )


def traces_template() -> dict[str, Any]:
    """The ``template`` body (settings and mappings) of ``genai-audit-traces``."""
    return _template_body(
        {
            "parent_span_id": _KW,
            "name": _KW,
            "kind": _KW,
            "duration": dict(_LONG),
            "status": {"properties": {"code": _KW, "message": _KW}},
            "attributes": _passthrough(_PRIORITY_SPAN, SPAN_ATTRIBUTE_TYPES),
            "scope": {"properties": {"name": _KW, "version": _KW, "attributes": _passthrough(_PRIORITY_SCOPE)}},
            "links": {"properties": {"trace_id": _KW, "span_id": _KW, "attributes": {"type": "flattened"}}},
            "integrity": {"properties": {"stream": _KW, "seq": dict(_LONG), "leaf": _KW, "events": dict(_LONG)}},
        }
    )


def logs_template() -> dict[str, Any]:
    """The ``template`` body (settings and mappings) of ``genai-audit-logs``."""
    return _template_body(
        {
            "event_name": _KW,
            "attributes": _passthrough(_PRIORITY_SPAN, EVENT_ATTRIBUTE_TYPES),
        }
    )


def index_templates() -> dict[str, tuple[str, dict[str, Any]]]:
    """Template name -> (index pattern, template body) for both data streams."""
    return {
        TRACES_TEMPLATE: (f"traces-{DATASET}-*", traces_template()),
        LOGS_TEMPLATE: (f"logs-{DATASET}-*", logs_template()),
    }


# --- settings ---------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` without user name and password, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _secret(name: str, given: str | None, env: Mapping[str, str]) -> str | None:
    """A secret from the argument, else ``NAME``, else the file ``NAME_FILE`` names (never both)."""
    if given is not None:
        return given or None
    value = env.get(name, "").strip()
    file_name = env.get(name + FILE_SUFFIX, "").strip()
    if value and file_name:
        raise ConfigError(f"{name} and {name}{FILE_SUFFIX} are both set; set one of them")
    if not file_name:
        return value or None
    try:
        text = Path(file_name).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise ConfigError(f"{name}{FILE_SUFFIX}={file_name!r}: cannot read it ({problem})") from None
    if not text:
        raise ConfigError(f"{name}{FILE_SUFFIX}={file_name!r}: the file is empty")
    return text


def _plain(name: str, given: str | None, env: Mapping[str, str]) -> str | None:
    if given is not None:
        return given or None
    return env.get(name, "").strip() or None


def resolve_endpoints(given: str | Sequence[str] | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """The node URLs: ``given``, else ``GENAI_AUDIT_STORE`` when it is an http(s) URL, else
    ``OTEL_EXPORTER_ELASTICSEARCH_ENDPOINT`` (comma-separated for several nodes)."""
    source = "endpoint"
    if given is None:
        store = env.get(sc.ENV_STORE, "").strip()
        if store.startswith(("http://", "https://")):
            raw, source = store, sc.ENV_STORE
        else:
            raw, source = env.get(ENV_ENDPOINT, "").strip(), ENV_ENDPOINT
        candidates = raw.split(",")
    elif isinstance(given, str):
        candidates = given.split(",")
    else:
        candidates = list(given)
    hosts = tuple(host.strip() for host in candidates if host.strip())
    if not hosts:
        raise ConfigError(
            f"no Elasticsearch endpoint: pass one, or set {sc.ENV_STORE} to an http(s):// URL or {ENV_ENDPOINT}"
        )
    for host in hosts:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{source}: {redact_url(host)!r} is not an http:// or https:// URL")
    return hosts


def default_dead_letter_path() -> Path:
    """``elasticsearch-dead-letter.jsonl`` beside the embedded store's default file."""
    from genai_audit.config import default_store_path

    return default_store_path().parent / "elasticsearch-dead-letter.jsonl"


@dataclass(frozen=True)
class ElasticsearchSettings:
    """Where and how to connect; secrets are kept out of ``repr``."""

    hosts: tuple[str, ...] = field(repr=False)
    namespace: str = "default"
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    ssl_assert_fingerprint: str | None = None
    dead_letter_path: Path = field(default_factory=default_dead_letter_path)

    @classmethod
    def resolve(
        cls,
        endpoint: str | Sequence[str] | None = None,
        *,
        namespace: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        ca_certs: str | None = None,
        ssl_assert_fingerprint: str | None = None,
        dead_letter_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ElasticsearchSettings:
        """Arguments first, then the environment; raises :class:`ConfigError` naming the setting."""
        env = os.environ if env is None else env
        hosts = resolve_endpoints(endpoint, env)
        space = _plain(ENV_NAMESPACE, namespace, env) or "default"
        if not _NAMESPACE_RE.match(space):
            raise ConfigError(
                f"{ENV_NAMESPACE}={space!r}: a data stream namespace is lowercase letters, digits, '_' and '.' "
                "(no '-'), at most 100 characters"
            )
        key = _secret(ENV_API_KEY, api_key, env)
        user = _secret(ENV_USERNAME, username, env)
        secret = _secret(ENV_PASSWORD, password, env)
        token = _secret(ENV_BEARER_TOKEN, bearer_token, env)
        if (user is None) != (secret is None):
            raise ConfigError(f"{ENV_USERNAME} and {ENV_PASSWORD} go together; one of them is missing")
        methods = [
            name
            for name, present in (("API key", key), ("user name and password", user), ("bearer token", token))
            if present
        ]
        if len(methods) > 1:
            raise ConfigError(
                f"Elasticsearch credentials: give one of API key, user/password, bearer token, "
                f"not {' and '.join(methods)}"
            )
        ca = _plain(ENV_CA_CERTS, ca_certs, env)
        if ca is not None and not Path(ca).expanduser().is_file():
            raise ConfigError(f"{ENV_CA_CERTS}={ca!r}: no such file")
        dead = _plain(ENV_DEAD_LETTER, None if dead_letter_path is None else os.fspath(dead_letter_path), env)
        return cls(
            hosts=hosts,
            namespace=space,
            api_key=key,
            username=user,
            password=secret,
            bearer_token=token,
            ca_certs=str(Path(ca).expanduser()) if ca else None,
            ssl_assert_fingerprint=_plain(ENV_FINGERPRINT, ssl_assert_fingerprint, env),
            dead_letter_path=Path(dead).expanduser() if dead else default_dead_letter_path(),
        )

    def describe(self) -> str:
        """The endpoints without credentials."""
        return ", ".join(redact_url(host) for host in self.hosts)

    def client(self, request_timeout: float) -> Elasticsearch:
        """A client that never retries on its own (the exporter does) and does not trace itself."""
        options: dict[str, Any] = {
            "hosts": list(self.hosts),
            "request_timeout": request_timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "transport_class": NegotiatingTransport,
        }
        if self.api_key:
            options["api_key"] = self.api_key
        elif self.username is not None and self.password is not None:
            options["basic_auth"] = (self.username, self.password)
        elif self.bearer_token:
            options["bearer_auth"] = self.bearer_token
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        if self.ssl_assert_fingerprint:
            options["ssl_assert_fingerprint"] = self.ssl_assert_fingerprint
        return _untraced(Elasticsearch(**options))


def _untraced(client: Elasticsearch) -> Elasticsearch:
    """Turn off the client's built-in OpenTelemetry spans, which ignore instrumentation suppression."""
    tracing = getattr(client, "_otel", None)
    if tracing is not None and hasattr(tracing, "enabled"):
        tracing.enabled = False
    return client


# --- documents and delivery ------------------------------------------------------------------


class RawJson(str):
    """A document already serialized as JSON (as the spool keeps it): sent as it is, never re-encoded."""

    def parsed(self) -> Any:
        return json.loads(self)


def _source_of(document: AuditDocument) -> Any:
    source = document.source
    return source.parsed() if isinstance(source, RawJson) else source


@dataclass(frozen=True)
class AuditDocument:
    """One document bound for a data stream, with its deterministic id (``source``: a mapping, or RawJson)."""

    index: str
    id: str
    source: Mapping[str, Any] | RawJson


def span_documents(spans: Iterable[ReadableSpan], namespace: str = "default") -> Iterator[AuditDocument]:
    """The span documents (``traces-*``) and their event documents (``logs-*``), in span order."""
    traces, logs = data_stream("traces", namespace), data_stream("logs", namespace)
    for span in spans:
        doc = span_document(span, namespace=namespace)
        key = f"{doc['trace_id']}{doc['span_id']}"
        yield AuditDocument(traces, key, doc)
        for number, event in enumerate(event_documents(span, namespace=namespace)):
            yield AuditDocument(logs, f"{key}-{number}", event)


@dataclass(frozen=True)
class Rejection:
    """A document the cluster (or the size limit) refused for good.

    ``reason`` is the server's explanation; it may quote the document's values,
    so it goes to the dead-letter file only, never to logs.
    """

    document: AuditDocument
    status: int
    error_type: str
    reason: str = field(repr=False)


@dataclass
class DeliveryReport:
    """What happened to each document of one :meth:`ElasticsearchSpanExporter.export_documents` call."""

    indexed: int = 0
    duplicates: int = 0
    dead_lettered: list[Rejection] = field(default_factory=list)
    undelivered: list[AuditDocument] = field(default_factory=list)
    attempts: int = 0
    last_error: str | None = None

    @property
    def delivered(self) -> bool:
        """Every document is stored, was already stored, or is in the dead-letter file."""
        return not self.undelivered


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for throttling, server and connection errors."""

    max_attempts: int = 5  # sends of one document, the first included
    max_seconds: float = 30.0  # no retry starts later than this after the first send
    initial_backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_seconds < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("RetryPolicy: max_attempts must be at least 1 and the times not negative")

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): half the exponential step, plus up to half again."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class _Sized:
    """A document with its JSON body encoded once: measured for the size limits, then sent as these bytes."""

    document: AuditDocument
    payload: bytes

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass
class _Round:
    indexed: int = 0
    duplicates: int = 0
    retry: list[_Sized] = field(default_factory=list)
    hold: list[_Sized] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    error: str | None = None


def _is_tls(exc: BaseException) -> bool:
    return type(exc).__name__ == "TlsError" or "CERTIFICATE_VERIFY_FAILED" in transport_reason(exc)


def transport_reason(exc: BaseException) -> str:
    """The underlying cause of a transport failure (``certificate verify failed: ...``, ``Connection refused``)."""
    causes: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for error in getattr(current, "errors", ()) or ():
            if isinstance(error, BaseException) and str(error) not in causes:
                causes.append(str(error))
        text = str(getattr(current, "message", "") or current)
        if text and text not in causes:
            causes.append(text)
        current = current.__cause__ or current.__context__
    detail = "; ".join(c for c in causes[1:] if c) or ""
    return f"{type(exc).__name__}: {causes[0] if causes else exc}" + (f" ({detail})" if detail else "")


def _error_of(exc: ApiError) -> tuple[str, str]:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("type", "error")), str(error.get("reason", ""))
    return "http_error", str(body)[:2000]


class ElasticsearchSpanExporter(SpanExporter):
    """Writes finished spans to Elasticsearch data streams; never raises into the SDK.

    ``endpoint`` is a URL (or several, comma-separated or as a list); without
    it the environment names one (see the module documentation), which is how
    the ``elasticsearch`` entry point of ``opentelemetry_traces_exporter``
    builds it. Counters: :attr:`exported` (documents newly stored),
    :attr:`duplicates` (already stored), :attr:`dead_lettered`,
    :attr:`failed_batches` (calls that left documents undelivered),
    :attr:`retries` and :attr:`undelivered`.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        *,
        namespace: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        ca_certs: str | None = None,
        ssl_assert_fingerprint: str | None = None,
        dead_letter_path: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 10.0,
        max_batch_documents: int = 500,
        max_batch_bytes: int = 8 * 1024 * 1024,
        max_document_bytes: int = 90 * 1024 * 1024,
        manage_templates: bool = True,
        env: Mapping[str, str] | None = None,
        integrity: Sealer | bool = True,
    ) -> None:
        self.settings = ElasticsearchSettings.resolve(
            endpoint,
            namespace=namespace,
            api_key=api_key,
            username=username,
            password=password,
            bearer_token=bearer_token,
            ca_certs=ca_certs,
            ssl_assert_fingerprint=ssl_assert_fingerprint,
            dead_letter_path=dead_letter_path,
            env=env,
        )
        self.retry = retry or RetryPolicy()
        self.max_batch_documents = max(1, max_batch_documents)
        self.max_batch_bytes = max(1, max_batch_bytes)
        self.max_document_bytes = max_document_bytes
        self.manage_templates = manage_templates
        self.client = self.settings.client(request_timeout)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._templates_ready = not manage_templates
        self._template_retryable = True
        self.exported = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.failed_batches = 0
        self.retries = 0
        self.undelivered = 0
        # tamper evidence for export(); documents handed to export_documents are sent as they are
        self.integrity = sealer_for(elasticsearch_store_name(self.namespace), integrity)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def dead_letter_path(self) -> Path:
        return self.settings.dead_letter_path

    # -- SpanExporter ----------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            documents = span_documents(spans, self.namespace)
            if self.integrity:
                documents = iter(self.integrity.seal_documents(documents))
            report = self.export_documents(documents)
            if self.integrity:  # sealed but not in the store: undelivered (dropped by the SDK) or dead-lettered
                lost = [*report.undelivered, *(rejection.document for rejection in report.dead_lettered)]
                self.integrity.unstored(entries_of(_source_of(d) for d in lost if d.index.startswith("traces-")))
        except Exception:
            with self._lock:
                self.failed_batches += 1
            logger.warning("genai-audit: could not export %d span(s) to Elasticsearch", len(spans), exc_info=True)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if report.delivered else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._closed.set()
        if self.integrity:
            self.integrity.close()
        with self._lock:
            try:
                self.client.close()
            except Exception:
                logger.debug("closing the Elasticsearch client failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.integrity.checkpoint() if self.integrity else True  # nothing is buffered here

    # -- templates -------------------------------------------------------------------------

    def install_templates(self) -> None:
        """Install (or upgrade) both index templates now; raises the client's errors."""
        for name, (pattern, body) in index_templates().items():
            with suppress_instrumentation():
                try:
                    found = self.client.indices.get_index_template(name=name)
                    installed = [t for t in found.body.get("index_templates", []) if t.get("name") == name]
                except ApiError as exc:
                    if exc.meta.status != 404:
                        raise
                    installed = []
                version = installed[0].get("index_template", {}).get("version") if installed else None
                if isinstance(version, int) and version >= TEMPLATE_VERSION:
                    continue
                self.client.indices.put_index_template(
                    name=name,
                    index_patterns=[pattern],
                    data_stream={},
                    priority=TEMPLATE_PRIORITY,
                    template=body,
                    version=TEMPLATE_VERSION,
                    meta={"managed_by": "genai-audit", "description": "genai-audit audit trail (OTel-native)"},
                )
        self._templates_ready = True

    def _ensure_templates(self) -> str | None:
        """Templates in place before the first write; a retryable failure is returned as text."""
        if self._templates_ready:
            return None
        self._template_retryable = True
        try:
            self.install_templates()
        except ApiError as exc:
            status = exc.meta.status
            error_type, _reason = _error_of(exc)
            if status in _RETRYABLE_STATUS or status != 403:
                # 401 and others are not settled (credentials may start working): try again next time
                self._template_retryable = status in _RETRYABLE_STATUS
                return f"installing index templates: HTTP {status} {error_type}" + _HINTS.get(error_type, "")
            # 403: these credentials may write but not manage templates (an operator installed them)
            logger.warning(
                "genai-audit: index templates not installed on %s (HTTP %s %s%s); writing anyway",
                self.settings.describe(),
                status,
                error_type,
                _HINTS.get(error_type, ""),
            )
            self._templates_ready = True
        except TransportError as exc:
            self._template_retryable = not _is_tls(exc)
            return f"installing index templates: {transport_reason(exc)}"
        return None

    # -- delivery --------------------------------------------------------------------------

    def create_once(self, document: AuditDocument) -> bool:
        """Store one small document with a single ``create`` request and no retries; True when it is stored.

        For reports that must not hold up delivery (the pipeline's status): a failure is left to
        the caller, which sends it again later. An existing document of the same id counts as stored.
        """
        if self._closed.is_set() or self._ensure_templates() is not None:
            return False
        try:
            with suppress_instrumentation():
                self.client.create(index=document.index, id=document.id, document=_source_of(document))
        except ApiError as exc:
            return exc.meta.status == 409
        except TransportError:
            return False
        return True

    def export_documents(self, documents: Iterable[AuditDocument]) -> DeliveryReport:
        """Deliver ``documents``; the report names each one that was not delivered."""
        report = DeliveryReport()
        with self._lock:
            pending: list[_Sized] = []
            rejected: list[Rejection] = []
            for document in documents:
                try:
                    if isinstance(document.source, RawJson):
                        payload = document.source.encode("utf-8", "surrogatepass")
                    else:
                        payload = json.dumps(document.source, ensure_ascii=False, separators=(",", ":")).encode()
                except (TypeError, ValueError) as exc:
                    rejected.append(Rejection(document, 400, "serialization_error", str(exc)))
                    continue
                size = len(payload)
                if size > self.max_document_bytes:
                    rejected.append(
                        Rejection(
                            document,
                            413,
                            "document_too_large",
                            f"{size} bytes, above the limit of {self.max_document_bytes}",
                        )
                    )
                    continue
                pending.append(_Sized(document, payload))
            if self._closed.is_set():
                report.undelivered = [item.document for item in pending]
                report.last_error = "exporter is shut down"
                pending = []
            started = time.monotonic()
            while pending:
                report.attempts += 1
                current = _Round()
                template_error = self._ensure_templates()
                if template_error is not None:
                    if self._template_retryable:
                        current.retry = pending
                    else:  # credentials or certificates: not fixed by trying again now
                        current.hold = pending
                    current.error = template_error
                else:
                    for chunk in self._chunks(pending):
                        self._send(chunk, current)
                report.indexed += current.indexed
                report.duplicates += current.duplicates
                rejected.extend(current.rejected)
                report.undelivered.extend(item.document for item in current.hold)
                if current.error is not None:
                    report.last_error = current.error
                pending = current.retry
                if not pending:
                    break
                delay = self.retry.delay(report.attempts)
                out_of_time = time.monotonic() - started + delay > self.retry.max_seconds
                if report.attempts >= self.retry.max_attempts or out_of_time or self._closed.wait(delay):
                    report.undelivered.extend(item.document for item in pending)
                    break
                self.retries += 1
            self._dead_letter(rejected, report)
            self.exported += report.indexed
            self.duplicates += report.duplicates
            self.dead_lettered += len(report.dead_lettered)
            self.undelivered += len(report.undelivered)
            if report.undelivered:
                self.failed_batches += 1
        if report.undelivered:
            logger.warning(
                "genai-audit: %d document(s) not delivered to Elasticsearch at %s after %d attempt(s): %s",
                len(report.undelivered),
                self.settings.describe(),
                report.attempts,
                report.last_error,
            )
        if report.dead_lettered:
            kinds = sorted({rejection.error_type for rejection in report.dead_lettered})
            logger.warning(
                "genai-audit: %d document(s) rejected by Elasticsearch (%s); kept in %s",
                len(report.dead_lettered),
                ", ".join(kinds),
                self.dead_letter_path,
            )
        return report

    def _chunks(self, items: list[_Sized]) -> Iterator[list[_Sized]]:
        chunk: list[_Sized] = []
        size = 0
        for item in items:
            if chunk and (len(chunk) >= self.max_batch_documents or size + item.size > self.max_batch_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += item.size
        if chunk:
            yield chunk

    def _send(self, chunk: list[_Sized], into: _Round) -> None:
        try:
            with suppress_instrumentation():
                # The NDJSON body is built here from the bodies encoded once (the client forwards bytes
                # untouched), and the answer is cut to what is read below: one status (and error) per item.
                response = self.client.bulk(
                    operations=_bulk_body(chunk),  # type: ignore[arg-type]  # bytes pass through untouched
                    filter_path=BULK_FILTER_PATH,
                )
        except ApiError as exc:
            status = exc.meta.status
            error_type, reason = _error_of(exc)
            if status in _RETRYABLE_STATUS:
                into.retry.extend(chunk)
                into.error = f"HTTP {status} {error_type}"
            elif status == 413 and len(chunk) > 1:  # the request is too large: halve it until one document is
                middle = len(chunk) // 2
                self._send(chunk[:middle], into)
                self._send(chunk[middle:], into)
            elif status == 413:
                into.rejected.append(Rejection(chunk[0].document, status, error_type, reason))
            else:
                # Documents the cluster cannot take fail item by item (below); an error for the
                # whole request is about the request: credentials, permissions, headers, cluster state.
                into.hold.extend(chunk)
                into.error = f"HTTP {status} {error_type}" + _HINTS.get(error_type, "")
            return
        except TransportError as exc:  # connection refused or reset, timeout, TLS, unreadable answer
            if _is_tls(exc):  # a certificate problem does not go away by trying again
                into.hold.extend(chunk)
            else:
                into.retry.extend(chunk)
            into.error = transport_reason(exc)
            return
        items = response.body.get("items") if isinstance(response.body, dict) else None
        if not isinstance(items, list) or len(items) != len(chunk):
            into.retry.extend(chunk)
            into.error = "bulk answer without one item per document"
            return
        for item, entry in zip(chunk, items):
            result: Mapping[str, Any] = next(iter(entry.values()), {}) if isinstance(entry, dict) else {}
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                into.indexed += 1
            elif status == 409:
                into.duplicates += 1
            elif status in _RETRYABLE_STATUS or status == 0:
                into.retry.append(item)
                into.error = f"HTTP {status} {_item_error_type(result)}"
            elif status in _HOLD_STATUS:
                into.hold.append(item)
                into.error = f"HTTP {status} {_item_error_type(result)}"
            else:
                error = result.get("error")
                reason = json.dumps(error, ensure_ascii=False) if isinstance(error, dict) else str(error)
                into.rejected.append(Rejection(item.document, status, _item_error_type(result), reason))

    def _dead_letter(self, rejected: list[Rejection], report: DeliveryReport) -> None:
        """Append rejected documents to the dead-letter file; those it cannot hold count as undelivered."""
        if not rejected:
            return
        path = self.dead_letter_path
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = [
            json.dumps(
                {
                    "time": now,
                    "index": r.document.index,
                    "id": r.document.id,
                    "status": r.status,
                    "error": {"type": r.error_type, "reason": r.reason},
                    "document": _source_of(r.document),
                },
                ensure_ascii=False,
                separators=(",", ":"),
                default=str,
            )
            + "\n"
            for r in rejected
        ]
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            report.undelivered.extend(r.document for r in rejected)
            report.last_error = f"dead-letter file {path}: {exc.strerror or type(exc).__name__}"
            return
        report.dead_lettered.extend(rejected)


def _bulk_body(chunk: Sequence[_Sized]) -> bytes:
    """``{"create":{"_index":…,"_id":…}}`` and the document, one line each, for every item of ``chunk``."""
    lines: list[bytes] = []
    actions: dict[str, str] = {}  # the action line up to the id, per index (a chunk has one or two)
    for item in chunk:
        index = item.document.index
        head = actions.get(index)
        if head is None:
            head = actions[index] = '{"create":{"_index":' + _json_string(index) + ',"_id":'
        lines.append((head + _json_string(item.document.id) + "}}").encode("utf-8", "surrogatepass"))
        lines.append(item.payload)
    lines.append(b"")  # the body ends with a newline
    return b"\n".join(lines)


def _item_error_type(result: Mapping[str, Any]) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        return str(error.get("type", "error"))
    return "error" if error else "unknown"
