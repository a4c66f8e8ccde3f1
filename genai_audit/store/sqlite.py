"""The embedded default store: one SQLite file, no server.

* WAL journal with ``synchronous=FULL``: when :meth:`SqliteSpanExporter.export`
  returns SUCCESS the batch is on disk.
* Append-only: triggers refuse UPDATE and DELETE, and a span id already stored
  is ignored, so a retried batch can never duplicate a record.
* One row per span holding the OTel-native document (:mod:`genai_audit.serialize`)
  plus indexed columns for the forensic look-ups (user, session, feature,
  model, correlation id, error, time).
* The file holds prompts and responses: it is created owner-only (0600) in an
  owner-only directory.
"""

from __future__ import annotations

import calendar
import functools
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from genai_audit import semconv as sc
from genai_audit.integrity import Sealer, sealer_for, sqlite_store_name
from genai_audit.serialize import event_documents, span_document

logger = logging.getLogger("genai_audit.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    duration_ns INTEGER NOT NULL,
    user_id TEXT,
    session_id TEXT,
    feature TEXT,
    model TEXT,
    provider TEXT,
    operation TEXT,
    request_id TEXT,
    error_type TEXT,
    status TEXT,
    cost_usd REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    doc TEXT NOT NULL,
    UNIQUE (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_time ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id, start_ns);
CREATE INDEX IF NOT EXISTS spans_user ON spans (user_id, start_ns);
CREATE INDEX IF NOT EXISTS spans_feature ON spans (feature, start_ns);
CREATE INDEX IF NOT EXISTS spans_model ON spans (model, start_ns);
CREATE INDEX IF NOT EXISTS spans_request ON spans (request_id);
CREATE INDEX IF NOT EXISTS spans_error ON spans (error_type, start_ns);
CREATE TABLE IF NOT EXISTS span_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS span_events_span ON span_events (trace_id, span_id);
CREATE TRIGGER IF NOT EXISTS spans_no_update BEFORE UPDATE ON spans
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS spans_no_delete BEFORE DELETE ON spans
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS span_events_no_update BEFORE UPDATE ON span_events
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS span_events_no_delete BEFORE DELETE ON span_events
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
"""

_COLUMNS = {
    "user_id": sc.ENDUSER_ID,
    "session_id": sc.SESSION_ID,
    "feature": sc.AUDIT_FEATURE,
    "model": sc.REQUEST_MODEL,
    "provider": sc.PROVIDER_NAME,
    "operation": sc.OPERATION_NAME,
    "request_id": sc.AUDIT_REQUEST_ID,
    "error_type": sc.ERROR_TYPE,
}


#: Numeric columns the statistics add up without reading the documents (``genai-audit stats``).
#: A store made before they existed gets them on its next write; its older rows hold NULL in all
#: three, and readers take those rows' values from the document instead.
METRIC_COLUMNS = {
    "cost_usd": ("REAL", sc.USAGE_COST_USD),
    "input_tokens": ("INTEGER", sc.USAGE_INPUT_TOKENS),
    "output_tokens": ("INTEGER", sc.USAGE_OUTPUT_TOKENS),
}


def has_metric_columns(conn: sqlite3.Connection) -> bool:
    names = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
    return set(METRIC_COLUMNS) <= names


#: Everything the statistics read, so that they scan this index instead of the documents.
STATS_INDEX = "spans_stats"
_STATS_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {STATS_INDEX} ON spans "
    "(start_ns, duration_ns, status, error_type, feature, model, user_id, cost_usd, input_tokens, output_tokens)"
)


def _ensure_metric_columns(conn: sqlite3.Connection) -> None:
    """Add the metric columns a store made before them lacks (cheap: no row is rewritten)."""
    names = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
    for name, (kind, _attribute) in METRIC_COLUMNS.items():
        if name not in names:
            try:
                conn.execute(f"ALTER TABLE spans ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another writer added it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def ensure_stats_index(conn: sqlite3.Connection, *, only_if_empty: bool = False) -> bool:
    """Create the statistics index if missing; like the search indexes, a populated store gets it
    from its first forensic reader (``only_if_empty`` for writers), never at an application's start."""
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (STATS_INDEX,)).fetchone():
            return True
        if not has_metric_columns(conn):
            return False
        if only_if_empty and conn.execute("SELECT 1 FROM spans LIMIT 1").fetchone() is not None:
            return False
        conn.execute(_STATS_INDEX_SQL)
    except sqlite3.Error as exc:
        logger.debug("genai-audit: no statistics index in this store: %s", exc)
        return False
    return True


class StoreError(Exception):
    """The store cannot be opened or read."""


# --- search indexes ---------------------------------------------------------------------------
#
# Two derived indexes serve the forensic look-ups (genai_audit.forensics): a full-text index
# over the (redacted) prompt chain and response, and the pseudonym tokens each span mentions.
# Both are filled by an AFTER INSERT trigger on ``spans``, so every writer keeps them current.
# The store being append-only is what keeps them simple: a stored span never changes and is
# never deleted (the triggers above refuse it), so nothing ever has to be removed from an
# index, and a span ignored as a duplicate (INSERT OR IGNORE) never fires the trigger. The
# full-text table is contentless (content=''): it holds the index only, not a second copy of
# the prompts. Both indexes are derived data, rebuilt from ``spans`` when a store is opened
# without them (drop the trigger ``spans_search_index`` first: writes need what it fills).

TEXT_INDEX = "spans_text"
TOKEN_INDEX = "span_pii_tokens"
#: full-text columns, in the order of the index, with the attribute each one indexes
TEXT_COLUMNS: dict[str, str] = {
    "system_instructions": sc.SYSTEM_INSTRUCTIONS,
    "input_messages": sc.INPUT_MESSAGES,
    "output_messages": sc.OUTPUT_MESSAGES,
}


def _json_path(attribute: str) -> str:
    return f'$.attributes."{attribute}"'


def text_index_sql(name: str) -> str:
    """``CREATE VIRTUAL TABLE`` of a contentless full-text table like the store's, named ``name``."""
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(\n"
        f"    {', '.join(TEXT_COLUMNS)}, content='', tokenize=\"unicode61 remove_diacritics 0\"\n)"
    )


#: ``seq`` and the full-text column values of every row whose document SQLite reads as JSON
TEXT_ROWS_SQL = (
    "SELECT seq, " + ", ".join(f"json_extract(doc, '{_json_path(a)}')" for a in TEXT_COLUMNS.values())
    + " "
    "FROM spans WHERE json_valid(doc)"
)
#: ``(token, seq)`` for every pseudonym token of every stored document, as the trigger indexes them
TOKEN_ROWS_SQL = (
    "SELECT tokens.value, spans.seq "
    "FROM spans, json_each(CASE WHEN json_valid(spans.doc) THEN spans.doc ELSE '{}' END, "
    f"'{_json_path(sc.AUDIT_PII_TOKENS)}') AS tokens WHERE tokens.type = 'text'"
)

# A document SQLite cannot read as JSON (a NaN attribute value, say) is stored but not indexed:
# the trigger must never make an insert fail.
_SEARCH_SCHEMA = f"""
{text_index_sql(TEXT_INDEX)};
CREATE TABLE IF NOT EXISTS {TOKEN_INDEX} (
    token TEXT NOT NULL,
    span_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS {TOKEN_INDEX}_token ON {TOKEN_INDEX} (token, span_seq);
CREATE TRIGGER IF NOT EXISTS {TOKEN_INDEX}_no_update BEFORE UPDATE ON {TOKEN_INDEX}
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS {TOKEN_INDEX}_no_delete BEFORE DELETE ON {TOKEN_INDEX}
    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS spans_search_index AFTER INSERT ON spans BEGIN
    INSERT INTO {TEXT_INDEX} (rowid, {", ".join(TEXT_COLUMNS)})
        SELECT new.seq, {", ".join(f"json_extract(new.doc, '{_json_path(a)}')" for a in TEXT_COLUMNS.values())}
        WHERE json_valid(new.doc);
    INSERT INTO {TOKEN_INDEX} (token, span_seq)
        SELECT value, new.seq
        FROM json_each(CASE WHEN json_valid(new.doc) THEN new.doc ELSE '{{}}' END, '{_json_path(sc.AUDIT_PII_TOKENS)}')
        WHERE type = 'text';
END;
"""

_BACKFILL = f"""
INSERT INTO {TEXT_INDEX} (rowid, {", ".join(TEXT_COLUMNS)}) {TEXT_ROWS_SQL} ORDER BY seq;
INSERT INTO {TOKEN_INDEX} (token, span_seq) {TOKEN_ROWS_SQL} ORDER BY spans.seq;
"""

_KIND_OF = {TEXT_INDEX: "TABLE", TOKEN_INDEX: "TABLE", "spans_search_index": "TRIGGER"}


def has_search_indexes(conn: sqlite3.Connection) -> bool:
    """True when the store has the full-text and token indexes (and the trigger that fills them)."""
    names = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE name IN (?, ?, 'spans_search_index')", (TEXT_INDEX, TOKEN_INDEX)
        )
    }
    return names == {TEXT_INDEX, TOKEN_INDEX, "spans_search_index"}


def ensure_search_indexes(conn: sqlite3.Connection, *, only_if_empty: bool = False) -> bool:
    """Create the search indexes if the store has none yet, indexing the spans already stored.

    Returns False, changing nothing, when they cannot be made: this SQLite has no FTS5, or the
    store cannot be written; or, with ``only_if_empty``, when spans are already stored. Stores
    made by this version have them from the start; an older store gets them (in one
    transaction) the first time a search opens it.
    """
    try:
        if has_search_indexes(conn):
            return True
        conn.execute("BEGIN IMMEDIATE")
        try:
            if only_if_empty and conn.execute("SELECT 1 FROM spans LIMIT 1").fetchone() is not None:
                conn.execute("ROLLBACK")
                return False
            if not has_search_indexes(conn):  # another process may have made them meanwhile
                for name, kind in _KIND_OF.items():  # a partial set left by hand: start again
                    conn.execute(f"DROP {kind} IF EXISTS {name}")
                for statement in _statements(_SEARCH_SCHEMA):
                    conn.execute(statement)
                for statement in _statements(_BACKFILL):
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        logger.debug("genai-audit: no search indexes in this store: %s", exc)
        return False
    return True


def refill_search_indexes(conn: sqlite3.Connection) -> None:
    """Empty the full-text and token indexes and index every stored document again.

    For the removal path (:mod:`genai_audit.forensics.removal`), which calls it inside its write
    transaction with the token index's delete guard dropped.
    """
    conn.execute(f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}) VALUES ('delete-all')")
    conn.execute(f"DELETE FROM {TOKEN_INDEX}")
    for statement in _statements(_BACKFILL):
        conn.execute(statement)


def _statements(script: str) -> list[str]:
    """The statements of a script, split where :func:`sqlite3.complete_statement` says one ends."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _secure_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def connect(path: str | os.PathLike[str], *, create: bool = True) -> sqlite3.Connection:
    """Open the store (creating it owner-only if asked) with the durable settings."""
    file = Path(path).expanduser()
    if not create and not file.exists():
        raise StoreError(f"no audit store at {file}")
    try:
        if create:
            _secure_file(file)
        conn = sqlite3.connect(str(file), check_same_thread=False, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        # INSERT OR REPLACE deletes the old row; with recursive triggers that delete is refused too
        conn.execute("PRAGMA recursive_triggers=ON")
        if create:
            conn.executescript(SCHEMA)
            _ensure_metric_columns(conn)
            ensure_stats_index(conn, only_if_empty=True)
            # a new store gets its search indexes now; an older one from its first forensic reader,
            # so that indexing what it holds never delays the application's start
            ensure_search_indexes(conn, only_if_empty=True)
        else:
            conn.execute("SELECT 1 FROM spans LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open audit store {file}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot create audit store {file}: {exc.strerror or exc}") from None
    return conn


def _number(value: Any, kind: str) -> float | int | None:
    """What a metric column holds: the attribute when it is a finite number of the right kind."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    if kind == "INTEGER":
        return int(value)
    return float(value)


def _attribute_columns(attributes: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """The text columns (``_COLUMNS``) and the metric columns a document's attributes give."""
    values = [attributes.get(key) for key in _COLUMNS.values()]
    values = [None if value is None else str(value) for value in values]
    metrics = [_number(attributes.get(attribute), kind) for kind, attribute in METRIC_COLUMNS.values()]
    return values, metrics


def _row(doc: dict[str, Any], start_ns: int) -> tuple[Any, ...]:
    values, metrics = _attribute_columns(doc["attributes"])
    return (doc["trace_id"], doc["span_id"], start_ns, doc["duration"], *values, doc["status"]["code"],
            json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str), *metrics)


#: Every column of ``spans`` besides ``seq`` and ``doc``: each is derived from the document (the
#: start time from its ``@timestamp``, which the writer formats from the same nanoseconds).
INDEX_COLUMNS: tuple[str, ...] = (
    "trace_id", "span_id", "start_ns", "duration_ns", *_COLUMNS, "status", *METRIC_COLUMNS,
)


def index_values(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the :data:`INDEX_COLUMNS` of a stored document's row hold, in that order.

    Raises ``KeyError``, ``TypeError`` or ``ValueError`` for a document the writer could not
    have stored (no ids, no duration, no status, no parseable ``@timestamp``).
    """
    attributes = doc["attributes"]
    if not isinstance(attributes, Mapping):
        raise TypeError("attributes is not an object")
    values, metrics = _attribute_columns(attributes)
    return (doc["trace_id"], doc["span_id"], _start_ns(doc["@timestamp"]), doc["duration"], *values,
            doc["status"]["code"], *metrics)


def _start_ns(stamp: Any) -> int:
    """The nanoseconds :func:`genai_audit.serialize.timestamp` formatted as ``stamp``, exactly."""
    if not isinstance(stamp, str) or len(stamp) != 30 or stamp[19] != "." or stamp[-1] != "Z":
        raise ValueError(f"not a stored @timestamp: {stamp!r}")
    fraction = stamp[20:29]
    if not fraction.isdigit():
        raise ValueError(f"not a stored @timestamp: {stamp!r}")
    return _epoch_seconds(stamp[:19]) * 1_000_000_000 + int(fraction)


@functools.lru_cache(maxsize=256)  # records come in runs within one second
def _epoch_seconds(text: str) -> int:
    return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timetuple())


_INSERT = (
    "INSERT OR IGNORE INTO spans (trace_id, span_id, start_ns, duration_ns, "
    + ", ".join(_COLUMNS)
    + ", status, doc, "
    + ", ".join(METRIC_COLUMNS)
    + ") VALUES (" + ", ".join("?" * (5 + len(_COLUMNS) + 1 + len(METRIC_COLUMNS))) + ")"
)


class SqliteSpanExporter(SpanExporter):
    """Writes finished spans to the embedded store; never raises into the SDK."""

    def __init__(self, path: str | os.PathLike[str], *, integrity: Sealer | bool = True) -> None:
        self.path = Path(path).expanduser()
        self._conn = connect(self.path)
        self._lock = threading.Lock()
        self._closed = False
        self.exported = 0
        self.failed = 0
        # tamper evidence (genai_audit.integrity): hashes, ledger and signed checkpoints outside the store
        self.integrity = sealer_for(sqlite_store_name(self.path), integrity)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        docs: list[tuple[dict[str, Any], int]] = []
        span_events: list[list[dict[str, Any]]] = []
        events: list[tuple[str, str, str]] = []
        try:
            for span in spans:
                doc = span_document(span)
                docs.append((doc, span.start_time or 0))
                span_events.append(event_documents(span))
                events.extend(
                    (doc["trace_id"], doc["span_id"], json.dumps(e, ensure_ascii=False, default=str))
                    for e in span_events[-1]
                )
            with self._lock:
                if self._closed:
                    raise StoreError("exporter is shut down")
                # sealed under the lock (seq order is insertion order) and ledgered before the insert
                # each span's seal binds its events too
                sealed = self.integrity.seal([doc for doc, _ in docs], span_events) if self.integrity else []
                rows = [_row(doc, start) for doc, start in docs]
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    before = conn.total_changes
                    conn.executemany(_INSERT, rows)
                    if conn.total_changes - before:
                        conn.executemany("INSERT INTO span_events (trace_id, span_id, doc) VALUES (?, ?, ?)", events)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    if self.integrity:
                        self.integrity.unstored(sealed)
                    raise
            self.exported += len(rows)
            return SpanExportResult.SUCCESS
        except Exception:
            self.failed += len(spans)
            logger.warning("genai-audit: could not write %d span(s) to %s", len(spans), self.path, exc_info=True)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
                if self.integrity:
                    self.integrity.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.integrity.checkpoint() if self.integrity else True


@dataclass(frozen=True)
class Query:
    """Filters for reading documents back; all optional."""

    session_id: str | None = None
    user_id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    feature: str | None = None
    model: str | None = None
    limit: int | None = None


def read_documents(conn: sqlite3.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Stored documents in record order, filtered."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("session_id", query.session_id), ("user_id", query.user_id),
        ("feature", query.feature), ("model", query.model),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.since_ns is not None:
        clauses.append("start_ns >= ?")
        params.append(query.since_ns)
    if query.until_ns is not None:
        clauses.append("start_ns < ?")
        params.append(query.until_ns)
    sql = "SELECT doc FROM spans"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY start_ns, seq"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    for (doc,) in conn.execute(sql, params):
        yield json.loads(doc)


def read_events(conn: sqlite3.Connection, trace_id: str, span_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT doc FROM span_events WHERE trace_id = ? AND span_id = ? ORDER BY seq",
                        (trace_id, span_id))
    return [json.loads(doc) for (doc,) in rows]


def list_sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT session_id, MIN(start_ns), MAX(start_ns + duration_ns), COUNT(*),
                  GROUP_CONCAT(DISTINCT user_id), GROUP_CONCAT(DISTINCT model),
                  SUM(CASE WHEN status = 'Error' THEN 1 ELSE 0 END)
           FROM spans WHERE session_id IS NOT NULL GROUP BY session_id ORDER BY MIN(start_ns)"""
    )
    return [
        {"session_id": sid, "first_ns": first, "last_ns": last, "calls": count,
         "users": sorted((users or "").split(",")) if users else [],
         "models": sorted((models or "").split(",")) if models else [], "errors": errors}
        for sid, first, last, count, users, models, errors in rows
    ]
