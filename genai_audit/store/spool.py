"""A durable local spool between the span pipeline and a remote store.

The OpenTelemetry SDK's batch processor keeps spans in memory, drops them when
its queue is full and forgets a batch whose export failed. An audit trail
cannot: :class:`SpoolingSpanProcessor` takes each finished span off the
application thread in microseconds, a writer thread commits them in groups to
a SQLite spool file (WAL, ``synchronous=FULL``), and a sender thread delivers
the spool in order, deleting what the remote store acknowledged. A span is
*accepted* once its group is committed: from then on it survives an outage of
the remote store, a ``kill -9`` and a restart (unsent records are replayed
when the next process opens the spool). Delivery is at-least-once and the
remote writes are idempotent (deterministic ids), so a replay never
duplicates.

The spool is bounded by a disk quota: above 80 % it warns, and when full it
refuses new spans and counts them. Nothing is dropped without being counted:
see :attr:`SpoolingSpanProcessor.stats`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

logger = logging.getLogger("genai_audit.spool")

DEFAULT_QUOTA_BYTES = 1 << 30  # 1 GiB
DEFAULT_MAX_QUEUE = 100_000
COMPACT_INTERVAL = 30.0  # seconds between returning the space of delivered records
WARN_FRACTION = 0.8
#: page size of a new spool file. A span document is a few kilobytes: on SQLite's default 4 KiB pages
#: every record spills into overflow pages, and writing, reading and deleting it costs about twice the
#: work it does on 32 KiB pages, where several records share a page. (An existing file keeps its size.)
PAGE_SIZE = 32768
#: how documents are written into the spool (one encoder, not one per ``json.dumps`` call)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class Document(Protocol):
    @property
    def index(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def source(self) -> Any: ...


@dataclass(frozen=True)
class SpooledDocument:
    """A document read back from the spool; ``seq`` is its position."""

    seq: int
    index: str
    id: str
    source: Any


class Report(Protocol):
    undelivered: Sequence[Document]


Deliver = Callable[[list[SpooledDocument]], Report]
ToDocuments = Callable[[Sequence[ReadableSpan]], Iterable[Document]]


class SpoolError(Exception):
    """The spool file cannot be opened or written."""


class SpoolFull(SpoolError):
    """The spool reached its disk quota."""


class Spool:
    """An append-only, ordered queue of documents in one SQLite file.

    Two connections: appends go through one with ``synchronous=FULL`` (a record
    is on disk when :meth:`append` returns); reading the head and removing
    delivered records go through the other, with ``synchronous=NORMAL``: a
    removal lost to a power cut only sends again a record the store already
    has (its writes are idempotent), and its commit need not wait for an
    ``fsync``. In WAL mode the reader never waits for an append to commit.
    """

    def __init__(self, path: str | os.PathLike[str], quota_bytes: int = DEFAULT_QUOTA_BYTES) -> None:
        self.path = Path(path)
        self.quota_bytes = quota_bytes
        self._lock = threading.Lock()
        self._conn = self._open(durable=True)
        self._send_lock = threading.Lock()
        self._send_conn = self._open(durable=False)

    def _open(self, *, durable: bool) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fresh = not self.path.exists()
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            if fresh:
                os.chmod(self.path, 0o600)
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, idx TEXT NOT NULL,"
                " doc_id TEXT NOT NULL, body TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
        return conn

    def reopen(self) -> None:
        """New connections (after ``fork``: a connection must not cross processes)."""
        self._lock = threading.Lock()
        self._conn = self._open(durable=True)
        self._send_lock = threading.Lock()
        self._send_conn = self._open(durable=False)

    def size_bytes(self) -> int:
        with self._lock:
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        wal = Path(f"{self.path}-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        return int((pages - free) * page_size + wal_size)

    def append(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Commit ``(index, id, json body)`` rows durably, or raise :class:`SpoolFull` / :class:`SpoolError`."""
        if not rows:
            return
        incoming = sum(len(body) + len(doc_id) + len(index) for index, doc_id, body in rows)
        if self.size_bytes() + incoming > self.quota_bytes:
            raise SpoolFull(f"spool {self.path} is at its quota of {self.quota_bytes} bytes")
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany("INSERT INTO spool (idx, doc_id, body) VALUES (?, ?, ?)", rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write the spool {self.path}: {exc}") from None

    def head(self, limit: int, *, raw: bool = False, after: int = 0) -> list[SpooledDocument]:
        """The oldest records (those past position ``after``); ``raw`` leaves each body as the JSON text
        it was stored as."""
        with self._send_lock:
            rows = self._send_conn.execute(
                "SELECT seq, idx, doc_id, body FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        if raw:
            return [SpooledDocument(seq, index, doc_id, body) for seq, index, doc_id, body in rows]
        return [SpooledDocument(seq, index, doc_id, json.loads(body)) for seq, index, doc_id, body in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered records (not synced; see the class documentation)."""
        self._remove("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])

    def remove_through(self, first: int, last: int) -> None:
        """Forget every record from position ``first`` to ``last``: one range deletion instead of one per row.

        For a batch :meth:`head` returned and that was delivered whole: positions only grow, so no record
        added since falls inside the range.
        """
        self._remove("DELETE FROM spool WHERE seq BETWEEN ? AND ?", [(first, last)])

    def _remove(self, statement: str, parameters: list[tuple[int, ...]]) -> None:
        with self._send_lock:
            self._send_conn.execute("BEGIN IMMEDIATE")
            try:
                self._send_conn.executemany(statement, parameters)
                self._send_conn.execute("COMMIT")
            except BaseException:
                self._send_conn.execute("ROLLBACK")
                raise

    def compact(self) -> None:
        with self._send_lock:
            self._send_conn.execute("PRAGMA incremental_vacuum")
            self._send_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def pending(self) -> int:
        """How many records wait (counts the table: for reports, not for loops)."""
        with self._send_lock:
            return int(self._send_conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def has_pending(self) -> bool:
        """Whether any record waits (one primary-key probe)."""
        with self._send_lock:
            return self._send_conn.execute("SELECT 1 FROM spool LIMIT 1").fetchone() is not None

    def close(self) -> None:
        with self._send_lock:
            self._send_conn.close()
        with self._lock:
            self._conn.close()


@dataclass
class SpoolStats:
    """Counters of one :class:`SpoolingSpanProcessor` (spans, except ``delivered``: documents)."""

    accepted: int = 0
    refused: int = 0
    dropped: int = 0
    delivered: int = 0
    failed_sends: int = 0
    errors: list[str] = field(default_factory=list)


_T = TypeVar("_T")


class _Helper:
    """One daemon thread running the jobs it is given, one after the other, each with a future for its result.

    A daemon like the writer and the sender: a job stuck on the spool file never holds up the exit.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., _T], *args: Any) -> Future[_T]:
        future: Future[_T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(function(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting thread, which reports it
                future.set_exception(exc)
            finally:
                if not future.done():  # a BaseException went through: whoever waits must not wait forever
                    future.set_exception(RuntimeError("the spool helper thread was interrupted"))

        self._jobs.put(job)
        return future

    def close(self) -> None:
        """The thread ends after the jobs already given."""
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()


def _reinit_children() -> None:
    for processor in list(_instances):
        processor._after_fork()


_instances: weakref.WeakSet[SpoolingSpanProcessor] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_children)


class SpoolingSpanProcessor(SpanProcessor):
    """Spools finished spans durably and delivers them in order; see the module docstring.

    ``to_documents`` turns spans into documents (``index``, ``id``, ``source``);
    ``deliver`` sends a list of spooled documents and reports those it could
    not deliver (they stay spooled and are retried with backoff).
    ``on_refused`` is told which documents were made but could not be spooled;
    ``on_flushed`` runs after a flush or shutdown has spooled everything (the
    integrity sealer records the one and signs a checkpoint at the other).
    """

    def __init__(
        self,
        spool: Spool,
        to_documents: ToDocuments,
        deliver: Deliver,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = 500,
        commit_interval: float = 0.05,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        on_refused: Callable[[list[Document]], None] | None = None,
        on_flushed: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
        raw_bodies: bool = False,
    ) -> None:
        self.spool = spool
        self.on_refused = on_refused
        self.on_flushed = on_flushed
        self.on_shutdown = on_shutdown
        self.raw_bodies = raw_bodies
        self._shut = False
        self.to_documents = to_documents
        self.deliver = deliver
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.commit_interval = commit_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._stopping = False
        self._warned_full = False
        self._threads: list[threading.Thread] = []
        self._fresh_state()
        _instances.add(self)
        self._start()

    def _fresh_state(self) -> None:
        """Queue, signals and counters of this process (new at construction and in a forked child)."""
        self.stats = SpoolStats()
        self._queue: deque[ReadableSpan] = deque()
        self._cond = threading.Condition()
        self._send_wake = threading.Event()
        self._in_flight = 0
        self._pid = os.getpid()

    # -- threads -------------------------------------------------------------------------------
    def _start(self) -> None:
        self._threads = [
            threading.Thread(target=self._write_loop, name="genai-audit-spool-writer", daemon=True),
            threading.Thread(target=self._send_loop, name="genai-audit-spool-sender", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _after_fork(self) -> None:
        # The parent keeps what it queued; the child starts empty with its own connection and threads.
        self._fresh_state()
        try:
            self.spool.reopen()
        except SpoolError:
            logger.error("genai-audit: the spool could not be reopened after fork", exc_info=True)
            return
        if not self._stopping:
            self._start()

    # -- span processor ---------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            if self._stopping:
                self.stats.dropped += 1
                return
            if len(self._queue) >= self.max_queue:
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    logger.error("genai-audit: spool queue full; %d spans dropped so far", self.stats.dropped)
                return
            self._queue.append(span)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def _take(self) -> list[ReadableSpan]:
        with self._cond:
            if not self._queue and not self._stopping:
                self._cond.wait(self.commit_interval)
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch_size * 4))]
            self._in_flight = len(batch)
            return batch

    def _write_loop(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._write(batch)
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()
                if self._stopping and not self._queue:
                    return

    def _write(self, batch: list[ReadableSpan]) -> None:
        docs: list[Document] = []
        try:
            docs = list(self.to_documents(batch))
            encode = _ENCODER.encode
            # a source that is a str is the document already as JSON (the sealer's encoding): kept as it is
            rows = [
                (doc.index, doc.id, doc.source if isinstance(doc.source, str) else encode(doc.source)) for doc in docs
            ]
            self.spool.append(rows)
        except SpoolFull as exc:
            self.stats.refused += len(batch)
            logger.error("genai-audit: %s; %d spans refused so far", exc, self.stats.refused)
            self._refused(docs)
            return
        except Exception as exc:
            self.stats.refused += len(batch)
            self.stats.errors.append(str(exc))
            logger.error("genai-audit: %d spans could not be spooled", len(batch), exc_info=True)
            self._refused(docs)
            return
        self.stats.accepted += len(batch)
        self._check_quota()
        self._send_wake.set()

    def _refused(self, docs: list[Document]) -> None:
        if self.on_refused is not None and docs:
            try:
                self.on_refused(docs)
            except Exception:
                logger.error("genai-audit: recording refused documents failed", exc_info=True)

    def _flushed(self) -> None:
        if self.on_flushed is not None:
            try:
                self.on_flushed()
            except Exception:
                logger.error("genai-audit: the after-flush hook failed", exc_info=True)

    def _check_quota(self) -> None:
        used = self.spool.size_bytes()
        near = used >= self.spool.quota_bytes * WARN_FRACTION
        if near and not self._warned_full:
            logger.warning(
                "genai-audit: spool %s is %d%% full (%d of %d bytes); the remote store is not keeping up",
                self.spool.path, used * 100 // self.spool.quota_bytes, used, self.spool.quota_bytes,
            )
        self._warned_full = near

    def _send_loop(self) -> None:
        """Deliver the spool in order, one batch in flight at a time.

        While a batch is in flight, a helper thread removes the batch delivered
        before it and reads the records after it, so the store is not kept
        waiting for the spool's own work between two requests. The next batch
        is sent only once the one in flight is settled: after a failure the
        read-ahead is dropped and delivery starts again at the head, so records
        still go out in spool order, a failed one before any later one.
        """
        helper = _Helper("genai-audit-spool-helper")
        try:
            self._deliver_spool(helper)
        finally:
            helper.close()

    def _deliver_spool(self, helper: _Helper) -> None:
        failures = 0
        last_compact = 0.0
        ahead: list[SpooledDocument] | None = None  # the records after the batch in flight, read meanwhile
        delivered: list[SpooledDocument] = []  # delivered, to be removed from the spool
        while True:
            batch = ahead if ahead is not None else self._read_head()
            ahead = None
            if not batch:
                self._forget(delivered)
                delivered = []
                if self._stopping:
                    return
                self._send_wake.wait(0.5)
                self._send_wake.clear()
                continue
            # the helper removes what the previous round delivered and reads on from the end of this batch
            chores = helper.submit(self._remove_and_read, delivered, batch[-1].seq)
            delivered = []
            undelivered: set[tuple[str, str]] = {(d.index, d.id) for d in batch}
            try:
                report = self.deliver(batch)
                undelivered = {(d.index, d.id) for d in report.undelivered}
            except Exception:
                logger.warning("genai-audit: delivery from the spool failed", exc_info=True)
            try:
                read_ahead = chores.result()
            except Exception:
                logger.error("genai-audit: the spool helper failed", exc_info=True)
                read_ahead = None
            if not undelivered:
                delivered, ahead = batch, read_ahead
                if failures:
                    logger.info("genai-audit: delivery from the spool resumed")
                failures = 0
                if not ahead:  # nothing follows: forget the batch now (a flush waits for an empty spool)
                    self._forget(delivered)
                    delivered = []
                    now = time.monotonic()
                    if now - last_compact > COMPACT_INTERVAL and not self.spool.has_pending():
                        self.spool.compact()
                        last_compact = now
                continue
            # Some records failed: forget the others; the read-ahead is dropped, delivery restarts at the head.
            self._forget([d for d in batch if (d.index, d.id) not in undelivered])
            failures += 1
            self.stats.failed_sends += 1
            if self._stopping:
                return
            delay = min(self.retry_max, self.retry_initial * 2 ** min(failures - 1, 16))
            self._send_wake.wait(delay)
            self._send_wake.clear()

    def _read_head(self) -> list[SpooledDocument]:
        try:
            return self.spool.head(self.batch_size, raw=self.raw_bodies)
        except Exception:
            logger.error("genai-audit: cannot read the spool", exc_info=True)
            return []

    def _remove_and_read(self, delivered: list[SpooledDocument], after: int) -> list[SpooledDocument] | None:
        """The helper's chores during a delivery; ``None`` when the spool could not be read (read again later)."""
        self._forget(delivered)
        try:
            return self.spool.head(self.batch_size, raw=self.raw_bodies, after=after)
        except Exception:
            logger.error("genai-audit: cannot read the spool", exc_info=True)
            return None

    def _forget(self, delivered: list[SpooledDocument]) -> None:
        """Remove delivered records from the spool; a failure only means they are sent again."""
        if not delivered:
            return
        try:
            first, last = delivered[0].seq, delivered[-1].seq
            if last - first + 1 == len(delivered):  # a whole batch (positions are consecutive): one range
                self.spool.remove_through(first, last)
            else:
                self.spool.remove([d.seq for d in delivered])
            self.stats.delivered += len(delivered)
        except Exception:
            logger.error("genai-audit: cannot remove delivered records from the spool", exc_info=True)

    # -- flushing ----------------------------------------------------------------------------
    def _wait_spooled(self, deadline: float) -> bool:
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def flush_to_spool(self, timeout_millis: int = 30000) -> bool:
        """Wait until every span handed over so far is committed to the spool (or refused and counted)."""
        done = self._wait_spooled(time.monotonic() + timeout_millis / 1000)
        if done:
            self._flushed()
        return done

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Spool everything, then wait for delivery; True when the spool is empty.

        Returns False at the deadline, or once two delivery rounds have failed
        during the flush (the records stay spooled and the sender keeps its
        backoff, so a flush never turns into a burst of retries).
        """
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._wait_spooled(deadline):
            return False
        self._flushed()
        failed_before = self.stats.failed_sends
        self._send_wake.set()  # once: a sender waiting out a backoff tries now
        while self.spool.has_pending():
            if time.monotonic() >= deadline or self.stats.failed_sends > failed_before + 1:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self, timeout_millis: int = 10000) -> None:
        """Spool what is queued, try to deliver within the timeout; the rest stays spooled for the next start.

        Calling it again does nothing.
        """
        if os.getpid() != self._pid or self._shut:
            return
        self._shut = True
        self.force_flush(timeout_millis)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._send_wake.set()
        if self.on_shutdown is not None:  # interrupts a delivery that is waiting out its own retries
            try:
                self.on_shutdown()
            except Exception:
                logger.debug("spool target shutdown failed", exc_info=True)
        for thread in self._threads:
            thread.join(timeout=max(1.0, timeout_millis / 1000))
        self._flushed()
        left = self.spool.pending()
        if left:
            logger.warning("genai-audit: %d records remain in the spool %s; they are sent on the next start",
                           left, self.spool.path)
