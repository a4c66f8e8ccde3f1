"""Monthly cost and compliance reports, computed from the stored records.

Both reports read the documents through :meth:`AuditStore.documents` and do their arithmetic
here, so the embedded store and Elasticsearch give the same figures.

**Cost** counts billable calls only: those carrying ``gen_ai.usage.cost_usd``. Calls whose
model has no price (``gen_ai.audit.cost.unknown_model``) are counted apart as *unpriced*;
calls with neither (failures, agent spans) are not billed.

**Compliance** measures, for one framework, what the records show: records in scope,
personal data without consent, unauthorized-access errors, injection attempts, retention per
class against the policy, consent coverage, integrity verification, and the framework's own
items. Every item has a status (``pass``, ``warn``, ``fail``) and the measured figure.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genai_audit import semconv as sc
from genai_audit.forensics.anomalies import failed, find_anomalies, start_ns
from genai_audit.forensics.model import COST_DECIMALS, Filters, QueryError, number, timestamp_text
from genai_audit.forensics.render import json_text, terminal_text
from genai_audit.processors.policy import AuditPolicy, consent_state

if TYPE_CHECKING:
    from genai_audit.forensics.base import AuditStore
    from genai_audit.verify import Report as VerifyReport

DAY_NS: Final = 86_400 * 1_000_000_000
COST_DIMENSIONS: Final = ("feature", "user", "model")
_DIMENSION_KEYS: Final = {"feature": sc.AUDIT_FEATURE, "user": sc.ENDUSER_ID, "model": sc.REQUEST_MODEL}
FRAMEWORKS: Final = ("gdpr", "hipaa", "soc2", "eu-ai-act", "pci")
PASS, WARN, FAIL = "pass", "warn", "fail"
EU_AI_ACT_FLOOR_DAYS: Final = 183
PCI_RETENTION_DAYS: Final = 365
HIPAA_DOCUMENTATION_YEARS: Final = 6
HTTP_STATUS: Final = "http.response.status_code"
_UNAUTHORIZED_TYPES = re.compile(r"authentication|permissiondenied|unauthori[sz]ed|forbidden", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_range(text: str) -> tuple[int, int]:
    """``2025-03`` -> (first instant of the month, first instant of the next), epoch ns UTC."""
    found = _MONTH.match(text.strip())
    month = int(found.group(2)) if found else 0
    if not found or not 1 <= month <= 12:
        raise QueryError(f"bad month {text!r}: use YYYY-MM, e.g. 2025-03")
    year = int(found.group(1))
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp()) * 1_000_000_000, int(end.timestamp()) * 1_000_000_000


# --- cost -------------------------------------------------------------------------------------------


@dataclass
class CostLine:
    """Billable calls and their cost for one value of one dimension (or the total)."""

    key: str | None
    calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    costs: list[float] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return round(math.fsum(self.costs), COST_DECIMALS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cost_usd": self.cost_usd,
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass
class CostReport:
    month: str
    since_ns: int
    until_ns: int
    total: CostLine
    groups: dict[str, list[CostLine]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "since": timestamp_text(self.since_ns),
            "until": timestamp_text(self.until_ns),
            "total": self.total.to_dict(),
            **{f"by_{name}": [line.to_dict() for line in lines] for name, lines in self.groups.items()},
        }


def _add(line: CostLine, attributes: Mapping[str, Any]) -> None:
    cost = number(attributes.get(sc.USAGE_COST_USD))
    if cost is None:
        line.unpriced_calls += 1
        return
    line.calls += 1
    line.costs.append(float(cost))
    line.input_tokens += int(number(attributes.get(sc.USAGE_INPUT_TOKENS)) or 0)
    line.output_tokens += int(number(attributes.get(sc.USAGE_OUTPUT_TOKENS)) or 0)


def cost_report(store: AuditStore, month: str) -> CostReport:
    """The month's billable cost: in total, and by feature, user and model (most expensive first)."""
    since_ns, until_ns = month_range(month)
    total = CostLine(None)
    groups: dict[str, dict[str | None, CostLine]] = {name: {} for name in COST_DIMENSIONS}
    for doc in store.documents(Filters(since_ns=since_ns, until_ns=until_ns)):
        attributes = doc.get("attributes") or {}
        billable = number(attributes.get(sc.USAGE_COST_USD)) is not None
        if not billable and attributes.get(sc.AUDIT_COST_UNKNOWN_MODEL) is not True:
            continue
        _add(total, attributes)
        for name in COST_DIMENSIONS:
            value = attributes.get(_DIMENSION_KEYS[name])
            key = value if isinstance(value, str) else None
            _add(groups[name].setdefault(key, CostLine(key)), attributes)
    ordered = {
        name: sorted(lines.values(), key=lambda g: (-g.cost_usd, -g.calls, g.key is None, g.key or ""))
        for name, lines in groups.items()
    }
    return CostReport(month.strip(), since_ns, until_ns, total, ordered)


def render_cost(report: CostReport, fmt: str, *, for_terminal: bool = False) -> str:
    """The report as a table, JSON or CSV; ``for_terminal`` shows CSV cells as the table does
    (escaped by :func:`terminal_text`) instead of exactly."""
    if fmt == "json":
        return json_text(report.to_dict(), indent=2) + "\n"
    rows: list[tuple[str, CostLine]] = [("total", report.total)]
    for name, lines in report.groups.items():
        rows.extend((name, line) for line in lines)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        cell = terminal_text if for_terminal else str
        writer.writerow(
            ["month", "dimension", "key", "cost_usd", "calls", "unpriced_calls", "input_tokens", "output_tokens"]
        )
        for name, line in rows:
            writer.writerow(
                [
                    report.month,
                    name,
                    "" if line.key is None else cell(line.key),
                    f"{line.cost_usd:.10f}",
                    line.calls,
                    line.unpriced_calls,
                    line.input_tokens,
                    line.output_tokens,
                ]
            )
        return buffer.getvalue()
    out = [f"cost for {report.month} (UTC), billable calls only", ""]
    header = f"{'dimension':<10} {'key':<32} {'cost $':>14} {'calls':>7} {'unpriced':>9} {'tokens in/out':>17}"
    out.append(header)
    for name, line in rows:
        key = "(all)" if name == "total" else "(none)" if line.key is None else terminal_text(line.key, 32)
        out.append(
            f"{name:<10} {key:<32} {line.cost_usd:>14.6f} {line.calls:>7} {line.unpriced_calls:>9} "
            f"{f'{line.input_tokens}/{line.output_tokens}':>17}"
        )
    return "\n".join(out) + "\n"


# --- compliance -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One measured requirement."""

    id: str
    requirement: str
    status: str
    figure: Any
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requirement": self.requirement,
            "status": self.status,
            "figure": self.figure,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Integrity:
    """What integrity verification found (or why it could not run)."""

    ok: bool
    records: int = 0
    streams: int = 0
    checkpoints: int = 0
    problems: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def of(cls, report: VerifyReport) -> Integrity:
        return cls(
            report.ok,
            report.records,
            report.streams,
            report.checkpoints,
            dict(Counter(f.kind for f in report.problems)),
        )

    @classmethod
    def failed(cls, reason: str) -> Integrity:
        return cls(False, error=reason)


@dataclass
class ComplianceReport:
    framework: str
    since_ns: int | None
    until_ns: int | None
    generated_ns: int
    items: list[Item]

    @property
    def status(self) -> str:
        found = {item.status for item in self.items}
        return FAIL if FAIL in found else WARN if WARN in found else PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "since": None if self.since_ns is None else timestamp_text(self.since_ns),
            "until": None if self.until_ns is None else timestamp_text(self.until_ns),
            "generated": timestamp_text(self.generated_ns),
            "status": self.status,
            "items": [item.to_dict() for item in self.items],
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


@dataclass
class _Tally:
    """One pass over the documents: figures in range, and the retention picture of the whole store."""

    records: int = 0
    pii: int = 0
    pii_consented: int = 0
    pii_refused: list[str] = field(default_factory=list)
    pii_unstated: list[str] = field(default_factory=list)
    pii_redacted: int = 0
    unauthorized: list[str] = field(default_factory=list)
    injections: list[str] = field(default_factory=list)
    alerts: Counter[str] = field(default_factory=Counter)
    alerted_records: int = 0
    pci_fields: Counter[str] = field(default_factory=Counter)
    in_range: list[dict[str, Any]] = field(default_factory=list)
    oldest: dict[str, int] = field(default_factory=dict)  # class -> oldest start, whole store
    per_class_starts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    oldest_any: int | None = None


PCI_FIELDS: Final = ("user", "event_type", "time", "outcome", "origin", "resource")


def _pci_present(doc: Mapping[str, Any]) -> dict[str, bool]:
    attributes = doc.get("attributes") or {}
    resource = (doc.get("resource") or {}).get("attributes") or {}
    outcome = failed(doc) or any(
        attributes.get(key) is not None
        for key in (sc.RESPONSE_FINISH_REASONS, sc.RESPONSE_ID, sc.USAGE_OUTPUT_TOKENS, sc.OUTPUT_MESSAGES)
    )
    return {
        "user": bool(attributes.get(sc.ENDUSER_ID)),
        "event_type": bool(attributes.get(sc.OPERATION_NAME)),
        "time": bool(doc.get("@timestamp")),
        "outcome": outcome,
        "origin": bool(resource.get("service.name")),
        "resource": bool(attributes.get(sc.REQUEST_MODEL)),
    }


def _unauthorized(doc: Mapping[str, Any]) -> bool:
    attributes = doc.get("attributes") or {}
    status = attributes.get(HTTP_STATUS)
    if isinstance(status, (int, str)) and str(status) in ("401", "403"):
        return True
    error_type = attributes.get(sc.ERROR_TYPE)
    return isinstance(error_type, str) and _UNAUTHORIZED_TYPES.search(error_type) is not None


def _tally(store: AuditStore, since_ns: int | None, until_ns: int | None) -> _Tally:
    from genai_audit.forensics.anomalies import record_id

    tally = _Tally()
    for doc in store.documents():
        attributes = doc.get("attributes") or {}
        start = start_ns(doc)
        level = attributes.get(sc.AUDIT_CLASSIFICATION)
        level = level if isinstance(level, str) else "(unclassified)"
        tally.per_class_starts[level].append(start)
        tally.oldest_any = start if tally.oldest_any is None else min(tally.oldest_any, start)
        if (since_ns is not None and start < since_ns) or (until_ns is not None and start >= until_ns):
            continue
        tally.in_range.append(doc)
        tally.records += 1
        rid = record_id(doc)
        if attributes.get(sc.AUDIT_PII_DETECTED) is True:
            tally.pii += 1
            consent = consent_state(attributes.get(sc.AUDIT_CONSENT))
            if consent is True:
                tally.pii_consented += 1
            elif consent is False:
                tally.pii_refused.append(rid)
            else:
                tally.pii_unstated.append(rid)
            if attributes.get(sc.AUDIT_REDACTED) is True:
                tally.pii_redacted += 1
        if _unauthorized(doc):
            tally.unauthorized.append(rid)
        if attributes.get(sc.AUDIT_INJECTION_DETECTED) is True:
            tally.injections.append(rid)
        kinds = attributes.get(sc.AUDIT_ALERTS)
        if isinstance(kinds, list) and kinds:
            tally.alerted_records += 1
            tally.alerts.update(str(kind) for kind in kinds)
        for name, present in _pci_present(doc).items():
            tally.pci_fields[name] += int(present)
    return tally


def _common_items(tally: _Tally, policy: AuditPolicy, now_ns: int, integrity: Integrity) -> list[Item]:
    items = [
        Item(
            "records",
            "records accessed / in scope",
            PASS if tally.records else WARN,
            tally.records,
            f"{tally.records} record(s) in the period" + ("" if tally.records else ": nothing to assess"),
        ),
    ]
    refused, unstated = len(tally.pii_refused), len(tally.pii_unstated)
    items.append(
        Item(
            "pii_without_consent",
            "personal data sent to a model without consent",
            FAIL if refused else WARN if unstated else PASS,
            {"refused": refused, "not_stated": unstated, "pii_records": tally.pii},
            f"{refused} record(s) with personal data and consent refused, {unstated} with consent not stated"
            + (f"; refused: {', '.join(tally.pii_refused[:10])}" if refused else ""),
        )
    )
    share = _share(tally.pii_consented, tally.pii)
    items.append(
        Item(
            "consent_coverage",
            "share of records with personal data that carry consent",
            PASS if share is None or share == 1.0 else WARN,
            share,
            f"{tally.pii_consented} of {tally.pii} record(s) with personal data had consent ({_percent(share)})",
        )
    )
    count = len(tally.unauthorized)
    items.append(
        Item(
            "unauthorized_access",
            "unauthorized-access errors (401/403, authentication or permission errors)",
            WARN if count else PASS,
            count,
            f"{count} call(s) refused as unauthorized" + (f": {', '.join(tally.unauthorized[:10])}" if count else ""),
        )
    )
    count = len(tally.injections)
    items.append(
        Item(
            "injection_attempts",
            "prompt-injection attempts flagged",
            WARN if count else PASS,
            count,
            f"{count} prompt(s) flagged as injection" + (" (export them: genai-audit redteam export)" if count else ""),
        )
    )
    items.append(_retention_item(tally, policy, now_ns))
    items.append(_integrity_item(integrity))
    return items


def _retention_item(tally: _Tally, policy: AuditPolicy, now_ns: int) -> Item:
    classes: dict[str, Any] = {}
    overdue_classes = []
    for level in sorted(tally.per_class_starts):
        starts = tally.per_class_starts[level]
        allowed = policy.retention_for(level)
        oldest = min(starts)
        overdue = sum(1 for start in starts if now_ns - start > allowed * DAY_NS)
        classes[level] = {
            "records": len(starts),
            "oldest": timestamp_text(oldest),
            "oldest_age_days": round((now_ns - oldest) / DAY_NS, 1),
            "retention_days": allowed,
            "overdue": overdue,
        }
        if overdue:
            overdue_classes.append(f"{level} ({overdue} older than {allowed} days)")
    return Item(
        "retention",
        "records kept no longer than their class's retention (storage limitation)",
        FAIL if overdue_classes else PASS,
        classes,
        ("classes holding records past retention: " + ", ".join(overdue_classes))
        if overdue_classes
        else "no class holds records older than its retention",
    )


def _integrity_item(integrity: Integrity) -> Item:
    figure: dict[str, Any] = {
        "ok": integrity.ok,
        "records": integrity.records,
        "streams": integrity.streams,
        "checkpoints": integrity.checkpoints,
        "problems": dict(integrity.problems),
    }
    if integrity.error is not None:
        return Item(
            "integrity",
            "audit records protected from alteration (verified)",
            FAIL,
            {**figure, "error": integrity.error},
            f"verification could not run: {integrity.error}",
        )
    problems = ", ".join(f"{count} {kind}" for kind, count in sorted(integrity.problems.items()))
    return Item(
        "integrity",
        "audit records protected from alteration (verified)",
        PASS if integrity.ok else FAIL,
        figure,
        f"{integrity.records} record(s) in {integrity.streams} stream(s), {integrity.checkpoints} signed "
        f"checkpoint(s): " + ("every record matches its signed ledger" if integrity.ok else f"FAILED: {problems}"),
    )


def _floor_items(tally: _Tally, policy: AuditPolicy, now_ns: int, floor: int, ident: str, what: str) -> list[Item]:
    short = {
        level: policy.retention_for(level) for level in tally.per_class_starts if policy.retention_for(level) < floor
    }
    items = [
        Item(
            f"{ident}_policy",
            f"{what}: every class kept at least {floor} days",
            FAIL if short else PASS,
            {level: policy.retention_for(level) for level in sorted(tally.per_class_starts)},
            ("classes kept less than the floor: " + ", ".join(f"{k} {v} days" for k, v in sorted(short.items())))
            if short
            else f"every class with records is kept at least {floor} days",
        )
    ]
    if tally.oldest_any is None:
        items.append(Item(f"{ident}_oldest", "oldest record kept", WARN, None, "the store holds no records"))
    else:
        age = round((now_ns - tally.oldest_any) / DAY_NS, 1)
        items.append(
            Item(
                f"{ident}_oldest",
                "oldest record kept",
                PASS if age >= floor else WARN,
                {"oldest": timestamp_text(tally.oldest_any), "age_days": age},
                f"oldest record kept is {age} days old"
                + (
                    ""
                    if age >= floor
                    else f"; if the system ran before {timestamp_text(tally.oldest_any)[:10]}, "
                    f"records of the last {floor} days are missing"
                ),
            )
        )
    return items


def _erasure_item(erasure_dir: Path | None) -> Item:
    if erasure_dir is None or not erasure_dir.is_dir():
        where = "none given" if erasure_dir is None else f"{erasure_dir} does not exist"
        return Item(
            "erasure_requests",
            "Art. 17 erasure requests handled (certificates)",
            WARN,
            None,
            f"no erasure certificate directory ({where})",
        )
    count = sum(1 for path in erasure_dir.iterdir() if path.is_file() and not path.name.startswith("."))
    return Item(
        "erasure_requests",
        "Art. 17 erasure requests handled (certificates)",
        PASS,
        count,
        f"{count} erasure certificate(s) in {erasure_dir}",
    )


def compliance_report(
    store: AuditStore,
    framework: str,
    *,
    policy: AuditPolicy,
    integrity: Integrity,
    now_ns: int,
    since_ns: int | None = None,
    until_ns: int | None = None,
    erasure_dir: Path | None = None,
) -> ComplianceReport:
    """Measure ``framework``'s requirements on the records (``since``/``until`` narrow the period;
    retention is judged on the whole store at ``now_ns``)."""
    if framework not in FRAMEWORKS:
        raise QueryError(f"unknown framework {framework!r}: use one of {', '.join(FRAMEWORKS)}")
    Filters(since_ns=since_ns, until_ns=until_ns).validated()
    tally = _tally(store, since_ns, until_ns)
    items = _common_items(tally, policy, now_ns, integrity)
    if framework == "gdpr":
        share = _share(tally.pii_redacted, tally.pii)
        items.append(
            Item(
                "pseudonymisation",
                "Art. 4(5)/32 personal data pseudonymised in the records",
                PASS if share is None or share == 1.0 else FAIL,
                share,
                f"{tally.pii_redacted} of {tally.pii} record(s) with personal data redacted ({_percent(share)})",
            )
        )
        items.append(_erasure_item(erasure_dir))
    elif framework == "hipaa":
        checkpoints = integrity.checkpoints
        items.append(
            Item(
                "documentation_retention",
                f"164.316(b)(2)(i) documentation kept {HIPAA_DOCUMENTATION_YEARS} years",
                PASS if checkpoints else WARN,
                checkpoints,
                f"{checkpoints} signed checkpoint(s) found; keep them, the integrity directory and this report "
                f"{HIPAA_DOCUMENTATION_YEARS} years (genai-audit never deletes them)",
            )
        )
    elif framework == "soc2":
        anomalies = find_anomalies(tally.in_range)
        kinds = Counter(a.kind for a in anomalies)
        items.append(
            Item(
                "anomalies",
                "CC7.2 anomalies detected (outliers, error and injection bursts)",
                WARN if anomalies else PASS,
                {"total": len(anomalies), **dict(sorted(kinds.items()))},
                f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'} (list: genai-audit anomalies)",
            )
        )
        items.append(
            Item(
                "alerts",
                "CC7.2/CC7.3 security alerts raised on calls",
                WARN if tally.alerted_records else PASS,
                {"records": tally.alerted_records, **dict(sorted(tally.alerts.items()))},
                f"{tally.alerted_records} record(s) raised alerts"
                + (": " + ", ".join(f"{k} x{v}" for k, v in sorted(tally.alerts.items())) if tally.alerts else ""),
            )
        )
    elif framework == "eu-ai-act":
        items.extend(
            _floor_items(
                tally,
                policy,
                now_ns,
                EU_AI_ACT_FLOOR_DAYS,
                "retention_floor",
                "Art. 19/26(6) logs kept at least six months",
            )
        )
    elif framework == "pci":
        shares = {name: _share(tally.pci_fields[name], tally.records) for name in PCI_FIELDS}
        missing = [name for name, share in shares.items() if share is not None and share < 1.0]
        items.append(
            Item(
                "required_fields",
                "10.2.2 user, event type, time, outcome, origin, resource on every record",
                FAIL if missing else PASS,
                shares,
                ("fields missing on some records: " + ", ".join(f"{n} {_percent(shares[n])}" for n in missing))
                if missing
                else "every record carries all six fields",
            )
        )
        items.extend(
            _floor_items(
                tally, policy, now_ns, PCI_RETENTION_DAYS, "retention_12_months", "10.5.1 audit logs retained 12 months"
            )
        )
    return ComplianceReport(framework, since_ns, until_ns, now_ns, items)


def render_compliance(report: ComplianceReport, fmt: str) -> str:
    if fmt == "json":
        return json_text(report.to_dict(), indent=2) + "\n"
    period = (
        " to ".join(
            part
            for part in (
                None if report.since_ns is None else timestamp_text(report.since_ns)[:19],
                None if report.until_ns is None else timestamp_text(report.until_ns)[:19],
            )
            if part
        )
        or "all records"
    )
    lines = [
        f"{report.framework} compliance report ({period}), generated {timestamp_text(report.generated_ns)[:19]}Z",
        "",
    ]
    for item in report.items:
        lines.append(f"[{item.status.upper():<4}] {item.id}: {item.requirement}")
        lines.append(f"       {terminal_text(item.detail)}")  # quotes stored ids, classes, alert kinds
    lines.extend(["", f"overall: {report.status.upper()}"])
    return "\n".join(lines) + "\n"
