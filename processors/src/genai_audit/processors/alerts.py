"""Alerts: tell someone, in the background, when a call crossed a line.

:class:`AlertStep` is a processing step. It reads what the earlier steps and
the audit context put on the record and raises an :class:`Alert` for:

``restricted_data``
    ``gen_ai.audit.classification`` is ``restricted``.
``pii_without_consent``
    personal data was found (``gen_ai.audit.pii.detected``, or a positive
    ``gen_ai.audit.pii.count``) and consent is not given. Consent is *denied*
    when ``gen_ai.audit.consent`` is ``false``/``denied``: that always alerts.
    Consent that is *absent* (unset or ``unknown``) alerts only when the
    application tracks consent (``AlertStep(consent_tracking=True)``): an
    application that never sets consent would otherwise alert on every call
    that mentions a name, and the alert would say nothing.
``secret_detected``
    ``gen_ai.audit.secrets.detected`` is set.
``prompt_injection``
    ``gen_ai.audit.injection.detected`` is set.

The step lists the kinds raised in ``gen_ai.audit.alerts`` on the record (so
the span shows them even when delivery is de-duplicated or fails) and hands
the alerts to an :class:`AlertDispatcher`.

An alert never carries content: its summary is a fixed sentence per kind, its
details are labels and numbers (PII *types*, injection score), each checked
against a strict pattern, and its correlation fields are the identifiers the
application chose (``gen_ai.audit.request_id``, ``session.id``,
``enduser.id``, tenant, feature), the provider, the model, the provider's
response id and a timestamp: enough to find the span in the store. The trace
and span ids of the call are carried too (``AuditRecord.trace_id`` /
``span_id``, which the instrumentation and ``AuditSpanProcessor`` fill in; else
the ``gen_ai.audit.trace_id`` / ``gen_ai.audit.span_id`` attributes), so an
alert opens the trace in Jaeger or Kibana directly.

The dispatcher never blocks the caller: :meth:`AlertDispatcher.submit`
de-duplicates (same kind and key within a window), puts the alert on a bounded
queue (full: the alert is dropped and counted) and returns. A daemon thread,
started on first use and again in a forked child, delivers to each sink
through a per-sink token bucket. :meth:`AlertDispatcher.close` flushes.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import math
import os
import queue
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from typing import IO, Any, Final, Protocol

from genai_audit import semconv as sc
from genai_audit.config import ConfigError, parse_bool
from genai_audit.processors.chain import AuditRecord
from genai_audit.processors.policy import consent_state

__all__ = [
    "KIND_INJECTION",
    "KIND_PII_WITHOUT_CONSENT",
    "KIND_RESTRICTED",
    "KIND_SECRET",
    "Alert",
    "AlertDispatcher",
    "AlertSink",
    "AlertStats",
    "AlertStep",
    "CallbackSink",
    "LogSink",
    "WebhookError",
    "WebhookSink",
    "dispatcher_from_env",
]

logger = logging.getLogger("genai_audit.processors")
ALERT_LOGGER: Final = "genai_audit.alerts"

KIND_RESTRICTED: Final = "restricted_data"
KIND_PII_WITHOUT_CONSENT: Final = "pii_without_consent"
KIND_SECRET: Final = "secret_detected"
KIND_INJECTION: Final = "prompt_injection"
SEVERITIES: Final = ("low", "medium", "high", "critical")
DEFAULT_SEVERITIES: Final[Mapping[str, str]] = {
    KIND_RESTRICTED: "high",
    KIND_PII_WITHOUT_CONSENT: "high",
    KIND_SECRET: "critical",
    KIND_INJECTION: "high",
}
DEFAULT_RATE_PER_MINUTE: Final = 60.0

_LABEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
_MAX_ID: Final = 256
_TRUE: Final = frozenset({"true", "yes", "1", "on"})


# --------------------------------------------------------------------------- #
# The alert
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Alert:
    """One alert: what happened, how bad, and where to find the call. Never content."""

    kind: str
    severity: str
    summary: str
    timestamp: float  # seconds since the epoch
    request_id: str | None = None
    session_id: str | None = None
    enduser_id: str | None = None
    tenant: str | None = None
    feature: str | None = None
    provider: str | None = None
    model: str | None = None
    response_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    details: Mapping[str, str | int | float | bool | tuple[str, ...]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What de-duplication compares: the kind and the narrowest identifier known."""
        scope = self.session_id or self.enduser_id or self.request_id or self.tenant or ""
        return f"{self.kind}|{scope}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document (the webhook body's ``alert``)."""
        document: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "time": datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat(timespec="milliseconds"),
            "timestamp": self.timestamp,
        }
        for name in (
            "request_id",
            "session_id",
            "enduser_id",
            "tenant",
            "feature",
            "provider",
            "model",
            "response_id",
            "trace_id",
            "span_id",
        ):
            value = getattr(self, name)
            if value is not None:
                document[name] = value
        if self.details:
            document["details"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.details.items()}
        return document


# --------------------------------------------------------------------------- #
# The step
# --------------------------------------------------------------------------- #


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value > 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return False


def _ident(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text[:_MAX_ID] or None
    return None


def _label(value: object) -> str | None:
    """A short machine label (a PII type, a technique); anything else is refused."""
    if isinstance(value, str) and _LABEL.fullmatch(value):
        return value
    return None


def _labels(value: object) -> tuple[str, ...]:
    items: Iterable[object] = [value] if isinstance(value, str) else value if isinstance(value, Sequence) else []
    found = []
    for item in items:
        label = _label(item)
        found.append(label if label is not None else "other")
    return tuple(dict.fromkeys(found))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class AlertStep:
    """Processing step that raises alerts; see the module docstring for the rules.

    ``dispatcher`` receives the alerts (None: the record is only marked).
    ``consent_tracking`` says the application records consent on every call,
    so consent that is absent counts as not given. ``severities`` overrides the
    severity per kind; ``clock`` gives the alert timestamp.
    """

    reads_content_only = True

    def __init__(
        self,
        dispatcher: AlertDispatcher | None = None,
        *,
        consent_tracking: bool = False,
        severities: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dispatcher = dispatcher
        self.consent_tracking = consent_tracking
        self.severities = {**DEFAULT_SEVERITIES, **(severities or {})}
        for kind, severity in self.severities.items():
            if severity not in SEVERITIES:
                raise ValueError(f"severity {severity!r} for {kind!r}: expected one of {', '.join(SEVERITIES)}")
        self.clock = clock

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds) and stop the dispatcher."""
        if self.dispatcher is not None:
            self.dispatcher.close(timeout)

    def __call__(self, record: AuditRecord) -> None:
        alerts = self.evaluate(record)
        if not alerts:
            return
        existing = record.attributes.get(sc.AUDIT_ALERTS)
        kinds = [existing] if isinstance(existing, str) else list(existing) if isinstance(existing, Sequence) else []
        kinds.extend(alert.kind for alert in alerts)
        record.attributes[sc.AUDIT_ALERTS] = [str(kind) for kind in dict.fromkeys(kinds)]
        if self.dispatcher is not None:
            for alert in alerts:
                self.dispatcher.submit(alert)

    def evaluate(self, record: AuditRecord) -> list[Alert]:
        """The alerts this record raises (does not change the record)."""
        attrs = record.attributes
        raised: list[tuple[str, str, dict[str, Any]]] = []

        classification = attrs.get(sc.AUDIT_CLASSIFICATION)
        if isinstance(classification, str) and classification.strip().lower() == "restricted":
            raised.append(
                (KIND_RESTRICTED, "the call carried data classified restricted", {"classification": "restricted"})
            )

        pii_count = attrs.get(sc.AUDIT_PII_COUNT)
        counted = isinstance(pii_count, int) and not isinstance(pii_count, bool) and pii_count > 0
        if counted or _flag(attrs.get(sc.AUDIT_PII_DETECTED)):
            consent = consent_state(attrs.get(sc.AUDIT_CONSENT))
            if consent is False or (consent is None and self.consent_tracking):
                types = _labels(attrs.get(sc.AUDIT_PII_TYPES))
                details: dict[str, Any] = {"consent": "denied" if consent is False else "absent"}
                if types:
                    details["pii_types"] = types
                if isinstance(pii_count, int) and not isinstance(pii_count, bool):
                    details["pii_count"] = pii_count
                what = f" ({', '.join(types)})" if types else ""
                state = "denied" if consent is False else "not recorded"
                raised.append(
                    (KIND_PII_WITHOUT_CONSENT, f"personal data{what} sent to the model; consent {state}", details)
                )

        if _flag(attrs.get(sc.AUDIT_SECRETS_DETECTED)):
            raised.append((KIND_SECRET, "secrets detected in the call", {}))

        if _flag(attrs.get(sc.AUDIT_INJECTION_DETECTED)):
            details = {}
            technique = _label(attrs.get(sc.AUDIT_INJECTION_TECHNIQUE))
            source = _label(attrs.get(sc.AUDIT_INJECTION_SOURCE))
            score = _number(attrs.get(sc.AUDIT_INJECTION_SCORE))
            if technique:
                details["technique"] = technique
            if source:
                details["source"] = source
            if score is not None:
                details["score"] = round(score, 4)
            parts = [f"technique {technique}" if technique else "", f"score {score:.2f}" if score is not None else ""]
            extra = ", ".join(part for part in parts if part)
            raised.append((KIND_INJECTION, "prompt injection detected" + (f" ({extra})" if extra else ""), details))

        if not raised:
            return []
        now = self.clock()
        correlation = {
            "request_id": _ident(attrs.get(sc.AUDIT_REQUEST_ID)),
            "session_id": _ident(attrs.get(sc.SESSION_ID)),
            "enduser_id": _ident(attrs.get(sc.ENDUSER_ID)),
            "tenant": _ident(attrs.get(sc.AUDIT_TENANT)),
            "feature": _ident(attrs.get(sc.AUDIT_FEATURE)),
            "provider": _ident(attrs.get(sc.PROVIDER_NAME)),
            "model": _ident(attrs.get(sc.RESPONSE_MODEL)) or _ident(attrs.get(sc.REQUEST_MODEL)),
            "response_id": _ident(attrs.get(sc.RESPONSE_ID)),
            "trace_id": _ident(record.trace_id or attrs.get(sc.AUDIT_TRACE_ID)),
            "span_id": _ident(record.span_id or attrs.get(sc.AUDIT_SPAN_ID)),
        }
        return [
            Alert(
                kind=kind,
                severity=self.severities[kind],
                summary=summary,
                timestamp=now,
                details=details,
                **correlation,
            )
            for kind, summary, details in raised
        ]


# --------------------------------------------------------------------------- #
# Sinks
# --------------------------------------------------------------------------- #


class AlertSink(Protocol):
    """Where alerts go. ``send`` runs on the dispatcher's thread and raises on failure."""

    @property
    def name(self) -> str: ...

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class CallbackSink:
    """Calls ``fn(alert)`` on the dispatcher's thread."""

    def __init__(self, fn: Callable[[Alert], object], name: str = "callback") -> None:
        self.fn = fn
        self.name = name

    def send(self, alert: Alert) -> None:
        self.fn(alert)

    def close(self) -> None:
        pass


_LEVELS: Final[Mapping[str, int]] = {
    "low": logging.INFO,
    "medium": logging.WARNING,
    "high": logging.WARNING,
    "critical": logging.ERROR,
}


class LogSink:
    """Logs each alert on the ``genai_audit.alerts`` logger (the document in ``extra['genai_audit_alert']``)."""

    def __init__(self, logger: logging.Logger | None = None, name: str = "log") -> None:
        self.logger = logger or logging.getLogger(ALERT_LOGGER)
        self.name = name

    def send(self, alert: Alert) -> None:
        document = alert.to_dict()
        self.logger.log(
            _LEVELS.get(alert.severity, logging.WARNING),
            "genai-audit alert %s (%s): %s %s",
            alert.kind,
            alert.severity,
            alert.summary,
            json.dumps({k: v for k, v in document.items() if k not in {"kind", "severity", "summary"}}, sort_keys=True),
            extra={"genai_audit_alert": document},
        )

    def close(self) -> None:
        pass


class WebhookError(Exception):
    """A webhook delivery failed (after its retries)."""


RETRY_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a GET without the body: treat it as a failure."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        return None


def _check_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"webhook URL must be http:// or https:// with a host, got scheme {parts.scheme!r}")
    return parts


class WebhookSink:
    """POSTs each alert as JSON (``{"source": "genai-audit", "alert": {...}}``) with ``urllib``.

    Connection failures, timeouts and HTTP 408/425/429/5xx are retried
    ``retries`` times with exponential backoff (``backoff`` seconds doubled per
    attempt, capped at ``max_backoff``, honouring ``Retry-After``) and jitter
    (each wait is between half and all of its nominal length). Other statuses
    and redirects fail at once. The URL is never logged: it often holds a
    token; the sink's ``name`` shows the host only.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        name: str | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        parts = _check_url(url)
        if timeout <= 0 or retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("timeout must be positive; retries, backoff and max_backoff non-negative")
        self.url = url
        self.headers = {"Content-Type": "application/json", "User-Agent": "genai-audit-alerts", **(headers or {})}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.name = name or f"webhook:{parts.hostname}"
        self._sleep = sleep
        self._rng = rng
        self._stop = threading.Event()
        self._opener = urllib.request.build_opener(_NoRedirect)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``attempt`` (1-based)."""
        nominal = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        wait = nominal / 2 + self._rng() * nominal / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff))
        return wait

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop.wait(seconds):
            raise WebhookError(f"{self.name}: closed while waiting to retry")

    def send(self, alert: Alert) -> None:
        body = json.dumps({"source": "genai-audit", "alert": alert.to_dict()}).encode("utf-8")
        problem = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._wait(self.delay(attempt, retry_after))
            if self._stop.is_set():
                raise WebhookError(f"{self.name}: closed")
            retry_after = None
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read(65536)
                return
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = _retry_after(exc.headers)
                exc.close()
                problem = f"HTTP {status}"
                if status not in RETRY_STATUSES:
                    break
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, timeout...
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                problem = type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
        attempts = attempt + 1
        raise WebhookError(f"{self.name}: {problem} after {attempts} attempt{'s' if attempts > 1 else ''}")

    def close(self) -> None:
        self._stop.set()

    def after_fork(self) -> None:
        self._stop = threading.Event()


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# --------------------------------------------------------------------------- #
# The dispatcher
# --------------------------------------------------------------------------- #


class TokenBucket:
    """``rate_per_minute`` tokens a minute, up to ``burst`` saved; not thread-safe (one worker uses it)."""

    def __init__(self, rate_per_minute: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = burst
        self.tokens = burst
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class AlertStats:
    """Counters. ``delivered``, ``failed`` and ``rate_limited`` count (alert, sink) pairs;
    ``dropped`` (queue full, closed) and ``deduplicated`` count alerts."""

    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    deduplicated: int = 0
    rate_limited: int = 0


_STOP: Final = object()
_DISPATCHERS: weakref.WeakSet[AlertDispatcher] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for dispatcher in list(_DISPATCHERS):
        dispatcher._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def _close_at_exit(ref: weakref.ReferenceType[AlertDispatcher], timeout: float) -> None:
    dispatcher = ref()
    if dispatcher is not None:
        dispatcher.close(timeout)


class AlertDispatcher:
    """Delivers alerts to sinks on a background thread; see the module docstring.

    ``queue_size`` bounds the alerts waiting; ``dedup_window`` (seconds, 0 off)
    suppresses an alert whose :attr:`Alert.key` was accepted less than that
    long ago; ``rate_per_minute`` (None: unlimited) and ``burst`` (default: a
    minute's worth) shape each sink's token bucket. ``clock`` (monotonic
    seconds) drives both. ``close_at_exit`` flushes for up to that many
    seconds when the interpreter exits (None: no exit hook).
    """

    def __init__(
        self,
        sinks: Iterable[AlertSink],
        *,
        queue_size: int = 1000,
        dedup_window: float = 300.0,
        rate_per_minute: float | None = DEFAULT_RATE_PER_MINUTE,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        close_at_exit: float | None = 2.0,
    ) -> None:
        self.sinks: tuple[AlertSink, ...] = tuple(sinks)
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if rate_per_minute is not None and rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive (None for no limit)")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.queue_size = queue_size
        self.dedup_window = dedup_window
        self.rate_per_minute = rate_per_minute
        self.burst = burst if burst is not None else max(1.0, rate_per_minute or 1.0)
        self.clock = clock
        self._closed = False
        self._abandon = False
        self._reset()
        _DISPATCHERS.add(self)
        if close_at_exit is not None:
            atexit.register(_close_at_exit, weakref.ref(self), close_at_exit)

    def _reset(self) -> None:
        """Fresh per-process state: locks, queue, worker, counters, buckets."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.Queue[object] = queue.Queue(self.queue_size)
        self._pending = 0
        self._worker: threading.Thread | None = None
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._counts: Counter[str] = Counter()
        self._sink_counts: dict[str, Counter[str]] = {sink.name: Counter() for sink in self.sinks}
        self._buckets: list[TokenBucket | None] = [
            TokenBucket(self.rate_per_minute, self.burst, self.clock) if self.rate_per_minute else None
            for _ in self.sinks
        ]

    def _after_fork(self) -> None:
        # The worker thread does not exist in the child and the locks may have
        # been held when the process forked: start over; the worker comes back
        # on the next submit. Alerts queued in the parent stay the parent's.
        self._reset()
        for sink in self.sinks:
            hook = getattr(sink, "after_fork", None)
            if callable(hook):
                hook()

    # -- request path -------------------------------------------------------------
    def submit(self, alert: Alert) -> bool:
        """Queue ``alert`` for delivery; never blocks. False when de-duplicated or dropped."""
        if os.getpid() != self._pid:  # forked without the at-fork hook (should not happen)
            self._after_fork()
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return False
            now = self.clock()
            key = alert.key
            if self.dedup_window > 0:
                while self._seen:
                    oldest_key, oldest = next(iter(self._seen.items()))
                    if now - oldest < self.dedup_window and len(self._seen) <= 10_000:
                        break
                    del self._seen[oldest_key]
                if key in self._seen:
                    self._counts["deduplicated"] += 1
                    return False
            try:
                self._start_worker()
                self._queue.put_nowait(alert)
            except (queue.Full, RuntimeError):  # RuntimeError: no new threads at interpreter exit
                self._counts["dropped"] += 1
                return False
            if self.dedup_window > 0:
                self._seen[key] = now
            self._pending += 1
            return True

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            worker = threading.Thread(target=self._run, args=(self._queue,), name="genai-audit-alerts", daemon=True)
            worker.start()
            self._worker = worker

    # -- worker ---------------------------------------------------------------------
    def _run(self, inbox: queue.Queue[object]) -> None:
        while True:
            item = inbox.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, Alert):
                    self._deliver(item)
            finally:
                with self._lock:
                    if inbox is self._queue:
                        self._pending -= 1
                        if self._pending == 0:
                            self._idle.notify_all()

    def _count(self, sink: AlertSink, what: str) -> None:
        with self._lock:
            self._counts[what] += 1
            self._sink_counts.setdefault(sink.name, Counter())[what] += 1

    def _deliver(self, alert: Alert) -> None:
        if self._abandon:
            with self._lock:
                self._counts["dropped"] += 1
            return
        for sink, bucket in zip(self.sinks, self._buckets):
            if bucket is not None and not bucket.take():
                self._count(sink, "rate_limited")
                continue
            try:
                sink.send(alert)
            except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the worker
                self._count(sink, "failed")
                logger.warning("genai-audit: alert %s to %s failed: %s", alert.kind, sink.name, exc)
            else:
                self._count(sink, "delivered")

    # -- control --------------------------------------------------------------------
    def stats(self) -> AlertStats:
        with self._lock:
            return AlertStats(**{name: self._counts[name] for name in AlertStats.__dataclass_fields__})

    def sink_stats(self) -> dict[str, AlertStats]:
        with self._lock:
            return {
                name: AlertStats(**{key: counts[key] for key in AlertStats.__dataclass_fields__})
                for name, counts in self._sink_counts.items()
            }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert has been handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting alerts, deliver what is queued (up to ``timeout`` seconds), stop the worker.

        Alerts still queued after the timeout are counted as dropped. True when all were handled.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
        flushed = self.flush(timeout)
        if not flushed:
            self._abandon = True
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # closing is best effort
                logger.debug("genai-audit: closing alert sink %s failed", sink.name, exc_info=True)
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        return flushed


# --------------------------------------------------------------------------- #
# Configuration from the environment
# --------------------------------------------------------------------------- #


def dispatcher_from_env(env: Mapping[str, str] | None = None) -> AlertDispatcher | None:
    """A dispatcher for ``GENAI_AUDIT_ALERT_WEBHOOK`` / ``GENAI_AUDIT_ALERT_LOG``; None when neither is set.

    ``GENAI_AUDIT_ALERT_RATE`` is the per-sink limit in alerts per minute
    (default 60). Raises :class:`ConfigError` naming the variable on a bad value.
    """
    env = os.environ if env is None else env
    raw_rate = env.get(sc.ENV_ALERT_RATE)
    rate = DEFAULT_RATE_PER_MINUTE
    if raw_rate is not None and raw_rate.strip():
        try:
            rate = float(raw_rate.strip())
        except ValueError:
            raise ConfigError(f"{sc.ENV_ALERT_RATE}={raw_rate!r}: expected a number of alerts per minute") from None
        if not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"{sc.ENV_ALERT_RATE}={raw_rate!r}: must be a positive number of alerts per minute")
    sinks: list[AlertSink] = []
    url = env.get(sc.ENV_ALERT_WEBHOOK, "").strip()
    if url:
        try:
            sinks.append(WebhookSink(url))
        except ConfigError as exc:
            raise ConfigError(f"{sc.ENV_ALERT_WEBHOOK}: {exc}") from None
    if parse_bool(sc.ENV_ALERT_LOG, env.get(sc.ENV_ALERT_LOG), False):
        sinks.append(LogSink())
    if not sinks:
        return None
    return AlertDispatcher(sinks, rate_per_minute=rate)
