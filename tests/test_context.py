"""Audit context: lands on spans, flows through asyncio, threads and W3C baggage."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from opentelemetry import propagate

import genai_audit
from genai_audit import semconv as sc
from genai_audit import threads
from tests.conftest import Telemetry


def test_context_lands_on_span(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """Every audit field becomes its span attribute."""
    with genai_audit.context(user_id="u-1", session_id="s-1", feature="chat", environment="prod", consent=True,
                             classification="confidential", request_id="req-9", tenant="acme"):
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    a = instrumented.span().attributes
    assert (a[sc.ENDUSER_ID], a[sc.SESSION_ID], a[sc.AUDIT_FEATURE]) == ("u-1", "s-1", "chat")
    assert (a[sc.DEPLOYMENT_ENVIRONMENT], a[sc.AUDIT_CONSENT]) == ("prod", "true")
    assert (a[sc.AUDIT_CLASSIFICATION], a[sc.AUDIT_REQUEST_ID], a[sc.AUDIT_TENANT]) == ("confidential", "req-9", "acme")


def test_nested_context_overrides_and_restores() -> None:
    """An inner context adds to the outer one and is gone after it exits."""
    with genai_audit.context(user_id="outer", session_id="s"):
        with genai_audit.context(user_id="inner"):
            assert genai_audit.current() == {sc.ENDUSER_ID: "inner", sc.SESSION_ID: "s"}
        assert genai_audit.current()[sc.ENDUSER_ID] == "outer"
    assert genai_audit.current() == {}


def test_decorator_on_sync_and_async_functions() -> None:
    """context(...) decorates plain and async functions, active only while they run."""

    @genai_audit.context(user_id="deco")
    def plain() -> dict[str, str]:
        return genai_audit.current()

    @genai_audit.context(session_id="async-deco")
    async def coro() -> dict[str, str]:
        await asyncio.sleep(0)
        return genai_audit.current()

    assert plain() == {sc.ENDUSER_ID: "deco"}
    assert asyncio.run(coro()) == {sc.SESSION_ID: "async-deco"}
    assert genai_audit.current() == {}


def test_flows_into_asyncio_tasks(instrumented: Telemetry, aoai: openai.AsyncOpenAI) -> None:
    """Tasks created inside the context carry it to their LLM calls."""

    async def main() -> None:
        async with genai_audit.context(user_id="async-user"):
            await asyncio.gather(*[
                asyncio.create_task(aoai.chat.completions.create(model="gpt-4o",
                                                                 messages=[{"role": "user", "content": "x"}]))
                for _ in range(3)
            ])

    asyncio.run(main())
    assert [s.attributes[sc.ENDUSER_ID] for s in instrumented.spans()] == ["async-user"] * 3


def test_flows_into_threads_and_pools(instrumented: Telemetry, oai: openai.OpenAI) -> None:
    """threading.Thread and ThreadPoolExecutor workers see the submitting thread's context."""
    threads.install()

    def call() -> None:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])

    with genai_audit.context(user_id="threaded"):
        worker = threading.Thread(target=call)
        worker.start()
        worker.join()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda _: call(), range(2)))
            pool.submit(call).result()
    assert [s.attributes.get(sc.ENDUSER_ID) for s in instrumented.spans()] == ["threaded"] * 4


def test_outgoing_http_carries_w3c_baggage() -> None:
    """The audit context is injected as a W3C baggage header for downstream services."""
    headers: dict[str, str] = {}
    with genai_audit.context(user_id="u-7", request_id="req-1"):
        propagate.inject(headers)
    assert "enduser.id=u-7" in headers["baggage"]
    assert "gen_ai.audit.request_id=req-1" in headers["baggage"]


def test_from_headers_takes_correlation_id_and_upstream_baggage() -> None:
    """A web app restores the upstream context and the X-Request-ID header as correlation id."""
    upstream: dict[str, str] = {}
    with genai_audit.context(session_id="ui-session"):
        propagate.inject(upstream)
    incoming = {**upstream, "X-Request-ID": "req-from-ui"}
    with genai_audit.from_headers(incoming, user_id="u-3"):
        assert genai_audit.current() == {
            sc.SESSION_ID: "ui-session", sc.AUDIT_REQUEST_ID: "req-from-ui", sc.ENDUSER_ID: "u-3"}


@pytest.mark.parametrize(("field", "value"), [("classification", "secret"), ("consent", "maybe")])
def test_bad_values_raise_value_error(field: str, value: str) -> None:
    """An unknown classification or consent value is refused up front."""
    with pytest.raises(ValueError, match=field):
        genai_audit.context(**{field: value})  # type: ignore[arg-type]
