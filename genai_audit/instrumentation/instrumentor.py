"""The base of every genai-audit instrumentor: a library's instrumentor names its versions and its targets.

``instrument()`` accepts ``tracer_provider``, ``meter_provider``, ``settings``
(a :class:`genai_audit.config.Settings`, default from the environment) and
``chain`` (the processing chain run on content); ``uninstrument()`` restores the
library's methods and records pending metric points.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from genai_audit.config import Settings
from genai_audit.instrumentation._core import Telemetry, flush_metrics
from genai_audit.instrumentation._patching import Target, unwrap_all, wrap_all


class AuditInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # untyped base
    """Subclasses set ``instruments`` (the supported library versions) and ``scope`` and define ``targets``."""

    #: requirement strings of the supported library versions
    instruments: tuple[str, ...] = ()
    #: the instrumentation scope name of the spans and metrics
    scope = "genai_audit.instrumentation"
    _wrapped: list[Any]

    def targets(self, telemetry: Telemetry) -> list[Target]:
        """(module, "Class.method", wrapper) for every method to wrap."""
        raise NotImplementedError

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = Telemetry(
            self.scope,
            kwargs.get("settings") or Settings.from_env(),
            kwargs.get("chain"),
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
        )
        self._wrapped = wrap_all(self.targets(telemetry))

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap_all(getattr(self, "_wrapped", []))
        self._wrapped = []
        flush_metrics()
