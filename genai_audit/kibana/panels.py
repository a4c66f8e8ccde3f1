"""What the Overview, Security and Cost dashboards show: one :class:`~genai_audit.kibana.lens.Panel` each.

Every panel counts LLM calls only (spans with ``gen_ai.operation.name``, the rule genai-audit's own
span filter applies), so spans of other instrumentations that a collector routes into the same
data stream are not counted. Field names are the short names the ``passthrough`` attribute
objects give (``gen_ai.request.model`` for ``attributes.gen_ai.request.model``); where an
attribute may be set on the span and on the resource (the environment), both are shown, since the
short name reads the span's.
"""

from __future__ import annotations

from typing import Final

from genai_audit import semconv as sc
from genai_audit.kibana.lens import (
    Column,
    Panel,
    count,
    filters,
    metric,
    percentile,
    ranges,
    terms,
    timeline,
)

#: every panel's base query: LLM calls only
LLM_CALLS: Final = f"{sc.OPERATION_NAME} : *"
FAILED: Final = 'status.code : "Error"'
PII: Final = f"{sc.AUDIT_PII_DETECTED} : true"
SECRETS: Final = f"{sc.AUDIT_SECRETS_DETECTED} : true"
INJECTION: Final = f"{sc.AUDIT_INJECTION_DETECTED} : true"
RESTRICTED: Final = f'{sc.AUDIT_CLASSIFICATION} : "restricted"'
CONFIDENTIAL: Final = f'{sc.AUDIT_CLASSIFICATION} : "confidential"'
WITHOUT_CONSENT: Final = f'{sc.AUDIT_ALERTS} : "pii_without_consent"'
FLAGGED: Final = f"{sc.AUDIT_ALERTS} : *"
UNPRICED: Final = f"{sc.AUDIT_COST_UNKNOWN_MODEL} : true"
RESOURCE_ENVIRONMENT: Final = f"resource.attributes.{sc.DEPLOYMENT_ENVIRONMENT}"


def calls_where(extra: str = "") -> str:
    """The base query, narrowed by ``extra`` (KQL)."""
    return f"{LLM_CALLS} and ({extra})" if extra else LLM_CALLS


def _metric_panel(key: str, title: str, column: Column, *, width: int = 8, query: str = "") -> Panel:
    return Panel(key, title, "metric", (column,), query=calls_where(query), width=width, height=6)


def _calls(label: str = "Calls") -> Column:
    return count("calls", label)


def _failed() -> Column:
    return count("failed", "Failed calls", FAILED)


def _cost(label: str = "Cost (USD)") -> Column:
    return metric("sum", "cost", label, sc.USAGE_COST_USD)


def _tokens() -> tuple[Column, Column]:
    return (
        metric("sum", "tokens_in", "Input tokens", sc.USAGE_INPUT_TOKENS),
        metric("sum", "tokens_out", "Output tokens", sc.USAGE_OUTPUT_TOKENS),
    )


def overview_panels() -> list[Panel]:
    """Calls, failures, latency, tokens and cost; over time and by model, provider, feature and environment."""
    tokens_in, tokens_out = _tokens()
    return [
        _metric_panel("overview-calls", "Calls", _calls(), width=6),
        _metric_panel("overview-failed", "Failed calls", _failed(), width=6),
        _metric_panel("overview-p50", "Latency p50", metric("median", "p50", "Latency p50", "duration"), width=6),
        _metric_panel("overview-p95", "Latency p95", percentile("p95", "Latency p95", "duration", 95), width=6),
        _metric_panel("overview-tokens-in", "Input tokens", tokens_in, width=6),
        _metric_panel("overview-tokens-out", "Output tokens", tokens_out, width=6),
        _metric_panel("overview-cost", "Cost (USD)", _cost(), width=6),
        _metric_panel(
            "overview-users", "Users", metric("unique_count", "users", "Users", sc.ENDUSER_ID), width=6
        ),
        Panel(
            "overview-error-rate",
            "Error rate over time",
            "xy",
            (
                filters("outcome", "Outcome", ("Failed", FAILED), ("Succeeded", f"not {FAILED}")),
                timeline(),
                _calls(),
            ),
            description="Share of calls that failed, per interval.",
            query=LLM_CALLS,
            series="bar_percentage_stacked",
            x="time",
            split="outcome",
        ),
        Panel(
            "overview-latency",
            "Latency over time",
            "xy",
            (
                timeline(),
                metric("median", "p50", "p50", "duration"),
                percentile("p95", "p95", "duration", 95),
            ),
            query=LLM_CALLS,
            series="line",
            x="time",
        ),
        Panel(
            "overview-tokens",
            "Tokens over time",
            "xy",
            (timeline(), tokens_in, tokens_out),
            query=LLM_CALLS,
            series="area_stacked",
            x="time",
        ),
        Panel(
            "overview-cost-by-model",
            "Cost over time by model",
            "xy",
            (terms("model", "Model", sc.REQUEST_MODEL, order_by="cost"), timeline(), _cost()),
            query=LLM_CALLS,
            x="time",
            split="model",
        ),
        Panel(
            "overview-calls-by-provider",
            "Calls over time by provider",
            "xy",
            (terms("provider", "Provider", sc.PROVIDER_NAME, order_by="calls"), timeline(), _calls()),
            query=LLM_CALLS,
            x="time",
            split="provider",
        ),
        Panel(
            "overview-by-model",
            "By model",
            "table",
            (
                terms("model", "Model", sc.REQUEST_MODEL, size=20, order_by="calls"),
                terms("provider", "Provider", sc.PROVIDER_NAME, size=5, order_by="calls"),
                _calls(),
                _failed(),
                percentile("p95", "Latency p95", "duration", 95),
                tokens_in,
                tokens_out,
                _cost(),
            ),
            query=LLM_CALLS,
        ),
        Panel(
            "overview-by-feature",
            "By feature",
            "table",
            (
                terms("feature", "Feature", sc.AUDIT_FEATURE, size=20, order_by="calls", missing=True),
                _calls(),
                _failed(),
                percentile("p95", "Latency p95", "duration", 95),
                tokens_in,
                tokens_out,
                _cost(),
            ),
            query=LLM_CALLS,
        ),
        Panel(
            "overview-by-environment",
            "By environment",
            "table",
            (
                terms("env", "Environment (call context)", sc.DEPLOYMENT_ENVIRONMENT, order_by="calls", missing=True),
                terms("env_resource", "Environment (process)", RESOURCE_ENVIRONMENT, order_by="calls", missing=True),
                _calls(),
                _failed(),
                _cost(),
            ),
            description=(
                "The environment a call's audit context gives (genai_audit.context(environment=...)) and the one "
                "its process declares (GENAI_AUDIT_ENVIRONMENT, OTEL_RESOURCE_ATTRIBUTES)."
            ),
            query=LLM_CALLS,
            width=48,
            height=10,
        ),
    ]


def _flag_counts() -> tuple[Column, ...]:
    return (
        count("flagged", "Flagged calls", FLAGGED),
        count("pii", "Personal data", PII),
        count("secrets", "Secrets", SECRETS),
        count("injections", "Injection attempts", INJECTION),
        count("restricted", "Restricted", RESTRICTED),
        _calls(),
    )


def security_panels() -> list[Panel]:
    """Personal data, secrets, prompt injection, classification, consent, and who is flagged."""
    score_ranges = tuple(
        (i / 10, (i + 1) / 10 if i < 9 else None, f"{i / 10:.1f}–{(i + 1) / 10:.1f}") for i in range(10)
    )
    return [
        _metric_panel("security-pii", "Calls with personal data", count("calls", "Calls", PII)),
        _metric_panel("security-secrets", "Calls with secrets", count("calls", "Calls", SECRETS)),
        _metric_panel("security-injections", "Prompt-injection attempts", count("calls", "Calls", INJECTION)),
        _metric_panel("security-restricted", "Restricted calls", count("calls", "Calls", RESTRICTED)),
        _metric_panel("security-confidential", "Confidential calls", count("calls", "Calls", CONFIDENTIAL)),
        _metric_panel(
            "security-no-consent", "Personal data without consent", count("calls", "Calls", WITHOUT_CONSENT)
        ),
        Panel(
            "security-pii-by-type",
            "Personal data by type",
            "xy",
            (terms("type", "Type", sc.AUDIT_PII_TYPES, size=20, order_by="calls"), _calls()),
            description="Calls in which each type of personal data or secret was found.",
            query=calls_where(PII),
            series="bar_horizontal",
            x="type",
        ),
        Panel(
            "security-injection-scores",
            "Prompt-injection score distribution",
            "xy",
            (ranges("score", "Injection score", sc.AUDIT_INJECTION_SCORE, *score_ranges), _calls()),
            description="Calls per injection score (0: benign, 1: an attack); those above the threshold are flagged.",
            query=LLM_CALLS,
            series="bar",
            x="score",
        ),
        Panel(
            "security-injections-over-time",
            "Prompt-injection attempts by technique",
            "xy",
            (terms("technique", "Technique", sc.AUDIT_INJECTION_TECHNIQUE, order_by="calls"), timeline(), _calls()),
            query=calls_where(INJECTION),
            x="time",
            split="technique",
        ),
        Panel(
            "security-classification",
            "Restricted and confidential calls over time",
            "xy",
            (terms("class", "Classification", sc.AUDIT_CLASSIFICATION, size=4, order_by="calls"), timeline(), _calls()),
            query=calls_where(f"{RESTRICTED} or {CONFIDENTIAL}"),
            x="time",
            split="class",
        ),
        Panel(
            "security-consent",
            "Consent on calls with personal data",
            "xy",
            (terms("consent", "Consent", sc.AUDIT_CONSENT, size=10, order_by="calls", missing=True), _calls()),
            description="The consent the audit context recorded; a missing value means none was recorded.",
            query=calls_where(PII),
            series="bar_horizontal",
            x="consent",
        ),
        Panel(
            "security-top-users",
            "Top users by flags",
            "table",
            (terms("user", "User", sc.ENDUSER_ID, order_by="flagged"), *_flag_counts()),
            query=LLM_CALLS,
        ),
        Panel(
            "security-top-sessions",
            "Top sessions by flags",
            "table",
            (
                terms("session", "Session", sc.SESSION_ID, order_by="flagged"),
                terms("user", "User", sc.ENDUSER_ID, size=5, order_by="flagged"),
                *_flag_counts(),
            ),
            query=LLM_CALLS,
        ),
    ]


def cost_panels() -> list[Panel]:
    """Spend by feature, user and model; top spenders; calls whose model has no price."""
    tokens_in, tokens_out = _tokens()
    return [
        _metric_panel("cost-total", "Cost (USD)", _cost(), width=12),
        _metric_panel(
            "cost-average", "Average cost per call", metric("average", "cost", "Average", sc.USAGE_COST_USD), width=12
        ),
        _metric_panel(
            "cost-max", "Most expensive call", metric("max", "cost", "Maximum", sc.USAGE_COST_USD), width=12
        ),
        _metric_panel("cost-unpriced", "Calls with unpriced models", count("calls", "Calls", UNPRICED), width=12),
        Panel(
            "cost-by-feature",
            "Cost by feature",
            "xy",
            (terms("feature", "Feature", sc.AUDIT_FEATURE, size=20, order_by="cost", missing=True), _cost()),
            query=LLM_CALLS,
            series="bar_horizontal",
            x="feature",
        ),
        Panel(
            "cost-by-model",
            "Cost by model",
            "xy",
            (terms("model", "Model", sc.REQUEST_MODEL, size=20, order_by="cost"), _cost()),
            query=LLM_CALLS,
            series="bar_horizontal",
            x="model",
        ),
        Panel(
            "cost-by-feature-over-time",
            "Cost over time by feature",
            "xy",
            (terms("feature", "Feature", sc.AUDIT_FEATURE, order_by="cost", missing=True), timeline(), _cost()),
            query=LLM_CALLS,
            x="time",
            split="feature",
            width=48,
        ),
        Panel(
            "cost-top-spenders",
            "Top spenders",
            "table",
            (
                terms("user", "User", sc.ENDUSER_ID, size=20, order_by="cost"),
                _cost(),
                _calls(),
                tokens_in,
                tokens_out,
                metric("average", "average", "Average per call", sc.USAGE_COST_USD),
            ),
            query=LLM_CALLS,
        ),
        Panel(
            "cost-unpriced-models",
            "Calls with unpriced models",
            "table",
            (
                terms("model", "Model", sc.REQUEST_MODEL, size=20, order_by="calls"),
                terms("provider", "Provider", sc.PROVIDER_NAME, size=5, order_by="calls"),
                _calls(),
                tokens_in,
                tokens_out,
            ),
            description="Their cost is unknown, not zero: add their prices with GENAI_AUDIT_PRICING_FILE.",
            query=calls_where(UNPRICED),
        ),
    ]
