"""Forensic queries over the embedded SQLite store.

Exact criteria use the store's indexed columns; the full-text search uses the FTS5 index and
pseudonym tokens the token index (both filled by a trigger, see
:func:`genai_audit.store.sqlite.ensure_search_indexes`). A store that has neither and cannot
be given them (opened read-only) still answers token look-ups, by reading every document's
token list; only the full-text search is unavailable then.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from genai_audit import semconv as sc
from genai_audit.forensics.base import AuditStore, Document, SpanKey
from genai_audit.forensics.model import LATENCY_PERCENTILE, Filters, GroupStats, number, percentile
from genai_audit.store.sqlite import (
    TEXT_INDEX,
    TOKEN_INDEX,
    StoreError,
    connect,
    ensure_search_indexes,
    has_search_indexes,
)

#: span attribute -> indexed column of ``spans``
_COLUMN_OF = {
    sc.ENDUSER_ID: "user_id",
    sc.SESSION_ID: "session_id",
    sc.AUDIT_FEATURE: "feature",
    sc.REQUEST_MODEL: "model",
    sc.AUDIT_REQUEST_ID: "request_id",
    sc.ERROR_TYPE: "error_type",
}
_TOKENS_PATH = f'$.attributes."{sc.AUDIT_PII_TOKENS}"'


def _attribute_sql(attribute: str) -> str:
    """One attribute of the stored document (NULL for a document SQLite cannot read as JSON)."""
    return f"CASE WHEN json_valid(spans.doc) THEN json_extract(spans.doc, '$.attributes.\"{attribute}\"') END"


class SqliteAuditStore(AuditStore):
    """The embedded store at ``path`` (it must exist).

    Opening it adds the search indexes if the store predates them. With ``read_only`` the
    file is opened read-only and never written, not even for that: token look-ups then read
    every document's token list, and the full-text search needs a store that has its index.
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._conn = _open_read_only(self.path) if read_only else connect(self.path, create=False)
        try:
            self.indexed = has_search_indexes(self._conn) if read_only else ensure_search_indexes(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"cannot read audit store {self.path}: {exc}") from None

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._conn.close()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, list(params))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read audit store {self.path}: {exc}") from None

    # -- criteria -----------------------------------------------------------------------------------

    def _where(self, filters: Filters) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for attribute, value in filters.exact_terms().items():
            clauses.append(f"spans.{_COLUMN_OF[attribute]} = ?")
            params.append(value)
        if filters.trace_id is not None:
            clauses.append("spans.trace_id = ?")
            params.append(filters.trace_id)
        if filters.errors_only:
            clauses.append("(spans.status = 'Error' OR spans.error_type IS NOT NULL)")
        if filters.since_ns is not None:
            clauses.append("spans.start_ns >= ?")
            params.append(filters.since_ns)
        if filters.until_ns is not None:
            clauses.append("spans.start_ns < ?")
            params.append(filters.until_ns)
        if filters.token is not None:
            if self.indexed:
                clauses.append(f"spans.seq IN (SELECT span_seq FROM {TOKEN_INDEX} WHERE token = ?)")
            else:
                clauses.append(
                    "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(spans.doc) THEN spans.doc ELSE '{}' END, "
                    f"'{_TOKENS_PATH}') WHERE value = ?)"
                )
            params.append(filters.token)
        text = filters.text_query
        if text is not None:
            if not self.indexed:
                raise StoreError(
                    f"audit store {self.path} has no full-text index and cannot be given one here "
                    "(read-only, or this SQLite lacks FTS5); open it once where it is writable"
                )
            clauses.append(f"spans.seq IN (SELECT rowid FROM {TEXT_INDEX} WHERE {TEXT_INDEX} MATCH ?)")
            params.append(text.fts5())
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    # -- documents ------------------------------------------------------------------------------------

    def _documents(self, filters: Filters, *, limit: int | None) -> Iterator[Document]:
        where, params = self._where(filters)
        direction = "DESC" if filters.newest_first else "ASC"
        sql = (
            f"SELECT doc FROM spans{where} ORDER BY spans.start_ns {direction}, spans.trace_id {direction}, "
            f"spans.span_id {direction}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for (doc,) in self._execute(sql, params):
            yield json.loads(doc)

    def events(self, docs: Iterable[Mapping[str, Any]]) -> dict[SpanKey, list[Document]]:
        found: dict[SpanKey, list[Document]] = {}
        for doc in docs:
            key = (str(doc["trace_id"]), str(doc["span_id"]))
            if key in found:
                continue
            rows = self._execute(
                "SELECT doc FROM span_events WHERE trace_id = ? AND span_id = ? ORDER BY seq", key
            ).fetchall()
            if rows:
                found[key] = [json.loads(text) for (text,) in rows]
        return found

    # -- aggregates -----------------------------------------------------------------------------------

    def _group_stats(self, field: str | None, filters: Filters, top_errors: int) -> tuple[list[GroupStats], GroupStats]:
        where, params = self._where(filters)
        group = f"spans.{_COLUMN_OF[field]}" if field else "NULL"
        sql = (
            f"SELECT {group}, spans.duration_ns, spans.status, spans.error_type, "
            f"{_attribute_sql(sc.USAGE_COST_USD)}, {_attribute_sql(sc.USAGE_INPUT_TOKENS)}, "
            f"{_attribute_sql(sc.USAGE_OUTPUT_TOKENS)} FROM spans{where}"
        )
        groups: dict[str | None, _Tally] = defaultdict(_Tally)
        total = _Tally()
        for key, duration, status, error_type, cost, tokens_in, tokens_out in self._execute(sql, params):
            row = (int(duration), status == "Error", error_type, number(cost), number(tokens_in), number(tokens_out))
            total.add(*row)
            if field:
                groups[key].add(*row)
        return (
            [tally.result(key, top_errors) for key, tally in groups.items()],
            total.result(None, top_errors),
        )

    def _sessions(self, filters: Filters) -> list[dict[str, Any]]:
        where, params = self._where(filters)
        where = (where + " AND" if where else " WHERE") + " spans.session_id IS NOT NULL"
        rows = self._execute(
            "SELECT session_id, MIN(start_ns), MAX(start_ns + duration_ns), COUNT(*), "
            "json_group_array(DISTINCT user_id), json_group_array(DISTINCT model), "
            f"SUM(CASE WHEN status = 'Error' THEN 1 ELSE 0 END) FROM spans{where} GROUP BY session_id",
            params,
        )
        return [
            {
                "session_id": session,
                "first_ns": first,
                "last_ns": last,
                "calls": calls,
                "users": sorted(u for u in json.loads(users) if u is not None),
                "models": sorted(m for m in json.loads(models) if m is not None),
                "errors": errors,
            }
            for session, first, last, calls, users, models, errors in rows
        ]


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise StoreError(f"no audit store at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("SELECT 1 FROM spans LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open audit store {path}: {exc}") from None
    return conn


class _Tally:
    """One group's raw values; :meth:`result` applies the shared definitions."""

    def __init__(self) -> None:
        self.durations: list[int] = []
        self.errors = 0
        self.error_types: Counter[str] = Counter()
        self.costs: list[float] = []
        self.tokens_in = 0
        self.tokens_out = 0

    def add(
        self,
        duration: int,
        failed: bool,
        error_type: str | None,
        cost: float | None,
        tokens_in: float | None,
        tokens_out: float | None,
    ) -> None:
        self.durations.append(duration)
        if failed:
            self.errors += 1
            if error_type is not None:
                self.error_types[error_type] += 1
        if cost is not None:
            self.costs.append(float(cost))
        self.tokens_in += int(tokens_in or 0)
        self.tokens_out += int(tokens_out or 0)

    def result(self, key: str | None, top_errors: int) -> GroupStats:
        durations = sorted(self.durations)
        calls = len(durations)
        return GroupStats.build(
            key,
            calls=calls,
            errors=self.errors,
            latency_avg_ns=sum(durations) / calls if calls else None,
            latency_p95_ns=percentile(durations, LATENCY_PERCENTILE),
            cost_calls=len(self.costs),
            cost_sum=math.fsum(self.costs) if self.costs else None,
            cost_max=max(self.costs) if self.costs else None,
            input_tokens=self.tokens_in,
            output_tokens=self.tokens_out,
            error_types=self.error_types.items(),
            top=top_errors,
        )
