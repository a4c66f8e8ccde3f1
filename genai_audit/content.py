"""Turning structured content into span attributes, with visible truncation.

Content over the size limit is cut *inside* the structure (each string part
keeps a share of the budget) so the attribute stays valid JSON; the span then
names what was cut, the original length and the SHA-256 of the full text, so
an investigator can prove which text it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue

from genai_audit import semconv as sc

#: short names used in the bookkeeping attributes
SHORT_NAMES = {
    sc.INPUT_MESSAGES: "input_messages",
    sc.OUTPUT_MESSAGES: "output_messages",
    sc.SYSTEM_INSTRUCTIONS: "system_instructions",
    sc.TOOL_DEFINITIONS: "tool_definitions",
}


def _make_encoder() -> Callable[[Any, int], Sequence[str]] | None:
    """The C JSON encoder with ``to_json``'s options, made once (None where it is not available).

    It keeps no state between calls (no circular-reference markers: content is a
    tree, and a cycle still fails, with ``RecursionError``), so one serves all threads.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    encode_str = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or encode_str is None:
        return None
    sample = {"a": [1, 2.5, None, True, "é\n\u2028"], "b": {"c": "x"}}
    try:
        encoder: Callable[[Any, int], Sequence[str]] = make(None, str, encode_str, None, ":", ",", False, False, True)
        if "".join(encoder(sample, 0)) != json.dumps(sample, ensure_ascii=False, separators=(",", ":")):
            return None
    except Exception:  # noqa: BLE001 - an interpreter whose encoder differs uses json.dumps
        return None
    return encoder


_ENCODER = _make_encoder()

def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept, unknown objects as ``str()``: ``json.dumps`` with those options."""
    if _ENCODER is not None:
        return "".join(_ENCODER(value, 0))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _cut(value: Any, budget: list[int]) -> Any:
    """Copy of ``value`` whose strings together hold at most ``budget[0]`` characters."""
    if isinstance(value, str):
        keep = max(0, min(len(value), budget[0]))
        budget[0] -= keep
        return value if keep == len(value) else value[:keep] + "…"
    if isinstance(value, dict):
        return {key: _cut(item, budget) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut(item, budget) for item in value]
    return value


def content_attributes(content: dict[str, Any], max_chars: int) -> dict[str, AttributeValue]:
    """Span attributes for processed content; truncation is recorded, never silent."""
    attributes: dict[str, AttributeValue] = {}
    truncated: list[str] = []
    for key, value in content.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else to_json(value)
        if len(text) > max_chars:
            short = SHORT_NAMES.get(key, key)
            truncated.append(key)
            attributes[sc.AUDIT_ORIGINAL_LENGTH_PREFIX + short] = len(text)
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            attributes[sc.AUDIT_SHA256_PREFIX + short] = digest
            if isinstance(value, str):
                text = value[:max_chars] + "…"
            else:
                # JSON punctuation takes room too; shrink the string budget until it fits.
                budget = max_chars
                while True:
                    text = to_json(_cut(value, [budget]))
                    if len(text) <= max_chars + 1 or budget == 0:
                        break
                    budget = max(0, budget - (len(text) - max_chars) - 16)
        attributes[key] = text
    if truncated:
        attributes[sc.AUDIT_TRUNCATED] = truncated
    return attributes
