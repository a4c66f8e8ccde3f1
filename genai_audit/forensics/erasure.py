"""GDPR erasure: delete every record of one data subject, everywhere genai-audit keeps it.

The subject is named by a user id (``enduser.id``, which is stored as given, not
redacted), or by a personal value (an e-mail address, phone number, card number ...)
whose pseudonym token is computed here with the configured pseudonym key exactly as
the redactor computes it, or by that token directly. A record matches when its
``enduser.id`` is the user id or its ``gen_ai.audit.pii.tokens`` holds the token.

Erasure removes, in this order (the local copies first, so that a record a running
sender delivers meanwhile is found by the store pass that follows):

* the durable spool files (``GENAI_AUDIT_SPOOL_DIR/*.db``): matching rows not yet delivered,
  with the event rows of the same spans; sealed rows get an ``erasure`` tombstone first;
* the Elasticsearch dead-letter file (``GENAI_AUDIT_ES_DEAD_LETTER``): rewritten without the
  matching lines (a temporary file, fsync'd, renamed over the original);
* each store given: the matching records with their events and index rows, tombstones
  (reason ``erasure``) first. In SQLite the records are found by their documents, not by the
  indexed columns or the token index (derived data anyone with the file can edit); event
  documents naming them are deleted however they are filed, and the full-text and token
  indexes are rebuilt from the documents that remain. SQLite is then scrubbed
  (``secure_delete``, full-text index merged, ``VACUUM``, WAL truncated) so that no copy
  remains in the file; Elasticsearch is refreshed and asked to expunge deleted documents
  from its segments. ``verify`` afterwards checks every derived row left against its
  document, so that residue shows as a failure.

A sealed record whose ledger entry cannot be found is erased all the same (the legal duty
prevails) and counted as ``untombstoned``: ``verify`` will then name it ``DELETED``.

The erasure certificate (JSON) records what was done without personal data: the criteria
as pseudonym tokens (the user id as ``[ENDUSER_ID:<HMAC>]``), the time, counts per store,
spool and dead-letter file, the tombstone files written, and the result of ``verify``
after the erasure. It is signed with the integrity signing key when one exists.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.forensics.removal import (
    Progress,
    Tombstoner,
    Victim,
    data_dir,
    es_count,
    remove_elasticsearch,
    remove_sqlite,
    sqlite_purge,
    sqlite_scrub,
    victim_of,
)
from genai_audit.store.sqlite import StoreError

if TYPE_CHECKING:
    from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore

#: the pseudonym entity under which a user id is named in certificates
USER_ENTITY = "ENDUSER_ID"
CERTIFICATE_FORMAT = "genai-audit-erasure-certificate/1"
_CERTIFICATE_DOMAIN = b"genai-audit-erasure-certificate/1\n"


#: Where erasure certificates go without ``--certificate``; the compliance report counts them there.
ENV_ERASURE_DIR = "GENAI_AUDIT_ERASURE_DIR"


def default_certificate_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    named = env.get(ENV_ERASURE_DIR, "").strip()
    return Path(named).expanduser() if named else data_dir() / "erasure-certificates"


@dataclass(frozen=True)
class Subject:
    """Whose records to erase: a user id and/or pseudonym tokens. ``labels`` name them without personal data."""

    user: str | None = None
    tokens: tuple[str, ...] = ()
    labels: tuple[dict[str, str], ...] = ()

    def matches(self, doc: Mapping[str, Any]) -> bool:
        attributes = doc.get("attributes")
        if not isinstance(attributes, Mapping):
            return False
        user = attributes.get(sc.ENDUSER_ID)
        if self.user is not None and user is not None and str(user) == self.user:  # as stores index it
            return True
        found = attributes.get(sc.AUDIT_PII_TOKENS)
        return isinstance(found, list) and any(token in found for token in self.tokens)

    def mentioned_in(self, text: str) -> bool:
        """Whether a raw JSON line holds one of the identifiers as a JSON string value or a token."""
        needles = [*self.tokens]
        if self.user is not None:
            needles += [json.dumps(self.user), json.dumps(self.user, ensure_ascii=False)]
        return any(needle in text for needle in needles)


def subject_for(
    *,
    user: str | None = None,
    value: str | None = None,
    entity: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Subject:
    """The subject the options name; raises :class:`ValueError` (one line) for bad input."""
    from genai_audit.forensics.model import QueryError, normalize_token
    from genai_audit.processors.pipeline import build_redactor
    from genai_audit.processors.policy import load_policy

    given = [name for name, present in (("--user", user), ("--value", value), ("--token", token)) if present]
    if len(given) != 1:
        raise ValueError("name the data subject with exactly one of --user, --value (with --type) or --token")
    if value is not None and not entity:
        raise ValueError("--value needs --type (e.g. EMAIL, PHONE, CREDIT_CARD)")
    if entity and value is None:
        raise ValueError("--type goes with --value")
    policy = load_policy(env)
    redactor = build_redactor(policy, env)
    if user is not None:
        if not user.strip():
            raise ValueError("--user: empty user id")
        return Subject(user=user, labels=({"kind": "user", "pseudonym": redactor.pseudonym(USER_ENTITY, user)},))
    if token is not None:
        try:
            normalized = normalize_token(token)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        return Subject(tokens=(normalized,), labels=({"kind": "token", "token": normalized},))
    assert value is not None and entity is not None
    kind = entity.strip().upper()
    known = sorted({d.entity for d in policy.scanner().detectors})
    if kind not in known:
        raise ValueError(f"--type {entity!r}: expected one of {', '.join(known)}")
    findings = [f for f in redactor.scanner.scan(value.strip()) if f.entity == kind]
    if not findings:
        raise ValueError(f"--value is not recognised as {kind} (check the value and --type)")
    normalized_token = redactor.pseudonym(kind, findings[0].normalized)
    return Subject(tokens=(normalized_token,), labels=({"kind": "value", "type": kind, "token": normalized_token},))


@dataclass
class StoreErasure:
    store: str
    kind: str
    matched: int = 0
    deleted: int = 0
    events_deleted: int = 0
    tombstones: int = 0
    untombstoned: int = 0
    verify: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileErasure:
    path: str
    removed: int = 0


@dataclass
class ErasureReport:
    time: str
    dry_run: bool
    criteria: list[dict[str, str]]
    stores: list[StoreErasure] = field(default_factory=list)
    spool: list[FileErasure] = field(default_factory=list)
    dead_letter: list[FileErasure] = field(default_factory=list)
    tombstone_files: list[str] = field(default_factory=list)
    certificate: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "format": CERTIFICATE_FORMAT,
            "time": self.time,
            "dry_run": self.dry_run,
            "criteria": self.criteria,
            "stores": [vars(s) for s in self.stores],
            "spool": {"files": [vars(f) for f in self.spool], "rows": sum(f.removed for f in self.spool)},
            "dead_letter": {
                "files": [vars(f) for f in self.dead_letter],
                "lines": sum(f.removed for f in self.dead_letter),
            },
            "tombstone_files": sorted(self.tombstone_files),
        }

    def as_text(self) -> str:
        verb = "would erase" if self.dry_run else "erased"
        lines = [
            f"erasure of {', '.join(c.get('pseudonym') or c.get('token', '') for c in self.criteria)}"
            + (" (dry run)" if self.dry_run else "")
        ]
        for s in self.stores:
            tail = (
                ""
                if self.dry_run
                else (
                    f", {s.events_deleted} event document(s), {s.tombstones} tombstone(s)"
                    + (f", {s.untombstoned} without tombstone" if s.untombstoned else "")
                    + (f"; verify: {'OK' if s.verify.get('ok') else s.verify}" if s.verify else "")
                )
            )
            lines.append(f"{s.store}: {verb} {s.matched if self.dry_run else s.deleted} record(s){tail}")
        lines.append(f"spool: {verb} {sum(f.removed for f in self.spool)} row(s) in {len(self.spool)} file(s)")
        lines.append(f"dead-letter: {verb} {sum(f.removed for f in self.dead_letter)} line(s)")
        if self.certificate:
            lines.append(f"certificate: {self.certificate}")
        return "\n".join(lines) + "\n"


# --- local files -------------------------------------------------------------------------------------------


def _spool_files(env: Mapping[str, str]) -> list[Path]:
    from genai_audit.config import spool_dir

    folder = spool_dir(env)
    return sorted(folder.glob("*.db")) if folder.is_dir() else []


def _dead_letter_files(env: Mapping[str, str]) -> list[Path]:
    from genai_audit.store.elasticsearch import ENV_DEAD_LETTER, default_dead_letter_path

    named = env.get(ENV_DEAD_LETTER, "").strip()
    path = Path(named).expanduser() if named else default_dead_letter_path()
    return [path] if path.is_file() else []


def _erase_spool(path: Path, subject: Subject, tombstoner: Tombstoner, dry_run: bool) -> FileErasure:
    result = FileErasure(str(path))
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the spool {path}: {exc}") from None
    try:
        conn.execute("PRAGMA secure_delete=ON")
        rows = conn.execute("SELECT seq, idx, doc_id, body FROM spool ORDER BY seq").fetchall()
        spans: dict[str, Victim] = {}
        for _seq, index, doc_id, body in rows:
            doc = _loads(body)
            if str(index).startswith("traces-") and (subject.matches(doc) or subject.mentioned_in(body)):
                spans[str(doc_id)] = victim_of(doc, 0)
        doomed = [
            seq
            for seq, index, doc_id, body in rows
            if str(doc_id) in spans or str(doc_id).split("-")[0] in spans or subject.mentioned_in(body)
        ]
        result.removed = len(doomed)
        if dry_run or not doomed:
            return result
        tombstoner.admit(list(spans.values()), force=True)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(seq,) for seq in doomed])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot erase from the spool {path}: {exc}") from None
    finally:
        conn.close()
    return result


def _erase_dead_letter(path: Path, subject: Subject, dry_run: bool) -> FileErasure:
    result = FileErasure(str(path))
    try:
        lines = path.read_bytes().decode("utf-8", "surrogateescape").splitlines(keepends=True)
    except OSError as exc:
        raise StoreError(f"cannot read the dead-letter file {path}: {exc.strerror or exc}") from None
    kept = []
    for line in lines:
        entry = _loads(line)
        document = entry.get("document")
        if subject.mentioned_in(line) or (isinstance(document, Mapping) and subject.matches(document)):
            result.removed += 1
        else:
            kept.append(line)
    if dry_run or not result.removed:
        return result
    _replace_file(path, "".join(kept).encode("utf-8", "surrogateescape"))
    return result


def _replace_file(path: Path, data: bytes) -> None:
    """Atomically: a temporary file beside it (0600), fsync'd, renamed over it, the directory synced."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot rewrite {path}: {exc.strerror or exc}") from None


def _loads(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# --- stores ---------------------------------------------------------------------------------------------------


def _erase_store(
    target: str | None,
    subject: Subject,
    tombstoner: Tombstoner,
    dry_run: bool,
    progress: TextIO | None,
    env: Mapping[str, str],
) -> StoreErasure:
    from genai_audit.forensics import open_store

    with open_store(target, env=env) as store:
        result = StoreErasure(store.describe(), store.kind)
        before_written, before_unmatched = tombstoner.written, tombstoner.unmatched
        if store.kind == "sqlite":
            _erase_sqlite(store, subject, tombstoner, dry_run, progress, result)
        else:
            _erase_elasticsearch(cast("ElasticsearchAuditStore", store), subject, tombstoner, dry_run, progress, result)
        result.tombstones = tombstoner.written - before_written
        result.untombstoned = tombstoner.unmatched - before_unmatched
    return result


def _erase_elasticsearch(
    store: ElasticsearchAuditStore,
    subject: Subject,
    tombstoner: Tombstoner,
    dry_run: bool,
    progress: TextIO | None,
    result: StoreErasure,
) -> None:
    should: list[dict[str, Any]] = []
    if subject.user is not None:
        should.append({"term": {f"attributes.{sc.ENDUSER_ID}": subject.user}})
    if subject.tokens:
        should.append({"terms": {f"attributes.{sc.AUDIT_PII_TOKENS}": list(subject.tokens)}})
    query = {"bool": {"should": should, "minimum_should_match": 1}}
    result.matched = es_count(store, query)
    if dry_run or not result.matched:
        return
    bar = Progress("erasure", result.matched, progress)
    result.deleted, result.events_deleted = remove_elasticsearch(store, query, tombstoner, bar, force=True)
    bar.finish()
    try:
        store._call(
            store.client.indices.forcemerge,
            index=f"{store.traces},{store.logs}",
            only_expunge_deletes=True,
            ignore_unavailable=True,
        )
    except StoreError:
        pass  # best effort: the documents are already gone from every search


def _erase_sqlite(
    store: Any, subject: Subject, tombstoner: Tombstoner, dry_run: bool, progress: TextIO | None, result: StoreErasure
) -> None:
    # The records are found by their documents, not by the indexed columns or the token index:
    # those are derived data anyone with the file can edit. SQLite narrows them down (it reads
    # JSON as JSON, escapes and all; a document it cannot read is always a candidate) and the
    # subject's own test decides.
    clauses: list[str] = []
    params: list[Any] = []
    if subject.user is not None:
        clauses.append(f"CAST(json_extract(doc, '$.attributes.\"{sc.ENDUSER_ID}\"') AS TEXT) = ?")
        params.append(subject.user)
    if subject.tokens:
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each(doc, '$.attributes.\"{sc.AUDIT_PII_TOKENS}\"') "
            f"WHERE value IN ({', '.join('?' * len(subject.tokens))}))"
        )
        params.extend(subject.tokens)
    rows = store._execute(
        f"SELECT seq, start_ns, doc FROM spans WHERE CASE WHEN json_valid(doc) THEN {' OR '.join(clauses)} ELSE 1 END "
        "ORDER BY seq",
        params,
    ).fetchall()
    victims = [
        victim_of(doc, start_ns, row=row) for row, start_ns, text in rows if subject.matches(doc := _loads(text))
    ]
    result.matched = len(victims)
    if dry_run or not victims:
        return
    conn: sqlite3.Connection = store._conn
    conn.execute("PRAGMA secure_delete=ON")
    bar = Progress("erasure", len(victims), progress)
    result.deleted, result.events_deleted = remove_sqlite(conn, victims, tombstoner, bar, force=True)
    bar.finish()
    try:
        result.events_deleted += sqlite_purge(conn, victims)
        sqlite_scrub(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot clean up the audit store after erasure: {exc}") from None


def _verify(target: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    from genai_audit.verify import run

    try:
        report = run(target, env=env)
    except (ConfigError, StoreError) as exc:
        return {"ok": None, "error": str(exc)}
    return {"ok": report.ok, "records": report.records, "problems": len(report.problems)}


# --- the whole erasure ------------------------------------------------------------------------------------------


def erase(
    subject: Subject,
    stores: Sequence[str | None] = (None,),
    *,
    dry_run: bool = False,
    certificate: str | os.PathLike[str] | None = None,
    progress: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> ErasureReport:
    """Erase the subject's records from the spool, the dead-letter file and each store; write the certificate."""
    from genai_audit.ledger import now

    env = os.environ if env is None else env
    report = ErasureReport(now(), dry_run, [dict(label) for label in subject.labels])
    tombstoner = Tombstoner("erasure", env)
    for path in _spool_files(env):
        report.spool.append(_erase_spool(path, subject, tombstoner, dry_run))
    for path in _dead_letter_files(env):
        report.dead_letter.append(_erase_dead_letter(path, subject, dry_run))
    for target in stores:
        report.stores.append(_erase_store(target, subject, tombstoner, dry_run, progress, env))
    if not dry_run:
        for target, result in zip(stores, report.stores):
            result.verify = _verify(target, env)
    report.tombstone_files = sorted(tombstoner.files)
    if not dry_run:
        report.certificate = str(write_certificate(report, certificate, env))
    return report


def write_certificate(
    report: ErasureReport, path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Path:
    """The certificate as JSON (owner-only), signed with the integrity key when one exists."""
    from genai_audit.ledger import find_signing_key

    body = report.body()
    key = find_signing_key(env)
    if key is not None:
        message = _CERTIFICATE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        body["signature"] = {
            "signer": f"{key.name}+{key.verifier.key_id.hex()}",
            "sig": base64.b64encode(key.sign(message)).decode(),
        }
    if path is None:
        stamp = report.time.replace(":", "").replace("-", "").replace(".", "")
        target = default_certificate_dir() / f"erasure-{stamp}-{secrets.token_hex(3)}.json"
    else:
        target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise StoreError(f"cannot write the erasure certificate {target}: {exc.strerror or exc}") from None
    return target
