"""``messages.stream(...)``: the request starts when the returned manager is entered.

The proxy opens the span on ``__enter__``/``__aenter__``, and puts a stream
proxy between the SDK's ``MessageStream`` and its raw event stream, so the
span sees every event however the application consumes the stream
(iteration, ``text_stream``, ``get_final_message()``, ``until_done()``).
If a future SDK lays its stream out differently, the span is finished from the
stream's public snapshot when the manager exits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import wrapt

from genai_audit.instrumentation._core import LLMCall, Telemetry, guarded, start_call, suppressed
from genai_audit.instrumentation._streams import AsyncStream, SyncStream
from genai_audit.instrumentation._wrappers import Wrapper
from genai_audit.instrumentation.anthropic import _extract


def _open(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> LLMCall | None:
    with guarded("reading messages.stream request"):
        attributes, content = _extract.read_request(instance, {**kwargs, "stream": True})
        return start_call(telemetry, "chat", attributes, content)
    return None


def _attach(call: LLMCall, stream: Any, proxy_cls: type) -> bool:
    raw = getattr(stream, "_raw_stream", None)
    if raw is None:
        return False
    stream._raw_stream = proxy_cls(raw, call, _extract.StreamAccumulator())
    return True


def _finish_from_snapshot(call: LLMCall, stream: Any) -> None:
    with guarded("reading stream snapshot"):
        snapshot = getattr(stream, "current_message_snapshot", None)
        if snapshot is not None:
            _extract.read_response(call, snapshot)
    with guarded("ending span"):
        call.end()


class SyncManager(wrapt.ObjectProxy):  # type: ignore[type-arg]  # generic only in wrapt's stubs
    def __init__(self, wrapped: Any, telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry
        self._self_instance = instance
        self._self_kwargs = dict(kwargs)
        self._self_call: LLMCall | None = None
        self._self_stream: Any = None
        self._self_attached = False

    def __enter__(self) -> Any:
        call = None if suppressed() else _open(self._self_telemetry, self._self_instance, self._self_kwargs)
        if call is None:
            return self.__wrapped__.__enter__()
        token = call.attach()
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            call.detach(token)
            call.end(exc)
            raise
        call.detach(token)
        self._self_call, self._self_stream = call, stream
        with guarded("attaching stream proxy"):
            self._self_attached = _attach(call, stream, SyncStream)
        return stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            if self._self_call is not None and not self._self_attached:
                _finish_from_snapshot(self._self_call, self._self_stream)


class AsyncManager(wrapt.ObjectProxy):  # type: ignore[type-arg]  # generic only in wrapt's stubs
    def __init__(self, wrapped: Any, telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry
        self._self_instance = instance
        self._self_kwargs = dict(kwargs)
        self._self_call: LLMCall | None = None
        self._self_stream: Any = None
        self._self_attached = False

    async def __aenter__(self) -> Any:
        call = None if suppressed() else _open(self._self_telemetry, self._self_instance, self._self_kwargs)
        if call is None:
            return await self.__wrapped__.__aenter__()
        token = call.attach()
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            call.detach(token)
            call.end(exc)
            raise
        call.detach(token)
        self._self_call, self._self_stream = call, stream
        with guarded("attaching stream proxy"):
            self._self_attached = _attach(call, stream, AsyncStream)
        return stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            if self._self_call is not None and not self._self_attached:
                _finish_from_snapshot(self._self_call, self._self_stream)


def manager_wrapper(telemetry: Telemetry, manager_cls: Callable[..., Any]) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        with guarded("wrapping stream manager"):
            return manager_cls(manager, telemetry, instance, kwargs)
        return manager

    return wrapper
