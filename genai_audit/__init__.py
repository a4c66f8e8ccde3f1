"""genai-audit: an OpenTelemetry audit trail for every LLM call.

Public API::

    import genai_audit
    genai_audit.configure()                      # pipeline from environment variables
    with genai_audit.context(user_id="u-1", session_id="s-1", feature="chat"):
        ...                                      # LLM calls here carry the audit context

Importing this package is cheap; the heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
