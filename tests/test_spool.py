"""The durable spool: order, retries, quota, crash and replay, fork."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from genai_audit.serialize import span_document
from genai_audit.store.spool import Spool, SpooledDocument, SpoolingSpanProcessor


@dataclass(frozen=True)
class Doc:
    index: str
    id: str
    source: object


def to_documents(spans: Sequence[ReadableSpan]) -> Iterable[Doc]:
    for span in spans:
        doc = span_document(span)
        yield Doc("traces-test", doc["trace_id"] + doc["span_id"], doc)


@dataclass
class Report:
    undelivered: list[SpooledDocument] = field(default_factory=list)


class Receiver:
    """A delivery target that can be switched off, recording what arrives."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.received: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, docs: list[SpooledDocument]) -> Report:
        with self.lock:
            if not self.up:
                return Report(list(docs))
            self.received.extend(d.id for d in docs)
            return Report()


def produce(processor: SpoolingSpanProcessor, n: int) -> list[str]:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    ids = []
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"span {i}") as span:
            ctx = span.get_span_context()
            ids.append(f"{ctx.trace_id:032x}{ctx.span_id:016x}")
    return ids


def test_delivers_everything_in_order(tmp_path: Path) -> None:
    receiver = Receiver()
    processor = SpoolingSpanProcessor(Spool(tmp_path / "s.db"), to_documents, receiver)
    ids = produce(processor, 300)
    assert processor.force_flush(10_000)
    assert receiver.received == ids
    assert processor.stats.accepted == 300 and processor.stats.delivered == 300
    assert processor.spool.pending() == 0
    processor.shutdown()


def test_outage_keeps_records_until_delivery_resumes(tmp_path: Path) -> None:
    receiver = Receiver(up=False)
    processor = SpoolingSpanProcessor(
        Spool(tmp_path / "s.db"), to_documents, receiver, retry_initial=0.01, retry_max=0.05
    )
    ids = produce(processor, 200)
    assert processor.flush_to_spool(10_000)
    assert processor.spool.pending() == 200
    assert not processor.force_flush(300)  # cannot deliver while down
    assert processor.stats.failed_sends >= 1
    receiver.up = True
    assert processor.force_flush(10_000)
    assert receiver.received == ids
    processor.shutdown()


def test_partial_failure_retries_only_the_undelivered(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def flaky(docs: list[SpooledDocument]) -> Report:
        calls.append([d.id for d in docs])
        if len(calls) == 1:
            return Report([docs[1]])
        return Report()

    processor = SpoolingSpanProcessor(Spool(tmp_path / "s.db"), to_documents, flaky, retry_initial=0.01)
    ids = produce(processor, 3)
    assert processor.force_flush(10_000)
    delivered = [i for call in calls for i in call]
    assert sorted(set(delivered)) == sorted(ids)
    assert calls[1] == [ids[1]]
    processor.shutdown()


def test_quota_refuses_and_counts(tmp_path: Path) -> None:
    processor = SpoolingSpanProcessor(Spool(tmp_path / "s.db", quota_bytes=64 * 1024), to_documents, Receiver(False))
    produce(processor, 2000)
    processor.flush_to_spool(10_000)
    stats = processor.stats
    assert stats.refused > 0
    assert stats.accepted + stats.refused == 2000
    assert processor.spool.pending() * 1 <= stats.accepted
    processor.shutdown(100)


def test_shutdown_keeps_undelivered_records_for_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = SpoolingSpanProcessor(Spool(path), to_documents, Receiver(False), retry_initial=0.01)
    ids = produce(first, 50)
    first.shutdown(200)
    receiver = Receiver()
    second = SpoolingSpanProcessor(Spool(path), to_documents, receiver)
    assert second.force_flush(10_000)
    assert receiver.received == ids
    second.shutdown()


PRODUCER = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_spool import Receiver, SpoolingSpanProcessor, Spool, to_documents, produce
    processor = SpoolingSpanProcessor(Spool({path!r}), to_documents, Receiver(up=False), retry_initial=60)
    ids = produce(processor, 500)
    assert processor.flush_to_spool(30000)
    print(json.dumps(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_9_after_accepting_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    code = PRODUCER.format(tests=str(Path(__file__).parent), path=str(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    accepted = json.loads(done.stdout)
    receiver = Receiver()
    processor = SpoolingSpanProcessor(Spool(path), to_documents, receiver)
    assert processor.force_flush(30_000)
    assert receiver.received == accepted
    assert len(set(receiver.received)) == 500
    processor.shutdown()


def test_fork_child_spools_its_own_spans(tmp_path: Path) -> None:
    receiver = Receiver(up=False)
    path = tmp_path / "s.db"
    processor = SpoolingSpanProcessor(Spool(path), to_documents, receiver, retry_initial=0.01)
    parent_ids = produce(processor, 10)
    assert processor.flush_to_spool(10_000)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: produce with the inherited processor, spool, report ids
        try:
            os.close(read)
            child_ids = produce(processor, 5)
            ok = processor.flush_to_spool(10_000)
            os.write(write, json.dumps({"ok": ok, "ids": child_ids}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        result = json.loads(handle.read())
    os.waitpid(pid, 0)
    assert result["ok"]
    receiver.up = True
    assert processor.force_flush(10_000)
    assert sorted(receiver.received) == sorted(parent_ids + result["ids"])
    processor.shutdown()
