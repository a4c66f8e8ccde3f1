"""Building the audit pipeline from settings: provider, processors, store, instrumentation.

:func:`configure` is what every enablement path calls — the
``GENAI_AUDIT_ENABLED`` start-up hook, the ``opentelemetry-instrument``
configurator, and applications that call it themselves. It is idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from genai_audit import semconv as sc
from genai_audit.config import ConfigError, Settings, is_remote, store_path
from genai_audit.processors.chain import ProcessingChain, set_default_chain

logger = logging.getLogger("genai_audit")

_lock = threading.Lock()
_pipeline: Pipeline | None = None
OUR_SCOPE_PREFIX = "genai_audit."


class GenAISpanFilter(SpanProcessor):
    """Forwards only LLM spans (those with ``gen_ai.operation.name``), one per model call.

    The audit store keeps model calls, not every HTTP or database span an
    application's other instrumentation produces. A GenAI span started inside
    one of ours (an SDK's own tracing of the same call, as recent ``anthropic``
    versions emit) describes the same call and is not stored twice.
    """

    def __init__(self, next_processor: SpanProcessor) -> None:
        self.next = next_processor
        self._ours: set[int] = set()
        self._nested: set[int] = set()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = span.instrumentation_scope
        context = span.get_span_context()
        with self._lock:
            if scope is not None and scope.name.startswith(OUR_SCOPE_PREFIX):
                self._ours.add(context.span_id)
            elif span.parent is not None and span.parent.span_id in self._ours:
                self._nested.add(context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        span_id = span.context.span_id if span.context is not None else 0
        with self._lock:
            self._ours.discard(span_id)
            if span_id in self._nested:
                self._nested.discard(span_id)
                return
        if span.attributes and sc.OPERATION_NAME in span.attributes:
            self.next.on_end(span)

    def shutdown(self) -> None:
        self.next.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.next.force_flush(timeout_millis)


def store_exporter(settings: Settings) -> SpanExporter:
    """The embedded SQLite store's exporter (``GENAI_AUDIT_STORE`` names the file)."""
    from genai_audit.store.sqlite import SqliteSpanExporter, StoreError

    path = store_path(settings.store, env={})
    try:
        return SqliteSpanExporter(path)
    except StoreError as exc:
        raise ConfigError(f"{sc.ENV_STORE}: {exc}") from None


def remote_processor(url: str, env: Mapping[str, str] | None = None) -> SpanProcessor:
    """Elasticsearch behind the durable spool: accepted spans survive outages, crashes and restarts."""
    import hashlib
    import json
    import os

    from genai_audit.config import parse_int, spool_dir
    from genai_audit.integrity import Sealer, elasticsearch_store_name, entries_of
    from genai_audit.store.elasticsearch import AuditDocument, ElasticsearchSpanExporter, RawJson, span_documents
    from genai_audit.store.pipeline_status import PipelineCounters, PipelineStatusReporter
    from genai_audit.store.spool import Spool, SpooledDocument, SpoolError, SpoolingSpanProcessor

    env = os.environ if env is None else env
    exporter = ElasticsearchSpanExporter(url, env=env, integrity=False)  # documents are sealed before the spool
    quota_mb = parse_int(sc.ENV_SPOOL_QUOTA_MB, env.get(sc.ENV_SPOOL_QUOTA_MB), 1024, 1)
    name = hashlib.sha256(f"{url}\x00{exporter.namespace}".encode()).hexdigest()[:16]
    try:
        spool = Spool(spool_dir(env) / f"{name}.db", quota_bytes=quota_mb * 1024 * 1024)
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None
    namespace = exporter.namespace
    # tamper evidence: each span document is hashed and ledgered before its spool commit
    sealer = Sealer.from_env(elasticsearch_store_name(namespace), env)

    # the pipeline's own losses and backlog, as status documents an alert rule can query
    status = PipelineStatusReporter(namespace, exporter.create_once)
    processors: list[SpoolingSpanProcessor] = []  # the processor below, once built

    def counters(in_flight: int) -> PipelineCounters:
        stats = processors[0].stats
        return PipelineCounters(
            dropped=stats.dropped,
            refused=stats.refused,
            dead_lettered=exporter.dead_lettered,
            spool_pending=max(0, spool.pending() - in_flight),  # the batch delivered leaves the spool next
            spool_bytes=spool.size_bytes(),
            spool_quota_bytes=spool.quota_bytes,
        )

    def deliver(docs: list[SpooledDocument]) -> Any:
        # the spooled JSON goes to the bulk request as it is: no decoding and encoding again
        report = exporter.export_documents(AuditDocument(d.index, d.id, RawJson(d.source)) for d in docs)
        rejected = [
            json.loads(str(r.document.source)) for r in report.dead_lettered if r.document.index.startswith("traces-")
        ]
        sealer.unstored(entries_of(rejected))  # kept in the dead-letter file, never in the store
        if processors and report.delivered:
            try:
                status.observe(lambda: counters(len(docs)))
            except Exception:  # reporting never stops delivery
                logger.debug("pipeline status failed", exc_info=True)
        return report

    def to_documents(spans: Sequence[ReadableSpan]) -> list[AuditDocument]:
        # span documents leave the sealer as the JSON text it hashed (the spool keeps them as they are)
        return sealer.seal_documents(
            span_documents(spans, namespace), encode=lambda d, text: AuditDocument(d.index, d.id, RawJson(text))
        )

    def sealed_spans(docs: Sequence[Any]) -> list[Any]:
        return [
            json.loads(d.source) if isinstance(d.source, str) else d.source
            for d in docs
            if d.index.startswith("traces-")
        ]

    processor = SpoolingSpanProcessor(
        spool,
        to_documents,
        deliver,
        on_refused=lambda docs: sealer.unstored(entries_of(sealed_spans(docs))),
        on_flushed=sealer.checkpoint,
        on_shutdown=exporter.shutdown,
        raw_bodies=True,
    )
    processors.append(processor)
    return processor


@dataclass
class Pipeline:
    """What :func:`configure` set up; :meth:`shutdown` flushes and closes it."""

    settings: Settings
    tracer_provider: TracerProvider
    processors: list[SpanProcessor] = field(default_factory=list)
    instrumentors: list[Any] = field(default_factory=list)
    owns_provider: bool = False
    chain: ProcessingChain | None = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)

    def shutdown(self) -> None:
        for instrumentor in self.instrumentors:
            try:
                instrumentor.uninstrument()
            except Exception:
                logger.debug("uninstrument failed", exc_info=True)
        if self.owns_provider:
            self.tracer_provider.shutdown()
        else:
            for processor in self.processors:
                processor.shutdown()
        if self.chain is not None:
            self.chain.close()


def _instrument_when_imported(name: str, point: EntryPoint, pipeline: Pipeline) -> None:
    """Instrument the module ``name`` as soon as the application imports it (now, if it already has)."""
    import wrapt

    def hook(_module: Any) -> None:
        try:
            instrumentor = point.load()()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=pipeline.tracer_provider, settings=pipeline.settings)
                pipeline.instrumentors.append(instrumentor)
        except Exception:
            logger.warning("genai-audit: could not instrument %s", name, exc_info=True)

    wrapt.register_post_import_hook(hook, name)


def configure(
    settings: Settings | None = None,
    *,
    chain: ProcessingChain | None = None,
    exporters: Sequence[SpanExporter] = (),
    instrument: bool = True,
) -> Pipeline:
    """Set up the audit pipeline once per process; later calls return the same pipeline.

    ``exporters`` replace the store named by ``GENAI_AUDIT_STORE``. Raises
    :class:`~genai_audit.config.ConfigError` on bad settings.
    """
    global _pipeline
    with _lock:
        if _pipeline is not None:
            return _pipeline
        settings = settings or Settings.from_env()
        from genai_audit.processors.pipeline import build_chain, build_redaction_chain, build_redactor
        from genai_audit.processors.policy import load_policy
        from genai_audit.processors.span_processor import AuditSpanProcessor

        policy = load_policy()
        redactor = build_redactor(policy) if policy.redaction else None  # one for both chains
        if chain is None:
            chain = build_chain(policy, redactor=redactor)
        redaction_chain = build_redaction_chain(policy, redactor=redactor)
        set_default_chain(chain)
        target_store = store_path(settings.store, env={}, allow_remote=True)
        if exporters:
            targets: list[SpanProcessor] = [_batch(e, settings) for e in exporters]
        elif is_remote(target_store):
            targets = [remote_processor(target_store)]
        else:
            targets = [_batch(store_exporter(settings), settings)]
        current = trace.get_tracer_provider()
        owns = not isinstance(current, TracerProvider)
        provider = TracerProvider(resource=Resource.create(_resource(settings))) if owns else cast(
            TracerProvider, current
        )
        pipeline = Pipeline(settings, provider, owns_provider=owns, chain=chain)
        for target in targets:
            # Spans of other instrumentations pass the audit chain too; ours already have.
            processor = GenAISpanFilter(AuditSpanProcessor(target, chain=chain, redaction_chain=redaction_chain))
            provider.add_span_processor(processor)
            pipeline.processors.append(processor)
        if owns:
            trace.set_tracer_provider(provider)
        if settings.propagate_threads:
            from genai_audit import threads

            threads.install()
        if instrument:
            from genai_audit.instrumentation.registry import installed

            points = installed()
            for name in settings.instrument if settings.instrument is not None else sorted(points):
                if name in points:
                    _instrument_when_imported(name, points[name], pipeline)
        _pipeline = pipeline
        return pipeline


#: The SDK's batch queue drops spans when full (2048 by default); LLM calls are far rarer than that
#: per batch delay, and a larger queue only costs memory when a burst actually fills it.
BATCH_QUEUE_SIZE = 65536


def _batch(exporter: SpanExporter, settings: Settings) -> BatchSpanProcessor:
    return BatchSpanProcessor(
        exporter, max_queue_size=BATCH_QUEUE_SIZE, schedule_delay_millis=settings.export_delay_ms
    )


def _resource(settings: Settings) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if settings.environment:
        attributes[sc.DEPLOYMENT_ENVIRONMENT] = settings.environment
    return attributes


def shutdown() -> None:
    """Flush and close the pipeline :func:`configure` built (no-op when none)."""
    global _pipeline
    with _lock:
        pipeline, _pipeline = _pipeline, None
    if pipeline is not None:
        pipeline.shutdown()


def current_pipeline() -> Pipeline | None:
    return _pipeline
