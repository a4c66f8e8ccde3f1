"""``--json`` on the commands that have ``--format``: the same output as ``--format json``."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from genai_audit import semconv as sc
from genai_audit.cli import build_parser, main
from genai_audit.store.sqlite import SqliteSpanExporter


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli-json") / "audit.db"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path, integrity=False)))
    tracer = provider.get_tracer("test")
    for n in range(4):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attributes({
                sc.OPERATION_NAME: "chat",
                sc.PROVIDER_NAME: "openai",
                sc.REQUEST_MODEL: "gpt-4o",
                sc.ENDUSER_ID: "ann" if n < 3 else "ben",
                sc.SESSION_ID: "sess-A" if n < 3 else "sess-B",
                sc.AUDIT_FEATURE: "support",
                sc.USAGE_INPUT_TOKENS: 100 + n,
                sc.USAGE_OUTPUT_TOKENS: 20,
                sc.USAGE_COST_USD: 0.001 * (n + 1),
                sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"hi {n}"}]}]),
            })
            if n == 2:
                span.set_attribute(sc.ERROR_TYPE, "RateLimitError")
                span.set_status(Status(StatusCode.ERROR, "rate limited"))
    provider.shutdown()
    return str(path)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def _same_json(store: str, *command: str) -> str:
    """``command --json`` exits 0, prints JSON, and prints what ``--format json`` prints."""
    code, flag = run(*command, "--store", store, "--json")
    assert code == 0, flag
    code, long = run(*command, "--store", store, "--format", "json")
    assert code == 0, long
    assert flag == long
    return flag


def test_query_json(store: str) -> None:
    text = _same_json(store, "query", "--user", "ann")
    docs = [json.loads(line) for line in text.splitlines()]
    assert [d["attributes"][sc.ENDUSER_ID] for d in docs] == ["ann"] * 3


def test_stats_json(store: str) -> None:
    body = json.loads(_same_json(store, "stats", "--by", "feature"))
    assert "support" in json.dumps(body)


def test_report_cost_json(store: str) -> None:
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    body = json.loads(_same_json(store, "report", "cost", "--month", month))
    assert isinstance(body, dict)


def test_anomalies_json(store: str) -> None:
    text = _same_json(store, "anomalies")
    for line in text.splitlines():
        json.loads(line)


def test_replay_json_keeps_its_meaning(store: str) -> None:
    """replay's own ``--json`` (stored documents with their events) is kept; ``--format json`` is the timeline."""
    code, text = run("replay", "sess-A", "--store", store, "--json")
    assert code == 0, text
    assert sc.ENDUSER_ID in text
    code, timeline = run("replay", "sess-A", "--store", store, "--format", "json")
    assert code == 0
    assert json.loads(timeline)["session_id"] == "sess-A"


@pytest.mark.parametrize(
    "argv",
    [
        ["query"],
        ["stats"],
        ["report", "cost", "--month", "2026-01"],
        ["report", "compliance", "--framework", "gdpr"],
        ["anomalies"],
        ["retention", "apply"],
        ["erase", "--user", "ann"],
        ["verify"],
    ],
)
def test_json_flag_sets_format(argv: list[str], tmp_path: Path) -> None:
    """Every command with ``--format`` takes ``--json`` as ``--format json``; without either the default stays."""
    parser = build_parser()
    assert parser.parse_args([*argv, "--json"]).format == "json"
    assert parser.parse_args(argv).format != "json"
