"""Wrapper factories shared by every instrumented method, sync and async twins side by side.

A :class:`CallSpec` holds the pure functions that turn one SDK method's
request and response into attributes and content; the factories add the
span lifecycle and the two error boundaries around it.

A request is changed (``CallSpec.prepare``) only once the stream proxy that
hides what the change adds has been built, so whatever fails in our code, the
application gets the stream it asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.util.types import AttributeValue

from genai_audit.instrumentation._core import LLMCall, Telemetry, start_call, suppressed, swallowed
from genai_audit.instrumentation._raw import complete_raw, is_raw_response, raw_mode
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


def _begin(
    telemetry: Telemetry, spec: CallSpec, instance: Any, kwargs: dict[str, Any], stream_cls: type
) -> tuple[LLMCall | None, dict[str, Any], Any]:
    """(the call or None, the kwargs to send, the proxy built for a changed request or None)."""
    try:
        attributes, content = spec.read_request(instance, kwargs)
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed(f"reading {spec.operation} request")
        return None, kwargs, None
    call = start_call(telemetry, spec.operation, attributes, content)
    if call is None or spec.prepare is None:
        return call, kwargs, None
    try:
        changed = spec.prepare(kwargs)
        if changed is None:
            return call, kwargs, None
        # Only a request whose added chunks the proxy can hide is changed: no proxy, no change.
        proxy = stream_cls(None, call, NullAccumulator(), spec.hide_added)
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed(f"preparing {spec.operation} request")
        return call, kwargs, None
    return call, changed, proxy


def _complete(spec: CallSpec, call: LLMCall, kwargs: Mapping[str, Any], result: Any, stream_cls: type) -> Any:
    """Record a successful result of an unchanged request; return what the application gets."""
    try:
        if raw_mode(kwargs) is not None and is_raw_response(result):
            return complete_raw(spec, call, kwargs, result)
        acc = spec.stream_accumulator(kwargs, result, False) if spec.stream_accumulator is not None else None
        if acc is not None:
            return stream_cls(result, call, acc)
        spec.read_response(call, result)
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed(f"reading {spec.operation} response")
    call.end()
    return result


def _complete_changed(spec: CallSpec, call: LLMCall, kwargs: Mapping[str, Any], result: Any, proxy: Any) -> Any:
    """Record the result of a request ``prepare`` changed; the stream goes through ``proxy``."""
    acc: Accumulator | None
    try:
        acc = spec.stream_accumulator(kwargs, result, True) if spec.stream_accumulator is not None else None
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed(f"reading {spec.operation} response")
        acc = NullAccumulator()
    if acc is None:  # not a stream after all: nothing was added that needs hiding
        proxy._self_discard()
        try:
            spec.read_response(call, result)
        except Exception:  # noqa: BLE001 - swallowed() counts and logs it
            swallowed(f"reading {spec.operation} response")
        call.end()
        return result
    try:
        proxy._self_use(result, acc)
        return proxy
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed("attaching stream proxy")
    proxy._self_discard()
    call.end()
    return result


def sync_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if suppressed():
            return wrapped(*args, **kwargs)
        call, call_kwargs, proxy = _begin(telemetry, spec, instance, kwargs, SyncStream)
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.attach()
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            call.detach(token)
            if proxy is not None:
                proxy._self_discard()
            call.end(exc)
            raise
        call.detach(token)
        if proxy is not None:
            return _complete_changed(spec, call, call_kwargs, result, proxy)
        return _complete(spec, call, call_kwargs, result, SyncStream)

    return wrapper


def async_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        async def run() -> Any:
            if suppressed():
                return await wrapped(*args, **kwargs)
            call, call_kwargs, proxy = _begin(telemetry, spec, instance, kwargs, AsyncStream)
            if call is None:
                return await wrapped(*args, **kwargs)
            token = call.attach()
            try:
                result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                call.detach(token)
                if proxy is not None:
                    proxy._self_discard()
                call.end(exc)
                raise
            call.detach(token)
            if proxy is not None:
                return _complete_changed(spec, call, call_kwargs, result, proxy)
            return _complete(spec, call, call_kwargs, result, AsyncStream)

        return run()

    return wrapper
