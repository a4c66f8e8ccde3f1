"""Worker for ``bench/overhead.py``: times one implementation in one process.

Run by the parent inside a peer's virtualenv, never imported by it::

    python bench/_overhead_worker.py --impl openllmetry --mode stream --calls 3000

It builds an ``openai.OpenAI`` client whose HTTP layer is an in-process mock
transport (``httpx2.MockTransport`` for openai 3.x, ``httpx.MockTransport``
for openai < 3), so no socket, no network and no server thread is involved.
It first times the *bare* client, then instruments (``--impl``), builds a new
client and times the same calls again.  Overhead = instrumented - bare, both
measured in this one process.  ``--impl bare`` runs the bare phase twice (an
A/A run) so its "overhead" is the noise floor of the method.  ``--rounds``
then times bare and instrumented batches in turn; with ``--reps 0`` the two
phases are only warm-ups and the rounds are all that is timed.

All telemetry goes to real SDK providers: a ``TracerProvider`` with a
``SimpleSpanProcessor`` around an exporter that counts and drops spans, a
``MeterProvider`` with an ``InMemoryMetricReader`` and a ``LoggerProvider``
with a ``SimpleLogRecordProcessor`` around a counting, dropping exporter.  They
are also installed as the global providers (OpenLIT only uses globals).

The only line written to stdout is one JSON object; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

IMPLS = ("bare", "ours", "openllmetry", "otel-official", "openlit")
MODES = ("nonstream", "stream")

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
PROMPT_TOKENS = 287
COMPLETION_TOKENS = 241
SYS_MARKER = "BENCHSYSMARKER7731"
ANSWER_MARKER = "BENCHANSWERMARKER4219"
STREAM_CHUNKS = 30

SYSTEM_PROMPT = (
    f"You are a careful assistant for the accounts-payable team ({SYS_MARKER}). "
    "Answer only from the documents the user pastes, quote invoice numbers exactly, "
    "never invent amounts, and say plainly when a document does not contain the answer. "
    "Keep answers under two hundred words and use short bullet lists where that helps."
)
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {
        "role": "user",
        "content": (
            "Here is invoice INV-2024-0831 from Northwind Traders: 40 units of part "
            "NW-118 at 12.50 EUR, 12 units of NW-204 at 48.00 EUR, freight 35.00 EUR, "
            "VAT 19 percent, payment terms net 30 from 2024-08-31. Which lines are "
            "subject to VAT and what is the total due?"
        ),
    },
    {
        "role": "assistant",
        "content": (
            "All three lines are subject to VAT. Net total is 1,111.00 EUR, VAT is "
            "211.09 EUR, so 1,322.09 EUR is due by 2024-09-30."
        ),
    },
    {
        "role": "user",
        "content": (
            "Thanks. The purchase order PO-5512 allowed only 10 units of NW-204. "
            "Draft a short note to the supplier about the difference and what we will pay now."
        ),
    },
]
REQUEST: dict[str, Any] = {
    "model": MODEL,
    "messages": MESSAGES,
    "temperature": 0.2,
    "max_tokens": 512,
}

ANSWER = (
    f"Here is a draft note to Northwind Traders ({ANSWER_MARKER}):\n\n"
    "Subject: Invoice INV-2024-0831 - quantity difference on NW-204\n\n"
    "Dear Northwind Traders team,\n\n"
    "Thank you for invoice INV-2024-0831 dated 2024-08-31. While matching it against "
    "our purchase order PO-5512 we found a difference on part NW-204: the order "
    "authorised 10 units, but the invoice bills 12 units at 48.00 EUR each.\n\n"
    "- Lines we accept now: 40 units of NW-118 (500.00 EUR), 10 units of NW-204 "
    "(480.00 EUR) and freight (35.00 EUR), net 1,015.00 EUR plus 19 percent VAT of "
    "192.85 EUR, in total 1,207.85 EUR.\n"
    "- Lines on hold: the 2 additional units of NW-204 (96.00 EUR net, 114.24 EUR "
    "gross) until we receive either an amended purchase order from our buyer or a "
    "credit note from you.\n\n"
    "We will pay 1,207.85 EUR within the agreed terms, by 2024-09-30. Please send a "
    "corrected invoice or a credit note for the difference, or let us know if the "
    "extra units were delivered at our buyer's request so we can raise the order.\n\n"
    "Kind regards,\nAccounts Payable"
)


# --------------------------------------------------------------------------
# canned responses
# --------------------------------------------------------------------------


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body() -> bytes:
    body = {
        "id": "chatcmpl-BENCH0000000000000000000001",
        "object": "chat.completion",
        "created": 1731000000,
        "model": RESPONSE_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(),
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }
    return json.dumps(body).encode()


def stream_events(include_usage: bool) -> list[bytes]:
    """SSE events: role chunk, STREAM_CHUNKS content chunks, finish chunk, [usage], [DONE]."""
    base = {
        "id": "chatcmpl-BENCH0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": 1731000000,
        "model": RESPONSE_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }

    def event(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = dict(base, choices=choices)
        if include_usage:
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    step = -(-len(ANSWER) // STREAM_CHUNKS)
    pieces = [ANSWER[i : i + step] for i in range(0, len(ANSWER), step)]
    events = [
        event(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
    ]
    events += [event([{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}]) for p in pieces]
    events.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    if include_usage:
        events.append(event([], _usage()))
    events.append(b"data: [DONE]\n\n")
    return events


class Handler:
    """Mock-transport handler: canned JSON or SSE, plus what the requests looked like."""

    def __init__(self, http: Any) -> None:
        self.http = http
        self.json_body = completion_body()
        self.sse_plain = stream_events(include_usage=False)
        self.sse_usage = stream_events(include_usage=True)
        self.requests = 0
        self.with_traceparent = 0
        self.stream_usage_requested = 0
        self.extra_headers: set[str] = set()
        self.baseline_headers: set[str] | None = None

    def __call__(self, request: Any) -> Any:
        self.requests += 1
        headers = request.headers
        if "traceparent" in headers:
            self.with_traceparent += 1
        names = {k.lower() for k in headers}
        if self.baseline_headers is None:
            self.baseline_headers = names
        else:
            self.extra_headers |= names - self.baseline_headers
        payload = json.loads(request.content)
        common = {"x-request-id": "req_bench", "openai-processing-ms": "412", "openai-version": "2020-10-01"}
        if payload.get("stream"):
            opts = payload.get("stream_options") or {}
            with_usage = bool(opts.get("include_usage"))
            self.stream_usage_requested += with_usage
            events = self.sse_usage if with_usage else self.sse_plain
            return self.http.Response(
                200, headers={"content-type": "text/event-stream; charset=utf-8", **common}, content=iter(events)
            )
        return self.http.Response(200, headers={"content-type": "application/json", **common}, content=self.json_body)


def http_module() -> Any:
    """The HTTP package openai itself uses: httpx2 for openai 3.x, httpx before."""
    base_client = importlib.import_module("openai._base_client")
    mod = getattr(base_client, "httpx2", None) or getattr(base_client, "httpx", None)
    if mod is None:
        raise RuntimeError("cannot tell which HTTP package openai uses")
    return mod


def make_client(handler: Handler) -> Any:
    import openai

    http = handler.http
    return openai.OpenAI(
        api_key="x",
        base_url="http://bench.local/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


# --------------------------------------------------------------------------
# telemetry sinks
# --------------------------------------------------------------------------


def _contains(value: Any, needle: str, depth: int = 0) -> bool:
    if depth > 6:
        return False
    if isinstance(value, str):
        return needle in value
    if isinstance(value, Mapping):
        return any(_contains(v, needle, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains(v, needle, depth + 1) for v in value)
    return False


class Sinks:
    """SDK providers whose exporters count what they get and keep only the last item."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

        sinks = self
        self.spans = 0
        self.span_names: dict[str, int] = {}
        self.last_span: ReadableSpan | None = None
        self.logs = 0
        self.last_log: Any = None

        class DropSpanExporter(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                for span in spans:
                    sinks.spans += 1
                    sinks.span_names[span.name] = sinks.span_names.get(span.name, 0) + 1
                    sinks.last_span = span
                return SpanExportResult.SUCCESS

        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(DropSpanExporter()))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        self.logger_provider = self._logger_provider()

    def _logger_provider(self) -> Any:
        try:
            from opentelemetry import _logs
            from opentelemetry.sdk import _logs as sdk_logs
            from opentelemetry.sdk._logs import export as logs_export
        except ImportError:
            return None
        sinks = self
        base: Any = getattr(logs_export, "LogRecordExporter", None) or logs_export.LogExporter
        result_cls: Any = getattr(logs_export, "LogRecordExportResult", None) or logs_export.LogExportResult

        class DropLogExporter(base):  # type: ignore[misc]
            def export(self, batch: Sequence[Any]) -> Any:
                for record in batch:
                    sinks.logs += 1
                    sinks.last_log = record
                return result_cls.SUCCESS

            def shutdown(self) -> None:
                return None

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        provider = sdk_logs.LoggerProvider()
        provider.add_log_record_processor(logs_export.SimpleLogRecordProcessor(DropLogExporter()))
        _logs.set_logger_provider(provider)
        return provider

    def metric_names(self) -> list[str]:
        data = self.metric_reader.get_metrics_data()
        names: set[str] = set()
        if data is not None:
            for rm in data.resource_metrics:
                for sm in rm.scope_metrics:
                    names.update(m.name for m in sm.metrics)
        return sorted(names)

    def inspect_last(self) -> dict[str, Any]:
        """What the last span (and log record) carried: content captured? usage recorded?"""
        out: dict[str, Any] = {}
        span = self.last_span
        if span is None:
            return out
        attrs = dict(span.attributes or {})
        event_attrs = [dict(e.attributes or {}) for e in span.events]
        log_body: Any = None
        if self.last_log is not None:
            rec = getattr(self.last_log, "log_record", self.last_log)
            log_body = [getattr(rec, "body", None), dict(getattr(rec, "attributes", None) or {})]
        everything = [attrs, event_attrs, log_body]
        out["attribute_count"] = len(attrs)
        out["attribute_bytes"] = sum(len(str(v)) for v in attrs.values())
        out["span_events"] = len(span.events)
        out["input_content_on_span"] = _contains([attrs, event_attrs], SYS_MARKER)
        out["output_content_on_span"] = _contains([attrs, event_attrs], ANSWER_MARKER)
        out["input_content_anywhere"] = _contains(everything, SYS_MARKER)
        out["output_content_anywhere"] = _contains(everything, ANSWER_MARKER)
        usage = {
            k: v
            for k, v in attrs.items()
            if isinstance(v, int) and not isinstance(v, bool) and ("token" in k or "usage" in k)
        }
        out["usage_attributes"] = usage
        out["usage_recorded"] = PROMPT_TOKENS in usage.values() and COMPLETION_TOKENS in usage.values()
        out["status"] = span.status.status_code.name
        return out


# --------------------------------------------------------------------------
# instrumentations
# --------------------------------------------------------------------------


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


#: the instrumentor object of the implementation under test (None for OpenLIT, which has no off switch)
_INSTRUMENTOR: list[Any] = []
#: what the implementation under test leaves for later (genai-audit: the metric points of its last calls,
#: recorded in batches): run before a batch's clock starts and before it stops, so that each batch is
#: charged with exactly its own calls' work
_DEFERRED: list[Callable[[], None]] = []


def settle() -> None:
    for finish in _DEFERRED:
        finish()


def switch(sinks: Sinks) -> tuple[Callable[[], None], Callable[[], None]] | None:
    """(switch on, switch off) for the instrumentation under test, when it can be undone."""
    if not _INSTRUMENTOR:
        return None
    instrumentor = _INSTRUMENTOR[0]
    tp, mp = sinks.tracer_provider, sinks.meter_provider

    def on() -> None:
        instrumentor.instrument(tracer_provider=tp, meter_provider=mp)

    return on, instrumentor.uninstrument


def _use(instrumentor: Any, sinks: Sinks) -> None:
    """Instrument with ``instrumentor`` and keep it for :func:`switch`."""
    _INSTRUMENTOR[:] = [instrumentor]
    instrumentor.instrument(tracer_provider=sinks.tracer_provider, meter_provider=sinks.meter_provider)


def instrument(impl: str, sinks: Sinks) -> dict[str, Any]:
    """Instrument openai the way ``impl`` documents it; returns what was done."""
    if impl == "ours":
        mod = importlib.import_module("genai_audit.instrumentation.openai")
        _use(mod.OpenAIInstrumentor(), sinks)
        _DEFERRED[:] = [importlib.import_module("genai_audit.instrumentation").flush_metrics]
        return {"module": mod.__name__, "dist": "genai-audit", "version": _dist_version("genai-audit")}
    if impl == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
        mod = importlib.import_module("opentelemetry.instrumentation.openai")
        _use(mod.OpenAIInstrumentor(), sinks)
        return {
            "module": mod.__name__,
            "dist": "opentelemetry-instrumentation-openai",
            "version": _dist_version("opentelemetry-instrumentation-openai"),
            "content_setting": "TRACELOOP_TRACE_CONTENT=true",
        }
    if impl == "otel-official":
        try:
            mod = importlib.import_module("opentelemetry.instrumentation.genai.openai")
            dist = "opentelemetry-instrumentation-genai-openai"
            capture = "span_only"
        except ImportError:
            mod = importlib.import_module("opentelemetry.instrumentation.openai_v2")
            dist = "opentelemetry-instrumentation-openai-v2"
            capture = "true"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = capture
        _use(mod.OpenAIInstrumentor(), sinks)
        return {
            "module": mod.__name__,
            "dist": dist,
            "version": _dist_version(dist),
            "content_setting": f"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={capture}",
        }
    if impl == "openlit":
        return _instrument_openlit()
    raise ValueError(f"unknown impl {impl!r}")


def _instrument_openlit() -> dict[str, Any]:
    openlit: Any = importlib.import_module("openlit")
    names: list[str] = []
    try:
        names = list(importlib.import_module("openlit._instrumentors").MODULE_NAME_MAP)
    except (ImportError, AttributeError):
        pass
    # A local pricing file: with none, init() downloads pricing.json from the internet.
    price = {"promptPrice": 0.00015, "completionPrice": 0.0006}
    pricing = {"chat": {MODEL: price, RESPONSE_MODEL: price}, "embeddings": {}, "images": {}, "audio": {}}
    fd, pricing_path = tempfile.mkstemp(prefix="openlit-pricing-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(pricing, fh)
    # Existing global SDK providers (set by Sinks) are detected and reused, so no
    # exporter of OpenLIT's own (OTLP or console) is created.
    openlit.init(
        service_name="bench",
        capture_message_content=True,
        disabled_instrumentors=[n for n in names if n != "openai"],
        pricing_json=pricing_path,
        disable_batch=True,
    )
    return {
        "module": "openlit",
        "dist": "openlit",
        "version": _dist_version("openlit"),
        "content_setting": "openlit.init(capture_message_content=True)",
        "disabled_instrumentors": len(names) - 1,
    }


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------


def make_call(client: Any, mode: str) -> Callable[[], None]:
    create = client.chat.completions.create
    if mode == "nonstream":

        def call() -> None:
            resp = create(**REQUEST)
            if resp.choices[0].message.content is None:
                raise RuntimeError("empty answer")

        return call

    def call_stream() -> None:
        n = 0
        for _chunk in create(**REQUEST, stream=True, stream_options={"include_usage": True}):
            n += 1
        if n < STREAM_CHUNKS:
            raise RuntimeError(f"stream ended after {n} chunks")

    return call_stream


def observe(client: Any, mode: str) -> dict[str, Any]:
    """What the application sees from one call, to check an instrumentation changes nothing."""
    if mode == "nonstream":
        resp = client.chat.completions.create(**REQUEST)
        usage = resp.usage.model_dump() if resp.usage is not None else None
        return {"type": type(resp).__name__, "content": resp.choices[0].message.content, "usage": usage}
    chunks = list(client.chat.completions.create(**REQUEST, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage_chunks = [c.usage.model_dump() for c in chunks if getattr(c, "usage", None) is not None]
    return {
        "type": type(chunks[-1]).__name__ if chunks else None,
        "chunks": len(chunks),
        "content": text,
        "usage": usage_chunks,
    }


def diff_observed(bare: dict[str, Any], inst: dict[str, Any]) -> list[str]:
    out = []
    for key in bare:
        if bare[key] != inst.get(key):
            b, i = (str(x)[:80] for x in (bare[key], inst.get(key)))
            out.append(f"application sees a different {key!r} when instrumented: bare {b!r}, instrumented {i!r}")
    return out


def run_phase(call: Callable[[], None], calls: int, reps: int, warmup: int) -> dict[str, Any]:
    """Warm up, then time ``reps`` batches of ``calls`` calls: wall clock and process CPU time.

    With ``reps`` 0 only the warm-up runs and the result is empty.
    """
    for _ in range(warmup):
        call()
    if reps <= 0:
        return {}
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(reps):
        settle()
        gc.collect()
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            call()
        settle()
        t1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        wall.append((t1 - t0) / calls / 1000.0)
        cpu.append((c1 - c0) / calls / 1000.0)
    return {
        "median_us": statistics.median(wall),
        "median_cpu_us": statistics.median(cpu),
        "min_us": min(wall),
        "min_cpu_us": min(cpu),
        "reps_us": [round(x, 2) for x in wall],
        "reps_cpu_us": [round(x, 2) for x in cpu],
    }


def run_interleaved(
    client: Any,
    mode: str,
    on: Callable[[], None],
    off: Callable[[], None],
    rounds: int,
    batch: int,
    spans: Callable[[], int],
    instrumented: bool = True,
) -> dict[str, Any]:
    """Bare and instrumented batches taken in turn, the instrumentation switched off and on between them.

    A machine whose speed drifts (other jobs, a shared host) moves both halves of a
    round alike, so the per-round difference keeps the overhead when the difference
    of two long phases taken minutes apart does not. The order alternates between
    rounds; each batch follows two untimed calls. ``spans`` counts the spans exported so
    far: every instrumented batch must export one per call and every bare batch none,
    else the switch did not take effect, the rounds stop and the result says so. The
    per-round differences and bare times are returned too, for the parent to pool.
    """
    diffs: list[float] = []
    bare_cpu: list[float] = []
    wrong: list[str] = []

    def checked(expect_spans: bool) -> float:
        before = spans()
        cpu = timed()
        made = spans() - before
        wanted = batch + 2 if expect_spans else 0
        if made != wanted and len(wrong) < 5:
            wrong.append(f"{'an instrumented' if expect_spans else 'a bare'} batch exported {made} spans, not {wanted}")
        return cpu

    def timed() -> float:
        """CPU µs per call of one batch."""
        call = make_call(client, mode)  # looks the method up again: the wrapper is on or off now
        call()
        call()
        settle()
        gc.collect()
        c0 = time.process_time_ns()
        for _ in range(batch):
            call()
        settle()
        return (time.process_time_ns() - c0) / batch / 1000.0

    for index in range(rounds):
        if index % 2 == 0:
            off()
            bare = checked(False)
            on()
            inst = checked(instrumented)
        else:
            on()
            inst = checked(instrumented)
            off()
            bare = checked(False)
        diffs.append(inst - bare)
        bare_cpu.append(bare)
        if wrong:  # the switch does not work: further rounds would measure nothing meaningful
            break
    on()
    quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
    return {
        "rounds": rounds,
        "rounds_run": len(diffs),
        "batch": batch,
        "overhead_cpu_us": statistics.median(diffs),
        "overhead_cpu_q1_us": quartiles[0],
        "overhead_cpu_q3_us": quartiles[2],
        "bare_cpu_us": statistics.median(bare_cpu),
        "diffs_cpu_us": [round(x, 3) for x in diffs],
        "bare_rounds_cpu_us": [round(x, 3) for x in bare_cpu],
        "errors": wrong,
    }


def count_only(impl: str, mode: str, calls: int) -> int:
    """Set up as for timing, instrument (unless ``bare``), make ``calls`` calls; nothing timed or checked.

    Run under ``valgrind --tool=callgrind`` twice with different ``calls``, the difference of the two
    instruction totals divided by the difference of the calls is the instructions of one call, start-up
    and imports cancelling out. The garbage collector is off during the calls: a collection falling
    between the two runs' numbers of calls would move the per-call figure by tens of thousands.
    """
    sinks = Sinks()
    handler = Handler(http_module())
    if impl != "bare":
        instrument(impl, sinks)
    call = make_call(make_client(handler), mode)
    gc.collect()
    gc.disable()
    for _ in range(calls):
        call()
    settle()
    gc.enable()
    print(json.dumps({"impl": impl, "mode": mode, "calls": calls, "spans": sinks.spans}))
    return 0


def versions() -> dict[str, str | None]:
    names = ["openai", "opentelemetry-sdk", "opentelemetry-api", "httpx2", "httpx", "wrapt", "pydantic"]
    return {n: _dist_version(n) for n in names}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--impl", choices=IMPLS, required=True)
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument(
        "--reps", type=int, default=5, help="repetitions of the sequential phases (0: warm-up only, for --rounds)"
    )
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=0, help="interleaved bare/instrumented rounds (0: none)")
    ap.add_argument("--batch", type=int, default=50, help="calls per batch in an interleaved round")
    ap.add_argument(
        "--count",
        type=int,
        default=0,
        help="only make this many calls (instrumented unless --impl bare), untimed: for instruction counting",
    )
    args = ap.parse_args(argv)
    if args.count:
        return count_only(args.impl, args.mode, args.count)

    result: dict[str, Any] = {
        "impl": args.impl,
        "mode": args.mode,
        "calls": args.calls,
        "reps": args.reps,
        "warmup": args.warmup,
        "python": sys.version.split()[0],
        "versions": versions(),
        "errors": [],
    }
    try:
        sinks = Sinks()
        handler = Handler(http_module())
        result["http_package"] = handler.http.__name__

        bare_client = make_client(handler)
        result["bare"] = run_phase(make_call(bare_client, args.mode), args.calls, args.reps, args.warmup)
        if sinks.spans:
            result["errors"].append(f"{sinks.spans} spans were exported before instrumenting")
        bare_headers = set(handler.baseline_headers or ())
        seen_bare = observe(bare_client, args.mode)

        if args.impl == "bare":
            result["instrumentation"] = {"module": None, "note": "A/A run: second bare phase, same process"}
        else:
            t0 = time.perf_counter()
            result["instrumentation"] = instrument(args.impl, sinks)
            result["instrument_seconds"] = round(time.perf_counter() - t0, 3)
        handler.requests = handler.with_traceparent = handler.stream_usage_requested = 0
        spans_before = sinks.spans
        client = make_client(handler)
        inst = run_phase(make_call(client, args.mode), args.calls, args.reps, args.warmup)
        result["instrumented"] = inst
        result["errors"].extend(diff_observed(seen_bare, observe(client, args.mode)))
        bare = result["bare"]
        if args.reps > 0:
            result["overhead_us"] = inst["median_us"] - bare["median_us"]
            result["overhead_cpu_us"] = inst["median_cpu_us"] - bare["median_cpu_us"]

        gc.collect()
        sinks.tracer_provider.force_flush()
        made = args.warmup + args.calls * args.reps + 1  # + the observe() call
        spans = sinks.spans - spans_before
        expected = 0 if args.impl == "bare" else made
        result["spans"] = spans
        result["expected_spans"] = expected
        result["span_names"] = sinks.span_names
        result["log_records"] = sinks.logs
        result["metrics"] = sinks.metric_names()
        result["http_requests"] = handler.requests
        result["requests_with_traceparent"] = handler.with_traceparent
        result["requests_with_stream_usage"] = handler.stream_usage_requested
        result["added_request_headers"] = sorted(handler.extra_headers - bare_headers)
        result["last_span"] = sinks.inspect_last()
        if spans != expected:
            msg = f"expected exactly {expected} spans ({made} calls), got {spans}: {sinks.span_names}"
            result["errors"].append(msg)
            print(f"ERROR [{args.impl}/{args.mode}]: {msg}", file=sys.stderr)
        if handler.requests != made:
            result["errors"].append(f"expected {made} HTTP requests, transport saw {handler.requests}")
        switches = switch(sinks) if args.impl != "bare" else (lambda: None, lambda: None)  # A/A: no switch
        if args.rounds > 0 and switches is not None:
            inter = run_interleaved(
                client,
                args.mode,
                *switches,
                args.rounds,
                args.batch,
                spans=lambda: sinks.spans,
                instrumented=args.impl != "bare",
            )
            if inter["errors"]:
                # switching the instrumentation off and on again did not take effect: the parent measures
                # this one with short runs instead
                result["interleaved_rejected"] = inter
            else:
                result["interleaved"] = inter
    except Exception as exc:  # noqa: BLE001 - the parent turns this into a table row
        traceback.print_exc(file=sys.stderr)
        result["fatal"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result, default=str))
    return 1 if "fatal" in result else 0


if __name__ == "__main__":
    sys.exit(main())
