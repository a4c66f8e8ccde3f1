"""What a Lens panel or an ``.es-query`` rule asks of Elasticsearch, run two ways.

:func:`lens_on_cluster` reads a Lens saved object (as exported) and sends the aggregation its
form-based layer describes: the panel's KQL and each column's own filter, its buckets nested in
column order (terms ordered by the metric column they name, with a ``__missing__`` bucket where
asked; date histograms; filters; ranges) and its metrics (count, sum, average, max, min, unique
count, median and percentiles). :func:`lens_in_memory` computes the same table from the stored
documents in Python. Both give ``{bucket keys: {column id: value}}``; percentiles in memory are
the interval between the neighbouring ranks, which the cluster's value must fall in.

:func:`rule_on_cluster` runs an ``.es-query`` rule as Kibana's executor does
(``x-pack/platform/plugins/shared/stack_alerts/server/rule_types/es_query/lib/fetch_es_query.ts``
and ``build_agg.ts`` of elastic/kibana): the query in a ``bool`` filter with the time window on
``timeField``, a ``terms`` group aggregation on ``termField`` ordered by the metric, and the
threshold compared to the total hits or each group's value. Kibana compares grouped values in a
``bucket_selector`` script; the test node has no scripting, so that comparison is made here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from elasticsearch import Elasticsearch

from tests import kql

MISSING = "__missing__"
Row = dict[str, Any]
Table = dict[tuple[Any, ...], Row]
_METRIC_AGG = {"sum": "sum", "average": "avg", "max": "max", "min": "min", "unique_count": "cardinality"}


def layer_of(lens: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The columns of the Lens object's one layer, in column order, and its query."""
    state = lens["attributes"]["state"]
    (layer,) = state["datasourceStates"]["formBased"]["layers"].values()
    columns = [{"id": cid, **layer["columns"][cid]} for cid in layer["columnOrder"]]
    return columns, state["query"]["query"]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def doc_ms(doc: Mapping[str, Any]) -> int:
    text = str(doc["@timestamp"])
    seconds, _, fraction = text.rstrip("Z").partition(".")
    base = datetime.fromisoformat(seconds).replace(tzinfo=timezone.utc)
    return int(base.timestamp() * 1000) + int((fraction or "0")[:3].ljust(3, "0"))


# --- on the cluster ----------------------------------------------------------------------------------------


def _metric_aggs(column: Mapping[str, Any]) -> dict[str, Any] | None:
    operation = column["operationType"]
    if operation == "count":
        inner = None
    elif operation in _METRIC_AGG:
        inner = {_METRIC_AGG[operation]: {"field": column["sourceField"]}}
    elif operation in ("median", "percentile"):
        percent = 50.0 if operation == "median" else float(column["params"]["percentile"])
        inner = {"percentiles": {"field": column["sourceField"], "percents": [percent]}}
    else:
        raise AssertionError(f"unsupported metric {operation}")
    if column.get("filter"):
        wrapped: dict[str, Any] = {"filter": kql.to_dsl(kql.parse(column["filter"]["query"]))}
        if inner is not None:
            wrapped["aggs"] = {"v": inner}
        return wrapped
    return inner


def _order(column: Mapping[str, Any], by: Mapping[str, Any]) -> list[dict[str, str]]:
    direction = column["params"]["orderDirection"]
    if by["operationType"] == "count" and not by.get("filter"):
        path = "_count"
    elif by["operationType"] == "count" or (by["operationType"] in _METRIC_AGG and not by.get("filter")):
        path = f"m_{by['id']}"
    elif by["operationType"] in _METRIC_AGG:
        path = f"m_{by['id']}>v"
    else:
        raise AssertionError(f"ordering by {by['operationType']} is not supported here")
    return [{path: direction}, {"_key": "asc"}]


def _bucket_agg(column: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]], interval: str) -> dict[str, Any]:
    operation = column["operationType"]
    if operation == "date_histogram":
        return {"date_histogram": {"field": column["sourceField"], "fixed_interval": interval, "min_doc_count": 1}}
    if operation == "terms":
        params = column["params"]
        terms: dict[str, Any] = {"field": column["sourceField"], "size": params["size"]}
        if params["orderBy"]["type"] == "column":
            terms["order"] = _order(column, metrics[params["orderBy"]["columnId"]])
        else:
            terms["order"] = {"_key": params["orderDirection"]}
        if params.get("missingBucket"):
            terms["missing"] = MISSING
        return {"terms": terms}
    if operation == "filters":
        return {
            "filters": {
                "filters": {
                    f["label"]: kql.to_dsl(kql.parse(f["input"]["query"])) for f in column["params"]["filters"]
                }
            }
        }
    if operation == "range":
        ranges = []
        for r in column["params"]["ranges"]:
            bound: dict[str, Any] = {"key": r["label"], "from": r["from"]}
            if r["to"] is not None:
                bound["to"] = r["to"]
            ranges.append(bound)
        return {"range": {"field": column["sourceField"], "ranges": ranges}}
    raise AssertionError(f"unsupported bucket {operation}")


def _metric_value(column: Mapping[str, Any], bucket: Mapping[str, Any]) -> Any:
    operation = column["operationType"]
    if operation == "count":
        return bucket[f"m_{column['id']}"]["doc_count"] if column.get("filter") else bucket["doc_count"]
    found = bucket[f"m_{column['id']}"]
    if column.get("filter"):
        found = found["v"]
    if operation in ("median", "percentile"):
        (value,) = found["values"].values()
        return value
    return found["value"]


def lens_on_cluster(
    es: Elasticsearch, index: str, lens: Mapping[str, Any], start_ms: int, end_ms: int, interval: str = "30m"
) -> Table:
    """The panel's table as the cluster computes it over ``[start_ms, end_ms)``."""
    columns, query = layer_of(lens)
    buckets = [c for c in columns if c["isBucketed"]]
    metrics = {c["id"]: c for c in columns if not c["isBucketed"]}
    leaf = {f"m_{cid}": agg for cid, c in metrics.items() if (agg := _metric_aggs(c)) is not None}
    aggs: dict[str, Any] = leaf
    for depth in reversed(range(len(buckets))):
        inner = dict(aggs)
        order_by = buckets[depth].get("params", {}).get("orderBy", {})
        if order_by.get("type") == "column" and f"m_{order_by['columnId']}" in leaf:
            # the metric a terms bucket is ordered by is its own sub-aggregation, as Kibana's terms order helper adds
            inner[f"m_{order_by['columnId']}"] = leaf[f"m_{order_by['columnId']}"]
        aggs = {f"b{depth}": {**_bucket_agg(buckets[depth], metrics, interval), "aggs": inner}}
    window = {"range": {"@timestamp": {"gte": iso(start_ms), "lt": iso(end_ms)}}}
    es.indices.refresh(index=index)
    answer = es.search(
        index=index,
        size=0,
        query={"bool": {"filter": [kql.to_dsl(kql.parse(query)), window]}},
        aggs=aggs or None,
        track_total_hits=True,
    ).body
    table: Table = {}

    def walk(node: Mapping[str, Any], depth: int, keys: tuple[Any, ...]) -> None:
        if depth == len(buckets):
            table[keys] = {cid: _metric_value(c, node) for cid, c in metrics.items()}
            return
        found = node[f"b{depth}"]["buckets"]
        items = found.items() if isinstance(found, dict) else ((b["key"], b) for b in found)
        for key, bucket in items:
            walk(bucket, depth + 1, (*keys, key))

    root = answer.get("aggregations", {}) | {"doc_count": answer["hits"]["total"]["value"]}
    walk(root, 0, ())
    return table


# --- in memory ------------------------------------------------------------------------------------------------


def _numbers(docs: Iterable[Mapping[str, Any]], field: str) -> list[float]:
    return [float(v) for d in docs for v in kql.field_values(d, field) if isinstance(v, (int, float))]


def _memory_metric(column: Mapping[str, Any], docs: Sequence[Mapping[str, Any]]) -> Any:
    if column.get("filter"):
        node = kql.parse(column["filter"]["query"])
        docs = [d for d in docs if kql.matches(node, d)]
    operation = column["operationType"]
    if operation == "count":
        return len(docs)
    values = _numbers(docs, column["sourceField"]) if operation != "unique_count" else [
        v for d in docs for v in kql.field_values(d, column["sourceField"])
    ]
    if operation == "sum":
        return float(sum(values))
    if operation == "unique_count":
        return len(set(values))
    if not values:
        return None
    if operation == "average":
        return sum(values) / len(values)
    if operation in ("max", "min"):
        return max(values) if operation == "max" else min(values)
    percent = 50.0 if operation == "median" else float(column["params"]["percentile"])
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    return (ordered[max(0, math.floor(rank) - 1)], ordered[min(len(ordered) - 1, math.ceil(rank) + 1)])


def _memory_groups(
    column: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], metrics: Mapping[str, Mapping[str, Any]],
    interval_ms: int,
) -> list[tuple[Any, list[Mapping[str, Any]]]]:
    operation = column["operationType"]
    if operation == "date_histogram":
        groups: dict[Any, list[Mapping[str, Any]]] = {}
        for doc in docs:
            groups.setdefault(doc_ms(doc) // interval_ms * interval_ms, []).append(doc)
        return sorted(groups.items())
    if operation == "filters":
        return [
            (f["label"], [d for d in docs if kql.matches(kql.parse(f["input"]["query"]), d)])
            for f in column["params"]["filters"]
        ]
    if operation == "range":
        found = []
        for r in column["params"]["ranges"]:
            low, high = r["from"], r["to"]
            inside = [
                d for d in docs
                if any(low <= v and (high is None or v < high) for v in _numbers([d], column["sourceField"]))
            ]
            found.append((r["label"], inside))
        return found
    params = column["params"]
    groups = {}
    for doc in docs:
        values = kql.field_values(doc, column["sourceField"])
        if not values and params.get("missingBucket"):
            values = [MISSING]
        for value in dict.fromkeys(values):
            groups.setdefault(value, []).append(doc)
    if params["orderBy"]["type"] == "column":
        by = metrics[params["orderBy"]["columnId"]]
        ranked = sorted(groups.items(), key=lambda item: (-(_memory_metric(by, item[1]) or 0), str(item[0])))
    else:
        ranked = sorted(groups.items(), key=lambda item: str(item[0]))
    return ranked[: params["size"]]


def lens_in_memory(
    docs: Sequence[Mapping[str, Any]], lens: Mapping[str, Any], start_ms: int, end_ms: int, interval_ms: int = 1_800_000
) -> Table:
    """The panel's table computed in Python from the stored documents."""
    columns, query = layer_of(lens)
    node = kql.parse(query)
    selected = [d for d in docs if start_ms <= doc_ms(d) < end_ms and kql.matches(node, d)]
    buckets = [c for c in columns if c["isBucketed"]]
    metrics = {c["id"]: c for c in columns if not c["isBucketed"]}
    table: Table = {}

    def walk(subset: Sequence[Mapping[str, Any]], depth: int, keys: tuple[Any, ...]) -> None:
        if depth == len(buckets):
            table[keys] = {cid: _memory_metric(c, subset) for cid, c in metrics.items()}
            return
        for key, group in _memory_groups(buckets[depth], subset, metrics, interval_ms):
            walk(group, depth + 1, (*keys, key))

    walk(selected, 0, ())
    return table


def same_tables(cluster: Table, memory: Table) -> list[str]:
    """The differences between the two tables (empty when they agree)."""
    problems = []
    if set(cluster) != set(memory):
        problems.append(f"rows differ: only on the cluster {sorted(set(cluster) - set(memory), key=str)[:5]}, "
                        f"only in memory {sorted(set(memory) - set(cluster), key=str)[:5]}")
    for key in set(cluster) & set(memory):
        for cid, expected in memory[key].items():
            got = cluster[key][cid]
            if isinstance(expected, tuple):
                ok = got is not None and expected[0] - 1e-6 <= got <= expected[1] + 1e-6
            elif expected is None or got is None:
                ok = expected == got
            else:
                ok = math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)
            if not ok:
                problems.append(f"{key} {cid}: cluster {got!r}, memory {expected!r}")
    return problems


# --- rules ----------------------------------------------------------------------------------------------------

_WINDOW_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_COMPARE: dict[str, Callable[[float, Sequence[float]], bool]] = {
    ">": lambda v, t: v > t[0],
    ">=": lambda v, t: v >= t[0],
    "<": lambda v, t: v < t[0],
    "<=": lambda v, t: v <= t[0],
    "between": lambda v, t: t[0] <= v <= t[1],
    "notBetween": lambda v, t: not t[0] <= v <= t[1],
}


def rule_request(params: Mapping[str, Any], end_ms: int) -> dict[str, Any]:
    """The search Kibana's executor sends for the rule's window ending at ``end_ms`` (without its scripts)."""
    start_ms = end_ms - params["timeWindowSize"] * _WINDOW_MS[params["timeWindowUnit"]]
    query = json.loads(params["esQuery"])["query"]
    grouped = bool(params.get("termField"))
    counting = params.get("aggType", "count") == "count"
    window = {"range": {params["timeField"]: {"gte": iso(start_ms), "lte": iso(end_ms),
                                               "format": "strict_date_optional_time"}}}
    body: dict[str, Any] = {
        "query": {"bool": {"filter": [query, window]}},
        "size": 0 if grouped else params["size"],
        "track_total_hits": True,
        "sort": [{params["timeField"]: {"order": "desc"}}],
    }
    metric = {params.get("aggType", "count"): {"field": params.get("aggField")}}
    if grouped:
        terms: dict[str, Any] = {"field": params["termField"], "size": params.get("termSize") or 100}
        group: dict[str, Any] = {"terms": terms}
        if not counting:
            terms["order"] = {"metricAgg": "asc" if params["aggType"] == "min" else "desc"}
            group["aggs"] = {"metricAgg": metric}
        body["aggs"] = {"groupAgg": group}
    elif not counting:
        body["aggs"] = {"metricAgg": metric}
    return body


def rule_on_cluster(es: Elasticsearch, params: Mapping[str, Any], end_ms: int, index: Sequence[str]) -> list[
    tuple[str, float]
]:
    """The groups (``all documents`` when ungrouped) for which the rule fires, with their values."""
    body = rule_request(params, end_ms)
    es.indices.refresh(index=list(index), ignore_unavailable=True)
    answer = es.search(index=list(index), ignore_unavailable=True, **body).body
    counting = params.get("aggType", "count") == "count"
    if params.get("termField"):
        values = [
            (str(b["key"]), float(b["doc_count"] if counting else b["metricAgg"]["value"] or 0))
            for b in answer["aggregations"]["groupAgg"]["buckets"]
        ]
    else:
        value = answer["hits"]["total"]["value"] if counting else answer["aggregations"]["metricAgg"]["value"]
        values = [("all documents", float(value or 0))]
    compare = _COMPARE[params["thresholdComparator"]]
    return [(key, value) for key, value in values if compare(value, params["threshold"])]
