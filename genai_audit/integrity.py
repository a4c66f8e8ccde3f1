"""Tamper evidence: every stored record is hashed, ledgered and signed outside the store.

How it works
    Before a document reaches a store, :class:`Sealer` computes its *leaf hash*:
    ``SHA-256(0x00 || canonical JSON)`` (RFC 6962 leaf) over the document exactly
    as it will be stored — already redacted — without its ``integrity`` field.
    Canonical JSON is sorted keys, no whitespace, UTF-8. Each sealer writes
    *streams*: a stream has a random id and an append-only sequence, and each
    record gets the next ``seq``. The record carries its place in the document::

        "integrity": {"stream": "<32 hex>", "seq": 41, "leaf": "<64 hex>"}

    and ``<stream> <seq> <record id> <leaf hex>`` is appended to the stream's
    ledger file and fsync'd (once per batch) *before* the store is handed the
    document. The record id is ``<trace_id><span_id>``, the Elasticsearch ``_id``.

Files (directory ``GENAI_AUDIT_INTEGRITY_DIR``, else ``<user data dir>/genai-audit/integrity``; 0700, files 0600)
    ``<stream>.ledger``
        first line ``genai-audit-ledger/1 {json header}`` (stream, origin, the
        store it writes to, creation time, host, pid, signer), then one line per record.
    ``<stream>.checkpoints``
        signed checkpoints (C2SP ``tlog-checkpoint`` in a C2SP ``signed-note``,
        Ed25519), each followed by a blank line: at the stream's start, every
        ``checkpoint_every`` records or ``checkpoint_seconds`` (checked when records
        arrive), at flush and at shutdown. The origin line is ``<origin>/<stream>``;
        the root is the RFC 6962 tree over the stream's leaves. Each new checkpoint
        is checked to be an append-only extension of the previous one (consistency
        proof) before it is written.
    ``<stream>.tombstones``
        JSON lines, Ed25519-signed, naming records removed on purpose (``retention``,
        ``erasure``) or never stored (``unstored``: the store refused the write):
        stream, seq, record id, leaf hash, reason, time — no content.

Why the ledger is written first
    A crash between the two writes then leaves a ledger entry without a stored
    record, which ``genai-audit verify`` reports. The other order would leave a
    stored record that no hash outside the store vouches for: its content could
    be changed undetectably.

The signing key
    ``GENAI_AUDIT_SIGNING_KEY_FILE`` (PEM PKCS #8 Ed25519, a raw 32-byte seed, or a
    ``PRIVATE+KEY+<name>+<id>+<base64>`` line); else ``<user data dir>/genai-audit/signing-key.pem``,
    generated on first use (0600), with its verifier key beside it in ``signing-key.vkey``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from genai_audit.checkpoint import Checkpoint, NoteError, SigningKey, sign_note, valid_name
from genai_audit.ledger import (
    CHECKPOINTS_SUFFIX,
    LEDGER_MAGIC,
    LEDGER_SUFFIX,
    STREAM_RE,
    UNSTORED,
    IntegrityError,
    Ledger,
    LedgerEntry,
    append_synced,
    default_origin,
    integrity_dir,
    load_signing_key,
    now,
    read_ledger,
    write_tombstones,
)
from genai_audit.merkle import MerkleTree, leaf_hash, verify_consistency

logger = logging.getLogger("genai_audit.integrity")

INTEGRITY_FIELD: Final = "integrity"
#: reasons a caller may give :func:`record_tombstone`
REASONS: Final = ("retention", "erasure")
DEFAULT_CHECKPOINT_EVERY: Final = 1000
DEFAULT_CHECKPOINT_SECONDS: Final = 30.0
#: a stream is closed and a new one started beyond this many records (bounds memory: ~64 bytes a record)
DEFAULT_MAX_RECORDS: Final = 1 << 18
_RECENT: Final = 8192  # record ids remembered so a re-exported record keeps its seq

# --- hashing ---------------------------------------------------------------------------------------


def _canonical_text(doc: Mapping[str, Any]) -> str:
    body = {key: value for key, value in doc.items() if key != INTEGRITY_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8 — without the ``integrity`` field."""
    return _canonical_text(doc).encode("utf-8", "surrogatepass")


def _with_mark(text: str, mark: Any) -> str:
    """The canonical JSON ``text`` of a document with its ``integrity`` field added (as the last member)."""
    field = f'"{INTEGRITY_FIELD}":{json.dumps(mark, separators=(",", ":"))}'
    return "{" + field + "}" if text == "{}" else text[:-1] + "," + field + "}"


#: Between a span document and its events in the hashed bytes (canonical JSON holds no raw newline).
_EVENTS_SEPARATOR: Final = b"\n"


def canonical_events(events: Sequence[Mapping[str, Any]]) -> bytes:
    """A span's event documents, in their order, as one canonical JSON array."""
    body = [{key: value for key, value in event.items() if key != INTEGRITY_FIELD} for event in events]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8", "surrogatepass")


def document_leaf(doc: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None = None) -> bytes:
    """The RFC 6962 leaf hash of a stored span document, bound to its event documents when it has any.

    A span without events hashes as ``SHA-256(0x00 || canonical JSON)``; with events, the
    canonical events array follows a newline, so that changing, removing or adding an
    event (an exception message, a GenAI event carrying content) changes the leaf too.
    """
    return _leaf_of(canonical(doc), events)


def _leaf_of(canonical_doc: bytes, events: Sequence[Mapping[str, Any]] | None) -> bytes:
    if not events:
        return leaf_hash(canonical_doc)
    return leaf_hash(canonical_doc + _EVENTS_SEPARATOR + canonical_events(events))


def bound_events(doc: Mapping[str, Any]) -> int:
    """How many event documents the span document's seal binds (0: none, or sealed before events were)."""
    mark = doc.get(INTEGRITY_FIELD)
    count = mark.get("events") if isinstance(mark, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def sqlite_store_name(path: str | os.PathLike[str]) -> str:
    """How ledgers name an SQLite store: its absolute path."""
    return f"sqlite:{Path(path).expanduser().resolve()}"


def elasticsearch_store_name(namespace: str) -> str:
    """How ledgers name an Elasticsearch store: its data stream namespace."""
    return f"elasticsearch:{namespace}"


def record_id(doc: Mapping[str, Any]) -> str:
    """``<trace_id><span_id>``: the same id in every store."""
    return f"{doc.get('trace_id', '')}{doc.get('span_id', '')}"


def entries_of(docs: Iterable[Mapping[str, Any]]) -> list[LedgerEntry]:
    """The ledger entries sealed documents claim (documents without a valid ``integrity`` field are skipped)."""
    found: list[LedgerEntry] = []
    for doc in docs:
        mark = doc.get(INTEGRITY_FIELD)
        if not isinstance(mark, Mapping):
            continue
        stream, seq, leaf = mark.get("stream"), mark.get("seq"), mark.get("leaf")
        if isinstance(stream, str) and isinstance(seq, int) and isinstance(leaf, str):
            try:
                found.append(LedgerEntry(stream, seq, record_id(doc), bytes.fromhex(leaf)))
            except ValueError:
                continue
    return found


# --- tombstones ------------------------------------------------------------------------------------


def record_tombstones(
    items: Iterable[tuple[str, int, str]],
    reason: str,
    *,
    directory: Path | None = None,
    key: SigningKey | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Tombstone several ``(stream, seq, record id)`` records at once; see :func:`record_tombstone`."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}")
    directory = directory or integrity_dir(env)
    key = key or load_signing_key(env)
    ledgers: dict[str, Ledger] = {}
    entries: list[LedgerEntry] = []
    for stream, seq, rid in items:
        if not STREAM_RE.match(stream):
            raise IntegrityError(f"not a stream id: {stream!r}")
        if stream not in ledgers:
            ledgers[stream] = read_ledger(directory / f"{stream}{LEDGER_SUFFIX}")
        entry = ledgers[stream].entries.get(seq)
        if entry is None or entry.record_id != rid:
            raise IntegrityError(f"record {rid} is not at seq {seq} of stream {stream}")
        entries.append(entry)
    return write_tombstones(directory, key, entries, reason)


def record_tombstone(
    stream: str,
    seq: int,
    record_id: str,
    reason: str,
    *,
    directory: Path | None = None,
    key: SigningKey | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Record that a stored record was removed on purpose, so ``genai-audit verify`` accepts its absence.

    ``reason`` is ``retention`` or ``erasure``. The tombstone holds no content:
    stream, seq, record id (trace and span id), the leaf hash from the ledger,
    the reason, the time and an Ed25519 signature. Write it *before* deleting
    the record. Raises :class:`IntegrityError` when the ledger does not have
    this record at this seq.
    """
    record_tombstones([(stream, seq, record_id)], reason, directory=directory, key=key, env=env)


# --- writing ----------------------------------------------------------------------------------------


class _Stream:
    """One stream's files and in-memory tree; used under the sealer's lock."""

    def __init__(self, directory: Path, origin: str, store: str, key: SigningKey) -> None:
        self.id = secrets.token_hex(16)
        self.origin = f"{origin}/{self.id}"
        self.key = key
        self.tree = MerkleTree()
        self.ledger = directory / f"{self.id}{LEDGER_SUFFIX}"
        self.checkpoints = directory / f"{self.id}{CHECKPOINTS_SUFFIX}"
        self.signed: Checkpoint | None = None
        self.signed_at = time.monotonic()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        header = {
            "stream": self.id,
            "origin": origin,
            "store": store,
            "created": now(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "signer": f"{key.name}+{key.verifier.key_id.hex()}",
        }
        fd = os.open(self.ledger, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        append_synced(self.ledger, f"{LEDGER_MAGIC} {json.dumps(header, separators=(',', ':'))}\n".encode())
        self.checkpoint()  # the signed empty tree: the stream exists, and only its key could have started it

    def write(self, entries: list[LedgerEntry]) -> None:
        if entries:
            append_synced(self.ledger, "".join(entry.line() for entry in entries).encode())

    def checkpoint(self) -> None:
        size = self.tree.size
        if self.signed is not None and self.signed.size == size:
            return
        current = Checkpoint(self.origin, size, self.tree.root())
        if self.signed is not None:
            proof = self.tree.consistency_proof(self.signed.size, size)
            if not verify_consistency(self.signed.size, size, self.signed.root, current.root, proof):
                raise IntegrityError(f"stream {self.id}: the tree is not an extension of its last checkpoint")
        append_synced(self.checkpoints, (sign_note(current.text(), self.key) + "\n").encode())
        self.signed = current
        self.signed_at = time.monotonic()


class _Sealed(Protocol):
    @property
    def index(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def source(self) -> Any: ...


D = TypeVar("D", bound=_Sealed)


class Sealer:
    """Seals documents for one store: hash, seq, ledger line; signs checkpoints. Thread-safe.

    ``store`` names the store the documents go to (``sqlite:<path>``,
    ``elasticsearch:<namespace>``); ``genai-audit verify`` uses it to find the
    streams a store should hold. A stream is started lazily on the first
    record. Failing to write the ledger never loses a record: the documents are
    stored without an ``integrity`` field (verify reports them) and the failure
    is logged and counted in :attr:`failures`.
    """

    def __init__(
        self,
        store: str,
        *,
        directory: Path,
        key: SigningKey,
        origin: str = "genai-audit",
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        if not valid_name(origin):
            raise ValueError(f"origin {origin!r}: no spaces and no '+'")
        self.store = store
        self.directory = directory
        self.key = key
        self.origin = origin
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_seconds = checkpoint_seconds
        self.max_records = max(1, max_records)
        self.sealed = 0
        self.failures = 0
        self._logged_at = -60.0
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._recent: OrderedDict[str, LedgerEntry] = OrderedDict()
        _sealers.add(self)

    @classmethod
    def from_env(cls, store: str, env: Mapping[str, str] | None = None) -> Sealer:
        """A sealer configured by the environment; raises :class:`ConfigError` on a bad key or origin."""
        key = load_signing_key(env)
        return cls(store, directory=integrity_dir(env), key=key, origin=default_origin(env))

    @property
    def stream_id(self) -> str | None:
        """The current stream, if one was started."""
        stream = self._stream
        return stream.id if stream is not None else None

    def seal(
        self,
        docs: Iterable[MutableMapping[str, Any]],
        events: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        *,
        encoded: list[str] | None = None,
    ) -> list[LedgerEntry]:
        """Give each document its ``integrity`` field and ledger it (fsync'd) before it is stored.

        ``events``, when given, holds each document's event documents (same order as
        ``docs``); the leaf then covers them too and the field says how many it binds.
        ``encoded``, when given, receives each document as JSON text, ``integrity``
        field included: the canonical encoding the hash needed anyway, so a store
        that keeps JSON need not encode the document a second time.
        Returns the new ledger entries (a document this sealer already sealed
        with the same content keeps its seq and adds none).
        """
        listed = list(docs)
        if events is None:
            events = [()] * len(listed)
        elif len(events) != len(listed):
            raise ValueError("seal: one list of events per document")
        texts = [_canonical_text(doc) for doc in listed]
        prepared = [
            (doc, record_id(doc), _leaf_of(text.encode("utf-8", "surrogatepass"), evs), len(evs))
            for doc, text, evs in zip(listed, texts, events)
        ]
        if not prepared:
            return []
        with self._lock:
            try:
                fresh = self._seal(prepared)
            except (OSError, IntegrityError, NoteError) as exc:
                self._stream = None  # a new stream next time; this one may hold a partial batch
                self.failures += len(prepared)
                for doc, _rid, _leaf, _events in prepared:
                    doc.pop(INTEGRITY_FIELD, None)
                moment = time.monotonic()
                if moment - self._logged_at >= 60.0:
                    self._logged_at = moment
                    logger.error(
                        "genai-audit: cannot write the integrity ledger in %s (%s); %d record(s) stored "
                        "without tamper evidence so far",
                        self.directory,
                        exc,
                        self.failures,
                    )
                if encoded is not None:
                    encoded.extend(texts)  # stored without an integrity field, as the documents now are
                return []
        if encoded is not None:
            encoded.extend(_with_mark(text, doc[INTEGRITY_FIELD]) for doc, text in zip(listed, texts))
        return fresh

    def _seal(self, prepared: list[tuple[MutableMapping[str, Any], str, bytes, int]]) -> list[LedgerEntry]:
        stream = self._current()
        fresh: list[LedgerEntry] = []
        for doc, rid, leaf, events in prepared:
            known = self._recent.get(rid)
            if known is None or known.leaf != leaf:
                known = LedgerEntry(stream.id, stream.tree.append(leaf), rid, leaf)
                fresh.append(known)
            mark: dict[str, Any] = {"stream": known.stream, "seq": known.seq, "leaf": leaf.hex()}
            if events:
                mark["events"] = events
            doc[INTEGRITY_FIELD] = mark
        stream.write(fresh)
        for entry in fresh:
            self._recent[entry.record_id] = entry
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        self.sealed += len(fresh)
        due = stream.tree.size - (stream.signed.size if stream.signed else 0)
        if due >= self.checkpoint_every or time.monotonic() - stream.signed_at >= self.checkpoint_seconds:
            self._checkpoint(stream)  # the records are ledgered: a failed checkpoint only delays their signature
        return fresh

    def _checkpoint(self, stream: _Stream) -> bool:
        try:
            stream.checkpoint()
        except (OSError, IntegrityError, NoteError) as exc:
            logger.error("genai-audit: cannot write the integrity checkpoint of stream %s: %s", stream.id, exc)
            return False
        return True

    def _current(self) -> _Stream:
        stream = self._stream
        if stream is not None and stream.tree.size >= self.max_records:
            self._checkpoint(stream)
            stream = None
        if stream is None:
            stream = self._stream = _Stream(self.directory, self.origin, self.store, self.key)
        return stream

    def seal_documents(self, documents: Iterable[D], encode: Callable[[D, str], D] | None = None) -> list[D]:
        """Seal the span documents (``traces-*``) among ``documents``, each bound to the event
        documents (``logs-*``, ids ``<span id>-<n>``) that follow it, as ``span_documents`` yields them.

        ``encode(item, json_text)``, when given, makes the item that replaces each span
        document, from its JSON text (``integrity`` included), e.g. one holding raw JSON.
        """
        items = list(documents)
        spans: list[Any] = []
        events: list[list[Mapping[str, Any]]] = []
        prefix = None
        for item in items:
            if item.index.startswith("traces-"):
                spans.append(item.source)
                events.append([])
                prefix = f"{item.id}-"
            elif prefix is not None and item.id.startswith(prefix) and isinstance(item.source, Mapping):
                events[-1].append(item.source)
        if encode is None:
            self.seal(spans, events)
            return items
        texts: list[str] = []
        self.seal(spans, events, encoded=texts)
        remaining = iter(texts)
        return [encode(item, next(remaining)) if item.index.startswith("traces-") else item for item in items]

    def unstored(self, entries: Iterable[LedgerEntry]) -> None:
        """Record that sealed records never reached the store (the write failed), so verify names them as such."""
        entries = list(entries)
        if not entries:
            return
        try:
            write_tombstones(self.directory, self.key, entries, UNSTORED)
        except (OSError, IntegrityError) as exc:
            logger.error(
                "genai-audit: cannot record %d unstored record(s) in %s: %s", len(entries), self.directory, exc
            )

    def checkpoint(self) -> bool:
        """Sign a checkpoint of the current stream now (no-op when nothing changed); False on failure."""
        with self._lock:
            stream = self._stream
            return True if stream is None else self._checkpoint(stream)

    def close(self) -> None:
        """Final checkpoint; a later record starts a new stream."""
        self.checkpoint()
        with self._lock:
            self._stream = None

    def _after_fork(self) -> None:
        # a child must not append to its parent's stream: it starts its own
        self._lock = threading.Lock()
        self._stream = None
        self._recent = OrderedDict()


def sealer_for(store: str, integrity: Sealer | bool) -> Sealer | None:
    """An exporter's sealer: ``True`` for one configured by the environment, ``False`` for none."""
    if isinstance(integrity, Sealer):
        return integrity
    return Sealer.from_env(store) if integrity else None


_sealers: weakref.WeakSet[Sealer] = weakref.WeakSet()


def _close_all() -> None:
    for sealer in list(_sealers):
        try:
            sealer.close()
        except Exception:
            logger.debug("closing an integrity sealer failed", exc_info=True)


def _reinit_children() -> None:
    for sealer in list(_sealers):
        sealer._after_fork()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_children)
