"""Pure functions: OpenAI requests and responses -> span attributes and message parts."""

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


def _base(operation: str, instance: Any, model: Any) -> Attributes:
    attributes: Attributes = {sc.OPERATION_NAME: operation, sc.PROVIDER_NAME: sc.PROVIDER_OPENAI}
    if isinstance(model, str):
        attributes[sc.REQUEST_MODEL] = model
    attributes.update(server_attributes(get(instance, "_client")))
    return attributes


def _put(attributes: Attributes, key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value


# --- chat completions -----------------------------------------------------------------
def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for item in content if isinstance(content, (list, tuple)) else [content]:
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(get(item, "text", "")))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": get(item, "refusal", "")})
        elif kind in ("image_url", "input_image"):
            image = get(item, "image_url")
            url = get(image, "url") if not isinstance(image, str) else image
            parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind in ("input_audio", "input_file", "file"):
            parts.append({"type": "blob", "modality": kind, "content": plain(item)})
        else:
            parts.append({"type": str(kind or "unknown"), "content": plain(item)})
    return parts


def _tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls or []:
        function = get(call, "function")
        parts.append({
            "type": "tool_call",
            "id": get(call, "id"),
            "name": get(function, "name"),
            "arguments": json_or_text(get(function, "arguments")),
        })
    return parts


def chat_message(message: Any) -> dict[str, Any]:
    role = get(message, "role", "user")
    if role in ("tool", "function"):
        return {
            "role": "tool",
            "parts": [{
                "type": "tool_call_response",
                "id": get(message, "tool_call_id") or get(message, "name"),
                "response": plain(get(message, "content")),
            }],
        }
    parts = _content_parts(get(message, "content"))
    parts.extend(_tool_call_parts(get(message, "tool_calls")))
    function_call = get(message, "function_call")
    if function_call is not None:
        parts.append({
            "type": "tool_call",
            "name": get(function_call, "name"),
            "arguments": json_or_text(get(function_call, "arguments")),
        })
    refusal = get(message, "refusal")
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    out: dict[str, Any] = {"role": role, "parts": parts}
    name = get(message, "name")
    if isinstance(name, str):
        out["name"] = name
    return out


def tool_definitions(tools: Any, functions: Any = None) -> list[dict[str, Any]]:
    definitions = []
    for tool in tools or []:
        function = get(tool, "function")
        if function is not None:
            definitions.append({
                "type": get(tool, "type", "function"),
                "name": get(function, "name"),
                "description": get(function, "description"),
                "parameters": plain(get(function, "parameters")),
            })
        else:
            definitions.append(plain(tool))
    for function in functions or []:
        definitions.append({
            "type": "function",
            "name": get(function, "name"),
            "description": get(function, "description"),
            "parameters": plain(get(function, "parameters")),
        })
    return definitions


def _output_type(response_format: Any) -> str:
    kind = get(response_format, "type")
    if kind in ("json_object", "json_schema") or isinstance(response_format, type):
        return "json"
    return "text"


def read_chat_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Attributes, dict[str, Any]]:
    attributes = _base(sc.OP_CHAT, instance, arg(kwargs, "model"))
    _put(attributes, sc.OUTPUT_TYPE, _output_type(arg(kwargs, "response_format")))
    n = int_or_none(arg(kwargs, "n"))
    if n is not None and n != 1:
        attributes[sc.REQUEST_CHOICE_COUNT] = n
    _put(attributes, sc.REQUEST_SEED, int_or_none(arg(kwargs, "seed")))
    attributes[sc.REQUEST_STREAM] = bool(arg(kwargs, "stream"))
    max_tokens = arg(kwargs, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = arg(kwargs, "max_tokens")
    _put(attributes, sc.REQUEST_MAX_TOKENS, int_or_none(max_tokens))
    _put(attributes, sc.REQUEST_TEMPERATURE, float_or_none(arg(kwargs, "temperature")))
    _put(attributes, sc.REQUEST_TOP_P, float_or_none(arg(kwargs, "top_p")))
    _put(attributes, sc.REQUEST_FREQUENCY_PENALTY, float_or_none(arg(kwargs, "frequency_penalty")))
    _put(attributes, sc.REQUEST_PRESENCE_PENALTY, float_or_none(arg(kwargs, "presence_penalty")))
    _put(attributes, sc.REQUEST_STOP_SEQUENCES, str_list(arg(kwargs, "stop")))
    tier = arg(kwargs, "service_tier")
    if isinstance(tier, str):
        attributes[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    content: dict[str, Any] = {
        sc.INPUT_MESSAGES: [chat_message(message) for message in arg(kwargs, "messages") or []],
    }
    tools = tool_definitions(arg(kwargs, "tools"), arg(kwargs, "functions"))
    if tools:
        content[sc.TOOL_DEFINITIONS] = tools
    return attributes, content


def read_usage(call: LLMCall, usage: Any) -> None:
    if usage is None:
        return
    call.set(sc.USAGE_INPUT_TOKENS, int_or_none(get(usage, "prompt_tokens", get(usage, "input_tokens"))))
    call.set(sc.USAGE_OUTPUT_TOKENS, int_or_none(get(usage, "completion_tokens", get(usage, "output_tokens"))))
    prompt_details = get(usage, "prompt_tokens_details") or get(usage, "input_tokens_details")
    call.set(sc.USAGE_CACHE_READ_INPUT_TOKENS, int_or_none(get(prompt_details, "cached_tokens")))
    output_details = get(usage, "completion_tokens_details") or get(usage, "output_tokens_details")
    call.set(sc.USAGE_REASONING_OUTPUT_TOKENS, int_or_none(get(output_details, "reasoning_tokens")))


def read_response_ids(call: LLMCall, response: Any) -> None:
    call.set(sc.RESPONSE_ID, get(response, "id") if isinstance(get(response, "id"), str) else None)
    model = get(response, "model")
    call.set(sc.RESPONSE_MODEL, model if isinstance(model, str) else None)
    fingerprint = get(response, "system_fingerprint")
    call.set(sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, fingerprint if isinstance(fingerprint, str) else None)
    tier = get(response, "service_tier")
    call.set(sc.OPENAI_RESPONSE_SERVICE_TIER, tier if isinstance(tier, str) else None)


def read_chat_response(call: LLMCall, response: Any) -> None:
    read_response_ids(call, response)
    read_usage(call, get(response, "usage"))
    outputs = []
    reasons = []
    for choice in get(response, "choices") or []:
        reason = get(choice, "finish_reason")
        reasons.append(str(reason) if reason is not None else "")
        message = chat_message(get(choice, "message"))
        message["finish_reason"] = reason
        outputs.append(message)
    if reasons:
        call.set(sc.RESPONSE_FINISH_REASONS, reasons)
    call.set_content(sc.OUTPUT_MESSAGES, outputs)


# --- embeddings -----------------------------------------------------------------------
def read_embeddings_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Attributes, dict[str, Any]]:
    attributes = _base(sc.OP_EMBEDDINGS, instance, arg(kwargs, "model"))
    fmt = arg(kwargs, "encoding_format")
    if isinstance(fmt, str):
        attributes[sc.REQUEST_ENCODING_FORMATS] = [fmt]
    _put(attributes, sc.EMBEDDINGS_DIMENSION_COUNT, int_or_none(arg(kwargs, "dimensions")))
    raw = arg(kwargs, "input")
    items = raw if isinstance(raw, list) and not all(isinstance(x, int) for x in raw) else [raw]
    content = {sc.INPUT_MESSAGES: [{"role": "user", "parts": [text_part(plain(item))]} for item in items]}
    return attributes, content


def read_embeddings_response(call: LLMCall, response: Any) -> None:
    model = get(response, "model")
    call.set(sc.RESPONSE_MODEL, model if isinstance(model, str) else None)
    read_usage(call, get(response, "usage"))
    data = get(response, "data") or []
    if data:
        vector = get(data[0], "embedding")
        if isinstance(vector, list):
            call.set(sc.EMBEDDINGS_DIMENSION_COUNT, len(vector))


# --- responses API --------------------------------------------------------------------
def _response_item(item: Any) -> dict[str, Any]:
    kind = get(item, "type", "message")
    if kind == "function_call":
        return {"role": "assistant", "parts": [{
            "type": "tool_call", "id": get(item, "call_id"), "name": get(item, "name"),
            "arguments": json_or_text(get(item, "arguments")),
        }]}
    if kind == "function_call_output":
        return {"role": "tool", "parts": [{
            "type": "tool_call_response", "id": get(item, "call_id"), "response": plain(get(item, "output")),
        }]}
    if kind == "reasoning":
        summary = [get(s, "text") for s in get(item, "summary") or []]
        return {"role": "assistant", "parts": [{"type": "reasoning", "content": "\n".join(str(s) for s in summary)}]}
    if kind == "message":
        return {"role": get(item, "role", "user"), "parts": _content_parts(get(item, "content"))}
    return {"role": "assistant", "parts": [{"type": str(kind), "content": plain(item)}]}


def read_responses_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Attributes, dict[str, Any]]:
    attributes = _base(sc.OP_CHAT, instance, arg(kwargs, "model"))
    attributes[sc.REQUEST_STREAM] = bool(arg(kwargs, "stream"))
    text_format = get(arg(kwargs, "text"), "format")
    attributes[sc.OUTPUT_TYPE] = "json" if get(text_format, "type") in ("json_schema", "json_object") else "text"
    _put(attributes, sc.REQUEST_MAX_TOKENS, int_or_none(arg(kwargs, "max_output_tokens")))
    _put(attributes, sc.REQUEST_TEMPERATURE, float_or_none(arg(kwargs, "temperature")))
    _put(attributes, sc.REQUEST_TOP_P, float_or_none(arg(kwargs, "top_p")))
    conversation = arg(kwargs, "conversation")
    conversation_id = conversation if isinstance(conversation, str) else get(conversation, "id")
    if isinstance(conversation_id, str):
        attributes[sc.CONVERSATION_ID] = conversation_id
    raw = arg(kwargs, "input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    content: dict[str, Any] = {sc.INPUT_MESSAGES: [_response_item(item) for item in items]}
    instructions = arg(kwargs, "instructions")
    if instructions:
        content[sc.SYSTEM_INSTRUCTIONS] = [text_part(instructions)]
    tools = [plain(tool) for tool in arg(kwargs, "tools") or []]
    if tools:
        content[sc.TOOL_DEFINITIONS] = tools
    return attributes, content


def read_responses_response(call: LLMCall, response: Any) -> None:
    call.set(sc.RESPONSE_ID, get(response, "id") if isinstance(get(response, "id"), str) else None)
    model = get(response, "model")
    call.set(sc.RESPONSE_MODEL, model if isinstance(model, str) else None)
    tier = get(response, "service_tier")
    call.set(sc.OPENAI_RESPONSE_SERVICE_TIER, tier if isinstance(tier, str) else None)
    conversation = get(get(response, "conversation"), "id")
    call.set(sc.CONVERSATION_ID, conversation if isinstance(conversation, str) else None)
    read_usage(call, get(response, "usage"))
    status = get(response, "status")
    reason = get(get(response, "incomplete_details"), "reason") if status == "incomplete" else None
    finish = str(reason or ("stop" if status == "completed" else status or ""))
    items = get(response, "output") or []
    if any(get(item, "type") == "function_call" for item in items):
        finish = "tool_call" if finish == "stop" else finish
    call.set(sc.RESPONSE_FINISH_REASONS, [finish])
    parts: list[dict[str, Any]] = []
    for item in items:
        parts.extend(_response_item(item)["parts"])
    call.set_content(sc.OUTPUT_MESSAGES, [{"role": "assistant", "parts": parts, "finish_reason": finish}])
