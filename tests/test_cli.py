"""The CLI: export, sessions, replay, and clear errors on bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import genai_audit
from genai_audit.cli import main
from genai_audit.instrumentation.openai import OpenAIInstrumentor
from genai_audit.store.sqlite import SqliteSpanExporter
from genai_audit.testing.fake_provider import Error, FakeProvider


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, provider: FakeProvider) -> str:
    path = tmp_path_factory.mktemp("cli") / "audit.db"
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path)))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    client = openai.OpenAI(api_key="t", base_url=provider.openai_base_url, max_retries=0)
    provider.reset()
    with genai_audit.context(user_id="ann", session_id="sess-A", feature="support"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "system", "content": "Be kind"},
                                                                 {"role": "user", "content": "Where is order 5?"}])
        provider.script(Error(500, "boom"))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "again"}])
    with genai_audit.context(user_id="ben", session_id="sess-B"):
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    instrumentor.uninstrument()
    tracer_provider.shutdown()
    return str(path)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_export_all_and_filtered(store: str) -> None:
    """export prints JSON lines; --session/--user filter them."""
    code, text = run("export", "--store", store)
    assert code == 0
    docs = [json.loads(line) for line in text.splitlines()]
    assert len(docs) == 3
    assert len(run("export", "--store", store, "--session", "sess-A")[1].splitlines()) == 2
    assert len(run("export", "--store", store, "--user", "ben")[1].splitlines()) == 1
    assert run("export", "--store", store, "--since", "2999-01-01")[1] == ""
    assert len(run("export", "--store", store, "--since", "1h")[1].splitlines()) == 3


def test_sessions_lists_users_calls_errors(store: str) -> None:
    """sessions shows each session with its users, call and error counts."""
    code, text = run("sessions", "--store", store, "--json")
    assert code == 0
    sessions = {s["session_id"]: s for s in map(json.loads, text.splitlines())}
    assert sessions["sess-A"]["users"] == ["ann"]
    assert (sessions["sess-A"]["calls"], sessions["sess-A"]["errors"]) == (2, 1)
    assert "sess-B" in run("sessions", "--store", store)[1]


def test_replay_timeline(store: str) -> None:
    """replay shows who, model, prompt, response, tokens and the error."""
    code, text = run("replay", "sess-A", "--store", store)
    assert code == 0
    assert "user(s) ann" in text
    assert "system> Be kind" in text
    assert "user> Where is order 5?" in text
    assert "assistant< echo: Where is order 5?" in text
    assert "ERROR InternalServerError" in text
    code, text = run("replay", "sess-A", "--store", store, "--json")
    assert [json.loads(line)["status"]["code"] for line in text.splitlines()] == ["Unset", "Error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("replay", "no-such-session"), "unknown session"),
        (("export", "--since", "last tuesday"), "bad time"),
        (("export", "--store", "/nonexistent/dir/x.db"), "no audit store"),
        (("export", "--store", "http://127.0.0.1:1"), "cannot reach Elasticsearch"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    store: str, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input: a one-line message on stderr, exit code 1, no traceback."""
    args = list(argv)
    if "--store" not in args:
        args += ["--store", store]
    code, _ = run(*args)
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_store_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt store file is a clear error, not a traceback."""
    bad = tmp_path / "x.db"
    bad.write_bytes(b"\x00garbage" * 500)
    assert run("sessions", "--store", str(bad))[0] == 1
    assert "cannot open audit store" in capsys.readouterr().err
