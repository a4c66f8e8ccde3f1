"""Session fixtures: real single-node Elasticsearch servers, 8.19 and 9.x, for the integration tests.

``es_node`` is the node a test runs against. It is the 8.19 node (``es_node_8``),
which every integration test uses. Tests marked ``es_smoke`` run a second time
against the 9.x node (``es_node_9``), with ``[es8]`` / ``[es9]`` in their ids:
the full set on one server, a smoke set on the other, without a second copy
of any test.

The nodes are built from ``es-node/`` with Maven (cached) and started on free
loopback ports; 8.19 needs Java 17+, 9.x a JDK 21+ (found in ``$JAVA_HOME``, on
``PATH`` or under ``/usr/lib/jvm``), both ``mvn``. Without them the tests that use
the node fail with a message naming what is missing. A node is started only when
a selected test needs it.

``GENAI_AUDIT_TEST_ES_URL`` points the tests at a node that is already running
(for instance the one ``make es-up`` started) instead of starting 8.19;
``GENAI_AUDIT_TEST_ES9_URL`` does the same for the 9.x node (``make es-up ES_VERSION=9``).
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

from tools.es_node import MAJORS, EsNode, EsNodeError, find_jdk

ENV_TEST_URL = "GENAI_AUDIT_TEST_ES_URL"
ENV_TEST_URL_9 = "GENAI_AUDIT_TEST_ES9_URL"
SMOKE = "es_smoke"
SMOKE_MAJORS = (8, 9)


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SMOKE}: Elasticsearch smoke set, run against the 9.x node as well as 8.19 (ids [es8] and [es9])",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``es_smoke`` that reaches ``es_node`` (directly or through other fixtures) runs once per major."""
    if metafunc.definition.get_closest_marker(SMOKE) is None:
        return
    if "es_node" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked {SMOKE} but does not use es_node")
    metafunc.parametrize("es_node", SMOKE_MAJORS, indirect=True, ids=[f"es{major}" for major in SMOKE_MAJORS])


def _missing_tools(major: int) -> list[str]:
    missing = []
    try:
        find_jdk(MAJORS[major].min_java, purpose=f"Elasticsearch {MAJORS[major].version}")
    except EsNodeError as exc:
        missing.append(str(exc))
    if not shutil.which("mvn"):
        missing.append("Maven (mvn) is not on PATH")
    return missing


def _node(major: int, env: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    external = os.environ.get(env, "").strip().rstrip("/")
    if external:
        yield RunningNode(external)
        return
    missing = _missing_tools(major)
    if missing:
        pytest.fail(f"cannot start the local Elasticsearch {MAJORS[major].version} node: {'; '.join(missing)}")
    node = EsNode(tmp_path_factory.mktemp(f"es-node-{major}"), major=major)
    try:
        node.start()
    except EsNodeError as exc:
        pytest.fail(str(exc))
    try:
        running = RunningNode(node.url, node.log_path)
        if running.major != major:
            pytest.fail(f"the node started as Elasticsearch {MAJORS[major].version} answers as {running.major}.x")
        yield running
    finally:
        node.stop()


@pytest.fixture(scope="session")
def es_node_8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The 8.19 node: every integration test runs against it (``GENAI_AUDIT_TEST_ES_URL`` replaces it)."""
    yield from _node(8, ENV_TEST_URL, tmp_path_factory)


@pytest.fixture(scope="session")
def es_node_9(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The 9.x node: the ``es_smoke`` tests run against it too (``GENAI_AUDIT_TEST_ES9_URL`` replaces it)."""
    yield from _node(9, ENV_TEST_URL_9, tmp_path_factory)


@pytest.fixture(scope="session")
def es_node(request: pytest.FixtureRequest) -> RunningNode:
    """The node this test runs against: 8.19, or the major an ``es_smoke`` parametrization chose.

    Both nodes are session fixtures of their own; this one only selects, so
    switching between them starts and stops nothing.
    """
    major: int = getattr(request, "param", 8)
    node: RunningNode = request.getfixturevalue(f"es_node_{major}")
    return node
