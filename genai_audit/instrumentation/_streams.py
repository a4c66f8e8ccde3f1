"""Proxies around SDK streams that finish the call's span exactly once.

A stream can end in many ways: exhausted, failed mid-way, ``close()``d,
left through ``with``/``async with``, or dropped and garbage-collected
half-read. Each path calls :meth:`LLMCall.end`, which is idempotent; the
garbage-collection path is a ``weakref.finalize`` that holds the call, never
the stream. The application's own exception always propagates unchanged.

Each chunk costs one call into the accumulator inside one ``try``; the
accumulator keeps what the chunk says, and the attributes and content are
built once, when the span ends.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import wrapt

from genai_audit.instrumentation._core import LLMCall, swallowed


class Accumulator(Protocol):
    """Collects what a stream's chunks say, and writes it onto the call at the end."""

    def feed(self, chunk: Any) -> None: ...

    def finish(self, call: LLMCall) -> None: ...


class NullAccumulator:
    """Stands in when building the real accumulator failed: the stream still passes through."""

    def feed(self, chunk: Any) -> None:
        return None

    def finish(self, call: LLMCall) -> None:
        return None


#: Decides whether a chunk exists only because our request change asked for it.
Hider = Callable[[Any], bool]


class _StreamBase(wrapt.ObjectProxy):  # type: ignore[type-arg]  # generic only in wrapt's stubs
    def __init__(self, wrapped: Any, call: LLMCall, acc: Accumulator, hide: Hider | None = None) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_feed = acc.feed
        self._self_hide = hide
        self._self_waiting = True  # for the first chunk
        #: when each chunk shown to the application arrived (None: not recorded)
        self._self_times: list[float] | None = None
        if call.telemetry.time_per_output_chunk is not None:
            self._self_times = call.chunk_times = []
        call.accumulator = acc
        self._self_finalizer = weakref.finalize(self, call.end)

    def _self_use(self, wrapped: Any, acc: Accumulator) -> None:
        """Point a proxy built before the request at the stream the request returned."""
        self._self_call.accumulator = acc
        self._self_feed = acc.feed
        self.__wrapped__ = wrapped

    def _self_discard(self) -> None:
        """Forget a proxy that is not used: its finalizer must not end the span."""
        try:
            self._self_finalizer.detach()
            self._self_call.accumulator = None
        except Exception:  # noqa: BLE001 - swallowed() counts and logs it
            swallowed("discarding stream proxy")

    def _self_done(self, error: BaseException | None, completed: bool) -> None:
        try:
            self._self_finalizer.detach()
            self._self_call.end(error, completed)
        except Exception:  # noqa: BLE001 - swallowed() counts and logs it
            swallowed("ending stream span")

    def _self_first(self) -> None:
        self._self_waiting = False
        try:
            self._self_call.mark_first_chunk()
        except Exception:  # noqa: BLE001 - swallowed() counts and logs it
            swallowed("timing stream chunk")

    def _self_hidden(self, chunk: Any) -> bool:
        """Whether the application must not see ``chunk``; a chunk we cannot judge is shown."""
        hide = self._self_hide
        try:
            return hide is not None and bool(hide(chunk))
        except Exception:  # noqa: BLE001 - showing it is what the application would get without us
            return False


class SyncStream(_StreamBase):
    """Proxy for a synchronous SDK stream (``Stream`` or an SDK stream manager's stream)."""

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                self._self_done(None, True)
                raise
            except BaseException as exc:
                self._self_done(exc, False)
                raise
            # Recording a chunk never decides whether it is shown: hiding is judged apart,
            # so a failure while recording cannot let a chunk we asked for through.
            if self._self_waiting:
                self._self_first()
            try:
                self._self_feed(chunk)
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("reading stream chunk")
            if self._self_hide is None or not self._self_hidden(chunk):
                if self._self_times is not None:
                    self._self_times.append(time.perf_counter())
                return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_done(None, False)

    def __enter__(self) -> SyncStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_done(None, False)


class AsyncStream(_StreamBase):
    """Proxy for an asynchronous SDK stream."""

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_done(None, True)
                raise
            except BaseException as exc:
                self._self_done(exc, False)
                raise
            if self._self_waiting:
                self._self_first()
            try:
                self._self_feed(chunk)
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("reading stream chunk")
            if self._self_hide is None or not self._self_hidden(chunk):
                if self._self_times is not None:
                    self._self_times.append(time.perf_counter())
                return chunk

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_done(None, False)

    async def aclose(self) -> None:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            await closer()
        finally:
            self._self_done(None, False)

    async def __aenter__(self) -> AsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_done(None, False)


def end_inner_stream(helper: Any) -> None:
    """An SDK helper stream around one of our proxies was closed: end the proxy's span now.

    SDK helper streams (``chat.completions.stream(...)``, ``responses.stream(...)``)
    read our proxy as their raw stream, but their ``close()`` closes only the
    HTTP response, which the proxy would not otherwise notice.
    """
    try:
        inner = getattr(helper, "_raw_stream", None)
        if isinstance(inner, _StreamBase):
            inner._self_done(None, False)
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed("ending a helper stream's span")


def helper_close_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps a sync SDK helper stream's ``close()`` (its ``__exit__`` and its manager's call it)."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        end_inner_stream(instance)


def async_helper_close_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps an async SDK helper stream's ``close()``."""

    async def run() -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            end_inner_stream(instance)

    return run()
