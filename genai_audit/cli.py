"""The ``genai-audit`` command line.

Every failure the user can cause (unknown session, bad date, missing store)
prints one line on stderr and exits non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TextIO

from genai_audit import semconv as sc

if TYPE_CHECKING:
    from genai_audit.forensics import AuditStore, Filters

EXIT_USAGE = 2
#: rows `query` prints as a table when no --limit is given
TABLE_ROWS = 1000
EXIT_FAILURE = 1


class CLIError(Exception):
    """A failure to report as one line and a non-zero exit."""


def parse_time(text: str) -> int:
    """``2026-11-01``, ``2026-11-01T12:00``, ISO with offset, or relative ``30m``/``24h``/``7d`` -> epoch ns."""
    relative = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        unit_name = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]
        delta = timedelta(**{unit_name: amount})
        moment = datetime.now(timezone.utc) - delta
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise CLIError(
                f"bad time {text!r}: use an ISO date such as 2026-11-01 or 2026-11-01T12:00, "
                "or a relative age such as 24h or 7d"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1_000_000_000)


def _connect(given: str | None) -> Any:
    from genai_audit.config import ConfigError, store_path
    from genai_audit.store.sqlite import StoreError, connect

    try:
        path = store_path(given)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    try:
        return connect(path, create=False)
    except StoreError as exc:
        raise CLIError(f"{exc} (set --store or {sc.ENV_STORE}; run `genai-audit demo` to create one)") from None


@contextmanager
def _reported() -> Iterator[None]:
    """Store, query and setting errors as one-line CLI errors."""
    from genai_audit.config import ConfigError
    from genai_audit.forensics import QueryError, StoreError

    try:
        yield
    except (ConfigError, QueryError, StoreError) as exc:
        raise CLIError(str(exc)) from None


def _open_store(given: str | None) -> AuditStore:
    """The SQLite file or Elasticsearch URL named by --store, GENAI_AUDIT_STORE or the default."""
    from genai_audit.config import ConfigError
    from genai_audit.forensics import StoreError, open_store

    try:
        return open_store(given)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    except StoreError as exc:
        raise CLIError(f"{exc} (set --store or {sc.ENV_STORE}; run `genai-audit demo` to create one)") from None


def _positive(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise CLIError(f"{option} {value!r}: expected a whole number of at least 1")
    return number


def _choice(value: str, option: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise CLIError(f"{option} {value!r}: expected one of {', '.join(choices)}")
    return value


def _filters(args: argparse.Namespace) -> Filters:
    """The criteria the command's options give (options a command lacks count as not given)."""
    from genai_audit.forensics import Filters

    def option(name: str) -> Any:
        return getattr(args, name, None)

    since, until = option("since"), option("until")
    return Filters(
        user=option("user"),
        session=option("session"),
        feature=option("feature"),
        model=option("model"),
        trace_id=option("trace"),
        correlation_id=option("correlation"),
        error_type=option("error_type"),
        error=option("error"),
        text=option("text"),
        token=option("token"),
        since_ns=parse_time(since) if since else None,
        until_ns=parse_time(until) if until else None,
        limit=_positive(option("limit"), "--limit"),
        newest_first=bool(option("newest")),
    )


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics.render import json_text

    filters = _filters(args)
    with _open_store(args.store) as store, _reported():
        for doc in store.documents(filters):
            out.write(json_text(doc) + "\n")
    return 0


def _cell(value: Any, width: int | None) -> str:
    from genai_audit.forensics.render import terminal_text

    return terminal_text(str("-" if value is None or value == "" else value), width)


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, widths: Sequence[int | None], right: Sequence[int] = ()
) -> str:
    """A plain-text table; cells are cut to their column's maximum width (None: never cut)."""
    cells = [[_cell(value, width) for value, width in zip(row, widths)] for row in rows]
    sizes = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(sizes[i]) if i in right else value.ljust(sizes[i]) for i, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)]) + "\n"


def _flags_of(doc: dict[str, Any]) -> str:
    a = doc.get("attributes") or {}
    flags = []
    if a.get(sc.AUDIT_PII_DETECTED):
        flags.append("PII:" + ",".join(str(t) for t in a.get(sc.AUDIT_PII_TYPES) or []))
    if a.get(sc.AUDIT_SECRETS_DETECTED):
        flags.append("SECRET")
    if a.get(sc.AUDIT_INJECTION_DETECTED):
        flags.append("INJECTION")
    if a.get(sc.AUDIT_TRUNCATED):
        flags.append("TRUNCATED")
    return " ".join(flags)


def cmd_query(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics.render import json_text

    fmt = _choice(args.format, "--format", ("table", "json"))
    filters = _filters(args)
    with _open_store(args.store) as store, _reported():
        if fmt == "json":
            for doc in store.documents(filters):
                out.write(json_text(doc) + "\n")
            return 0
        capped = filters.limit is None
        if capped:
            filters = replace(filters, limit=TABLE_ROWS + 1)
        docs = store.query(filters)
    if not docs:
        out.write("no matching records\n")
        return 0
    more = capped and len(docs) > TABLE_ROWS
    docs = docs[:TABLE_ROWS] if more else docs
    rows = []
    for doc in docs:
        a = doc.get("attributes") or {}
        status = doc.get("status") or {}
        failed = status.get("code") == "Error" or a.get(sc.ERROR_TYPE) is not None
        tokens_in, tokens_out = a.get(sc.USAGE_INPUT_TOKENS), a.get(sc.USAGE_OUTPUT_TOKENS)
        cost = a.get(sc.USAGE_COST_USD)
        rows.append(
            [
                str(doc.get("@timestamp", ""))[:23].replace("T", " "),
                a.get(sc.ENDUSER_ID),
                a.get(sc.SESSION_ID),
                a.get(sc.AUDIT_FEATURE),
                a.get(sc.REQUEST_MODEL),
                f"{int(doc.get('duration') or 0) / 1e6:.0f}",
                f"{'-' if tokens_in is None else tokens_in}/{'-' if tokens_out is None else tokens_out}",
                "-" if not isinstance(cost, (int, float)) else f"{cost:.6f}",
                f"ERROR {a.get(sc.ERROR_TYPE) or ''}".strip() if failed else "ok",
                _flags_of(doc),
                f"{doc.get('trace_id')}:{doc.get('span_id')}",
            ]
        )
    out.write(
        _table(
            [
                "time (UTC)",
                "user",
                "session",
                "feature",
                "model",
                "ms",
                "tokens",
                "cost $",
                "status",
                "flags",
                "trace:span",
            ],
            rows,
            widths=[None, 20, 24, 20, 24, None, None, None, 28, 40, None],
            right=(5, 7),
        )
    )
    out.write(f"{len(docs)} record(s)")
    out.write(" shown; there are more: narrow the query, or use --limit N or --format json\n" if more else "\n")
    return 0


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics.render import json_text

    by = _choice(args.by, "--by", ("feature", "user", "model"))
    fmt = _choice(args.format, "--format", ("table", "json"))
    filters = _filters(args)
    with _open_store(args.store) as store, _reported():
        report = store.stats(by, filters)
    if fmt == "json":
        out.write(json_text(report.to_dict(), indent=2) + "\n")
        return 0
    if not report.total.calls:
        out.write("no calls recorded in this range\n")
        return 0

    def row(label: Any, g: Any) -> list[Any]:
        def money(value: float | None) -> str:
            return "-" if value is None else f"{value:.6f}"

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        return [
            label,
            g.calls,
            g.errors,
            f"{g.error_rate * 100:.1f}%",
            ms(g.latency_avg_ms),
            ms(g.latency_p95_ms),
            money(g.cost_total_usd if g.cost_calls else None),
            money(g.cost_avg_usd),
            money(g.cost_max_usd),
            f"{g.input_tokens}/{g.output_tokens}",
            ", ".join(f"{e.type} x{e.count}" for e in g.top_errors),
        ]

    rows = [row("(none)" if g.key is None else g.key, g) for g in report.groups]
    rows.append(row("= all", report.total))
    out.write(
        _table(
            [
                by,
                "calls",
                "errors",
                "err %",
                "avg ms",
                "p95 ms",
                "cost $",
                "avg $",
                "max $",
                "tokens in/out",
                "top errors",
            ],
            rows,
            widths=[32, None, None, None, None, None, None, None, None, None, 60],
            right=tuple(range(1, 9)),
        )
    )
    return 0


def _fmt_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_sessions(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics.render import terminal_text

    filters = _filters(args)
    with _open_store(args.store) as store, _reported():
        sessions = store.sessions(filters)
    if args.json:
        for session in sessions:
            out.write(json.dumps(session) + "\n")
        return 0
    if not sessions:
        out.write("no sessions recorded\n")
        return 0
    out.write(f"{'session':<24} {'users':<16} {'calls':>5} {'errors':>6}  {'first (UTC)':<19}  models\n")
    for s in sessions:
        users = ",".join(terminal_text(str(user)) for user in s["users"])
        models = ",".join(terminal_text(str(model)) for model in s["models"])
        out.write(
            f"{terminal_text(str(s['session_id'])):<24} {users:<16} {s['calls']:>5} {s['errors']:>6}  "
            f"{_fmt_ns(s['first_ns'])}  {models}\n"
        )
    return 0


def _write_report(path: str, text: str) -> None:
    """Write a report owner-only (it holds the session's prompts, even if redacted)."""
    try:
        fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics import build_timeline, render_html, render_json, render_text
    from genai_audit.forensics.render import json_text, terminal_text

    fmt = _choice(args.format, "--format", ("text", "json", "html"))
    if args.excerpt < 1:
        raise CLIError(f"--excerpt {args.excerpt}: expected at least 1")
    with _open_store(args.store) as store, _reported():
        docs = store.by_session(args.session)
        if not docs:
            raise CLIError(f"unknown session {args.session!r} (list them with `genai-audit sessions`)")
        events = store.events(docs)
        source = store.describe()
    if args.json:  # the stored documents themselves, each with its events
        lines = []
        for doc in docs:
            doc["events"] = events.get((doc["trace_id"], doc["span_id"]), [])
            lines.append(json_text(doc) + "\n")
        text = "".join(lines)
    else:
        timeline = build_timeline(docs, events, source=source)
        if fmt == "html":
            text = render_html(timeline)
        elif fmt == "json":
            text = render_json(timeline)
        else:
            text = render_text(timeline, excerpt_chars=args.excerpt)
    if args.output:
        _write_report(args.output, text)
        out.write(
            f"wrote {'documents' if args.json else fmt} of session {terminal_text(args.session)} ({len(docs)} calls) "
            f"to {args.output}\n"
        )
    else:
        out.write(text)
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.demo import run_demo

    return run_demo(store=args.store, out=out)


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.config import ConfigError
    from genai_audit.scan import run

    try:
        if args.file == "-":
            return run(sys.stdin.buffer, out, sys.stderr, jsonl=args.jsonl, as_json=args.json)
        with open(args.file, "rb") as stream:
            return run(stream, out, sys.stderr, jsonl=args.jsonl, as_json=args.json)
    except OSError as exc:
        raise CLIError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.config import ConfigError
    from genai_audit.store.sqlite import StoreError
    from genai_audit.verify import run

    try:
        report = run(args.store, directory=args.integrity_dir, public_key=args.public_key, all_streams=args.all_streams)
    except (ConfigError, StoreError) as exc:
        raise CLIError(str(exc)) from None
    out.write(report.as_json() if args.format == "json" else report.as_text())
    return 0 if report.ok else EXIT_FAILURE


def _since_until(args: argparse.Namespace) -> tuple[int | None, int | None]:
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    return (parse_time(since) if since else None, parse_time(until) if until else None)


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _emit(args: argparse.Namespace, out: TextIO, text: str, what: str) -> None:
    if getattr(args, "output", None):
        _write_report(args.output, text)
        out.write(f"wrote {what} to {args.output}\n")
    else:
        out.write(text)


def cmd_report_cost(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics import QueryError
    from genai_audit.forensics.reports import cost_report, month_range, render_cost

    fmt = _choice(args.format, "--format", ("table", "json", "csv"))
    try:
        month_range(args.month)
    except QueryError as exc:
        raise CLIError(str(exc)) from None
    with _open_store(args.store) as store, _reported():
        report = cost_report(store, args.month)
    # CSV is data, kept exact in a file or a pipe; on a terminal its cells are shown like the table's
    for_terminal = fmt == "csv" and not args.output and _is_terminal(out)
    _emit(args, out, render_cost(report, fmt, for_terminal=for_terminal), f"the {report.month} cost report ({fmt})")
    return 0


def cmd_report_compliance(args: argparse.Namespace, out: TextIO) -> int:
    import time
    from pathlib import Path

    from genai_audit.config import ConfigError
    from genai_audit.forensics.reports import FRAMEWORKS, Integrity, compliance_report, render_compliance
    from genai_audit.processors.policy import load_policy
    from genai_audit.store.sqlite import StoreError
    from genai_audit.verify import run

    framework = _choice(args.framework, "--framework", FRAMEWORKS)
    fmt = _choice(args.format, "--format", ("text", "json"))
    since_ns, until_ns = _since_until(args)
    try:
        policy = load_policy()
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    from genai_audit.forensics.erasure import default_certificate_dir

    erasure = args.erasure_dir or str(default_certificate_dir())
    with _open_store(args.store) as store, _reported():
        try:
            integrity = Integrity.of(run(args.store, directory=args.integrity_dir, public_key=args.public_key))
        except (ConfigError, StoreError) as exc:
            integrity = Integrity.failed(str(exc))
        report = compliance_report(
            store,
            framework,
            policy=policy,
            integrity=integrity,
            now_ns=time.time_ns(),
            since_ns=since_ns,
            until_ns=until_ns,
            erasure_dir=Path(erasure).expanduser() if erasure else None,
        )
    _emit(args, out, render_compliance(report, fmt), f"the {framework} compliance report ({report.status})")
    return 0


def cmd_anomalies(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics import Filters
    from genai_audit.forensics.anomalies import find_anomalies, render_table
    from genai_audit.forensics.render import json_text

    fmt = _choice(args.format, "--format", ("table", "json"))
    since_ns, until_ns = _since_until(args)
    with _open_store(args.store) as store, _reported():
        found = find_anomalies(store.documents(Filters(since_ns=since_ns, until_ns=until_ns)))
    if fmt == "json":
        out.write("".join(json_text(a.to_dict()) + "\n" for a in found))
    else:
        out.write(render_table(found))
    return 0


def cmd_redteam_export(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics import Filters
    from genai_audit.forensics.redteam import redteam_cases
    from genai_audit.forensics.render import json_text

    since_ns, until_ns = _since_until(args)
    with _open_store(args.store) as store, _reported():
        cases = list(redteam_cases(store.documents(Filters(since_ns=since_ns, until_ns=until_ns))))
    text = "".join(json_text(case) + "\n" for case in cases)
    _emit(args, out, text, f"{len(cases)} red-team case(s)")
    return 0


def _add_report_commands(sub: Any, store_help: str) -> None:
    """``report cost``, ``report compliance``, ``anomalies`` and ``redteam export``."""
    report = sub.add_parser("report", help="monthly cost and compliance reports from the records")
    kinds = report.add_subparsers(dest="report_kind", required=True)
    cost = kinds.add_parser("cost", help="billable cost of one month: total, by feature, user and model")
    cost.add_argument("--month", required=True, metavar="YYYY-MM", help="the calendar month (UTC)")
    cost.add_argument("--store", help=store_help)
    cost.add_argument("--format", default="table", help="table (default), json or csv")
    cost.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    cost.add_argument("-o", "--output", metavar="FILE", help="write to FILE (created owner-only) instead of stdout")
    cost.set_defaults(func=cmd_report_cost)
    compliance = kinds.add_parser("compliance", help="a framework's audit requirements, measured on the records")
    compliance.add_argument("--framework", required=True, help="gdpr, hipaa, soc2, eu-ai-act or pci")
    compliance.add_argument("--store", help=store_help)
    compliance.add_argument("--since", help="period start (ISO time or age such as 30d)")
    compliance.add_argument("--until", help="period end (ISO time or age)")
    compliance.add_argument("--format", default="text", help="text (default) or json")
    compliance.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    compliance.add_argument("--integrity-dir", help="ledgers and checkpoints for the integrity check")
    compliance.add_argument("--public-key", help="verifier key for the integrity check")
    compliance.add_argument(
        "--erasure-dir",
        help="erasure certificates (default: $GENAI_AUDIT_ERASURE_DIR or <data dir>/genai-audit/erasure-certificates)",
    )
    compliance.add_argument("-o", "--output", metavar="FILE", help="write to FILE (created owner-only)")
    compliance.set_defaults(func=cmd_report_compliance)

    anomalies = sub.add_parser("anomalies", help="latency, token and cost outliers; error and injection bursts")
    anomalies.add_argument("--store", help=store_help)
    anomalies.add_argument("--since", help="calls starting at or after (ISO time or age such as 24h)")
    anomalies.add_argument("--until", help="calls starting before (ISO time or age)")
    anomalies.add_argument("--format", default="table", help="table (default) or json (JSON lines)")
    anomalies.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    anomalies.set_defaults(func=cmd_anomalies)

    redteam = sub.add_parser("redteam", help="prompts flagged as injection, as a replayable red-team set")
    actions = redteam.add_subparsers(dest="redteam_action", required=True)
    export = actions.add_parser("export", help="JSON lines, one flagged prompt (redacted) each")
    export.add_argument("--store", help=store_help)
    export.add_argument("--since", help="calls starting at or after (ISO time or age such as 30d)")
    export.add_argument("--until", help="calls starting before (ISO time or age)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (created owner-only) instead of stdout")
    export.set_defaults(func=cmd_redteam_export)


def cmd_retention(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.forensics.retention import apply_retention
    from genai_audit.ledger import IntegrityError

    fmt = _choice(args.format, "--format", ("text", "json"))
    now_ns = parse_time(args.now) if args.now else None
    with _open_store(args.store) as store, _reported():
        try:
            report = apply_retention(store, now_ns=now_ns, dry_run=args.dry_run)
        except (IntegrityError, OSError) as exc:
            raise CLIError(f"retention stopped: cannot write tombstones: {exc}") from None
    out.write(report.as_json() if fmt == "json" else report.as_text())
    return 0


def cmd_erase(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.config import ConfigError
    from genai_audit.forensics import QueryError, StoreError
    from genai_audit.forensics.erasure import erase, subject_for
    from genai_audit.ledger import IntegrityError

    fmt = _choice(args.format, "--format", ("text", "json"))
    try:
        subject = subject_for(user=args.user, value=args.value, entity=args.type, token=args.token)
    except (ValueError, ConfigError) as exc:
        raise CLIError(str(exc)) from None
    try:
        report = erase(subject, args.store or [None], dry_run=args.dry_run, certificate=args.certificate)
    except (ConfigError, QueryError, StoreError) as exc:
        raise CLIError(str(exc)) from None
    except (IntegrityError, OSError) as exc:
        raise CLIError(f"erasure stopped: cannot write tombstones: {exc}") from None
    out.write(json.dumps(report.body(), indent=2) + "\n" if fmt == "json" else report.as_text())
    failed = any(s.verify.get("ok") is False for s in report.stores)
    return EXIT_FAILURE if failed else 0


def _add_maintenance_commands(sub: Any, store_help: str) -> None:
    """``retention apply`` and ``erase``: the sanctioned deletions (tombstoned, so verify stays clean)."""
    retention = sub.add_parser("retention", help="delete records past their classification's retention")
    actions = retention.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="delete (or with --dry-run, list) expired records, tombstones first")
    apply.add_argument("--store", help=store_help)
    apply.add_argument("--dry-run", action="store_true", help="count what would be deleted per class; delete nothing")
    apply.add_argument("--now", metavar="T", help="judge expiry as of this time (ISO time or age); default: now")
    apply.add_argument("--format", default="text", help="text (default) or json")
    apply.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    apply.set_defaults(func=cmd_retention)

    erase = sub.add_parser("erase", help="GDPR erasure: delete every record of one data subject, with a certificate")
    erase.add_argument("--user", help="end user id (enduser.id)")
    erase.add_argument("--value", help="a personal value (with --type): erase every record that mentioned it")
    erase.add_argument("--type", help="the value's type: EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN, IP_ADDRESS, ...")
    erase.add_argument("--token", help="pseudonym token, e.g. [EMAIL:7f3a9c1e04b2]")
    erase.add_argument("--store", action="append", help=store_help + "; repeat for several stores")
    erase.add_argument("--dry-run", action="store_true", help="count what would be erased; change nothing")
    erase.add_argument(
        "--certificate",
        metavar="FILE",
        help="where to write the erasure certificate (default: under the data directory)",
    )
    erase.add_argument("--format", default="text", help="text (default) or json")
    erase.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    erase.set_defaults(func=cmd_erase)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-audit", description="Audit trail for LLM calls.")
    sub = parser.add_subparsers(dest="command", required=True)

    store_help = f"SQLite file or Elasticsearch http(s):// URL (default: ${sc.ENV_STORE} or the user data directory)"
    export = sub.add_parser("export", help="print stored records as JSON lines")
    export.add_argument("--store", help=store_help)
    export.add_argument("--session", help="only this session id")
    export.add_argument("--user", help="only this user id")
    export.add_argument("--feature", help="only this feature")
    export.add_argument("--model", help="only this request model")
    export.add_argument("--since", help="records starting at or after (ISO time or age such as 24h)")
    export.add_argument("--until", help="records starting before (ISO time or age)")
    export.set_defaults(func=cmd_export)

    sessions = sub.add_parser("sessions", help="list recorded sessions")
    sessions.add_argument("--store", help=store_help)
    sessions.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    sessions.add_argument("--user", help="only sessions with calls of this user id")
    sessions.add_argument("--since", help="count calls starting at or after (ISO time or age such as 24h)")
    sessions.add_argument("--until", help="count calls starting before (ISO time or age)")
    sessions.set_defaults(func=cmd_sessions)

    query = sub.add_parser("query", help="find calls by user, session, feature, model, error, id, text or token")
    query.add_argument("--store", help=store_help)
    query.add_argument("--user", help="end user id (enduser.id)")
    query.add_argument("--session", help="session id (session.id)")
    query.add_argument("--feature", help="feature (gen_ai.audit.feature)")
    query.add_argument("--model", help="request model (gen_ai.request.model)")
    query.add_argument(
        "--error",
        nargs="?",
        const="",
        metavar="PATTERN",
        help="failed calls only; with PATTERN, those whose error type, status or exception message "
        "matches it (case-insensitive, RE2 syntax; a word matches as a substring)",
    )
    query.add_argument("--error-type", help="failed calls with exactly this error.type")
    query.add_argument("--trace", help="trace id")
    query.add_argument("--correlation", help="correlation id (gen_ai.audit.request_id, e.g. the X-Request-ID)")
    query.add_argument(
        "--text",
        metavar="WORDS",
        help='words (and "quoted phrases") that must all occur in the redacted prompts or response',
    )
    query.add_argument("--token", help="pseudonym token, e.g. [EMAIL:7f3a9c1e04b2]: every call that mentioned it")
    query.add_argument("--since", help="calls starting at or after (ISO time or age such as 24h)")
    query.add_argument("--until", help="calls starting before (ISO time or age)")
    query.add_argument("--limit", help="at most this many calls")
    query.add_argument("--newest", action="store_true", help="newest first (default: oldest first)")
    query.add_argument("--format", default="table", help="table (default) or json (JSON lines, one document each)")
    query.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    query.set_defaults(func=cmd_query)

    stats = sub.add_parser("stats", help="calls, latency, error rate, cost and top errors per feature/user/model")
    stats.add_argument("--store", help=store_help)
    stats.add_argument("--by", default="feature", help="feature (default), user or model")
    stats.add_argument("--since", help="calls starting at or after (ISO time or age such as 24h)")
    stats.add_argument("--until", help="calls starting before (ISO time or age)")
    stats.add_argument("--user", help="only this end user id")
    stats.add_argument("--feature", help="only this feature")
    stats.add_argument("--model", help="only this request model")
    stats.add_argument("--format", default="table", help="table (default) or json")
    stats.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    stats.set_defaults(func=cmd_stats)

    replay = sub.add_parser("replay", help="forensic timeline of one session")
    replay.add_argument("session")
    replay.add_argument("--store", help=store_help)
    replay.add_argument(
        "--format",
        default="text",
        help="text (default, for the terminal), json (the timeline) or html (a self-contained report)",
    )
    replay.add_argument("-o", "--output", metavar="FILE", help="write to FILE (created owner-only) instead of stdout")
    replay.add_argument("--json", action="store_true", help="the session's stored documents with their events")
    replay.add_argument("--excerpt", type=int, default=200, help="characters of each prompt/response to show (text)")
    replay.set_defaults(func=cmd_replay)

    demo = sub.add_parser("demo", help="run a scripted support assistant against a local fake provider")
    demo.add_argument(
        "--store", help="SQLite file or Elasticsearch URL for the demo's records (default: $GENAI_AUDIT_STORE)"
    )
    demo.set_defaults(func=cmd_demo)

    scan = sub.add_parser("scan", help="dry-run the redaction and injection policy on text lines or JSON lines")
    scan.add_argument("file", nargs="?", default="-", help="input file, or - for standard input (default)")
    scan.add_argument("--jsonl", action="store_true", help='input lines are JSON objects with a "text" string')
    scan.add_argument("--json", action="store_true", help="one JSON object per line: text, findings, injection")
    scan.set_defaults(func=cmd_scan)

    verify = sub.add_parser("verify", help="check stored records against their signed integrity ledgers")
    verify.add_argument("--store", help="SQLite file or Elasticsearch URL (default: $GENAI_AUDIT_STORE)")
    verify.add_argument(
        "--integrity-dir",
        help="ledgers and checkpoints (default: $GENAI_AUDIT_INTEGRITY_DIR or the user data directory)",
    )
    verify.add_argument("--public-key", help="verifier key (.vkey line or PEM file); default: the local signing key's")
    verify.add_argument(
        "--all-streams",
        action="store_true",
        help="expect every stream in the integrity directory in this store (e.g. a copy)",
    )
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    verify.set_defaults(func=cmd_verify)
    _add_report_commands(sub, store_help)
    _add_maintenance_commands(sub, store_help)
    from genai_audit.kibana.cli import add_kibana_commands

    add_kibana_commands(sub, CLIError)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        return int(args.func(args, out))
    except CLIError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        _error(f"{args.command} failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE


def _error(message: str) -> None:
    """One line on stderr; a message can quote stored text, so it is shown as the terminal output is."""
    from genai_audit.forensics.render import terminal_text

    sys.stderr.write(f"genai-audit: {terminal_text(message)}\n")


if __name__ == "__main__":
    sys.exit(main())
