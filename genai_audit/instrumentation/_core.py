"""What every wrapped LLM call shares: the span lifecycle, metrics, and the error boundary.

Two error boundaries, everywhere:

* the client's own exceptions are recorded on the span and re-raised untouched;
* exceptions raised by *our* code are logged at debug level, counted, and never
  reach the application (:func:`swallowed`, :func:`guarded`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation, get_meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from genai_audit import __version__, audit_context
from genai_audit import semconv as sc
from genai_audit.config import Settings
from genai_audit.content import content_attributes
from genai_audit.processors.chain import WITHHELD, AuditRecord, ProcessingChain, default_chain

logger = logging.getLogger("genai_audit.instrumentation")
SCHEMA_URL = f"https://opentelemetry.io/schemas/{sc.SEMCONV_VERSION}"

_errors_lock = threading.Lock()
_internal_errors = 0


def internal_errors() -> int:
    """How many exceptions inside genai-audit were swallowed to protect the application."""
    return _internal_errors


def swallowed(what: str) -> None:
    """Count and log (at debug) the exception of ours being handled; call it from an ``except`` block."""
    global _internal_errors
    with _errors_lock:
        _internal_errors += 1
    logger.debug("genai-audit: %s failed; the application is unaffected", what, exc_info=True)


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run our own code; log and swallow anything it raises."""
    try:
        yield
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed(what)


_IN_CALL = otel_context.create_key("genai_audit.in_llm_call")


def _suppression_keys() -> tuple[str, ...] | None:
    """The context keys ``is_instrumentation_enabled`` reads, when this version names them where expected."""
    try:
        from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
        from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY_PLAIN
    except ImportError:
        return None
    keys = (_SUPPRESS_INSTRUMENTATION_KEY, _SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
    if not all(isinstance(key, str) for key in keys):
        return None
    # the keys are only used when setting them switches instrumentation off, as they are read here
    probe = otel_context.get_current()
    for key in keys:
        token = otel_context.attach(otel_context.set_value(key, True, probe))
        try:
            if is_instrumentation_enabled():
                return None
        finally:
            otel_context.detach(token)
    return keys


_SUPPRESSION_KEYS = _suppression_keys()


def _span_key() -> str | None:
    """The context key ``set_span_in_context`` stores the span under, when ``get_current_span`` reads it there."""
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY
    except ImportError:
        return None
    if not isinstance(_SPAN_KEY, str):
        return None
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    made = trace.set_span_in_context(probe, otel_context.Context())
    if made != {_SPAN_KEY: probe} or trace.get_current_span(otel_context.Context({_SPAN_KEY: probe})) is not probe:
        return None
    return _SPAN_KEY


_SPAN_KEY = _span_key()


def suppressed() -> bool:
    """True when this call must not be traced.

    Either instrumentation is switched off for this context (as inside an
    exporter), or we are already inside an instrumented call (an SDK helper
    calling another wrapped method), which keeps it to one span per call.
    The current context is read once, for all three keys.
    """
    keys = _SUPPRESSION_KEYS
    if keys is None:
        return not is_instrumentation_enabled() or otel_context.get_value(_IN_CALL) is True
    values = otel_context.get_current()
    return values.get(_IN_CALL) is True or bool(values.get(keys[0]) or values.get(keys[1]))


def _histogram(meter: Meter, name: str, unit: str, description: str, buckets: tuple[float, ...]) -> Histogram:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
        )
    except TypeError:  # API older than 1.23 has no advisory parameter
        return meter.create_histogram(name, unit=unit, description=description)


#: a finished call's metric points: (the context to record them in, [(histogram, value, attributes), ...])
PendingPoints = tuple[otel_context.Context, list[tuple[Histogram, float, dict[str, Any]]]]
#: the metric points of finished calls, not recorded yet (see :func:`flush_metrics`)
_PENDING: deque[PendingPoints] = deque()


def flush_metrics() -> None:
    """Record the pending metric points of every finished call now.

    Finished calls' points are recorded in batches of ``GENAI_AUDIT_METRIC_BATCH`` calls: the
    SDK's recording path costs about half as much when it runs several times in a row as when
    it runs once between two model calls. This runs when a batch is full, before every
    collection of a meter provider instrumented with (:func:`_flush_for_collection`), on
    ``uninstrument()`` and at exit. Any thread may call it: each call's points are taken by one.
    """
    take = _PENDING.popleft
    while True:
        try:
            context, points = take()
        except IndexError:
            return
        for histogram, value, attributes in points:
            try:
                histogram.record(value, attributes, context)
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("recording a metric point")


def _flush_for_collection(options: CallbackOptions) -> Iterable[Observation]:
    """The callback of the instrument that reports nothing: a collection sees every finished call."""
    flush_metrics()
    return ()


atexit.register(flush_metrics)
if hasattr(os, "register_at_fork"):
    # a child's copies of the parent's pending points are the parent's to record
    os.register_at_fork(after_in_child=_PENDING.clear)


class Telemetry:
    """Tracer, metric instruments, settings and processing chain of one instrumentor."""

    @property
    def chain(self) -> ProcessingChain:
        """The chain given at instrumentation, else the process-wide default (read per call)."""
        return self._chain if self._chain is not None else default_chain()

    def __init__(
        self,
        scope: str,
        settings: Settings,
        chain: ProcessingChain | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.settings = settings
        self._chain = chain
        self.tracer = trace.get_tracer(scope, __version__, tracer_provider, schema_url=SCHEMA_URL)
        meter = get_meter(scope, __version__, meter_provider, schema_url=SCHEMA_URL)
        self.token_usage = _histogram(
            meter, sc.METRIC_TOKEN_USAGE, "{token}", "Number of input and output tokens used", sc.TOKEN_BUCKETS
        )
        self.duration = _histogram(
            meter, sc.METRIC_OPERATION_DURATION, "s", "GenAI operation duration", sc.DURATION_BUCKETS
        )
        self.time_to_first_chunk = _histogram(
            meter,
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            "s",
            "Time to receive the first chunk of a stream",
            sc.DURATION_BUCKETS,
        )
        #: a point per stream chunk after the first, when switched on (GENAI_AUDIT_CHUNK_METRIC)
        self.time_per_output_chunk: Histogram | None = None
        if settings.chunk_metric:
            self.time_per_output_chunk = _histogram(
                meter,
                sc.METRIC_TIME_PER_OUTPUT_CHUNK,
                "s",
                "Time per output chunk, from the end of the previous chunk to the end of this one",
                sc.DURATION_BUCKETS,
            )
        #: calls whose metric points are recorded together; 1 when this meter cannot be told to
        #: record the pending points before a collection
        self.metric_batch = settings.metric_batch
        if self.metric_batch > 1:
            try:
                meter.create_observable_gauge(
                    sc.METRIC_POINTS_FLUSH,
                    callbacks=[_flush_for_collection],
                    description="Reports nothing; records genai-audit's pending metric points before a collection",
                )
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("creating the metric flush instrument")
                self.metric_batch = 1


_METRIC_KEYS = (
    sc.OPERATION_NAME,
    sc.PROVIDER_NAME,
    sc.REQUEST_MODEL,
    sc.RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)
_TOKEN_TYPES = ((sc.USAGE_INPUT_TOKENS, "input"), (sc.USAGE_OUTPUT_TOKENS, "output"))
#: metric attribute sets already made, by the values they hold (bounded: cleared when full)
_METRIC_SETS: dict[tuple[Any, ...], tuple[dict[str, Any], ...]] = {}
_METRIC_SETS_MAX = 1024


_MISSING = object()


class LLMCall:
    """One in-flight model call: its span, timings, and what it will record.

    :meth:`end` is idempotent and thread-safe, so a stream can be finished from
    iteration, ``close()``, a context exit or the garbage collector, and the
    span still ends exactly once.
    """

    __slots__ = (
        "_initial",
        "_once",
        "accumulator",
        "attributes",
        "chunk_times",
        "content",
        "context",
        "first_chunk_at",
        "span",
        "started",
        "telemetry",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        start_attributes: Mapping[str, AttributeValue],
        content: Mapping[str, Any],
    ) -> None:
        """Start the span. A ``dict`` given as ``start_attributes`` or ``content`` becomes the call's own."""
        self.telemetry = telemetry
        attributes = start_attributes if type(start_attributes) is dict else dict(start_attributes)
        audit = audit_context.current()
        if audit:
            attributes.update(audit)
        model = attributes.get(sc.REQUEST_MODEL)
        name = f"{operation} {model}" if model else operation
        self.span: Span = telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        self.attributes: dict[str, AttributeValue] = attributes
        # what the span already holds: only what differs from it is set again at the end
        self._initial = attributes.copy()
        if telemetry.settings.capture_content:
            self.content: dict[str, Any] = content if type(content) is dict else dict(content)
        else:
            self.content = {}
        #: the stream accumulator, for a call that returned a stream
        self.accumulator: Any = None
        #: the context the client ran in (the span current in it), once attached: with a metric batch
        #: of 1 the points are recorded in it, so that the SDK's exemplar filter links them to the trace
        self.context: otel_context.Context | None = None
        self.started = time.perf_counter()
        self.first_chunk_at: float | None = None
        #: when each chunk a stream showed the application arrived, if chunk times are recorded
        self.chunk_times: list[float] | None = None
        # end() takes the one item: list.pop is atomic, so exactly one caller gets it,
        # whatever thread, finalizer or signal handler it runs in
        self._once = [True]

    # -- used by extractors ------------------------------------------------------
    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self.attributes[key] = value

    def set_content(self, key: str, value: Any) -> None:
        if self.telemetry.settings.capture_content and value:
            self.content[key] = value

    def mark_first_chunk(self) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()

    def attach(self) -> object | None:
        """Make the span current while the client runs (HTTP spans become children).

        Returns the token for :meth:`detach`, or None when that failed.
        """
        try:
            if _SPAN_KEY is not None:  # one new context instead of two, as the API would make them
                context = otel_context.Context({**otel_context.get_current(), _SPAN_KEY: self.span, _IN_CALL: True})
            else:
                context = otel_context.set_value(_IN_CALL, True, trace.set_span_in_context(self.span))
            self.context = context
            return otel_context.attach(context)
        except Exception:  # noqa: BLE001 - swallowed() counts and logs it
            swallowed("making the span current")
            return None

    @staticmethod
    def detach(token: object | None) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]  # the token attach() returned

    # -- ending --------------------------------------------------------------------
    def end(self, error: BaseException | None = None, completed: bool = False) -> None:
        """End the span, once; ``completed`` says whether a stream was read to its end."""
        try:
            self._once.pop()
        except IndexError:  # ended already
            return
        try:
            accumulator = self.accumulator
            if accumulator is not None:
                try:
                    self.attributes[sc.AUDIT_STREAM_COMPLETED] = completed
                    accumulator.finish(self)
                except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                    swallowed("finishing stream")
            try:
                self._finish(error)
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("finishing span")
        finally:
            try:
                self.span.end()
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("ending span")

    def _finish(self, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - self.started
        attributes = self.attributes
        telemetry = self.telemetry
        settings = telemetry.settings
        content = self.content
        failures: list[str] = []
        if error is not None:
            attributes[sc.ERROR_TYPE] = type(error).__qualname__
            status_code = getattr(error, "status_code", None)
            if isinstance(status_code, int):
                attributes["http.response.status_code"] = status_code
            content["exception.message"] = str(error)
        if self.first_chunk_at is not None:
            attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_at - self.started
        chain = telemetry.chain
        # a chain without steps changes nothing: not run (a subclass always is)
        if type(chain) is not ProcessingChain or chain.steps:
            record = AuditRecord(attributes=attributes, content=content)
            try:
                span_context = self.span.get_span_context()
                if span_context.is_valid:
                    record.trace_id = format(span_context.trace_id, "032x")
                    record.span_id = format(span_context.span_id, "016x")
                chain(record)
            except Exception:  # the chain itself broke, not one of its steps: fail closed all the same
                logger.warning("genai-audit: processing chain failed; content withheld", exc_info=True)
                record.content = dict.fromkeys(record.content, WITHHELD)
                record.failures.append("processing chain")
            content, failures = record.content, record.failures
        message = content.pop("exception.message", None) if error is not None else None
        if failures:
            attributes[sc.AUDIT_PROCESSING_FAILED] = failures
        attributes[sc.AUDIT_CONTENT_CAPTURED] = settings.capture_content
        initial = self._initial
        final: dict[str, AttributeValue] = {}
        if content:
            try:
                final = content_attributes(content, settings.max_content_chars)
            except Exception:  # noqa: BLE001 - swallowed() counts and logs it
                swallowed("content attributes")
        for key, value in attributes.items():
            if initial.get(key, _MISSING) is not value:
                final[key] = value
        self.span.set_attributes(final)
        if error is not None:
            self._record_error(error, message)
        self._record_metrics(elapsed, error)

    def _record_error(self, error: BaseException, message: Any) -> None:
        error_type = type(error).__qualname__
        text = message if isinstance(message, str) else error_type
        # The stack trace is recorded without the exception's message: the
        # message may quote prompt content and has been through the chain above.
        stack = "".join(traceback.format_tb(error.__traceback__)) + f"{type(error).__module__}.{error_type}"
        self.span.add_event(
            "exception",
            {
                "exception.type": f"{type(error).__module__}.{error_type}",
                "exception.message": text,
                "exception.stacktrace": stack,
            },
        )
        self.span.set_status(Status(StatusCode.ERROR, text))

    def _record_metrics(self, elapsed: float, error: BaseException | None) -> None:
        attributes = self.attributes
        get = attributes.get
        error_type = type(error).__qualname__ if error is not None else None
        # the metric attributes of a call, and of its two token points, made once per distinct set
        # (the SDK copies what it is given, so one dict serves every call)
        key = (
            get(sc.OPERATION_NAME),
            get(sc.PROVIDER_NAME),
            get(sc.REQUEST_MODEL),
            get(sc.RESPONSE_MODEL),
            get(sc.SERVER_ADDRESS),
            get(sc.SERVER_PORT),
            error_type,
        )
        sets = _METRIC_SETS.get(key)
        if sets is None:
            attrs = {name: value for name, value in zip(_METRIC_KEYS, key) if value is not None}
            if error_type is not None:
                attrs[sc.ERROR_TYPE] = error_type
            sets = (attrs, *({**attrs, sc.TOKEN_TYPE: token_type} for _, token_type in _TOKEN_TYPES))
            if len(_METRIC_SETS) >= _METRIC_SETS_MAX:
                _METRIC_SETS.clear()
            _METRIC_SETS[key] = sets
        telemetry = self.telemetry
        attrs = sets[0]
        points = [(telemetry.duration, elapsed, attrs)]
        if self.first_chunk_at is not None:
            points.append((telemetry.time_to_first_chunk, self.first_chunk_at - self.started, attrs))
        for (name, _), token_attrs in zip(_TOKEN_TYPES, sets[1:]):
            value = get(name)
            if isinstance(value, int):
                points.append((telemetry.token_usage, value, token_attrs))
        times = self.chunk_times
        per_chunk = telemetry.time_per_output_chunk
        if times is not None and per_chunk is not None:
            points.extend((per_chunk, at - before, attrs) for before, at in pairwise(times))
        # recorded in the call's span context, so that the SDK's exemplar filter (trace_based by default,
        # OTEL_METRICS_EXEMPLAR_FILTER) can link each point to the call's trace
        batch = telemetry.metric_batch
        if batch > 1:
            # a waiting call holds its span's ids, not the ended span and the content on it
            ids = trace.NonRecordingSpan(self.span.get_span_context())
            if _SPAN_KEY is not None:
                _PENDING.append((otel_context.Context({_SPAN_KEY: ids}), points))
            else:
                _PENDING.append((trace.set_span_in_context(ids, otel_context.Context()), points))
            if len(_PENDING) >= batch:
                flush_metrics()
            return
        context = self.context
        if context is None:  # not attached: the call failed before the client ran
            context = trace.set_span_in_context(self.span)
        for histogram, amount, point_attributes in points:
            histogram.record(amount, point_attributes, context)


Extractor = Callable[[LLMCall, Any], None]


def start_call(
    telemetry: Telemetry,
    operation: str,
    attributes: Mapping[str, AttributeValue],
    content: Mapping[str, Any],
) -> LLMCall | None:
    """Start a call's span, or return None (and log) if our code fails."""
    try:
        return LLMCall(telemetry, operation, attributes, content)
    except Exception:  # noqa: BLE001 - swallowed() counts and logs it
        swallowed("starting span")
        return None
