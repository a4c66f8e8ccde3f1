"""Assembling the processing chain from the audit policy.

Order: redact → classify → score injection → security score → price → alert.
Later steps see only redacted content, so nothing downstream (alerts
included) can leak what redaction removed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from genai_audit.config import ConfigError, parse_bool, parse_int
from genai_audit.processors._memo import DEFAULT_MEMO_CHARS, ENV_MEMO_CHARS
from genai_audit.processors.alerts import AlertDispatcher, AlertStep, dispatcher_from_env
from genai_audit.processors.chain import ProcessingChain, Step
from genai_audit.processors.cost import cost_step_from_env
from genai_audit.processors.injection import InjectionDetector, InjectionStep
from genai_audit.processors.nlp import nlp_detector_from_env
from genai_audit.processors.policy import AuditPolicy, ClassificationStep, SecurityScoreStep, load_policy
from genai_audit.processors.redaction import RedactionStep, Redactor, load_key

#: When true, a call whose audit context states no consent counts as made without consent.
ENV_CONSENT_REQUIRED = "GENAI_AUDIT_CONSENT_REQUIRED"
#: Probability from which a prompt counts as an injection attempt.
ENV_INJECTION_THRESHOLD = "GENAI_AUDIT_INJECTION_THRESHOLD"
#: Default: precision 0.99 / recall 0.89 on held-out labeled prompts (bench/README-injection.md).
DEFAULT_INJECTION_THRESHOLD = 0.5


def injection_threshold(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_INJECTION_THRESHOLD, "").strip()
    if not raw:
        return DEFAULT_INJECTION_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_INJECTION_THRESHOLD}={raw!r}: expected a probability between 0 and 1") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{ENV_INJECTION_THRESHOLD}={raw!r}: expected a probability between 0 and 1")
    return value


def memo_chars(env: Mapping[str, str]) -> int:
    """Characters of content the redaction and injection memos answer for (``GENAI_AUDIT_MEMO_CHARS``)."""
    return parse_int(ENV_MEMO_CHARS, env.get(ENV_MEMO_CHARS), DEFAULT_MEMO_CHARS, 0)


def build_redactor(policy: AuditPolicy, env: Mapping[str, str] | None = None, key: bytes | None = None) -> Redactor:
    """The policy's detectors and modes, keyed; plus the NLP detector when ``GENAI_AUDIT_NLP`` asks for it."""
    env = os.environ if env is None else env
    nlp = nlp_detector_from_env(env)
    return Redactor(
        policy.scanner(),
        key if key is not None else load_key(env),
        modes=policy.modes,
        default_mode=policy.default_mode,
        token_chars=policy.token_chars,
        finders=(nlp.find,) if nlp is not None else (),
        memo_chars=memo_chars(env),
    )


def build_redaction_chain(
    policy: AuditPolicy | None = None,
    env: Mapping[str, str] | None = None,
    key: bytes | None = None,
    *,
    redactor: Redactor | None = None,
) -> ProcessingChain:
    """Redaction only (for spans and log records that are not LLM calls).

    ``redactor``: one already built (and shared with :func:`build_chain`), so the
    key is read and the detectors compiled once.
    """
    policy = policy or load_policy(env)
    if not policy.redaction:
        return ProcessingChain()
    return ProcessingChain([RedactionStep(redactor or build_redactor(policy, env, key))])


def build_chain(
    policy: AuditPolicy | None = None,
    env: Mapping[str, str] | None = None,
    *,
    key: bytes | None = None,
    extra: tuple[Step, ...] = (),
    alerts: AlertDispatcher | bool | None = True,
    redactor: Redactor | None = None,
) -> ProcessingChain:
    """The full chain for LLM calls, from the policy (default: read from the environment).

    ``alerts``: a dispatcher, None for no delivery (alerts are still named on
    the span), or True for the sinks the environment configures.
    """
    env = os.environ if env is None else env
    policy = policy or load_policy(env)
    steps: list[Step] = []
    if policy.redaction:
        steps.append(RedactionStep(redactor or build_redactor(policy, env, key)))
    steps.append(ClassificationStep(policy))
    steps.append(InjectionStep(InjectionDetector(threshold=injection_threshold(env)), memo_chars=memo_chars(env)))
    steps.append(SecurityScoreStep())
    steps.append(cost_step_from_env(env))
    dispatcher = dispatcher_from_env(env) if alerts is True else alerts or None
    consent_required = parse_bool(ENV_CONSENT_REQUIRED, env.get(ENV_CONSENT_REQUIRED), False)
    steps.append(AlertStep(dispatcher, consent_tracking=consent_required))
    steps.extend(extra)
    return ProcessingChain(steps)
