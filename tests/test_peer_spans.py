"""AuditSpanProcessor and AuditLogRecordProcessor on telemetry other instrumentations produce.

* OpenLLMetry (``opentelemetry-instrumentation-openai``, the version the overhead
  benchmark measures) instrumenting the real ``openai`` SDK in a throwaway
  virtualenv (built once from PyPI, cached under
  ``${XDG_CACHE_HOME:-~/.cache}/genai-audit/peer-venvs/openllmetry-<hash>``), calling
  the fake provider of this test process: its spans, and its GenAI events (log
  records), come out redacted.
* Spans shaped like OpenInference's and the official GenAI package's, made by hand
  with a real TracerProvider, and GenAI events through the OTel logs SDK.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_audit import semconv as sc
from genai_audit.processors.span_processor import AuditLogRecordProcessor, AuditSpanProcessor
from genai_audit.testing.fake_provider import FakeProvider, Reply
from tests.redaction_support import (
    ENV_KEY,
    FIXED,
    FIXED_NEEDLES,
    KEY,
    assert_no_leak,
    fixed_text,
    is_withheld,
    leaks,
    span_document,
    texts,
    tokens_of,
)
from tools.dists import editable_args, projects

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
#: the versions bench/overhead.py measured (README table): OpenLLMetry 0.62.4 with openai 3.54.0
REQUIREMENTS = ("opentelemetry-instrumentation-openai==0.62.4", "openai==3.54.0")
BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 180

PROMPT_NAMES = ("email", "phone_us", "card", "ssn", "openai_key", "aws_key_id")
ANSWER_NAMES = ("iban", "phone_intl", "github_token", "email_ascii")
PROMPT = "Please update my account: " + fixed_text(*PROMPT_NAMES)
SYSTEM = f"Support bot. Escalations: {FIXED['email_ascii'].text}"
ANSWER = "Done. On file now: " + fixed_text(*ANSWER_NAMES)
NEEDLES = (*tuple(n for name in (*PROMPT_NAMES, *ANSWER_NAMES) for n in FIXED_NEEDLES[name]), KEY)
#: the values as written (what OpenLLMetry itself records)
PROMPT_VALUES = tuple(FIXED[name].text for name in PROMPT_NAMES)
ANSWER_VALUES = tuple(FIXED[name].text for name in ANSWER_NAMES)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_AUDIT_", "OTEL_", "TRACELOOP_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- #
# The throwaway virtualenv
# --------------------------------------------------------------------------- #


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _venv_key() -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([*REQUIREMENTS, *editable_args(ROOT), sys.version]).encode())
    for project in projects(ROOT):  # the project's own dependencies
        digest.update((project / "pyproject.toml").read_bytes())
    digest.update((ROOT / "setup.py").read_bytes())
    return digest.hexdigest()[:12]


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode == 0, f"pip install {' '.join(args)} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="session")
def openllmetry_python() -> Path:
    """Python of a venv with OpenLLMetry, openai and this project (editable), built once and reused."""
    venv = _cache_home() / "genai-audit" / "peer-venvs" / f"openllmetry-{_venv_key()}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it
        if not marker.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_TIMEOUT_S)
            _pip(python, *REQUIREMENTS, *editable_args(ROOT))
            marker.write_text(json.dumps({"requirements": [*REQUIREMENTS, *editable_args(ROOT)]}))
    return python


PEER_SCRIPT = r'''
import copy, json, sys
from importlib import metadata

import openai
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_audit.processors.span_processor import AuditLogRecordProcessor, AuditSpanProcessor

base_url, mode, inputs_path, out_path = sys.argv[1:5]
inputs = json.load(open(inputs_path))

audited, raw = InMemorySpanExporter(), InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(AuditSpanProcessor(SimpleSpanProcessor(audited)))  # chain from the environment
tracer_provider.add_span_processor(SimpleSpanProcessor(raw))  # what OpenLLMetry recorded, for comparison


class RawLogs:
    """Copies each record as emitted (the audit processor edits records in place afterwards)."""

    def __init__(self):
        self.records = []

    def on_emit(self, data):
        record = getattr(data, "log_record", data)
        self.records.append(copy.deepcopy({"event_name": getattr(record, "event_name", None), "body": record.body,
                                           "attributes": dict(record.attributes or {})}))

    emit = on_emit

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


audited_logs, raw_logs = InMemoryLogRecordExporter(), RawLogs()
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(raw_logs)
logger_provider.add_log_record_processor(AuditLogRecordProcessor(SimpleLogRecordProcessor(audited_logs)))
OpenAIInstrumentor(use_attributes=(mode == "attributes")).instrument(
    tracer_provider=tracer_provider, logger_provider=logger_provider)

client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
messages = [{"role": "system", "content": inputs["system"]}, {"role": "user", "content": inputs["prompt"]}]
client.chat.completions.create(model="gpt-4o", messages=messages)
for _ in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True):
    pass
tracer_provider.force_flush()


def span_doc(span):
    return {"name": span.name, "scope": span.instrumentation_scope.name,
            "attributes": dict(span.attributes or {}),
            "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
            "status": {"code": span.status.status_code.name, "description": span.status.description}}


def log_doc(data):
    record = getattr(data, "log_record", data)
    return {"event_name": getattr(record, "event_name", None), "body": record.body,
            "attributes": dict(record.attributes or {})}


import genai_audit.processors.span_processor as ours

json.dump({
    "ours": ours.__file__,
    "versions": {name: metadata.version(name) for name in ("openai", "opentelemetry-instrumentation-openai",
                                                            "opentelemetry-sdk", "genai-audit")},
    "audited": [span_doc(s) for s in audited.get_finished_spans()],
    "raw": [span_doc(s) for s in raw.get_finished_spans()],
    "audited_logs": [log_doc(r) for r in audited_logs.get_finished_logs()],
    "raw_logs": raw_logs.records,
}, open(out_path, "w"), default=list)
'''


def _run_peer(python: Path, fake: FakeProvider, tmp: Path, mode: str) -> dict[str, Any]:
    fake.reset()
    fake.script(Reply(text=ANSWER), Reply(text=ANSWER, chunk_size=5))
    script, inputs, out = tmp / "peer.py", tmp / f"inputs-{mode}.json", tmp / f"out-{mode}.json"
    script.write_text(PEER_SCRIPT)
    inputs.write_text(json.dumps({"system": SYSTEM, "prompt": PROMPT}))
    env = _clean_env(**{ENV_KEY: KEY, "TRACELOOP_TRACE_CONTENT": "true"})
    result = subprocess.run(
        [str(python), str(script), fake.openai_base_url, mode, str(inputs), str(out)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
        cwd=tmp,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(fake.requests) == 2, "both calls reached the fake provider"
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.fixture(scope="module")
def openllmetry_attributes(
    openllmetry_python: Path, provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return _run_peer(openllmetry_python, provider, tmp_path_factory.mktemp("openllmetry"), "attributes")


@pytest.fixture(scope="module")
def openllmetry_events(
    openllmetry_python: Path, provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return _run_peer(openllmetry_python, provider, tmp_path_factory.mktemp("openllmetry-events"), "events")


#: where OpenLLMetry puts content, by version: message-parts JSON (0.4x+) or indexed legacy attributes
_INPUT_KEYS = ("gen_ai.input.messages", "gen_ai.prompt.1.content")
_OUTPUT_KEYS = ("gen_ai.output.messages", "gen_ai.completion.0.content")


def _content_key(attributes: dict[str, Any], candidates: tuple[str, ...]) -> str:
    found = [key for key in candidates if key in attributes]
    assert found, f"none of {candidates} in {sorted(attributes)}"
    return found[0]


def test_openllmetry_recorded_the_raw_content(openllmetry_attributes: dict[str, Any]) -> None:
    """Sanity check of the setup: without our processor, OpenLLMetry's spans carry every value."""
    assert Path(openllmetry_attributes["ours"]).resolve().is_relative_to(ROOT), "the checkout under test is used"
    versions = openllmetry_attributes["versions"]
    assert versions["opentelemetry-instrumentation-openai"] == REQUIREMENTS[0].split("==")[1]
    raw = openllmetry_attributes["raw"]
    assert len(raw) == 2
    for span in raw:
        assert span["scope"].startswith("opentelemetry.instrumentation.openai")
        assert set(leaks(span, PROMPT_VALUES)) == set(PROMPT_VALUES), "the prompt must be in OpenLLMetry's span"
        assert set(leaks(span, ANSWER_VALUES)) == set(ANSWER_VALUES), "the answer must be in OpenLLMetry's span"


def test_openllmetry_spans_are_redacted(openllmetry_attributes: dict[str, Any]) -> None:
    audited = openllmetry_attributes["audited"]
    assert [s["name"] for s in audited] == [s["name"] for s in openllmetry_attributes["raw"]]
    for span in audited:
        assert_no_leak(span, NEEDLES, f"(OpenLLMetry span {span['name']})")
        attributes = span["attributes"]
        assert attributes[sc.AUDIT_REDACTED] is True
        assert attributes[sc.AUDIT_PII_DETECTED] is True and attributes[sc.AUDIT_SECRETS_DETECTED] is True
        assert attributes[sc.AUDIT_CLASSIFICATION] == "restricted"
        assert {
            "EMAIL",
            "PHONE",
            "CREDIT_CARD",
            "US_SSN",
            "OPENAI_API_KEY",
            "AWS_ACCESS_KEY_ID",
            "IBAN",
            "GITHUB_TOKEN",
        } <= set(attributes[sc.AUDIT_PII_TYPES])
        assert attributes["gen_ai.request.model"] == "gpt-4o", "structural attributes stay as they were"


def test_openllmetry_content_attributes_hold_pseudonyms(openllmetry_attributes: dict[str, Any]) -> None:
    """The content attributes are still there, valid, and carry the pseudonyms in place of the values."""
    for span in openllmetry_attributes["audited"]:
        attributes = span["attributes"]
        assert sc.AUDIT_PROCESSING_FAILED not in attributes, attributes.get(sc.AUDIT_PROCESSING_FAILED)
        assert not is_withheld(span)
        tokens = tokens_of(attributes)
        for key, wanted in (
            (_content_key(attributes, _INPUT_KEYS), ("[EMAIL:", "[CREDIT_CARD:", "[US_SSN:")),
            (_content_key(attributes, _OUTPUT_KEYS), ("[IBAN:", "[GITHUB_TOKEN:")),
        ):
            value = attributes[key]
            if key.endswith("messages"):
                json.loads(value)  # still JSON
            present = [token for token in tokens if token in value]
            assert all(any(t.startswith(prefix) for t in present) for prefix in wanted), (key, value)


def test_openllmetry_events_are_redacted(openllmetry_events: dict[str, Any]) -> None:
    """OpenLLMetry's event mode: GenAI events as log records (prompt and choice in the body)."""
    raw, audited = openllmetry_events["raw_logs"], openllmetry_events["audited_logs"]
    assert raw and len(audited) == len(raw)
    assert {"gen_ai.user.message", "gen_ai.choice"} <= {r["event_name"] for r in raw}
    assert set(leaks(raw, PROMPT_VALUES)) == set(PROMPT_VALUES), "the prompt must be in OpenLLMetry's events"
    for record in audited:
        assert_no_leak(record, NEEDLES, f"(event {record['event_name']})")
    bodies = [t for r in audited for t in texts(r["body"])]
    assert any("[CREDIT_CARD:" in t for t in bodies) and any("[IBAN:" in t for t in bodies)
    for span in openllmetry_events["audited"]:
        assert_no_leak(span, NEEDLES)


# --------------------------------------------------------------------------- #
# Hand-made spans of other conventions, and log records, in this interpreter
# --------------------------------------------------------------------------- #


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the pseudonym key configured: the processors build their default chains from the environment."""
    for name in list(os.environ):
        if name.startswith("GENAI_AUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(ENV_KEY, KEY)
    return


def _traced(shape: str) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AuditSpanProcessor(SimpleSpanProcessor(exporter)))
    if shape == "openinference":
        tracer = provider.get_tracer("openinference.instrumentation.openai")
        attributes = {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            "llm.provider": "openai",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": SYSTEM,
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": PROMPT,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": json.dumps(
                {"card": FIXED["card"].text}
            ),
            "input.value": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}),
            "input.mime_type": "application/json",
            "output.value": ANSWER,
            "output.mime_type": "text/plain",
            "llm.token_count.prompt": 42,
        }
        name = "ChatCompletion"
    else:
        tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "finish_reason": "stop",
                        "parts": [
                            {"type": "text", "content": ANSWER},
                            {
                                "type": "tool_call",
                                "id": "c1",
                                "name": "charge",
                                "arguments": {"card": FIXED["card"].text},
                            },
                        ],
                    }
                ]
            ),
            "gen_ai.usage.input_tokens": 42,
        }
        name = "chat gpt-4o"
    with tracer.start_as_current_span(name, attributes=attributes):
        pass
    (span,) = exporter.get_finished_spans()
    return span_document(span)


@pytest.mark.parametrize("shape", ["openinference", "official_genai"])
def test_hand_made_peer_spans_are_redacted(keyed_env: None, shape: str) -> None:
    document = _traced(shape)
    assert_no_leak(document, NEEDLES, f"({shape})")
    attributes = document["attributes"]
    assert attributes[sc.AUDIT_CLASSIFICATION] == "restricted"
    assert {"EMAIL", "CREDIT_CARD", "US_SSN", "IBAN", "GITHUB_TOKEN"} <= set(attributes[sc.AUDIT_PII_TYPES])
    assert not is_withheld(document)
    content_keys = (
        ["llm.input_messages.1.message.content", "input.value", "output.value"]
        if shape == "openinference"
        else ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"]
    )
    for key in content_keys:
        assert any(token in attributes[key] for token in tokens_of(attributes)), (key, attributes[key])
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "input.value"):
        if key in attributes:
            json.loads(attributes[key])  # JSON attributes stay JSON


def test_genai_events_through_the_logs_sdk(keyed_env: None) -> None:
    exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(AuditLogRecordProcessor(SimpleLogRecordProcessor(exporter)))
    logger = logger_provider.get_logger("opentelemetry.instrumentation.openai_v2")
    logger.emit(
        event_name="gen_ai.system.message", body={"content": SYSTEM}, attributes={"gen_ai.provider.name": "openai"}
    )
    logger.emit(
        event_name="gen_ai.user.message",
        body={"content": PROMPT},
        attributes={"gen_ai.provider.name": "openai", "app.note": f"from {FIXED['email'].text}"},
    )
    logger.emit(
        event_name="gen_ai.choice",
        body={
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "content": ANSWER,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "charge", "arguments": json.dumps({"card": FIXED["card"].text})},
                    }
                ],
            },
        },
        attributes={"gen_ai.provider.name": "openai", "app.tags": ["x", FIXED["ssn"].text]},
    )
    logger.emit(body=f"plain body with {FIXED['openai_key'].text}")

    try:
        raise ValueError(f"charge failed for {FIXED['card'].text}")
    except ValueError as exc:  # as a logging bridge records an exception: message and stack trace
        logger.emit(
            body=f"lookup for {FIXED['email_ascii'].text} failed",
            exception=exc,
            attributes={"code.function.name": "charge"},
        )

    records = [getattr(r, "log_record", r) for r in exporter.get_finished_logs()]
    assert len(records) == 5
    documents = [{"body": r.body, "attributes": dict(r.attributes or {})} for r in records]
    for document in documents:
        assert_no_leak(document, NEEDLES)
        assert document["attributes"][sc.AUDIT_REDACTED] is True
    user, choice = documents[1], documents[2]
    assert {"EMAIL", "CREDIT_CARD", "US_SSN", "OPENAI_API_KEY"} <= set(user["attributes"][sc.AUDIT_PII_TYPES])
    assert "[CREDIT_CARD:" in json.dumps(choice["body"]) and "[US_SSN:" in json.dumps(choice["attributes"])
    assert choice["body"]["index"] == 0 and choice["body"]["finish_reason"] == "stop", "structure kept"
    exception = documents[4]
    assert "[CREDIT_CARD:" in exception["attributes"]["exception.message"]
    assert "[EMAIL:" in str(exception["body"])
