"""Redacting spans and log records produced by *other* instrumentations.

An ended span is read-only, so :class:`AuditSpanProcessor` builds a redacted
copy of every span and hands the copy to the processor it wraps::

    provider.add_span_processor(AuditSpanProcessor(BatchSpanProcessor(exporter)))

It covers span names, attributes (OpenLLMetry's ``gen_ai.prompt.N.content``,
OpenInference's ``llm.input_messages.N.message.content`` / ``input.value``,
the official packages' ``gen_ai.input.messages``, OpenLIT's, anyone's),
status messages, and event attributes including exception messages and stack
traces. LLM spans get the whole chain (classification, injection score, cost,
alerts); other spans are redacted only. Spans our own instrumentation made
have been through the chain already and pass unchanged.

Failure is closed: a failing step withholds content (see the chain); if
building the copy itself fails, a copy with every string replaced is sent,
and if even that fails the span is dropped and counted in :attr:`dropped`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from genai_audit import semconv as sc
from genai_audit.processors.chain import WITHHELD, AuditRecord, ProcessingChain

logger = logging.getLogger("genai_audit.processors")

_OUR_SCOPE = "genai_audit."
#: Attribute values that name things rather than carry content; never rewritten.
STRUCTURAL_KEYS = frozenset(
    {
        sc.OPERATION_NAME,
        sc.PROVIDER_NAME,
        "gen_ai.system",
        sc.REQUEST_MODEL,
        sc.RESPONSE_MODEL,
        sc.RESPONSE_ID,
        "server.address",
        "enduser.id",
        "session.id",
        "deployment.environment.name",
        "gen_ai.conversation.id",
        "exception.type",
        "error.type",
        "http.request.method",
        "llm.model_name",
        "llm.provider",
        "llm.system",
        "openinference.span.kind",
        "gen_ai.openai.api_base",
    }
)
_JSON_KEYS = frozenset(
    {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions"}
)
_LLM_PREFIXES = ("gen_ai.", "llm.", "traceloop.")
_NAME_KEY = "\x00span.name"
_STATUS_KEY = "\x00status.description"
_EVENT_KEY = "\x00event.{index}.{key}"
_EVENT_NAME = "\x00name"


def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    return any(key.startswith(_LLM_PREFIXES) or key in ("input.value", "output.value") for key in attributes)


def is_ours(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return (
        scope is not None
        and scope.name.startswith(_OUR_SCOPE)
        and span.attributes is not None
        and sc.AUDIT_CONTENT_CAPTURED in span.attributes
    )


def _split(attributes: Mapping[str, AttributeValue]) -> tuple[dict[str, AttributeValue], dict[str, Any]]:
    """Attributes that stay as they are, and content (strings) the chain processes."""
    plain: dict[str, AttributeValue] = {}
    content: dict[str, Any] = {}
    for key, value in attributes.items():
        if key in STRUCTURAL_KEYS or key.startswith("gen_ai.audit."):
            plain[key] = value
        elif isinstance(value, str):
            if key in _JSON_KEYS:
                try:
                    content[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            content[key] = value
        elif isinstance(value, (list, tuple)) and any(isinstance(v, str) or _long_number(v) for v in value):
            content[key] = list(value)
        elif _long_number(value):  # a card or phone number recorded as a number
            content[key] = value
        else:
            plain[key] = value
    return plain, content


def _long_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000


def _as_attribute(value: Any) -> AttributeValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return value
    return json.dumps(value, ensure_ascii=False)


class AuditSpanProcessor(SpanProcessor):
    """Runs the processing chain over each span and forwards a redacted copy to ``next_processor``."""

    def __init__(
        self,
        next_processor: SpanProcessor,
        chain: ProcessingChain | None = None,
        redaction_chain: ProcessingChain | None = None,
    ) -> None:
        if chain is None:
            from genai_audit.processors.pipeline import build_chain, build_redaction_chain, build_redactor
            from genai_audit.processors.policy import load_policy

            policy = load_policy()
            redactor = build_redactor(policy) if policy.redaction else None
            chain = build_chain(policy, redactor=redactor)
            redaction_chain = redaction_chain or build_redaction_chain(policy, redactor=redactor)
        self.next = next_processor
        self.chain = chain
        self.redaction_chain = redaction_chain or chain
        self._lock = threading.Lock()
        self.dropped = 0
        self.withheld = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.next.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if is_ours(span):
            self.next.on_end(span)
            return
        try:
            copy = self._redacted_copy(span)
        except Exception:
            logger.warning("genai-audit: could not redact span %r; forwarding it withheld", span.name, exc_info=True)
            with self._lock:
                self.withheld += 1
            try:
                copy = self._withheld_copy(span)
            except Exception:
                logger.error("genai-audit: span dropped: it could not be redacted", exc_info=True)
                with self._lock:
                    self.dropped += 1
                return
        self.next.on_end(copy)

    def _redacted_copy(self, span: ReadableSpan) -> ReadableSpan:
        attributes = dict(span.attributes or {})
        plain, content = _split(attributes)
        content[_NAME_KEY] = span.name
        if span.status.description:
            content[_STATUS_KEY] = span.status.description
        events: list[tuple[str, int, dict[str, AttributeValue]]] = []
        for index, event in enumerate(span.events):
            ev_plain, ev_content = _split(dict(event.attributes or {}))
            for key, value in ev_content.items():
                content[_EVENT_KEY.format(index=index, key=key)] = value
            content[_EVENT_KEY.format(index=index, key=_EVENT_NAME)] = event.name
            events.append((event.name, event.timestamp, ev_plain))
        record = AuditRecord(attributes=plain, content=content)
        span_context = span.context
        if span_context is not None and span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        chain = self.chain if is_llm_span(attributes) else self.redaction_chain
        chain(record)
        if record.failures:
            plain[sc.AUDIT_PROCESSING_FAILED] = record.failures
        name = record.content.pop(_NAME_KEY, span.name)
        description = record.content.pop(_STATUS_KEY, None)
        for key in list(record.content):
            if key.startswith("\x00event."):
                index_text, _, event_key = key[len("\x00event.") :].partition(".")
                value = record.content.pop(key)
                number = int(index_text)
                if event_key == _EVENT_NAME:
                    events[number] = (str(value), events[number][1], events[number][2])
                else:
                    events[number][2][event_key] = _as_attribute(value)
        for key, value in record.content.items():
            plain[key] = _as_attribute(value)
        status = span.status
        if description is not None:
            status = Status(status.status_code, str(description))
        return self._copy(span, str(name), plain, [Event(n, a, t) for n, t, a in events], status)

    def _withheld_copy(self, span: ReadableSpan) -> ReadableSpan:
        attributes: dict[str, AttributeValue] = {}
        for key, value in (span.attributes or {}).items():
            if key in STRUCTURAL_KEYS or not isinstance(value, (str, list, tuple)):
                attributes[key] = value
            else:
                attributes[key] = WITHHELD
        attributes[sc.AUDIT_PROCESSING_FAILED] = ["span copy"]
        return self._copy(span, WITHHELD, attributes, [], Status(span.status.status_code))

    @staticmethod
    def _copy(
        span: ReadableSpan, name: str, attributes: dict[str, AttributeValue], events: Sequence[Event], status: Status
    ) -> ReadableSpan:
        return ReadableSpan(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self.next.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.next.force_flush(timeout_millis)


class AuditLogRecordProcessor:
    """Redacts log records (GenAI events carry prompts in body and attributes) before the next processor.

    Log records are mutable until exported, so this one edits in place. Works
    with the SDK's ``LogRecordProcessor`` interface of any recent version
    (``on_emit`` receives the record, or a wrapper holding it as ``log_record``).
    """

    def __init__(self, next_processor: Any, chain: ProcessingChain | None = None) -> None:
        if chain is None:
            from genai_audit.processors.pipeline import build_redaction_chain

            chain = build_redaction_chain()
        self.next = next_processor
        self.chain = chain
        self.dropped = 0

    def _redact(self, data: Any) -> None:
        inner = getattr(data, "log_record", data)
        attributes = dict(getattr(inner, "attributes", None) or {})
        plain, content = _split(attributes)
        body = getattr(inner, "body", None)
        if body is not None:
            content[_NAME_KEY] = body
        record = AuditRecord(attributes=plain, content=content)
        trace_id, span_id = getattr(inner, "trace_id", None), getattr(inner, "span_id", None)
        if isinstance(trace_id, int) and trace_id and isinstance(span_id, int) and span_id:
            record.trace_id, record.span_id = format(trace_id, "032x"), format(span_id, "016x")
        self.chain(record)
        if _NAME_KEY in record.content:
            inner.body = record.content.pop(_NAME_KEY)
        for key, value in record.content.items():
            plain[key] = _as_attribute(value)
        if record.failures:
            plain[sc.AUDIT_PROCESSING_FAILED] = record.failures
        inner.attributes = plain

    def on_emit(self, data: Any) -> None:
        try:
            self._redact(data)
        except Exception:
            logger.error("genai-audit: log record dropped: it could not be redacted", exc_info=True)
            self.dropped += 1
            return
        self.next.on_emit(data)

    def emit(self, data: Any) -> None:  # older SDK name
        self.on_emit(data)

    def shutdown(self) -> None:
        self.next.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.next.force_flush(timeout_millis))
