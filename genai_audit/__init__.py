"""genai-audit: an OpenTelemetry audit trail for every LLM call.

Public API::

    import genai_audit
    genai_audit.configure()                      # pipeline from environment variables
    with genai_audit.context(user_id="u-1", session_id="s-1", feature="chat"):
        ...                                      # LLM calls here carry the audit context

Importing this package is cheap; the heavy parts load on first use.

``genai_audit.processors`` and each ``genai_audit.instrumentation.<library>``
come from distributions of their own (``processors/``, ``instrumentation/<library>/``
in the source tree); ``__path__`` is extended so that they are found wherever
each is installed, editable or not.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from genai_audit.audit_context import AuditContext, context, current, from_headers
    from genai_audit.bootstrap import configure, shutdown

__all__ = ["AuditContext", "__version__", "configure", "context", "current", "from_headers", "shutdown"]


def __getattr__(name: str) -> Any:
    if name in {"AuditContext", "context", "current", "from_headers"}:
        from genai_audit import audit_context

        value = getattr(audit_context, name)
    elif name in {"configure", "shutdown"}:
        from genai_audit import bootstrap

        value = getattr(bootstrap, name)
    else:
        raise AttributeError(f"module 'genai_audit' has no attribute {name!r}")
    globals()[name] = value
    return value
