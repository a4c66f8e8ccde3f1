"""The audit policy file, classification and the security score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors.chain import AuditRecord
from genai_audit.processors.pipeline import build_chain
from genai_audit.processors.policy import (
    AuditPolicy,
    ClassificationStep,
    SecurityScoreStep,
    consent_state,
    load_policy,
    stricter,
)

ENV_KEY = {"GENAI_AUDIT_PSEUDONYM_KEY": "k" * 32}


def write(tmp_path: Path, data: object, name: str = "policy.json") -> dict[str, str]:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return {**ENV_KEY, "GENAI_AUDIT_POLICY_FILE": str(path)}


def classify(types: list[str], declared: str | None = None, policy: AuditPolicy | None = None) -> AuditRecord:
    attrs: dict[str, object] = {sc.AUDIT_PII_TYPES: types}
    if declared is not None:
        attrs[sc.AUDIT_CLASSIFICATION] = declared
    record = AuditRecord(attributes=attrs)  # type: ignore[arg-type]
    ClassificationStep(policy or AuditPolicy())(record)
    return record


@pytest.mark.parametrize(
    ("types", "expected", "days"),
    [
        ([], "internal", 90),
        (["EMAIL"], "confidential", 30),
        (["PHONE", "IP_ADDRESS", "IBAN"], "confidential", 30),
        (["EMAIL", "US_SSN"], "restricted", 7),
        (["CREDIT_CARD"], "restricted", 7),
        (["GITHUB_TOKEN"], "restricted", 7),
        (["SOMETHING_NEW"], "confidential", 30),
    ],
)
def test_default_rules(types: list[str], expected: str, days: int) -> None:
    record = classify(types)
    assert record.attributes[sc.AUDIT_CLASSIFICATION] == expected
    assert record.attributes[sc.AUDIT_RETENTION_DAYS] == days


def test_declared_class_is_never_downgraded() -> None:
    assert classify([], "restricted").attributes[sc.AUDIT_CLASSIFICATION] == "restricted"
    assert classify(["EMAIL"], "public").attributes[sc.AUDIT_CLASSIFICATION] == "confidential"
    record = classify(["EMAIL"], "public")
    assert record.attributes[sc.AUDIT_DECLARED_CLASSIFICATION] == "public"
    assert classify([], "top-secret").attributes[sc.AUDIT_CLASSIFICATION] == "restricted"
    assert stricter("public", "internal") == "internal"


def test_policy_file_changes_modes_rules_retention_and_adds_detectors(tmp_path: Path) -> None:
    env = write(
        tmp_path,
        {
            "redaction": {"modes": {"EMAIL": "placeholder"}, "disabled": ["IP_ADDRESS"]},
            "detectors": [
                {
                    "name": "EMPLOYEE_ID",
                    "pattern": r"\bEMP-\d{6}\b",
                    "prefilter": ["EMP-"],
                    "classification": "restricted",
                    "mode": "placeholder",
                }
            ],
            "classification": {"default": "public", "rules": {"EMAIL": "internal"}},
            "retention": {"public": 400, "floor_days": 183},
        },
    )
    policy = load_policy(env)
    chain = build_chain(policy, env)
    record = AuditRecord(content={"x": "EMP-123456 from ann@example.com at 10.0.0.1"})
    chain(record)
    assert record.content["x"] == "[EMPLOYEE_ID] from [EMAIL] at 10.0.0.1"
    assert record.attributes[sc.AUDIT_CLASSIFICATION] == "restricted"
    assert record.attributes[sc.AUDIT_RETENTION_DAYS] == 183  # restricted 7 days, raised to the floor
    assert policy.retention_for("public") == 400
    clean = AuditRecord(content={"x": "hello"})
    chain(clean)
    assert clean.attributes[sc.AUDIT_CLASSIFICATION] == "public"


def test_toml_policy(tmp_path: Path) -> None:
    env = write(tmp_path, '[redaction]\ndefault_mode = "mask"\n[retention]\nrestricted = 10\n', "policy.toml")
    policy = load_policy(env)
    assert policy.default_mode == "mask"
    assert policy.retention_for("restricted") == 10


def test_custom_validator_by_name_and_import(tmp_path: Path) -> None:
    env = write(
        tmp_path,
        {
            "detectors": [
                {"name": "ACCOUNT", "pattern": r"\bACC\d{11}\b", "validator": "luhn"},
                {"name": "TICKET", "pattern": r"\bT-\d+\b", "validator": "os.path:isabs"},
            ]
        },
    )
    chain = build_chain(load_policy(env), env)
    record = AuditRecord(content={"x": "ACC79927398713 ACC79927398710 T-1"})
    chain(record)
    assert record.content["x"].startswith("[ACCOUNT:")
    assert record.content["x"].endswith("ACC79927398710 T-1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "expected an object"),
        ({"redaction": {"default_mode": "hash"}}, "redaction mode 'hash'"),
        ({"redaction": {"token_chars": 4}}, "token_chars"),
        ({"detectors": [{"name": "X", "pattern": r"(a)\1"}]}, "detector 'X'.*not supported"),
        ({"detectors": [{"name": "X", "pattern": "x", "validator": "nope"}]}, "unknown validator 'nope'"),
        ({"detectors": [{"name": "X", "pattern": "x", "validator": "no_such_mod:f"}]}, "cannot be imported"),
        ({"detectors": [{"name": "X"}]}, r"detectors\[0\] needs"),
        ({"classification": {"rules": {"EMAIL": "secret"}}}, "'secret' is not a classification"),
        ({"retention": {"internal": 0}}, "retention.internal"),
        ({"retention": {"weekly": 3}}, "'weekly' is not a classification"),
        ({"alerting": {}}, "unknown section"),
    ],
)
def test_bad_policy_files_name_the_problem(tmp_path: Path, data: object, message: str) -> None:
    env = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as info:
        load_policy(env)
    assert str(tmp_path) in str(info.value) or "redaction mode" in str(info.value)


def test_bad_environment_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GENAI_AUDIT_REDACTION"):
        load_policy({"GENAI_AUDIT_REDACTION": "maybe"})
    with pytest.raises(ConfigError, match="region 'XX'"):
        load_policy({"GENAI_AUDIT_PHONE_REGION": "xx"})
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy({"GENAI_AUDIT_POLICY_FILE": str(tmp_path / "missing.json")})


def test_redaction_can_be_turned_off() -> None:
    env = {**ENV_KEY, "GENAI_AUDIT_REDACTION": "false"}
    record = AuditRecord(content={"x": "ann@example.com"})
    build_chain(load_policy(env), env)(record)
    assert record.content["x"] == "ann@example.com"
    assert record.attributes[sc.AUDIT_CLASSIFICATION] == "internal"


def test_security_score_combines_signals() -> None:
    def score(**attrs: object) -> float:
        record = AuditRecord(attributes=attrs)  # type: ignore[arg-type]
        SecurityScoreStep()(record)
        value = record.attributes[sc.AUDIT_SECURITY_SCORE]
        assert isinstance(value, float)
        return value

    assert score() == 0.0
    assert score(**{sc.AUDIT_INJECTION_SCORE: 0.5}) == 0.5
    assert score(**{sc.AUDIT_SECRETS_DETECTED: True}) == 0.9
    pii = {sc.AUDIT_PII_DETECTED: True}
    assert score(**pii) == 0.3
    assert score(**pii, **{sc.AUDIT_CLASSIFICATION: "restricted"}) == 0.6
    assert score(**pii, **{sc.AUDIT_CONSENT: "false"}) == round(1 - 0.7 * 0.8, 3)
    assert score(**{sc.AUDIT_INJECTION_SCORE: 0.99, sc.AUDIT_SECRETS_DETECTED: True}) == 0.999


def test_consent_state() -> None:
    assert consent_state("granted") is True
    assert consent_state("false") is False
    assert consent_state(None) is None
    assert consent_state("unknown") is None
