"""The durable spool: order, retries, quota, crash and replay, fork."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from genai_audit.serialize import span_document
from genai_audit.store.spool import PAGE_SIZE, Spool, SpooledDocument, SpoolingSpanProcessor


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


# --- delivery with a batch in flight and the next one read meanwhile ---------------------------------


class SlowReceiver(Receiver):
    """Takes a while per batch (so the read-ahead runs beside it) and can fail chosen calls.

    ``fail`` maps a call number (0-based) to the positions in that batch it reports undelivered
    (``None``: the whole batch). ``calls`` records every batch offered, ``received`` what was taken.
    """

    def __init__(self, fail: dict[int, list[int] | None] | None = None, delay: float = 0.002) -> None:
        super().__init__()
        self.fail = fail or {}
        self.delay = delay
        self.calls: list[list[str]] = []

    def __call__(self, docs: list[SpooledDocument]) -> Report:
        time.sleep(self.delay)
        with self.lock:
            number = len(self.calls)
            self.calls.append([d.id for d in docs])
            if number in self.fail:
                positions = self.fail[number]
                failed = list(docs) if positions is None else [docs[p] for p in positions]
                self.received.extend(d.id for d in docs if d not in failed)
                return Report(failed)
            self.received.extend(d.id for d in docs)
            return Report()


def test_read_ahead_delivers_in_order_exactly_once(tmp_path: Path) -> None:
    receiver = SlowReceiver()
    processor = SpoolingSpanProcessor(Spool(tmp_path / "s.db"), to_documents, receiver, batch_size=7)
    ids = produce(processor, 300)
    assert processor.force_flush(30_000)
    assert receiver.received == ids  # in order, each once
    assert [i for call in receiver.calls for i in call] == ids  # and each offered once
    assert processor.stats.delivered == 300 and processor.spool.pending() == 0
    processor.shutdown()


def test_failed_batch_is_retried_before_the_read_ahead_is_sent(tmp_path: Path) -> None:
    """The batch after a failed one was read while it was in flight; it is not sent before the retry."""
    spool = Spool(tmp_path / "s.db")
    ids = [f"doc-{n:03d}" for n in range(60)]
    spool.append([("traces-test", i, json.dumps({"n": i})) for i in ids])  # all there: every batch is full
    receiver = SlowReceiver(fail={2: None, 5: [1, 3]})
    processor = SpoolingSpanProcessor(
        spool, to_documents, receiver, batch_size=5, retry_initial=0.01, retry_max=0.02
    )
    # a flush gives up once two rounds failed during it, which both scripted failures do when the sender
    # has not started before the flush (a loaded machine): flush again, as a caller would
    deadline = time.monotonic() + 60
    while not processor.force_flush(30_000):
        assert time.monotonic() < deadline, "never delivered"
    calls = receiver.calls
    assert calls[:3] == [ids[0:5], ids[5:10], ids[10:15]]
    assert calls[3] == calls[2]  # the failed batch again, not the one read ahead
    assert calls[5] == ids[20:25]
    assert calls[6] == [ids[21], ids[23], *ids[25:28]]  # the two undelivered first, then on from the head
    assert sorted(receiver.received) == ids and len(receiver.received) == 60  # each taken exactly once
    # taken in spool order, except that a retried record follows the ones of its batch that went through
    assert [i for i in receiver.received if i not in (ids[21], ids[23])] == [
        i for i in ids if i not in (ids[21], ids[23])
    ]
    assert processor.spool.pending() == 0 and processor.stats.delivered == 60
    processor.shutdown()


def test_records_whose_removal_failed_are_sent_again_not_lost(tmp_path: Path, monkeypatch: Any) -> None:
    """Removal after delivery fails (as if the process died between the two): the records go out again."""
    failures = {"left": 2}
    original = Spool.remove_through

    def flaky_remove(self: Spool, first: int, last: int) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        original(self, first, last)

    monkeypatch.setattr(Spool, "remove_through", flaky_remove)
    receiver = SlowReceiver()
    processor = SpoolingSpanProcessor(Spool(tmp_path / "s.db"), to_documents, receiver, batch_size=10)
    ids = produce(processor, 50)
    assert processor.force_flush(30_000)
    assert set(receiver.received) == set(ids)  # nothing lost; at least once: some were sent twice
    assert len(receiver.received) > 50
    assert processor.spool.pending() == 0
    processor.shutdown()


def test_remove_through_removes_only_the_range(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    spool.append([("i", f"d{n}", "{}") for n in range(10)])
    spool.remove_through(3, 6)
    assert [d.id for d in spool.head(100)] == ["d0", "d1", "d6", "d7", "d8", "d9"]
    assert [d.id for d in spool.head(2, after=7)] == ["d7", "d8"]
    spool.close()


def test_gaps_in_a_delivered_batch_are_removed_row_by_row(tmp_path: Path) -> None:
    """A record erased from the middle of the spool leaves a gap; delivery still removes exactly its batch."""
    path = tmp_path / "s.db"
    receiver = Receiver(up=False)
    processor = SpoolingSpanProcessor(Spool(path), to_documents, receiver, batch_size=4, retry_initial=0.01)
    ids = produce(processor, 10)
    assert processor.flush_to_spool(10_000)
    erased = processor.spool.head(3)[2]
    processor.spool.remove([erased.seq])
    receiver.up = True
    assert processor.force_flush(10_000)
    assert receiver.received == [i for i in ids if i != erased.id]
    processor.shutdown()


def test_new_spool_uses_large_pages_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    fresh = Spool(tmp_path / "new.db")
    assert fresh._conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    fresh.close()
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, idx TEXT NOT NULL,"
                 " doc_id TEXT NOT NULL, body TEXT NOT NULL)")
    conn.execute("INSERT INTO spool (idx, doc_id, body) VALUES ('i', 'kept', '{}')")
    conn.commit()
    conn.close()
    reopened = Spool(old)
    assert reopened._conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert [d.id for d in reopened.head(10)] == ["kept"]
    reopened.close()


def test_appends_are_synced_removals_are_not(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    assert spool._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the accepting connection
    assert spool._send_conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: reads and removals
    spool.close()
