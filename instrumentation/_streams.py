"""Proxies around SDK streams that finish the call's span exactly once.

A stream can end in many ways: exhausted, failed mid-way, ``close()``d,
left through ``with``/``async with``, or dropped and garbage-collected
half-read. Each path calls :meth:`LLMCall.end`, which is idempotent; the
garbage-collection path is a ``weakref.finalize`` that holds the call, never
the stream. The application's own exception always propagates unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import wrapt

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import LLMCall, guarded


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


def _finish(call: LLMCall, acc: Accumulator, error: BaseException | None, completed: bool) -> None:
    with guarded("finishing stream"):
        call.set(sc.AUDIT_STREAM_COMPLETED, completed)
        acc.finish(call)
    with guarded("ending stream span"):
        call.end(error)


class _StreamBase(wrapt.ObjectProxy):  # type: ignore[type-arg]  # generic only in wrapt's stubs
    def __init__(self, wrapped: Any, call: LLMCall, acc: Accumulator, hide: Hider | None = None) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = acc
        self._self_hide = hide
        self._self_finalizer = weakref.finalize(self, _finish, call, acc, None, False)

    def _self_done(self, error: BaseException | None, completed: bool) -> None:
        self._self_finalizer.detach()
        _finish(self._self_call, self._self_acc, error, completed)

    def _self_feed(self, chunk: Any) -> bool:
        """Record one chunk; True when the application must not see it.

        Hiding is decided apart from recording, so a failure while recording can
        never let a chunk we asked for reach the application.
        """
        with guarded("timing stream chunk"):
            self._self_call.mark_first_chunk()
        with guarded("reading stream chunk"):
            self._self_acc.feed(chunk)
        if self._self_hide is None:
            return False
        try:
            return self._self_hide(chunk)
        except Exception:  # noqa: BLE001 - a chunk we cannot judge is shown
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
            if not self._self_feed(chunk):
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
            if not self._self_feed(chunk):
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
