"""The one interface both stores answer forensic questions through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from types import TracebackType
from typing import Any

from genai_audit.forensics.model import (
    DEFAULT_TOP_ERRORS,
    GROUP_FIELDS,
    Filters,
    GroupStats,
    QueryError,
    StatsReport,
    compile_pattern,
    error_matches,
    order_groups,
)
from genai_audit.forensics.timeline import Timeline, build_timeline

Document = dict[str, Any]
SpanKey = tuple[str, str]

#: documents whose events are read at once while matching an error pattern
_PATTERN_BATCH = 200


class AuditStore(ABC):
    """Stored audit records, queried the same way whichever store holds them.

    Documents are dicts in the serializer's shape (:mod:`genai_audit.serialize`), in start-time
    order (ties by trace id, then span id), identical from either store. Errors reading the store
    raise :class:`genai_audit.store.sqlite.StoreError`; malformed queries
    :class:`~genai_audit.forensics.model.QueryError`.
    """

    #: "sqlite" or "elasticsearch"
    kind: str = ""

    # -- what each store provides -------------------------------------------------------------

    @abstractmethod
    def describe(self) -> str:
        """Where the records are (a path, or URLs without credentials, and the data stream)."""

    @abstractmethod
    def _documents(self, filters: Filters, *, limit: int | None) -> Iterator[Document]:
        """Documents matching every filter except the error pattern (but only errors when one is set)."""

    @abstractmethod
    def events(self, docs: Iterable[Mapping[str, Any]]) -> dict[SpanKey, list[Document]]:
        """The event documents (exceptions) of ``docs``, per (trace id, span id), in the span's order."""

    @abstractmethod
    def _group_stats(self, field: str | None, filters: Filters, top_errors: int) -> tuple[list[GroupStats], GroupStats]:
        """Statistics per value of ``field`` (all calls as one group when None), and the total."""

    @abstractmethod
    def _sessions(self, filters: Filters) -> list[dict[str, Any]]:
        """Session summaries, in any order."""

    def close(self) -> None:  # noqa: B027 - a store without a connection has nothing to release
        """Release the connection."""

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- queries --------------------------------------------------------------------------------------

    def documents(self, filters: Filters | None = None) -> Iterator[Document]:
        """Matching documents, lazily, in order (the whole store when no filters are given)."""
        filters = (filters or Filters()).validated()
        if not filters.needs_pattern:
            yield from self._documents(filters, limit=filters.limit)
            return
        matcher = compile_pattern(filters.error or "")
        wanted = filters.limit
        found = 0
        candidates = self._documents(filters, limit=None)
        while True:
            batch = list(islice(candidates, _PATTERN_BATCH))
            if not batch:
                return
            events = self.events(batch)
            for doc in batch:
                if error_matches(matcher, doc, events.get((doc["trace_id"], doc["span_id"]), ())):
                    yield doc
                    found += 1
                    if wanted is not None and found >= wanted:
                        return

    def query(self, filters: Filters | None = None) -> list[Document]:
        """Matching documents as a list."""
        return list(self.documents(filters))

    def by_user(self, user: str, filters: Filters | None = None) -> list[Document]:
        return self.query(replace(filters or Filters(), user=user))

    def by_session(self, session: str, filters: Filters | None = None) -> list[Document]:
        return self.query(replace(filters or Filters(), session=session))

    def by_feature(
        self, feature: str, since_ns: int | None = None, until_ns: int | None = None, filters: Filters | None = None
    ) -> list[Document]:
        filters = replace(filters or Filters(), feature=feature)
        if since_ns is not None:
            filters = replace(filters, since_ns=since_ns)
        if until_ns is not None:
            filters = replace(filters, until_ns=until_ns)
        return self.query(filters)

    def by_model(self, model: str, filters: Filters | None = None) -> list[Document]:
        return self.query(replace(filters or Filters(), model=model))

    def by_error(
        self, pattern: str = "", error_type: str | None = None, filters: Filters | None = None
    ) -> list[Document]:
        """Failed calls; with a pattern, those whose error type or messages match it."""
        return self.query(replace(filters or Filters(), error=pattern, error_type=error_type))

    def by_trace(self, trace_id: str, filters: Filters | None = None) -> list[Document]:
        return self.query(replace(filters or Filters(), trace_id=trace_id))

    def by_correlation(self, correlation_id: str, filters: Filters | None = None) -> list[Document]:
        """The calls made for one request (``gen_ai.audit.request_id``)."""
        return self.query(replace(filters or Filters(), correlation_id=correlation_id))

    def search_text(self, words: str, filters: Filters | None = None) -> list[Document]:
        """Calls whose redacted prompt chain or response holds every word (and quoted phrase)."""
        return self.query(replace(filters or Filters(), text=words))

    def by_token(self, token: str, filters: Filters | None = None) -> list[Document]:
        """Every call that mentioned one redacted value (its pseudonym token)."""
        return self.query(replace(filters or Filters(), token=token))

    # -- aggregates ----------------------------------------------------------------------------------------

    def stats(
        self, by: str | None = "feature", filters: Filters | None = None, *, top_errors: int = DEFAULT_TOP_ERRORS
    ) -> StatsReport:
        """Calls, latency (average, p95), error rate, cost (total, average, maximum) and top errors.

        ``by``: ``feature``, ``user``, ``model`` or None (no grouping). Filters narrow the calls
        counted; an error pattern cannot be used here (it is matched outside the store).
        """
        if by is not None and by not in GROUP_FIELDS:
            raise QueryError(f"cannot group by {by!r}: use one of {', '.join(GROUP_FIELDS)}")
        filters = self._aggregate_filters(filters)
        if top_errors < 0:
            raise QueryError("top_errors cannot be negative")
        groups, total = self._group_stats(GROUP_FIELDS[by] if by else None, filters, top_errors)
        return StatsReport(
            group_by=by,
            since_ns=filters.since_ns,
            until_ns=filters.until_ns,
            groups=order_groups(groups) if by else (),
            total=total,
        )

    def sessions(self, filters: Filters | None = None) -> list[dict[str, Any]]:
        """One summary per session (first and last time, calls, errors, users, models), oldest first."""
        found = self._sessions(self._aggregate_filters(filters))
        return sorted(found, key=lambda s: (s["first_ns"], s["session_id"]))

    def timeline(self, session_id: str) -> Timeline | None:
        """The session's forensic timeline, or None when the store has no call of that session."""
        docs = self.by_session(session_id)
        if not docs:
            return None
        return build_timeline(docs, self.events(docs), source=self.describe())

    @staticmethod
    def _aggregate_filters(filters: Filters | None) -> Filters:
        filters = (filters or Filters()).validated()
        if filters.needs_pattern:
            raise QueryError("an error pattern cannot narrow statistics; use error_type, or errors only")
        if filters.limit is not None or filters.newest_first:
            raise QueryError("limit and order do not apply to statistics")
        return filters


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
