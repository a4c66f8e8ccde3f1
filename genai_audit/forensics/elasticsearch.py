"""Forensic queries over the Elasticsearch data streams the exporter writes.

Span documents are read from ``traces-genai_audit.otel-<namespace>`` and their events from
``logs-genai_audit.otel-<namespace>``, through the fields the index templates type
(:mod:`genai_audit.store.elasticsearch`): keyword ids and audit fields for exact criteria,
``text`` content for the full-text search, ``long``/``double`` usage fields for aggregations.
Results are paged with ``search_after`` in the same order the SQLite store gives.

Everything runs in the search API and its server-side aggregations (no scripts): a session's
end (the latest start + duration) is found with a second, narrow search per page of
sessions rather than a scripted aggregation. The requests run with OpenTelemetry
instrumentation suppressed, so reading the audit trail never adds to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from opentelemetry.instrumentation.utils import suppress_instrumentation

from genai_audit import semconv as sc
from genai_audit.forensics.base import AuditStore, Document, SpanKey, chunks
from genai_audit.forensics.model import (
    ES_PERCENTILE_COMPRESSION,
    LATENCY_PERCENTILE,
    TEXT_FIELDS,
    Filters,
    GroupStats,
    parse_timestamp,
    timestamp_text,
)
from genai_audit.store.elasticsearch import ENV_NAMESPACE, ElasticsearchSettings, data_stream
from genai_audit.store.sqlite import StoreError

_PAGE = 1000
_GROUP_PAGE = 200
_EVENT_SPANS = 100
_MAX_HITS = 10_000
_TERMS_CAP = 1000  # users and models listed per session
_DATE_FORMAT = "strict_date_optional_time_nanos"


def _field(attribute: str) -> str:
    return f"attributes.{attribute}"


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ElasticsearchAuditStore(AuditStore):
    """The data streams of one namespace on an Elasticsearch cluster.

    ``endpoint``, ``namespace`` and credentials resolve as the exporter's do
    (:class:`~genai_audit.store.elasticsearch.ElasticsearchSettings`: arguments, then the
    ``GENAI_AUDIT_*`` environment); or pass ready ``settings``.
    """

    kind = "elasticsearch"

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        *,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
        settings: ElasticsearchSettings | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.settings = settings or ElasticsearchSettings.resolve(endpoint, namespace=namespace, env=env)
        self.client: Elasticsearch = self.settings.client(request_timeout)
        self.traces = data_stream("traces", self.settings.namespace)
        self.logs = data_stream("logs", self.settings.namespace)

    def describe(self) -> str:
        return f"{self.settings.describe()} ({self.traces})"

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a client that failed to connect is not an error worth raising
            pass

    # -- requests -------------------------------------------------------------------------------------

    def _call(self, method: Callable[..., Any], **options: Any) -> dict[str, Any]:
        try:
            with suppress_instrumentation():
                response = method(**options)
        except ApiError as exc:
            status = exc.meta.status
            body: Mapping[str, Any] = exc.body if isinstance(exc.body, dict) else {}
            found = body.get("error")
            error: Mapping[str, Any] = found if isinstance(found, dict) else {}
            kind = str(error.get("type", "error"))
            if status == 404 and kind == "index_not_found_exception":
                raise StoreError(
                    f"no audit records at {self.settings.describe()}: the data stream {self.traces} does not exist "
                    f"(check the namespace, {ENV_NAMESPACE})"
                ) from None
            reason = _one_line(str(error.get("reason", "")))
            raise StoreError(
                f"Elasticsearch at {self.settings.describe()} refused the query: HTTP {status} {kind}"
                + (f": {reason}" if reason else "")
            ) from None
        except TransportError as exc:
            raise StoreError(
                f"cannot reach Elasticsearch at {self.settings.describe()}: {type(exc).__name__}: {_one_line(str(exc))}"
            ) from None
        body = response.body
        if not isinstance(body, dict):
            raise StoreError(f"Elasticsearch at {self.settings.describe()} gave an answer that is not JSON")
        return body

    def _search(self, **options: Any) -> dict[str, Any]:
        return self._call(self.client.search, index=self.traces, track_total_hits=False, **options)

    # -- criteria -------------------------------------------------------------------------------------

    def _clauses(self, filters: Filters) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = [
            {"term": {_field(attribute): value}} for attribute, value in filters.exact_terms().items()
        ]
        if filters.trace_id is not None:
            clauses.append({"term": {"trace_id": filters.trace_id}})
        if filters.token is not None:
            clauses.append({"term": {_field(sc.AUDIT_PII_TOKENS): filters.token}})
        if filters.errors_only:
            clauses.append(
                {
                    "bool": {
                        "should": [{"term": {"status.code": "Error"}}, {"exists": {"field": _field(sc.ERROR_TYPE)}}],
                        "minimum_should_match": 1,
                    }
                }
            )
        if filters.since_ns is not None or filters.until_ns is not None:
            bounds: dict[str, Any] = {"format": _DATE_FORMAT}
            if filters.since_ns is not None:
                bounds["gte"] = timestamp_text(filters.since_ns)
            if filters.until_ns is not None:
                bounds["lt"] = timestamp_text(filters.until_ns)
            clauses.append({"range": {"@timestamp": bounds}})
        text = filters.text_query
        if text is not None:
            fields = [_field(name) for name in TEXT_FIELDS]
            if text.words:
                clauses.append(
                    {
                        "multi_match": {
                            "query": " ".join(text.words),
                            "type": "cross_fields",
                            "operator": "and",
                            "fields": fields,
                        }
                    }
                )
            for phrase in text.phrases:
                clauses.append({"multi_match": {"query": phrase, "type": "phrase", "fields": fields}})
        return clauses

    def _query(self, filters: Filters, *extra: dict[str, Any]) -> dict[str, Any]:
        clauses = [*self._clauses(filters), *extra]
        return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}

    # -- documents ------------------------------------------------------------------------------------

    def _documents(self, filters: Filters, *, limit: int | None) -> Iterator[Document]:
        order = "desc" if filters.newest_first else "asc"
        sort = [
            {"@timestamp": {"order": order, "numeric_type": "date_nanos"}},
            {"trace_id": {"order": order}},
            {"span_id": {"order": order}},
        ]
        query = self._query(filters)
        after: list[Any] | None = None
        remaining = limit
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            options: dict[str, Any] = {"query": query, "sort": sort, "size": size}
            if after is not None:
                options["search_after"] = after
            hits = self._search(**options).get("hits", {}).get("hits", [])
            for hit in hits:
                yield hit["_source"]
            if remaining is not None:
                remaining -= len(hits)
            if len(hits) < size:
                return
            after = hits[-1]["sort"]

    def events(self, docs: Iterable[Mapping[str, Any]]) -> dict[SpanKey, list[Document]]:
        keys = list(dict.fromkeys((str(doc["trace_id"]), str(doc["span_id"])) for doc in docs))
        found: dict[SpanKey, list[tuple[int, int, Document]]] = {}
        for part in chunks(keys, _EVENT_SPANS):
            wanted = set(part)
            body = self._call(
                self.client.search,
                index=self.logs,
                ignore_unavailable=True,
                track_total_hits=False,
                size=_MAX_HITS,
                query={
                    "bool": {
                        "filter": [
                            {"terms": {"span_id": sorted({span for _, span in part})}},
                            {"terms": {"trace_id": sorted({trace for trace, _ in part})}},
                        ]
                    }
                },
            )
            for hit in body.get("hits", {}).get("hits", []):
                source = hit["_source"]
                key = (str(source.get("trace_id")), str(source.get("span_id")))
                if key in wanted:
                    found.setdefault(key, []).append(
                        (_event_number(str(hit.get("_id", ""))), _event_time(source), source)
                    )
        return {
            key: [source for _, _, source in sorted(items, key=lambda item: item[:2])] for key, items in found.items()
        }

    # -- aggregates -----------------------------------------------------------------------------------

    @staticmethod
    def _stats_aggregations(top_errors: int) -> dict[str, Any]:
        errors: dict[str, Any] = {"filter": {"term": {"status.code": "Error"}}}
        if top_errors > 0:
            errors["aggs"] = {
                "types": {
                    "terms": {
                        "field": _field(sc.ERROR_TYPE),
                        "size": top_errors,
                        "order": [{"_count": "desc"}, {"_key": "asc"}],
                    }
                }
            }
        return {
            "latency": {"avg": {"field": "duration"}},
            "p95": {
                "percentiles": {
                    "field": "duration",
                    "percents": [LATENCY_PERCENTILE],
                    "keyed": False,
                    "tdigest": {"compression": ES_PERCENTILE_COMPRESSION},
                }
            },
            "cost": {"stats": {"field": _field(sc.USAGE_COST_USD)}},
            "tokens_in": {"sum": {"field": _field(sc.USAGE_INPUT_TOKENS)}},
            "tokens_out": {"sum": {"field": _field(sc.USAGE_OUTPUT_TOKENS)}},
            "errors": errors,
        }

    @staticmethod
    def _group_result(key: str | None, bucket: Mapping[str, Any], top_errors: int) -> GroupStats:
        values = bucket["p95"].get("values") or []
        p95 = values[0].get("value") if values else None
        cost = bucket["cost"]
        cost_calls = int(cost.get("count") or 0)
        errors = bucket["errors"]
        types = errors.get("types", {}).get("buckets", [])
        return GroupStats.build(
            key,
            calls=int(bucket["doc_count"]),
            errors=int(errors["doc_count"]),
            latency_avg_ns=bucket["latency"].get("value"),
            latency_p95_ns=p95,
            cost_calls=cost_calls,
            cost_sum=cost.get("sum") if cost_calls else None,
            cost_max=cost.get("max") if cost_calls else None,
            input_tokens=bucket["tokens_in"].get("value"),
            output_tokens=bucket["tokens_out"].get("value"),
            error_types=[(str(b["key"]), int(b["doc_count"])) for b in types],
            top=top_errors,
        )

    def _group_stats(self, field: str | None, filters: Filters, top_errors: int) -> tuple[list[GroupStats], GroupStats]:
        query = self._query(filters)
        inner = self._stats_aggregations(top_errors)
        body = self._search(query=query, size=0, aggs={"all": {"filter": {"match_all": {}}, "aggs": inner}})
        total = self._group_result(None, body["aggregations"]["all"], top_errors)
        groups: list[GroupStats] = []
        if field is not None:
            source = {"key": {"terms": {"field": _field(field), "missing_bucket": True}}}
            for bucket in self._composite(query, source, inner):
                key = bucket["key"]["key"]
                groups.append(self._group_result(None if key is None else str(key), bucket, top_errors))
        return groups, total

    def _composite(
        self, query: dict[str, Any], source: dict[str, Any], inner: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": _GROUP_PAGE, "sources": [source]}
            if after is not None:
                composite["after"] = after
            body = self._search(query=query, size=0, aggs={"groups": {"composite": composite, "aggs": inner}})
            result = body["aggregations"]["groups"]
            buckets = result.get("buckets", [])
            yield from buckets
            after = result.get("after_key")
            if len(buckets) < _GROUP_PAGE or after is None:
                return

    def _sessions(self, filters: Filters) -> list[dict[str, Any]]:
        has_session = {"exists": {"field": _field(sc.SESSION_ID)}}
        query = self._query(filters, has_session)
        inner = {
            "first": {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "asc"}}], "_source": ["@timestamp"]}},
            "last": {"top_hits": {"size": 1, "sort": [{"@timestamp": {"order": "desc"}}], "_source": ["@timestamp"]}},
            "longest": {"max": {"field": "duration"}},
            "users": {"terms": {"field": _field(sc.ENDUSER_ID), "size": _TERMS_CAP}},
            "models": {"terms": {"field": _field(sc.REQUEST_MODEL), "size": _TERMS_CAP}},
            "errors": {"filter": {"term": {"status.code": "Error"}}},
        }
        source = {"key": {"terms": {"field": _field(sc.SESSION_ID)}}}
        pending: list[dict[str, Any]] = []
        sessions: list[dict[str, Any]] = []
        for bucket in self._composite(query, source, inner):
            pending.append(bucket)
            if len(pending) >= _GROUP_PAGE:
                sessions.extend(self._session_summaries(filters, pending))
                pending = []
        if pending:
            sessions.extend(self._session_summaries(filters, pending))
        return sessions

    def _session_summaries(self, filters: Filters, buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Summaries of one page of session buckets; the end of each comes from a narrow second search.

        A session ends when its last call ends: the latest start + duration. Only calls starting
        at or after (last start - longest duration) can end last, so each session's search reads
        just those.
        """
        searches: list[dict[str, Any]] = []
        for bucket in buckets:
            last_start = _top_hit_ns(bucket["last"])
            longest = int(bucket["longest"].get("value") or 0)
            narrow = [
                {"term": {_field(sc.SESSION_ID): bucket["key"]["key"]}},
                {
                    "range": {
                        "@timestamp": {"gte": timestamp_text(max(0, last_start - longest)), "format": _DATE_FORMAT}
                    }
                },
            ]
            searches.append({"index": self.traces})
            searches.append(
                {
                    "query": self._query(filters, *narrow),
                    "size": _MAX_HITS,
                    "_source": ["@timestamp", "duration"],
                    "track_total_hits": False,
                }
            )
        answers = self._call(self.client.msearch, searches=searches).get("responses", [])
        summaries: list[dict[str, Any]] = []
        for bucket, answer in zip(buckets, answers):
            if "error" in answer:
                raise StoreError(f"Elasticsearch at {self.settings.describe()} could not read a session's end")
            first = _top_hit_ns(bucket["first"])
            last = _top_hit_ns(bucket["last"])
            for hit in answer.get("hits", {}).get("hits", []):
                source = hit["_source"]
                last = max(last, parse_timestamp(source["@timestamp"]) + int(source.get("duration") or 0))
            summaries.append(
                {
                    "session_id": str(bucket["key"]["key"]),
                    "first_ns": first,
                    "last_ns": last,
                    "calls": int(bucket["doc_count"]),
                    "users": sorted(str(b["key"]) for b in bucket["users"]["buckets"]),
                    "models": sorted(str(b["key"]) for b in bucket["models"]["buckets"]),
                    "errors": int(bucket["errors"]["doc_count"]),
                }
            )
        return summaries


def _top_hit_ns(aggregation: Mapping[str, Any]) -> int:
    (hit,) = aggregation["hits"]["hits"]
    return parse_timestamp(hit["_source"]["@timestamp"])


def _event_number(document_id: str) -> int:
    """The event's position in its span, from the exporter's id ``<trace><span>-<n>``."""
    _, _, number = document_id.rpartition("-")
    return int(number) if number.isdigit() else 1 << 30


def _event_time(source: Mapping[str, Any]) -> int:
    try:
        return parse_timestamp(str(source.get("@timestamp", "")))
    except ValueError:
        return 0
