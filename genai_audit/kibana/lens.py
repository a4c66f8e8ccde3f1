"""Lens visualizations as Kibana saved objects, built from a small description of each panel.

A :class:`Panel` names its columns (:class:`Column`: buckets first, outer to inner, then
metrics) and how they are drawn; :func:`lens_object` turns it into the saved object Kibana's
import takes: a ``lens`` object whose ``state`` holds one form-based layer and whose data view
is bound only by the reference named ``indexpattern-datasource-layer-<layer id>``. The shape is
the one Kibana 8.6 wrote (``typeMigrationVersion`` 8.6.0, as Kibana's own test archives of
form-based Lens objects carry); Kibana 8.19 and 9.x migrate it on import.

Every metric and bucket is one Elasticsearch aggregation (terms, date histogram, filters,
ranges, count, sum, average, median, percentile, max, unique count) over fields the index
templates map as aggregatable, with KQL filters: no formulas and no scripts, so each panel's
numbers can be checked by running the same aggregation on a cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: Lens's pseudo-field of the count operation
RECORDS: Final = "___records___"
TIME_FIELD: Final = "@timestamp"
#: Kibana's saved-object versions of the shapes written here (see the module documentation)
CORE_MIGRATION_VERSION: Final = "8.8.0"
LENS_MIGRATION_VERSION: Final = "8.6.0"
#: the namespace of every generated id: ids are stable across runs and machines
ID_NAMESPACE: Final = uuid.UUID("6f1d3c52-1a7e-5b7d-9a43-2c0b8e6f4a10")

BUCKET_OPERATIONS: Final = frozenset({"date_histogram", "terms", "filters", "range"})
FIELD_METRICS: Final = frozenset({"sum", "average", "median", "percentile", "max", "min", "unique_count"})
VISUALIZATIONS: Final[Mapping[str, str]] = {"metric": "lnsMetric", "xy": "lnsXY", "table": "lnsDatatable"}


def stable_id(kind: str, key: str) -> str:
    """A UUID derived from the object's kind and name: the same on every run."""
    return str(uuid.uuid5(ID_NAMESPACE, f"genai-audit:{kind}:{key}"))


@dataclass(frozen=True)
class Column:
    """One Lens column: a bucket (date histogram, terms, filters, ranges) or a metric.

    ``kql`` is a metric's own filter; ``filters`` are a filters bucket's (label, KQL) pairs;
    ``ranges`` a range bucket's (from, to, label) triples (``to`` None: unbounded).
    """

    id: str
    label: str
    operation: str
    field: str | None = None
    kql: str | None = None
    size: int = 10
    order_by: str | None = None
    missing: bool = False
    other: bool = False
    percentile: float | None = None
    filters: tuple[tuple[str, str], ...] = ()
    ranges: tuple[tuple[float, float | None, str], ...] = ()

    @property
    def bucketed(self) -> bool:
        return self.operation in BUCKET_OPERATIONS

    @property
    def source_field(self) -> str | None:
        """The field the column reads (None for filters buckets; Lens's records pseudo-field for counts)."""
        if self.operation == "count":
            return RECORDS
        if self.operation == "date_histogram":
            return self.field or TIME_FIELD
        return self.field


def timeline(id: str = "time", label: str = "Time") -> Column:
    return Column(id, label, "date_histogram", TIME_FIELD)


def terms(
    id: str, label: str, field: str, *, size: int = 10, order_by: str | None = None, missing: bool = False
) -> Column:
    """Top values of ``field``, ordered by the metric column ``order_by`` (alphabetically without one)."""
    return Column(id, label, "terms", field, size=size, order_by=order_by, missing=missing)


def filters(id: str, label: str, *pairs: tuple[str, str]) -> Column:
    return Column(id, label, "filters", filters=tuple(pairs))


def ranges(id: str, label: str, field: str, *triples: tuple[float, float | None, str]) -> Column:
    return Column(id, label, "range", field, ranges=tuple(triples))


def count(id: str, label: str, kql: str | None = None) -> Column:
    return Column(id, label, "count", kql=kql)


def metric(operation: str, id: str, label: str, field: str, kql: str | None = None) -> Column:
    if operation not in FIELD_METRICS - {"percentile"}:
        raise ValueError(f"unknown metric {operation!r}")
    return Column(id, label, operation, field, kql=kql)


def percentile(id: str, label: str, field: str, percent: float) -> Column:
    return Column(id, label, "percentile", field, percentile=percent)


@dataclass(frozen=True)
class Panel:
    """One visualization: its columns (buckets outer to inner, then metrics) and how they are drawn.

    ``visualization`` is ``metric`` (one metric, no buckets), ``xy`` (``x`` column, optional
    ``split`` column, every metric a series of type ``series``) or ``table``. ``query`` is KQL the
    panel adds to the dashboard's query.
    """

    key: str
    title: str
    visualization: str
    columns: tuple[Column, ...]
    description: str = ""
    query: str = ""
    series: str = "bar_stacked"
    x: str | None = None
    split: str | None = None
    width: int = 24
    height: int = 12

    @property
    def id(self) -> str:
        return stable_id("lens", self.key)

    @property
    def layer_id(self) -> str:
        return stable_id("layer", self.key)

    @property
    def metrics(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.bucketed)

    @property
    def buckets(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.bucketed)

    def column(self, column_id: str) -> Column:
        for candidate in self.columns:
            if candidate.id == column_id:
                return candidate
        raise KeyError(column_id)

    def check(self) -> None:
        """Raise ValueError when the description cannot make a valid Lens object."""
        ids = [c.id for c in self.columns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.key}: duplicate column ids")
        if [c for c in self.columns[len(self.buckets):] if c.bucketed]:
            raise ValueError(f"{self.key}: buckets come before metrics")
        if not self.metrics:
            raise ValueError(f"{self.key}: no metric")
        if self.visualization not in VISUALIZATIONS:
            raise ValueError(f"{self.key}: unknown visualization {self.visualization!r}")
        if self.visualization == "metric" and (self.buckets or len(self.metrics) != 1):
            raise ValueError(f"{self.key}: a metric panel shows one metric and no buckets")
        if self.visualization == "xy":
            if self.x is None or self.x not in ids:
                raise ValueError(f"{self.key}: an xy panel needs its x column")
            if self.split is not None and self.split not in ids:
                raise ValueError(f"{self.key}: unknown split column {self.split!r}")
        for c in self.columns:
            if c.order_by is not None and c.order_by not in {m.id for m in self.metrics}:
                raise ValueError(f"{self.key}: {c.id} is ordered by an unknown metric {c.order_by!r}")


def _column_json(column: Column) -> dict[str, Any]:
    body: dict[str, Any] = {
        "label": column.label,
        "customLabel": True,
        "isBucketed": column.bucketed,
        "operationType": column.operation,
    }
    operation = column.operation
    if operation == "date_histogram":
        body.update(
            dataType="date",
            scale="interval",
            sourceField=column.source_field,
            params={"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
        )
    elif operation == "terms":
        order: dict[str, Any] = (
            {"type": "column", "columnId": column.order_by}
            if column.order_by
            else {"type": "alphabetical", "fallback": False}
        )
        body.update(
            dataType="string",
            scale="ordinal",
            sourceField=column.field,
            params={
                "size": column.size,
                "orderBy": order,
                "orderDirection": "desc" if column.order_by else "asc",
                "otherBucket": column.other,
                "missingBucket": column.missing,
                "parentFormat": {"id": "terms"},
                "include": [],
                "exclude": [],
                "includeIsRegex": False,
                "excludeIsRegex": False,
            },
        )
    elif operation == "filters":
        body.update(
            dataType="string",
            scale="ordinal",
            params={
                "filters": [
                    {"input": {"query": query, "language": "kuery"}, "label": label} for label, query in column.filters
                ]
            },
        )
    elif operation == "range":  # explicit ranges (not a histogram): string buckets, as Lens makes them
        body.update(
            dataType="string",
            scale="ordinal",
            sourceField=column.field,
            params={
                "type": "range",
                "maxBars": "auto",
                "includeEmptyRows": True,
                "ranges": [{"from": low, "to": high, "label": label} for low, high, label in column.ranges],
                "parentFormat": {"id": "range", "params": {"template": "arrow_right", "replaceInfinity": True}},
            },
        )
    else:
        body.update(dataType="number", scale="ratio", sourceField=column.source_field)
        params: dict[str, Any] = {"emptyAsNull": operation != "count"}
        if operation == "percentile":
            params["percentile"] = column.percentile
        body["params"] = params
        if column.kql:
            body["filter"] = {"query": column.kql, "language": "kuery"}
    return body


def _visualization(panel: Panel) -> dict[str, Any]:
    layer = panel.layer_id
    metric_ids = [m.id for m in panel.metrics]
    if panel.visualization == "metric":
        return {"layerId": layer, "layerType": "data", "metricAccessor": metric_ids[0]}
    if panel.visualization == "table":
        return {
            "layerId": layer,
            "layerType": "data",
            "columns": [{"columnId": c.id, "isTransposed": False} for c in panel.columns],
        }
    xy_layer: dict[str, Any] = {
        "layerId": layer,
        "layerType": "data",
        "seriesType": panel.series,
        "xAccessor": panel.x,
        "accessors": metric_ids,
        "position": "top",
        "showGridlines": False,
    }
    if panel.split:
        xy_layer["splitAccessor"] = panel.split
    visible = {"x": True, "yLeft": True, "yRight": True}
    return {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "axisTitlesVisibilitySettings": dict(visible),
        "tickLabelsVisibilitySettings": dict(visible),
        "gridlinesVisibilitySettings": dict(visible),
        "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
        "preferredSeriesType": panel.series,
        "layers": [xy_layer],
    }


def lens_state(panel: Panel) -> dict[str, Any]:
    """The ``state`` attribute of the panel's Lens object."""
    panel.check()
    return {
        "adHocDataViews": {},
        "datasourceStates": {
            "formBased": {
                "layers": {
                    panel.layer_id: {
                        "columnOrder": [c.id for c in panel.columns],
                        "columns": {c.id: _column_json(c) for c in panel.columns},
                        "incompleteColumns": {},
                        "sampling": 1,
                    }
                }
            },
            "textBased": {"layers": {}},
        },
        "filters": [],
        "internalReferences": [],
        "query": {"language": "kuery", "query": panel.query},
        "visualization": _visualization(panel),
    }


def lens_object(panel: Panel, data_view_id: str) -> dict[str, Any]:
    """The ``lens`` saved object of ``panel`` over the data view ``data_view_id``."""
    return {
        "type": "lens",
        "id": panel.id,
        "attributes": {
            "title": panel.title,
            "description": panel.description,
            "visualizationType": VISUALIZATIONS[panel.visualization],
            "state": lens_state(panel),
        },
        "references": [
            {"type": "index-pattern", "id": data_view_id, "name": f"indexpattern-datasource-layer-{panel.layer_id}"}
        ],
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": LENS_MIGRATION_VERSION,
    }


def layout(panels: Sequence[Panel], columns: int = 48) -> list[tuple[Panel, dict[str, int]]]:
    """Each panel with its grid position: left to right in rows of ``columns`` grid units."""
    placed: list[tuple[Panel, dict[str, int]]] = []
    x = y = row_height = 0
    for panel in panels:
        if x + panel.width > columns:
            x, y, row_height = 0, y + row_height, 0
        placed.append((panel, {"x": x, "y": y, "w": panel.width, "h": panel.height}))
        x += panel.width
        row_height = max(row_height, panel.height)
    return placed
