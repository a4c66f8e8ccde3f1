"""The audit pipeline's own losses, written to Elasticsearch where an alert rule can see them.

The spool and the exporter count every record they lose (:class:`~genai_audit.store.spool.SpoolStats`,
:attr:`~genai_audit.store.elasticsearch.ElasticsearchSpanExporter.dead_lettered`) and log it, but
those counters live in the process. :class:`PipelineStatusReporter` turns them into documents in the
logs data stream (``logs-genai_audit.otel-<namespace>``, ``event_name``
``genai_audit.pipeline.status``) after a delivery round, when:

- records were lost since the previous status document: spans dropped before the spool (its
  queue was full, or they ended during shutdown), spans the spool refused (disk quota reached, or a
  write error), documents Elasticsearch rejected for good (kept in the dead-letter file); or
- at least ``backlog_records`` records (1,000 by default) wait in the spool behind the batch just
  delivered, or the spool is above 80 % of its quota;

at most once per ``interval_s`` (a minute by default; losses that wait for the interval go out
with the next status). The loss counters on a status document count what was lost
since the previous one, so their sum over a time window is what that window lost. A status
document goes outside the spool (it describes the spool) in one ``create`` request with a
deterministic id and no retries, so it never holds up delivery; one that fails keeps its losses
for the next. Records lost while Elasticsearch is unreachable are reported once it answers again;
losses in a process's last minute before it exits are logged but may go unreported. The spool's
sender thread is the only caller.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genai_audit import semconv as sc
from genai_audit.serialize import DATASET, timestamp
from genai_audit.store.elasticsearch import AuditDocument, data_stream

logger = logging.getLogger("genai_audit.store")

DEFAULT_INTERVAL_S = 60.0
#: records waiting in the spool, behind the batch being delivered, from which a status reports the backlog
DEFAULT_BACKLOG_RECORDS = 1000
#: the spool counts as nearly full from this share of its quota (its own warning starts there too)
NEAR_FULL_FRACTION = 0.8


@dataclass(frozen=True)
class PipelineCounters:
    """Cumulative loss counters of one process, and the spool's state now.

    ``spool_pending`` counts the records waiting behind the batch being delivered.
    """

    dropped: int = 0
    refused: int = 0
    dead_lettered: int = 0
    spool_pending: int = 0
    spool_bytes: int = 0
    spool_quota_bytes: int = 0


class PipelineStatusReporter:
    """Writes status documents of the pipeline's losses and backlog (see the module documentation).

    ``send`` delivers one document and says whether it was stored; ``counters`` reads the current
    :class:`PipelineCounters` (called only when a status may be due, as it reads the spool file).
    """

    def __init__(
        self,
        namespace: str,
        send: Callable[[AuditDocument], bool],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        backlog_records: int = DEFAULT_BACKLOG_RECORDS,
        resource: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.index = data_stream("logs", namespace)
        self.namespace = namespace
        self.send = send
        self.interval_s = interval_s
        self.backlog_records = backlog_records
        self.resource = dict(resource) if resource is not None else default_resource()
        self.clock = clock
        self.now_ns = now_ns
        self._pid = 0
        self._instance = ""
        self._sequence = 0
        self._reported = PipelineCounters()  # the loss counters as of the last status sent
        self._last_sent: float | None = None
        self.sent = 0
        self._fresh()

    def losses_since_report(self, counters: PipelineCounters) -> int:
        """Records lost since the last status document."""
        last = self._reported
        return (
            max(0, counters.dropped - last.dropped)
            + max(0, counters.refused - last.refused)
            + max(0, counters.dead_lettered - last.dead_lettered)
        )

    def observe(self, counters: Callable[[], PipelineCounters]) -> bool:
        """After a delivery round: send a status document if one is due; True when one was stored.

        Called by one thread (the spool's sender). ``counters`` is read only once the interval since
        the last status has passed.
        """
        if os.getpid() != self._pid:  # a forked child reports its own losses under its own ids
            self._fresh()
        if self._last_sent is not None and self.clock() - self._last_sent < self.interval_s:
            return False
        current = counters()
        near_full = _near_full(current)
        backlog = current.spool_pending >= self.backlog_records
        if self.losses_since_report(current) == 0 and not backlog and not near_full:
            return False
        self._sequence += 1
        document = self._document(current, near_full)
        try:
            stored = self.send(document)
        except Exception:  # reporting must never break delivery
            logger.debug("sending the pipeline status failed", exc_info=True)
            stored = False
        if not stored:
            return False  # the losses stay unreported and go out with a later status
        self._reported = current
        self._last_sent = self.clock()
        self.sent += 1
        return True

    def _fresh(self) -> None:
        self._pid = os.getpid()
        self._instance = secrets.token_hex(8)
        self._sequence = 0
        self._reported = PipelineCounters()
        self._last_sent = None
        self.sent = 0
        if "process.pid" in self.resource:
            self.resource = {**self.resource, "process.pid": self._pid}

    def _document(self, current: PipelineCounters, near_full: bool) -> AuditDocument:
        last = self._reported
        dropped = max(0, current.dropped - last.dropped)
        refused = max(0, current.refused - last.refused)
        dead = max(0, current.dead_lettered - last.dead_lettered)
        source = {
            "@timestamp": timestamp(self.now_ns()),
            "data_stream": {"type": "logs", "dataset": DATASET, "namespace": self.namespace},
            "event_name": sc.PIPELINE_STATUS_EVENT,
            "attributes": {
                sc.AUDIT_PIPELINE_DROPPED: dropped,
                sc.AUDIT_PIPELINE_REFUSED: refused,
                sc.AUDIT_PIPELINE_DEAD_LETTERED: dead,
                sc.AUDIT_PIPELINE_LOST: dropped + refused + dead,
                sc.AUDIT_PIPELINE_SPOOL_PENDING: current.spool_pending,
                sc.AUDIT_PIPELINE_SPOOL_BYTES: current.spool_bytes,
                sc.AUDIT_PIPELINE_SPOOL_QUOTA_BYTES: current.spool_quota_bytes,
                sc.AUDIT_PIPELINE_SPOOL_NEAR_FULL: near_full,
            },
            "resource": {"attributes": dict(self.resource)},
        }
        return AuditDocument(self.index, f"pipeline-{self._instance}-{self._sequence}", source)


def _near_full(counters: PipelineCounters) -> bool:
    quota = counters.spool_quota_bytes
    return quota > 0 and counters.spool_bytes >= quota * NEAR_FULL_FRACTION


def default_resource() -> dict[str, Any]:
    """Who reports: host, process and, when set, the OpenTelemetry service name."""
    resource: dict[str, Any] = {"host.name": socket.gethostname(), "process.pid": os.getpid()}
    service = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        resource["service.name"] = service
    return resource
