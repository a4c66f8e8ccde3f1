"""The saved objects and rules as files: up to date, consistent, and acceptable to Kibana's published schemas."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from genai_audit import semconv as sc
from genai_audit.kibana.cli import NDJSON_NAME, rule_files
from genai_audit.kibana.lens import Panel, count, terms, timeline
from genai_audit.kibana.objects import (
    DATA_VIEW_ID,
    DATA_VIEW_TITLE,
    FORENSICS_COLUMNS,
    SEARCH_ID,
    all_panels,
    check_jaeger_url,
    dashboards,
    field_formats,
    ndjson,
)
from genai_audit.kibana.rules import CREATE_ONLY, connector_action, rules
from genai_audit.store.elasticsearch import SPAN_ATTRIBUTE_TYPES, index_templates
from tests import kql
from tests.kibana_api import check_action, check_rule_body

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
CONTENT = (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS)


def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ndjson().splitlines()]


def test_committed_files_are_what_the_module_generates() -> None:
    """dashboards/ holds exactly the generated NDJSON and rule files (regenerate with `genai-audit kibana export`)."""
    assert (DASHBOARDS / NDJSON_NAME).read_text(encoding="utf-8") == ndjson()
    expected = rule_files()
    assert sorted(p.name for p in (DASHBOARDS / "rules").iterdir()) == sorted(expected)
    for name, content in expected.items():
        assert (DASHBOARDS / "rules" / name).read_text(encoding="utf-8") == content, name


def test_ids_are_stable_unique_uuids_and_references_resolve() -> None:
    found = objects()
    assert [o["id"] for o in found] == [o["id"] for o in objects()]  # the same on every run
    keys = [(o["type"], o["id"]) for o in found]
    assert len(set(keys)) == len(keys) and all(uuid.UUID(i) for _, i in keys)
    assert {o["type"] for o in found} == {"index-pattern", "search", "lens", "dashboard"}
    for obj in found:
        assert obj["coreMigrationVersion"] == "8.8.0" and obj["typeMigrationVersion"]
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in keys, (obj["id"], reference)


def test_data_view_covers_the_data_stream_and_links_ids() -> None:
    (view,) = [o for o in objects() if o["type"] == "index-pattern"]
    assert view["id"] == DATA_VIEW_ID
    attributes = view["attributes"]
    assert attributes["title"] == DATA_VIEW_TITLE == "traces-genai_audit.otel-*"
    assert next(iter(index_templates().values()))[0] == DATA_VIEW_TITLE  # the traces template's pattern
    assert attributes["timeFieldName"] == "@timestamp"
    formats = json.loads(attributes["fieldFormatMap"])
    assert formats["trace_id"]["params"]["urlTemplate"] == "http://localhost:16686/trace/{{value}}"
    assert formats[sc.SESSION_ID]["params"]["labelTemplate"] == "genai-audit replay {{value}}"
    for field in (sc.ENDUSER_ID, sc.SESSION_ID, sc.AUDIT_REQUEST_ID):
        link = formats[field]["params"]["urlTemplate"]
        assert link.startswith(f"discover#/view/{SEARCH_ID}?")
        assert f"query:'{field}:\"{{{{value}}}}\"'" in link
    assert formats["duration"]["params"]["inputFormat"] == "nanoseconds"
    assert not set(formats) & set(CONTENT)  # content keeps its text form
    other = json.loads(json.dumps(field_formats("https://jaeger.example:16686/ui/")))
    assert other["trace_id"]["params"]["urlTemplate"] == "https://jaeger.example:16686/ui/trace/{{value}}"
    with pytest.raises(ValueError, match="expected an http"):
        check_jaeger_url("jaeger.example")


def test_forensics_search_has_the_forensic_columns() -> None:
    (search,) = [o for o in objects() if o["type"] == "search"]
    assert search["attributes"]["columns"] == list(FORENSICS_COLUMNS) == [
        sc.ENDUSER_ID, sc.SESSION_ID, sc.AUDIT_REQUEST_ID, sc.REQUEST_MODEL, sc.AUDIT_ALERTS, "trace_id",
    ]
    assert search["attributes"]["sort"] == [["@timestamp", "desc"]]
    source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["indexRefName"] == search["references"][0]["name"]
    assert kql.parse(source["query"]["query"]) is not None


def test_lens_objects_are_self_consistent() -> None:
    """Columns, accessors, orderings and the data view reference of every Lens object agree."""
    lens = [o for o in objects() if o["type"] == "lens"]
    assert len(lens) == len(all_panels()) >= 30
    for obj in lens:
        state = obj["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        assert len(layers) == 1
        (layer_id, layer), = layers.items()
        assert obj["references"] == [
            {"type": "index-pattern", "id": DATA_VIEW_ID, "name": f"indexpattern-datasource-layer-{layer_id}"}
        ]
        columns = layer["columns"]
        assert sorted(layer["columnOrder"]) == sorted(columns)  # object keys are sorted; the order is columnOrder
        for column in columns.values():
            order = column.get("params", {}).get("orderBy", {})
            if order.get("type") == "column":
                assert not columns[order["columnId"]]["isBucketed"]
            if column["operationType"] == "count":
                assert column["sourceField"] == "___records___"
            for text in [column.get("filter", {}).get("query", "")] + [
                f["input"]["query"] for f in column.get("params", {}).get("filters", [])
            ]:
                kql.parse(text)  # raises on anything the dashboards' KQL reader cannot read
            assert column.get("sourceField") not in CONTENT
        kql.parse(state["query"]["query"])
        visualization = state["visualization"]
        kind = obj["attributes"]["visualizationType"]
        if kind == "lnsXY":
            (xy,) = visualization["layers"]
            assert xy["layerId"] == layer_id and xy["xAccessor"] in columns
            assert all(a in columns and not columns[a]["isBucketed"] for a in xy["accessors"])
            assert xy.get("splitAccessor") is None or columns[xy["splitAccessor"]]["isBucketed"]
        elif kind == "lnsMetric":
            assert visualization["layerId"] == layer_id and visualization["metricAccessor"] in columns
        else:
            assert kind == "lnsDatatable"
            assert [c["columnId"] for c in visualization["columns"]] == layer["columnOrder"]


def test_panels_read_only_fields_the_template_maps_for_aggregation() -> None:
    """Bucketed and aggregated fields are typed in the index template (content, mapped as text, never is)."""
    typed = set(SPAN_ATTRIBUTE_TYPES) | {"@timestamp", "duration", f"resource.attributes.{sc.DEPLOYMENT_ENVIRONMENT}"}
    for panel in all_panels():
        for column in panel.columns:
            if column.field is not None:
                assert column.field in typed and column.field not in CONTENT, (panel.key, column.field)


def test_dashboards_bind_every_panel_by_reference() -> None:
    found = {o["id"]: o for o in objects()}
    for spec in dashboards():
        board = found[spec.id]
        panels = json.loads(board["attributes"]["panelsJSON"])  # a JSON string, as the import needs it
        assert isinstance(board["attributes"]["panelsJSON"], str)
        references = {r["name"]: r for r in board["references"]}
        bound = []
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            assert panel["gridData"]["i"] == panel["panelIndex"]
            reference = references[f"{panel['panelIndex']}:{panel['panelRefName']}"]
            assert reference["type"] == panel["type"]
            bound.append(reference["id"])
            grid = panel["gridData"]
            assert grid["x"] + grid["w"] <= 48
            xs, ys = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
            area = {(x, y) for x in xs for y in ys}
            assert not area & cells, f"{spec.key}: panels overlap"
            cells |= area
        assert bound == [p.id for p in spec.panels] + ([SEARCH_ID] if spec.with_search else [])
    assert [spec.title for spec in dashboards()] == [
        "genai-audit: Overview", "genai-audit: Security", "genai-audit: Cost",
    ]


def test_panel_descriptions_are_checked() -> None:
    """A description Lens could not render is refused before it becomes a saved object."""
    with pytest.raises(ValueError, match="buckets come before metrics"):
        Panel("p", "t", "table", (count("c", "Calls"), terms("t", "T", sc.REQUEST_MODEL))).check()
    with pytest.raises(ValueError, match="ordered by an unknown metric"):
        Panel("p", "t", "table", (terms("t", "T", sc.REQUEST_MODEL, order_by="nope"), count("c", "C"))).check()
    with pytest.raises(ValueError, match="needs its x column"):
        Panel("p", "t", "xy", (timeline(), count("c", "C"))).check()


def test_rule_files_hold_an_id_a_description_and_a_body_kibana_accepts() -> None:
    specs = rules()
    assert {s.key for s in specs} >= {
        "prompt-injection", "restricted-data", "pii-without-consent", "secrets-in-prompt", "cost-spike",
        "error-burst", "latency-anomaly", "audit-pipeline-loss",
    }
    assert len({s.id for s in specs}) == len(specs)
    for name, text in rule_files().items():
        content = json.loads(text)
        assert set(content) == {"id", "description", "body"} and uuid.UUID(content["id"])
        assert len(content["description"]) > 60, name
        body = content["body"]
        assert check_rule_body(body, create=True) == [], name
        update = {k: v for k, v in body.items() if k not in CREATE_ONLY}
        assert check_rule_body(update, create=False) == [], name
        assert check_rule_body(body, create=False) != []  # create-only fields are refused on update
        params = body["params"]
        assert params["searchType"] == "esQuery" and "query" in json.loads(params["esQuery"])
        assert body["rule_type_id"] == ".es-query" and body["actions"] == []


@pytest.mark.parametrize("kind", [".server-log", ".slack", ".teams", ".webhook", ".index", ".pagerduty"])
def test_connector_actions_fit_the_action_schema(kind: str) -> None:
    action = connector_action("c-1", kind)
    assert check_action("action", action) == []
    assert action["group"] == "query matched" and action["id"] == "c-1"


def test_connector_needing_settings_of_its_own_is_refused() -> None:
    with pytest.raises(ValueError, match=r"connector type \.email: install attaches"):
        connector_action("c-1", ".email")


def test_dashboards_readme_describes_what_is_generated() -> None:
    """The README beside the files names the data view and search ids, the panel count and every rule file."""
    readme = (DASHBOARDS / "README.md").read_text(encoding="utf-8")
    assert DATA_VIEW_ID in readme and SEARCH_ID in readme
    assert f"| {len(all_panels())} Lens visualizations |" in readme
    for name in rule_files():
        assert f"| `{name}` |" in readme, name
