"""Session fixture: one real single-node Elasticsearch 8.19 for the integration tests.

The node is built from ``es-node/`` with Maven (cached) and started on a free
loopback port; it needs Java 17+ and ``mvn``; without them the tests that use it fail with
a message naming what is missing.
``GENAI_AUDIT_TEST_ES_URL`` points the tests at a node that is already running
(for instance the one ``make es-up`` started) instead of starting one.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.es_node import EsNode, EsNodeError

ENV_TEST_URL = "GENAI_AUDIT_TEST_ES_URL"


@dataclass(frozen=True)
class RunningNode:
    """The node under test: its URL, and its log when this session started it."""

    url: str
    log_path: Path | None = None

    @property
    def major(self) -> int:
        """The server's major version, asked with plain JSON (which every server major accepts)."""
        url = f"{self.url}/_nodes/_local?filter_path=nodes.*.version"
        with urllib.request.urlopen(url, timeout=30) as answer:
            nodes = json.load(answer)["nodes"]
        return int(next(iter(nodes.values()))["version"].split(".")[0])


def _missing_tools() -> list[str]:
    missing = []
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        missing.append("java")
    if not shutil.which("mvn"):
        missing.append("mvn")
    return missing


@pytest.fixture(scope="session")
def es_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    external = os.environ.get(ENV_TEST_URL, "").strip().rstrip("/")
    if external:
        yield RunningNode(external)
        return
    missing = _missing_tools()
    if missing:
        pytest.fail(f"a local Elasticsearch node needs {' and '.join(missing)} (Java 17+, Maven)")
    node = EsNode(tmp_path_factory.mktemp("es-node"))
    try:
        node.start()
    except EsNodeError as exc:
        pytest.fail(str(exc))
    try:
        yield RunningNode(node.url, node.log_path)
    finally:
        node.stop()
