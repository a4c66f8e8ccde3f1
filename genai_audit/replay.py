"""A readable forensic timeline of one session, from stored documents."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from genai_audit import semconv as sc


def _excerpt(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"


def _parts_text(messages: Any) -> list[tuple[str, str]]:
    """(role, one-line text) per message of a message-parts attribute."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except ValueError:
            return [("?", messages)]
    if isinstance(messages, list) and messages and all(isinstance(m, dict) and "role" not in m for m in messages):
        messages = [{"role": "system", "parts": messages}]  # system instructions are bare parts
    lines = []
    for message in messages or []:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "?"))
        pieces = []
        for part in message.get("parts", []):
            kind = part.get("type")
            if kind == "text":
                pieces.append(str(part.get("content", "")))
            elif kind == "tool_call":
                arguments = json.dumps(part.get("arguments"), ensure_ascii=False)
                pieces.append(f"[tool call {part.get('name')}({arguments})]")
            elif kind == "tool_call_response":
                pieces.append(f"[tool result {json.dumps(part.get('response'), ensure_ascii=False)}]")
            else:
                pieces.append(f"[{kind}]")
        lines.append((role, " ".join(pieces)))
    return lines


def render_timeline(docs: Iterable[dict[str, Any]], *, excerpt: int = 200) -> str:
    docs = list(docs)
    out: list[str] = []
    first = docs[0]["attributes"]
    users = sorted({str(d["attributes"].get(sc.ENDUSER_ID)) for d in docs if d["attributes"].get(sc.ENDUSER_ID)})
    out.append(f"session {first.get(sc.SESSION_ID)}  user(s) {', '.join(users) or '-'}  calls {len(docs)}")
    total_in = total_out = 0
    for index, doc in enumerate(docs, 1):
        a = doc["attributes"]
        when = doc["@timestamp"][:23].replace("T", " ")
        latency_ms = doc["duration"] / 1e6
        tokens_in, tokens_out = a.get(sc.USAGE_INPUT_TOKENS), a.get(sc.USAGE_OUTPUT_TOKENS)
        total_in += tokens_in if isinstance(tokens_in, int) else 0
        total_out += tokens_out if isinstance(tokens_out, int) else 0
        stream = " stream" if a.get(sc.REQUEST_STREAM) else ""
        out.append("")
        out.append(
            f"#{index} {when} UTC  {a.get(sc.PROVIDER_NAME)} {doc['name']}{stream}  "
            f"{latency_ms:.0f} ms  tokens in={tokens_in if tokens_in is not None else '-'} "
            f"out={tokens_out if tokens_out is not None else '-'}"
        )
        context = [f"{label}={a[key]}" for label, key in (
            ("user", sc.ENDUSER_ID), ("feature", sc.AUDIT_FEATURE), ("request", sc.AUDIT_REQUEST_ID),
            ("consent", sc.AUDIT_CONSENT), ("class", sc.AUDIT_CLASSIFICATION),
        ) if key in a]
        if context:
            out.append("   " + "  ".join(context))
        out.append(f"   trace {doc['trace_id']} span {doc['span_id']}")
        for _role, text in _parts_text(a.get(sc.SYSTEM_INSTRUCTIONS)):
            out.append(f"   system> {_excerpt(text, excerpt)}")
        for role, text in _parts_text(a.get(sc.INPUT_MESSAGES)):
            out.append(f"   {role}> {_excerpt(text, excerpt)}")
        if doc["status"]["code"] == "Error":
            out.append(f"   ERROR {a.get(sc.ERROR_TYPE)}: {_excerpt(doc['status'].get('message', ''), excerpt)}")
        for role, text in _parts_text(a.get(sc.OUTPUT_MESSAGES)):
            reasons = a.get(sc.RESPONSE_FINISH_REASONS)
            suffix = f"  (finish: {', '.join(reasons)})" if isinstance(reasons, list) and reasons else ""
            out.append(f"   {role}< {_excerpt(text, excerpt)}{suffix}")
        if a.get(sc.AUDIT_TRUNCATED):
            out.append(f"   note: content truncated: {', '.join(a[sc.AUDIT_TRUNCATED])}")
    out.append("")
    out.append(f"total tokens in={total_in} out={total_out}")
    return "\n".join(out) + "\n"
