"""``opentelemetry-instrument`` integration: a distro and a configurator.

Under ``opentelemetry-instrument python app.py`` the configurator builds the
audit pipeline from environment variables (store, capture switch, limits);
the instrumentors themselves are loaded through their
``opentelemetry_instrumentor`` entry points. When another configurator is
installed too (for example ``opentelemetry-distro``'s), pick ours with
``OTEL_PYTHON_CONFIGURATOR=genai_audit``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator


class AuditDistro(BaseDistro):  # type: ignore[misc]  # untyped base
    """Loads instrumentors as the default distro does; the configurator does the rest."""

    def _configure(self, **kwargs: Any) -> None:
        return None


class AuditConfigurator(_BaseConfigurator):
    """Configures the audit pipeline without instrumenting (``opentelemetry-instrument`` does that)."""

    def _configure(self, **kwargs: Any) -> None:
        from genai_audit.bootstrap import configure

        configure(instrument=False)
