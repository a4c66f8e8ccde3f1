"""``genai-audit kibana install`` and ``genai-audit kibana export``.

``install`` puts the dashboards, the Forensics search and the alert rules into a Kibana
(:mod:`genai_audit.kibana.install`); ``export`` writes the saved objects as NDJSON (and, with
``--rules-dir``, each rule's JSON file), as they are committed under ``dashboards/``. Errors are
one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from genai_audit import semconv as sc
from genai_audit.kibana.objects import DEFAULT_JAEGER_URL, check_jaeger_url, ndjson
from genai_audit.kibana.rules import rules

NDJSON_NAME = "genai-audit.ndjson"


def rule_files() -> dict[str, str]:
    """File name -> content of each rule's JSON file."""
    return {f"{spec.key}.json": json.dumps(spec.file(), indent=2, ensure_ascii=False) + "\n" for spec in rules()}


def _jaeger(url: str, error: type[Exception]) -> str:
    try:
        return check_jaeger_url(url)
    except ValueError as exc:
        raise error(f"--jaeger-url: {exc}") from None


def _write(path: Path, text: str, error: type[Exception]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_export(args: argparse.Namespace, out: TextIO, error: type[Exception]) -> int:
    text = ndjson(_jaeger(args.jaeger_url, error))
    if args.output and args.output != "-":
        _write(Path(args.output).expanduser(), text, error)
        out.write(f"wrote {text.count(chr(10))} saved objects to {args.output}\n")
    else:
        out.write(text)
    if args.rules_dir:
        directory = Path(args.rules_dir).expanduser()
        files = rule_files()
        for name, content in files.items():
            _write(directory / name, content, error)
        (out if args.output and args.output != "-" else sys.stderr).write(
            f"wrote {len(files)} rules to {args.rules_dir}\n"
        )
    return 0


def cmd_install(args: argparse.Namespace, out: TextIO, error: type[Exception]) -> int:
    from genai_audit.kibana.client import KibanaClient, KibanaError, authorization
    from genai_audit.kibana.install import dashboard_links, install

    jaeger_url = _jaeger(args.jaeger_url, error)
    if args.timeout <= 0:
        raise error(f"--timeout {args.timeout:g}: expected a positive number of seconds")

    def progress(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    try:
        client = KibanaClient(
            args.kibana,
            authorization(args.api_key_file, args.user, args.password_file),
            space=args.space,
            ca_certs=args.ca_certs,
            timeout=args.timeout,
        )
        report = install(client, jaeger_url=jaeger_url, connector=args.connector, progress=progress)
    except KibanaError as exc:
        raise error(str(exc)) from None
    outcomes = [outcome for _, outcome in report.rules]
    counts = ", ".join(f"{outcomes.count(kind)} {kind}" for kind in ("created", "updated", "unchanged"))
    out.write(
        f"Kibana {report.version} at {client.url}, space {client.space!r}: {report.imported} saved objects, "
        f"{len(report.rules)} rules ({counts})\n"
    )
    if not report.ok:
        raise error(report.failures())
    for line in dashboard_links(client):
        out.write(f"  {line}\n")
    return 0


def add_kibana_commands(sub: Any, error: type[Exception]) -> None:
    """Register ``kibana install`` and ``kibana export`` on the top-level subcommands.

    ``error`` is the command line's one-line error (``genai_audit.cli.CLIError``: passed in, since
    ``python -m genai_audit.cli`` runs that module as ``__main__``).
    """
    kibana = sub.add_parser("kibana", help="Kibana dashboards, forensic search and alert rules for Elasticsearch")
    actions = kibana.add_subparsers(dest="kibana_action", required=True)
    install = actions.add_parser(
        "install", help="import the saved objects and create or update the alert rules (running it again is safe)"
    )
    install.add_argument("--kibana", required=True, metavar="URL", help="Kibana's URL, e.g. https://kibana.example:5601")
    install.add_argument("--api-key-file", metavar="FILE", help="file holding a Kibana/Elasticsearch API key")
    install.add_argument("--user", help="user name (with --password-file)")
    install.add_argument("--password-file", metavar="FILE", help="file holding the user's password")
    install.add_argument("--space", help="Kibana space id (default: the default space)")
    install.add_argument("--connector", metavar="ID", help="connector the rules send their alerts to")
    install.add_argument(
        "--jaeger-url",
        default=os.environ.get(sc.ENV_JAEGER_URL, DEFAULT_JAEGER_URL),
        metavar="URL",
        help=f"Jaeger UI that trace ids link to (default: ${sc.ENV_JAEGER_URL} or {DEFAULT_JAEGER_URL})",
    )
    install.add_argument("--ca-certs", metavar="FILE", help="CA bundle that signed Kibana's certificate")
    install.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default 30)")
    install.set_defaults(func=functools.partial(cmd_install, error=error))

    export = actions.add_parser("export", help="write the saved objects as NDJSON (for Kibana's import)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument("--rules-dir", metavar="DIR", help="also write each alert rule's JSON file into DIR")
    export.add_argument(
        "--jaeger-url",
        default=os.environ.get(sc.ENV_JAEGER_URL, DEFAULT_JAEGER_URL),
        metavar="URL",
        help="Jaeger UI that trace ids link to",
    )
    export.set_defaults(func=functools.partial(cmd_export, error=error))
