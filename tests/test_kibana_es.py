"""The dashboards and rules against a real Elasticsearch node holding the demo's records and an incident scenario.

The records are written as a user's would be: the demo (``genai-audit demo`` into the node, the
real pipeline end to end) and :mod:`tests.kibana_scenario` through the real exporter, into a
namespace of this module's own. Every Lens panel's aggregation runs on the node and must equal
the same panel computed in memory from the stored documents; headline numbers must equal the
scenario's and ``genai-audit stats``; every field a panel, the search or a rule reads must be in
the mapping (aggregatable where it is bucketed or aggregated); every rule must fire on the
incident and stay silent on a clean window.

The node fixture is a parameter: every check runs against the 8.19 and the 9.x node.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from opentelemetry.sdk.trace.export import SpanExportResult

from genai_audit import semconv as sc
from genai_audit.cli import main
from genai_audit.kibana.objects import DATA_VIEW_TITLE, FORENSICS_COLUMNS, field_formats, saved_objects
from genai_audit.kibana.rules import RuleSpec, rules
from genai_audit.store.elasticsearch import ElasticsearchSpanExporter
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.pipeline_status import PipelineCounters, PipelineStatusReporter
from tests import kql
from tests.es_fixtures import RunningNode
from tests.kibana_scenario import LONG_TEXT_TAIL, MINUTE_NS, Scenario, build, spans
from tests.lens_queries import MISSING, lens_in_memory, lens_on_cluster, rule_on_cluster, same_tables

pytestmark = pytest.mark.integration
NODES = ["es_node_8", "es_node_9"]
HALF_HOUR_NS = 30 * MINUTE_NS


@dataclass
class Loaded:
    """The node with this module's records: the scenario's and the demo's."""

    node: RunningNode
    es: Elasticsearch
    namespace: str
    scenario: Scenario
    docs: list[dict[str, Any]]

    @property
    def traces(self) -> str:
        return f"traces-genai_audit.otel-{self.namespace}"

    @property
    def logs(self) -> str:
        return f"logs-genai_audit.otel-{self.namespace}"

    def narrowed(self, index: str) -> str:
        """A rule's or the data view's pattern, narrowed to this module's namespace (other tests share the node)."""
        assert index.endswith("-*"), index
        return index[:-1] + self.namespace


def _run_demo(url: str, namespace: str, tmp: Path) -> None:
    env = dict(os.environ)
    env.update({
        sc.ENV_STORE: url,
        "GENAI_AUDIT_ES_NAMESPACE": namespace,
        sc.ENV_SPOOL_DIR: str(tmp / "spool"),
        "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp / "dead-letters.jsonl"),
    })
    result = subprocess.run([sys.executable, "-m", "genai_audit.cli", "demo", "--store", url], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recorded 8 LLM calls in 3 sessions" in result.stdout


@pytest.fixture(scope="module", params=NODES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    node: RunningNode = request.getfixturevalue(request.param)
    namespace = f"kibana{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("kibana-es")
    now = time.time_ns()
    scenario = build(now // HALF_HOUR_NS * HALF_HOUR_NS - 6 * 60 * MINUTE_NS)
    exporter = ElasticsearchSpanExporter(node.url, namespace=namespace, dead_letter_path=tmp / "dead", env={})
    try:
        assert exporter.export(spans(scenario)) is SpanExportResult.SUCCESS
        assert exporter.exported == len(scenario.calls) and exporter.dead_lettered == 0
        # a status document of the pipeline's own, as the spool's sender writes one, so the logs stream exists
        status = PipelineStatusReporter(namespace, exporter.create_once)
        assert status.observe(lambda: PipelineCounters(dead_lettered=1, spool_pending=3, spool_quota_bytes=1 << 30))
    finally:
        exporter.shutdown()
    _run_demo(node.url, namespace, tmp)
    es = negotiating_client(node.url, request_timeout=60)
    index = f"traces-genai_audit.otel-{namespace}"
    es.indices.refresh(index=index)
    docs = [hit["_source"] for hit in es.search(index=index, size=10_000, query={"match_all": {}})["hits"]["hits"]]
    assert len(docs) == len(scenario.calls) + 8
    yield Loaded(node, es, namespace, scenario, docs)
    es.close()


def lens_objects() -> list[dict[str, Any]]:
    return [o for o in saved_objects() if o["type"] == "lens"]


def _by_key() -> dict[str, dict[str, Any]]:
    from genai_audit.kibana.objects import all_panels

    ids = {p.id: p.key for p in all_panels()}
    return {ids[o["id"]]: o for o in lens_objects()}


def _dsl_fields(query: Any) -> set[str]:
    """Every field a query DSL object names."""
    found: set[str] = set()
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("term", "range", "match", "match_phrase") and isinstance(value, dict):
                found |= set(value)
            elif key == "exists":
                found.add(value["field"])
            else:
                found |= _dsl_fields(value)
    elif isinstance(query, list):
        for item in query:
            found |= _dsl_fields(item)
    return found


def _caps(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    fields = es.field_caps(index=index, fields="*")["fields"]
    return {name: next(iter(types.values())) | {"types": sorted(types)} for name, types in fields.items()}


# --- the mapping ------------------------------------------------------------------------------------------------


def test_every_field_the_objects_and_rules_read_is_mapped(loaded: Loaded) -> None:
    """Panel, search, data view and rule fields exist; bucketed and aggregated ones are aggregatable."""
    traces, logs = _caps(loaded.es, loaded.traces), _caps(loaded.es, loaded.logs)
    problems: list[str] = []

    def need(caps: Mapping[str, Any], field: str, why: str, *, aggregatable: bool) -> None:
        found = caps.get(field)
        if found is None:
            problems.append(f"{why}: {field} is not in the mapping")
        elif len(found["types"]) != 1:
            problems.append(f"{why}: {field} has types {found['types']}")
        elif aggregatable and not found["aggregatable"]:
            problems.append(f"{why}: {field} ({found['type']}) is not aggregatable")
        elif not found["searchable"]:
            problems.append(f"{why}: {field} is not searchable")

    for lens in lens_objects():
        title = lens["attributes"]["title"]
        state = lens["attributes"]["state"]
        for layer in state["datasourceStates"]["formBased"]["layers"].values():
            for column in layer["columns"].values():
                if column.get("sourceField") not in (None, "___records___"):
                    need(traces, column["sourceField"], title, aggregatable=True)
                queries = [column.get("filter", {}).get("query", "")]
                queries += [f["input"]["query"] for f in column.get("params", {}).get("filters", [])]
                for text in queries:
                    for field in kql.fields(kql.parse(text)):
                        need(traces, field, title, aggregatable=False)
        for field in kql.fields(kql.parse(state["query"]["query"])):
            need(traces, field, title, aggregatable=False)
    for field in (*FORENSICS_COLUMNS, *field_formats()):
        need(traces, field, "data view and Forensics search", aggregatable=False)
    for spec in rules():
        params = spec.params()
        caps = logs if params["index"] == [f"logs-{DATA_VIEW_TITLE[len('traces-'):]}"] else traces
        need(caps, params["timeField"], spec.key, aggregatable=True)
        for field in _dsl_fields(json.loads(params["esQuery"])):
            need(caps, field, spec.key, aggregatable=False)
        for field in (params.get("aggField"), params.get("termField")):
            if field:
                need(caps, field, spec.key, aggregatable=True)
    assert problems == []


def test_content_is_searchable_text_beyond_1024_characters(loaded: Loaded) -> None:
    """Prompt and response content is text under its short name: a phrase past character 1,024 is found."""
    caps = _caps(loaded.es, loaded.traces)
    for field in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS):
        assert caps[field]["types"] == ["text"] and caps[field]["searchable"] and not caps[field]["aggregatable"]
    found = loaded.es.search(index=loaded.traces, query={"match_phrase": {sc.INPUT_MESSAGES: LONG_TEXT_TAIL}})
    (hit,) = found["hits"]["hits"]
    stored = hit["_source"]["attributes"][sc.INPUT_MESSAGES]
    assert len(stored) > 1024 and stored.index(LONG_TEXT_TAIL) > 1024
    # the demo's real prompts too, by a word of the system instructions
    assert loaded.es.count(index=loaded.traces, query={"match": {sc.SYSTEM_INSTRUCTIONS: "refunds"}})["count"] >= 1


# --- the panels -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(_by_key()))
def test_panel_on_the_node_equals_the_documents(loaded: Loaded, key: str) -> None:
    """The panel's aggregation on the node gives the table computed in memory from the same documents."""
    lens = _by_key()[key]
    start, end = loaded.scenario.base_ns // 1_000_000, time.time_ns() // 1_000_000 + 60_000
    cluster = lens_on_cluster(loaded.es, loaded.traces, lens, start, end)
    memory = lens_in_memory(loaded.docs, lens, start, end)
    assert same_tables(cluster, memory) == []
    for column in {cid for row in cluster.values() for cid in row}:  # a misspelt filter would show zeros only
        assert any(row[column] for row in cluster.values()), f"{key}: column {column} shows nothing"


def _scenario_table(loaded: Loaded, key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    scenario = loaded.scenario
    return lens_on_cluster(loaded.es, loaded.traces, _by_key()[key], scenario.base_ns // 1_000_000,
                           scenario.end_ns // 1_000_000)


def _single(loaded: Loaded, key: str) -> Any:
    ((keys, row),) = _scenario_table(loaded, key).items()
    assert keys == ()
    (value,) = row.values()
    return value


def test_headline_numbers_equal_the_scenario(loaded: Loaded) -> None:
    """Counts of calls, failures and each flag, on the scenario's hours, are the scenario's own."""
    s = loaded.scenario
    assert _single(loaded, "overview-calls") == len(s.calls)
    assert _single(loaded, "overview-failed") == s.count(lambda c: c.error) == 18
    assert _single(loaded, "security-injections") == s.count(lambda c: c.injection) == 6
    assert _single(loaded, "security-secrets") == s.count(lambda c: c.secrets) == 2
    assert _single(loaded, "security-restricted") == s.count(lambda c: c.classification == "restricted") == 6
    assert _single(loaded, "security-confidential") == s.count(lambda c: c.classification == "confidential")
    assert _single(loaded, "security-no-consent") == 5
    assert _single(loaded, "security-pii") == s.count(lambda c: c.pii)
    assert _single(loaded, "cost-unpriced") == s.count(lambda c: c.cost is None) > 0
    by_type = _scenario_table(loaded, "security-pii-by-type")
    assert {k[0]: row["calls"] for k, row in by_type.items()} == dict(s.pii_types())
    environments = _scenario_table(loaded, "overview-by-environment")
    assert {k: row["calls"] for k, row in environments.items()} == {
        ("prod", MISSING): s.count(lambda c: not c.batch),
        (MISSING, "staging"): s.count(lambda c: c.batch),
    }
    scores = _scenario_table(loaded, "security-injection-scores")
    assert scores[("0.9–1.0",)]["calls"] == 6 and scores[("0.0–0.1",)]["calls"] == len(s.calls) - 6


def test_cost_by_feature_equals_the_scenario_and_genai_audit_stats(
    loaded: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Cost dashboard's cost by feature is the scenario's, and what `genai-audit stats --by feature` says."""
    s = loaded.scenario
    panel = {k[0]: row["cost"] for k, row in _scenario_table(loaded, "cost-by-feature").items()}
    expected = {MISSING if f is None else f: v for f, v in s.cost_by_feature().items()}
    assert panel.keys() == expected.keys() and all(abs(panel[k] - expected[k]) < 1e-9 for k in expected)
    monkeypatch.setenv("GENAI_AUDIT_ES_NAMESPACE", loaded.namespace)
    out = io.StringIO()
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(s.base_ns // 1_000_000_000))
    until = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(s.end_ns // 1_000_000_000))
    code = main(["stats", "--by", "feature", "--since", since, "--until", until, "--store", loaded.node.url,
                 "--format", "json"], out=out)
    assert code == 0
    stats = {g["key"] or MISSING: g["cost_total_usd"] for g in json.loads(out.getvalue())["groups"]}
    assert stats.keys() == panel.keys() and all(abs(stats[k] - panel[k]) < 1e-8 for k in panel)
    assert panel["bulk-translate"] == pytest.approx(25.0)


def test_forensics_search_reads_every_call(loaded: Loaded) -> None:
    """The saved search's query selects every LLM call, the demo's included."""
    (search,) = [o for o in saved_objects() if o["type"] == "search"]
    source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    query = kql.to_dsl(kql.parse(source["query"]["query"]))
    assert loaded.es.count(index=loaded.traces, query=query)["count"] == len(loaded.docs)
    users = loaded.es.count(index=loaded.traces, query={"term": {sc.ENDUSER_ID: "mallory"}})["count"]
    assert users == 1  # the demo's calls are reachable by the user link's query


# --- the rules --------------------------------------------------------------------------------------------------

#: minutes after the incident's start at which each rule's window ends, and what it must report there
INCIDENT: dict[str, tuple[int, dict[str, float]]] = {
    "prompt-injection": (5, {"all documents": 6}),
    "restricted-data": (5, {"all documents": 6}),
    "pii-without-consent": (5, {"all documents": 5}),
    "secrets-in-prompt": (5, {"all documents": 2}),
    "error-burst": (6, {"all documents": 15}),
    "latency-anomaly": (10, {"claude-sonnet-4-6": 8}),
    "cost-spike": (50, {"u-09": 7.5}),
    "cost-spike-feature": (50, {"bulk-translate": 25.0}),
}


def _spec(key: str) -> RuleSpec:
    (spec,) = [r for r in rules() if r.key == key]
    return spec


@pytest.mark.parametrize("key", sorted(INCIDENT))
def test_rule_fires_on_the_incident_and_not_on_a_clean_window(loaded: Loaded, key: str) -> None:
    spec = _spec(key)
    params = spec.params()
    index = [loaded.narrowed(i) for i in params["index"]]
    minutes, expected = INCIDENT[key]
    end = (loaded.scenario.incident_ns + minutes * MINUTE_NS) // 1_000_000
    fired = dict(rule_on_cluster(loaded.es, params, end, index))
    assert fired.keys() == expected.keys()
    for group, value in expected.items():
        assert fired[group] == pytest.approx(value, rel=0.01)
    assert rule_on_cluster(loaded.es, params, loaded.scenario.clean_end_ns // 1_000_000, index) == []


def test_every_rule_is_checked() -> None:
    assert set(INCIDENT) | {"audit-pipeline-loss"} == {spec.key for spec in rules()}
