"""The alert rules: Kibana ``.es-query`` rules in the query-DSL form, each with a stable id.

Each rule runs its ``esQuery`` over the last ``timeWindowSize`` ``timeWindowUnit`` of
``@timestamp`` every ``schedule.interval`` and fires when the number of matching documents (or,
with ``aggType``/``termField``, a sum or count per user, feature or model) passes the threshold.
Thresholds are starting points: edit the rule in Kibana, but know that ``genai-audit kibana
install`` sets it back to these values.

The files under ``dashboards/rules/`` hold, per rule, ``{"id", "description", "body"}``: ``body``
is exactly what ``POST /api/alerting/rule/<id>`` takes. Kibana refuses any key its schema does
not name, so the id and the description cannot go inside the body. An update
(``PUT /api/alerting/rule/<id>``) takes the same body without ``rule_type_id``, ``consumer`` and
``enabled``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from genai_audit import semconv as sc
from genai_audit.kibana.lens import TIME_FIELD, stable_id
from genai_audit.serialize import DATASET

RULE_TYPE: Final = ".es-query"
CONSUMER: Final = "stackAlerts"
#: the action group an ``.es-query`` rule fires in
ACTION_GROUP: Final = "query matched"
TRACES: Final = f"traces-{DATASET}-*"
LOGS: Final = f"logs-{DATASET}-*"
#: fields of the create body that an update does not take
CREATE_ONLY: Final = ("rule_type_id", "consumer", "enabled")
MESSAGE: Final = "{{rule.name}}: {{context.title}}\n{{context.message}}\n{{context.link}}"


def _term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: value}}


_LLM_CALL: Final = {"exists": {"field": sc.OPERATION_NAME}}


def _calls(*clauses: Mapping[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": [dict(_LLM_CALL), *(dict(c) for c in clauses)]}}


@dataclass(frozen=True)
class RuleSpec:
    """One ``.es-query`` rule (see the module documentation)."""

    key: str
    name: str
    description: str
    tags: tuple[str, ...]
    interval: str
    query: Mapping[str, Any]
    threshold: tuple[float, ...]
    comparator: str
    window: tuple[int, str]
    index: tuple[str, ...] = (TRACES,)
    size: int = 20
    agg_type: str = "count"
    agg_field: str | None = None
    term_field: str | None = None
    term_size: int | None = None

    @property
    def id(self) -> str:
        return stable_id("rule", self.key)

    def params(self) -> dict[str, Any]:
        """The rule type's parameters, every one given (Kibana would fill in the same defaults)."""
        size, unit = self.window
        params: dict[str, Any] = {
            "searchType": "esQuery",
            "esQuery": json.dumps({"query": self.query}, indent=2),
            "index": list(self.index),
            "timeField": TIME_FIELD,
            "threshold": list(self.threshold),
            "thresholdComparator": self.comparator,
            "timeWindowSize": size,
            "timeWindowUnit": unit,
            "size": self.size,
            "aggType": self.agg_type,
            "groupBy": "top" if self.term_field else "all",
            # a grouped rule counts every matching document in its window; the others report each once
            "excludeHitsFromPreviousRun": self.term_field is None,
        }
        if self.agg_field:
            params["aggField"] = self.agg_field
        if self.term_field:
            params["termField"] = self.term_field
            params["termSize"] = self.term_size or 100
        return params

    def body(self, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The body of ``POST /api/alerting/rule/<id>``."""
        return {
            "name": self.name,
            "rule_type_id": RULE_TYPE,
            "consumer": CONSUMER,
            "enabled": True,
            "tags": list(self.tags),
            "schedule": {"interval": self.interval},
            "params": self.params(),
            "actions": list(actions or []),
        }

    def update_body(self, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The body of ``PUT /api/alerting/rule/<id>``."""
        return {key: value for key, value in self.body(actions).items() if key not in CREATE_ONLY}

    def file(self) -> dict[str, Any]:
        """What ``dashboards/rules/<key>.json`` holds."""
        return {"id": self.id, "description": self.description, "body": self.body()}


def rules() -> list[RuleSpec]:
    """Every rule genai-audit ships."""
    pipeline_problem = {
        "bool": {
            "should": [
                {"range": {sc.AUDIT_PIPELINE_LOST: {"gt": 0}}},
                _term(sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL, True),
                {"range": {sc.AUDIT_PIPELINE_SPOOL_PENDING: {"gte": 100_000}}},
            ],
            "minimum_should_match": 1,
        }
    }
    return [
        RuleSpec(
            "prompt-injection",
            "genai-audit: prompt-injection attempt",
            "Fires when any LLM call in the last 5 minutes was flagged as a prompt-injection attempt "
            f"({sc.AUDIT_INJECTION_DETECTED}): a user's prompt, a tool result or a retrieved document tried to "
            "override the instructions. The alert lists the calls; their technique and score are on each.",
            ("genai-audit", "security"),
            "1m",
            _calls(_term(sc.AUDIT_INJECTION_DETECTED, True)),
            (0,),
            ">",
            (5, "m"),
        ),
        RuleSpec(
            "restricted-data",
            "genai-audit: restricted data sent to a model",
            "Fires when any LLM call in the last 5 minutes was classified restricted "
            f"({sc.AUDIT_CLASSIFICATION}: card numbers, social security numbers, secrets, or a class the "
            "application declared).",
            ("genai-audit", "security"),
            "1m",
            _calls(_term(sc.AUDIT_CLASSIFICATION, "restricted")),
            (0,),
            ">",
            (5, "m"),
        ),
        RuleSpec(
            "pii-without-consent",
            "genai-audit: personal data without consent",
            "Fires when any LLM call in the last 5 minutes carried personal data without the user's consent: "
            "consent refused, or not recorded where the application tracks consent "
            "(GENAI_AUDIT_CONSENT_REQUIRED=true); the pipeline names these calls pii_without_consent in "
            f"{sc.AUDIT_ALERTS}.",
            ("genai-audit", "security", "privacy"),
            "1m",
            _calls(_term(sc.AUDIT_ALERTS, "pii_without_consent")),
            (0,),
            ">",
            (5, "m"),
        ),
        RuleSpec(
            "secrets-in-prompt",
            "genai-audit: secret in an LLM call",
            "Fires when a secret (API key, token, private key, password) was found in any LLM call of the "
            f"last 5 minutes ({sc.AUDIT_SECRETS_DETECTED}), in the prompt or the answer. The stored content is "
            "redacted; rotate the secret all the same.",
            ("genai-audit", "security"),
            "1m",
            _calls(_term(sc.AUDIT_SECRETS_DETECTED, True)),
            (0,),
            ">",
            (5, "m"),
        ),
        RuleSpec(
            "cost-spike",
            "genai-audit: spend per user above 5 USD an hour",
            f"Fires for each user ({sc.ENDUSER_ID}) whose LLM calls cost more than 5 USD "
            f"({sc.USAGE_COST_USD}) in the last hour. Calls of unpriced models count as zero. The same "
            "threshold per feature is the rule cost-spike-feature.",
            ("genai-audit", "cost"),
            "5m",
            _calls({"exists": {"field": sc.USAGE_COST_USD}}),
            (5,),
            ">",
            (1, "h"),
            agg_type="sum",
            agg_field=sc.USAGE_COST_USD,
            term_field=sc.ENDUSER_ID,
            term_size=100,
        ),
        RuleSpec(
            "cost-spike-feature",
            "genai-audit: spend per feature above 20 USD an hour",
            f"Fires for each feature ({sc.AUDIT_FEATURE}) whose LLM calls cost more than 20 USD in the last "
            "hour: a runaway batch job or a feature in a loop, with or without a user.",
            ("genai-audit", "cost"),
            "5m",
            _calls({"exists": {"field": sc.USAGE_COST_USD}}),
            (20,),
            ">",
            (1, "h"),
            agg_type="sum",
            agg_field=sc.USAGE_COST_USD,
            term_field=sc.AUDIT_FEATURE,
            term_size=100,
        ),
        RuleSpec(
            "error-burst",
            "genai-audit: burst of failed LLM calls",
            "Fires when more than 10 LLM calls failed (span status Error: provider errors, rate limits, "
            f"timeouts; the kind is in {sc.ERROR_TYPE}) in the last 5 minutes.",
            ("genai-audit", "reliability"),
            "1m",
            _calls(_term("status.code", "Error")),
            (10,),
            ">",
            (5, "m"),
        ),
        RuleSpec(
            "latency-anomaly",
            "genai-audit: slow LLM calls",
            "Fires for each model with 5 or more calls slower than 30 seconds (duration, in nanoseconds) in "
            "the last 10 minutes: a provider slowing down, or answers growing unexpectedly long.",
            ("genai-audit", "reliability"),
            "5m",
            _calls({"range": {"duration": {"gte": 30_000_000_000}}}),
            (5,),
            ">=",
            (10, "m"),
            term_field=sc.REQUEST_MODEL,
            term_size=50,
        ),
        RuleSpec(
            "audit-pipeline-loss",
            "genai-audit: audit records lost or delayed",
            "Fires when genai-audit's own status documents (logs-genai_audit.otel-*, event "
            f"{sc.PIPELINE_STATUS_EVENT}) of the last 15 minutes report audit records lost (dropped before the "
            "spool, refused by a full spool, or rejected by Elasticsearch into the dead-letter file), a spool "
            "above 80% of its quota, or 100,000 records or more waiting in a spool.",
            ("genai-audit", "reliability", "audit"),
            "5m",
            {"bool": {"filter": [_term("event_name", sc.PIPELINE_STATUS_EVENT), pipeline_problem]}},
            (0,),
            ">",
            (15, "m"),
            index=(LOGS,),
        ),
    ]


def connector_action(connector_id: str, connector_type: str) -> dict[str, Any]:
    """The action that sends a rule's alerts to a connector; ValueError for a type that needs more settings."""
    params: dict[str, Any]
    if connector_type == ".server-log":
        params = {"level": "warn", "message": MESSAGE}
    elif connector_type in (".slack", ".teams"):
        params = {"message": MESSAGE}
    elif connector_type == ".webhook":
        params = {
            "body": '{"rule": "{{rule.name}}", "rule_id": "{{rule.id}}", "title": "{{context.title}}", '
            '"value": "{{context.value}}", "link": "{{context.link}}"}'
        }
    elif connector_type == ".index":
        params = {
            "documents": [
                {
                    "@timestamp": "{{context.date}}",
                    "rule": "{{rule.name}}",
                    "rule_id": "{{rule.id}}",
                    "title": "{{context.title}}",
                    "value": "{{context.value}}",
                }
            ]
        }
    elif connector_type == ".pagerduty":
        params = {
            "eventAction": "trigger",
            "summary": "{{rule.name}}: {{context.title}}",
            "severity": "error",
            "dedupKey": "{{rule.id}}",
        }
    else:
        raise ValueError(
            f"connector type {connector_type}: install attaches .server-log, .slack, .teams, .webhook, .index "
            "and .pagerduty connectors (others need settings of their own: attach them in Kibana)"
        )
    return {
        "group": ACTION_GROUP,
        "id": connector_id,
        "params": params,
        "frequency": {"summary": False, "notify_when": "onActionGroupChange", "throttle": None},
    }
