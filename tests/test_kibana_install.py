"""`genai-audit kibana install` and `export`, against a local stand-in for Kibana's APIs (tests/kibana_api.py).

The stand-in checks each request against Kibana's published description of its endpoint and
keeps what Kibana would keep, so these tests see the requests' shape, their effect, and what a
second run changes.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_audit.cli import main
from genai_audit.kibana.objects import DATA_VIEW_ID, dashboards, ndjson, saved_objects
from genai_audit.kibana.rules import rules
from tests.kibana_api import KibanaStandIn

API_KEY = "a2V5LWlkOmtleS1zZWNyZXQ="  # base64 of "key-id:key-secret"


@pytest.fixture
def kibana() -> Iterator[KibanaStandIn]:
    connectors = {"c-log": ".server-log", "c-mail": ".email"}
    with KibanaStandIn(api_keys=(API_KEY,), spaces=("default", "security"), connectors=connectors) as stand_in:
        yield stand_in


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "api-key"
    path.write_text(API_KEY + "\n")
    return str(path)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["kibana", *argv], out=out), out.getvalue()


def install(kibana: KibanaStandIn, key_file: str, *extra: str) -> tuple[int, str]:
    return run("install", "--kibana", kibana.url, "--api-key-file", key_file, *extra)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_install_imports_every_object_and_creates_every_rule(kibana: KibanaStandIn, key_file: str) -> None:
    code, out = install(kibana, key_file)
    assert code == 0, out
    assert kibana.violations == []
    state = kibana.state()
    assert sorted(state["objects"]["default"]) == sorted(f"{o['type']}/{o['id']}" for o in saved_objects())
    assert sorted(state["rules"]["default"]) == sorted(spec.id for spec in rules())
    for spec in rules():
        stored = state["rules"]["default"][spec.id]
        assert (stored["name"], stored["rule_type_id"], stored["consumer"]) == (spec.name, ".es-query", "stackAlerts")
        assert stored["params"] == spec.params() and stored["actions"] == []
    method, path, headers = next(r for r in kibana.requests if r[1].startswith("/api/saved_objects/_import"))
    assert (method, path) == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert headers["kbn-xsrf"] and headers["authorization"] == f"ApiKey {API_KEY}"
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    creates = [(m, p) for m, p, _ in kibana.requests if p.startswith("/api/alerting/rule/")]
    assert creates == [("POST", f"/api/alerting/rule/{spec.id}") for spec in rules()]
    assert all(h["authorization"] == f"ApiKey {API_KEY}" for _, _, h in kibana.requests)
    assert "0 updated" in out and f"{len(rules())} created" in out
    for spec in dashboards():
        assert f"{kibana.url}/app/dashboards#/view/{spec.id}" in out


def test_second_install_changes_nothing(kibana: KibanaStandIn, key_file: str) -> None:
    """The same objects are imported again and every rule is found as it is: no update is sent."""
    assert install(kibana, key_file)[0] == 0
    before, seen = kibana.state(), len(kibana.requests)
    code, out = install(kibana, key_file)
    assert code == 0 and kibana.violations == []
    assert kibana.state() == before
    writes = kibana.writes(seen)
    assert writes[0] == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert writes[1:] == [("POST", f"/api/alerting/rule/{spec.id}") for spec in rules()]  # each answered 409
    assert f"{len(rules())} unchanged" in out and "0 created" in out


def test_a_rule_changed_in_kibana_is_put_back_with_the_update_schema(kibana: KibanaStandIn, key_file: str) -> None:
    assert install(kibana, key_file)[0] == 0
    spec = next(s for s in rules() if s.key == "error-burst")
    stored = kibana.rules["default"][spec.id]
    stored["params"] = {**stored["params"], "threshold": [99]}
    stored["enabled"] = False  # someone disabled it: install leaves that alone
    seen = len(kibana.requests)
    code, out = install(kibana, key_file)
    assert code == 0 and kibana.violations == []
    puts = [p for m, p in kibana.writes(seen) if m == "PUT"]
    assert puts == [f"/api/alerting/rule/{spec.id}"]
    assert kibana.rules["default"][spec.id]["params"]["threshold"] == [10]
    assert kibana.rules["default"][spec.id]["enabled"] is False
    assert "rule error-burst" in out and "1 updated" in out


def test_space_is_addressed_by_its_path_prefix(kibana: KibanaStandIn, tmp_path: Path) -> None:
    """--space puts everything in /s/<space>/api/...; a user name and password work as basic auth."""
    password = tmp_path / "password"
    password.write_text("changeme")
    code, out = run("install", "--kibana", kibana.url + "/", "--user", "elastic", "--password-file", str(password),
                    "--space", "security")
    assert code == 0, out
    assert kibana.violations == []
    assert "default" not in kibana.state()["objects"] and len(kibana.state()["rules"]["security"]) == len(rules())
    paths = [p for _, p, _ in kibana.requests]
    assert paths[:2] == ["/api/status", "/api/spaces/space/security"]
    assert all(p.startswith("/s/security/api/") for p in paths[2:])
    assert f"{kibana.url}/s/security/app/dashboards#/view/" in out


def test_connector_is_attached_to_every_rule(kibana: KibanaStandIn, key_file: str) -> None:
    code, _ = install(kibana, key_file, "--connector", "c-log")
    assert code == 0 and kibana.violations == []
    for rule in kibana.rules["default"].values():
        (action,) = rule["actions"]
        assert (action["group"], action["id"], action["connector_type_id"]) == ("query matched", "c-log", ".server-log")
        assert "{{context.message}}" in action["params"]["message"]
    seen = len(kibana.requests)
    assert install(kibana, key_file, "--connector", "c-log")[0] == 0
    assert not [m for m, _ in kibana.writes(seen) if m == "PUT"]  # the stored uuids do not count as a change
    code, out = install(kibana, key_file)  # without --connector the actions go again
    assert code == 0 and "updated" in out and all(r["actions"] == [] for r in kibana.rules["default"].values())


def test_wrong_credentials_give_one_line_and_change_nothing(
    kibana: KibanaStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong-key"
    wrong.write_text("bm90OnRoaXM=")
    code, _ = run("install", "--kibana", kibana.url, "--api-key-file", str(wrong))
    assert code == 1
    assert one_line_error(capsys) == (
        f"genai-audit: Kibana at {kibana.url} refused the credentials (HTTP 401) while reading its status"
    )
    assert kibana.writes() == [] and kibana.state() == {"objects": {}, "rules": {}}


def test_unknown_space_gives_one_line_and_changes_nothing(
    kibana: KibanaStandIn, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = install(kibana, key_file, "--space", "marketing")
    assert code == 1
    assert one_line_error(capsys) == f"genai-audit: unknown space 'marketing' in Kibana at {kibana.url}"
    assert kibana.writes() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://kibana.example", "--kibana 'ftp://kibana.example': expected an http:// or https:// URL"),
        ("http://elastic:pw@kibana.example", "--kibana: put no credentials in the URL"),
    ],
)
def test_malformed_url_gives_one_line(
    key_file: str, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    assert run("install", "--kibana", url, "--api-key-file", key_file)[0] == 1
    assert one_line_error(capsys).startswith(f"genai-audit: {message}")


def test_unreachable_kibana_gives_one_line(key_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert run("install", "--kibana", f"http://127.0.0.1:{port}", "--api-key-file", key_file)[0] == 1
    assert one_line_error(capsys) == f"genai-audit: cannot reach Kibana at http://127.0.0.1:{port}: Connection refused"


def test_elasticsearch_url_instead_of_kibana_is_named(key_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with KibanaStandIn(pretend_elasticsearch=True) as elasticsearch:
        assert run("install", "--kibana", elasticsearch.url, "--api-key-file", key_file)[0] == 1
        assert one_line_error(capsys) == (
            f"genai-audit: {elasticsearch.url} is Elasticsearch, not Kibana: give the Kibana URL with --kibana"
        )


def test_credential_options_are_checked(
    kibana: KibanaStandIn, key_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["--api-key-file", key_file, "--user", "elastic"], "give --api-key-file, or --user with --password-file"),
        (["--user", "elastic"], "--user and --password-file go together"),
        ([], "Kibana credentials: give --api-key-file, or --user with --password-file"),
        (["--api-key-file", str(tmp_path / "missing")], f"--api-key-file {tmp_path / 'missing'}: cannot read it"),
        (["--api-key-file", key_file, "--space", "Bad Space"], "--space 'Bad Space': a space id is lowercase"),
        (["--api-key-file", key_file, "--jaeger-url", "localhost:16686"], "--jaeger-url: Jaeger URL"),
    ]
    for options, message in cases:
        assert run("install", "--kibana", kibana.url, *options)[0] == 1, options
        assert one_line_error(capsys).startswith(f"genai-audit: {message}"), options
    assert kibana.writes() == []


def test_partial_import_failure_names_the_objects_and_still_installs_the_rules(
    kibana: KibanaStandIn, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    overview = dashboards()[0]
    panel = overview.panels[0]
    kibana.fail_import = {overview.id, panel.id}
    code, out = install(kibana, key_file)
    assert code == 1
    error = one_line_error(capsys)
    assert error.startswith("genai-audit: 2 saved object(s) not imported: ")
    assert f'dashboard {overview.id} "genai-audit: Overview": unknown (document could not be migrated)' in error
    assert f'lens {panel.id} "{panel.title}": unknown' in error
    assert f"not imported: lens {panel.id}" in out
    assert len(kibana.state()["rules"]["default"]) == len(rules())
    assert len(kibana.state()["objects"]["default"]) == len(saved_objects()) - 2


def test_unknown_or_unsupported_connector_is_refused_before_anything_is_written(
    kibana: KibanaStandIn, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(kibana, key_file, "--connector", "c-none")[0] == 1
    assert one_line_error(capsys) == "genai-audit: unknown connector 'c-none' in space 'default'"
    assert install(kibana, key_file, "--connector", "c-mail")[0] == 1
    assert one_line_error(capsys).startswith("genai-audit: connector type .email: install attaches")
    assert kibana.writes() == []


def test_bad_input_never_shows_a_traceback(key_file: str, tmp_path: Path) -> None:
    """As a separate process: exit 1 and one line on stderr."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "genai_audit.cli", "kibana", "install", "--kibana", f"http://127.0.0.1:{port}",
         "--api-key-file", key_file], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("genai-audit: cannot reach Kibana at") and result.stderr.count("\n") == 1


def test_export_writes_the_objects_and_the_rule_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "objects.ndjson"
    code, out = run("export", "-o", str(target), "--rules-dir", str(tmp_path / "rules"),
                    "--jaeger-url", "https://jaeger.example/")
    assert code == 0 and "wrote" in out
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    (view,) = [o for o in lines if o["type"] == "index-pattern"]
    assert view["id"] == DATA_VIEW_ID
    assert "https://jaeger.example/trace/{{value}}" in view["attributes"]["fieldFormatMap"]
    assert sorted(p.stem for p in (tmp_path / "rules").iterdir()) == sorted(spec.key for spec in rules())
    code, out = run("export")
    assert code == 0 and out == ndjson()
    assert run("export", "--jaeger-url", "nope")[0] == 1
    assert one_line_error(capsys).startswith("genai-audit: --jaeger-url: Jaeger URL 'nope'")
