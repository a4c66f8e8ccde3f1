"""Elasticsearch clients 8.x and 9.x against servers 8.x and 9.x: compatibility headers negotiated once.

A 9.x client sends ``compatible-with=9``, which an 8.x server refuses with
``media_type_header_exception``; genai-audit finds the server's major version
once and asks for what both ends accept. The tests against a node are ``es_smoke``: they run
against 8.19 and 9.x, so each client major meets each server major.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from elasticsearch import ApiError, Elasticsearch
from opentelemetry.sdk.trace.export import SpanExportResult
from packaging.version import Version

from genai_audit.store.elasticsearch import ElasticsearchSettings, ElasticsearchSpanExporter
from genai_audit.store.es_compat import CLIENT_MAJOR, NegotiatingTransport, compat_major, refused_media_type
from tests.es_fixtures import RunningNode
from tests.test_elasticsearch import chat_attributes, spans_with

integration = pytest.mark.integration
es_smoke = pytest.mark.es_smoke  # also against the 9.x node


@pytest.mark.parametrize(
    ("client", "server", "expected"), [(9, 8, 8), (8, 9, 8), (9, 9, 9), (8, 8, 8), (9, None, 9)]
)
def test_compat_major_is_what_both_ends_accept(client: int, server: int | None, expected: int) -> None:
    assert compat_major(client, server) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"type": "media_type_header_exception", "caused_by": {
            "reason": "Accept version must be either version 8 or 7, but found 9."}}}, 8),
        ({"error": {"type": "media_type_header_exception"}}, CLIENT_MAJOR - 1),
        ({"error": {"type": "mapper_parsing_exception"}}, None),
    ],
)
def test_refusal_names_the_version_to_ask_for(body: object, expected: int | None) -> None:
    assert refused_media_type(400, body) == expected
    assert refused_media_type(401, body) is None


@integration
@es_smoke
def test_plain_client_of_a_newer_major_is_refused(es_node: RunningNode) -> None:
    """The bug this module exists for, on the real node: a client newer than the server is refused as it comes."""
    plain = Elasticsearch(es_node.url, request_timeout=30)
    negotiated = ElasticsearchSettings.resolve(es_node.url, env={}).client(30)
    try:
        negotiated.search(index="traces-*", size=0)
        negotiated.search(index="traces-*", size=0)
        transport = negotiated.transport
        assert isinstance(transport, NegotiatingTransport)
        server = es_node.major
        assert transport.compat_major == min(CLIENT_MAJOR, server)
        if server < CLIENT_MAJOR:
            with pytest.raises(ApiError) as refused:
                plain.search(index="traces-*", size=0)
            assert "media_type_header_exception" in str(refused.value)
        else:
            plain.search(index="traces-*", size=0)
    finally:
        plain.close()
        negotiated.close()


@integration
@es_smoke
def test_write_then_query_with_the_installed_client(es_node: RunningNode, tmp_path: Path) -> None:
    """The new user's path: the exporter writes, ``genai-audit export --store URL`` reads it back."""
    namespace = f"c{uuid.uuid4().hex[:12]}"
    exporter = ElasticsearchSpanExporter(
        es_node.url, namespace=namespace, dead_letter_path=tmp_path / "dead.jsonl", env={}
    )
    try:
        assert exporter.export(spans_with(chat_attributes("mallory"))) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    negotiated = ElasticsearchSettings.resolve(es_node.url, env={}).client(30)
    negotiated.indices.refresh(index=f"traces-genai_audit.otel-{namespace}")
    negotiated.close()
    done = subprocess.run(
        [sys.executable, "-m", "genai_audit.cli", "export", "--store", es_node.url, "--user", "mallory"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "GENAI_AUDIT_ES_NAMESPACE": namespace},
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert '"mallory"' in done.stdout


# --- the other client major, and the oldest client of the declared range, each in a separate path ----------

def _declared_client_lower_bound() -> str:
    """The ``>=`` bound of the ``elasticsearch`` dependency the root pyproject.toml declares."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parent.parent
    (declared,) = [
        Requirement(r) for r in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
        if Requirement(r).name == "elasticsearch"
    ]
    (lower,) = [s.version for s in declared.specifier if s.operator == ">="]
    return lower


_OTHER_MAJOR = "8" if CLIENT_MAJOR >= 9 else "9"
#: label -> (requirement, the cache directory's name); the other major's newest release, and the
#: declared range's oldest release (what the lower bound claims)
_OTHER_CLIENTS = {
    "other-major": ("elasticsearch>=8.19,<9" if CLIENT_MAJOR >= 9 else "elasticsearch>=9,<10",
                    f"elasticsearch-client-{_OTHER_MAJOR}"),
    "oldest": (f"elasticsearch=={_declared_client_lower_bound()}",
               f"elasticsearch-client-{_declared_client_lower_bound()}"),
}

_OTHER_CLIENT_PROBE = """
import json, sys
import elasticsearch
from opentelemetry.sdk.trace.export import SpanExportResult
from genai_audit.forensics.elasticsearch import ElasticsearchAuditStore
from genai_audit.forensics.model import Filters
from genai_audit.store.elasticsearch import ElasticsearchSpanExporter
from tests.test_elasticsearch import chat_attributes, spans_with

url, namespace, dead = sys.argv[1:4]
exporter = ElasticsearchSpanExporter(url, namespace=namespace, dead_letter_path=dead, env={})
result = exporter.export(spans_with(chat_attributes("trudy"), chat_attributes("trudy")))
exporter.shutdown()
store = ElasticsearchAuditStore(url, namespace=namespace, env={})
store.client.indices.refresh(index=f"traces-genai_audit.otel-{namespace}")
found = store.query(Filters(user="trudy"))
print(json.dumps({"client": elasticsearch.__versionstr__, "result": result.name, "found": len(found),
                  "compat": store.client.transport.compat_major}))
"""


@pytest.fixture(scope="session", params=sorted(_OTHER_CLIENTS))
def other_client(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(label, path) of another ``elasticsearch`` client release, installed once into the user's cache directory."""
    from platformdirs import user_cache_path

    requirement, name = _OTHER_CLIENTS[request.param]
    target = user_cache_path("genai-audit") / name
    if not (target / ".installed").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(target), "--upgrade", requirement],
            check=True, timeout=600,
        )
        (target / ".installed").touch()
    return request.param, target


@integration
@es_smoke
def test_another_client_release_writes_and_queries(
    es_node: RunningNode, other_client: tuple[str, Path], tmp_path: Path
) -> None:
    """The declared client range is what is tested: the other major, and the oldest declared release,
    against the same node, write and query."""
    import os

    label, path = other_client
    namespace = f"o{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(Path.cwd())])}
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_CLIENT_PROBE, es_node.url, namespace, str(tmp_path / "dead.jsonl")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    client_major = int(answer["client"].split(".")[0])
    if label == "oldest":
        assert Version(answer["client"]) == Version(_declared_client_lower_bound())
    else:
        assert client_major != CLIENT_MAJOR
    assert answer["result"] == "SUCCESS"
    assert answer["found"] == 2
    assert answer["compat"] == min(client_major, es_node.major)
