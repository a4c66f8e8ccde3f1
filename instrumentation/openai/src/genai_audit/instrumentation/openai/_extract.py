"""Pure functions: OpenAI requests and responses -> span attributes and message parts."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import LLMCall
from genai_audit.instrumentation._parts import (
    arg,
    fields,
    float_or_none,
    get,
    int_or_none,
    json_or_text,
    plain,
    plain_args,
    server_attributes,
    str_list,
    text_part,
)
from genai_audit.instrumentation.openai._provider import provider_name

Attributes = dict[str, AttributeValue]

logger = logging.getLogger(__name__)


def _base(operation: str, instance: Any, model: Any) -> Attributes:
    client = getattr(instance, "_client", None)
    server = server_attributes(client)
    attributes: Attributes = {
        sc.OPERATION_NAME: operation,
        sc.PROVIDER_NAME: provider_name(client, server.get(sc.SERVER_ADDRESS)),
    }
    if isinstance(model, str):
        attributes[sc.REQUEST_MODEL] = model
    attributes.update(server)
    return attributes


def _put(attributes: Attributes, key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value


# --- chat completions -----------------------------------------------------------------
def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
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
        parts.append(
            {
                "type": "tool_call",
                "id": get(call, "id"),
                "name": get(function, "name"),
                "arguments": json_or_text(get(function, "arguments")),
            }
        )
    return parts


_MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "function_call", "refusal"})
_fast_messages: dict[type, bool] = {}


def chat_message(message: Any) -> dict[str, Any]:
    if type(message) is dict and len(message) == 2:  # the usual {"role": ..., "content": "text"}
        role = message.get("role")
        text = message.get("content")
        if type(role) is str and type(text) is str and role != "tool" and role != "function":
            return {"role": role, "parts": [{"type": "text", "content": text}]}
    values = fields(message, _MESSAGE_FIELDS, _fast_messages)
    role = values.get("role")
    if role is None:
        role = "user"
    if role in ("tool", "function"):
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": get(message, "tool_call_id") or get(message, "name"),
                    "response": plain(values.get("content")),
                }
            ],
        }
    parts = _content_parts(values.get("content"))
    tool_calls = values.get("tool_calls")
    if tool_calls:
        parts.extend(_tool_call_parts(tool_calls))
    function_call = values.get("function_call")
    if function_call is not None:
        parts.append(
            {
                "type": "tool_call",
                "name": get(function_call, "name"),
                "arguments": json_or_text(get(function_call, "arguments")),
            }
        )
    refusal = values.get("refusal")
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
            definitions.append(
                {
                    "type": get(tool, "type", "function"),
                    "name": get(function, "name"),
                    "description": get(function, "description"),
                    "parameters": plain(get(function, "parameters")),
                }
            )
        else:
            definitions.append(plain(tool))
    for function in functions or []:
        definitions.append(
            {
                "type": "function",
                "name": get(function, "name"),
                "description": get(function, "description"),
                "parameters": plain(get(function, "parameters")),
            }
        )
    return definitions


def _output_type(response_format: Any) -> str:
    kind = get(response_format, "type")
    if kind in ("json_object", "json_schema") or isinstance(response_format, type):
        return "json"
    return "text"


_CHAT_FLOATS = (
    (sc.REQUEST_TEMPERATURE, "temperature"),
    (sc.REQUEST_TOP_P, "top_p"),
    (sc.REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
    (sc.REQUEST_PRESENCE_PENALTY, "presence_penalty"),
)


def read_chat_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[Attributes, dict[str, Any]]:
    args = plain_args(kwargs)
    get_arg = args.get
    attributes = _base(sc.OP_CHAT, instance, get_arg("model"))
    response_format = get_arg("response_format")
    attributes[sc.OUTPUT_TYPE] = "text" if response_format is None else _output_type(response_format)
    n = get_arg("n")
    if n is not None and int_or_none(n) is not None and n != 1:
        attributes[sc.REQUEST_CHOICE_COUNT] = n
    seed = get_arg("seed")
    if seed is not None and int_or_none(seed) is not None:
        attributes[sc.REQUEST_SEED] = seed
    attributes[sc.REQUEST_STREAM] = bool(get_arg("stream"))
    max_tokens = get_arg("max_completion_tokens")
    if max_tokens is None:
        max_tokens = get_arg("max_tokens")
    if max_tokens is not None and int_or_none(max_tokens) is not None:
        attributes[sc.REQUEST_MAX_TOKENS] = max_tokens
    for key, name in _CHAT_FLOATS:
        value = get_arg(name)
        if value is not None:
            if type(value) is float:
                attributes[key] = value
            else:
                _put(attributes, key, float_or_none(value))
    stop = get_arg("stop")
    if stop is not None:
        _put(attributes, sc.REQUEST_STOP_SEQUENCES, str_list(stop))
    tier = get_arg("service_tier")
    if isinstance(tier, str):
        attributes[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    content: dict[str, Any] = {
        sc.INPUT_MESSAGES: [chat_message(message) for message in get_arg("messages") or ()],
    }
    tools = get_arg("tools")
    functions = get_arg("functions")
    if tools is not None or functions is not None:
        definitions = tool_definitions(tools, functions)
        if definitions:
            content[sc.TOOL_DEFINITIONS] = definitions
    return attributes, content




_USAGE_FIELDS = frozenset({"prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"})
_ID_ATTRIBUTES = (
    (sc.RESPONSE_ID, "id"),
    (sc.RESPONSE_MODEL, "model"),
    (sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, "system_fingerprint"),
    (sc.OPENAI_RESPONSE_SERVICE_TIER, "service_tier"),
)
_ID_FIELDS = frozenset(name for _, name in _ID_ATTRIBUTES)
_COMPLETION_FIELDS = _ID_FIELDS | {"usage", "choices"}
_CHOICE_FIELDS = frozenset({"finish_reason", "message"})
_fast_usages: dict[type, bool] = {}
_fast_ids: dict[type, bool] = {}
_fast_completions: dict[type, bool] = {}
_fast_choices: dict[type, bool] = {}


_CACHED_FIELDS = frozenset({"cached_tokens"})
_REASONING_FIELDS = frozenset({"reasoning_tokens"})
_fast_prompt_details: dict[type, bool] = {}
_fast_completion_details: dict[type, bool] = {}


def read_usage(call: LLMCall, usage: Any) -> None:
    if usage is None:
        return
    values = fields(usage, _USAGE_FIELDS, _fast_usages)
    attributes = call.attributes
    # Chat Completions names first; the Responses API's names only when those are absent.
    # int_or_none answers with the value itself, so a count that passes it is stored as read.
    count = values.get("prompt_tokens")
    if count is None:
        count = get(usage, "input_tokens")
    if type(count) is int or int_or_none(count) is not None:
        attributes[sc.USAGE_INPUT_TOKENS] = count
    count = values.get("completion_tokens")
    if count is None:
        count = get(usage, "output_tokens")
    if type(count) is int or int_or_none(count) is not None:
        attributes[sc.USAGE_OUTPUT_TOKENS] = count
    details = values.get("prompt_tokens_details") or get(usage, "input_tokens_details")
    if details is not None:
        count = fields(details, _CACHED_FIELDS, _fast_prompt_details).get("cached_tokens")
        if type(count) is int or int_or_none(count) is not None:
            attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] = count
    details = values.get("completion_tokens_details") or get(usage, "output_tokens_details")
    if details is not None:
        count = fields(details, _REASONING_FIELDS, _fast_completion_details).get("reasoning_tokens")
        if type(count) is int or int_or_none(count) is not None:
            attributes[sc.USAGE_REASONING_OUTPUT_TOKENS] = count


def _read_ids(call: LLMCall, values: Mapping[str, Any]) -> None:
    attributes = call.attributes
    for key, name in _ID_ATTRIBUTES:
        value = values.get(name)
        if isinstance(value, str):
            attributes[key] = value


def read_response_ids(call: LLMCall, response: Any) -> None:
    _read_ids(call, fields(response, _ID_FIELDS, _fast_ids))


def read_chat_response(call: LLMCall, response: Any) -> None:
    """Response attributes and output messages of a chat completion."""
    values = fields(response, _COMPLETION_FIELDS, _fast_completions)
    _read_ids(call, values)
    read_usage(call, values.get("usage"))
    outputs = []
    reasons = []
    for choice in values.get("choices") or ():
        choice_values = fields(choice, _CHOICE_FIELDS, _fast_choices)
        reason = choice_values.get("finish_reason")
        reasons.append(reason if type(reason) is str else str(reason) if reason is not None else "")
        answer = choice_values.get("message")
        # a choice a content filter stopped has no message: still the assistant's (empty) turn
        output: dict[str, Any] = chat_message(answer) if answer is not None else {"role": "assistant", "parts": []}
        output["finish_reason"] = reason
        outputs.append(output)
    if reasons:
        call.attributes[sc.RESPONSE_FINISH_REASONS] = reasons
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
        elif isinstance(vector, str) and vector:  # encoding_format="base64": little-endian float32 values
            try:
                size = len(base64.b64decode(vector, validate=True))
            except (ValueError, binascii.Error):
                size = -1
            if size > 0 and size % 4 == 0:
                call.set(sc.EMBEDDINGS_DIMENSION_COUNT, size // 4)


# --- responses API --------------------------------------------------------------------
def _response_item(item: Any) -> dict[str, Any]:
    kind = get(item, "type", "message")
    if kind == "function_call":
        return {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": get(item, "call_id"),
                    "name": get(item, "name"),
                    "arguments": json_or_text(get(item, "arguments")),
                }
            ],
        }
    if kind == "function_call_output":
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": get(item, "call_id"),
                    "response": plain(get(item, "output")),
                }
            ],
        }
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
    tier = arg(kwargs, "service_tier")
    if isinstance(tier, str):
        attributes[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
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
