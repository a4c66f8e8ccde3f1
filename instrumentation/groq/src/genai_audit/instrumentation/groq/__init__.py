"""Instrumentation for the ``groq`` Python SDK.

Each call to ``chat.completions.create`` (sync and async, streaming or not,
and through ``with_raw_response`` / ``with_streaming_response``) becomes one
CLIENT span with ``gen_ai.provider.name = "groq"``, the OpenTelemetry GenAI
attributes and the audit context, and — unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false`` — the prompt chain
and the answer in message-parts JSON after the processing chain (redaction) has
run on them. Requests are never changed: the Groq API reports a stream's usage
in ``x_groq`` on its final chunk without being asked.

Captured content is sensitive: it holds whatever users typed.

Usage::

    from genai_audit.instrumentation.groq import GroqInstrumentor
    GroqInstrumentor().instrument(tracer_provider=provider)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import Telemetry
from genai_audit.instrumentation._parts import get
from genai_audit.instrumentation._patching import Target
from genai_audit.instrumentation._wrappers import CallSpec, async_wrapper, sync_wrapper
from genai_audit.instrumentation.groq.package import _instruments
from genai_audit.instrumentation.instrumentor import AuditInstrumentor
from genai_audit.instrumentation.openai import _accumulate, _extract

__all__ = ["GroqInstrumentor"]

PROVIDER = "groq"


def read_request(instance: Any, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAI reading of the request, for the ``groq`` provider whatever the endpoint."""
    attributes, content = _extract.read_chat_request(instance, kwargs)
    attributes[sc.PROVIDER_NAME] = PROVIDER
    return attributes, content


class GroqChatAccumulator(_accumulate.ChatAccumulator):
    """The OpenAI chunk reading, plus the usage the Groq API sends in ``x_groq`` on the final chunk."""

    def feed(self, chunk: Any) -> None:
        super().feed(chunk)
        usage = get(get(chunk, "x_groq"), "usage")
        if usage is not None:
            self.usage = usage


SPEC = CallSpec(
    sc.OP_CHAT,
    read_request,
    _extract.read_chat_response,
    functools.partial(_accumulate.chat_accumulator, factory=GroqChatAccumulator),
)


def targets(telemetry: Telemetry) -> list[Target]:
    module = "groq.resources.chat.completions"
    return [
        (module, "Completions.create", sync_wrapper(telemetry, SPEC)),
        (module, "AsyncCompletions.create", async_wrapper(telemetry, SPEC)),
    ]


class GroqInstrumentor(AuditInstrumentor):
    """Instruments the ``groq`` SDK; ``instrument()`` takes the same options as
    :class:`genai_audit.instrumentation.openai.OpenAIInstrumentor`."""

    instruments = _instruments
    scope = "genai_audit.instrumentation.groq"

    def targets(self, telemetry: Telemetry) -> list[Target]:
        return targets(telemetry)
