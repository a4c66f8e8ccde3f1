"""Retention: delete records older than their classification's retention period.

A record expires when its start time plus the retention of its classification
(``gen_ai.audit.classification``) lies before *now*. The retention is taken from the
**policy in force** (:func:`genai_audit.processors.policy.load_policy`: defaults public
365, internal 90, confidential 30, restricted 7 days; the policy file's ``retention``
table; the floor ``GENAI_AUDIT_RETENTION_FLOOR_DAYS`` / ``retention.floor_days``), not
from the ``gen_ai.audit.retention_days`` each record carries: that value is the policy
at the time of writing, and a policy changed since — a floor raised to 183 days for the
EU AI Act, a period shortened by a data-protection decision — must apply to the records
already stored as well. A record without a classification keeps the retention of the
policy's default level; an unknown classification counts as ``restricted`` (as the
policy's own ``retention_for`` does).

Every deleted record gets a signed tombstone (reason ``retention``) first, so
``genai-audit verify`` stays clean. See :mod:`genai_audit.forensics.removal` for how
each store deletes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from genai_audit import semconv as sc
from genai_audit.forensics.base import AuditStore, chunks
from genai_audit.forensics.model import timestamp_text
from genai_audit.forensics.removal import (
    Progress,
    Tombstoner,
    Victim,
    es_count,
    ilm_available,
    remove_elasticsearch,
    remove_sqlite,
    victim_of,
)
from genai_audit.forensics.render import terminal_text

if TYPE_CHECKING:
    from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore
    from genai_audit.forensics.sqlite import SqliteAuditStore
    from genai_audit.processors.policy import AuditPolicy

DAY_NS = 86_400 * 1_000_000_000
#: the group of records that carry no classification
UNCLASSIFIED = "unclassified"


@dataclass
class ClassRetention:
    """One classification: its retention, what has expired, what was deleted."""

    classification: str
    days: int
    cutoff: str  # records starting before this instant have expired
    expired: int = 0
    oldest: str | None = None
    deleted: int = 0


@dataclass
class RetentionReport:
    store: str
    now: str
    dry_run: bool
    policy: str
    floor_days: int
    classes: list[ClassRetention] = field(default_factory=list)
    events_deleted: int = 0
    tombstones: int = 0
    unsealed: int = 0  # deleted records that carried no seal (nothing to tombstone)
    kept: int = 0  # sealed records kept: no matching ledger entry here to tombstone them against
    ilm: bool | None = None  # Elasticsearch only: whether the cluster offers ILM

    @property
    def expired(self) -> int:
        return sum(c.expired for c in self.classes)

    @property
    def deleted(self) -> int:
        return sum(c.deleted for c in self.classes)

    def as_json(self) -> str:
        body = asdict(self)
        body["expired"], body["deleted"] = self.expired, self.deleted
        return json.dumps(body, indent=2) + "\n"

    def as_text(self) -> str:
        lines = [
            f"retention {'dry run' if self.dry_run else 'applied'} on {self.store} at {self.now}",
            f"policy: {self.policy}" + (f", floor {self.floor_days} days" if self.floor_days else ""),
        ]
        lines.append(f"{'class':<14} {'days':>5}  {'expired':>7}  {'deleted':>7}  oldest expired (UTC)")
        for c in self.classes:
            label = terminal_text(c.classification)  # a stored value
            lines.append(f"{label:<14} {c.days:>5}  {c.expired:>7}  {c.deleted:>7}  {c.oldest or '-'}")
        lines.append(
            f"total: {self.expired} expired, "
            + (
                "nothing deleted (dry run)"
                if self.dry_run
                else f"{self.deleted} deleted ({self.events_deleted} event documents), "
                f"{self.tombstones} tombstones written"
            )
        )
        if self.unsealed:
            lines.append(f"{self.unsealed} deleted record(s) carried no integrity seal (no tombstone needed)")
        if self.kept:
            lines.append(
                f"{self.kept} expired record(s) KEPT: their ledger entry is not in the integrity directory, "
                "so no tombstone could vouch for the deletion (set GENAI_AUDIT_INTEGRITY_DIR)"
            )
        if self.ilm is not None:
            lines.append(
                "ILM: available (it deletes whole backing indices; per-class deletion still runs here)"
                if self.ilm
                else "ILM: not available on this cluster; records deleted by id"
            )
        return "\n".join(lines) + "\n"


def _days(policy: AuditPolicy, classification: str | None) -> int:
    return policy.retention_for(policy.default_level if classification is None else classification)


def _label(classification: str | None) -> str:
    return UNCLASSIFIED if classification is None else classification


def apply_retention(
    store: AuditStore,
    policy: AuditPolicy | None = None,
    *,
    now_ns: int | None = None,
    dry_run: bool = False,
    progress: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> RetentionReport:
    """Delete (or, with ``dry_run``, count) the expired records of ``store``; tombstones first."""
    from genai_audit.processors.policy import load_policy

    policy = policy or load_policy(env)
    now_ns = time.time_ns() if now_ns is None else now_ns
    report = RetentionReport(
        store.describe(), timestamp_text(now_ns), dry_run, policy.source, policy.retention_floor_days
    )
    tombstoner = Tombstoner("retention", env)
    if store.kind == "sqlite":
        _sqlite(store, policy, now_ns, report, tombstoner, progress)  # type: ignore[arg-type]
    else:
        _elasticsearch(store, policy, now_ns, report, tombstoner, progress)  # type: ignore[arg-type]
    report.tombstones, report.unsealed, report.kept = tombstoner.written, tombstoner.unsealed, tombstoner.unmatched
    report.classes.sort(key=lambda c: (c.days, c.classification))
    return report


# --- SQLite ------------------------------------------------------------------------------------------------


def _sqlite(
    store: SqliteAuditStore,
    policy: AuditPolicy,
    now_ns: int,
    report: RetentionReport,
    tombstoner: Tombstoner,
    progress: TextIO | None,
) -> None:
    conn = store._conn
    shortest = min([policy.retention_for(level) for level in policy.retention_days] + [_days(policy, None)])
    attribute = f'$.attributes."{sc.AUDIT_CLASSIFICATION}"'
    sql = (
        f"SELECT seq, start_ns, CASE WHEN json_valid(doc) THEN json_extract(doc, '{attribute}') END, doc "
        "FROM spans WHERE start_ns < ? ORDER BY seq"
    )
    classes: dict[str, ClassRetention] = {}
    expired: list[tuple[int, int, str]] = []  # (row, start_ns, class label)
    for row, start_ns, classification, _doc in store._execute(sql, [now_ns - shortest * DAY_NS]):
        level = None if classification is None else str(classification)
        label, days = _label(level), _days(policy, level)
        entry = classes.get(label)
        if entry is None:
            entry = classes[label] = ClassRetention(label, days, timestamp_text(now_ns - days * DAY_NS))
        if start_ns < now_ns - days * DAY_NS:
            entry.expired += 1
            if entry.oldest is None or start_ns < _ns_of(entry.oldest):
                entry.oldest = timestamp_text(start_ns)
            expired.append((row, start_ns, label))
    _fill_levels(classes, policy, now_ns)
    report.classes = list(classes.values())
    if report.dry_run or not expired:
        return

    def victims() -> Iterator[Victim]:
        for row, start_ns, _ in expired:
            found = conn.execute("SELECT doc FROM spans WHERE seq = ?", (row,)).fetchone()
            if found is not None:
                yield victim_of(_loads(found[0]), start_ns, row=row)

    bar = Progress("retention", len(expired), progress)
    _deleted, report.events_deleted = remove_sqlite(conn, victims(), tombstoner, bar)
    bar.finish()
    present: set[int] = set()
    for part in chunks([row for row, _, _ in expired], 500):
        marks = ", ".join("?" * len(part))
        present.update(r for (r,) in conn.execute(f"SELECT seq FROM spans WHERE seq IN ({marks})", list(part)))
    for row, _start, label in expired:
        if row not in present:
            classes[label].deleted += 1


def _loads(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _ns_of(text: str) -> int:
    from genai_audit.forensics.model import parse_timestamp

    return parse_timestamp(text) or 0


def _fill_levels(classes: dict[str, ClassRetention], policy: AuditPolicy, now_ns: int) -> None:
    """Every level of the policy is listed, expired or not."""
    for level in policy.retention_days:
        if level not in classes:
            days = policy.retention_for(level)
            classes[level] = ClassRetention(level, days, timestamp_text(now_ns - days * DAY_NS))


# --- Elasticsearch ---------------------------------------------------------------------------------------------


def _es_query(field: str, classification: str | None, known: list[str], cutoff_ns: int) -> dict[str, Any]:
    timing = {"range": {"@timestamp": {"lt": timestamp_text(cutoff_ns), "format": "strict_date_optional_time_nanos"}}}
    if classification is None:
        return {"bool": {"filter": [timing], "must_not": [{"exists": {"field": field}}]}}
    if classification == "*":  # a classification the policy does not know
        return {"bool": {"filter": [timing, {"exists": {"field": field}}], "must_not": [{"terms": {field: known}}]}}
    return {"bool": {"filter": [timing, {"term": {field: classification}}]}}


def _elasticsearch(
    store: ElasticsearchAuditStore,
    policy: AuditPolicy,
    now_ns: int,
    report: RetentionReport,
    tombstoner: Tombstoner,
    progress: TextIO | None,
) -> None:
    from genai_audit.processors.policy import RESTRICTED

    field = f"attributes.{sc.AUDIT_CLASSIFICATION}"
    known = sorted(policy.retention_days)
    groups: list[tuple[str, str | None, int]] = [(level, level, policy.retention_for(level)) for level in known]
    groups.append((UNCLASSIFIED, None, _days(policy, None)))
    groups.append(("other", "*", policy.retention_for(RESTRICTED)))
    report.ilm = ilm_available(store)
    planned: list[tuple[ClassRetention, dict[str, Any]]] = []
    for label, classification, days in groups:
        cutoff = now_ns - days * DAY_NS
        query = _es_query(field, classification, known, cutoff)
        entry = ClassRetention(label, days, timestamp_text(cutoff), expired=es_count(store, query))
        if entry.expired:
            body = store._call(
                store.client.search,
                index=store.traces,
                ignore_unavailable=True,
                size=1,
                track_total_hits=False,
                query=query,
                _source=["@timestamp"],
                sort=[{"@timestamp": {"order": "asc"}}],
            )
            hits = body.get("hits", {}).get("hits", [])
            if hits:
                entry.oldest = str(hits[0].get("_source", {}).get("@timestamp"))
        if entry.expired or label in known:
            report.classes.append(entry)
        planned.append((entry, query))
    total = sum(entry.expired for entry, _ in planned)
    if report.dry_run or not total:
        return
    bar = Progress("retention", total, progress)
    for entry, query in planned:
        if entry.expired:
            entry.deleted, events = remove_elasticsearch(store, query, tombstoner, bar)
            report.events_deleted += events
    bar.finish()
