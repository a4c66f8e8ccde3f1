"""The ``genai-audit`` command line.

Every failure the user can cause (unknown session, bad date, missing store)
prints one line on stderr and exits non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from genai_audit import semconv as sc

EXIT_USAGE = 2
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
            raise CLIError(f"bad time {text!r}: use an ISO date such as 2026-11-01 or 2026-11-01T12:00, "
                           "or a relative age such as 24h or 7d") from None
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


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.store.sqlite import Query, read_documents

    conn = _connect(args.store)
    query = Query(
        session_id=args.session, user_id=args.user, feature=args.feature, model=args.model,
        since_ns=parse_time(args.since) if args.since else None,
        until_ns=parse_time(args.until) if args.until else None,
    )
    for doc in read_documents(conn, query):
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return 0


def _fmt_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_sessions(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.store.sqlite import list_sessions

    sessions = list_sessions(_connect(args.store))
    if args.json:
        for session in sessions:
            out.write(json.dumps(session) + "\n")
        return 0
    if not sessions:
        out.write("no sessions recorded\n")
        return 0
    out.write(f"{'session':<24} {'users':<16} {'calls':>5} {'errors':>6}  {'first (UTC)':<19}  models\n")
    for s in sessions:
        out.write(
            f"{s['session_id']:<24} {','.join(s['users']):<16} {s['calls']:>5} {s['errors']:>6}  "
            f"{_fmt_ns(s['first_ns'])}  {','.join(s['models'])}\n"
        )
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.replay import render_timeline
    from genai_audit.store.sqlite import Query, read_documents, read_events

    conn = _connect(args.store)
    docs = list(read_documents(conn, Query(session_id=args.session)))
    if not docs:
        raise CLIError(f"unknown session {args.session!r} (list them with `genai-audit sessions`)")
    if args.json:
        for doc in docs:
            doc["events"] = read_events(conn, doc["trace_id"], doc["span_id"])
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    out.write(render_timeline(docs, excerpt=args.excerpt))
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from genai_audit.demo import run_demo

    return run_demo(store=args.store, out=out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-audit", description="Audit trail for LLM calls.")
    sub = parser.add_subparsers(dest="command", required=True)

    export = sub.add_parser("export", help="print stored records as JSON lines")
    export.add_argument("--store", help=f"store file (default: ${sc.ENV_STORE} or the user data directory)")
    export.add_argument("--session", help="only this session id")
    export.add_argument("--user", help="only this user id")
    export.add_argument("--feature", help="only this feature")
    export.add_argument("--model", help="only this request model")
    export.add_argument("--since", help="records starting at or after (ISO time or age such as 24h)")
    export.add_argument("--until", help="records starting before (ISO time or age)")
    export.set_defaults(func=cmd_export)

    sessions = sub.add_parser("sessions", help="list recorded sessions")
    sessions.add_argument("--store")
    sessions.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    sessions.set_defaults(func=cmd_sessions)

    replay = sub.add_parser("replay", help="forensic timeline of one session")
    replay.add_argument("session")
    replay.add_argument("--store")
    replay.add_argument("--json", action="store_true", help="the session's documents with their events")
    replay.add_argument("--excerpt", type=int, default=200, help="characters of each prompt/response to show")
    replay.set_defaults(func=cmd_replay)

    demo = sub.add_parser("demo", help="run a scripted support assistant against a local fake provider")
    demo.add_argument("--store", help="store file for the demo's records (default: a fresh file)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    try:
        return int(args.func(args, out))
    except CLIError as exc:
        sys.stderr.write(f"genai-audit: {exc}\n")
        return EXIT_FAILURE
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        sys.stderr.write(f"genai-audit: {args.command} failed: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
