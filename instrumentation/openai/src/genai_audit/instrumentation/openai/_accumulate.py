"""Stream accumulators for OpenAI chat-completion chunks and Responses API events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import LLMCall
from genai_audit.instrumentation._parts import arg, fast_reader, get, json_or_text, text_part
from genai_audit.instrumentation.openai import _extract

RAW_RESPONSE_HEADER = "x-stainless-raw-response"


class _Choice:
    __slots__ = ("finish_reason", "role", "text", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None


#: What a chunk, a choice and a delta are read for. SDK models that declare these
#: fields are read straight from their instance dict; anything else through ``get``.
_CHUNK_FIELDS = frozenset({"id", "model", "system_fingerprint", "service_tier", "usage", "choices"})
_CHOICE_FIELDS = frozenset({"index", "delta", "finish_reason"})
_DELTA_FIELDS = frozenset({"role", "content", "tool_calls"})
_RESPONSE_KEYS = ("id", "model", "system_fingerprint", "service_tier")  # the latest non-null one of each
_fast_chunks: dict[type, bool] = {}
_fast_choices: dict[type, bool] = {}
_fast_deltas: dict[type, bool] = {}


class ChatAccumulator:
    """Rebuilds the streamed completion from its chunks.

    Per chunk it only keeps references (the text pieces, the latest values);
    joining, parsing and building message parts wait for :meth:`finish`.
    """

    def __init__(self) -> None:
        self.choices: dict[Any, _Choice] = {}
        #: the latest non-null id, model, system_fingerprint and service_tier
        self.response: dict[str, Any] = {}
        self.usage: Any = None
        self.chunks = 0

    def feed(self, chunk: Any) -> None:
        self.chunks += 1
        if not (_fast_chunks.get(type(chunk)) or fast_reader(_fast_chunks, type(chunk), _CHUNK_FIELDS)):
            self._feed_any(chunk)
            return
        # An SDK chunk: its fields are read from the instance dict, one chunk at a time
        # in a single pass (this runs for every chunk of every stream).
        fields = chunk.__dict__
        response = self.response
        value = fields.get("id")
        if value is not None:
            response["id"] = value
        value = fields.get("model")
        if value is not None:
            response["model"] = value
        value = fields.get("system_fingerprint")
        if value is not None:
            response["system_fingerprint"] = value
        value = fields.get("service_tier")
        if value is not None:
            response["service_tier"] = value
        value = fields.get("usage")
        if value is not None:
            self.usage = value
        for choice in fields.get("choices") or ():
            if not (_fast_choices.get(type(choice)) or fast_reader(_fast_choices, type(choice), _CHOICE_FIELDS)):
                self._choice(get(choice, "index"), get(choice, "delta"), get(choice, "finish_reason"))
                continue
            choice_fields = choice.__dict__
            delta = choice_fields.get("delta")
            if not (_fast_deltas.get(type(delta)) or fast_reader(_fast_deltas, type(delta), _DELTA_FIELDS)):
                self._choice(choice_fields.get("index"), delta, choice_fields.get("finish_reason"))
                continue
            index = choice_fields.get("index")
            if index is None:
                index = 0
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            delta_fields = delta.__dict__
            value = delta_fields.get("role")
            if value:
                state.role = value
            value = delta_fields.get("content")
            if value:
                state.text.append(value)
            value = delta_fields.get("tool_calls")
            if value:
                self._tools(state, value)
            value = choice_fields.get("finish_reason")
            if value:
                state.finish_reason = value

    def _feed_any(self, chunk: Any) -> None:
        """A chunk that is not an SDK model (or of an SDK version without the usual fields)."""
        for key in _RESPONSE_KEYS:
            value = get(chunk, key)
            if value is not None:
                self.response[key] = value
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in get(chunk, "choices") or ():
            self._choice(get(choice, "index"), get(choice, "delta"), get(choice, "finish_reason"))

    def _choice(self, index: Any, delta: Any, reason: Any) -> None:
        if index is None:
            index = 0
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _Choice()
        if delta is not None:
            kind = type(delta)
            if _fast_deltas.get(kind) or fast_reader(_fast_deltas, kind, _DELTA_FIELDS):
                values = delta.__dict__
                role, text, tools = values.get("role"), values.get("content"), values.get("tool_calls")
            else:
                role, text, tools = get(delta, "role"), get(delta, "content"), get(delta, "tool_calls")
            if role:
                state.role = role
            if text:
                state.text.append(text)
            if tools:
                self._tools(state, tools)
        if reason:
            state.finish_reason = reason

    @staticmethod
    def _tools(state: _Choice, tools: Any) -> None:
        for tool in tools:
            slot = state.tools.get(get(tool, "index", 0))
            if slot is None:
                slot = state.tools[get(tool, "index", 0)] = {"id": None, "name": None, "arguments": []}
            slot["id"] = get(tool, "id") or slot["id"]
            function = get(tool, "function")
            slot["name"] = get(function, "name") or slot["name"]
            arguments = get(function, "arguments")
            if arguments:
                slot["arguments"].append(arguments)

    def finish(self, call: LLMCall) -> None:
        _extract.read_response_ids(call, self.response)
        _extract.read_usage(call, self.usage)
        call.set(sc.AUDIT_STREAM_CHUNKS, self.chunks)
        outputs = []
        reasons = []
        for index in sorted(self.choices):
            state = self.choices[index]
            parts: list[dict[str, Any]] = []
            if state.text:
                parts.append(text_part("".join(state.text)))
            for tool_index in sorted(state.tools):
                tool = state.tools[tool_index]
                parts.append(
                    {
                        "type": "tool_call",
                        "id": tool["id"],
                        "name": tool["name"],
                        "arguments": json_or_text("".join(tool["arguments"])),
                    }
                )
            reasons.append(state.finish_reason or "")
            outputs.append({"role": state.role, "parts": parts, "finish_reason": state.finish_reason})
        if reasons:
            call.set(sc.RESPONSE_FINISH_REASONS, reasons)
        call.set_content(sc.OUTPUT_MESSAGES, outputs)


def _is_stream(result: Any) -> bool:
    # ``with_raw_response``/``with_streaming_response`` return a response wrapper, not a stream
    return hasattr(result, "__next__") or hasattr(result, "__anext__")


def chat_accumulator(
    kwargs: Mapping[str, Any], result: Any, changed: bool, factory: Callable[[], ChatAccumulator] = ChatAccumulator
) -> ChatAccumulator | None:
    """A ``factory()`` accumulator for a chat stream (another API's chunks may need a subclass), else None."""
    if not arg(kwargs, "stream") or not _is_stream(result):
        return None
    return factory()


def undo_stream_usage(chunk: Any) -> bool:
    """Undo what asking for usage changed: True for the added final usage chunk.

    The API also adds ``"usage": null`` to every other chunk; forgetting that the
    field was set keeps ``chunk.to_dict()``/``to_json()`` as the application
    would have seen them.
    """
    if chunk.usage is None:
        fields_set = getattr(chunk, "__pydantic_fields_set__", None)
        if isinstance(fields_set, set):
            fields_set.discard("usage")
        return False
    return not chunk.choices


def with_stream_usage(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Ask for the final usage chunk on streams, unless the caller decided about it.

    The chunk this adds is hidden from the application (:func:`undo_stream_usage`),
    so the application sees exactly the stream it asked for.
    """
    if not arg(kwargs, "stream") or _raw_response_requested(kwargs):
        return None
    options = arg(kwargs, "stream_options")
    if options is not None and get(options, "include_usage") is not None:
        return None
    changed = dict(kwargs)
    changed["stream_options"] = {**(dict(options) if isinstance(options, Mapping) else {}), "include_usage": True}
    return changed


class ResponsesAccumulator:
    """Keeps the final ``response`` object a Responses API stream ends with."""

    def __init__(self) -> None:
        self.final: Any = None
        self.latest: Any = None
        self.chunks = 0
        self.text: list[str] = []

    def feed(self, event: Any) -> None:
        self.chunks += 1
        kind = get(event, "type")
        response = get(event, "response")
        if response is not None:
            self.latest = response
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                self.final = response
        elif kind == "response.output_text.delta":
            self.text.append(get(event, "delta") or "")

    def finish(self, call: LLMCall) -> None:
        call.set(sc.AUDIT_STREAM_CHUNKS, self.chunks)
        if self.final is not None:
            _extract.read_responses_response(call, self.final)
            return
        if self.latest is not None:
            _extract.read_response_ids(call, self.latest)
        if self.text:  # stream cut short: keep what arrived
            call.set_content(sc.OUTPUT_MESSAGES, [{"role": "assistant", "parts": [text_part("".join(self.text))]}])


def _raw_response_requested(kwargs: Mapping[str, Any]) -> bool:
    """The application reads the raw HTTP body itself: its stream cannot be filtered."""
    headers = arg(kwargs, "extra_headers")
    return isinstance(headers, Mapping) and any(str(k).lower() == RAW_RESPONSE_HEADER for k in headers)


def responses_accumulator(kwargs: Mapping[str, Any], result: Any, changed: bool) -> ResponsesAccumulator | None:
    if not arg(kwargs, "stream") or not _is_stream(result):
        return None
    return ResponsesAccumulator()
