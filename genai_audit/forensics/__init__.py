"""Forensic queries over the audit trail, the same from the embedded store and from Elasticsearch.

::

    from genai_audit.forensics import Filters, open_store

    with open_store("~/.local/share/genai-audit/audit.db") as store:   # or "https://es:9200"
        store.by_user("u-42", Filters(since_ns=...))                  # documents, oldest first
        store.query(Filters(feature="support-chat", error="rate.?limit", limit=20))
        store.by_token("[EMAIL:7f3a9c1e04b2]")                       # every call that mentioned it
        store.stats(by="model")                                       # latency, errors, cost
        store.timeline("s-17")                                        # a session, for replay

Both stores return the same documents (the serializer's shape) in the same order, and the
same statistics. See :class:`~genai_audit.forensics.model.Filters` for the criteria.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from genai_audit.forensics.base import AuditStore
from genai_audit.forensics.model import (
    GROUP_FIELDS,
    ErrorCount,
    Filters,
    GroupStats,
    QueryError,
    StatsReport,
    TextQuery,
)
from genai_audit.forensics.render import render_html, render_json, render_text
from genai_audit.forensics.sqlite import SqliteAuditStore
from genai_audit.forensics.timeline import Entry, Timeline, build_timeline
from genai_audit.store.sqlite import StoreError

if TYPE_CHECKING:
    from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

__all__ = [
    "GROUP_FIELDS",
    "AuditStore",
    "ElasticsearchAuditStore",
    "Entry",
    "ErrorCount",
    "Filters",
    "GroupStats",
    "QueryError",
    "SqliteAuditStore",
    "StatsReport",
    "StoreError",
    "TextQuery",
    "Timeline",
    "build_timeline",
    "open_store",
    "render_html",
    "render_json",
    "render_text",
]


def open_store(target: str | None = None, *, env: Mapping[str, str] | None = None) -> AuditStore:
    """The store ``target`` names: an SQLite file, or an Elasticsearch ``http(s)://`` URL.

    Without a target, ``GENAI_AUDIT_STORE`` decides, else the default SQLite file (as
    :func:`genai_audit.config.store_path` resolves it). Elasticsearch credentials, TLS
    settings and the namespace come from the ``GENAI_AUDIT_ES_*`` environment. Raises
    :class:`StoreError` when the store cannot be opened and
    :class:`genai_audit.config.ConfigError` for a bad setting.
    """
    from genai_audit.config import is_remote, store_path

    resolved = store_path(target, env, allow_remote=True)
    if is_remote(resolved):
        from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

        return ElasticsearchAuditStore(resolved, env=env)
    return SqliteAuditStore(resolved)


def __getattr__(name: str) -> Any:
    # The Elasticsearch client is imported only when that store is used.
    if name == "ElasticsearchAuditStore":
        from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

        return ElasticsearchAuditStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
