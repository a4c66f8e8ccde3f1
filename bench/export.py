"""Sustained export into a real Elasticsearch node: the spool pipeline vs. plain OpenTelemetry batching.

Every configuration gets the same spans: CLIENT spans of chat calls carrying
about 2 KB of already-redacted content (``gen_ai.input.messages`` /
``gen_ai.output.messages`` JSON with pseudonym tokens), token usage, cost and
the audit attributes the processing chain writes. One producing thread creates
and ends them as fast as it can; then the run waits until the node has
acknowledged every span (``force_flush``). Configurations:

``none``
    A ``TracerProvider`` without processors: the cost of creating and ending the
    spans themselves, subtracted from the others' application-thread time.
``spool``
    :func:`genai_audit.bootstrap.remote_processor`: the durable SQLite spool
    and the Elasticsearch exporter, as ``GENAI_AUDIT_STORE=https://...`` builds it.
``bsp``
    The OpenTelemetry SDK's ``BatchSpanProcessor`` with its defaults (queue of
    2048, batches of 512, 5 s delay) around our ``ElasticsearchSpanExporter``:
    what a user wiring the exporter into plain OpenTelemetry gets. Spans beyond
    the queue are dropped; the table counts them.
``bsp-sized``
    The same with a queue holding the whole run and batches of 500, so nothing
    is dropped: the cost of delivery without the spool's durability.

Per configuration and repetition: spans/s end to end (first span started to
all acknowledged), spans/s offered by the producer, the application thread's
CPU per span (``time.thread_time()`` around the producing loop, minus ``none``),
this process's CPU per span (all threads, from the first span to the
acknowledgement) and each thread's share of it (writer, sender, helper,
producer; from ``/proc``), and the node's CPU per span (the JVM, when this
script started it). Figures are medians over the repetitions. See
``bench/README-export.md``.

Usage::

    python bench/export.py                            # 20,000 spans, 3 repetitions, own node
    python bench/export.py --spans 50000 --reps 3 --json /tmp/export.json
    python bench/export.py --url http://127.0.0.1:9200 # a node already running (make es-up)
    python bench/export.py --profile                  # cProfile of the spool's threads, time by category
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import platform
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from genai_audit import semconv as sc
from genai_audit.bootstrap import remote_processor
from genai_audit.store.elasticsearch import DeliveryReport, ElasticsearchSpanExporter, data_stream
from genai_audit.store.spool import SpoolingSpanProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ of the checkout
from tools.es_node import EsNode

CONFIGS = ("none", "spool", "bsp", "bsp-sized", "collector")
#: the dataset the collector's documents are routed to (``traces-genai_audit.otel-<namespace>``, as ours)
COLLECTOR_DATASET = "genai_audit"
TARGET_SPANS_PER_S = 5_000
TARGET_APP_US = 50.0
SCOPE = ("genai_audit.instrumentation.openai", "0.1.0")


def log(message: str) -> None:
    print(f"[export] {message}", file=sys.stderr, flush=True)


# --- realistic span content ------------------------------------------------------------------------

_TOPICS = (
    "my order has not arrived and the tracking page has not changed since Tuesday",
    "the invoice shows a charge twice for the same subscription month",
    "I cannot log in after resetting my password on the mobile app",
    "the replacement kettle you sent is also leaking from the base",
    "please change the delivery address on my pending order before it ships",
    "I was promised a refund within five working days and nothing has arrived",
    "the discount code from the newsletter is rejected at checkout",
    "my account was locked after too many attempts and I need access today",
)
_ANSWERS = (
    "I am sorry about the delay. I checked order {order} and the carrier reports it at the regional depot; "
    "it should be delivered within two working days. I have added a note so that the courier calls "
    "{phone} before arriving, and you will get an e-mail at {email} with the new tracking link.",
    "Thank you for your patience. I can see the duplicate charge on the card ending {card}. I have raised "
    "a refund for the second payment; it takes three to five working days to appear. A confirmation has "
    "been sent to {email}.",
    "I have reset the sign-in attempts on your account. Please use the link sent to {email}; it is valid "
    "for thirty minutes. If the code does not arrive, we can send it by text message to {phone} instead.",
)
_SYSTEM = (
    "You are the support assistant of an online shop. Answer politely and briefly, never invent order "
    "details, use the order lookup tool for anything about an order, and never repeat payment card numbers "
    "or account passwords back to the customer."
)


def _token(kind: str, rng: random.Random) -> str:
    return f"[{kind}:{rng.getrandbits(48):012x}]"


def _text_part(text: str) -> dict[str, str]:
    return {"type": "text", "content": text}


def attribute_pool(size: int, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` distinct attribute sets of a redacted, audited chat call (about 2 KB of content each)."""
    rng = random.Random(seed)
    pool = []
    for number in range(size):
        email, phone, card = _token("EMAIL", rng), _token("PHONE", rng), _token("CREDIT_CARD", rng)
        order = f"A-{rng.randrange(10**6, 10**7)}"
        call_id = f"call_{rng.getrandbits(64):016x}"
        question = f"Hello, {rng.choice(_TOPICS)}. My e-mail is {email} and my phone {phone}. Order {order}."
        record = {
            "order": order,
            "status": "in_transit",
            "carrier": "DPD",
            "eta_days": rng.randrange(1, 5),
            "customer": email,
            "items": [{"sku": f"SKU-{rng.randrange(10**5)}", "qty": 1}],
        }
        inputs = [
            {"role": "user", "parts": [_text_part(question)]},
            {
                "role": "assistant",
                "parts": [
                    {"type": "tool_call", "id": call_id, "name": "lookup_order", "arguments": {"order_id": order}}
                ],
            },
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": json.dumps(record)}]},
            {
                "role": "assistant",
                "parts": [_text_part(rng.choice(_ANSWERS).format(order=order, phone=phone, email=email, card=card))],
            },
            {"role": "user", "parts": [_text_part(f"Thanks. Also, {rng.choice(_TOPICS)}, and {rng.choice(_TOPICS)}.")]},
        ]
        answer = rng.choice(_ANSWERS).format(order=order, phone=phone, email=email, card=card)
        outputs = [{"role": "assistant", "parts": [_text_part(answer)], "finish_reason": "stop"}]
        input_tokens, output_tokens = rng.randrange(300, 900), rng.randrange(60, 200)
        pool.append(
            {
                sc.OPERATION_NAME: "chat",
                sc.PROVIDER_NAME: "openai",
                sc.REQUEST_MODEL: "gpt-4o",
                sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
                sc.RESPONSE_ID: f"chatcmpl-{rng.getrandbits(96):024x}",
                sc.RESPONSE_FINISH_REASONS: ("stop",),
                sc.REQUEST_TEMPERATURE: 0.2,
                sc.REQUEST_MAX_TOKENS: 512,
                sc.SERVER_ADDRESS: "api.openai.com",
                sc.SERVER_PORT: 443,
                sc.USAGE_INPUT_TOKENS: input_tokens,
                sc.USAGE_OUTPUT_TOKENS: output_tokens,
                sc.USAGE_COST_USD: round(input_tokens * 2.5e-6 + output_tokens * 1e-5, 6),
                sc.SYSTEM_INSTRUCTIONS: json.dumps([_text_part(_SYSTEM)]),
                sc.INPUT_MESSAGES: json.dumps(inputs),
                sc.OUTPUT_MESSAGES: json.dumps(outputs),
                sc.ENDUSER_ID: f"u-{number % 97:03d}",
                sc.SESSION_ID: f"s-{number % 997:04d}",
                sc.AUDIT_FEATURE: "support-chat",
                sc.AUDIT_CONSENT: "true",
                sc.AUDIT_TENANT: "shop-eu",
                sc.AUDIT_CONTENT_CAPTURED: True,
                sc.AUDIT_REDACTED: True,
                sc.AUDIT_PII_DETECTED: True,
                sc.AUDIT_PII_TYPES: ("CREDIT_CARD", "EMAIL", "PHONE"),
                sc.AUDIT_PII_COUNT: 4,
                sc.AUDIT_PII_TOKENS: (email, phone, card),
                sc.AUDIT_SECRETS_DETECTED: False,
                sc.AUDIT_CLASSIFICATION: "restricted",
                sc.AUDIT_RETENTION_DAYS: 7,
                sc.AUDIT_INJECTION_DETECTED: False,
                sc.AUDIT_INJECTION_SCORE: round(rng.random() * 0.1, 4),
                sc.AUDIT_SECURITY_SCORE: 0.7,
                sc.AUDIT_ALERTS: ("restricted_data",),
            }
        )
    return pool


def content_bytes(attributes: dict[str, Any]) -> int:
    names = (sc.SYSTEM_INSTRUCTIONS, sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES)
    return sum(len(str(attributes[name]).encode()) for name in names)


# --- one run -----------------------------------------------------------------------------------------


@dataclass
class Run:
    config: str
    rep: int
    spans: int
    produce_s: float = 0.0
    total_s: float = 0.0
    app_cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    node_cpu_s: float | None = None
    collector_cpu_s: float | None = None
    delivered: int = 0
    dropped: int = 0
    flushed: bool = True
    #: CPU seconds of each thread of this process over the run, by thread name (Linux only)
    thread_cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def spans_per_s(self) -> float:
        return self.delivered / self.total_s if self.total_s else 0.0

    @property
    def offered_per_s(self) -> float:
        return self.spans / self.produce_s if self.produce_s else 0.0


def _thread_cpu_s() -> dict[int, tuple[str, float]]:
    """Native thread id -> (thread name, CPU seconds so far) for this process's Python threads (Linux)."""
    found: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        native = thread.native_id
        if native is None:
            continue
        try:
            fields = Path(f"/proc/self/task/{native}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[native] = (thread.name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return found


def _thread_name(name: str) -> str:
    """``genai-audit-spool-writer`` -> ``writer``; the benchmark's own thread is the producer."""
    if name == "MainThread":
        return "producer"
    return name.removeprefix("genai-audit-spool-")


def _jvm_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    url: str
    node_pid: int | None
    spans: int
    pool: list[dict[str, Any]]
    work: Path
    runs: list[Run] = field(default_factory=list)
    #: the collector's OTLP/HTTP endpoint and process, for the ``collector`` configuration
    otlp_endpoint: str | None = None
    collector_pid: int | None = None

    def processor(self, config: str, namespace: str) -> tuple[SpanProcessor | None, Callable[[], int]]:
        dead = str(self.work / f"dead-{namespace}.jsonl")
        if config == "none":
            return None, lambda: 0
        if config == "collector":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            otlp = OTLPSpanExporter(endpoint=f"{self.otlp_endpoint}/v1/traces", timeout=60)
            batch = BatchSpanProcessor(otlp, max_queue_size=self.spans + 1, max_export_batch_size=500)
            return batch, lambda: count_documents(self.url, namespace)
        if config == "spool":
            env = {
                sc.ENV_SPOOL_DIR: str(self.work / f"spool-{namespace}"),
                "GENAI_AUDIT_ES_NAMESPACE": namespace,
                "GENAI_AUDIT_ES_DEAD_LETTER": dead,
                # the integrity ledger is written (and fsync'd) as in production, but not into the user's data dir
                "GENAI_AUDIT_INTEGRITY_DIR": str(self.work / f"integrity-{namespace}"),
            }
            spool = remote_processor(self.url, env)
            assert isinstance(spool, SpoolingSpanProcessor)
            return spool, lambda: spool.stats.delivered
        exporter = ElasticsearchSpanExporter(self.url, namespace=namespace, dead_letter_path=dead, env={})
        if config == "bsp":
            batch = BatchSpanProcessor(exporter)
        else:
            batch = BatchSpanProcessor(exporter, max_queue_size=self.spans + 1, max_export_batch_size=500)
        return batch, lambda: exporter.exported

    def run(self, config: str, rep: int) -> Run:
        namespace = f"bench{uuid.uuid4().hex[:10]}"
        processor, delivered = self.processor(config, namespace)
        resource: dict[str, Any] = {"service.name": "support-assistant"}
        if config == "collector":  # where the collector's exporter routes the documents
            resource |= {"data_stream.dataset": COLLECTOR_DATASET, "data_stream.namespace": namespace}
        provider = TracerProvider(resource=Resource.create(resource), shutdown_on_exit=False)
        if processor is not None:
            provider.add_span_processor(processor)
        tracer = provider.get_tracer(*SCOPE)
        pool, size, n = self.pool, len(self.pool), self.spans
        # The SDK's "Queue full" warnings are still made (their cost counts), just not printed.
        quiet = logging.NullHandler()
        sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
        sdk_logger.addHandler(quiet)
        sdk_logger.propagate = False
        result = Run(config, rep, n)
        node_before = _jvm_cpu_s(self.node_pid)
        collector_before = _jvm_cpu_s(self.collector_pid) if config == "collector" else None
        threads_before = _thread_cpu_s()
        cpu_before = time.process_time()
        started = time.perf_counter()
        app_before = time.thread_time()
        for i in range(n):
            span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=pool[i % size])
            span.set_attribute(sc.AUDIT_REQUEST_ID, f"req-{rep}-{i}")
            span.end()
        result.app_cpu_s = time.thread_time() - app_before
        result.produce_s = time.perf_counter() - started
        if processor is not None:
            result.flushed = processor.force_flush(600_000)
        if config == "collector":  # handed to the collector: delivered once the node holds every span
            deadline = time.monotonic() + 600
            while delivered() < n and time.monotonic() < deadline:
                time.sleep(0.25)
        result.total_s = time.perf_counter() - started
        result.process_cpu_s = time.process_time() - cpu_before
        for native, (name, cpu) in _thread_cpu_s().items():
            key = _thread_name(name)
            before = threads_before.get(native, (name, 0.0))[1]
            result.thread_cpu_s[key] = result.thread_cpu_s.get(key, 0.0) + cpu - before
        node_after = _jvm_cpu_s(self.node_pid)
        if node_before is not None and node_after is not None:
            result.node_cpu_s = node_after - node_before
        collector_after = _jvm_cpu_s(self.collector_pid) if config == "collector" else None
        if collector_before is not None and collector_after is not None:
            result.collector_cpu_s = collector_after - collector_before
        result.delivered = delivered() if processor is not None else n
        result.dropped = n - result.delivered
        if isinstance(processor, SpoolingSpanProcessor):
            result.dropped = processor.stats.dropped + processor.stats.refused
        provider.shutdown()
        sdk_logger.removeHandler(quiet)
        sdk_logger.propagate = True
        if processor is not None:
            stored = count_documents(self.url, namespace)
            if stored != result.delivered:
                log(f"{config}: the node holds {stored} documents, the processor reported {result.delivered}")
                result.delivered = stored
        return result


def count_documents(url: str, namespace: str) -> int:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(url, request_timeout=60)
    index = data_stream("traces", namespace)
    try:
        client.indices.refresh(index=index, ignore_unavailable=True)
        return int(client.count(index=index, ignore_unavailable=True)["count"])
    finally:
        client.close()


# --- profiling ---------------------------------------------------------------------------------------

_CATEGORIES = (
    ("SQLite (spool)", ("sqlite3", "spool.py:")),
    ("JSON encode/decode", ("json/", "_json", "encoder", "decoder", "serializer", "dumps", "loads")),
    ("span -> document", ("serialize.py", "span_documents")),
    ("HTTP + TLS (urllib3, http.client, socket)", ("urllib3", "http/client", "socket", "ssl", "select", "selectors")),
    ("Elasticsearch client", ("elasticsearch/", "elastic_transport")),
    ("waiting (locks, sleeps)", ("acquire", "wait", "sleep")),
)


def _category(location: str) -> str:
    for name, needles in _CATEGORIES:
        if any(needle in location for needle in needles):
            return name
    return "other Python"


def summarise_profile(stats: pstats.Stats, top: int) -> tuple[dict[str, float], list[tuple[str, float, float, int]]]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_category: dict[str, float] = {}
    rows = []
    for (file, line, name), (_calls, ncalls, tottime, cumtime, _callers) in raw.items():
        location = f"{file}:{line}({name})"
        by_category[_category(location)] = by_category.get(_category(location), 0.0) + tottime
        rows.append((location.replace(str(Path(sys.prefix)), "<venv>"), tottime, cumtime, ncalls))
    rows.sort(key=lambda row: row[1], reverse=True)
    return by_category, rows[:top]


@contextmanager
def profiled_spool_threads(timer: Callable[[], float]) -> Iterator[dict[str, tuple[cProfile.Profile, list[float]]]]:
    """Run the spool's writer and sender loops under their own profilers (and CPU clocks)."""
    profiles: dict[str, tuple[cProfile.Profile, list[float]]] = {}
    originals = {"writer": SpoolingSpanProcessor._write_loop, "sender": SpoolingSpanProcessor._send_loop}

    def wrap(name: str, loop: Callable[[SpoolingSpanProcessor], None]) -> Callable[[SpoolingSpanProcessor], None]:
        def run(self: SpoolingSpanProcessor) -> None:
            profile = cProfile.Profile(timer)
            cpu = time.thread_time()
            profile.enable()
            try:
                loop(self)
            finally:
                profile.disable()
                profiles[name] = (profile, [time.thread_time() - cpu])

        return run

    SpoolingSpanProcessor._write_loop = wrap("writer", originals["writer"])  # type: ignore[method-assign, assignment]
    SpoolingSpanProcessor._send_loop = wrap("sender", originals["sender"])  # type: ignore[method-assign, assignment]
    try:
        yield profiles
    finally:
        SpoolingSpanProcessor._write_loop = originals["writer"]  # type: ignore[method-assign]
        SpoolingSpanProcessor._send_loop = originals["sender"]  # type: ignore[method-assign]


def profile_spool(bench: Bench, top: int, cpu_timer: bool) -> dict[str, Any]:
    timer = time.thread_time if cpu_timer else time.perf_counter
    report: dict[str, Any] = {}
    with profiled_spool_threads(timer) as profiles:
        producer = cProfile.Profile(timer)
        producer.enable()
        run = bench.run("spool", 0)
        producer.disable()
    profiles["producer (application thread + force_flush wait)"] = (producer, [run.app_cpu_s])
    clock = "thread CPU" if cpu_timer else "wall"
    print(f"\n## cProfile of one spool run ({run.spans} spans, {run.spans_per_s:,.0f} spans/s; {clock} clock)\n")
    for name, (profile, (cpu,)) in profiles.items():
        stats = pstats.Stats(profile)
        by_category, rows = summarise_profile(stats, top)
        total = sum(by_category.values())
        print(
            f"### {name}: {total:.2f} s profiled ({clock}), {cpu:.2f} s CPU, {cpu / run.spans * 1e6:.1f} µs CPU/span\n"
        )
        print("| category | s | share | µs/span |")
        print("|---|---|---|---|")
        for category, seconds in sorted(by_category.items(), key=lambda item: item[1], reverse=True):
            share = seconds / total if total else 0.0
            print(f"| {category} | {seconds:.2f} | {share:.0%} | {seconds / run.spans * 1e6:.1f} |")
        print("\n| function (own time) | tottime s | cumtime s | calls |")
        print("|---|---|---|---|")
        for location, tottime, cumtime, ncalls in rows:
            print(f"| `{location[-90:]}` | {tottime:.3f} | {cumtime:.3f} | {ncalls} |")
        print()
        report[name] = {"cpu_s": cpu, "by_category": by_category, "top": rows}
    return report


# --- a node that costs nothing: the client side's own ceiling -------------------------------------------


def serve_null_sink() -> None:
    """Answer like Elasticsearch, storing nothing: bulk items are acknowledged as created.

    Run in its own process (``--serve-null-sink``); prints its URL, serves until
    standard input closes. Templates are reported as installed at a high
    version, ``_count`` reports the documents acknowledged per index.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm the second waits for the client's
        # delayed ACK, about 40 ms per request, which a real node (TCP_NODELAY) does not have.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, body: Any) -> None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if path.startswith("/_index_template/"):
                name = path.rsplit("/", 1)[1]
                self._reply(
                    {"index_templates": [{"name": name, "index_template": {"version": 1 << 30}}]}
                    if self.command == "GET"
                    else {"acknowledged": True}
                )
            elif path.endswith("/_bulk"):
                items = []
                for line in body.split(b"\n")[0::2]:
                    if line.strip():
                        action = json.loads(line)["create"]
                        items.append({"create": {"_index": action["_index"], "_id": action["_id"], "status": 201}})
                with lock:
                    for item in items:
                        index = item["create"]["_index"]
                        counts[index] = counts.get(index, 0) + 1
                if "filter_path=" in self.path:  # as the node does: only what the filter names (the status)
                    self._reply({"items": [{"create": {"status": 201}} for _ in items]})
                else:
                    self._reply({"errors": False, "took": 0, "items": items})
            elif path.endswith("/_count"):
                with lock:
                    self._reply({"count": counts.get(path.strip("/").split("/")[0], 0)})
            else:
                self._reply({"acknowledged": True, "_shards": {"total": 1, "successful": 1, "failed": 0}})

        do_GET = do_PUT = do_POST = do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


@contextmanager
def null_sink() -> Iterator[tuple[str, int]]:
    """A null sink in a child process: (URL, pid)."""
    import subprocess

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-null-sink"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip(), child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- stage costs: each step of the spool pipeline alone, on the same spans ----------------------------


def finished_spans(pool: list[dict[str, Any]], n: int) -> list[Any]:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-assistant"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(*SCOPE)
    for i in range(n):
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=pool[i % len(pool)])
        span.set_attribute(sc.AUDIT_REQUEST_ID, f"req-{i}")
        span.end()
    return list(memory.get_finished_spans())


def stage_costs(pool: list[dict[str, Any]], n: int, work: Path, url: str) -> list[tuple[str, float, float]]:
    """(stage, CPU µs per span, wall µs per span) for every step a span takes through the spool, one at a time.

    Rows starting with two spaces are details or the former way of doing a step, not part of the sum.
    """
    from genai_audit.integrity import Sealer
    from genai_audit.ledger import ENV_DIR as INTEGRITY_DIR
    from genai_audit.serialize import _attrs, _span_attributes, valid_text
    from genai_audit.store.elasticsearch import (
        BULK_FILTER_PATH,
        AuditDocument,
        RawJson,
        _bulk_body,
        _Sized,
        span_documents,
    )
    from genai_audit.store.spool import _ENCODER, Spool

    spans = finished_spans(pool, n)
    results: list[tuple[str, float, float]] = []

    def timed(stage: str, step: Callable[[], Any]) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        value = step()
        results.append((stage, (time.thread_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6))
        return value

    class Idle(SpoolingSpanProcessor):
        def _start(self) -> None:  # no writer, no sender: on_end alone
            self._threads = []

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def nothing_undelivered(docs: Any) -> Any:
        return DeliveryReport()

    idle = Idle(Spool(work / "idle.db"), lambda spans: [], nothing_undelivered, max_queue=n + 1)
    batch = BatchSpanProcessor(Discard(), max_queue_size=n + 1, max_export_batch_size=n, schedule_delay_millis=1e9)

    def hand_over(processor: SpanProcessor) -> None:
        for span in spans:
            processor.on_end(span)

    timed("application thread: `SpoolingSpanProcessor.on_end` (threads idle)", lambda: hand_over(idle))
    timed("  for comparison: `BatchSpanProcessor.on_end` (worker idle)", lambda: hand_over(batch))
    batch.shutdown()  # type: ignore[no-untyped-call]
    idle.spool.close()

    namespace = "stages"
    documents = timed("writer: span -> document (`span_documents`)", lambda: list(span_documents(spans, namespace)))
    timed(
        "  of which: copying span attributes (`serialize._attrs`)",
        lambda: [_attrs(_span_attributes(s)) for s in spans],
    )

    def former_value(value: Any) -> Any:
        if isinstance(value, str):
            return valid_text(value)
        if isinstance(value, (tuple, list)):
            return [valid_text(v) if isinstance(v, str) else v for v in value]
        return value

    timed(
        "  before: through the SDK's `Mapping`, two helper calls per attribute",
        lambda: [{valid_text(k): former_value(v) for k, v in s.attributes.items()} for s in spans],
    )
    sealer = Sealer.from_env("elasticsearch:stages", {INTEGRITY_DIR: str(work / "integrity")})

    def seal_all() -> None:
        for i in range(0, len(documents), 2000):
            sealer.seal_documents(documents[i : i + 2000])

    timed("writer: integrity seal, groups of 2000 (canonical JSON, hash, ledger + fsync)", seal_all)
    rows = timed(
        "writer: JSON encode for the spool", lambda: [(d.index, d.id, _ENCODER.encode(d.source)) for d in documents]
    )
    spool = Spool(work / "stages.db")

    def append_all() -> None:
        for i in range(0, len(rows), 2000):
            spool.append(rows[i : i + 2000])

    timed("writer: SQLite insert + commit, groups of 2000 (`Spool.append`, synchronous=FULL)", append_all)

    def read_all() -> list[list[Any]]:
        batches, after = [], 0
        while chunk := spool.head(500, raw=True, after=after):
            batches.append(chunk)
            after = chunk[-1].seq
        return batches

    spooled = timed("sender: SQLite read, 500 rows at a time (`Spool.head`, raw JSON text)", read_all)

    def bodies() -> list[bytes]:
        payloads = []
        for chunk in spooled:
            docs = [AuditDocument(d.index, d.id, RawJson(d.source)) for d in chunk]
            payloads.append(_bulk_body([_Sized(d, str(d.source).encode("utf-8", "surrogatepass")) for d in docs]))
        return payloads

    payloads = timed("sender: bulk body from the spooled JSON text as it is (`_bulk_body`)", bodies)
    client = ElasticsearchSpanExporter(url, namespace=namespace, dead_letter_path=work / "dead", env={}).client
    with suppress_instrumentation():
        timed(
            "sender: bulk request, 500 per request: HTTP + answer parsing, `filter_path` (null sink)",
            lambda: [client.bulk(operations=payload, filter_path=BULK_FILTER_PATH) for payload in payloads],
        )
        timed(
            "  before: the full answer (null sink)",
            lambda: [client.bulk(operations=payload) for payload in payloads],
        )

    def remove_all() -> None:
        for chunk in spooled:
            spool.remove_through(chunk[0].seq, chunk[-1].seq)

    timed("sender's helper: SQLite delete + commit, one range per batch (`Spool.remove_through`)", remove_all)
    spool.append(rows)
    again = read_all()

    def remove_rows() -> None:
        for chunk in again:
            spool.remove([d.seq for d in chunk])

    timed("  before: row by row (`Spool.remove`)", remove_rows)
    client.close()
    spool.close()
    return results


def print_stages(results: list[tuple[str, float, float]], n: int) -> None:
    print(f"\n## Stage costs, each step alone on {n:,} spans (µs per span)\n")
    print("| step | CPU µs/span | wall µs/span |")
    print("|---|---|---|")
    for stage, cpu, wall in results:
        print(f"| {stage} | {cpu:.1f} | {wall:.1f} |")
    counted = [r for r in results if not r[0].startswith(" ")]
    print(
        f"| **sum of the steps (without the indented rows)** | **{sum(r[1] for r in counted):.1f}** | "
        f"**{sum(r[2] for r in counted):.1f}** |"
    )


# --- main --------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(runs: list[Run], spans: int) -> str:
    base = median([r.app_cpu_s / r.spans for r in runs if r.config == "none"]) * 1e6
    lines = [
        "| configuration | spans/s end to end | offered spans/s | app thread µs/span (minus none) "
        "| process CPU µs per delivered span | collector CPU µs per delivered span "
        "| store-side CPU µs per delivered span | delivered / produced | dropped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for config in CONFIGS:
        chosen = [r for r in runs if r.config == config]
        if not chosen:
            continue
        app = median([r.app_cpu_s / r.spans for r in chosen]) * 1e6
        node = [r.node_cpu_s / max(r.delivered, 1) for r in chosen if r.node_cpu_s is not None]
        rate = median([r.spans_per_s for r in chosen])
        node_text = f"{median(node) * 1e6:,.0f}" if node and config != "none" else "–"
        collector = [r.collector_cpu_s / max(r.delivered, 1) for r in chosen if r.collector_cpu_s is not None]
        collector_text = f"{median(collector) * 1e6:,.0f}" if collector else "–"
        delivered = f"{median([r.delivered for r in chosen]):,.0f} / {spans:,}" if config != "none" else "–"
        lines.append(
            f"| {config} | {rate:,.0f}"
            + f" | {median([r.offered_per_s for r in chosen]):,.0f}"
            + (f" | {app:.1f} (span itself)" if config == "none" else f" | {app - base:.1f}")
            + f" | {median([r.process_cpu_s / max(r.delivered, 1) for r in chosen]) * 1e6:,.0f}"
            + f" | {collector_text} | {node_text} | {delivered} | {median([r.dropped for r in chosen]):,.0f} |"
        )
    return "\n".join(lines)


def thread_table(runs: list[Run]) -> str:
    """CPU µs per delivered span of each thread of this process (median over the repetitions)."""
    lines = ["| configuration | thread | CPU µs per delivered span |", "|---|---|---|"]
    for config in CONFIGS:
        chosen = [r for r in runs if r.config == config and r.thread_cpu_s]
        names = sorted({name for r in chosen for name in r.thread_cpu_s})
        for name in names:
            cpu = median([r.thread_cpu_s.get(name, 0.0) / max(r.delivered, 1) for r in chosen]) * 1e6
            lines.append(f"| {config} | {name} | {cpu:,.1f} |")
    return "\n".join(lines)


def targets(runs: list[Run]) -> str:
    base = median([r.app_cpu_s / r.spans for r in runs if r.config == "none"]) * 1e6
    spool = [r for r in runs if r.config == "spool"]
    if not spool:
        return ""
    rate = median([r.spans_per_s for r in spool])
    app = median([r.app_cpu_s / r.spans for r in spool]) * 1e6 - base
    return (
        f"- target >= {TARGET_SPANS_PER_S:,} spans/s sustained (spool): {rate:,.0f} spans/s — "
        f"{'met' if rate >= TARGET_SPANS_PER_S else 'MISSED'}\n"
        f"- target < {TARGET_APP_US:.0f} µs application-thread time per span (spool): {app:.1f} µs — "
        f"{'met' if app < TARGET_APP_US else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=20_000, help="spans per run (default 20000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every configuration (default 3)")
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"subset of {','.join(CONFIGS)}")
    parser.add_argument("--url", help="use this running node instead of starting one")
    parser.add_argument(
        "--sink",
        choices=("node", "null"),
        default="node",
        help="node: a real Elasticsearch node (default); null: a process that acknowledges bulk requests unread, "
        "to measure the client side's own ceiling",
    )
    parser.add_argument("--serve-null-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--heap", default="512m", help="JVM heap of the node this script starts (default 512m)")
    parser.add_argument("--profile", action="store_true", help="also profile one spool run (cProfile per thread)")
    parser.add_argument("--profile-cpu", action="store_true", help="profile with the thread CPU clock, not wall")
    parser.add_argument("--stages", action="store_true", help="also time each step of the spool alone (null sink)")
    parser.add_argument("--top", type=int, default=20, help="functions listed per profiled thread")
    parser.add_argument("--json", type=Path, help="write every raw figure to this file")
    args = parser.parse_args(argv)
    if args.serve_null_sink:
        serve_null_sink()
        return 0
    configs = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    if "none" not in configs:
        configs.insert(0, "none")

    pool = attribute_pool(256)
    mean_content = statistics.mean(content_bytes(a) for a in pool)
    sample = remote_document_bytes(pool[0])
    work = Path(tempfile.mkdtemp(prefix="genai-audit-bench-export-"))
    report: dict[str, Any] = {
        "spans": args.spans,
        "reps": args.reps,
        "content_bytes": mean_content,
        "document_bytes": sample,
    }
    try:
        if args.reps > 0 or args.profile:
            report |= throughput(args, configs, pool, work, f"content {mean_content:,.0f} B, document {sample:,} B")
        if args.stages:
            with null_sink() as (sink_url, _pid):
                report["stages"] = stage_costs(pool, args.spans, work, sink_url)
            print_stages(report["stages"], args.spans)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


def throughput(
    args: argparse.Namespace, configs: list[str], pool: list[dict[str, Any]], work: Path, sizes: str
) -> dict[str, Any]:
    """The runs of every configuration (and the profile), printed as tables; returns the raw figures."""
    node: EsNode | None = None
    sink = null_sink() if args.sink == "null" else None
    stack = ExitStack()  # the collector, when one runs
    try:
        if sink is not None:
            url, pid = sink.__enter__()
            log(f"null sink {url} (acknowledges bulk requests, stores nothing)")
        elif args.url:
            url, pid = args.url.rstrip("/"), None
        else:
            log("starting a local Elasticsearch node (builds once if needed)")
            node = EsNode(work / "node", heap=(args.heap, args.heap)).start()
            url, pid = node.url, node.pid
        bench = Bench(url, pid, args.spans, pool, work)
        if "collector" in configs and sink is not None:
            log("collector configuration left out: it is measured into the node only")
            configs = [c for c in configs if c != "collector"]
        if "collector" in configs:
            collector = start_collector(url, bench)
            if collector is None:
                configs = [c for c in configs if c != "collector"]
            else:
                stack.push(collector)  # started already: only its exit is left to the stack
        log(f"{url}; {args.spans:,} spans x {args.reps} reps; {sizes} per span")
        bench.run("spool", -1)  # warm-up: templates, connections, code paths
        for rep in range(args.reps):
            for config in configs:
                run = bench.run(config, rep)
                bench.runs.append(run)
                log(
                    f"rep {rep} {config:9s} {run.spans_per_s:8,.0f} spans/s end to end, "
                    f"offered {run.offered_per_s:8,.0f}/s, app {run.app_cpu_s / run.spans * 1e6:6.1f} µs/span, "
                    f"process {run.process_cpu_s / run.spans * 1e6:6.0f} µs/span, delivered {run.delivered:,}, "
                    f"dropped {run.dropped:,}; threads (µs/span) "
                    + ", ".join(f"{name} {cpu / run.spans * 1e6:.0f}" for name, cpu in sorted(run.thread_cpu_s.items()))
                )
        if bench.runs:
            load = os.getloadavg()
            target = "a null sink (no Elasticsearch)" if args.sink == "null" else "a real Elasticsearch 8.19 node"
            print(f"# Export throughput into {target}: {args.spans:,} spans per run, median of {args.reps}\n")
            print(
                f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
                f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end; {url}; {sizes} per span\n"
            )
            print(table(bench.runs, args.spans))
            print()
            print(thread_table(bench.runs))
            print()
            print(targets(bench.runs))
            if any(r.config == "collector" for r in bench.runs):
                print(
                    "\n`collector`: the SDK's OTLP/HTTP exporter behind a `BatchSpanProcessor` sized to the run, into "
                    "an OpenTelemetry Collector (`collector-config/bench-elasticsearch.yaml`: otlp receiver, batch "
                    "processor, elasticsearch exporter in `otel` mapping mode) on the same machine; delivered once "
                    "the node holds every span."
                )
        profile = profile_spool(bench, args.top, args.profile_cpu) if args.profile else None
        return {"runs": [asdict(r) | {"spans_per_s": r.spans_per_s} for r in bench.runs], "profile": profile}
    finally:
        stack.close()
        if sink is not None:
            sink.__exit__(None, None, None)
        if node is not None:
            node.stop()


def start_collector(url: str, bench: Bench) -> Any:
    """A collector between OTLP and the node (built on first use), or None when it cannot be had."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _collector import Collector, CollectorError, free_port

    port = free_port()
    config = Path(__file__).resolve().parents[1] / "collector-config" / "bench-elasticsearch.yaml"
    env = {"OTEL_BENCH_OTLP_ENDPOINT": f"127.0.0.1:{port}", "OTEL_BENCH_ES_URL": url}
    log("starting an OpenTelemetry Collector (built once if needed: Go, minutes)")
    collector = Collector(config, env, port)
    try:
        collector.__enter__()
    except CollectorError as exc:
        log(f"collector configuration left out: {exc}")
        return None
    bench.otlp_endpoint, bench.collector_pid = f"http://127.0.0.1:{port}", collector.pid
    return collector


def remote_document_bytes(attributes: dict[str, Any]) -> int:
    """Size of the JSON document one span of this benchmark becomes."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from genai_audit.store.elasticsearch import span_documents

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-assistant"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer(*SCOPE).start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes).end()
    (document,) = span_documents(memory.get_finished_spans())
    return len(json.dumps(document.source, separators=(",", ":")).encode())


if __name__ == "__main__":
    sys.exit(main())
