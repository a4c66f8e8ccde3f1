"""The audit policy: what to detect, how to redact it, how to classify and how long to keep it.

Read once at start-up from environment variables and an optional policy file
(JSON, or TOML on Python 3.11+) named by ``GENAI_AUDIT_POLICY_FILE``. Any
mistake raises :class:`~genai_audit.config.ConfigError` naming the file and
the field, so a bad policy stops start-up instead of letting raw data through.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_audit import semconv as sc
from genai_audit.config import ConfigError, parse_bool, parse_int
from genai_audit.processors import detectors as d
from genai_audit.processors.chain import AuditRecord

ENV_REDACTION = "GENAI_AUDIT_REDACTION"
ENV_POLICY_FILE = "GENAI_AUDIT_POLICY_FILE"
ENV_PHONE_REGION = "GENAI_AUDIT_PHONE_REGION"
ENV_RETENTION_FLOOR = "GENAI_AUDIT_RETENTION_FLOOR_DAYS"

PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED = "public", "internal", "confidential", "restricted"
LEVELS = (PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED)
_RANK = {level: rank for rank, level in enumerate(LEVELS)}

SECRET_TYPES = (
    d.OPENAI_API_KEY,
    d.ANTHROPIC_API_KEY,
    d.AWS_ACCESS_KEY_ID,
    d.AWS_SECRET_KEY,
    d.GITHUB_TOKEN,
    d.SLACK_TOKEN,
    d.STRIPE_KEY,
    d.GOOGLE_API_KEY,
    d.JWT,
    d.PRIVATE_KEY,
    d.URL_PASSWORD,
    d.SECRET_VALUE,
)
DEFAULT_RULES: dict[str, str] = {
    **dict.fromkeys(SECRET_TYPES, RESTRICTED),
    d.US_SSN: RESTRICTED,
    d.CREDIT_CARD: RESTRICTED,
    d.EMAIL: CONFIDENTIAL,
    d.PHONE: CONFIDENTIAL,
    d.IP_ADDRESS: CONFIDENTIAL,
    d.IBAN: CONFIDENTIAL,
    d.PERSON: CONFIDENTIAL,
    d.STREET_ADDRESS: CONFIDENTIAL,
    d.POSTAL_CODE: CONFIDENTIAL,
}
DEFAULT_RETENTION_DAYS: dict[str, int] = {PUBLIC: 365, INTERNAL: 90, CONFIDENTIAL: 30, RESTRICTED: 7}


def consent_state(value: Any) -> bool | None:
    """The audit context's consent value as True (given), False (refused) or None (not stated)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("true", "granted", "yes", "1"):
        return True
    if text in ("false", "denied", "no", "0"):
        return False
    return None


def stricter(a: str, b: str) -> str:
    """The stricter of two classification levels (unknown levels count as restricted)."""
    return a if _RANK.get(a, len(LEVELS)) >= _RANK.get(b, len(LEVELS)) else b


@dataclass
class CustomDetector:
    name: str
    pattern: str
    kind: str = d.PII
    validator: str | None = None
    prefilter: tuple[str, ...] = ()
    group: int = 0


@dataclass
class AuditPolicy:
    redaction: bool = True
    default_mode: str = "pseudonym"
    modes: dict[str, str] = field(default_factory=dict)
    token_chars: int = 12
    phone_region: str = "US,GB,DE,FR,AU,IN,KR,JP,NL,IT,ES,BR,MX"
    disabled: frozenset[str] = frozenset()
    custom: list[CustomDetector] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))
    default_level: str = INTERNAL
    retention_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    retention_floor_days: int = 0
    source: str = "defaults"

    def retention_for(self, level: str) -> int:
        days = self.retention_days.get(level, self.retention_days[RESTRICTED])
        return max(days, self.retention_floor_days)

    def classify(self, entity_types: list[str] | tuple[str, ...]) -> str:
        level = self.default_level
        for entity in entity_types:
            level = stricter(level, self.rules.get(entity, CONFIDENTIAL))
        return level

    # -- building the detectors -----------------------------------------------------------
    def scanner(self) -> d.Scanner:
        detectors = [det for det in d.builtin_detectors(self.phone_region) if det.entity not in self.disabled]
        detectors.extend(_build_custom(c, self.phone_region, self.source) for c in self.custom)
        return d.Scanner(detectors)


def _validator(spec: str | None, region: str, where: str) -> d.Validator | None:
    if spec is None:
        return None
    named: dict[str, d.Validator] = {
        "luhn": lambda v: d.only_digits(v) if d.luhn_ok(d.only_digits(v)) else None,
        "card": d.validate_card,
        "iban": d.validate_iban,
        "mod97": d.validate_iban,
        "ssn": d.validate_ssn,
        "ipv4": d.validate_ipv4,
        "ipv6": d.validate_ipv6,
        "phone": d.make_phone_validator(region),
    }
    if spec in named:
        return named[spec]
    if spec.startswith("entropy:"):
        try:
            threshold = float(spec.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"{where}: validator {spec!r}: expected entropy:<bits per character>") from None
        return lambda v: v if d.shannon_entropy(v) >= threshold else None
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"{where}: unknown validator {spec!r} (use {', '.join(named)}, entropy:N or module:function)")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: validator {spec!r} cannot be imported: {exc}") from None
    if not callable(function):
        raise ConfigError(f"{where}: validator {spec!r} is not callable")
    checked: Callable[[str], Any] = function

    def validate(value: str) -> str | None:
        result = checked(value)
        if result is True:
            return value
        return result if isinstance(result, str) else None

    return validate


def _build_custom(spec: CustomDetector, region: str, source: str) -> d.Detector:
    where = f"{source}: detector {spec.name!r}"
    prefilter = d.contains(*spec.prefilter) if spec.prefilter else d.always
    try:
        return d.Detector(
            spec.name,
            spec.kind,
            spec.pattern,
            prefilter,
            _validator(spec.validator, region, where),
            group=spec.group,
            priority=45,
        )
    except Exception as exc:  # noqa: BLE001 - RE2 rejects back-references and look-around (linear time only)
        raise ConfigError(f"{where}: pattern {spec.pattern!r} is not supported: {exc}") from None


# -- loading --------------------------------------------------------------------------------
def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{ENV_POLICY_FILE}={path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib

                data: Any = tomllib.loads(raw.decode("utf-8"))
            else:
                raise ConfigError(f"{path}: TOML policy files need Python 3.11 or later; use JSON")
        else:
            data = json.loads(raw)
    except ConfigError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object at the top level")
    return data


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table/object")
    return value


def _level(value: Any, where: str) -> str:
    if value not in LEVELS:
        raise ConfigError(f"{where}: {value!r} is not a classification (use {', '.join(LEVELS)})")
    return str(value)


def _apply_file(policy: AuditPolicy, data: Mapping[str, Any], where: str) -> None:
    known = {"redaction", "detectors", "classification", "retention"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
        )
    red = _table(data, "redaction", where)
    if "enabled" in red:
        policy.redaction = bool(red["enabled"])
    if "default_mode" in red:
        policy.default_mode = str(red["default_mode"])
    if "token_chars" in red:
        chars = red["token_chars"]
        if not isinstance(chars, int) or not 8 <= chars <= 64:
            raise ConfigError(f"{where}: redaction.token_chars must be an integer from 8 to 64")
        policy.token_chars = chars
    if "phone_region" in red:
        policy.phone_region = str(red["phone_region"]).upper().replace(" ", "")
    if "disabled" in red:
        policy.disabled = frozenset(str(x) for x in red["disabled"])
    modes = _table(red, "modes", f"{where}: redaction")
    policy.modes.update({str(k): str(v) for k, v in modes.items()})
    detectors = data.get("detectors", [])
    if not isinstance(detectors, list):
        raise ConfigError(f"{where}: detectors must be a list")
    for index, item in enumerate(detectors):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("pattern"), str)
        ):
            raise ConfigError(f"{where}: detectors[{index}] needs a string name and pattern")
        kind = item.get("kind", d.PII)
        if kind not in (d.PII, d.SECRET):
            raise ConfigError(f"{where}: detectors[{index}].kind must be 'pii' or 'secret'")
        prefilter = item.get("prefilter", [])
        if isinstance(prefilter, str):
            prefilter = [prefilter]
        policy.custom.append(
            CustomDetector(
                name=item["name"],
                pattern=item["pattern"],
                kind=kind,
                validator=item.get("validator"),
                prefilter=tuple(str(p) for p in prefilter),
                group=int(item.get("group", 0)),
            )
        )
        if "mode" in item:
            policy.modes[item["name"]] = str(item["mode"])
        if "classification" in item:
            policy.rules[item["name"]] = _level(item["classification"], f"{where}: detectors[{index}]")
    cls = _table(data, "classification", where)
    if "default" in cls:
        policy.default_level = _level(cls["default"], f"{where}: classification.default")
    for entity, level in _table(cls, "rules", f"{where}: classification").items():
        policy.rules[str(entity)] = _level(level, f"{where}: classification.rules.{entity}")
    for key, days in _table(data, "retention", where).items():
        if key == "floor_days":
            if not isinstance(days, int) or days < 0:
                raise ConfigError(f"{where}: retention.floor_days must be a non-negative integer")
            policy.retention_floor_days = days
            continue
        _level(key, f"{where}: retention")
        if not isinstance(days, int) or days < 1:
            raise ConfigError(f"{where}: retention.{key} must be a positive number of days")
        policy.retention_days[key] = days


def load_policy(env: Mapping[str, str] | None = None) -> AuditPolicy:
    """The policy from ``GENAI_AUDIT_POLICY_FILE`` and the environment; checks it completely."""
    env = os.environ if env is None else env
    policy = AuditPolicy()
    named = env.get(ENV_POLICY_FILE, "").strip()
    if named:
        path = Path(named).expanduser()
        policy.source = str(path)
        _apply_file(policy, _read_file(path), str(path))
    policy.redaction = parse_bool(ENV_REDACTION, env.get(ENV_REDACTION), policy.redaction)
    region = env.get(ENV_PHONE_REGION, "").strip().upper().replace(" ", "")
    if region:
        policy.phone_region = region
    policy.retention_floor_days = parse_int(
        ENV_RETENTION_FLOOR, env.get(ENV_RETENTION_FLOOR), policy.retention_floor_days, 0
    )
    import phonenumbers

    for region in policy.phone_region.split(","):
        if region.strip() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"phone region {region.strip()!r} is not a known region code (e.g. US, GB, DE)")
    from genai_audit.processors.redaction import MODES

    for entity, mode in {**policy.modes, "default_mode": policy.default_mode}.items():
        if mode not in MODES:
            raise ConfigError(f"{policy.source}: redaction mode {mode!r} for {entity}: use {', '.join(MODES)}")
    policy.scanner()  # compiles every pattern now, so a bad one fails at start-up
    return policy


# -- steps ------------------------------------------------------------------------------------
class ClassificationStep:
    """Sets the record's classification from what was detected and what the application declared.

    The stricter of the two wins; a declared class is never downgraded. An
    unknown declared value counts as restricted.
    """

    reads_content_only = True

    def __init__(self, policy: AuditPolicy) -> None:
        self.policy = policy

    def __call__(self, record: AuditRecord) -> None:
        attrs = record.attributes
        types = attrs.get(sc.AUDIT_PII_TYPES) or ()
        detected = self.policy.classify([str(t) for t in types] if isinstance(types, (list, tuple)) else [])
        declared = attrs.get(sc.AUDIT_CLASSIFICATION)
        level = detected
        if isinstance(declared, str) and declared:
            attrs[sc.AUDIT_DECLARED_CLASSIFICATION] = declared
            level = stricter(detected, declared.strip().lower())
            if level not in _RANK:
                level = RESTRICTED
        attrs[sc.AUDIT_CLASSIFICATION] = level
        attrs[sc.AUDIT_RETENTION_DAYS] = self.policy.retention_for(level)


class SecurityScoreStep:
    """Summarises injection, secrets and personal-data exposure in one score from 0 to 1.

    Independent signals combine as 1 - Π(1 - s): the injection score, 0.9 for
    a secret, 0.6 for restricted personal data, 0.3 for other personal data,
    and 0.2 more when personal data was sent without consent.
    """

    reads_content_only = True

    def __call__(self, record: AuditRecord) -> None:
        attrs = record.attributes
        signals: list[float] = []
        score = attrs.get(sc.AUDIT_INJECTION_SCORE)
        if isinstance(score, (int, float)):
            signals.append(float(score))
        if attrs.get(sc.AUDIT_SECRETS_DETECTED):
            signals.append(0.9)
        if attrs.get(sc.AUDIT_PII_DETECTED):
            signals.append(0.6 if attrs.get(sc.AUDIT_CLASSIFICATION) == RESTRICTED else 0.3)
            if consent_state(attrs.get(sc.AUDIT_CONSENT)) is False:
                signals.append(0.2)
        remaining = 1.0
        for signal in signals:
            remaining *= 1.0 - min(max(signal, 0.0), 1.0)
        attrs[sc.AUDIT_SECURITY_SCORE] = round(1.0 - remaining, 3)
