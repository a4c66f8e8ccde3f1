"""What a forensic query asks and what statistics answer, shared by both stores.

Everything here is store-independent: the filters (:class:`Filters`), their
normalisation and validation, the statistics' definitions (:class:`GroupStats`)
and the small pieces of arithmetic both stores must do the same way (the
percentile, the rounding), so an answer never depends on where the records are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Final

from genai_audit import semconv as sc


class QueryError(ValueError):
    """The query itself is wrong (bad pattern, bad token, unknown grouping): nothing was searched."""


#: ``stats --by`` names and the attribute each groups on
GROUP_FIELDS: Final[Mapping[str, str]] = {
    "feature": sc.AUDIT_FEATURE,
    "user": sc.ENDUSER_ID,
    "model": sc.REQUEST_MODEL,
}

#: content attributes the full-text search looks in (the redacted prompt chain and response)
TEXT_FIELDS: Final = (sc.SYSTEM_INSTRUCTIONS, sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES)

#: the statistics' latency percentile
LATENCY_PERCENTILE: Final = 95.0
LATENCY_DECIMALS: Final = 3  # milliseconds
COST_DECIMALS: Final = 10  # US dollars
RATE_DECIMALS: Final = 4
DEFAULT_TOP_ERRORS: Final = 5

_WORD = re.compile(r"[^\W_]+")
_PHRASE = re.compile(r'"([^"]*)"')
_TOKEN = re.compile(r"^\[?([^\[\]:\s]+):([0-9A-Fa-f]+)\]?$")
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


# --- filters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextQuery:
    """Words that must all occur (anywhere in the content) and phrases that must occur as written."""

    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TextQuery:
        """``kettle refund "previous instructions"``: two words and a phrase; case does not matter.

        Each store's tokenizer splits a word further where it would split stored text, so a
        word written with punctuation (``example.com``, ``e-mail``) matches what it matches
        in the content in both stores.
        """
        phrases = tuple(
            dict.fromkeys(" ".join(found.lower().split()) for found in _PHRASE.findall(text) if _WORD.search(found))
        )
        rest = _PHRASE.sub(" ", text)
        words = tuple(dict.fromkeys(word.lower() for word in rest.split() if _WORD.search(word)))
        if not words and not phrases:
            raise QueryError(f"text search {text!r} has no words to look for")
        return cls(words, phrases)

    def fts5(self) -> str:
        """The SQLite FTS5 query: every word and phrase a quoted string, so no user text is FTS5 syntax."""
        return " ".join(_fts5_string(item) for item in (*self.words, *self.phrases))


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def normalize_token(token: str) -> str:
    """A pseudonym token as stored: ``[EMAIL:7f3a9c1e04b2]`` (brackets optional when given)."""
    found = _TOKEN.match(token.strip())
    if not found:
        raise QueryError(f"{token!r} is not a pseudonym token; they look like [EMAIL:7f3a9c1e04b2]")
    return f"[{found.group(1)}:{found.group(2).lower()}]"


def compile_pattern(pattern: str) -> Any:
    """A case-insensitive RE2 pattern (linear time whatever the text; no look-around or back-references)."""
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise QueryError(f"bad error pattern {pattern!r}: {reason}") from None


@dataclass(frozen=True)
class Filters:
    """What to look for; every criterion is optional and they combine (all must hold).

    ``error``: None ignores errors; ``""`` keeps only failed calls; any other text keeps failed
    calls whose ``error.type``, status message or exception messages match it (case-insensitive
    RE2 pattern; a plain word matches as a substring). ``text``: words (and ``"quoted phrases"``)
    that must all occur in the redacted prompt chain or response. ``token``: a pseudonym token
    from ``gen_ai.audit.pii.tokens``. Times are epoch nanoseconds of the call's start:
    ``since_ns`` inclusive, ``until_ns`` exclusive. Results come in start-time order (oldest
    first, or newest first with ``newest_first``), at most ``limit`` of them.
    """

    user: str | None = None
    session: str | None = None
    feature: str | None = None
    model: str | None = None
    trace_id: str | None = None
    correlation_id: str | None = None
    error_type: str | None = None
    error: str | None = None
    text: str | None = None
    token: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int | None = None
    newest_first: bool = False

    def validated(self) -> Filters:
        """The same filters in the stored spelling (token, trace id); raises :class:`QueryError`."""
        if self.limit is not None and self.limit < 1:
            raise QueryError(f"limit must be at least 1, not {self.limit}")
        if self.since_ns is not None and self.until_ns is not None and self.since_ns >= self.until_ns:
            raise QueryError("the time range is empty: since is not before until")
        if self.error:
            compile_pattern(self.error)
        if self.text is not None:
            TextQuery.parse(self.text)
        changes: dict[str, Any] = {}
        if self.token is not None:
            changes["token"] = normalize_token(self.token)
        if self.trace_id is not None:
            changes["trace_id"] = self.trace_id.strip().lower()
        return replace(self, **changes) if changes else self

    @property
    def text_query(self) -> TextQuery | None:
        return TextQuery.parse(self.text) if self.text is not None else None

    @property
    def errors_only(self) -> bool:
        return self.error is not None

    @property
    def needs_pattern(self) -> bool:
        """True when the error pattern must be matched against the documents and their events."""
        return bool(self.error)

    def exact_terms(self) -> dict[str, str]:
        """Attribute -> value for the criteria that are one exact value of one attribute."""
        pairs = {
            sc.ENDUSER_ID: self.user,
            sc.SESSION_ID: self.session,
            sc.AUDIT_FEATURE: self.feature,
            sc.REQUEST_MODEL: self.model,
            sc.AUDIT_REQUEST_ID: self.correlation_id,
            sc.ERROR_TYPE: self.error_type,
        }
        return {key: value for key, value in pairs.items() if value is not None}


def error_matches(matcher: Any, doc: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> bool:
    """Does the pattern match the call's error type, status message or an exception event's message?"""
    attributes = doc.get("attributes") or {}
    status = doc.get("status") or {}
    texts = [attributes.get(sc.ERROR_TYPE), status.get("message")]
    for event in events:
        if event.get("event_name") == "exception":
            event_attributes = event.get("attributes") or {}
            texts.extend((event_attributes.get("exception.type"), event_attributes.get("exception.message")))
    return any(isinstance(text, str) and matcher.search(text) is not None for text in texts)


# --- statistics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCount:
    type: str
    count: int


@dataclass(frozen=True)
class GroupStats:
    """One group's figures; both stores build them with :meth:`build`, so they round alike.

    ``errors`` counts calls whose status is Error; ``top_errors`` their ``error.type`` values,
    most frequent first. Latency is the span's duration. Cost figures cover the calls that
    carry ``gen_ai.usage.cost_usd`` (``cost_calls``); the average is over those.
    """

    key: str | None
    calls: int
    errors: int
    error_rate: float
    latency_avg_ms: float | None
    latency_p95_ms: float | None
    cost_total_usd: float
    cost_avg_usd: float | None
    cost_max_usd: float | None
    cost_calls: int
    input_tokens: int
    output_tokens: int
    top_errors: tuple[ErrorCount, ...] = ()

    @classmethod
    def build(
        cls,
        key: str | None,
        *,
        calls: int,
        errors: int,
        latency_avg_ns: float | None,
        latency_p95_ns: float | None,
        cost_calls: int,
        cost_sum: float | None,
        cost_max: float | None,
        input_tokens: float | None,
        output_tokens: float | None,
        error_types: Iterable[tuple[str, int]],
        top: int = DEFAULT_TOP_ERRORS,
    ) -> GroupStats:
        ranked = sorted(error_types, key=lambda pair: (-pair[1], pair[0]))[:top]
        has_cost = cost_calls > 0 and cost_sum is not None
        return cls(
            key=key,
            calls=calls,
            errors=errors,
            error_rate=round(errors / calls, RATE_DECIMALS) if calls else 0.0,
            latency_avg_ms=_ms(latency_avg_ns) if calls else None,
            latency_p95_ms=_ms(latency_p95_ns) if calls else None,
            cost_total_usd=round(cost_sum, COST_DECIMALS) if has_cost and cost_sum is not None else 0.0,
            cost_avg_usd=round(cost_sum / cost_calls, COST_DECIMALS) if has_cost and cost_sum is not None else None,
            cost_max_usd=round(cost_max, COST_DECIMALS) if has_cost and cost_max is not None else None,
            cost_calls=cost_calls,
            input_tokens=int(input_tokens or 0),
            output_tokens=int(output_tokens or 0),
            top_errors=tuple(ErrorCount(name, count) for name, count in ranked),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(ns: float | None) -> float | None:
    if ns is None or math.isnan(ns):
        return None
    return round(ns / 1e6, LATENCY_DECIMALS)


@dataclass(frozen=True)
class StatsReport:
    """Statistics per group (most calls first) and for all calls the filters selected."""

    group_by: str | None
    since_ns: int | None
    until_ns: int | None
    groups: tuple[GroupStats, ...]
    total: GroupStats
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_by": self.group_by,
            "since": None if self.since_ns is None else timestamp_text(self.since_ns),
            "until": None if self.until_ns is None else timestamp_text(self.until_ns),
            "groups": [group.to_dict() for group in self.groups],
            "total": self.total.to_dict(),
            "notes": list(self.notes),
        }


def order_groups(groups: Iterable[GroupStats]) -> tuple[GroupStats, ...]:
    """Most calls first; ties by key, the group without a key last."""
    return tuple(sorted(groups, key=lambda g: (-g.calls, g.key is None, g.key or "")))


def percentile(sorted_values: list[int] | list[float], percent: float) -> float | None:
    """Linear interpolation between the closest ranks, ``(n - 1) * p`` (numpy's default).

    Elasticsearch's ``percentiles`` aggregation computes exactly this while a group's values
    fit its exact (sorting) phase; :data:`ES_PERCENTILE_COMPRESSION` keeps that to tens of
    thousands of calls per group.
    """
    count = len(sorted_values)
    if count == 0:
        return None
    rank = (count - 1) * (percent / 100.0)
    low = math.floor(rank)
    high = min(low + 1, count - 1)
    return sorted_values[low] + (rank - low) * (sorted_values[high] - sorted_values[low])


#: t-digest compression for Elasticsearch's percentiles: exact below roughly 20,000 values per group
ES_PERCENTILE_COMPRESSION: Final = 10_000


def number(value: Any) -> float | None:
    """A numeric attribute value (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- time -----------------------------------------------------------------------------------------------


def timestamp_text(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, the documents' ``@timestamp`` spelling."""
    from genai_audit.serialize import timestamp

    return timestamp(ns)


def parse_timestamp(text: str) -> int:
    """A document's ``@timestamp`` (RFC 3339, up to nanoseconds) -> epoch nanoseconds, exactly."""
    found = _TIMESTAMP.match(text.strip())
    if not found:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    whole, fraction, zone = found.groups()
    offset = "+00:00" if zone == "Z" else zone
    seconds = int(datetime.fromisoformat(whole + offset).astimezone(timezone.utc).timestamp())
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
