"""Prompts flagged as injection, exported as a replayable red-team set (JSON lines).

One line per flagged call, format ``genai-audit.redteam/1``::

    {"format": "genai-audit.redteam/1", "id": "<trace_id>:<span_id>", "time": "<RFC 3339>",
     "model": "gpt-4o", "provider": "openai", "feature": "support-chat",
     "technique": "instruction_override", "score": 0.99, "source": "user",
     "system": [{"type": "text", "content": "..."}] | null,
     "input_messages": [{"role": "user", "parts": [{"type": "text", "content": "..."}]}, ...],
     "user_text": "the last user message's text parts, joined" | null}

``system`` and ``input_messages`` are the GenAI semantic-convention message-parts JSON exactly
as stored, i.e. already redacted (personal data appears as pseudonym tokens). Content that was
not captured, or was truncated past valid JSON, is kept as the stored string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from genai_audit import semconv as sc
from genai_audit.forensics.anomalies import record_id

FORMAT: Final = "genai-audit.redteam/1"


def _content(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _user_text(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            parts = message.get("parts") or []
            texts = [
                str(part.get("content"))
                for part in parts
                if isinstance(part, Mapping) and part.get("type") == "text" and part.get("content") is not None
            ]
            return "\n".join(texts) if texts else None
    return None


def case(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The red-team case of one flagged call."""
    attributes = doc.get("attributes") or {}
    messages = _content(attributes.get(sc.INPUT_MESSAGES))
    return {
        "format": FORMAT,
        "id": record_id(doc),
        "time": doc.get("@timestamp"),
        "model": attributes.get(sc.REQUEST_MODEL),
        "provider": attributes.get(sc.PROVIDER_NAME),
        "feature": attributes.get(sc.AUDIT_FEATURE),
        "technique": attributes.get(sc.AUDIT_INJECTION_TECHNIQUE),
        "score": attributes.get(sc.AUDIT_INJECTION_SCORE),
        "source": attributes.get(sc.AUDIT_INJECTION_SOURCE),
        "system": _content(attributes.get(sc.SYSTEM_INSTRUCTIONS)),
        "input_messages": messages,
        "user_text": _user_text(messages),
    }


def redteam_cases(docs: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """The cases of the flagged calls among ``docs``, in their order."""
    for doc in docs:
        if (doc.get("attributes") or {}).get(sc.AUDIT_INJECTION_DETECTED) is True:
            yield case(doc)
