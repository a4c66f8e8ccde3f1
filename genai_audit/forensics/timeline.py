"""A session as an ordered forensic timeline, built from stored documents.

The timeline is plain data (dataclasses, :meth:`Timeline.to_dict` for JSON): every call
with its request and response messages, the tool calls the model asked for together with
the results the application sent back (found in a later request), the parent/child structure
of the spans (``parent_span_id``), latency, tokens, cost, and the audit flags (personal data,
secrets, prompt injection, alerts, truncation). The renderers in
:mod:`genai_audit.forensics.render` only lay it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from genai_audit import semconv as sc
from genai_audit.forensics.model import number, parse_timestamp

_CLASS_ORDER = ("public", "internal", "confidential", "restricted")


@dataclass
class Part:
    """One message part: ``text`` for text, otherwise a kind and its JSON-able data."""

    type: str
    text: str | None = None
    data: Any = None
    name: str | None = None
    id: str | None = None


@dataclass
class Message:
    role: str
    parts: list[Part]
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        """The message on one line: text parts as they are, tool calls and results in brackets."""
        pieces: list[str] = []
        for part in self.parts:
            if part.type == "text":
                pieces.append(part.text or "")
            elif part.type == "tool_call":
                pieces.append(f"[tool call {part.name}({shown(part.data)})]")
            elif part.type == "tool_call_response":
                pieces.append(f"[tool result {shown(part.data)}]")
            elif part.text is not None:
                pieces.append(f"[{part.type}] {part.text}")
            else:
                pieces.append(f"[{part.type}]")
        return " ".join(pieces)


@dataclass
class ToolCall:
    """A tool call the model asked for, and the result sent back in a later request (if stored)."""

    id: str | None
    name: str | None
    arguments: Any
    result: Any = None
    has_result: bool = False
    result_entry: int | None = None  # the entry whose request carried the result


@dataclass
class ToolResult:
    """A tool result this request carried for the first time."""

    id: str | None
    result: Any
    call_entry: int | None = None  # the entry whose response asked for the call
    name: str | None = None


@dataclass
class ExceptionInfo:
    type: str | None
    message: str | None


@dataclass
class Flags:
    """What the audit processing found in the call."""

    pii_detected: bool = False
    pii_count: int = 0
    pii_types: list[str] = field(default_factory=list)
    pii_tokens: list[str] = field(default_factory=list)
    secrets_detected: bool = False
    injection_detected: bool = False
    injection_score: float | None = None
    injection_technique: str | None = None
    injection_source: str | None = None
    security_score: float | None = None
    classification: str | None = None
    alerts: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    processing_failed: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """Short names of what is worth a reader's attention."""
        found = []
        if self.pii_detected:
            found.append("PII")
        if self.secrets_detected:
            found.append("SECRET")
        if self.injection_detected:
            found.append("INJECTION")
        if self.truncated:
            found.append("TRUNCATED")
        if self.processing_failed:
            found.append("PROCESSING-FAILED")
        return found


@dataclass
class Entry:
    """One stored span (one model call, or a span wrapping calls) of the session."""

    index: int
    depth: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    parent_index: int | None
    children: list[int]
    timestamp: str
    start_ns: int
    offset_ms: float
    latency_ms: float
    name: str
    kind: str
    operation: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    stream: bool
    user: str | None
    feature: str | None
    request_id: str | None
    consent: str | None
    status: str
    error_type: str | None
    error_message: str | None
    exceptions: list[ExceptionInfo]
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    finish_reasons: list[str]
    system: list[Message]
    input: list[Message]
    output: list[Message]
    tool_calls: list[ToolCall]
    tool_results: list[ToolResult]
    flags: Flags

    @property
    def failed(self) -> bool:
        return self.status == "Error" or self.error_type is not None


@dataclass
class Timeline:
    """A session, in order: roots by start time, each followed by its children (depth-first)."""

    session_id: str
    source: str
    users: list[str]
    features: list[str]
    models: list[str]
    request_ids: list[str]
    start: str
    end: str
    start_ns: int
    end_ns: int
    duration_ms: float
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    pii_types: list[str]
    pii_tokens: list[str]
    injection_calls: int
    classification: str | None
    alerts: list[str]
    entries: list[Entry]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- building ------------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def shown(value: Any) -> str:
    """A tool argument or result for reading: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else _json(value)


def _string(value: Any) -> str | None:
    return None if value is None else str(value)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


def _int(value: Any) -> int | None:
    found = number(value)
    return None if found is None else int(found)


def _parse_part(raw: Any) -> Part:
    if not isinstance(raw, Mapping):
        return Part("text", text=str(raw))
    kind = str(raw.get("type", "unknown"))
    if kind == "text":
        return Part(kind, text=str(raw.get("content", "")))
    if kind == "tool_call":
        return Part(kind, data=raw.get("arguments"), name=_string(raw.get("name")), id=_string(raw.get("id")))
    if kind == "tool_call_response":
        return Part(kind, data=raw.get("response"), id=_string(raw.get("id")))
    if kind == "reasoning":
        return Part(kind, text=_string(raw.get("content")))
    if kind == "uri":
        return Part(kind, text=_string(raw.get("uri")), data={k: v for k, v in raw.items() if k != "type"})
    return Part(kind, data={k: v for k, v in raw.items() if k != "type"})


def parse_messages(value: Any) -> list[Message]:
    """A message-parts attribute (JSON text or already decoded) as messages.

    System instructions are bare parts (no role); content that is not JSON (a placeholder for
    withheld content, say) is one text message with role ``?``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [Message("?", [Part("text", text=value)])]
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return [Message("?", [Part("text", text=str(value))])]
    if value and all(isinstance(item, Mapping) and "role" not in item and "parts" not in item for item in value):
        return [Message("system", [_parse_part(item) for item in value])]
    messages = []
    for item in value:
        if not isinstance(item, Mapping):
            messages.append(Message("?", [_parse_part(item)]))
            continue
        parts = item.get("parts")
        parts_list = parts if isinstance(parts, list) else ([] if parts is None else [parts])
        reason = item.get("finish_reason")
        messages.append(
            Message(
                str(item.get("role", "?")),
                [_parse_part(part) for part in parts_list],
                None if reason is None else str(reason),
            )
        )
    return messages


def _flags(attributes: Mapping[str, Any]) -> Flags:
    return Flags(
        pii_detected=bool(attributes.get(sc.AUDIT_PII_DETECTED)),
        pii_count=_int(attributes.get(sc.AUDIT_PII_COUNT)) or 0,
        pii_types=_strings(attributes.get(sc.AUDIT_PII_TYPES)),
        pii_tokens=_strings(attributes.get(sc.AUDIT_PII_TOKENS)),
        secrets_detected=bool(attributes.get(sc.AUDIT_SECRETS_DETECTED)),
        injection_detected=bool(attributes.get(sc.AUDIT_INJECTION_DETECTED)),
        injection_score=number(attributes.get(sc.AUDIT_INJECTION_SCORE)),
        injection_technique=_string(attributes.get(sc.AUDIT_INJECTION_TECHNIQUE)),
        injection_source=_string(attributes.get(sc.AUDIT_INJECTION_SOURCE)),
        security_score=number(attributes.get(sc.AUDIT_SECURITY_SCORE)),
        classification=_string(attributes.get(sc.AUDIT_CLASSIFICATION)),
        alerts=_strings(attributes.get(sc.AUDIT_ALERTS)),
        truncated=_strings(attributes.get(sc.AUDIT_TRUNCATED)),
        processing_failed=_strings(attributes.get(sc.AUDIT_PROCESSING_FAILED)),
    )


def _order(docs: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int, int | None]]:
    """(document, depth, position of the parent) in depth-first order, siblings by start time."""
    position = {doc["span_id"]: i for i, doc in enumerate(docs)}
    children: dict[int | None, list[int]] = {}
    for i, doc in enumerate(docs):
        parent = doc.get("parent_span_id")
        parent_position = position.get(parent) if parent else None
        if parent_position == i:
            parent_position = None
        children.setdefault(parent_position, []).append(i)
    ordered: list[tuple[Mapping[str, Any], int, int | None]] = []
    seen: set[int] = set()

    def visit(i: int, depth: int, parent: int | None) -> None:
        if i in seen:
            return
        seen.add(i)
        ordered.append((docs[i], depth, parent))
        for child in children.get(i, []):
            visit(child, depth + 1, i)

    for root in children.get(None, []):
        visit(root, 0, None)
    for i in range(len(docs)):  # spans in a parent cycle (malformed data) still appear
        visit(i, 0, None)
    return ordered


def build_timeline(
    docs: Iterable[Mapping[str, Any]],
    events: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None = None,
    *,
    source: str = "",
) -> Timeline:
    """The timeline of one session from its documents (in start-time order) and their events."""
    docs = list(docs)
    if not docs:
        raise ValueError("a timeline needs at least one document")
    events = events or {}
    ordered = _order(docs)
    index_of_position: dict[int, int] = {}
    position_of_doc = {id(doc): i for i, doc in enumerate(docs)}
    starts = [parse_timestamp(str(doc["@timestamp"])) for doc in docs]
    session_start = min(starts)
    entries: list[Entry] = []
    for number_, (doc, depth, parent_position) in enumerate(ordered, 1):
        position = position_of_doc[id(doc)]
        index_of_position[position] = number_
        entries.append(
            _entry(
                doc,
                index=number_,
                depth=depth,
                parent_index=None if parent_position is None else index_of_position.get(parent_position),
                start_ns=starts[position],
                session_start=session_start,
                events=events.get((str(doc["trace_id"]), str(doc["span_id"])), ()),
            )
        )
    for entry in entries:
        if entry.parent_index is not None:
            entries[entry.parent_index - 1].children.append(entry.index)
    _link_tools(entries)
    return _summary(entries, docs, starts, source)


def _entry(
    doc: Mapping[str, Any],
    *,
    index: int,
    depth: int,
    parent_index: int | None,
    start_ns: int,
    session_start: int,
    events: Iterable[Mapping[str, Any]],
) -> Entry:
    a: Mapping[str, Any] = doc.get("attributes") or {}
    status: Mapping[str, Any] = doc.get("status") or {}
    duration = int(doc.get("duration") or 0)
    exceptions = [
        ExceptionInfo(
            _string((event.get("attributes") or {}).get("exception.type")),
            _string((event.get("attributes") or {}).get("exception.message")),
        )
        for event in events
        if event.get("event_name") == "exception"
    ]
    output = parse_messages(a.get(sc.OUTPUT_MESSAGES))
    tool_calls = [
        ToolCall(part.id, part.name, part.data)
        for message in output
        for part in message.parts
        if part.type == "tool_call"
    ]
    return Entry(
        index=index,
        depth=depth,
        trace_id=str(doc["trace_id"]),
        span_id=str(doc["span_id"]),
        parent_span_id=_string(doc.get("parent_span_id")),
        parent_index=parent_index,
        children=[],
        timestamp=str(doc["@timestamp"]),
        start_ns=start_ns,
        offset_ms=round((start_ns - session_start) / 1e6, 3),
        latency_ms=round(duration / 1e6, 3),
        name=str(doc.get("name", "")),
        kind=str(doc.get("kind", "")),
        operation=_string(a.get(sc.OPERATION_NAME)),
        provider=_string(a.get(sc.PROVIDER_NAME)),
        request_model=_string(a.get(sc.REQUEST_MODEL)),
        response_model=_string(a.get(sc.RESPONSE_MODEL)),
        stream=bool(a.get(sc.REQUEST_STREAM)),
        user=_string(a.get(sc.ENDUSER_ID)),
        feature=_string(a.get(sc.AUDIT_FEATURE)),
        request_id=_string(a.get(sc.AUDIT_REQUEST_ID)),
        consent=_string(a.get(sc.AUDIT_CONSENT)),
        status=str(status.get("code", "Unset")),
        error_type=_string(a.get(sc.ERROR_TYPE)),
        error_message=_string(status.get("message")),
        exceptions=exceptions,
        input_tokens=_int(a.get(sc.USAGE_INPUT_TOKENS)),
        output_tokens=_int(a.get(sc.USAGE_OUTPUT_TOKENS)),
        cost_usd=number(a.get(sc.USAGE_COST_USD)),
        finish_reasons=_strings(a.get(sc.RESPONSE_FINISH_REASONS)),
        system=parse_messages(a.get(sc.SYSTEM_INSTRUCTIONS)),
        input=parse_messages(a.get(sc.INPUT_MESSAGES)),
        output=output,
        tool_calls=tool_calls,
        tool_results=[],
        flags=_flags(a),
    )


def _link_tools(entries: list[Entry]) -> None:
    """Pair each tool call with the first later request that carried its result.

    Every request repeats the conversation so far, so a result shows up again in each later
    request; only its first appearance is listed (as that entry's new tool result).
    """
    open_calls: dict[str, tuple[Entry, ToolCall]] = {}
    seen_results: set[str] = set()
    for entry in sorted(entries, key=lambda e: (e.start_ns, e.index)):
        for message in entry.input:
            for part in message.parts:
                if part.type != "tool_call_response":
                    continue
                key = part.id if part.id is not None else _json(part.data)
                if key in seen_results:
                    continue
                seen_results.add(key)
                result = ToolResult(part.id, part.data)
                called = open_calls.pop(part.id, None) if part.id is not None else None
                if called is not None:
                    call_entry, call = called
                    call.result, call.has_result, call.result_entry = part.data, True, entry.index
                    result.call_entry, result.name = call_entry.index, call.name
                entry.tool_results.append(result)
        for call in entry.tool_calls:
            if call.id is not None:
                open_calls[call.id] = (entry, call)


def _summary(entries: list[Entry], docs: list[Mapping[str, Any]], starts: list[int], source: str) -> Timeline:
    ends = [start + int(doc.get("duration") or 0) for start, doc in zip(starts, docs)]
    start_ns, end_ns = min(starts), max(ends)

    def distinct(values: Iterable[str | None]) -> list[str]:
        return sorted({value for value in values if value})

    classes = [e.flags.classification for e in entries if e.flags.classification in _CLASS_ORDER]
    from genai_audit.serialize import timestamp

    first_session = next((str(d["attributes"].get(sc.SESSION_ID)) for d in docs if d.get("attributes")), "")
    return Timeline(
        session_id=first_session,
        source=source,
        users=distinct(e.user for e in entries),
        features=distinct(e.feature for e in entries),
        models=distinct(e.request_model for e in entries),
        request_ids=distinct(e.request_id for e in entries),
        start=timestamp(start_ns),
        end=timestamp(end_ns),
        start_ns=start_ns,
        end_ns=end_ns,
        duration_ms=round((end_ns - start_ns) / 1e6, 3),
        calls=len(entries),
        errors=sum(1 for e in entries if e.failed),
        input_tokens=sum(e.input_tokens or 0 for e in entries),
        output_tokens=sum(e.output_tokens or 0 for e in entries),
        cost_usd=round(sum(e.cost_usd or 0.0 for e in entries), 10),
        pii_types=distinct(t for e in entries for t in e.flags.pii_types),
        pii_tokens=distinct(t for e in entries for t in e.flags.pii_tokens),
        injection_calls=sum(1 for e in entries if e.flags.injection_detected),
        classification=max(classes, key=_CLASS_ORDER.index) if classes else None,
        alerts=distinct(a for e in entries for a in e.flags.alerts),
        entries=entries,
    )
