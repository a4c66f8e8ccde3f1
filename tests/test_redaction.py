"""Redaction modes, keyed pseudonyms, the key file, and the redaction step's attributes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors import detectors as d
from genai_audit.processors.chain import AuditRecord
from genai_audit.processors.redaction import (
    DROP,
    MASK,
    PLACEHOLDER,
    PSEUDONYM,
    RedactionStep,
    Redactor,
    load_key,
)

KEY = b"k" * 32
SCANNER = d.Scanner(d.builtin_detectors())
TEXT = "card 4242 4242 4242 4242, mail Ann@Example.com, call +1 415-555-0132"


def redactor(**kwargs: object) -> Redactor:
    return Redactor(SCANNER, kwargs.pop("key", KEY), **kwargs)  # type: ignore[arg-type]


def test_pseudonym_is_typed_keyed_and_stable() -> None:
    out = redactor().redact_text(TEXT)
    assert "4242 4242" not in out and "Ann@" not in out and "555-0132" not in out
    tokens = [w.strip(",") for w in out.split() if w.startswith("[")]
    assert [t.split(":")[0] for t in tokens] == ["[CREDIT_CARD", "[EMAIL", "[PHONE"]
    assert all(len(t.split(":")[1].rstrip("]")) == 12 for t in tokens)
    # same value in another format, another instance: same token
    again = redactor().redact_text("4242-4242-4242-4242 ann@example.COM (415) 555-0132")
    assert again.split() == tokens
    # another key: other tokens
    other = redactor(key=b"z" * 32).redact_text(TEXT)
    assert set(other.split()).isdisjoint(tokens)


def test_placeholder_mask_and_drop_modes() -> None:
    modes = {d.CREDIT_CARD: MASK, d.EMAIL: PLACEHOLDER, d.PHONE: DROP}
    out = redactor(modes=modes).redact_text(TEXT)
    assert out == "card **** **** **** 4242, mail [EMAIL], call "
    masked = redactor(default_mode=MASK).redact_text("mail ann@example.com or +1 415-555-0132")
    assert masked == "mail a***@example.com or +* ***-***-**32"


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'hash'"):
        redactor(default_mode="hash")


def test_structures_json_text_and_numbers() -> None:
    value = {
        "args": json.dumps({"email": "a\u0040b.example.com".replace("b.", "bb.")}),  # JSON text with an escape
        "card": 4111111111111111,
        "nested": [[{"k": "ssn 536-22-1234"}]],
        "plain": 42,
        "ann@example.com": True,
    }
    out = redactor().redact_value(value)
    dumped = json.dumps(out)
    assert "a@bb.example.com" not in dumped and "536-22-1234" not in dumped and "4111111111111111" not in dumped
    assert "ann@example.com" not in dumped
    assert out["plain"] == 42
    assert json.loads(out["args"])["email"].startswith("[EMAIL:")
    assert out["card"].startswith("[CREDIT_CARD:")


def test_deep_nesting_does_not_recurse() -> None:
    value: object = "ann@example.com"
    for _ in range(50_000):
        value = [value]
    out = redactor().redact_value(value)
    for _ in range(50_000):
        assert isinstance(out, list)
        out = out[0]
    assert isinstance(out, str) and out.startswith("[EMAIL:")


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    text = b"mail ann@example.com \xff\xfe end".decode("utf-8", "surrogateescape")
    out = redactor().redact_text(text)
    assert "ann@example.com" not in out and out.endswith("\ufffd\ufffd end")


def test_redactor_repr_hides_the_key() -> None:
    assert "kkkk" not in repr(redactor())


def test_step_sets_the_span_attributes() -> None:
    record = AuditRecord(
        attributes={},
        content={
            "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": TEXT}]}],
            "exception.message": "bad key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
        },
    )
    RedactionStep(redactor())(record)
    attrs = record.attributes
    assert attrs[sc.AUDIT_PII_DETECTED] is True
    assert attrs[sc.AUDIT_SECRETS_DETECTED] is True
    assert attrs[sc.AUDIT_PII_COUNT] == 4
    assert attrs[sc.AUDIT_PII_TYPES] == ["CREDIT_CARD", "EMAIL", "OPENAI_API_KEY", "PHONE"]
    tokens = attrs[sc.AUDIT_PII_TOKENS]
    assert isinstance(tokens, list) and len(tokens) == 4
    assert all(token in json.dumps(record.content) for token in tokens)
    assert "sk-proj" not in record.content["exception.message"]


def test_clean_record_is_marked_clean() -> None:
    record = AuditRecord(content={"gen_ai.input.messages": [{"role": "user", "parts": []}]})
    RedactionStep(redactor())(record)
    assert record.attributes[sc.AUDIT_PII_DETECTED] is False
    assert record.attributes[sc.AUDIT_PII_COUNT] == 0
    assert sc.AUDIT_PII_TYPES not in record.attributes


# -- the key ------------------------------------------------------------------------------------
def test_key_from_environment_and_file(tmp_path: Path) -> None:
    assert load_key({"GENAI_AUDIT_PSEUDONYM_KEY": "x" * 20}) == b"x" * 20
    key_file = tmp_path / "key"
    key_file.write_text("y" * 40 + "\n")
    assert load_key({"GENAI_AUDIT_PSEUDONYM_KEY_FILE": str(key_file)}) == b"y" * 40
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        load_key({"GENAI_AUDIT_PSEUDONYM_KEY": "short"})
    with pytest.raises(ConfigError, match="cannot read the key file"):
        load_key({"GENAI_AUDIT_PSEUDONYM_KEY_FILE": str(tmp_path / "missing")})


def test_default_key_file_is_created_private_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    first = load_key({}, default_path=path)
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_key({}, default_path=path) == first


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    code = (
        "import sys; from pathlib import Path; from genai_audit.processors.redaction import load_key;"
        "print(load_key({}, default_path=Path(sys.argv[1])).decode())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env={**os.environ})
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and keys == {path.read_text().strip()}


def test_pseudonyms_agree_across_processes(tmp_path: Path) -> None:
    code = (
        "from genai_audit.processors import detectors as d; from genai_audit.processors.redaction import Redactor;"
        "print(Redactor(d.Scanner(d.builtin_detectors()), b'k'*32).redact_text('ann@example.com'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == redactor().redact_text("ann@example.com")


@pytest.mark.parametrize("mode", [PLACEHOLDER, PSEUDONYM, MASK, DROP])
def test_every_mode_removes_the_value(mode: str) -> None:
    out = redactor(default_mode=mode).redact_text("secret sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 here")
    assert "abcdefghijklmnopqrstuvwxyz" not in out
