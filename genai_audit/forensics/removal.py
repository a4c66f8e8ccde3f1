"""Removing stored records on purpose: the one sanctioned way, shared by retention and erasure.

Every removal follows the same order, in batches:

1. find the records (``Victim``: its ids, its place in the integrity ledger, where it is stored);
2. write a signed, PII-free tombstone for each sealed record (reason ``retention`` or
   ``erasure``) and fsync it — *before* anything is deleted, so a crash in between leaves
   a record that is tombstoned but still stored (``genai-audit verify`` notes it) rather
   than a deletion no tombstone explains;
3. delete the record, its event documents and its index rows.

SQLite
    The store's triggers refuse ``DELETE``. :func:`sqlite_delete` is the only code that
    deletes: inside one ``BEGIN IMMEDIATE`` transaction it drops the refusal triggers,
    deletes the given rows (span, events, token-index rows, and the full-text entries via
    FTS5's ``'delete'`` command — the index is contentless, so entries are removed with
    the values they were indexed from), and recreates the triggers before ``COMMIT``.
    Another connection never sees the store without its triggers: it waits for the write
    lock, then sees the committed schema, triggers included. Ordinary writers have no
    path that deletes, and a ``DELETE`` from anyone else is still refused. After an
    erasure, :func:`sqlite_purge` removes what index rows edited behind the store's back
    could have kept: event documents naming an erased span, and the full-text and token
    indexes, rebuilt from the documents that remain.

Elasticsearch
    No ``_delete_by_query`` and no scripts are needed: matching span documents are paged
    with a point in time and ``search_after`` (plain ``search_after`` on ``trace_id``,
    ``span_id`` when the cluster offers no point in time), and each page is deleted with
    bulk ``delete`` actions addressed to the backing index (``_index`` of the hit), with
    the event documents of the same spans from the ``logs-`` data stream. Each is deleted
    by the ``_id`` it is stored under, not the one its ids would give.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from genai_audit.forensics.base import chunks
from genai_audit.ledger import Ledger, LedgerEntry, integrity_dir, read_ledger, write_tombstones
from genai_audit.store.sqlite import TEXT_COLUMNS, TEXT_INDEX, TOKEN_INDEX, StoreError, refill_search_indexes

if TYPE_CHECKING:
    from genai_audit.checkpoint import SigningKey
    from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

#: records tombstoned and deleted per transaction / bulk request
BATCH = 500
_SOURCE_FIELDS = ["trace_id", "span_id", "integrity", "@timestamp"]


@dataclass(frozen=True)
class Victim:
    """One stored span record chosen for removal."""

    trace_id: str
    span_id: str
    start_ns: int
    stream: str | None = None  # integrity stream and seq; None when the record is not sealed
    seq: int | None = None
    row: int | None = None  # SQLite: spans.seq
    index: str | None = None  # Elasticsearch: the backing index holding it
    doc_id: str | None = None  # Elasticsearch: the _id it is stored under (the record id, unless tampered with)

    @property
    def record_id(self) -> str:
        return f"{self.trace_id}{self.span_id}"


def victim_of(
    doc: Mapping[str, Any],
    start_ns: int,
    *,
    row: int | None = None,
    index: str | None = None,
    doc_id: str | None = None,
) -> Victim:
    mark = doc.get("integrity")
    stream = seq = None
    if isinstance(mark, Mapping) and isinstance(mark.get("stream"), str) and isinstance(mark.get("seq"), int):
        stream, seq = str(mark["stream"]), int(mark["seq"])
    return Victim(
        str(doc.get("trace_id", "")), str(doc.get("span_id", "")), start_ns, stream, seq, row, index, doc_id
    )


# --- progress ----------------------------------------------------------------------------------------------


class Progress:
    """A textual progress bar on stderr when it is a terminal; otherwise a line every ``interval`` seconds."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, *, interval: float = 5.0) -> None:
        self.label = label
        self.total = max(0, total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._shown = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        moment = time.monotonic()
        if self.tty:
            width = 30
            filled = width if not self.total else min(width, width * self.done // self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            self.stream.flush()
        elif moment - self._shown >= self.interval:
            self._shown = moment
            self.stream.write(f"{self.label}: {self.done}/{self.total}\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
        elif self.total:
            self.stream.write(f"{self.label}: {self.done}/{self.total} done\n")
        self.stream.flush()


# --- tombstones ---------------------------------------------------------------------------------------------


@dataclass
class Tombstoner:
    """Writes the tombstones of a removal, reading each stream's ledger once."""

    reason: str
    env: Mapping[str, str] | None = None
    directory: Path | None = None
    written: int = 0
    unsealed: int = 0
    unmatched: int = 0  # sealed, but the ledger here has no such entry (no tombstone could be written)
    files: set[str] = field(default_factory=set)
    _ledgers: dict[str, Ledger] = field(default_factory=dict)
    _key: SigningKey | None = None

    def __post_init__(self) -> None:
        self.directory = self.directory or integrity_dir(self.env)

    def _entry(self, victim: Victim) -> LedgerEntry | None:
        assert self.directory is not None and victim.stream is not None
        ledger = self._ledgers.get(victim.stream)
        if ledger is None:
            ledger = self._ledgers[victim.stream] = read_ledger(self.directory / f"{victim.stream}.ledger")
        entry = ledger.entries.get(victim.seq) if victim.seq is not None else None
        return entry if entry is not None and entry.record_id == victim.record_id else None

    def admit(self, victims: Sequence[Victim], *, force: bool = False) -> list[Victim]:
        """Tombstone the sealed victims (fsync'd); returns those that may now be deleted.

        A sealed record whose ledger entry is not found here cannot be tombstoned; it is kept
        (and counted in :attr:`unmatched`) unless ``force`` — erasure deletes it anyway.
        """
        from genai_audit.ledger import load_signing_key

        entries: list[LedgerEntry] = []
        removable: list[Victim] = []
        for victim in victims:
            if victim.stream is None:
                self.unsealed += 1
                removable.append(victim)
                continue
            entry = self._entry(victim)
            if entry is None:
                self.unmatched += 1
                if force:
                    removable.append(victim)
                continue
            entries.append(entry)
            removable.append(victim)
        if entries:
            assert self.directory is not None
            if self._key is None:
                self._key = load_signing_key(self.env)
            self.written += write_tombstones(self.directory, self._key, entries, self.reason)
            self.files.update(str(self.directory / f"{entry.stream}.tombstones") for entry in entries)
        return removable


# --- SQLite ---------------------------------------------------------------------------------------------------

#: the triggers that refuse deletes; dropped and recreated only inside :func:`sqlite_delete`'s transaction
GUARD_TRIGGERS = ("spans_no_delete", "span_events_no_delete", f"{TOKEN_INDEX}_no_delete")
_GUARD_TABLE = {
    "spans_no_delete": "spans",
    "span_events_no_delete": "span_events",
    f"{TOKEN_INDEX}_no_delete": TOKEN_INDEX,
}


def _guard_sql(name: str) -> str:
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE DELETE ON {_GUARD_TABLE[name]}\n"
        "    BEGIN SELECT RAISE(ABORT, 'genai-audit store is append-only'); END"
    )


def _json_path(attribute: str) -> str:
    return f'$.attributes."{attribute}"'


@contextmanager
def _unguarded(conn: sqlite3.Connection) -> Iterator[set[str]]:
    """One ``BEGIN IMMEDIATE`` transaction without the refusal triggers, recreated before ``COMMIT``.

    Yields the names in the store's schema. Another connection never sees the store unguarded: it
    waits for the write lock, then sees the committed schema, triggers included.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        saved = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                f"AND name IN ({', '.join('?' * len(GUARD_TRIGGERS))})",
                GUARD_TRIGGERS,
            ).fetchall()
        )
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        for name in saved:
            conn.execute(f"DROP TRIGGER {name}")
        yield names
        for name in GUARD_TRIGGERS:  # as they were; and the standard guard where one was missing
            if name in saved:
                conn.execute(saved[name])
            elif name != GUARD_TRIGGERS[2] or TOKEN_INDEX in names:
                conn.execute(_guard_sql(name))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def sqlite_delete(conn: sqlite3.Connection, rows: Sequence[int]) -> int:
    """Delete span rows (``spans.seq``) with their events and index rows; the sanctioned maintenance path.

    One transaction: drop the refusal triggers, delete, recreate the triggers, commit. Returns the
    number of event documents deleted. Write the tombstones first.
    """
    if not rows:
        return 0
    events = 0
    with _unguarded(conn) as names:
        for part in chunks(list(rows), 400):
            marks = ", ".join("?" * len(part))
            if TEXT_INDEX in names:
                values = ", ".join(f"json_extract(doc, '{_json_path(a)}')" for a in TEXT_COLUMNS.values())
                conn.execute(
                    f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rowid, {', '.join(TEXT_COLUMNS)}) "
                    f"SELECT 'delete', seq, {values} FROM spans WHERE seq IN ({marks}) AND json_valid(doc)",
                    list(part),
                )
            if TOKEN_INDEX in names:
                conn.execute(f"DELETE FROM {TOKEN_INDEX} WHERE span_seq IN ({marks})", list(part))
            before = conn.total_changes
            conn.execute(
                f"DELETE FROM span_events WHERE EXISTS (SELECT 1 FROM spans WHERE spans.seq IN ({marks}) "
                "AND spans.trace_id = span_events.trace_id AND spans.span_id = span_events.span_id)",
                list(part),
            )
            events += conn.total_changes - before
            conn.execute(f"DELETE FROM spans WHERE seq IN ({marks})", list(part))
    return events


def sqlite_purge(conn: sqlite3.Connection, victims: Iterable[Victim]) -> int:
    """After an erasure, remove what the erased records may have left behind; returns event documents deleted.

    Index rows and the ids events are filed under are derived data that anyone with the file can
    edit, so the deletion by row (:func:`sqlite_delete`) may have missed some: this deletes every
    event document that names an erased span, by the ids it is filed under or by its own, and
    rebuilds the full-text and token indexes from the documents that remain. One guarded
    transaction, like :func:`sqlite_delete`.
    """
    keys = {(victim.trace_id, victim.span_id) for victim in victims}
    if not keys:
        return 0
    with _unguarded(conn) as names:
        doomed = [
            (seq,)
            for seq, trace, span, named_trace, named_span in conn.execute(
                "SELECT seq, trace_id, span_id, "
                "CASE WHEN json_valid(doc) THEN json_extract(doc, '$.trace_id') END, "
                "CASE WHEN json_valid(doc) THEN json_extract(doc, '$.span_id') END FROM span_events"
            ).fetchall()
            if (trace, span) in keys or (named_trace, named_span) in keys
        ]
        conn.executemany("DELETE FROM span_events WHERE seq = ?", doomed)
        if TEXT_INDEX in names and TOKEN_INDEX in names:
            refill_search_indexes(conn)
    return len(doomed)


def sqlite_scrub(conn: sqlite3.Connection) -> None:
    """Leave no copy of deleted content in the file: merge the full-text index, VACUUM, empty the WAL."""
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    if TEXT_INDEX in names:
        conn.execute(f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}) VALUES ('optimize')")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def remove_sqlite(
    conn: sqlite3.Connection,
    victims: Iterable[Victim],
    tombstoner: Tombstoner,
    progress: Progress | None,
    *,
    force: bool = False,
) -> tuple[int, int]:
    """Tombstone, then delete, batch by batch; returns (records deleted, event documents deleted)."""
    deleted = events = 0
    batch: list[Victim] = []

    def flush() -> None:
        nonlocal deleted, events
        removable = tombstoner.admit(batch, force=force)
        try:
            events += sqlite_delete(conn, [v.row for v in removable if v.row is not None])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete from the audit store: {exc}") from None
        deleted += len(removable)
        if progress is not None:
            progress.advance(len(batch))
        batch.clear()

    for victim in victims:
        batch.append(victim)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return deleted, events


# --- Elasticsearch ----------------------------------------------------------------------------------------------


def es_count(store: ElasticsearchAuditStore, query: Mapping[str, Any]) -> int:
    body = store._call(store.client.count, index=store.traces, query=dict(query), ignore_unavailable=True)
    return int(body.get("count", 0))


def es_pages(store: ElasticsearchAuditStore, query: Mapping[str, Any], *, size: int = BATCH) -> Iterator[list[Victim]]:
    """Matching span documents, a page at a time.

    Point in time + ``search_after``; plain ``search_after`` on the ids when the cluster has no point in time.
    """
    from genai_audit.forensics.model import parse_timestamp

    pit: str | None = None
    try:
        opened = store._call(store.client.open_point_in_time, index=store.traces, keep_alive="2m")
        pit = str(opened["id"])
    except (StoreError, KeyError):
        pit = None
    after: list[Any] | None = None
    try:
        while True:
            options: dict[str, Any] = {
                "size": size,
                "query": dict(query),
                "_source": _SOURCE_FIELDS,
                "track_total_hits": False,
            }
            if after is not None:
                options["search_after"] = after
            if pit is not None:
                options["pit"] = {"id": pit, "keep_alive": "2m"}
                options["sort"] = [{"_shard_doc": "asc"}]
                body = store._call(store.client.search, **options)
                pit = str(body.get("pit_id", pit))
            else:
                options["sort"] = [{"trace_id": "asc"}, {"span_id": "asc"}]
                body = store._call(store.client.search, index=store.traces, ignore_unavailable=True, **options)
            hits = body.get("hits", {}).get("hits", [])
            if not hits:
                return
            page = []
            for hit in hits:
                source = hit.get("_source") or {}
                stamp = source.get("@timestamp")
                try:
                    start = parse_timestamp(stamp) if isinstance(stamp, str) else None
                except ValueError:
                    start = None
                page.append(victim_of(source, start or 0, index=str(hit["_index"]), doc_id=str(hit["_id"])))
            yield page
            if len(hits) < size:
                return
            after = hits[-1]["sort"]
    finally:
        if pit is not None:
            try:
                store._call(store.client.close_point_in_time, id=pit)
            except StoreError:
                pass


def _bulk_delete(store: ElasticsearchAuditStore, targets: Sequence[tuple[str, str]]) -> int:
    """Bulk ``delete`` of ``(index, id)``; returns how many were deleted (404: already gone, not an error)."""
    if not targets:
        return 0
    operations = [{"delete": {"_index": index, "_id": doc_id}} for index, doc_id in targets]
    body = store._call(store.client.bulk, operations=operations)
    deleted = 0
    for item in body.get("items", []):
        result = item.get("delete", {})
        status = int(result.get("status", 0))
        if status == 200:
            deleted += 1
        elif status != 404:
            error = result.get("error") or {}
            kind = error.get("type", "error") if isinstance(error, dict) else "error"
            raise StoreError(f"Elasticsearch refused a delete: HTTP {status} {kind}")
    return deleted


def _event_targets(store: ElasticsearchAuditStore, victims: Sequence[Victim]) -> list[tuple[str, str]]:
    targets: list[tuple[str, str]] = []
    for part in chunks(list(victims), 100):
        wanted = {(v.trace_id, v.span_id) for v in part}
        body = store._call(
            store.client.search,
            index=store.logs,
            ignore_unavailable=True,
            track_total_hits=False,
            size=10_000,
            _source=["trace_id", "span_id"],
            query={
                "bool": {
                    "filter": [
                        {"terms": {"span_id": sorted({s for _, s in wanted})}},
                        {"terms": {"trace_id": sorted({t for t, _ in wanted})}},
                    ]
                }
            },
        )
        for hit in body.get("hits", {}).get("hits", []):
            source = hit.get("_source") or {}
            if (source.get("trace_id"), source.get("span_id")) in wanted:
                targets.append((str(hit["_index"]), str(hit["_id"])))
    return targets


def remove_elasticsearch(
    store: ElasticsearchAuditStore,
    query: Mapping[str, Any],
    tombstoner: Tombstoner,
    progress: Progress | None,
    *,
    force: bool = False,
) -> tuple[int, int]:
    """Tombstone, then bulk-delete each page of matching span documents and their events; then refresh."""
    deleted = events = 0
    for page in es_pages(store, query):
        removable = tombstoner.admit(page, force=force)
        events += _bulk_delete(store, _event_targets(store, removable))
        # by the _id each is stored under: the record id, unless someone filed it under another
        deleted += _bulk_delete(store, [(v.index, v.doc_id or v.record_id) for v in removable if v.index])
        if progress is not None:
            progress.advance(len(page))
    store._call(store.client.indices.refresh, index=f"{store.traces},{store.logs}", ignore_unavailable=True)
    return deleted, events


def ilm_available(store: ElasticsearchAuditStore) -> bool:
    """Whether the cluster offers index lifecycle management (x-pack); the test node has none."""
    try:
        body = store._call(store.client.ilm.get_status)
    except StoreError:
        return False
    return "operation_mode" in body


def data_dir() -> Path:
    """The directory the default store lives in (erasure certificates are written beside it)."""
    from genai_audit.config import default_store_path

    return default_store_path().parent
