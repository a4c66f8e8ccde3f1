"""Redaction under hostile or broken input: undecodable text, 50 MB prompts, deep nesting, regex-engine bait.

Every case must finish, be exported, and be redacted or withheld, never raw.
Nothing here measures speed: each case runs in a worker thread joined with a
generous 60 s limit (a subprocess where a hang must be killable), and memory is
checked with tracemalloc against a multiple of the input size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_audit import semconv as sc
from genai_audit.processors.chain import WITHHELD, default_chain, set_default_chain
from genai_audit.processors.span_processor import AuditSpanProcessor
from genai_audit.testing.fake_provider import FakeProvider, Reply
from tests.conftest import Telemetry
from tests.redaction_support import (
    FIXED,
    FIXED_NEEDLES,
    KEY,
    assert_no_leak,
    full_chain,
    is_withheld,
    leaks,
    record_document,
    redaction_chain,
    run_chain,
    span_document,
    texts,
    tokens_of,
)

T = TypeVar("T")
LIMIT_S = 60.0

FULL = full_chain()
REDACT = redaction_chain()


def bounded(function: Callable[[], T], timeout: float = LIMIT_S) -> T:
    """Run ``function`` in a worker thread; fail if it has not finished after ``timeout`` seconds."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(function())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            error.append(exc)

    worker = threading.Thread(target=target, name="bounded-redaction", daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"did not finish within {timeout:.0f} s"
    if error:
        raise error[0]
    return result[0]


def peak_memory(function: Callable[[], T]) -> tuple[T, int]:
    """``function``'s result and the peak of Python allocations while it ran.

    Tracing every allocation slows allocation-heavy code down many times over, so this run gets three times
    the limit; completion within the limit itself is checked by a separate, untraced run.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        value = bounded(function, 3 * LIMIT_S)
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _span_pipeline(chain: Any = FULL) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(AuditSpanProcessor(SimpleSpanProcessor(exporter), chain=chain, redaction_chain=REDACT))
    return provider, exporter


def _emit_llm_span(provider: TracerProvider, attributes: dict[str, Any], name: str = "openai.chat") -> None:
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai.v1")
    with tracer.start_as_current_span(name, attributes={"gen_ai.system": "openai", **attributes}):
        pass


def _exported(exporter: InMemorySpanExporter) -> dict[str, Any]:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, "the span must be exported"
    return span_document(spans[0])


def _all_utf8(document: Any) -> bool:
    try:
        for text in texts(document):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


PII = " ".join(FIXED[name].text for name in ("card", "email", "ssn", "openai_key"))
PII_NEEDLES = (*tuple(n for name in ("card", "email", "ssn", "openai_key") for n in FIXED_NEEDLES[name]), KEY)


# --------------------------------------------------------------------------- #
# Text that is not valid Unicode
# --------------------------------------------------------------------------- #

UNDECODABLE = b"caf\xe9 \xff\xfe " + PII.encode() + b" \xc3\x28 fin \xed\xa0\x80"
BROKEN = UNDECODABLE.decode("utf-8", "surrogateescape")
BROKEN_NO_PII = b"caf\xe9 na\xefve \xff plain".decode("utf-8", "surrogateescape")


def test_lone_surrogates_fixture_is_really_broken() -> None:
    with pytest.raises(UnicodeEncodeError):
        BROKEN.encode("utf-8")


@pytest.mark.parametrize("chain_name", ["full", "redaction"])
def test_lone_surrogates_through_the_chain(chain_name: str) -> None:
    chain = FULL if chain_name == "full" else REDACT
    content = {
        sc.SYSTEM_INSTRUCTIONS: [{"type": "text", "content": BROKEN_NO_PII}],
        sc.INPUT_MESSAGES: [
            {"role": "user", "parts": [{"type": "text", "content": BROKEN}]},
            {
                "role": "assistant",
                "parts": [
                    {"type": "tool_call", "id": "c", "name": "f", "arguments": {BROKEN_NO_PII: BROKEN, "n": [BROKEN]}}
                ],
            },
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "c", "response": json.dumps({"doc": BROKEN})}],
            },
        ],
        "exception.message": f"Error code: 400 - {BROKEN}",
    }
    record = bounded(lambda: run_chain(chain, content))
    document = record_document(record)
    assert_no_leak(document, PII_NEEDLES)
    assert not record.failures, record.failures
    assert {"CREDIT_CARD", "EMAIL", "US_SSN", "OPENAI_API_KEY"} <= set(record.attributes[sc.AUDIT_PII_TYPES])
    assert _all_utf8(document["content"]), "undecodable characters must not reach exporters"


def test_lone_surrogates_in_foreign_spans() -> None:
    provider, exporter = _span_pipeline()
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span(
        f"handle {BROKEN_NO_PII}",
        attributes={
            "gen_ai.prompt.0.content": BROKEN,
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": BROKEN}]),
            "app.tags": [BROKEN_NO_PII, BROKEN],
        },
    ) as span:
        span.add_event("exception", {"exception.message": BROKEN, "exception.stacktrace": f"ValueError: {BROKEN}"})
    document = _exported(exporter)
    assert_no_leak(document, PII_NEEDLES)
    assert not is_withheld(document), document
    assert tokens_of(document["attributes"])
    assert _all_utf8(document), "undecodable characters must not reach exporters"


def test_lone_surrogates_in_json_text_without_findings_are_cleaned() -> None:
    tool_result = json.dumps({"doc": BROKEN_NO_PII}, ensure_ascii=False)
    record = bounded(
        lambda: run_chain(
            FULL,
            {
                sc.INPUT_MESSAGES: [
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c", "response": tool_result}]}
                ]
            },
        )
    )
    assert _all_utf8(record.content), record.content


def test_lone_surrogate_in_a_secret_field_keeps_the_rest_of_the_content() -> None:
    """A value under a secret-looking key is replaced even when it holds undecodable bytes; nothing else is lost."""
    secret = "hunter2" + BROKEN_NO_PII[-8:] + "xyzzy-secret"
    arguments = json.dumps({"password": secret, "note": "refund order 4411"}, ensure_ascii=False)
    record = bounded(
        lambda: run_chain(
            FULL,
            {
                sc.INPUT_MESSAGES: [
                    {"role": "user", "parts": [{"type": "text", "content": "please look into it"}]},
                    {
                        "role": "assistant",
                        "parts": [{"type": "tool_call", "id": "c", "name": "f", "arguments": arguments}],
                    },
                ]
            },
        )
    )
    assert record.failures == []  # not withheld as a failed step
    assert _all_utf8(record.content), record.content
    text = json.dumps(record.content, ensure_ascii=False)
    assert "hunter2" not in text and "xyzzy-secret" not in text
    assert "refund order 4411" in text and "please look into it" in text
    assert record.attributes[sc.AUDIT_SECRETS_DETECTED] is True


# --------------------------------------------------------------------------- #
# A 50 MB prompt
# --------------------------------------------------------------------------- #

_UNIT = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "


@pytest.fixture(scope="module")
def huge_prompt() -> tuple[str, tuple[str, ...]]:
    """About 50 MB of prose with personal data and secrets at the start, in the middle and at the end."""
    half = _UNIT * (25_000_000 // len(_UNIT))
    start = f"{FIXED['card'].text} {FIXED['email_ascii'].text} "
    middle = f" {FIXED['ssn'].text} {FIXED['openai_key'].text} {FIXED['phone_us'].text} "
    end = f" {FIXED['iban'].text} {FIXED['pem'].text}"
    names = ("card", "email_ascii", "ssn", "openai_key", "phone_us", "iban", "pem")
    needles = (*tuple(n for name in names for n in FIXED_NEEDLES[name]), KEY)
    text = start + half + middle + half + end
    assert len(text) >= 50_000_000
    return text, needles


def _check_huge(document: Any, needles: tuple[str, ...]) -> None:
    found = leaks(document, needles)
    assert not found, f"raw values survived in the 50 MB prompt: {found}"


@pytest.mark.parametrize("chain_name", ["full", "redaction"])
def test_50mb_prompt_through_the_chain(huge_prompt: tuple[str, tuple[str, ...]], chain_name: str) -> None:
    text, needles = huge_prompt
    chain = FULL if chain_name == "full" else REDACT
    record = bounded(
        lambda: run_chain(chain, {sc.INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": text}]}]})
    )
    _check_huge(record_document(record), needles)
    (message,) = record.content[sc.INPUT_MESSAGES]
    redacted = message["parts"][0]["content"]
    assert redacted != WITHHELD and len(redacted) > 49_000_000, "the prompt is redacted, not dropped"
    assert redacted.startswith("[CREDIT_CARD:") and "[US_SSN:" in redacted and "[PRIVATE_KEY:" in redacted[-200:]


def test_50mb_prompt_through_the_span_processor(huge_prompt: tuple[str, tuple[str, ...]]) -> None:
    text, needles = huge_prompt
    provider, exporter = _span_pipeline()
    bounded(lambda: _emit_llm_span(provider, {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": text}))
    document = _exported(exporter)
    _check_huge(document, needles)
    content = document["attributes"]["gen_ai.prompt.0.content"]
    assert isinstance(content, str) and content.startswith("[CREDIT_CARD:") and len(content) > 49_000_000
    assert document["attributes"][sc.AUDIT_PII_COUNT] >= 7


def test_50mb_tool_arguments_json_through_the_chain(huge_prompt: tuple[str, tuple[str, ...]]) -> None:
    """JSON text above the parse limit is scanned as text; values inside must still go."""
    text, needles = huge_prompt
    arguments = json.dumps({"document": text, "card": int(FIXED["amex"].text)})
    record = bounded(
        lambda: run_chain(
            REDACT,
            {
                sc.OUTPUT_MESSAGES: [
                    {
                        "role": "assistant",
                        "parts": [{"type": "tool_call", "id": "c", "name": "store", "arguments": arguments}],
                    }
                ]
            },
        )
    )
    _check_huge(record_document(record), (*needles, FIXED["amex"].text))


# --------------------------------------------------------------------------- #
# Deep nesting
# --------------------------------------------------------------------------- #

DEPTH = 100_000


def _deep_json_text(depth: int = DEPTH) -> str:
    return '{"a":[' * depth + json.dumps(PII) + "]}" * depth


def _deep_structure(depth: int = DEPTH) -> Any:
    value: Any = PII
    for level in range(depth):
        value = {"a": [value, level]} if level % 2 else [value]
    return value


def _leaf(value: Any) -> Any:
    while isinstance(value, (dict, list)):
        value = value["a"][0] if isinstance(value, dict) else value[0]
    return value


@pytest.mark.parametrize("chain_name", ["full", "redaction"])
def test_deep_json_text_in_tool_arguments(chain_name: str) -> None:
    chain = FULL if chain_name == "full" else REDACT
    record = bounded(
        lambda: run_chain(
            chain,
            {
                sc.INPUT_MESSAGES: [
                    {
                        "role": "assistant",
                        "parts": [{"type": "tool_call", "id": "c", "name": "f", "arguments": _deep_json_text()}],
                    }
                ]
            },
        )
    )
    arguments = record.content[sc.INPUT_MESSAGES][0]["parts"][0]["arguments"]
    assert isinstance(arguments, str)
    assert not leaks(arguments, PII_NEEDLES)
    assert arguments == WITHHELD or "[CREDIT_CARD:" in arguments


@pytest.mark.parametrize("chain_name", ["full", "redaction"])
def test_deep_python_structure(chain_name: str) -> None:
    chain = FULL if chain_name == "full" else REDACT
    record = bounded(
        lambda: run_chain(
            chain,
            {
                sc.INPUT_MESSAGES: [
                    {
                        "role": "tool",
                        "parts": [{"type": "tool_call_response", "id": "c", "response": _deep_structure()}],
                    }
                ]
            },
        )
    )
    response = record.content[sc.INPUT_MESSAGES]
    if response == WITHHELD:
        return
    leaf = _leaf(response[0]["parts"][0]["response"])
    assert isinstance(leaf, str) and not leaks(leaf, PII_NEEDLES), leaf
    assert "[CREDIT_CARD:" in leaf and "[EMAIL:" in leaf


@pytest.mark.parametrize("key", ["gen_ai.input.messages", "input.value", "gen_ai.prompt.0.content"])
def test_deep_json_text_in_foreign_spans(key: str) -> None:
    provider, exporter = _span_pipeline()
    bounded(lambda: _emit_llm_span(provider, {key: _deep_json_text(), "gen_ai.completion.0.content": PII}))
    document = _exported(exporter)
    assert_no_leak(document, PII_NEEDLES)
    value = document["attributes"][key]
    assert value == WITHHELD or "[CREDIT_CARD:" in value


def test_deep_json_tool_arguments_through_the_openai_sdk(
    instrumented: Telemetry, oai: openai.OpenAI, fake: FakeProvider
) -> None:
    previous = default_chain()
    set_default_chain(FULL)
    try:
        fake.script(Reply(text="ok"))
        deep = _deep_json_text()
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": deep},
            ],
        )
    finally:
        set_default_chain(previous)
    spans = instrumented.spans()
    assert len(spans) == 1, "the call must be audited"
    assert_no_leak(span_document(spans[0]), PII_NEEDLES)


# --------------------------------------------------------------------------- #
# Regex-engine bait
# --------------------------------------------------------------------------- #

ADVERSARIAL: dict[str, str] = {
    "a*100000+@": "a" * 100_000 + "@",
    "@a*100000": "@a" * 100_000,
    "email-ish dots": "a." * 100_000 + "@" + "b." * 100_000,
    "1 *200000": "1 " * 200_000,
    "-*100000": "-" * 100_000,
    "digits*300000": "1" * 300_000,
    "dotted digits": "1.2." * 100_000,
    "dots*300000": "." * 300_000,
    "colons*300000": ":" * 300_000,
    "::::*50000": "::::" * 50_000,
    "hex colons": "a1:" * 100_000,
    "sk-*100000": "sk-" * 100_000,
    "sk-ant-*": "sk-ant-api03-" * 20_000,
    "eyJ.*": "eyJ." * 100_000,
    "BEGIN without END": "-----BEGIN PRIVATE KEY-----" + "A" * 300_000,
    "password=*": "password=" * 50_000,
    "scheme://*": "a://b:" * 50_000,
    "card groups": "4111 " * 100_000,
    "IBAN prefix": "DE89 " * 100_000,
    "plus digits": "+1 " * 100_000,
    "unicode digits": "é1 " * 100_000,
    "brackets": "[(" * 100_000 + ")]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_completes_in_bounded_memory(name: str) -> None:
    text = ADVERSARIAL[name]

    def redact() -> Any:
        return run_chain(REDACT, {sc.INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": text}]}]})

    record = bounded(redact)
    assert not record.failures, record.failures
    record, peak = peak_memory(redact)
    assert isinstance(record.content[sc.INPUT_MESSAGES][0]["parts"][0]["content"], str)
    # a few copies of the text, and per finding a small object: linear in the input
    assert peak < 64 * len(text) + 8_000_000, f"peak {peak / len(text):.1f}x the input"


@pytest.mark.parametrize("name", ["a*100000+@", "1 *200000", "::::*50000", "sk-*100000", "dotted digits"])
def test_adversarial_input_through_full_chain_and_span_processor(name: str) -> None:
    text = ADVERSARIAL[name]
    record = bounded(lambda: run_chain(FULL, {"exception.message": text}))
    assert isinstance(record.content["exception.message"], str)
    provider, exporter = _span_pipeline()
    bounded(lambda: _emit_llm_span(provider, {"gen_ai.prompt.0.content": text}, name=text[:200]))
    assert sc.AUDIT_REDACTED in _exported(exporter)["attributes"]


_MANY_FINDINGS = """
import sys
sys.path.insert(0, {root!r})
from genai_audit.processors.chain import AuditRecord
from tests.redaction_support import redaction_chain
text = "".join(f"10.{{i // 65536 % 256}}.{{i // 256 % 256}}.{{i % 256}} GET /index.html 200\\n" for i in range({n}))
record = AuditRecord(content={{"log": text}})
redaction_chain()(record)
print(record.attributes["gen_ai.audit.pii.count"])
"""


def test_many_findings_complete_in_bounded_time(tmp_path: Path) -> None:
    """100,000 IP addresses in one prompt; run in a subprocess so a hang can be killed."""
    code = _MANY_FINDINGS.format(root=str(Path(__file__).resolve().parent.parent), n=100_000)
    script = tmp_path / "many_findings.py"
    script.write_text(textwrap.dedent(code))
    try:
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=LIMIT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"100,000 findings not redacted within {LIMIT_S:.0f} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) == 100_000
