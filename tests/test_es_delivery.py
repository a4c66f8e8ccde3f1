"""No-loss delivery into a real Elasticsearch node: outage, kill -9, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from genai_audit import semconv as sc
from genai_audit.bootstrap import remote_processor
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.spool import SpoolingSpanProcessor
from tools.es_node import EsNode

pytestmark = pytest.mark.integration
INDEX = "traces-genai_audit.otel-default"


def stored_ids(url: str, session: str) -> list[str]:
    client = negotiating_client(url)
    client.indices.refresh(index=INDEX)
    result = client.search(index=INDEX, size=10_000, query={"term": {"session.id": session}}, source=False)
    client.close()
    return [hit["_id"] for hit in result["hits"]["hits"]]


def produce(processor: Any, session: str, n: int) -> list[str]:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("genai_audit.test")
    ids = []
    for i in range(n):
        with tracer.start_as_current_span(f"chat m{i}") as span:
            span.set_attribute(sc.OPERATION_NAME, "chat")
            span.set_attribute(sc.SESSION_ID, session)
            ctx = span.get_span_context()
            ids.append(f"{ctx.trace_id:032x}{ctx.span_id:016x}")
    return ids


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[EsNode]:
    node = EsNode(tmp_path / "node")
    node.start()
    yield node
    node.stop()


def test_outage_mid_stream_loses_and_duplicates_nothing(own_node: EsNode, tmp_path: Path) -> None:
    url = own_node.url
    port = int(url.rsplit(":", 1)[1])
    env = {**os.environ, "GENAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool")}
    processor = remote_processor(url, env)
    assert isinstance(processor, SpoolingSpanProcessor)
    processor.retry_initial, processor.retry_max = 0.2, 1.0
    session = f"outage-{uuid.uuid4().hex[:8]}"
    ids = produce(processor, session, 300)
    assert processor.force_flush(60_000)
    own_node.stop()  # the cluster goes away mid-stream
    ids += produce(processor, session, 300)
    assert processor.flush_to_spool(30_000)
    assert processor.spool.pending() >= 300
    restarted = EsNode(own_node.data_dir, port=port)
    restarted.start()
    try:
        ids += produce(processor, session, 100)
        assert processor.force_flush(120_000)
        stored = stored_ids(url, session)
        assert len(stored) == len(ids) == 700
        assert set(stored) == set(ids)
        assert processor.stats.accepted == 700 and processor.stats.refused == 0 and processor.stats.dropped == 0
    finally:
        processor.shutdown(1000)
        restarted.stop()


CRASHING_PRODUCER = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_es_delivery import produce
    from genai_audit.bootstrap import remote_processor
    processor = remote_processor({url!r})
    ids = produce(processor, {session!r}, 2000)
    assert processor.flush_to_spool(60000)
    print(json.dumps(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)
REPLAYER = textwrap.dedent(
    """
    from genai_audit.bootstrap import remote_processor
    processor = remote_processor({url!r})
    assert processor.force_flush(120000), "spool not drained"
    processor.shutdown()
    """
)


def test_kill_9_then_restart_replays_exactly_once(es_node: Any, tmp_path: Path) -> None:
    session = f"crash-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GENAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool")}
    tests = str(Path(__file__).parent)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_PRODUCER.format(tests=tests, url=es_node.url, session=session)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    accepted = json.loads(crashed.stdout)
    assert len(accepted) == 2000
    replay = subprocess.run(
        [sys.executable, "-c", REPLAYER.format(url=es_node.url)], env=env, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    stored = stored_ids(es_node.url, session)
    assert len(stored) == 2000
    assert set(stored) == set(accepted)


KILLED_BEFORE_REMOVAL = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    sys.path.insert(0, {tests!r})
    from test_es_delivery import produce
    from genai_audit.bootstrap import remote_processor
    from genai_audit.store.spool import Spool

    accepted = threading.Event()

    def die(self, *args):  # the first removal of delivered records: the process dies instead
        accepted.wait()
        os.kill(os.getpid(), signal.SIGKILL)

    Spool.remove_through = Spool.remove = die
    processor = remote_processor({url!r})
    ids = produce(processor, {session!r}, 1500)
    assert processor.flush_to_spool(60000)
    print(json.dumps(ids), flush=True)
    accepted.set()
    processor.force_flush(120000)
    sys.exit("the sender never removed a delivered record")
    """
)


def test_kill_9_between_delivery_and_removal_stores_each_span_once(es_node: Any, tmp_path: Path) -> None:
    """Batches the node took but the spool still holds are sent again after the crash: ``create`` answers 409
    for them, which counts as delivered, and no span is stored twice."""
    session = f"resend-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GENAI_AUDIT_SPOOL_DIR": str(tmp_path / "spool")}
    tests = str(Path(__file__).parent)
    crashed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_REMOVAL.format(tests=tests, url=es_node.url, session=session)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    accepted = json.loads(crashed.stdout)
    assert len(accepted) == 1500
    already = set(stored_ids(es_node.url, session))
    assert already and already < set(accepted)  # some batches reached the node before the crash
    replay = subprocess.run(
        [sys.executable, "-c", REPLAYER.format(url=es_node.url)], env=env, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    stored = stored_ids(es_node.url, session)
    assert len(stored) == len(set(stored)) == 1500
    assert set(stored) == set(accepted)
