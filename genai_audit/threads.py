"""Carry the OpenTelemetry context (and so the audit context) into threads.

``threading.Thread`` and ``ThreadPoolExecutor.submit`` do not copy context
variables; without this, an LLM call made from a worker thread loses the
user and session it was made for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import context as otel_context
from wrapt import wrap_function_wrapper

_installed = False


def _start(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    instance._genai_audit_context = otel_context.get_current()
    return wrapped(*args, **kwargs)


def _run(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    ctx = getattr(instance, "_genai_audit_context", None)
    if ctx is None:
        return wrapped(*args, **kwargs)
    token = otel_context.attach(ctx)
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


def _in_context(ctx: otel_context.Context, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return run


def _submit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args:
        return wrapped(*args, **kwargs)
    fn, *rest = args
    return wrapped(_in_context(otel_context.get_current(), fn), *rest, **kwargs)


def install() -> None:
    """Patch Thread and ThreadPoolExecutor once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    wrap_function_wrapper(threading.Thread, "start", _start)
    wrap_function_wrapper(threading.Thread, "run", _run)
    wrap_function_wrapper(ThreadPoolExecutor, "submit", _submit)
