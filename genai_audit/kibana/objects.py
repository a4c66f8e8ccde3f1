"""Every Kibana saved object genai-audit ships, with stable ids, as the NDJSON Kibana's import takes.

``saved_objects()`` builds, in this order:

- the data view ``traces-genai_audit.otel-*``: the data stream the exporter writes and the one a
  collector writes when its spans carry ``data_stream.dataset=genai_audit``; both are mapped by
  the ``genai-audit-traces`` index template, so every field has one type (prompt and response
  content is ``text``: searchable, never cut at 1,024 characters, not aggregated by any panel).
  Its field formats show ``duration`` (ns) in milliseconds and ``gen_ai.usage.cost_usd`` in
  dollars, and turn ids into links: a user to the Forensics search of that user's calls (and from
  there their sessions), a session to its calls, labelled with the ``genai-audit replay <session>``
  command line, a request id to its calls, a trace id to Jaeger (``jaeger_url``/trace/<id>);
- the saved search *genai-audit: Forensics* (time, user, session, request id, model, flags — the
  alert kinds raised — and trace id);
- one Lens object per panel of :mod:`genai_audit.kibana.panels`;
- the dashboards *Overview*, *Security* (with the Forensics search at the bottom) and *Cost*.

``genai-audit kibana export -o dashboards/genai-audit.ndjson --rules-dir dashboards/rules`` writes the
files committed under ``dashboards/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from genai_audit import semconv as sc
from genai_audit.kibana.lens import CORE_MIGRATION_VERSION, TIME_FIELD, Panel, layout, lens_object, stable_id
from genai_audit.kibana.panels import LLM_CALLS, cost_panels, overview_panels, security_panels
from genai_audit.serialize import DATASET

DATA_VIEW_TITLE: Final = f"traces-{DATASET}-*"
DATA_VIEW_ID: Final = stable_id("index-pattern", "llm-calls")
SEARCH_ID: Final = stable_id("search", "forensics")
DEFAULT_JAEGER_URL: Final = "http://localhost:16686"
#: the Forensics search's columns (time comes first by itself)
FORENSICS_COLUMNS: Final = (
    sc.ENDUSER_ID,
    sc.SESSION_ID,
    sc.AUDIT_REQUEST_ID,
    sc.REQUEST_MODEL,
    sc.AUDIT_ALERTS,
    "trace_id",
)
#: how far back the links into Discover look
LINK_TIME_RANGE: Final = "now-30d"
FIELD_LABELS: Final[Mapping[str, str]] = {
    sc.ENDUSER_ID: "User",
    sc.SESSION_ID: "Session",
    sc.AUDIT_REQUEST_ID: "Request id",
    sc.REQUEST_MODEL: "Model",
    sc.AUDIT_ALERTS: "Flags",
    "trace_id": "Trace",
    "duration": "Duration",
    sc.USAGE_COST_USD: "Cost (USD)",
}


class DashboardSpec:
    """A dashboard: its stable key, title, description and panels (plus the Forensics search, optionally)."""

    def __init__(
        self, key: str, title: str, description: str, panels: Sequence[Panel], *, with_search: bool = False
    ) -> None:
        self.key = key
        self.title = title
        self.description = description
        self.panels = list(panels)
        self.with_search = with_search

    @property
    def id(self) -> str:
        return stable_id("dashboard", self.key)


def dashboards() -> list[DashboardSpec]:
    """The three dashboards, in the order they are exported."""
    return [
        DashboardSpec(
            "overview",
            "genai-audit: Overview",
            "LLM calls: volume, failures, latency, tokens and cost, by model, provider, feature and environment.",
            overview_panels(),
        ),
        DashboardSpec(
            "security",
            "genai-audit: Security",
            "Personal data, secrets, prompt-injection attempts, classification and consent; who is flagged.",
            security_panels(),
            with_search=True,
        ),
        DashboardSpec(
            "cost",
            "genai-audit: Cost",
            "Spend by feature, user and model; top spenders; calls whose model has no price.",
            cost_panels(),
        ),
    ]


def all_panels() -> list[Panel]:
    return [panel for dashboard in dashboards() for panel in dashboard.panels]


def check_jaeger_url(url: str) -> str:
    """The Jaeger UI base URL without a trailing slash; ValueError unless it is http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Jaeger URL {url!r}: expected an http:// or https:// URL")
    return url.strip().rstrip("/")


def _discover_link(field: str) -> str:
    """A Kibana-relative link to the Forensics search, narrowed to calls whose ``field`` is the cell's value."""
    state = f"(query:(language:kuery,query:'{field}:\"{{{{value}}}}\"'))"
    return f"discover#/view/{SEARCH_ID}?_g=(time:(from:{LINK_TIME_RANGE},to:now))&_a={state}"


def field_formats(jaeger_url: str = DEFAULT_JAEGER_URL) -> dict[str, Any]:
    """The data view's ``fieldFormatMap``: units, and ids as links."""

    def link(url: str, label: str = "{{value}}") -> dict[str, Any]:
        return {"id": "url", "params": {"urlTemplate": url, "labelTemplate": label, "openLinkInCurrentTab": False}}

    return {
        "duration": {
            "id": "duration",
            "params": {
                "inputFormat": "nanoseconds",
                "outputFormat": "asMilliseconds",
                "outputPrecision": 1,
                "showSuffix": True,
                "useShortSuffix": True,
            },
        },
        sc.USAGE_COST_USD: {"id": "number", "params": {"pattern": "$0,0.[0000]"}},
        sc.ENDUSER_ID: link(_discover_link(sc.ENDUSER_ID)),
        sc.SESSION_ID: link(_discover_link(sc.SESSION_ID), "genai-audit replay {{value}}"),
        sc.AUDIT_REQUEST_ID: link(_discover_link(sc.AUDIT_REQUEST_ID)),
        "trace_id": link(f"{check_jaeger_url(jaeger_url)}/trace/{{{{value}}}}"),
    }


def data_view(jaeger_url: str = DEFAULT_JAEGER_URL) -> dict[str, Any]:
    return {
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {
            "title": DATA_VIEW_TITLE,
            "name": "genai-audit: LLM calls",
            "timeFieldName": TIME_FIELD,
            "allowNoIndex": True,
            "fieldFormatMap": _compact(field_formats(jaeger_url)),
            "fieldAttrs": _compact({name: {"customLabel": label} for name, label in FIELD_LABELS.items()}),
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
        },
        "references": [],
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "8.0.0",
    }


def _search_source(query: str, *, index: bool) -> str:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if index:
        source["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.index"
    return _compact(source)


def forensics_search() -> dict[str, Any]:
    return {
        "type": "search",
        "id": SEARCH_ID,
        "attributes": {
            "title": "genai-audit: Forensics",
            "description": (
                "Every LLM call, newest first. A user links to that user's calls and sessions, a session to its "
                "calls (shown as the genai-audit replay command line), a trace id to Jaeger."
            ),
            "columns": list(FORENSICS_COLUMNS),
            "sort": [[TIME_FIELD, "desc"]],
            "grid": {},
            "hideChart": False,
            "isTextBasedQuery": False,
            "timeRestore": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(LLM_CALLS, index=True)},
        },
        "references": [
            {"type": "index-pattern", "id": DATA_VIEW_ID, "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}
        ],
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "8.0.0",
    }


def dashboard_object(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard saved object: ``panelsJSON`` is a JSON string; each panel is bound by a reference."""
    panels: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    placed: list[tuple[str, str, str, dict[str, int]]] = [
        ("lens", panel.id, panel.key, grid) for panel, grid in layout(spec.panels)
    ]
    if spec.with_search:
        bottom = max((g["y"] + g["h"] for *_, g in placed), default=0)
        placed.append(("search", SEARCH_ID, f"{spec.key}-forensics", {"x": 0, "y": bottom, "w": 48, "h": 15}))
    for kind, object_id, key, grid in placed:
        index = stable_id("panel", key)
        panels.append(
            {
                "version": CORE_MIGRATION_VERSION,
                "type": kind,
                "gridData": {**grid, "i": index},
                "panelIndex": index,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
        )
        references.append({"type": kind, "id": object_id, "name": f"{index}:panel_{index}"})
    return {
        "type": "dashboard",
        "id": spec.id,
        "attributes": {
            "title": spec.title,
            "description": spec.description,
            "panelsJSON": _compact(panels),
            "optionsJSON": _compact(
                {"useMargins": True, "syncColors": False, "syncCursor": True, "syncTooltips": False,
                 "hidePanelTitles": False}
            ),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 60000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("", index=False)},
            "version": 1,
        },
        "references": references,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": "8.7.0",
    }


def saved_objects(jaeger_url: str = DEFAULT_JAEGER_URL) -> list[dict[str, Any]]:
    """Every saved object: data view, Forensics search, Lens panels, dashboards."""
    specs = dashboards()
    lens = [lens_object(panel, DATA_VIEW_ID) for spec in specs for panel in spec.panels]
    return [data_view(jaeger_url), forensics_search(), *lens, *(dashboard_object(spec) for spec in specs)]


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def to_ndjson(objects: Iterable[Mapping[str, Any]]) -> str:
    """One object per line, keys sorted, as Kibana's export writes and its import reads."""
    return "".join(_compact(obj) + "\n" for obj in objects)


def ndjson(jaeger_url: str = DEFAULT_JAEGER_URL) -> str:
    return to_ndjson(saved_objects(jaeger_url))
