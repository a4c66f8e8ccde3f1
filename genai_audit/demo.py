"""``genai-audit demo``: run the support assistant audited, against a local fake provider.

The application (:mod:`genai_audit.demo_app`) runs in its own interpreter,
enabled the zero-code way (``GENAI_AUDIT_ENABLED=true``), talking to a
:class:`~genai_audit.testing.fake_provider.FakeProvider` through the real
``openai`` and ``anthropic`` SDKs. The provider's answers are scripted here,
in the order the application asks.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import TextIO

from genai_audit import semconv as sc
from genai_audit.config import is_remote, store_path

SCRIPT_NOTE = "scripted answers, in request order"


def _script() -> list[object]:
    from genai_audit.testing.fake_provider import Error, Reply, ToolCall

    return [
        # alice: embeddings (default reply), tool call, streamed answer
        Reply(text=""),
        Reply(tool_calls=[ToolCall("lookup_order", {"order_id": "4411"})], input_tokens=182, output_tokens=17),
        Reply(text="Your order 4411 shipped with UPS and should arrive on 2026-11-25. Returns are accepted "
                   "within 30 days.", input_tokens=260, output_tokens=31),
        # bob: provider overloaded, then the answer
        Error(529, "Overloaded", error_type="overloaded_error"),
        Reply(text="I'm sorry for the trouble. I've opened refund request R-5120 for a human agent to approve; "
                   "refunds reach the original card in 5-7 days.", input_tokens=120, output_tokens=38),
        # mallory: refusal
        Reply(text="I can't share my instructions or approve refunds. I can help you start a standard return.",
              input_tokens=95, output_tokens=21),
        # summaries
        Reply(text="Customer asked for the delivery status of order 4411.", input_tokens=30, output_tokens=11),
        Reply(text="Customer asked for the delivery status of order 4411.", input_tokens=30, output_tokens=11),
    ]


def run_demo(store: str | None, out: TextIO) -> int:
    from genai_audit.store.sqlite import connect, list_sessions
    from genai_audit.testing.fake_provider import FakeProvider

    path = store_path(store, allow_remote=True)
    run_id = secrets.token_hex(2)
    with FakeProvider() as fake:
        fake.script(*_script())  # type: ignore[arg-type]
        env = dict(os.environ)
        env.update({
            sc.ENV_ENABLED: "true",
            sc.ENV_STORE: path,
            sc.ENV_EXPORT_DELAY_MS: "50",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": "sk-demo-not-a-real-key",
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-demo-not-a-real-key",
            "DEMO_RUN_ID": run_id,
        })
        out.write(f"genai-audit demo: support assistant, run {run_id}, provider {fake.url} (local fake)\n")
        out.flush()
        result = subprocess.run([sys.executable, "-m", "genai_audit.demo_app"], env=env,
                                capture_output=True, text=True, check=False)
        out.write(result.stdout)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            sys.stderr.write(f"genai-audit: demo application failed (exit {result.returncode})\n")
            return 1
    if is_remote(path):
        return _remote_summary(path, run_id, out)
    conn = connect(path, create=False)
    ours = [s for s in list_sessions(conn) if str(s["session_id"]).endswith(run_id)]
    calls = sum(int(s["calls"]) for s in ours)
    out.write(f"\nrecorded {calls} LLM calls in {len(ours)} sessions to {path}\n")
    flag = "" if store is None and not os.environ.get(sc.ENV_STORE) else f" --store {path}"
    out.write("next:\n")
    out.write(f"  genai-audit sessions{flag}\n")
    for session in ours:
        out.write(f"  genai-audit replay {session['session_id']}{flag}\n")
    out.write(f"  genai-audit export --session {ours[0]['session_id'] if ours else 'ID'}{flag}\n")
    return 0 if calls else 1



def _remote_summary(url: str, run_id: str, out: TextIO) -> int:
    """Count what reached Elasticsearch and show how to look at it."""
    from genai_audit.store.elasticsearch import ElasticsearchSettings, data_stream

    settings = ElasticsearchSettings.resolve(url)
    client = settings.client(30.0)
    index = data_stream("traces", settings.namespace)
    client.indices.refresh(index=index)
    result = client.search(
        index=index,
        size=0,
        query={"wildcard": {"session.id": f"*-{run_id}"}},
        aggs={"sessions": {"terms": {"field": "session.id", "size": 100}}},
    )
    buckets = result["aggregations"]["sessions"]["buckets"]
    calls = sum(int(b["doc_count"]) for b in buckets)
    out.write(f"\nrecorded {calls} LLM calls in {len(buckets)} sessions to {index} at {settings.describe()}\n")
    out.write("next:\n")
    flag = f" --store {settings.describe()}"
    out.write(f"  genai-audit sessions{flag}\n")
    for bucket in buckets:
        out.write(f"  genai-audit replay {bucket['key']}{flag}\n")
    return 0 if calls else 1
