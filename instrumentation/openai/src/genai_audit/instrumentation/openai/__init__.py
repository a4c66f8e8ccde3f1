"""Instrumentation for the ``openai`` Python SDK (1.x to 3.x).

Each call to ``chat.completions.create``/``parse`` (sync and async, streaming
or not, and through ``chat.completions.stream``), ``embeddings.create`` and
``responses.create``/``stream`` becomes one CLIENT span with the OpenTelemetry
GenAI attributes, the audit context, and — unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false`` — the full prompt
chain and response in message-parts JSON, after the processing chain
(redaction) has run on them.

Captured content is sensitive: it holds whatever users typed.

Usage::

    from genai_audit.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)

For streams, the request asks the API for the final usage chunk
(``stream_options.include_usage``) unless the caller decided about it; that
chunk is consumed here and never reaches the application.
Set ``GENAI_AUDIT_OPENAI_STREAM_USAGE=false`` to leave requests untouched.
"""

from __future__ import annotations

from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.instrumentation._core import Telemetry
from genai_audit.instrumentation._patching import Target
from genai_audit.instrumentation._streams import async_helper_close_wrapper, helper_close_wrapper
from genai_audit.instrumentation._wrappers import CallSpec, async_wrapper, sync_wrapper
from genai_audit.instrumentation.instrumentor import AuditInstrumentor
from genai_audit.instrumentation.openai import _accumulate, _extract
from genai_audit.instrumentation.openai.package import _instruments

__all__ = ["OpenAIInstrumentor"]


def _specs(settings: Settings) -> dict[str, CallSpec]:
    return {
        "chat": CallSpec(
            sc.OP_CHAT,
            _extract.read_chat_request,
            _extract.read_chat_response,
            _accumulate.chat_accumulator,
            _accumulate.with_stream_usage if settings.openai_stream_usage else None,
            _accumulate.undo_stream_usage,
        ),
        "embeddings": CallSpec(sc.OP_EMBEDDINGS, _extract.read_embeddings_request, _extract.read_embeddings_response),
        "responses": CallSpec(
            sc.OP_CHAT,
            _extract.read_responses_request,
            _extract.read_responses_response,
            _accumulate.responses_accumulator,
        ),
    }


def targets(telemetry: Telemetry) -> list[Target]:
    specs = _specs(telemetry.settings)
    chat_modules = ("openai.resources.chat.completions", "openai.resources.beta.chat.completions")
    found: list[Target] = []
    for module in chat_modules:
        for method in ("create", "parse"):
            found.append((module, f"Completions.{method}", sync_wrapper(telemetry, specs["chat"])))
            found.append((module, f"AsyncCompletions.{method}", async_wrapper(telemetry, specs["chat"])))
    embeddings = "openai.resources.embeddings"
    found.append((embeddings, "Embeddings.create", sync_wrapper(telemetry, specs["embeddings"])))
    found.append((embeddings, "AsyncEmbeddings.create", async_wrapper(telemetry, specs["embeddings"])))
    for method in ("create", "parse"):
        found.append(("openai.resources.responses", f"Responses.{method}", sync_wrapper(telemetry, specs["responses"])))
        found.append(
            ("openai.resources.responses", f"AsyncResponses.{method}", async_wrapper(telemetry, specs["responses"]))
        )
    # The helper streams of chat.completions.stream(...) and responses.stream(...) read our
    # proxy, but close only the HTTP response: their close() must end the span too.
    for module, helper in (
        ("openai.lib.streaming.chat._completions", "ChatCompletionStream"),
        ("openai.lib.streaming.responses._responses", "ResponseStream"),
    ):
        found.append((module, f"{helper}.close", helper_close_wrapper))
        found.append((module, f"Async{helper}.close", async_helper_close_wrapper))
    return found


class OpenAIInstrumentor(AuditInstrumentor):
    """Instruments the ``openai`` SDK; see the module docstring.

    ``instrument()`` accepts ``tracer_provider``, ``meter_provider``,
    ``settings`` (a :class:`genai_audit.config.Settings`, default from the
    environment) and ``chain`` (the processing chain run on content).
    """

    instruments = _instruments
    scope = "genai_audit.instrumentation.openai"

    def targets(self, telemetry: Telemetry) -> list[Target]:
        return targets(telemetry)
