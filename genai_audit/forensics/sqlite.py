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
from genai_audit.forensics.model import LATENCY_PERCENTILE, Filters, GroupStats, percentile
from genai_audit.store.sqlite import (
    METRIC_COLUMNS,
    TEXT_INDEX,
    TOKEN_INDEX,
    StoreError,
    connect,
    ensure_search_indexes,
    ensure_stats_index,
    has_metric_columns,
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
            self.metric_columns = has_metric_columns(self._conn)
            if self.metric_columns and not read_only:
                ensure_stats_index(self._conn)
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
        # Counts and sums in SQL, over the narrow columns only, so that SQLite answers from the
        # covering ``spans_stats`` index without reading a document; the p95 needs every duration,
        # which Python sorts per group. Rows stored before the metric columns existed (NULL in all
        # three) get their cost and tokens from their documents, in a second pass.
        where, params = self._where(filters)
        # "+": the column is not to pick the index; the covering spans_stats index answers faster
        group = f"+spans.{_COLUMN_OF[field]}" if field else "NULL"
        is_number = "typeof({0}) IN ('integer', 'real')"
        cost_ok = is_number.format("c")
        metric_sums = (
            f"SUM({cost_ok}), SUM(CASE WHEN {cost_ok} THEN c END), MAX(CASE WHEN {cost_ok} THEN c END), "
            f"SUM(CASE WHEN {is_number.format('ti')} THEN CAST(ti AS INTEGER) ELSE 0 END), "
            f"SUM(CASE WHEN {is_number.format('tout')} THEN CAST(tout AS INTEGER) ELSE 0 END)"
        )
        aliases = ("c", "ti", "tout")
        if self.metric_columns:
            columns = ", ".join(f"spans.{name} AS {alias}" for name, alias in zip(METRIC_COLUMNS, aliases))
        else:
            columns = ", ".join(f"NULL AS {alias}" for alias in aliases)
        rows = f"SELECT {group} AS g, spans.duration_ns AS d, spans.status AS s, {columns} FROM spans{where}"
        parts: dict[str | None, list[tuple[Any, ...]]] = defaultdict(list)
        for key, *values in self._execute(
            f"SELECT g, COUNT(*), SUM(s = 'Error'), SUM(d), {metric_sums} FROM ({rows}) GROUP BY g", params
        ):
            parts[key].append(tuple(values))
        older = (where + " AND" if where else " WHERE") + " " + " AND ".join(
            f"spans.{name} IS NULL" for name in METRIC_COLUMNS
        )
        if not self.metric_columns:
            older = where
        from_docs = ", ".join(
            f"{_attribute_sql(attribute)} AS {alias}"
            for (_kind, attribute), alias in zip(METRIC_COLUMNS.values(), aliases)
        )
        for key, *values in self._execute(
            f"SELECT g, {metric_sums} FROM (SELECT {group} AS g, {from_docs} FROM spans{older}) GROUP BY g",
            params,
        ):
            if values[0]:
                parts[key].append((0, 0, 0, *values))
        errors: dict[str | None, Counter[str]] = defaultdict(Counter)
        failed = (where + " AND" if where else " WHERE") + " spans.status = 'Error' AND spans.error_type IS NOT NULL"
        for key, error_type, count in self._execute(
            f"SELECT {group}, spans.error_type, COUNT(*) FROM spans{failed} GROUP BY 1, 2", params
        ):
            errors[key][str(error_type)] += int(count)
        durations: dict[str | None, list[int]] = defaultdict(list)
        for key, duration in self._execute(f"SELECT {group}, spans.duration_ns FROM spans{where}", params):
            durations[key].append(int(duration))

        def stats(key: str | None, parts: list[tuple[Any, ...]], spread: list[int], kinds: Counter[str]) -> GroupStats:
            calls = sum(int(p[0]) for p in parts)
            cost_calls = sum(int(p[3] or 0) for p in parts)
            cost_sums = [float(p[4]) for p in parts if p[4] is not None]
            cost_maxima = [float(p[5]) for p in parts if p[5] is not None]
            spread.sort()
            return GroupStats.build(
                key,
                calls=calls,
                errors=sum(int(p[1] or 0) for p in parts),
                latency_avg_ns=sum(int(p[2] or 0) for p in parts) / calls if calls else None,
                latency_p95_ns=percentile(spread, LATENCY_PERCENTILE),
                cost_calls=cost_calls,
                cost_sum=math.fsum(cost_sums) if cost_calls else None,
                cost_max=max(cost_maxima) if cost_maxima else None,
                input_tokens=sum(int(p[6] or 0) for p in parts),
                output_tokens=sum(int(p[7] or 0) for p in parts),
                error_types=kinds.items(),
                top=top_errors,
            )

        everything = [d for spread in durations.values() for d in spread]
        all_errors: Counter[str] = Counter()
        for kinds in errors.values():
            all_errors.update(kinds)
        total = stats(None, [part for group_parts in parts.values() for part in group_parts], everything, all_errors)
        if not field:
            return [], total
        return [stats(key, group_parts, durations[key], errors[key]) for key, group_parts in parts.items()], total

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
