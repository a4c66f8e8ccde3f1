"""The stores' derived data, checked against the sealed documents (``genai-audit verify``).

A stored span is its document; everything else the store keeps about it is derived from that
document, and the forensic look-ups and erasure trust it: the indexed columns of ``spans``
(:data:`~genai_audit.store.sqlite.INDEX_COLUMNS`), the full-text index, the pseudonym-token
index, and the ids under which event documents are filed. The seal covers the documents only,
so anyone who can write the file could change a derived value (a user id column, say) and a
query by that user would miss the record while the seal still verified. :class:`DerivedCheck`
recomputes each of them from the documents and names what differs:

* the columns, row by row, as :func:`~genai_audit.store.sqlite.index_values` derives them
  (a row whose three metric columns are all NULL was stored before they existed: readers take
  those values from its document, so that is accepted);
* the pseudonym-token rows, as the multiset of ``(token, row)`` the documents give;
* the full-text index, instance by instance (term, row, column, position): a fresh index of the
  documents is built in the connection's temporary database and compared with the store's
  through ``fts5vocab``, so that a term moved to another row, or left behind by a removal, shows;
* the event documents: each filed under the ids it names, with a stored span whose seal binds
  its events;
* SQLite's own ``PRAGMA integrity_check`` (the b-tree indexes on the columns against the table).

Nothing is written to the store: the fresh index lives in the temporary database.

In Elasticsearch, :class:`IndexedCheck` compares what the cluster indexed for the fields searches,
erasure and retention read (read back as doc values) with each document, and the ``_id`` it is
stored under with the one its ids give.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from genai_audit.integrity import INTEGRITY_FIELD, bound_events
from genai_audit.store.sqlite import (
    INDEX_COLUMNS,
    METRIC_COLUMNS,
    TEXT_COLUMNS,
    TEXT_INDEX,
    TEXT_ROWS_SQL,
    TOKEN_INDEX,
    TOKEN_ROWS_SQL,
    StoreError,
    connect,
    index_values,
    text_index_sql,
)

#: derived data that does not match the document it is derived from
INDEX: Final = "INDEX"
#: a stored document no seal vouches for
INSERTED: Final = "INSERTED"

_FRESH_TEXT: Final = "temp.genai_audit_verify_text"
_FOUND_VOCAB: Final = "temp.genai_audit_verify_found"
_EXPECTED_VOCAB: Final = "temp.genai_audit_verify_expected"
_INTEGRITY_LINES: Final = 5  # lines of a failed PRAGMA integrity_check quoted
_ORPHANS_SHOWN: Final = 10  # rows named of the index entries that belong to no record

# The instances of each term: the rows, and each one's column and position packed as FTS5 packs
# them (column << 32 | position; positions are 32-bit), as two lists in the same order.
_COLUMN_NUMBER = " ".join(f"WHEN '{name}' THEN {number}" for number, name in enumerate(TEXT_COLUMNS))
_INSTANCES = (
    "SELECT term, group_concat(doc), group_concat(((CASE col " + _COLUMN_NUMBER + " ELSE 3 END) << 32) + offset) "
    "FROM {} GROUP BY term"
)


@dataclass(frozen=True)
class DerivedProblem:
    """Derived data that does not match its document.

    ``stored``: it is about a stored record (named by ``trace_id`` and ``span_id``), whose own
    findings, if verification has any, already say more.
    """

    kind: str
    detail: str
    trace_id: str | None = None
    span_id: str | None = None
    stored: bool = False


class DerivedCheck:
    """Checks one store's derived data.

    :meth:`start` sets the checks that need no document going, each on a connection of its own in
    a thread (SQLite does their work without holding the interpreter lock, while verification
    parses and hashes documents): the token index, the full-text index, SQLite's own indexes.
    :meth:`row` checks each row's columns as verification reads the documents; :meth:`finish`
    checks the event documents and waits for the rest.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        present = {row[1] for row in conn.execute("PRAGMA table_info(spans)")}
        #: the derived columns this store has (a store made before the metric columns lacks them)
        self.columns = tuple(name for name in INDEX_COLUMNS if name in present)
        self._all_columns = self.columns == INDEX_COLUMNS
        self._metrics = [self.columns.index(name) for name in METRIC_COLUMNS if name in self.columns]
        self.problems: list[DerivedProblem] = []
        # the event documents (few: exceptions and GenAI events) and the spans they name: each
        # row's document, as it is read, says whether it is one of those spans and what its seal binds
        self._events = conn.execute(
            """SELECT seq, trace_id, span_id,
                      CASE WHEN json_valid(doc) THEN json_extract(doc, '$.trace_id') END,
                      CASE WHEN json_valid(doc) THEN json_extract(doc, '$.span_id') END
               FROM span_events ORDER BY seq"""
        ).fetchall()
        self._spans: dict[tuple[Any, Any], tuple[int, bool, int] | None] = {
            (trace, span): None for _, trace, span, _, _ in self._events
        }
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[list[DerivedProblem]]] = []

    @property
    def select(self) -> str:
        """The query verification reads the rows with: ``seq``, ``doc``, then :attr:`columns`."""
        return f"SELECT seq, doc, {', '.join(self.columns)} FROM spans ORDER BY seq"

    def start(self, path: str | os.PathLike[str]) -> None:
        """Start the index checks on the store at ``path``."""
        checks: list[tuple[_Check, str]] = []
        if TEXT_INDEX in self.names:  # the longest first
            checks.append((_text, "full-text index"))
        if TOKEN_INDEX in self.names:
            checks.append((_tokens, "pseudonym-token index"))
        checks.append((_integrity, "store"))
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="genai-audit-verify")
        self._pending = [self._pool.submit(_checked, path, check, what) for check, what in checks]

    def finish(self) -> list[DerivedProblem]:
        """Everything found: the rows', the event documents', and (waiting for them) the index checks'."""
        self._event_documents()
        found = list(self.problems)
        try:
            for pending in self._pending:
                found.extend(pending.result())
        finally:
            self.close()
        return found

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- the columns ------------------------------------------------------------------------------

    def row(self, seq: int, doc: Mapping[str, Any], stored: Sequence[Any]) -> None:
        """Compare one row's derived columns (``stored``, in :attr:`columns` order) with its document."""
        trace, span = str(doc.get("trace_id")), str(doc.get("span_id"))
        if (trace, span) in self._spans:
            self._spans[trace, span] = (seq, isinstance(doc.get(INTEGRITY_FIELD), Mapping), bound_events(doc))
        try:
            derived = index_values(doc)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.problems.append(
                DerivedProblem(INDEX, "the stored document lacks what its indexed columns are derived from",
                               trace, span, stored=True)
            )
            return
        # Python compares as SQLite does here: 3 == 3.0, and text never equals a number
        if self._all_columns and tuple(stored) == derived:
            return
        expected = dict(zip(INDEX_COLUMNS, derived))
        if self._metrics and all(stored[i] is None for i in self._metrics):
            # stored before the metric columns existed: readers take these values from the document
            expected.update((self.columns[i], None) for i in self._metrics)
        wrong = [name for name, value in zip(self.columns, stored) if value != expected[name]]
        if wrong:
            self.problems.append(
                DerivedProblem(
                    INDEX,
                    f"{_names('indexed column', wrong)} not match the sealed document "
                    f"(look-ups by {'them' if len(wrong) > 1 else 'it'} miss this record or find it wrongly)",
                    trace, span, stored=True,
                )
            )

    # -- the event documents --------------------------------------------------------------------------

    def _event_documents(self) -> None:
        for event, trace, span, named_trace, named_span in self._events:
            where = f"event document {event}"
            span_row = self._spans.get((trace, span))
            if (named_trace, named_span) != (trace, span):
                self.problems.append(DerivedProblem(
                    INDEX,
                    f"{where} is filed under this span but names trace {named_trace} span {named_span} "
                    "(replay and erasure of its span find it wrongly, of its own span miss it)",
                    trace, span, stored=span_row is not None,
                ))
            elif span_row is None:
                self.problems.append(DerivedProblem(
                    INSERTED, f"{where} belongs to no stored span (left behind by a removal, or inserted)", trace, span
                ))
            elif span_row[1] and not span_row[2]:
                self.problems.append(DerivedProblem(
                    INSERTED, f"{where} is stored with this span, whose seal binds no events", trace, span, stored=True
                ))


def _names(what: str, names: Sequence[str]) -> str:
    """``indexed column user_id does`` / ``indexed columns user_id, model do``."""
    return f"{what}s {', '.join(names)} do" if len(names) > 1 else f"{what} {names[0]} does"


# --- the index checks, each on a connection of its own ------------------------------------------------------


_Check = Callable[[sqlite3.Connection], list[DerivedProblem]]


def _checked(path: str | os.PathLike[str], check: _Check, what: str) -> list[DerivedProblem]:
    """Run one index check in a read transaction of its own (one snapshot: a writer may be appending)."""
    try:
        conn = connect(path, create=False)
    except StoreError as exc:
        return [DerivedProblem(INDEX, f"the {what} cannot be read back: {exc}")]
    try:
        conn.execute("BEGIN")
        return check(conn)
    except sqlite3.Error as exc:
        return [DerivedProblem(INDEX, f"the {what} cannot be read back: {exc}")]
    finally:
        conn.close()


def _tokens(conn: sqlite3.Connection) -> list[DerivedProblem]:
    per_row: dict[Any, list[int]] = {}
    for row, side, count in conn.execute(
        f"""WITH expected AS (SELECT value AS token, seq AS span_seq, COUNT(*) AS n
                              FROM ({TOKEN_ROWS_SQL}) GROUP BY 1, 2),
                 found AS (SELECT token, span_seq, COUNT(*) AS n FROM {TOKEN_INDEX} GROUP BY 1, 2)
            SELECT e.span_seq, 0, e.n - COALESCE(f.n, 0) FROM expected e
                LEFT JOIN found f ON f.token = e.token AND f.span_seq = e.span_seq
                WHERE f.n IS NULL OR e.n > f.n
            UNION ALL
            SELECT f.span_seq, 1, f.n - COALESCE(e.n, 0) FROM found f
                LEFT JOIN expected e ON e.token = f.token AND e.span_seq = f.span_seq
                WHERE e.n IS NULL OR f.n > e.n"""
    ):
        per_row.setdefault(row, [0, 0])[side] += count
    return _per_row(
        conn,
        per_row,
        "the pseudonym-token index does not match the sealed document ({}): "
        "look-ups and erasure by token miss this record or find it wrongly",
        "token row",
        "pseudonym-token index",
    )


def _text(conn: sqlite3.Connection) -> list[DerivedProblem]:
    conn.execute(text_index_sql(_FRESH_TEXT))
    conn.execute(f"INSERT INTO {_FRESH_TEXT} (rowid, {', '.join(TEXT_COLUMNS)}) {TEXT_ROWS_SQL}")
    fresh = _FRESH_TEXT.split(".", 1)[1]
    conn.execute(f"CREATE VIRTUAL TABLE {_FOUND_VOCAB} USING fts5vocab(main, {TEXT_INDEX}, instance)")
    conn.execute(f"CREATE VIRTUAL TABLE {_EXPECTED_VOCAB} USING fts5vocab(temp, {fresh}, instance)")
    per_row: dict[Any, list[int]] = {}
    for found, expected in _merged(
        conn.execute(_INSTANCES.format(_FOUND_VOCAB)), conn.cursor().execute(_INSTANCES.format(_EXPECTED_VOCAB))
    ):
        difference = Counter(expected)
        difference.subtract(Counter(found))
        for (row, _position), count in difference.items():
            if count:
                per_row.setdefault(row, [0, 0])[count < 0] += abs(count)
    return _per_row(
        conn,
        per_row,
        "the full-text index does not match the sealed document ({}): "
        "text searches miss this record or find it wrongly",
        "term position",
        "full-text index",
    )


def _per_row(
    conn: sqlite3.Connection, per_row: Mapping[Any, Sequence[int]], detail: str, unit: str, index: str
) -> list[DerivedProblem]:
    """One problem per record whose derived rows differ (``per_row``: row -> missing, extra), named by
    its document's ids; one for all the rows that hold no record."""
    problems: list[DerivedProblem] = []
    orphans: list[str] = []
    rows = sorted(per_row, key=lambda row: (0, row, "") if isinstance(row, int) else (1, 0, str(row)))
    for row in rows:
        missing, extra = per_row[row]
        ids = None
        if isinstance(row, int):
            ids = conn.execute(
                "SELECT CASE WHEN json_valid(doc) THEN json_extract(doc, '$.trace_id') END, "
                "CASE WHEN json_valid(doc) THEN json_extract(doc, '$.span_id') END FROM spans WHERE seq = ?",
                (row,),
            ).fetchone()
        if ids is None:
            orphans.append(str(row))
            continue
        parts = [f"{missing} {unit}(s) missing"] if missing else []
        if extra:
            parts.append(f"{extra} {unit}(s) the document does not give")
        trace, span = ids
        problems.append(DerivedProblem(INDEX, detail.format(", ".join(parts)), trace, span, stored=True))
    if orphans:
        shown = ", ".join(orphans[:_ORPHANS_SHOWN]) + (", ..." if len(orphans) > _ORPHANS_SHOWN else "")
        problems.append(DerivedProblem(
            INDEX,
            f"the {index} has entries for {len(orphans)} store row(s) that hold no record "
            f"(row{'s' if len(orphans) > 1 else ''} {shown}): left behind by a removal, or inserted",
        ))
    return problems


def _integrity(conn: sqlite3.Connection) -> list[DerivedProblem]:
    lines = [str(line) for (line,) in conn.execute("PRAGMA integrity_check")]
    if lines == ["ok"]:
        return []
    shown = "; ".join(lines[:_INTEGRITY_LINES])
    more = f" (and {len(lines) - _INTEGRITY_LINES} more)" if len(lines) > _INTEGRITY_LINES else ""
    return [DerivedProblem(INDEX, f"SQLite's integrity check of the store fails: {shown}{more}")]


def _merged(
    found: Iterator[tuple[str, str, str]], expected: Iterator[tuple[str, str, str]]
) -> Iterator[tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """The instances of each term that differ, as (found, expected) lists of (row, packed position).

    Both sides come grouped by term in the index's order (binary, which is code point order).
    """
    left, right = next(found, None), next(expected, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left[0] < right[0]):
            assert left is not None
            yield _instances(left), []
            left = next(found, None)
        elif left is None or right[0] < left[0]:
            yield [], _instances(right)
            right = next(expected, None)
        else:
            if left[1:] != right[1:]:
                yield _instances(left), _instances(right)
            left, right = next(found, None), next(expected, None)


def _instances(group: tuple[str, str, str]) -> list[tuple[int, int]]:
    _term, rows, positions = group
    if not rows:
        return []
    return list(zip(map(int, rows.split(",")), map(int, positions.split(","))))


# --- Elasticsearch ---------------------------------------------------------------------------------------------------
#
# Elasticsearch derives what it searches from each document's _source when it indexes it, so the
# two cannot drift apart by editing a document; but the mapping decides what is derived, and parts
# of it can be changed later by whoever administers the cluster: a keyword field's ignore_above
# lowered (a document indexed again afterwards drops out of every search by that field), a runtime
# field of the same name (it shadows the indexed one in every search), another type in a new
# backing index. Searches, erasure and retention read those fields, not _source; so verification
# reads them too, as doc values beside each document, and compares; and the _id each document is
# stored under, which the exporter derives from its ids.

_DATE_FORMAT: Final = "strict_date_optional_time_nanos"


def indexed_fields() -> dict[str, Mapping[str, Any]]:
    """Span document field -> its mapping in the exporter's template, for every field that searches,
    erasure, retention, statistics or verification itself read from the index."""
    from genai_audit import semconv as sc
    from genai_audit.store.elasticsearch import SPAN_ATTRIBUTE_TYPES, traces_template

    properties = traces_template()["mappings"]["properties"]
    fields: dict[str, Mapping[str, Any]] = {name: properties[name] for name in ("@timestamp", "trace_id", "span_id")}
    fields["duration"] = properties["duration"]
    fields["status.code"] = properties["status"]["properties"]["code"]
    for name in ("stream", "seq"):
        fields[f"integrity.{name}"] = properties["integrity"]["properties"][name]
    for attribute in (
        sc.ENDUSER_ID, sc.SESSION_ID, sc.AUDIT_FEATURE, sc.REQUEST_MODEL, sc.AUDIT_REQUEST_ID, sc.ERROR_TYPE,
        sc.AUDIT_PII_TOKENS, sc.AUDIT_CLASSIFICATION, sc.USAGE_COST_USD, sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS,
    ):
        fields[f"attributes.{attribute}"] = SPAN_ATTRIBUTE_TYPES[attribute]
    return fields


class IndexedCheck:
    """Checks what Elasticsearch indexed of each span document against the document.

    ``caps`` is the field capabilities answer for :func:`indexed_fields` over the traces data
    stream; pass :attr:`docvalue_fields` with each search that reads the documents, and each hit
    to :meth:`hit`.
    """

    def __init__(self, caps: Mapping[str, Any]) -> None:
        self.fields = indexed_fields()
        self.problems: list[DerivedProblem] = []
        self.docvalue_fields: list[Any] = []
        self._checked: list[tuple[str, Mapping[str, Any]]] = []
        found = caps.get("fields") or {}
        for name, mapping in self.fields.items():
            kind = str(mapping["type"])
            types = found.get(name) or {}
            others = sorted(str(other) for other in types if other != kind)
            if others:
                self.problems.append(DerivedProblem(
                    INDEX,
                    f"field {name} is mapped as {', '.join(others)} (the exporter maps it as {kind}): searches by it "
                    "do not see the stored documents' values",
                ))
                continue
            if types and not types[kind].get("aggregatable", True):
                self.problems.append(DerivedProblem(
                    INDEX, f"field {name} has no doc values: searches and sorts by it do not see the stored values"
                ))
                continue
            self.docvalue_fields.append({"field": name, "format": _DATE_FORMAT} if kind == "date_nanos" else name)
            self._checked.append((name, mapping))

    def hit(self, hit: Mapping[str, Any]) -> None:
        """Compare one search hit's ``_id`` and doc values with its ``_source``."""
        source = hit.get("_source") or {}
        trace, span = str(source.get("trace_id")), str(source.get("span_id"))
        if hit.get("_id") != f"{trace}{span}":
            self.problems.append(DerivedProblem(
                INDEX,
                f"stored under _id {hit.get('_id')}, not the id its trace and span give (look-ups by id miss it, "
                "and a retried write would store it twice)",
                trace, span, stored=True,
            ))
        indexed = hit.get("fields") or {}
        wrong = []
        for name, mapping in self._checked:
            expected = _source_values(source, name, mapping)
            if expected is not None and expected != _indexed_values(indexed.get(name) or [], mapping):
                wrong.append(name)
        if wrong:
            self.problems.append(DerivedProblem(
                INDEX,
                f"{_names('indexed field', wrong)} not match the stored document (searches, erasure and "
                f"retention by {'them' if len(wrong) > 1 else 'it'} miss this record or find it wrongly)",
                trace, span, stored=True,
            ))


def _source_values(source: Mapping[str, Any], name: str, mapping: Mapping[str, Any]) -> list[Any] | None:
    """What the field should index for this document, as :func:`_indexed_values` gives it; None: not comparable."""
    if name.startswith("attributes."):
        attributes = source.get("attributes")
        value = attributes.get(name.removeprefix("attributes.")) if isinstance(attributes, Mapping) else None
    else:
        value = source
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    values = [] if value is None else list(value) if isinstance(value, list) else [value]
    kind = mapping["type"]
    try:
        if kind == "keyword":
            if not all(isinstance(v, str) for v in values):
                return None
            limit = mapping.get("ignore_above")
            return sorted({v for v in values if limit is None or len(v) <= int(limit)})
        if any(isinstance(v, bool) for v in values):
            return None
        if kind == "long":
            return sorted(values) if all(isinstance(v, int) for v in values) else None
        if kind == "double":
            return sorted(float(v) for v in values)
        if kind == "date_nanos":
            return sorted(_nanos(v) for v in values)
    except (TypeError, ValueError):
        return None
    return None


def _indexed_values(values: Sequence[Any], mapping: Mapping[str, Any]) -> list[Any] | None:
    kind = mapping["type"]
    try:
        if kind == "keyword":
            return sorted({str(v) for v in values})
        if kind == "long":
            return sorted(int(v) for v in values)
        if kind == "double":
            return sorted(float(v) for v in values)
        if kind == "date_nanos":
            return sorted(_nanos(v) for v in values)
    except (TypeError, ValueError):
        return None
    return None


def _nanos(value: Any) -> int:
    from genai_audit.forensics.model import parse_timestamp

    return parse_timestamp(str(value))
