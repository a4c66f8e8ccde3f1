"""``genai-audit verify``: the stored records against their ledgers, tombstones and signed checkpoints.

Every stored document's leaf hash is recomputed and compared with the ledger
of its stream; every ledger is compared with its stream's signed checkpoints
(signature, tree size, root, consistency from one checkpoint to the next).
Problems are named:

``MODIFIED``   a stored document whose recomputed hash differs from its ledger entry
``DELETED``    a ledger entry with no stored document and no tombstone
``INSERTED``   a stored document the ledgers do not know (no integrity field, unknown stream,
               seq beyond the ledger, or a seq the ledger gives to another record)
``REORDERED``  a document stored under a seq the ledger gives it elsewhere, or stored out of
               seq order (SQLite keeps the insertion order)
``INDEX``      derived data that does not match the sealed document it is derived from, so that
               searches and erasure would miss a record or find it wrongly: SQLite's indexed
               columns, full-text and pseudonym-token index rows (also rows left behind by a
               removal), event filing, SQLite's own indexes; the values Elasticsearch indexed
               for the fields searches read, and the ``_id`` (:mod:`genai_audit.store.derived`)
``LEDGER``     ledger or checkpoint tampering: entries that do not match the signed roots,
               signatures that do not verify, checkpoints that are not append-only, forged tombstones

Notes do not fail verification: tombstoned records (retention, erasure), records
the store refused (``UNSTORED``), entries after a stream's last checkpoint
(``UNSIGNED``: a process that did not shut down cleanly, or one still running),
and a record sequenced twice but stored once (``DUPLICATE``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genai_audit.checkpoint import Checkpoint, NoteError, VerifierKey, open_note, split_notes
from genai_audit.integrity import (
    INTEGRITY_FIELD,
    bound_events,
    document_leaf,
    elasticsearch_store_name,
    record_id,
    sqlite_store_name,
)
from genai_audit.ledger import (
    CHECKPOINTS_SUFFIX,
    LEDGER_MAGIC,
    LEDGER_SUFFIX,
    TOMBSTONES_SUFFIX,
    UNSTORED,
    Ledger,
    integrity_dir,
    load_verifier,
    read_ledger,
    tombstone_message,
)
from genai_audit.merkle import MerkleTree, verify_consistency

if TYPE_CHECKING:
    from genai_audit.store.derived import DerivedProblem

PROBLEM_KINDS: Final = ("MODIFIED", "DELETED", "INSERTED", "REORDERED", "INDEX", "LEDGER")
TEXT_LIMIT: Final = 100  # findings of one kind listed in text output; JSON lists all


logger = logging.getLogger("genai_audit.verify")

@dataclass(frozen=True)
class StoredRecord:
    """A document as the store returned it; ``position`` is its stored order where the store keeps one."""

    doc: Mapping[str, Any]
    position: int | None = None
    #: the span's event documents as stored, in order, when its seal binds events (else None)
    events: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    stream: str | None = None
    seq: int | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def text(self) -> str:
        from genai_audit.forensics.render import terminal_text  # ids, streams and details come from the store

        where = []
        if self.trace_id is not None:
            where.append(f"trace {self.trace_id} span {self.span_id}")
        if self.stream is not None:
            where.append(f"stream {self.stream}" + (f" seq {self.seq}" if self.seq is not None else ""))
        if not where:
            return terminal_text(f"{self.kind}: {self.detail}")
        return terminal_text(f"{self.kind:<10} ({', '.join(where)}): {self.detail}")


@dataclass
class Report:
    store: str
    key: str
    records: int = 0
    streams: int = 0
    checkpoints: int = 0
    problems: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def ledger(self, stream: str, detail: str) -> None:
        """A problem with a stream's integrity files rather than with a stored record."""
        self.problems.append(Finding("LEDGER", detail, stream))

    def as_json(self) -> str:
        body = {
            "ok": self.ok,
            "store": self.store,
            "key": self.key,
            "records": self.records,
            "streams": self.streams,
            "checkpoints": self.checkpoints,
            "counts": dict(Counter(f.kind for f in self.problems)),
            "problems": [asdict(f) for f in self.problems],
            "notes": [asdict(f) for f in self.notes],
        }
        return json.dumps(body, indent=2) + "\n"

    def as_text(self) -> str:
        lines = [
            f"store {self.store}: {self.records} records in {self.streams} stream(s), "
            f"{self.checkpoints} signed checkpoint(s) verified with {self.key}"
        ]
        shown: Counter[str] = Counter()
        for finding in self.problems:
            shown[finding.kind] += 1
            if shown[finding.kind] <= TEXT_LIMIT:
                lines.append(finding.text())
        for kind, count in shown.items():
            if count > TEXT_LIMIT:
                lines.append(f"... and {count - TEXT_LIMIT} more {kind} (use --format json for all)")
        for finding in self.notes:
            lines.append("note: " + finding.text())
        counts = Counter(f.kind for f in self.problems)
        summary = ", ".join(f"{counts[kind]} {kind}" for kind in PROBLEM_KINDS if counts[kind])
        lines.append(f"FAILED: {summary}" if summary else "OK: every record matches its signed ledger")
        return "\n".join(lines) + "\n"


# --- per stream ------------------------------------------------------------------------------------


@dataclass
class _Stream:
    ledger: Ledger
    tree: MerkleTree
    signed_size: int = 0
    signed: bool = False
    tombstones: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    seq_of: dict[str, int] = field(default_factory=dict)


def _signed_checkpoints(stream: _Stream, directory: Path, verifier: VerifierKey, report: Report) -> list[Checkpoint]:
    """The stream's checkpoints that carry a valid signature for this stream, in file order."""
    name = stream.ledger.stream
    try:
        content = (directory / f"{name}{CHECKPOINTS_SUFFIX}").read_text(encoding="utf-8")
    except FileNotFoundError:
        report.ledger(name, "the stream has no checkpoints file")
        return []
    except (OSError, UnicodeDecodeError) as exc:
        report.ledger(name, f"cannot read the checkpoints: {exc}")
        return []
    notes, torn = split_notes(content)
    if torn:
        report.notes.append(Finding("TORN", "the checkpoints file ends in a partial checkpoint", name))
    signed: list[Checkpoint] = []
    for number, note in enumerate(notes, start=1):
        try:
            checkpoint = Checkpoint.parse(open_note(note, verifier))
        except NoteError as exc:
            report.ledger(name, f"checkpoint {number}: {exc}")
            continue
        if checkpoint.origin.endswith("/" + name):
            signed.append(checkpoint)
        else:
            report.ledger(name, f"checkpoint {number} is signed for another log ({checkpoint.origin})")
    return signed


def _check_checkpoints(stream: _Stream, directory: Path, verifier: VerifierKey, report: Report) -> None:
    """Each signed checkpoint against the ledger (size, root) and against the one before (consistency)."""
    name, tree = stream.ledger.stream, stream.tree
    checkpoints = _signed_checkpoints(stream, directory, verifier, report)
    report.checkpoints += len(checkpoints)
    stream.signed = bool(checkpoints)
    if not checkpoints:
        report.ledger(name, "no checkpoint of this stream verifies: the stream is not authenticated")
        return
    matched: list[int] = []
    first_bad: Checkpoint | None = None
    unproven = 0
    for previous, checkpoint in zip([None, *checkpoints], checkpoints):
        if checkpoint.size > tree.size:
            report.ledger(
                name,
                f"a checkpoint signs {checkpoint.size} records but the ledger holds {tree.size} "
                "in order: ledger entries were removed",
            )
        elif tree.root(checkpoint.size) != checkpoint.root:
            if first_bad is None or checkpoint.size < first_bad.size:
                first_bad = checkpoint
        else:
            matched.append(checkpoint.size)
        if previous is None:
            continue
        if checkpoint.size < previous.size:
            report.ledger(name, f"a checkpoint shrinks the log from {previous.size} to {checkpoint.size}")
        elif checkpoint.size <= tree.size:
            proof = tree.consistency_proof(previous.size, checkpoint.size)
            unproven += not verify_consistency(previous.size, checkpoint.size, previous.root, checkpoint.root, proof)
    stream.signed_size = max(matched, default=0)
    if first_bad is not None:
        good = max((size for size in matched if size < first_bad.size), default=0)
        report.ledger(
            name,
            f"the ledger does not match the signed checkpoint of size {first_bad.size}: entries "
            f"between seq {good} and {first_bad.size - 1} were changed after signing",
        )
    if unproven:
        report.ledger(
            name,
            f"{unproven} checkpoint(s) are not provably append-only extensions of the one before "
            "(the consistency proof fails)",
        )


def _check_tombstones(stream: _Stream, directory: Path, verifier: VerifierKey, report: Report) -> None:
    name = stream.ledger.stream
    path = directory / f"{name}{TOMBSTONES_SUFFIX}"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        report.ledger(name, f"cannot read the tombstones: {exc}")
        return
    for number, line in enumerate(lines, start=1):
        problem = _tombstone_problem(line, stream, verifier)
        if isinstance(problem, str):
            report.ledger(name, f"tombstone line {number}: {problem}")
        else:
            stream.tombstones.setdefault(int(problem["seq"]), problem)


def _tombstone_problem(line: str, stream: _Stream, verifier: VerifierKey) -> str | Mapping[str, Any]:
    """The tombstone when it is signed and matches the ledger, else what is wrong with it."""
    try:
        payload = json.loads(line)
        signer_name, _, signer_id = str(payload["signer"]).rpartition("+")
        signature = base64.b64decode(payload["sig"], validate=True)
        seq = payload["seq"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return "malformed"
    if not isinstance(payload, dict) or not isinstance(seq, int):
        return "malformed"
    try:
        signed_id = bytes.fromhex(signer_id)
    except ValueError:
        return "malformed signer"
    if not verifier.verify(signer_name, signed_id, tombstone_message(payload), signature):
        return "the signature does not verify"
    entry = stream.ledger.entries.get(seq)
    if entry is None or entry.record_id != payload.get("id") or entry.leaf.hex() != payload.get("leaf"):
        return f"seq {seq} does not match the ledger"
    return payload


def _load_streams(
    directory: Path, wanted: set[str], store: str, all_streams: bool, verifier: VerifierKey, report: Report
) -> dict[str, _Stream]:
    names = set(wanted)
    if directory.is_dir():
        for path in directory.glob(f"*{LEDGER_SUFFIX}"):
            name = path.name.removesuffix(LEDGER_SUFFIX)
            if name in names:
                continue
            if all_streams or _ledger_store(path) == store:
                names.add(name)
    streams: dict[str, _Stream] = {}
    for name in sorted(names):
        path = directory / f"{name}{LEDGER_SUFFIX}"
        if not path.exists():
            continue
        ledger = read_ledger(path)
        for problem in ledger.problems:
            report.ledger(name, problem)
        if ledger.torn:
            report.notes.append(
                Finding(
                    "TORN",
                    "the ledger ends in a partial line (a crash while writing it; "
                    "that record was never handed to the store)",
                    name,
                )
            )
        tree = MerkleTree(ledger.entries[seq].leaf for seq in range(ledger.size))
        stream = _Stream(ledger, tree)
        for seq, entry in sorted(ledger.entries.items()):
            stream.seq_of.setdefault(entry.record_id, seq)
        _check_checkpoints(stream, directory, verifier, report)
        _check_tombstones(stream, directory, verifier, report)
        unsigned = len(ledger.entries) - stream.signed_size
        if stream.signed and unsigned > 0:
            report.notes.append(
                Finding(
                    "UNSIGNED",
                    f"{unsigned} record(s) from seq {stream.signed_size} on are after the last signed "
                    "checkpoint (a process still running or one that did not shut down cleanly)",
                    name,
                )
            )
        streams[name] = stream
    report.streams = len(streams)
    return streams


def _ledger_store(path: Path) -> str | None:
    try:
        with path.open("r", encoding="utf-8") as handle:
            first = handle.readline()
        header = json.loads(first[len(LEDGER_MAGIC) + 1 :]) if first.startswith(LEDGER_MAGIC + " ") else {}
    except (OSError, ValueError):
        return None
    store = header.get("store") if isinstance(header, dict) else None
    return store if isinstance(store, str) else None


# --- matching records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    """What verification keeps of a stored document (not its content: stores can be large)."""

    trace_id: str
    span_id: str
    position: int | None
    id: str
    leaf: bytes
    claim: tuple[str, int, str | None] | None
    #: (events stored, events the seal binds) when the seal binds any
    events: tuple[int, int] | None = None

    @classmethod
    def of(cls, stored: StoredRecord) -> _Record:
        doc = stored.doc
        bound = bound_events(doc)
        events = list(stored.events or ()) if bound else None
        return cls(
            str(doc.get("trace_id")),
            str(doc.get("span_id")),
            stored.position,
            record_id(doc),
            document_leaf(doc, events),
            _claim(doc),
            (len(events), bound) if events is not None else None,
        )

    def finding(self, kind: str, detail: str, stream: str | None = None, seq: int | None = None) -> Finding:
        return Finding(kind, detail, stream, seq, self.trace_id, self.span_id)


def _claim(doc: Mapping[str, Any]) -> tuple[str, int, str | None] | None:
    mark = doc.get(INTEGRITY_FIELD)
    if not isinstance(mark, Mapping):
        return None
    stream, seq, leaf = mark.get("stream"), mark.get("seq"), mark.get("leaf")
    if not isinstance(stream, str) or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    return stream, seq, leaf if isinstance(leaf, str) else None


def verify_records(
    records: Iterable[StoredRecord],
    *,
    store: str,
    directory: Path,
    verifier: VerifierKey,
    all_streams: bool = False,
) -> Report:
    """Check ``records`` (one store's span documents) against the integrity files in ``directory``."""
    report = Report(store, f"{verifier.name}+{verifier.key_id.hex()}")
    loaded = [_Record.of(stored) for stored in records]
    report.records = len(loaded)
    wanted = {record.claim[0] for record in loaded if record.claim is not None}
    streams = _load_streams(directory, wanted, store, all_streams, verifier, report)

    present: dict[str, list[_Record]] = {}
    for record in loaded:
        present.setdefault(record.id, []).append(record)
    placed: dict[tuple[str, int], _Record] = {}  # ledger position -> the stored record found for it
    for record in loaded:
        claim = record.claim
        if claim is None:
            report.problems.append(record.finding("INSERTED", "no integrity field: no ledger vouches for it"))
            continue
        name, seq, claimed_leaf = claim
        stream = streams.get(name)
        if stream is None:
            report.problems.append(record.finding("INSERTED", "its stream has no ledger", name, seq))
            continue
        entry = stream.ledger.entries.get(seq)
        if entry is None or entry.record_id != record.id:
            elsewhere = stream.seq_of.get(record.id)
            if elsewhere is not None:
                report.problems.append(
                    record.finding(
                        "REORDERED", f"stored with seq {seq}; the ledger has this record at seq {elsewhere}", name, seq
                    )
                )
                _place(placed, stream, name, elsewhere, record, report)
            elif entry is None:
                report.problems.append(
                    record.finding(
                        "INSERTED", f"seq {seq} is beyond the ledger ({len(stream.ledger.entries)} entries)", name, seq
                    )
                )
            else:
                report.problems.append(
                    record.finding("INSERTED", f"the ledger gives seq {seq} to record {entry.record_id}", name, seq)
                )
            continue
        _place(placed, stream, name, seq, record, report)
        if record.leaf == entry.leaf and claimed_leaf not in (None, entry.leaf.hex()):
            report.problems.append(record.finding("MODIFIED", "its integrity field was altered", name, seq))

    _check_order(placed, report)
    _check_missing(streams, placed, present, report)
    return report


def _place(
    placed: dict[tuple[str, int], _Record], stream: _Stream, name: str, seq: int, record: _Record, report: Report
) -> None:
    entry = stream.ledger.entries[seq]
    if record.leaf != entry.leaf:
        detail = "the stored document does not match its ledger hash"
        if record.events is not None:
            stored, bound = record.events
            detail = (
                f"the stored document or its events do not match its ledger hash ({bound} events sealed with it, "
                f"{stored} stored)"
            )
        report.problems.append(record.finding("MODIFIED", detail, name, seq))
    first = placed.setdefault((name, seq), record)
    if first is not record:
        if record.leaf == first.leaf:
            report.notes.append(record.finding("DUPLICATE", "stored twice with identical content", name, seq))
        else:
            report.problems.append(record.finding("INSERTED", "a second, different copy of this record", name, seq))


def _check_order(placed: dict[tuple[str, int], _Record], report: Report) -> None:
    """Within a stream, stored order (where the store keeps one) must follow seq order."""
    by_stream: dict[str, list[tuple[int, _Record]]] = {}
    for (name, seq), record in placed.items():
        if record.position is not None:
            by_stream.setdefault(name, []).append((seq, record))
    for name, items in by_stream.items():
        by_seq = sorted(items, key=lambda item: item[0])
        by_position = sorted(items, key=lambda item: item[1].position or 0)
        for (expected_seq, _), (seq, record) in zip(by_seq, by_position):
            if seq != expected_seq:
                report.problems.append(
                    record.finding(
                        "REORDERED",
                        f"stored out of order: where seq {expected_seq} belongs (store position {record.position})",
                        name,
                        seq,
                    )
                )


def _check_missing(
    streams: Mapping[str, _Stream],
    placed: Mapping[tuple[str, int], _Record],
    present: Mapping[str, list[_Record]],
    report: Report,
) -> None:
    tombstoned: Counter[str] = Counter()
    for name, stream in streams.items():
        for seq, entry in sorted(stream.ledger.entries.items()):
            stone = stream.tombstones.get(seq)
            if (name, seq) in placed:
                if stone is not None and stone.get("reason") != UNSTORED:
                    report.notes.append(
                        Finding("TOMBSTONED", f"tombstoned ({stone.get('reason')}) but still stored", name, seq)
                    )
                continue
            if stone is not None:
                tombstoned[str(stone.get("reason"))] += 1
                continue
            copies = present.get(entry.record_id, [])
            trace, span = entry.record_id[:32], entry.record_id[32:]
            if any(copy.leaf == entry.leaf for copy in copies):
                report.notes.append(
                    Finding("DUPLICATE", "sequenced again, stored once under another seq", name, seq, trace, span)
                )
                continue
            tail = " (after the last signed checkpoint)" if seq >= stream.signed_size else ""
            report.problems.append(
                Finding("DELETED", f"in the ledger, not in the store, and no tombstone{tail}", name, seq, trace, span)
            )
    for reason, count in sorted(tombstoned.items()):
        kind = "UNSTORED" if reason == UNSTORED else "TOMBSTONED"
        report.notes.append(Finding(kind, f"{count} record(s) absent with a signed tombstone ({reason})"))


# --- reading stores --------------------------------------------------------------------------------


def sqlite_records(
    path: str | os.PathLike[str], derived: list[DerivedProblem] | None = None
) -> Iterator[StoredRecord]:
    """Every span document of a SQLite store, with its row order.

    With ``derived``, the store's derived data (indexed columns, token and full-text index,
    event filing) is checked against the documents as they are read, in the same snapshot, and
    what differs is appended to ``derived`` once the last record has been read.
    """
    from genai_audit.store.derived import DerivedCheck, DerivedProblem
    from genai_audit.store.sqlite import connect, read_events

    conn = connect(path, create=False)
    check: DerivedCheck | None = None
    try:
        conn.execute("BEGIN")  # one snapshot for the documents, their events and their columns
        if derived is not None:
            check = DerivedCheck(conn)
            check.start(path)
        sql = check.select if check is not None else "SELECT seq, doc FROM spans ORDER BY seq"
        for position, text, *columns in conn.execute(sql):
            try:
                doc = json.loads(text)
            except (TypeError, ValueError):
                doc = None
            if not isinstance(doc, dict):
                if derived is not None:
                    trace, span = columns[:2]
                    derived.append(DerivedProblem(
                        "MODIFIED", f"the stored document (row {position}) is not a JSON object", str(trace), str(span)
                    ))
                continue
            if check is not None:
                check.row(int(position), doc, columns)
            events = None
            if bound_events(doc):  # the seal covers its events: read them as stored
                events = read_events(conn, str(doc.get("trace_id")), str(doc.get("span_id")))
            yield StoredRecord(doc, int(position), events)
        if check is not None and derived is not None:
            derived.extend(check.finish())
    finally:
        if check is not None:
            check.close()
        conn.close()


def add_derived(report: Report, problems: Iterable[DerivedProblem]) -> None:
    """Add what the derived-data check found, except about records the report already names."""
    named = {(f.trace_id, f.span_id) for f in report.problems if f.trace_id is not None}
    for problem in problems:
        if problem.stored and (problem.trace_id, problem.span_id) in named:
            continue
        report.problems.append(Finding(problem.kind, problem.detail, trace_id=problem.trace_id,
                                       span_id=problem.span_id))


def elasticsearch_records(
    url: str,
    env: Mapping[str, str] | None = None,
    *,
    page_size: int = 1000,
    derived: list[DerivedProblem] | None = None,
) -> tuple[str, Iterator[StoredRecord]]:
    """The store name and every span document of an Elasticsearch namespace, paged by stream and seq.

    With ``derived``, what the cluster indexed of each document (the fields searches, erasure and
    retention read, and its ``_id``) is compared with the document, and what differs appended to
    ``derived`` once the last record has been read.
    """
    from genai_audit.store.derived import IndexedCheck, indexed_fields
    from genai_audit.store.elasticsearch import ElasticsearchSettings, data_stream

    settings = ElasticsearchSettings.resolve(url, env=os.environ if env is None else env)
    index = data_stream("traces", settings.namespace)

    def documents() -> Iterator[StoredRecord]:
        from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

        client = settings.client(60.0)
        reader = ElasticsearchAuditStore(settings=settings, request_timeout=60.0)
        events_of = reader.events
        try:  # what was written in the last second becomes searchable (a read-only user may not be allowed)
            client.indices.refresh(index=f"{index},{reader.logs}", ignore_unavailable=True)
        except Exception:  # verification reads what is searchable then
            logger.debug("genai-audit: could not refresh %s before verifying", index, exc_info=True)
        sort: list[Any] = [
            {"integrity.stream": {"order": "asc", "missing": "_last", "unmapped_type": "keyword"}},
            {"integrity.seq": {"order": "asc", "missing": "_last", "unmapped_type": "long"}},
            {"trace_id": {"order": "asc", "unmapped_type": "keyword"}},
            {"span_id": {"order": "asc", "unmapped_type": "keyword"}},
        ]
        after: list[Any] | None = None
        try:
            check = None
            if derived is not None:
                caps = client.field_caps(index=index, fields=list(indexed_fields()), ignore_unavailable=True)
                check = IndexedCheck(caps.body)
            while True:
                response = client.search(
                    index=index,
                    size=page_size,
                    sort=sort,
                    search_after=after,
                    ignore_unavailable=True,
                    query={"match_all": {}},
                    track_total_hits=False,
                    docvalue_fields=check.docvalue_fields if check is not None else None,
                )
                hits = response.body.get("hits", {}).get("hits", [])
                sources = [hit["_source"] for hit in hits]
                if check is not None:
                    for hit in hits:
                        check.hit(hit)
                # the events of spans whose seal covers them, found as replay finds them
                events = events_of([doc for doc in sources if bound_events(doc)])
                for doc in sources:
                    key = (str(doc.get("trace_id")), str(doc.get("span_id")))
                    yield StoredRecord(doc, None, events.get(key, []) if bound_events(doc) else None)
                if len(hits) < page_size:
                    break
                after = hits[-1]["sort"]
            if check is not None and derived is not None:
                derived.extend(check.problems)
        finally:
            client.close()
            reader.close()

    return elasticsearch_store_name(settings.namespace), documents()


def run(
    store: str | None,
    *,
    directory: str | os.PathLike[str] | None = None,
    public_key: str | None = None,
    all_streams: bool = False,
    env: Mapping[str, str] | None = None,
) -> Report:
    """Verify a store (SQLite file or Elasticsearch URL; default ``GENAI_AUDIT_STORE``).

    Raises :class:`~genai_audit.config.ConfigError` for bad settings or keys and
    :class:`~genai_audit.store.sqlite.StoreError` for a missing store.
    """
    from genai_audit.config import is_remote, store_path

    env = os.environ if env is None else env
    target = store_path(store, env, allow_remote=True)
    verifier = load_verifier(public_key, env)
    folder = Path(directory).expanduser() if directory else integrity_dir(env)
    derived: list[DerivedProblem] = []
    if is_remote(target):
        name, records = elasticsearch_records(target, env, derived=derived)
    else:
        name, records = sqlite_store_name(target), sqlite_records(target, derived)
    report = verify_records(records, store=name, directory=folder, verifier=verifier, all_streams=all_streams)
    add_derived(report, derived)
    return report
