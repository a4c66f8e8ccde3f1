"""A local fake of the OpenAI and Anthropic HTTP APIs, for tests and demos.

:class:`FakeProvider` runs a small stdlib HTTP/1.1 server on ``127.0.0.1`` (a
free port) in a daemon thread.  It speaks the wire protocols closely enough
that the real ``openai`` and ``anthropic`` SDKs can be pointed at it::

    with FakeProvider() as fake:
        fake.script(Reply(text="hi", input_tokens=3, output_tokens=1))
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert fake.requests[0].path == "/v1/chat/completions"

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and
``POST /v1/responses`` (OpenAI) and ``POST /v1/messages`` (Anthropic), each
with and without ``"stream": true`` where the real API supports it.  Any
other method or path gets a 404 in the provider's error format (Anthropic's
when the path is under ``/v1/messages`` or the request carries an
``anthropic-version`` header, OpenAI's otherwise).

Each request to a known endpoint takes the next entry from the script queue
(:meth:`FakeProvider.script`); with the queue empty it answers
``"echo: " + <text of the last user message>``.

Non-streamed JSON answers carry ``Content-Length`` and keep the connection
alive; streams are sent with ``Transfer-Encoding: chunked``, one chunk per
server-sent event, so a stream cut short (:class:`Malformed`) is seen by the
client as an incomplete body rather than as a clean end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Error",
    "FakeProvider",
    "Malformed",
    "MalformedKind",
    "RecordedRequest",
    "Reply",
    "Scripted",
    "ToolCall",
]

MalformedKind: TypeAlias = Literal["invalid_json", "truncated_json", "truncated_stream", "garbage_sse"]

_MALFORMED_KINDS: frozenset[str] = frozenset(get_args(MalformedKind))
_DEFAULT_EMBEDDING_DIMENSIONS = 8
_DEFAULT_MODEL = "fake-model"
_SYSTEM_FINGERPRINT = "fp_fakeprovider"
# Events sent before a ``truncated_stream`` cuts the connection.
_TRUNCATE_AFTER_EVENTS = 3
# Valid events sent before the ``garbage_sse`` event.
_GARBAGE_AFTER_EVENTS = 2


# --------------------------------------------------------------------------- #
# Public data types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ToolCall:
    """A function/tool call the fake model makes.

    ``id`` is the OpenAI ``call_id`` / Anthropic ``tool_use`` id; when ``None`` a
    fresh ``call_...`` (OpenAI) or ``toolu_...`` (Anthropic) id is generated.
    """

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful model answer.

    ``finish_reason`` defaults to ``"stop"`` / ``"end_turn"``, or to
    ``"tool_calls"`` / ``"tool_use"`` when there are tool calls.  Either
    vocabulary is accepted for either provider (``"stop"`` <-> ``"end_turn"``,
    ``"length"`` <-> ``"max_tokens"``, ``"tool_calls"`` <-> ``"tool_use"``);
    other values are passed through.  For the Responses API ``"length"`` /
    ``"max_tokens"`` / ``"max_output_tokens"`` and ``"content_filter"`` make an
    ``incomplete`` response.

    ``input_tokens`` / ``output_tokens`` default to the number of
    whitespace-separated words in the request's text and in the reply (plus, per
    tool call, one plus the words of its JSON arguments).  ``cached_input_tokens``
    is reported as OpenAI ``cached_tokens`` / Anthropic
    ``cache_read_input_tokens``.  ``model`` defaults to the request's model.
    ``chunk_size`` is the number of characters per streamed text (and tool
    argument) delta; ``delay_s`` is slept before the answer is sent.

    For ``/v1/embeddings`` only ``input_tokens``, ``model`` and ``delay_s``
    matter.
    """

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int = 0
    model: str | None = None
    chunk_size: int = 8
    delay_s: float = 0.0
    response_id: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if self.delay_s < 0:
            raise ValueError("delay_s must not be negative")


@dataclass(frozen=True)
class Error:
    """An HTTP error answer in the provider's error format.

    ``error_type`` defaults to what the provider sends for ``status`` (e.g.
    OpenAI ``"requests"``/``"server_error"``, Anthropic
    ``"rate_limit_error"``/``"api_error"``/``"overloaded_error"``).
    ``retry_after`` (seconds) sets the ``Retry-After`` header.
    """

    status: int
    message: str = "fake provider error"
    error_type: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"Error.status must be a 4xx or 5xx code, got {self.status}")


@dataclass(frozen=True)
class Malformed:
    """A broken answer, to exercise client error handling.

    * ``invalid_json`` -- 200 ``application/json`` whose body is not JSON (for a
      streamed request: an event whose ``data`` is not JSON, as the first event).
    * ``truncated_json`` -- ``Content-Length`` of the full body, but only half of
      it is sent before the connection is closed (for a streamed request: the
      first event is cut mid-object, then the connection closes).
    * ``truncated_stream`` -- a few events, then the connection closes without
      the terminating chunk and without ``[DONE]`` / ``message_stop`` (for a
      non-streamed request: as ``truncated_json``).
    * ``garbage_sse`` -- a normal stream with one event in the middle whose
      ``data`` is not JSON (for a non-streamed request: as ``invalid_json``).
    """

    kind: MalformedKind

    def __post_init__(self) -> None:
        if self.kind not in _MALFORMED_KINDS:
            raise ValueError(f"unknown Malformed kind {self.kind!r}")


Scripted: TypeAlias = Reply | Error | Malformed


@dataclass
class RecordedRequest:
    """One request the fake received.

    ``path`` is the request target as sent (including any query string);
    ``headers`` has lower-cased names; ``body`` is the parsed JSON body, or
    ``None`` when the body is empty or not JSON.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _words(text: str) -> int:
    return len(text.split())


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _text_of_content(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
                elif part.get("type") == "tool_result":
                    texts.append(_text_of_content(part.get("content")))
        return " ".join(t for t in texts if t)
    return ""


def _messages_of(body: dict[str, Any]) -> list[Any]:
    """The conversation items of a chat / messages / responses request body."""
    if isinstance(body.get("messages"), list):
        return list(body["messages"])
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if isinstance(items, list):
        return list(items)
    return []


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(_messages_of(body)):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of_content(message.get("content"))
    return ""


def _request_text(body: dict[str, Any]) -> str:
    texts: list[str] = []
    for key in ("system", "instructions"):
        texts.append(_text_of_content(body.get(key)))
    for message in _messages_of(body):
        if isinstance(message, dict):
            texts.append(_text_of_content(message.get("content")))
            if isinstance(message.get("output"), str):  # responses function_call_output
                texts.append(message["output"])
    return " ".join(t for t in texts if t)


def _arguments_json(call: ToolCall) -> str:
    return _dumps(call.arguments)


def _input_tokens(reply: Reply, body: dict[str, Any]) -> int:
    if reply.input_tokens is not None:
        return reply.input_tokens
    return max(1, _words(_request_text(body)))


def _output_tokens(reply: Reply) -> int:
    if reply.output_tokens is not None:
        return reply.output_tokens
    return _words(reply.text) + sum(1 + _words(_arguments_json(c)) for c in reply.tool_calls)


def _model(reply: Reply, body: dict[str, Any]) -> str:
    if reply.model is not None:
        return reply.model
    model = body.get("model")
    return model if isinstance(model, str) and model else _DEFAULT_MODEL


_TO_OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_TO_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _openai_finish_reason(reply: Reply) -> str:
    if reply.finish_reason is None:
        return "tool_calls" if reply.tool_calls else "stop"
    return _TO_OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)


def _anthropic_stop_reason(reply: Reply) -> str:
    if reply.finish_reason is None:
        return "tool_use" if reply.tool_calls else "end_turn"
    return _TO_ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)


def _embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``, exactly representable as float32."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        for i in range(0, len(digest), 4):
            (value,) = struct.unpack("<I", digest[i : i + 4])
            raw.append(value / 0xFFFFFFFF * 2.0 - 1.0)
        counter += 1
    raw = raw[:dimensions]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    # Round-trip through float32 so that the float and base64 encodings agree.
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _embedding_inputs(value: Any) -> list[str]:
    """Normalise the ``input`` of an embeddings request to one string per vector."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [" ".join(str(v) for v in value)]
        out: list[str] = []
        for item in value:
            if isinstance(item, list):
                out.append(" ".join(str(v) for v in item))
            else:
                out.append(str(item))
        return out
    return [""]


def _embedding_tokens(value: Any) -> int:
    if isinstance(value, str):
        return _words(value)
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return len(value)
        return sum(len(v) if isinstance(v, list) else _words(str(v)) for v in value)
    return 0


# --------------------------------------------------------------------------- #
# Error bodies
# --------------------------------------------------------------------------- #

_OPENAI_ERROR_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_ANTHROPIC_ERROR_DEFAULTS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _openai_error_body(status: int, message: str, error_type: str | None) -> dict[str, Any]:
    default_type, default_code = _OPENAI_ERROR_DEFAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message,
            "type": error_type if error_type is not None else default_type,
            "param": None,
            "code": default_code if error_type is None else None,
        }
    }


def _anthropic_error_body(status: int, message: str, error_type: str | None, request_id: str) -> dict[str, Any]:
    if error_type is None:
        error_type = _ANTHROPIC_ERROR_DEFAULTS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


# --------------------------------------------------------------------------- #
# Wire formats: OpenAI chat completions
# --------------------------------------------------------------------------- #


def _chat_usage(reply: Reply, body: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = _input_tokens(reply, body)
    completion = _output_tokens(reply) * n
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_n(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def _chat_tool_ids(reply: Reply) -> list[str]:
    return [call.id or _new_id("call_") for call in reply.tool_calls]


def _chat_completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    n = _chat_n(body)
    tool_ids = _chat_tool_ids(reply)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if (reply.text or not reply.tool_calls) else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_json(call)},
            }
            for call, call_id in zip(reply.tool_calls, tool_ids)
        ]
    finish = _openai_finish_reason(reply)
    return {
        "id": reply.response_id or _new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(reply, body),
        "choices": [
            {"index": i, "message": dict(message), "logprobs": None, "finish_reason": finish} for i in range(n)
        ],
        "usage": _chat_usage(reply, body, n),
        "service_tier": "default",
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }


def _chat_stream(reply: Reply, body: dict[str, Any], groq: bool = False) -> list[str]:
    """``data:`` payloads of a streamed chat completion (without ``[DONE]``).

    ``groq``: as the Groq API streams, with the usage in ``x_groq`` on the last choice's final chunk.
    """
    n = _chat_n(body)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    base: dict[str, Any] = {
        "id": reply.response_id or _new_id("chatcmpl-", 29),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(reply, body),
        "service_tier": "default",
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
        obj = dict(base, choices=choices)
        if include_usage:
            obj["usage"] = usage
        return _dumps(obj)

    def choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    calls = list(zip(reply.tool_calls, _chat_tool_ids(reply)))
    events: list[str] = []
    for index in range(n):
        first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if not reply.text and calls:
            # Like OpenAI: a tool-call-only answer starts with the first call's header.
            first["content"] = None
        for piece in _chunks(reply.text, reply.chunk_size):
            if first:
                events.append(chunk([choice(index, first)]))
                first = {}
            events.append(chunk([choice(index, {"content": piece})]))
        for tool_index, (call, call_id) in enumerate(calls):
            header = {
                "index": tool_index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk([choice(index, dict(first, tool_calls=[header]))]))
            first = {}
            for piece in _chunks(_arguments_json(call), reply.chunk_size):
                fragment = {"index": tool_index, "function": {"arguments": piece}}
                events.append(chunk([choice(index, {"tool_calls": [fragment]})]))
        if first:
            events.append(chunk([choice(index, first)]))
        last = chunk([choice(index, {}, _openai_finish_reason(reply))])
        if groq and index == n - 1:
            final = json.loads(last)
            final["x_groq"] = {"id": _new_id("req_", 26), "usage": _chat_usage(reply, body, n)}
            last = _dumps(final)
        events.append(last)
    if include_usage:
        events.append(chunk([], _chat_usage(reply, body, n)))
    return events


# --------------------------------------------------------------------------- #
# Wire formats: OpenAI embeddings
# --------------------------------------------------------------------------- #


def _embeddings(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions < 1:
        dimensions = _DEFAULT_EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    for index, text in enumerate(_embedding_inputs(body.get("input"))):
        vector = _embedding_vector(text, dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii") if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = reply.input_tokens if reply.input_tokens is not None else _embedding_tokens(body.get("input"))
    return {
        "object": "list",
        "data": data,
        "model": _model(reply, body),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --------------------------------------------------------------------------- #
# Wire formats: OpenAI responses
# --------------------------------------------------------------------------- #


def _responses_status(reply: Reply) -> tuple[str, dict[str, Any] | None]:
    reason = reply.finish_reason
    if reason in ("length", "max_tokens", "max_output_tokens"):
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _responses_usage(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    prompt = _input_tokens(reply, body)
    completion = _output_tokens(reply)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": reply.cached_input_tokens, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


class _ResponsesPlan:
    """Ids and output items of one Responses API answer."""

    def __init__(self, reply: Reply, body: dict[str, Any]) -> None:
        self.reply = reply
        self.body = body
        self.id = reply.response_id or _new_id("resp_", 48)
        self.created_at = int(time.time())
        self.message_id = _new_id("msg_", 48)
        self.has_message = bool(reply.text) or not reply.tool_calls
        self.calls = [(call, _new_id("fc_", 48), call.id or _new_id("call_")) for call in reply.tool_calls]

    def message_item(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [_output_text_part(text)]
        return {"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    @staticmethod
    def call_item(call: ToolCall, item_id: str, call_id: str, status: str, arguments: str) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call_id,
            "name": call.name,
        }

    def output(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if self.has_message:
            items.append(self.message_item("completed", self.reply.text))
        for call, item_id, call_id in self.calls:
            items.append(self.call_item(call, item_id, call_id, "completed", _arguments_json(call)))
        return items

    def response(self, final: bool) -> dict[str, Any]:
        body = self.body
        status, incomplete = _responses_status(self.reply) if final else ("in_progress", None)
        text_config = body.get("text") if isinstance(body.get("text"), dict) else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(body.get("background", False)),
            "completed_at": int(time.time()) if final and status == "completed" else None,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": _model(self.reply, body),
            "output": self.output() if final else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": text_config or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": _responses_usage(self.reply, body) if final else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def events(self) -> list[tuple[str, str]]:
        """``(event name, data)`` pairs of the streamed answer."""
        events: list[tuple[str, str]] = []

        def emit(event_type: str, **fields: Any) -> None:
            payload = {"type": event_type, "sequence_number": len(events), **fields}
            events.append((event_type, _dumps(payload)))

        reply = self.reply
        emit("response.created", response=self.response(final=False))
        emit("response.in_progress", response=self.response(final=False))
        output_index = 0
        if self.has_message:
            ids = {"item_id": self.message_id, "output_index": output_index}
            emit("response.output_item.added", output_index=output_index, item=self.message_item("in_progress", None))
            emit("response.content_part.added", content_index=0, part=_output_text_part(""), **ids)
            for piece in _chunks(reply.text, reply.chunk_size):
                emit("response.output_text.delta", content_index=0, delta=piece, logprobs=[], **ids)
            emit("response.output_text.done", content_index=0, text=reply.text, logprobs=[], **ids)
            emit("response.content_part.done", content_index=0, part=_output_text_part(reply.text), **ids)
            emit(
                "response.output_item.done",
                output_index=output_index,
                item=self.message_item("completed", reply.text),
            )
            output_index += 1
        for call, item_id, call_id in self.calls:
            arguments = _arguments_json(call)
            emit(
                "response.output_item.added",
                output_index=output_index,
                item=self.call_item(call, item_id, call_id, "in_progress", ""),
            )
            for piece in _chunks(arguments, reply.chunk_size):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=output_index, delta=piece)
            emit(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=output_index,
                name=call.name,
                arguments=arguments,
            )
            emit(
                "response.output_item.done",
                output_index=output_index,
                item=self.call_item(call, item_id, call_id, "completed", arguments),
            )
            output_index += 1
        final = self.response(final=True)
        emit("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)
        return events


# --------------------------------------------------------------------------- #
# Wire formats: Anthropic messages
# --------------------------------------------------------------------------- #


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text or not reply.tool_calls:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        tool_id = call.id or _new_id("toolu_01")
        blocks.append({"type": "tool_use", "id": tool_id, "name": call.name, "input": call.arguments})
    return blocks


def _anthropic_usage(reply: Reply, body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": _input_tokens(reply, body),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": reply.cached_input_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _anthropic_message(
    reply: Reply, body: dict[str, Any], blocks: list[dict[str, Any]], *, streaming_start: bool
) -> dict[str, Any]:
    return {
        "id": reply.response_id or _new_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": _model(reply, body),
        "content": [] if streaming_start else blocks,
        "stop_reason": None if streaming_start else _anthropic_stop_reason(reply),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply, body, 1 if streaming_start else _output_tokens(reply)),
    }


def _anthropic_stream(reply: Reply, body: dict[str, Any]) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []

    def emit(event_type: str, **fields: Any) -> None:
        events.append((event_type, _dumps({"type": event_type, **fields})))

    blocks = _anthropic_blocks(reply)
    emit("message_start", message=_anthropic_message(reply, body, blocks, streaming_start=True))
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
            if index == 0:
                emit("ping")
            for piece in _chunks(reply.text, reply.chunk_size):
                emit("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            emit("content_block_start", index=index, content_block=start)
            if index == 0:
                emit("ping")
            for piece in ["", *_chunks(json.dumps(block["input"], ensure_ascii=False), reply.chunk_size)]:
                emit("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
        emit("content_block_stop", index=index)
    emit(
        "message_delta",
        delta={"stop_reason": _anthropic_stop_reason(reply), "stop_sequence": None},
        usage={"output_tokens": _output_tokens(reply)},
    )
    emit("message_stop")
    return events


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #

_Provider = Literal["openai", "anthropic"]

_ROUTES: dict[str, tuple[_Provider, str]] = {
    "/v1/chat/completions": ("openai", "chat"),
    "/v1/embeddings": ("openai", "embeddings"),
    "/v1/responses": ("openai", "responses"),
    "/v1/messages": ("anthropic", "messages"),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 drops SYNs when many clients
    # connect at once, which costs a 1 s retransmit.
    request_queue_size = 256

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client drops its connection (SDKs close streams right after ``[DONE]``)."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Abort(Exception):
    """Raised inside the handler to drop the connection without finishing the answer."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake-provider/1.0"
    sys_version = ""
    server: _Server
    #: the request came by an Azure OpenAI deployment path, or by the Groq API's
    azure = False
    groq = False

    # -- connection bookkeeping (so stop() can drop keep-alive connections) --

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    # -- dispatch --

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            raw = self._read_body()
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            provider_obj = self.server.provider
            provider_obj._record(RecordedRequest(method=self.command, path=self.path, headers=headers, body=parsed))

            path = self.path
            if "://" in path.split("?", 1)[0]:  # absolute-form, as a client sends to a proxy (RFC 9112 3.2.2)
                path = "/" + path.split("://", 1)[1].partition("/")[2]
            route_path = path.split("?", 1)[0].rstrip("/") or "/"
            # Azure OpenAI: /openai/deployments/<deployment>/<operation>, the model named by the deployment
            self.azure = route_path.startswith("/openai/deployments/") and route_path.count("/") >= 4
            self.groq = route_path.startswith("/openai/v1/")  # the Groq API's base path
            if self.azure:
                route_path = "/v1/" + route_path.split("/", 4)[4]
            if route_path not in _ROUTES:  # OpenAI-compatible APIs under another base path: /openai/v1/...
                route_path = next((known for known in _ROUTES if route_path.endswith(known[3:])), route_path)
            route = _ROUTES.get(route_path) if self.command == "POST" else None
            if route is None:
                flavour: _Provider = (
                    "anthropic" if route_path.startswith("/v1/messages") or "anthropic-version" in headers else "openai"
                )
                message = f"Invalid URL ({self.command} {self.path})" if flavour == "openai" else "Not Found"
                self._send_error(flavour, Error(status=404, message=message))
                return
            flavour, endpoint = route
            body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
            scripted = provider_obj._next()
            if isinstance(scripted, Error):
                self._send_error(flavour, scripted)
                return
            reply = scripted if isinstance(scripted, Reply) else Reply(text="echo: " + _last_user_text(body))
            malformed = scripted.kind if isinstance(scripted, Malformed) else None
            if reply.delay_s:
                time.sleep(reply.delay_s)
            stream = body.get("stream") is True and endpoint != "embeddings"
            if stream:
                self._send_stream(flavour, endpoint, reply, body, malformed)
            else:
                self._send_body(flavour, endpoint, reply, body, malformed)
        except (_Abort, OSError):  # cut on purpose, or the client went away
            self.close_connection = True

    # -- writers --

    def _start_response(
        self, flavour: _Provider, status: int, headers: dict[str, str], request_id: str | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if flavour == "anthropic":
            self.send_header("request-id", request_id or _new_id("req_011"))
        else:
            self.send_header("x-request-id", request_id or _new_id("req_", 32))
            self.send_header("openai-processing-ms", "1")
            self.send_header("openai-version", "2020-10-01")
        self.end_headers()

    def _send_json(
        self,
        flavour: _Provider,
        status: int,
        payload: bytes,
        *,
        request_id: str | None = None,
        extra: dict[str, str] | None = None,
        cut: bool = False,
    ) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **(extra or {})}
        self._start_response(flavour, status, headers, request_id)
        if self.command == "HEAD":
            return
        if cut:
            self.wfile.write(payload[: len(payload) // 2])
            raise _Abort
        self.wfile.write(payload)

    def _send_error(self, flavour: _Provider, error: Error) -> None:
        extra: dict[str, str] = {}
        if error.retry_after is not None:
            retry = error.retry_after
            extra["Retry-After"] = str(int(retry)) if float(retry).is_integer() else str(retry)
        request_id: str | None = None
        if flavour == "anthropic":
            request_id = _new_id("req_011")
            body = _anthropic_error_body(error.status, error.message, error.error_type, request_id)
        else:
            body = _openai_error_body(error.status, error.message, error.error_type)
        self._send_json(flavour, error.status, _dumps(body).encode(), request_id=request_id, extra=extra)

    def _send_body(
        self, flavour: _Provider, endpoint: str, reply: Reply, body: dict[str, Any], malformed: str | None
    ) -> None:
        if malformed in ("invalid_json", "garbage_sse"):
            self._send_json(flavour, 200, b"<html><body>upstream returned garbage</body></html>\n")
            return
        obj: dict[str, Any]
        if endpoint == "chat":
            obj = _chat_completion(reply, body)
            if self.azure and _openai_finish_reason(reply) == "content_filter":
                for choice in obj["choices"]:  # Azure leaves the message out of a filtered choice
                    del choice["message"]
                    choice["content_filter_results"] = {"hate": {"filtered": True, "severity": "high"}}
        elif endpoint == "embeddings":
            obj = _embeddings(reply, body)
        elif endpoint == "responses":
            obj = _ResponsesPlan(reply, body).response(final=True)
        else:
            obj = _anthropic_message(reply, body, _anthropic_blocks(reply), streaming_start=False)
        cut = malformed in ("truncated_json", "truncated_stream")
        self._send_json(flavour, 200, _dumps(obj).encode(), cut=cut)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_stream(
        self, flavour: _Provider, endpoint: str, reply: Reply, body: dict[str, Any], malformed: str | None
    ) -> None:
        events: list[tuple[str | None, str]]
        if endpoint == "chat":
            events = [(None, data) for data in _chat_stream(reply, body, groq=self.groq)]
        elif endpoint == "responses":
            events = list(_ResponsesPlan(reply, body).events())
        else:
            events = list(_anthropic_stream(reply, body))

        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
        }
        self._start_response(flavour, 200, headers)

        def frame(event: str | None, data: str) -> bytes:
            prefix = f"event: {event}\n" if event else ""
            return f"{prefix}data: {data}\n\n".encode()

        # The event name a garbage event claims to be (Anthropic drops unnamed events).
        garbage_event = {"chat": None, "responses": "response.output_text.delta"}.get(
            endpoint, "content_block_delta"
        )
        garbage = frame(garbage_event, '{"type": "oops", this is not json')

        if malformed == "truncated_json":
            event, data = events[0]
            full = frame(event, data)
            self._write_chunk(full[: len(full) // 2])
            raise _Abort
        if malformed == "invalid_json":
            self._write_chunk(garbage)
        for number, (event, data) in enumerate(events):
            if malformed == "truncated_stream" and number >= min(_TRUNCATE_AFTER_EVENTS, len(events) - 1):
                raise _Abort
            if malformed == "garbage_sse" and number == min(_GARBAGE_AFTER_EVENTS, len(events) - 1):
                self._write_chunk(garbage)
            self._write_chunk(frame(event, data))
        if endpoint == "chat":
            self._write_chunk(frame(None, "[DONE]"))
        self.wfile.write(b"0\r\n\r\n")


# --------------------------------------------------------------------------- #
# Public server object
# --------------------------------------------------------------------------- #


class FakeProvider:
    """A local OpenAI + Anthropic compatible HTTP server with a scripted reply queue.

    Use as a context manager (or call :meth:`start` / :meth:`stop`).  Point the
    OpenAI SDK at :attr:`openai_base_url` and the Anthropic SDK at
    :attr:`anthropic_base_url`.  Every request is appended to :attr:`requests`;
    each request to a model endpoint pops one entry queued with :meth:`script`.
    """

    url: str
    requests: list[RecordedRequest]

    def __init__(self) -> None:
        self.url = ""
        self.requests = []
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> FakeProvider:
        """Bind ``127.0.0.1`` on a free port and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeProvider is already running")
        server = _Server(self)
        host, port = server.server_address[:2]
        self._server = server
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"FakeProvider:{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections.  Safe to call more than once."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        self._thread = None
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- URLs --

    @property
    def openai_base_url(self) -> str:
        """Base URL for ``openai.OpenAI(base_url=...)``: :attr:`url` + ``/v1``."""
        return self._require_url() + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for ``anthropic.Anthropic(base_url=...)``: :attr:`url`."""
        return self._require_url()

    def _require_url(self) -> str:
        if not self.url:
            raise RuntimeError("FakeProvider is not started")
        return self.url

    # -- scripting --

    def script(self, *responses: Scripted) -> None:
        """Append answers to the FIFO queue; each model request pops one."""
        for response in responses:
            if not isinstance(response, (Reply, Error, Malformed)):
                raise TypeError(f"expected Reply, Error or Malformed, got {type(response).__name__}")
        with self._lock:
            self._queue.extend(responses)

    def reset(self) -> None:
        """Clear the script queue and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """Number of scripted answers not yet used."""
        with self._lock:
            return len(self._queue)

    def _next(self) -> Scripted | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def iter_requests(self, path: str | None = None) -> Iterator[RecordedRequest]:
        """A snapshot of :attr:`requests`, optionally only those whose path (sans query) is ``path``."""
        with self._lock:
            snapshot = list(self.requests)
        for request in snapshot:
            if path is None or request.path.split("?", 1)[0] == path:
                yield request
