"""Wrapper factories shared by every instrumented method, sync and async twins side by side.

A :class:`CallSpec` holds the pure functions that turn one SDK method's
request and response into attributes and content; the factories add the
span lifecycle and the two error boundaries around it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.util.types import AttributeValue

from genai_audit.instrumentation._core import LLMCall, Telemetry, guarded, start_call, suppressed
from genai_audit.instrumentation._streams import Accumulator, AsyncStream, Hider, NullAccumulator, SyncStream

#: (client resource, kwargs) -> (span attributes at start, structured input content)
RequestReader = Callable[[Any, Mapping[str, Any]], tuple[dict[str, AttributeValue], dict[str, Any]]]
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class CallSpec:
    """How to read one SDK method."""

    operation: str
    read_request: RequestReader
    read_response: Callable[[LLMCall, Any], None]
    #: (kwargs sent, result, whether ``prepare`` changed the kwargs) -> accumulator when the
    #: call returned a stream, else None
    stream_accumulator: Callable[[Mapping[str, Any], Any, bool], Accumulator | None] | None = None
    #: may return changed kwargs for the SDK; the stream chunks the change adds are
    #: removed by ``hide_added`` so the application sees what it asked for
    prepare: Callable[[Mapping[str, Any]], dict[str, Any] | None] | None = None
    hide_added: Hider | None = None


def _begin(telemetry: Telemetry, spec: CallSpec, instance: Any, kwargs: dict[str, Any]) -> tuple[
    LLMCall | None, dict[str, Any]
]:
    call: LLMCall | None = None
    call_kwargs = kwargs
    with guarded(f"reading {spec.operation} request"):
        attributes, content = spec.read_request(instance, kwargs)
        call = start_call(telemetry, spec.operation, attributes, content)
        if call is not None and spec.prepare is not None:
            call_kwargs = spec.prepare(kwargs) or kwargs
    return call, call_kwargs


def _complete(
    spec: CallSpec, call: LLMCall, kwargs: Mapping[str, Any], changed: bool, result: Any, stream_cls: type
) -> Any:
    """Record a successful result; return what the application gets."""
    proxy = None
    hide = spec.hide_added if changed else None
    with guarded(f"reading {spec.operation} response"):
        acc = spec.stream_accumulator(kwargs, result, changed) if spec.stream_accumulator else None
        if acc is not None:
            proxy = stream_cls(result, call, acc, hide)
        else:
            spec.read_response(call, result)
    if proxy is None and hide is not None:
        # The request was changed for a stream but reading it failed: the added
        # chunks must still not reach the application.
        with guarded("wrapping stream"):
            proxy = stream_cls(result, call, NullAccumulator(), hide)
    if proxy is not None:
        return proxy
    with guarded("ending span"):
        call.end()
    return result


def _failed(call: LLMCall, exc: BaseException) -> None:
    with guarded("recording error"):
        call.end(exc)


def sync_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if suppressed():
            return wrapped(*args, **kwargs)
        call, call_kwargs = _begin(telemetry, spec, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            with call.current():
                result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            _failed(call, exc)
            raise
        return _complete(spec, call, call_kwargs, call_kwargs is not kwargs, result, SyncStream)

    return wrapper


def async_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        async def run() -> Any:
            if suppressed():
                return await wrapped(*args, **kwargs)
            call, call_kwargs = _begin(telemetry, spec, instance, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            try:
                with call.current():
                    result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                _failed(call, exc)
                raise
            return _complete(spec, call, call_kwargs, call_kwargs is not kwargs, result, AsyncStream)

        return run()

    return wrapper
