"""Pure functions: Anthropic Messages requests, responses and stream events -> attributes and parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import LLMCall
from genai_audit.instrumentation._parts import (
    arg,
    float_or_none,
    get,
    int_or_none,
    json_or_text,
    plain,
    server_attributes,
    str_list,
    text_part,
)

Attributes = dict[str, AttributeValue]


def _block_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        kind = get(block, "type")
        if kind == "text":
            parts.append(text_part(get(block, "text", "")))
        elif kind in ("tool_use", "server_tool_use"):
            parts.append(
                {
                    "type": "tool_call",
                    "id": get(block, "id"),
                    "name": get(block, "name"),
                    "arguments": plain(get(block, "input")),
                }
            )
        elif kind == "tool_result":
            result = get(block, "content")
            response = (
                plain(result)
                if not isinstance(result, (list, tuple))
                else [p.get("content", p) for p in _block_parts(result)]
            )
            part = {"type": "tool_call_response", "id": get(block, "tool_use_id"), "response": response}
            if get(block, "is_error"):
                part["is_error"] = True
            parts.append(part)
        elif kind in ("thinking", "redacted_thinking"):
            parts.append({"type": "reasoning", "content": get(block, "thinking", "")})
        elif kind == "image":
            source = get(block, "source")
            if get(source, "type") == "url":
                parts.append({"type": "uri", "modality": "image", "uri": get(source, "url")})
            else:
                parts.append(
                    {
                        "type": "blob",
                        "modality": "image",
                        "mime_type": get(source, "media_type"),
                        "content": get(source, "data"),
                    }
                )
        elif kind == "document":
            source = get(block, "source")
            parts.append({"type": "text", "content": plain(get(source, "data", source))})
        else:
            parts.append({"type": str(kind or "unknown"), "content": plain(block)})
    return parts


def _message(message: Any) -> dict[str, Any]:
    role = get(message, "role", "user")
    parts = _block_parts(get(message, "content"))
    if role == "user" and parts and all(p["type"] == "tool_call_response" for p in parts):
        role = "tool"
    return {"role": role, "parts": parts}


def _output_type(kwargs: Mapping[str, Any]) -> str:
    """``json`` for structured output: ``output_config.format`` (anthropic 2.x) or the older ``output_format``."""
    if arg(kwargs, "output_format") is not None:
        return "json"
    fmt = get(arg(kwargs, "output_config"), "format")
    return "json" if get(fmt, "type") in ("json_schema", "json") else "text"


def read_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Attributes, dict[str, Any]]:
    attributes: Attributes = {sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: sc.PROVIDER_ANTHROPIC}
    model = arg(kwargs, "model")
    if isinstance(model, str):
        attributes[sc.REQUEST_MODEL] = model
    attributes.update(server_attributes(get(instance, "_client")))
    attributes[sc.OUTPUT_TYPE] = _output_type(kwargs)
    attributes[sc.REQUEST_STREAM] = bool(arg(kwargs, "stream"))
    for key, name, read in (
        (sc.REQUEST_MAX_TOKENS, "max_tokens", int_or_none),
        (sc.REQUEST_TEMPERATURE, "temperature", float_or_none),
        (sc.REQUEST_TOP_P, "top_p", float_or_none),
        (sc.REQUEST_TOP_K, "top_k", float_or_none),
        (sc.REQUEST_STOP_SEQUENCES, "stop_sequences", str_list),
    ):
        value = read(arg(kwargs, name))
        if value is not None:
            attributes[key] = value
    content: dict[str, Any] = {sc.INPUT_MESSAGES: [_message(m) for m in arg(kwargs, "messages") or []]}
    system = arg(kwargs, "system")
    if system:
        content[sc.SYSTEM_INSTRUCTIONS] = _block_parts(system)
    tools = [
        {
            # a client tool: "custom" to Anthropic, a function to the conventions (as OpenAI's are)
            "type": "function" if get(t, "type", "custom") == "custom" else get(t, "type"),
            "name": get(t, "name"),
            "description": get(t, "description"),
            "parameters": plain(get(t, "input_schema")),
        }
        if get(t, "input_schema") is not None
        else plain(t)
        for t in arg(kwargs, "tools") or []
    ]
    if tools:
        content[sc.TOOL_DEFINITIONS] = tools
    return attributes, content


def read_usage(call: LLMCall, usage: Any) -> None:
    """Anthropic reports cached input apart; the convention counts all input tokens."""
    if usage is None:
        return
    base = int_or_none(get(usage, "input_tokens"))
    cache_read = int_or_none(get(usage, "cache_read_input_tokens"))
    cache_creation = int_or_none(get(usage, "cache_creation_input_tokens"))
    if base is not None:
        call.set(sc.USAGE_INPUT_TOKENS, base + (cache_read or 0) + (cache_creation or 0))
    call.set(sc.USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
    call.set(sc.USAGE_CACHE_CREATION_INPUT_TOKENS, cache_creation)
    call.set(sc.USAGE_OUTPUT_TOKENS, int_or_none(get(usage, "output_tokens")))


def read_response(call: LLMCall, message: Any) -> None:
    message_id = get(message, "id")
    call.set(sc.RESPONSE_ID, message_id if isinstance(message_id, str) else None)
    model = get(message, "model")
    call.set(sc.RESPONSE_MODEL, model if isinstance(model, str) else None)
    read_usage(call, get(message, "usage"))
    reason = get(message, "stop_reason")
    call.set(sc.RESPONSE_FINISH_REASONS, [str(reason)] if reason is not None else None)
    call.set_content(
        sc.OUTPUT_MESSAGES,
        [
            {
                "role": get(message, "role", "assistant"),
                "parts": _block_parts(get(message, "content")),
                "finish_reason": reason,
            },
        ],
    )


class StreamAccumulator:
    """Rebuilds a message from raw stream events (message_start ... message_stop)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {"role": "assistant", "content": []}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json_parts: dict[int, list[str]] = {}
        self.usage: dict[str, Any] = {}
        self.chunks = 0

    def feed(self, event: Any) -> None:
        self.chunks += 1
        kind = get(event, "type")
        if kind == "message_start":
            start = get(event, "message")
            for key in ("id", "model", "role"):
                if get(start, key) is not None:
                    self.message[key] = get(start, key)
            self._usage(get(start, "usage"))
        elif kind == "content_block_start":
            block = plain(get(event, "content_block")) or {}
            self.blocks[get(event, "index", 0)] = block
        elif kind == "content_block_delta":
            index = get(event, "index", 0)
            block = self.blocks.setdefault(index, {"type": "text", "text": ""})
            delta = get(event, "delta")
            delta_kind = get(delta, "type")
            if delta_kind == "text_delta":
                block["text"] = block.get("text", "") + (get(delta, "text") or "")
            elif delta_kind == "input_json_delta":
                self.json_parts.setdefault(index, []).append(get(delta, "partial_json") or "")
            elif delta_kind == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + (get(delta, "thinking") or "")
        elif kind == "message_delta":
            delta = get(event, "delta")
            if get(delta, "stop_reason") is not None:
                self.message["stop_reason"] = get(delta, "stop_reason")
            self._usage(get(event, "usage"))

    def _usage(self, usage: Any) -> None:
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = get(usage, key)
            if value is not None:
                self.usage[key] = value

    def build(self) -> dict[str, Any]:
        content = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if index in self.json_parts:
                block["input"] = json_or_text("".join(self.json_parts[index]))
            content.append(block)
        return {**self.message, "content": content, "usage": self.usage or None}

    def finish(self, call: LLMCall) -> None:
        call.set(sc.AUDIT_STREAM_CHUNKS, self.chunks)
        if not self.chunks:  # dropped before any event: no answer to record, not an empty one
            return
        read_response(call, self.build())


def stream_accumulator(kwargs: Mapping[str, Any], result: Any, changed: bool) -> StreamAccumulator | None:
    if not arg(kwargs, "stream"):
        return None
    return StreamAccumulator()
