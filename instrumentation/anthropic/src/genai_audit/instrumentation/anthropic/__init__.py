"""Instrumentation for the ``anthropic`` Python SDK.

``messages.create`` (sync, async, ``stream=True``) and the ``messages.stream(...)``
context manager, and the same methods of ``beta.messages``, each become one CLIENT span with the OpenTelemetry GenAI
attributes and the audit context; unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false``, the system prompt,
every message (tool use and tool results included), the tool definitions and
the full response are recorded in message-parts JSON after the processing
chain (redaction) has run on them.

Captured content is sensitive: it holds whatever users typed.

Usage::

    from genai_audit.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument(tracer_provider=provider)
"""

from __future__ import annotations

from genai_audit import semconv as sc
from genai_audit.instrumentation._core import Telemetry
from genai_audit.instrumentation._patching import Target
from genai_audit.instrumentation._streams import async_helper_close_wrapper, helper_close_wrapper
from genai_audit.instrumentation._wrappers import CallSpec, async_wrapper, sync_wrapper
from genai_audit.instrumentation.anthropic import _extract, _managers
from genai_audit.instrumentation.anthropic.package import _instruments
from genai_audit.instrumentation.instrumentor import AuditInstrumentor

__all__ = ["AnthropicInstrumentor"]

SPEC = CallSpec(sc.OP_CHAT, _extract.read_request, _extract.read_response, _extract.stream_accumulator)


def targets(telemetry: Telemetry) -> list[Target]:
    found: list[Target] = []
    # client.messages and client.beta.messages (a module of its own since 0.3x; a package in newer SDKs)
    for module in ("anthropic.resources.messages", "anthropic.resources.beta.messages.messages",
                   "anthropic.resources.beta.messages"):
        found += [
            (module, "Messages.create", sync_wrapper(telemetry, SPEC)),
            (module, "AsyncMessages.create", async_wrapper(telemetry, SPEC)),
            (module, "Messages.stream", _managers.manager_wrapper(telemetry, _managers.SyncManager)),
            (module, "AsyncMessages.stream", _managers.manager_wrapper(telemetry, _managers.AsyncManager)),
        ]
    # The MessageStream of messages.stream(...) reads our proxy; in older releases (0.30 among them) its close()
    # (which its manager's exit calls) closes only the HTTP response: it must end the span too.
    for module, helper in (
        ("anthropic.lib.streaming._messages", "MessageStream"),
        ("anthropic.lib.streaming._beta_messages", "BetaMessageStream"),
    ):
        found.append((module, f"{helper}.close", helper_close_wrapper))
    for module, helper in (
        ("anthropic.lib.streaming._messages", "AsyncMessageStream"),
        ("anthropic.lib.streaming._beta_messages", "BetaAsyncMessageStream"),
    ):
        found.append((module, f"{helper}.close", async_helper_close_wrapper))
    return found


class AnthropicInstrumentor(AuditInstrumentor):
    """Instruments the ``anthropic`` SDK; ``instrument()`` takes the same options as
    :class:`genai_audit.instrumentation.openai.OpenAIInstrumentor`."""

    instruments = _instruments
    scope = "genai_audit.instrumentation.anthropic"

    def targets(self, telemetry: Telemetry) -> list[Target]:
        return targets(telemetry)
