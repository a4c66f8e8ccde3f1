"""Where audit records are kept: the embedded SQLite store (default)."""

from genai_audit.store.sqlite import Query, SqliteSpanExporter, StoreError

__all__ = ["Query", "SqliteSpanExporter", "StoreError"]
