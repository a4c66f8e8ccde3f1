"""Outliers and bursts in the audit trail, with robust statistics.

Per model and per feature, each call's latency, input and output tokens and cost is scored
with the modified z-score ``0.6745 * (x - median) / MAD`` (Iglewicz and Hoaglin); a score
above 3.5 is an outlier. When more than half the values are equal (MAD 0) the mean absolute
deviation stands in (``(x - median) / (1.253314 * MeanAD)``); a group with no spread at all
has no outliers. Groups need at least :data:`MIN_GROUP` values.

Errors and injection flags are counted per 5-minute window (aligned to the epoch) over every
window from the first call's to the last call's; a window is a burst when its count is at
least ``max(5, 3 x the median window count)``.

Everything is computed from the documents, so both stores give the same anomalies.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from genai_audit import semconv as sc
from genai_audit.forensics.model import number, parse_timestamp, timestamp_text
from genai_audit.forensics.render import terminal_text

Z_THRESHOLD: Final = 3.5
MIN_GROUP: Final = 5
WINDOW_NS: Final = 300 * 1_000_000_000
BURST_FLOOR: Final = 5
BURST_FACTOR: Final = 3.0
#: which attribute each grouping uses
GROUPINGS: Final[Mapping[str, str]] = {"model": sc.REQUEST_MODEL, "feature": sc.AUDIT_FEATURE}
METRICS: Final = ("latency_ms", "input_tokens", "output_tokens", "cost_usd")


@dataclass(frozen=True)
class Anomaly:
    """One outlier call (``kind`` ``outlier``) or one burst window (``error_burst``, ``injection_burst``)."""

    kind: str
    metric: str
    group_by: str | None
    group: str | None
    value: float
    median: float
    score: float | None  # modified z-score of an outlier; count / median window count of a burst
    threshold: float
    time: str
    records: tuple[str, ...]  # "<trace_id>:<span_id>"

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["records"] = list(self.records)
        return found


def record_id(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('trace_id')}:{doc.get('span_id')}"


def start_ns(doc: Mapping[str, Any]) -> int:
    return parse_timestamp(str(doc["@timestamp"]))


def failed(doc: Mapping[str, Any]) -> bool:
    attributes = doc.get("attributes") or {}
    return (doc.get("status") or {}).get("code") == "Error" or attributes.get(sc.ERROR_TYPE) is not None


def metric_values(doc: Mapping[str, Any]) -> dict[str, float]:
    """The call's figures that outliers are looked for in (those it has)."""
    attributes = doc.get("attributes") or {}
    values: dict[str, float] = {}
    duration = number(doc.get("duration"))
    if duration is not None:
        values["latency_ms"] = duration / 1e6
    for name, key in (
        ("input_tokens", sc.USAGE_INPUT_TOKENS),
        ("output_tokens", sc.USAGE_OUTPUT_TOKENS),
        ("cost_usd", sc.USAGE_COST_USD),
    ):
        value = number(attributes.get(key))
        if value is not None:
            values[name] = float(value)
    return values


def modified_z_scores(values: list[float]) -> list[float] | None:
    """Each value's modified z-score, or None when the values have no spread (or are too few)."""
    if len(values) < MIN_GROUP:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    if mad > 0:
        return [0.6745 * (v - median) / mad for v in values]
    mean_ad = math.fsum(abs(v - median) for v in values) / len(values)
    if mean_ad > 0:
        return [(v - median) / (1.253314 * mean_ad) for v in values]
    return None


def _round(value: float) -> float:
    return round(value, 6)


def outliers(docs: Iterable[Mapping[str, Any]]) -> list[Anomaly]:
    """Calls whose latency, tokens or cost stand out in their model's or feature's calls."""
    groups: dict[tuple[str, str, str], list[tuple[float, Mapping[str, Any]]]] = defaultdict(list)
    for doc in docs:
        attributes = doc.get("attributes") or {}
        figures = metric_values(doc)
        for group_by, key in GROUPINGS.items():
            name = attributes.get(key)
            if not isinstance(name, str):
                continue
            for metric, figure in figures.items():
                groups[(group_by, name, metric)].append((figure, doc))
    found: list[Anomaly] = []
    for (group_by, group, metric), pairs in groups.items():
        values = [value for value, _ in pairs]
        scores = modified_z_scores(values)
        if scores is None:
            continue
        median = statistics.median(values)
        for (value, doc), score in zip(pairs, scores):
            if abs(score) > Z_THRESHOLD:
                found.append(
                    Anomaly(
                        kind="outlier",
                        metric=metric,
                        group_by=group_by,
                        group=group,
                        value=_round(value),
                        median=_round(median),
                        score=round(score, 2),
                        threshold=Z_THRESHOLD,
                        time=str(doc["@timestamp"]),
                        records=(record_id(doc),),
                    )
                )
    return found


def bursts(docs: Iterable[Mapping[str, Any]]) -> list[Anomaly]:
    """5-minute windows with a burst of failed calls or of injection flags."""
    first: int | None = None
    last: int | None = None
    flagged: dict[str, dict[int, list[str]]] = {"error_burst": defaultdict(list), "injection_burst": defaultdict(list)}
    for doc in docs:
        window = start_ns(doc) // WINDOW_NS
        first = window if first is None else min(first, window)
        last = window if last is None else max(last, window)
        if failed(doc):
            flagged["error_burst"][window].append(record_id(doc))
        if (doc.get("attributes") or {}).get(sc.AUDIT_INJECTION_DETECTED) is True:
            flagged["injection_burst"][window].append(record_id(doc))
    if first is None or last is None:
        return []
    found: list[Anomaly] = []
    windows = range(first, last + 1)
    for kind, per_window in flagged.items():
        median = statistics.median(len(per_window.get(w, ())) for w in windows)
        threshold = max(float(BURST_FLOOR), BURST_FACTOR * median)
        for window in sorted(per_window):
            count = len(per_window[window])
            if count >= threshold:
                found.append(
                    Anomaly(
                        kind=kind,
                        metric="errors" if kind == "error_burst" else "injections",
                        group_by=None,
                        group=None,
                        value=float(count),
                        median=float(median),
                        score=round(count / median, 2) if median else None,
                        threshold=threshold,
                        time=timestamp_text(window * WINDOW_NS),
                        records=tuple(per_window[window]),
                    )
                )
    return found


def find_anomalies(docs: Iterable[Mapping[str, Any]]) -> list[Anomaly]:
    """Outliers and bursts, in time order (then kind, grouping, group, metric)."""
    listed = list(docs)
    found = outliers(listed) + bursts(listed)
    return sorted(found, key=lambda a: (a.time, a.kind, a.group_by or "", a.group or "", a.metric))


def render_table(anomalies: list[Anomaly]) -> str:
    if not anomalies:
        return "no anomalies\n"
    lines = []
    for a in anomalies:
        where = f"{a.group_by}={terminal_text(a.group or '')}" if a.group_by else "all calls"
        score = "" if a.score is None else f" score {a.score}"
        records = ", ".join(terminal_text(record) for record in a.records)
        lines.append(
            f"{terminal_text(a.time[:19].replace('T', ' '))}  {a.kind:<15} {a.metric:<13} {where:<32} "
            f"value {a.value:g} (median {a.median:g}, threshold {a.threshold:g}{score})  {records}"
        )
    lines.append(f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}")
    return "\n".join(lines) + "\n"
