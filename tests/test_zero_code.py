"""Zero-code enablement, end to end in fresh interpreters: the .pth switch and opentelemetry-instrument."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genai_audit.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.integration

APP = """
import anthropic, openai
from openai.resources.chat.completions import Completions
oai = openai.OpenAI(max_retries=0)
oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "zero code hello"}])
for _ in oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "streamed"}], stream=True):
    pass
anthropic.Anthropic(max_retries=0).messages.create(
    model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "claude hello"}])
print("wrapped" if type(Completions.__dict__["create"]).__name__ == "FunctionWrapper" else "plain")
"""


def _env(fake: FakeProvider, store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_AUDIT_", "OTEL_"))}
    env.update({
        "OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": fake.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-test",
        "GENAI_AUDIT_STORE": str(store), "GENAI_AUDIT_EXPORT_DELAY_MS": "20",
    })
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _export(store: Path, env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    result = _run([sys.executable, "-m", "genai_audit.cli", "export", "--store", str(store)], env, cwd)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_env_switch_audits_unmodified_script(tmp_path: Path, fake: FakeProvider) -> None:
    """GENAI_AUDIT_ENABLED=true on a script that never imports genai_audit records every call."""
    (tmp_path / "app.py").write_text(APP)
    store = tmp_path / "audit.db"
    env = _env(fake, store, GENAI_AUDIT_ENABLED="true")
    result = _run([sys.executable, "app.py"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrapped"
    docs = _export(store, env, tmp_path)
    assert [d["name"] for d in docs] == ["chat gpt-4o", "chat gpt-4o", "chat claude-haiku-4-5"]
    streamed = docs[1]["attributes"]
    assert isinstance(streamed, dict)
    assert streamed["gen_ai.usage.output_tokens"] > 0
    assert "zero code hello" in str(docs[0]["attributes"])


def test_unset_switch_leaves_sdk_untouched(tmp_path: Path, fake: FakeProvider) -> None:
    """Without the switch nothing is patched and no store is created."""
    (tmp_path / "app.py").write_text(APP)
    store = tmp_path / "audit.db"
    result = _run([sys.executable, "app.py"], _env(fake, store), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "plain"
    assert not store.exists()


def test_bad_configuration_reported_and_app_still_runs(tmp_path: Path, fake: FakeProvider) -> None:
    """A configuration error is one stderr line; the application runs unaudited."""
    (tmp_path / "app.py").write_text(APP)
    env = _env(fake, tmp_path / "audit.db", GENAI_AUDIT_ENABLED="true", GENAI_AUDIT_INSTRUMENT="openai,cohere")
    result = _run([sys.executable, "app.py"], env, tmp_path)
    assert result.returncode == 0
    assert "genai-audit: not enabled: GENAI_AUDIT_INSTRUMENT: unknown instrumentation cohere" in result.stderr
    assert result.stdout.strip() == "plain"


def test_opentelemetry_instrument_command(tmp_path: Path, fake: FakeProvider) -> None:
    """`opentelemetry-instrument python app.py` instruments both SDKs and configures the audit store."""
    (tmp_path / "app.py").write_text(APP)
    store = tmp_path / "audit.db"
    env = _env(fake, store, OTEL_PYTHON_CONFIGURATOR="genai_audit", OTEL_TRACES_EXPORTER="none",
               OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    launcher = str(Path(sys.executable).parent / "opentelemetry-instrument")
    result = _run([launcher, sys.executable, "app.py"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrapped"
    docs = _export(store, env, tmp_path)
    assert sorted(d["name"] for d in docs) == ["chat claude-haiku-4-5", "chat gpt-4o", "chat gpt-4o"]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`genai-audit demo` records three sessions and tells how to replay them."""
    store = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_AUDIT_", "OTEL_"))}
    result = _run([sys.executable, "-m", "genai_audit.cli", "demo", "--store", str(store)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "recorded 8 LLM calls in 3 sessions" in result.stdout
    assert "genai-audit replay s-1001-" in result.stdout
    docs = _export(store, env, tmp_path)
    by_user: dict[object, int] = {}
    for doc in docs:
        attributes = doc["attributes"]
        assert isinstance(attributes, dict)
        by_user[attributes["enduser.id"]] = by_user.get(attributes["enduser.id"], 0) + 1
    assert by_user == {"alice": 5, "bob": 2, "mallory": 1}
    assert sum(1 for d in docs if d["status"] == {"code": "Error", "message": d["status"].get("message")}) == 1  # type: ignore[union-attr]
