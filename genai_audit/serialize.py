"""One serializer: a finished span -> the OTel-native document every store writes.

The shape is the one the OpenTelemetry Collector's Elasticsearch exporter
writes in ``otel`` mode (one document per span in ``traces-*.otel-*``):
``@timestamp`` (span start), ``trace_id``, ``span_id``, ``parent_span_id``,
``name``, ``kind``, ``duration`` in nanoseconds, ``status.code``/``message``,
``attributes`` with their dotted keys kept flat, ``resource.attributes``,
``scope`` and ``links``. Span events become documents of their own
(:func:`event_documents`), as they do in ``logs-*`` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

DATASET = "genai_audit.otel"
NAMESPACE = "default"

_KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
_STATUS = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


#: (second, its formatted date and time) of the latest call: spans come in runs within one second
_last_second: tuple[int, str] = (-1, "")


def timestamp(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, as Elasticsearch's ``date_nanos`` accepts."""
    global _last_second
    seconds, nanos = divmod(ns, 1_000_000_000)
    cached_second, base = _last_second  # one tuple, read and replaced whole: safe across threads
    if cached_second != seconds:
        base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, base)
    return f"{base}.{nanos:09d}Z"


def valid_text(value: str) -> str:
    """The string as valid Unicode: lone surrogates (undecodable input) become U+FFFD, the rest stays.

    Each replaced surrogate stays one character, so offsets into the text remain valid.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _plain(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The dict behind the SDK's attribute containers, so that copying it is one C-level step.

    ``ReadableSpan.attributes`` is a read-only proxy around a ``BoundedAttributes``, which
    is a ``Mapping`` implemented in Python: iterating it costs two Python calls per
    attribute (``__iter__`` and ``__getitem__``), most of the time of turning a span into
    a document. Copying the plain dict is one step, atomic under the interpreter lock,
    so even the container of a span still being written to is read consistently.
    Anything else is used as given.
    """
    inner = getattr(attributes, "_dict", None)
    return dict(inner) if type(inner) is dict else attributes


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, (tuple, list)):
        return [valid_text(v) if isinstance(v, str) else v for v in value]
    return value


#: attribute value types stored as they are
_SCALARS = frozenset({bool, int, float})


def _attrs(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes as stored: sequences as lists, text always encodable, so no store refuses a record."""
    if not attributes:
        return {}
    copied: dict[str, Any] = {}
    # The common types first, without helper calls: ASCII text (nearly all of it) is checked by
    # ``isascii`` alone; anything else takes the general path of :func:`_value`.
    for key, value in _plain(attributes).items():
        kind = value.__class__
        if kind is str:
            if not value.isascii():
                value = valid_text(value)
        elif kind is tuple:
            value = [valid_text(v) if isinstance(v, str) and not v.isascii() else v for v in value]
        elif kind not in _SCALARS:
            value = _value(value)
        copied[key if key.isascii() else valid_text(key)] = value
    return copied


def _span_attributes(span: ReadableSpan) -> Mapping[str, Any] | None:
    """The span's own attribute container when the SDK keeps one (see :func:`_plain`), else the public view."""
    own = getattr(span, "_attributes", None)
    return own if isinstance(own, Mapping) else span.attributes


def _hex_trace(value: int) -> str:
    return format(value, "032x")


def _hex_span(value: int) -> str:
    return format(value, "016x")


def span_document(span: ReadableSpan, *, dataset: str = DATASET, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The stored document for one finished span."""
    context = span.context
    if context is None:
        raise ValueError("span has no context")
    start = span.start_time or 0
    end = span.end_time or start
    doc: dict[str, Any] = {
        "@timestamp": timestamp(start),
        "data_stream": {"type": "traces", "dataset": dataset, "namespace": namespace},
        "trace_id": _hex_trace(context.trace_id),
        "span_id": _hex_span(context.span_id),
    }
    if span.parent is not None and span.parent.span_id:
        doc["parent_span_id"] = _hex_span(span.parent.span_id)
    doc["name"] = valid_text(span.name)
    doc["kind"] = _KINDS.get(span.kind, "Unspecified")
    doc["duration"] = max(0, end - start)
    status: dict[str, Any] = {"code": _STATUS.get(span.status.status_code, "Unset")}
    if span.status.description:
        status["message"] = valid_text(span.status.description)
    doc["status"] = status
    doc["attributes"] = _attrs(_span_attributes(span))
    doc["resource"] = {"attributes": _attrs(span.resource.attributes if span.resource else None)}
    scope = span.instrumentation_scope
    if scope is not None:
        doc["scope"] = {"name": scope.name, "version": scope.version or "", "attributes": _attrs(
            getattr(scope, "attributes", None))}
    if span.links:
        doc["links"] = [
            {"trace_id": _hex_trace(link.context.trace_id), "span_id": _hex_span(link.context.span_id),
             "attributes": _attrs(link.attributes)}
            for link in span.links
        ]
    return doc


def event_documents(span: ReadableSpan, *, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """One log-shaped document per span event (exceptions, GenAI events)."""
    context = span.context
    if context is None or not span.events:
        return []
    return [
        {
            "@timestamp": timestamp(event.timestamp),
            "data_stream": {"type": "logs", "dataset": DATASET, "namespace": namespace},
            "trace_id": _hex_trace(context.trace_id),
            "span_id": _hex_span(context.span_id),
            "event_name": event.name,
            "attributes": _attrs(event.attributes),
            "resource": {"attributes": _attrs(span.resource.attributes if span.resource else None)},
        }
        for event in span.events
    ]
