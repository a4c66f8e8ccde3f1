"""Assembling the processing chain from the audit policy.

Order: redact → classify → score injection → security score → price → alert.
Later steps see only redacted content, so nothing downstream (alerts
included) can leak what redaction removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_audit.processors.chain import ProcessingChain, Step
from genai_audit.processors.policy import AuditPolicy, ClassificationStep, SecurityScoreStep, load_policy
from genai_audit.processors.redaction import RedactionStep, Redactor, load_key


def build_redactor(policy: AuditPolicy, env: Mapping[str, str] | None = None, key: bytes | None = None) -> Redactor:
    return Redactor(
        policy.scanner(),
        key if key is not None else load_key(env),
        modes=policy.modes,
        default_mode=policy.default_mode,
        token_chars=policy.token_chars,
    )


def build_redaction_chain(
    policy: AuditPolicy | None = None, env: Mapping[str, str] | None = None, key: bytes | None = None
) -> ProcessingChain:
    """Redaction only (for spans and log records that are not LLM calls)."""
    policy = policy or load_policy(env)
    if not policy.redaction:
        return ProcessingChain()
    return ProcessingChain([RedactionStep(build_redactor(policy, env, key))])


def build_chain(
    policy: AuditPolicy | None = None,
    env: Mapping[str, str] | None = None,
    *,
    key: bytes | None = None,
    extra: tuple[Step, ...] = (),
    alerts: Any = None,
) -> ProcessingChain:
    """The full chain for LLM calls, from the policy (default: read from the environment)."""
    policy = policy or load_policy(env)
    steps: list[Step] = []
    if policy.redaction:
        steps.append(RedactionStep(build_redactor(policy, env, key)))
    steps.append(ClassificationStep(policy))
    steps.extend(_optional_steps(env, alerts))
    steps.extend(extra)
    return ProcessingChain(steps)


def _optional_steps(env: Mapping[str, str] | None, alerts: Any) -> list[Step]:
    steps: list[Step] = [SecurityScoreStep()]
    return steps
