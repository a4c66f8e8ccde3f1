"""Alert step, background dispatcher and sinks, with webhooks against real local HTTP receivers."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors import AuditRecord, ProcessingChain
from genai_audit.processors.alerts import (
    KIND_INJECTION,
    KIND_PII_WITHOUT_CONSENT,
    KIND_RESTRICTED,
    KIND_SECRET,
    Alert,
    AlertDispatcher,
    AlertStep,
    CallbackSink,
    LogSink,
    WebhookSink,
    dispatcher_from_env,
)

EMAIL = "alice.liddell@example.com"
PROMPT = f"Please email {EMAIL} the password hunter2"


class Clock:
    """A settable monotonic clock."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Collector:
    """A callback sink target that keeps what it got."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.lock = threading.Lock()

    def __call__(self, alert: Alert) -> None:
        with self.lock:
            self.alerts.append(alert)

    @property
    def kinds(self) -> list[str]:
        with self.lock:
            return [alert.kind for alert in self.alerts]


@pytest.fixture
def make_dispatcher() -> Iterator[Callable[..., AlertDispatcher]]:
    made: list[AlertDispatcher] = []

    def make(sinks: Sequence[Any], **options: Any) -> AlertDispatcher:
        options.setdefault("close_at_exit", None)
        dispatcher = AlertDispatcher(sinks, **options)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close(timeout=5)


def record(**attributes: Any) -> AuditRecord:
    base: dict[str, Any] = {
        sc.REQUEST_MODEL: "gpt-4o",
        sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.PROVIDER_NAME: "openai",
        sc.RESPONSE_ID: "chatcmpl-123",
        sc.SESSION_ID: "s-17",
        sc.ENDUSER_ID: "u-42",
        sc.AUDIT_REQUEST_ID: "req-9",
        sc.AUDIT_FEATURE: "support-chat",
    }
    base.update(attributes)
    messages = [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    return AuditRecord(attributes=base, content={sc.INPUT_MESSAGES: messages})


def alert(kind: str = KIND_SECRET, session: str = "s-1", **fields: Any) -> Alert:
    return Alert(
        kind=kind, severity="high", summary="test alert", timestamp=1_700_000_000.0, session_id=session, **fields
    )


# --------------------------------------------------------------------------- #
# Rules
# --------------------------------------------------------------------------- #


def test_no_findings_no_alerts() -> None:
    rec = record()
    AlertStep()(rec)
    assert sc.AUDIT_ALERTS not in rec.attributes


def test_restricted_classification() -> None:
    rec = record(**{sc.AUDIT_CLASSIFICATION: "restricted"})
    (found,) = AlertStep().evaluate(rec)
    assert found.kind == KIND_RESTRICTED and found.severity == "high"
    assert AlertStep().evaluate(record(**{sc.AUDIT_CLASSIFICATION: "confidential"})) == []


@pytest.mark.parametrize(
    ("consent", "tracking", "alerts"),
    [
        (False, False, True),
        ("false", False, True),
        ("denied", False, True),
        (True, False, False),
        ("granted", True, False),
        (None, False, False),  # absent, and the application does not track consent
        ("unknown", False, False),
        (None, True, True),  # absent where consent is tracked: not given
        ("unknown", True, True),
    ],
)
def test_pii_without_consent(consent: object, tracking: bool, alerts: bool) -> None:
    attributes: dict[str, Any] = {sc.AUDIT_PII_DETECTED: True, sc.AUDIT_PII_TYPES: ["email", "phone"]}
    if consent is not None:
        attributes[sc.AUDIT_CONSENT] = consent
    found = AlertStep(consent_tracking=tracking).evaluate(record(**attributes))
    assert [a.kind for a in found] == ([KIND_PII_WITHOUT_CONSENT] if alerts else [])
    if alerts:
        assert found[0].details["pii_types"] == ("email", "phone")
        assert "email, phone" in found[0].summary


def test_pii_count_alone_counts_as_detected() -> None:
    found = AlertStep().evaluate(record(**{sc.AUDIT_PII_COUNT: 2, sc.AUDIT_CONSENT: "false"}))
    assert [a.kind for a in found] == [KIND_PII_WITHOUT_CONSENT]
    assert found[0].details["pii_count"] == 2
    assert AlertStep().evaluate(record(**{sc.AUDIT_PII_COUNT: 0, sc.AUDIT_CONSENT: "false"})) == []


def test_secrets_and_injection() -> None:
    rec = record(
        **{
            sc.AUDIT_SECRETS_DETECTED: True,
            sc.AUDIT_INJECTION_DETECTED: True,
            sc.AUDIT_INJECTION_SCORE: 0.93,
            sc.AUDIT_INJECTION_TECHNIQUE: "instruction_override",
            sc.AUDIT_INJECTION_SOURCE: "tool_output",
        }
    )
    secret, injection = AlertStep().evaluate(rec)
    assert secret.kind == KIND_SECRET and secret.severity == "critical"
    assert injection.kind == KIND_INJECTION
    assert injection.details == {"technique": "instruction_override", "source": "tool_output", "score": 0.93}
    assert "instruction_override" in injection.summary and "0.93" in injection.summary


def test_step_marks_record_and_merges_existing_kinds() -> None:
    rec = record(**{sc.AUDIT_SECRETS_DETECTED: True, sc.AUDIT_CLASSIFICATION: "restricted", sc.AUDIT_ALERTS: ["x"]})
    AlertStep()(rec)
    assert rec.attributes[sc.AUDIT_ALERTS] == ["x", KIND_RESTRICTED, KIND_SECRET]


def test_alert_carries_correlation_but_never_content() -> None:
    rec = record(
        **{
            sc.AUDIT_SECRETS_DETECTED: True,
            sc.AUDIT_PII_DETECTED: True,
            sc.AUDIT_CONSENT: "denied",
            # a misbehaving earlier step that put content where a label belongs
            sc.AUDIT_PII_TYPES: ["email", PROMPT],
            sc.AUDIT_INJECTION_DETECTED: True,
            sc.AUDIT_INJECTION_TECHNIQUE: PROMPT,
            sc.AUDIT_TRACE_ID: "0af7651916cd43dd8448eb211c80319c",
            sc.AUDIT_SPAN_ID: "b7ad6b7169203331",
            sc.AUDIT_TENANT: "acme",
        }
    )
    found = AlertStep(clock=lambda: 1_700_000_000.5).evaluate(rec)
    assert {a.kind for a in found} == {KIND_PII_WITHOUT_CONSENT, KIND_SECRET, KIND_INJECTION}
    for item in found:
        document = item.to_dict()
        text = json.dumps(document)
        assert EMAIL not in text and "hunter2" not in text and "Please" not in text
        assert document["session_id"] == "s-17" and document["enduser_id"] == "u-42"
        assert document["request_id"] == "req-9" and document["response_id"] == "chatcmpl-123"
        assert document["model"] == "gpt-4o-2024-08-06" and document["provider"] == "openai"
        assert document["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
        assert document["span_id"] == "b7ad6b7169203331"
        assert document["tenant"] == "acme" and document["feature"] == "support-chat"
        assert document["time"] == "2023-11-14T22:13:20.500+00:00"
    pii = next(a for a in found if a.kind == KIND_PII_WITHOUT_CONSENT)
    assert pii.details["pii_types"] == ("email", "other")


def test_severity_override_is_validated() -> None:
    step = AlertStep(severities={KIND_INJECTION: "critical"})
    (found,) = step.evaluate(record(**{sc.AUDIT_INJECTION_DETECTED: True}))
    assert found.severity == "critical"
    with pytest.raises(ValueError, match="severity 'urgent'"):
        AlertStep(severities={KIND_SECRET: "urgent"})


def test_in_chain_with_dispatcher(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(got)])
    rec = ProcessingChain([AlertStep(dispatcher)])(record(**{sc.AUDIT_SECRETS_DETECTED: True}))
    assert rec.failures == [] and rec.attributes[sc.AUDIT_ALERTS] == [KIND_SECRET]
    assert rec.content  # the step leaves content alone
    assert dispatcher.flush(10)
    assert got.kinds == [KIND_SECRET]
    assert dispatcher.stats().delivered == 1


# --------------------------------------------------------------------------- #
# Dispatcher: dedup, rate limit, queue, close, fork
# --------------------------------------------------------------------------- #


def test_dedup_same_kind_and_key_within_window(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    clock, got = Clock(), Collector()
    dispatcher = make_dispatcher([CallbackSink(got)], dedup_window=60, rate_per_minute=None, clock=clock)
    assert dispatcher.submit(alert(KIND_SECRET, "s-1"))
    clock.now += 30
    assert not dispatcher.submit(alert(KIND_SECRET, "s-1"))  # duplicate
    assert dispatcher.submit(alert(KIND_INJECTION, "s-1"))  # other kind
    assert dispatcher.submit(alert(KIND_SECRET, "s-2"))  # other key
    clock.now += 30  # 60 s after the first: the window has passed
    assert dispatcher.submit(alert(KIND_SECRET, "s-1"))
    assert dispatcher.flush(10)
    assert got.kinds == [KIND_SECRET, KIND_INJECTION, KIND_SECRET, KIND_SECRET]
    stats = dispatcher.stats()
    assert stats.deduplicated == 1 and stats.delivered == 4


def test_dedup_key_falls_back_to_user_then_request() -> None:
    assert Alert(KIND_SECRET, "high", "s", 0.0, enduser_id="u", request_id="r").key == f"{KIND_SECRET}|u"
    assert Alert(KIND_SECRET, "high", "s", 0.0, request_id="r").key == f"{KIND_SECRET}|r"


def test_rate_limit_token_bucket_per_sink(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    clock, first, second = Clock(), Collector(), Collector()
    dispatcher = make_dispatcher(
        [CallbackSink(first, name="first"), CallbackSink(second, name="second")],
        dedup_window=0,
        rate_per_minute=2,
        burst=2,
        clock=clock,
    )
    for n in range(3):
        dispatcher.submit(alert(session=f"s-{n}"))
    assert dispatcher.flush(10)
    assert len(first.alerts) == len(second.alerts) == 2
    stats = dispatcher.stats()
    assert stats.delivered == 4 and stats.rate_limited == 2
    clock.now += 30  # one token back per sink
    dispatcher.submit(alert(session="s-3"))
    dispatcher.submit(alert(session="s-4"))
    assert dispatcher.flush(10)
    per_sink = dispatcher.sink_stats()
    assert per_sink["first"].delivered == per_sink["second"].delivered == 3
    assert per_sink["first"].rate_limited == per_sink["second"].rate_limited == 2
    assert [a.session_id for a in first.alerts] == ["s-0", "s-1", "s-3"]


def test_full_queue_drops_and_counts(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    entered, release, got = threading.Event(), threading.Event(), Collector()

    def slow(item: Alert) -> None:
        entered.set()
        release.wait(30)
        got(item)

    dispatcher = make_dispatcher([CallbackSink(slow)], queue_size=1, dedup_window=0, rate_per_minute=None)
    assert dispatcher.submit(alert(session="a"))
    assert entered.wait(10)  # the worker holds the first alert
    assert dispatcher.submit(alert(session="b"))  # fills the queue
    assert not dispatcher.submit(alert(session="c"))  # dropped, without waiting
    assert dispatcher.stats().dropped == 1
    release.set()
    assert dispatcher.flush(10)
    assert [a.session_id for a in got.alerts] == ["a", "b"]


def test_failing_sink_is_counted_and_others_still_get_the_alert(
    make_dispatcher: Callable[..., AlertDispatcher],
) -> None:
    def broken(item: Alert) -> None:
        raise RuntimeError("sink down")

    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(broken, name="broken"), CallbackSink(got, name="ok")])
    dispatcher.submit(alert())
    assert dispatcher.flush(10)
    assert got.kinds == [KIND_SECRET]
    per_sink = dispatcher.sink_stats()
    assert per_sink["broken"].failed == 1 and per_sink["ok"].delivered == 1


def test_close_flushes_then_refuses(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(got)], dedup_window=0, rate_per_minute=None)
    for n in range(20):
        dispatcher.submit(alert(session=f"s-{n}"))
    assert dispatcher.close(timeout=10)
    assert len(got.alerts) == 20
    assert not dispatcher.submit(alert(session="late"))
    assert dispatcher.stats().dropped == 1


def test_close_gives_up_after_timeout(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck(item: Alert) -> None:
        entered.set()
        release.wait(30)

    dispatcher = make_dispatcher([CallbackSink(stuck)], dedup_window=0, rate_per_minute=None)
    dispatcher.submit(alert(session="a"))
    dispatcher.submit(alert(session="b"))
    assert entered.wait(10)
    assert not dispatcher.close(timeout=0.05)
    release.set()
    assert dispatcher.flush(10)
    stats = dispatcher.stats()
    assert stats.delivered == 1 and stats.dropped == 1  # the queued one is abandoned, not delivered late


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_worker_restarts_lazily_in_forked_child(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(got)], dedup_window=0, rate_per_minute=None)
    dispatcher.submit(alert(session="parent"))
    assert dispatcher.flush(10)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # child: report and leave without running anything of pytest's
        code = 1
        try:
            os.close(read_end)
            before = dispatcher.stats()
            queued = dispatcher.submit(alert(session="child"))
            flushed = dispatcher.flush(10)
            report = {
                "before": before.delivered,
                "queued": queued,
                "flushed": flushed,
                "delivered": dispatcher.stats().delivered,
                "sessions": [a.session_id for a in got.alerts],
            }
            os.write(write_end, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    report = json.loads(data)
    assert report == {
        "before": 0,  # counters start over in the child
        "queued": True,
        "flushed": True,
        "delivered": 1,
        "sessions": ["parent", "child"],  # the child's copy of the list, plus its own delivery
    }
    # the parent's dispatcher is unaffected
    dispatcher.submit(alert(session="parent-2"))
    assert dispatcher.flush(10)
    assert [a.session_id for a in got.alerts] == ["parent", "parent-2"]


# --------------------------------------------------------------------------- #
# Log sink
# --------------------------------------------------------------------------- #


def test_log_sink(make_dispatcher: Callable[..., AlertDispatcher], caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = make_dispatcher([LogSink()])
    caplog.set_level(logging.INFO, logger="genai_audit.alerts")
    AlertStep(dispatcher)(record(**{sc.AUDIT_SECRETS_DETECTED: True, sc.AUDIT_CLASSIFICATION: "restricted"}))
    assert dispatcher.flush(10)
    logged = [r for r in caplog.records if r.name == "genai_audit.alerts"]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.ERROR]  # high, critical
    assert "restricted_data" in logged[0].getMessage() and "s-17" in logged[0].getMessage()
    assert logged[1].genai_audit_alert["kind"] == KIND_SECRET  # type: ignore[attr-defined]
    assert all(EMAIL not in r.getMessage() for r in logged)


# --------------------------------------------------------------------------- #
# Webhook sink against real local receivers
# --------------------------------------------------------------------------- #


class Receiver:
    """A local HTTP server that records POSTs; answers ``statuses`` first, then 200; can hang."""

    def __init__(self, statuses: Sequence[int] = (), *, hang: bool = False, retry_after: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses)
        self.hang = hang
        self.retry_after = retry_after
        self.received = threading.Event()  # any request arrived
        self.entered = threading.Event()  # a request is hanging
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.set()
                if receiver.hang:
                    receiver.entered.set()
                    receiver.release.wait(30)
                try:
                    self.send_response(status)
                    if receiver.retry_after is not None and status in (429, 503):
                        self.send_header("Retry-After", receiver.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/T0KEN-s3cr3t"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_webhook_posts_json(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    with Receiver() as receiver:
        sink = WebhookSink(receiver.url, {"Authorization": "Bearer abc"}, timeout=5)
        dispatcher = make_dispatcher([sink])
        AlertStep(dispatcher)(record(**{sc.AUDIT_SECRETS_DETECTED: True}))
        assert dispatcher.flush(10)
    assert dispatcher.stats().delivered == 1
    (request,) = receiver.requests
    assert request["path"] == "/hooks/T0KEN-s3cr3t"
    assert request["headers"]["Authorization"] == "Bearer abc"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert body["source"] == "genai-audit"
    assert body["alert"]["kind"] == KIND_SECRET and body["alert"]["severity"] == "critical"
    assert body["alert"]["session_id"] == "s-17" and body["alert"]["request_id"] == "req-9"
    assert EMAIL not in json.dumps(body) and "hunter2" not in json.dumps(body)
    assert sink.name == "webhook:127.0.0.1"


def test_webhook_retries_5xx_with_backoff_then_succeeds(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    sleeps = Sleeps()
    with Receiver([500, 503]) as receiver:
        sink = WebhookSink(receiver.url, retries=3, backoff=0.5, sleep=sleeps, rng=lambda: 1.0)
        dispatcher = make_dispatcher([sink])
        dispatcher.submit(alert())
        assert dispatcher.flush(10)
    assert len(receiver.requests) == 3
    assert sleeps.calls == [0.5, 1.0]  # doubling; rng 1.0 = the full nominal wait
    stats = dispatcher.stats()
    assert stats.delivered == 1 and stats.failed == 0


def test_webhook_backoff_jitter_cap_and_retry_after() -> None:
    sink = WebhookSink("https://alerts.example/hook", backoff=1.0, max_backoff=5.0, rng=lambda: 0.0)
    assert [sink.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.5, 2.5]  # half the nominal, capped
    assert sink.delay(1, retry_after=3.0) == 3.0
    assert sink.delay(1, retry_after=600.0) == 5.0


def test_webhook_honours_retry_after(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    sleeps = Sleeps()
    with Receiver([503], retry_after="4") as receiver:
        sink = WebhookSink(receiver.url, retries=1, backoff=0.1, sleep=sleeps, rng=lambda: 1.0)
        dispatcher = make_dispatcher([sink])
        dispatcher.submit(alert())
        assert dispatcher.flush(10)
    assert sleeps.calls == [4.0] and dispatcher.stats().delivered == 1


def test_webhook_gives_up_after_retries(
    make_dispatcher: Callable[..., AlertDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    with Receiver([503, 503, 503]) as receiver:
        sink = WebhookSink(receiver.url, retries=2, sleep=sleeps)
        dispatcher = make_dispatcher([sink])
        dispatcher.submit(alert())
        assert dispatcher.flush(10)
    assert len(receiver.requests) == 3 and len(sleeps.calls) == 2
    assert dispatcher.stats().failed == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP 503 after 3 attempts" in messages
    assert "T0KEN" not in messages  # the URL (and its token) is never logged


def test_webhook_client_error_is_not_retried(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    sleeps = Sleeps()
    with Receiver([400]) as receiver:
        dispatcher = make_dispatcher([WebhookSink(receiver.url, retries=3, sleep=sleeps)])
        dispatcher.submit(alert())
        assert dispatcher.flush(10)
    assert len(receiver.requests) == 1 and sleeps.calls == []
    assert dispatcher.stats().failed == 1


def test_hanging_webhook_never_blocks_the_request_path(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    with Receiver(hang=True) as receiver:
        dispatcher = make_dispatcher([WebhookSink(receiver.url, timeout=0.5, retries=0)])
        step = AlertStep(dispatcher)
        step(record(**{sc.AUDIT_SECRETS_DETECTED: True}))
        assert receiver.entered.wait(10)  # the worker is now stuck in the receiver
        # a call made while the receiver hangs: the step returns all the same
        rec = record(**{sc.AUDIT_CLASSIFICATION: "restricted"})
        step(rec)
        assert rec.attributes[sc.AUDIT_ALERTS] == [KIND_RESTRICTED]
        assert not receiver.release.is_set()  # still hanging when the step returned
        assert dispatcher.flush(30)  # both deliveries time out on the worker
        stats = dispatcher.stats()
    assert stats.failed == 2 and stats.delivered == 0


def test_dead_port_counts_as_failed(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    dispatcher = make_dispatcher([WebhookSink(f"http://127.0.0.1:{port}/hook", retries=1, sleep=sleeps)])
    AlertStep(dispatcher)(record(**{sc.AUDIT_SECRETS_DETECTED: True}))  # nothing raised
    assert dispatcher.flush(10)
    assert dispatcher.stats().failed == 1 and len(sleeps.calls) == 1


def test_webhook_close_interrupts_backoff(make_dispatcher: Callable[..., AlertDispatcher]) -> None:
    with Receiver([503, 503]) as receiver:
        sink = WebhookSink(receiver.url, retries=1, backoff=60.0, max_backoff=60.0)
        dispatcher = make_dispatcher([sink])
        dispatcher.submit(alert())
        assert receiver.received.wait(10)  # the first attempt was made
        assert not dispatcher.close(timeout=0.1)  # the worker is in a 30-60 s backoff
        assert dispatcher.flush(10)  # closing the sink cut the wait short
    assert dispatcher.stats().failed == 1 and len(receiver.requests) == 1


def test_webhook_url_is_validated() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookSink("ftp://example.com/x")
    with pytest.raises(ConfigError):
        WebhookSink("https:///no-host")


# --------------------------------------------------------------------------- #
# Configuration from the environment
# --------------------------------------------------------------------------- #


def test_dispatcher_from_env() -> None:
    assert dispatcher_from_env({}) is None
    assert dispatcher_from_env({sc.ENV_ALERT_LOG: "false"}) is None
    dispatcher = dispatcher_from_env(
        {sc.ENV_ALERT_WEBHOOK: "https://alerts.example/hook", sc.ENV_ALERT_LOG: "true", sc.ENV_ALERT_RATE: "12.5"}
    )
    assert dispatcher is not None
    try:
        assert [type(s) for s in dispatcher.sinks] == [WebhookSink, LogSink]
        assert dispatcher.rate_per_minute == 12.5
    finally:
        dispatcher.close(1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({sc.ENV_ALERT_LOG: "true", sc.ENV_ALERT_RATE: "fast"}, "GENAI_AUDIT_ALERT_RATE='fast': expected a number"),
        ({sc.ENV_ALERT_LOG: "true", sc.ENV_ALERT_RATE: "0"}, "GENAI_AUDIT_ALERT_RATE='0': must be a positive"),
        ({sc.ENV_ALERT_LOG: "true", sc.ENV_ALERT_RATE: "nan"}, "GENAI_AUDIT_ALERT_RATE='nan': must be a positive"),
        ({sc.ENV_ALERT_LOG: "maybe"}, "GENAI_AUDIT_ALERT_LOG='maybe': expected true or false"),
        ({sc.ENV_ALERT_WEBHOOK: "alerts.example/hook"}, "GENAI_AUDIT_ALERT_WEBHOOK: webhook URL must be"),
    ],
)
def test_dispatcher_from_env_rejects_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dispatcher_from_env(env)
    assert message in str(caught.value)


# --------------------------------------------------------------------------- #
# Alerts point at the trace: through the real SDK, and through AuditSpanProcessor
# --------------------------------------------------------------------------- #


def test_alert_from_instrumented_call_names_its_trace_and_span(
    fake: Any, oai: Any, telemetry: Any, make_dispatcher: Callable[..., AlertDispatcher]
) -> None:
    from genai_audit.instrumentation.openai import OpenAIInstrumentor
    from genai_audit.processors.pipeline import build_chain
    from genai_audit.testing.fake_provider import Reply

    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(got)], dedup_window=0, rate_per_minute=None)
    chain = build_chain(env={"GENAI_AUDIT_PSEUDONYM_KEY": "k" * 32}, alerts=dispatcher)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, chain=chain
    )
    try:
        fake.script(Reply(text="noted"))
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "deploy with key AKIAIOSFODNN7EXAMPLE please"}],
        )
    finally:
        instrumentor.uninstrument()
    dispatcher.close(timeout=5)
    span = telemetry.span()
    assert KIND_SECRET in span.attributes[sc.AUDIT_ALERTS]
    secret_alerts = [alert for alert in got.alerts if alert.kind == KIND_SECRET]
    assert len(secret_alerts) == 1
    assert secret_alerts[0].trace_id == format(span.context.trace_id, "032x")
    assert secret_alerts[0].span_id == format(span.context.span_id, "016x")


def test_alert_from_other_instrumentations_span_names_its_trace(
    make_dispatcher: Callable[..., AlertDispatcher],
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from genai_audit.processors.pipeline import build_chain, build_redaction_chain
    from genai_audit.processors.span_processor import AuditSpanProcessor

    got = Collector()
    dispatcher = make_dispatcher([CallbackSink(got)], dedup_window=0, rate_per_minute=None)
    env = {"GENAI_AUDIT_PSEUDONYM_KEY": "k" * 32}
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        AuditSpanProcessor(
            SimpleSpanProcessor(exporter),
            chain=build_chain(env=env, alerts=dispatcher),
            redaction_chain=build_redaction_chain(env=env),
        )
    )
    # an OpenLLMetry-shaped LLM span
    with provider.get_tracer("peer").start_as_current_span("openai.chat") as span:
        span.set_attribute("gen_ai.system", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.prompt.0.content", "my token is ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
        expected = span.get_span_context()
    dispatcher.close(timeout=5)
    (exported,) = exporter.get_finished_spans()
    assert "ghp_" not in json.dumps(dict(exported.attributes or {}))
    secret_alerts = [alert for alert in got.alerts if alert.kind == KIND_SECRET]
    assert len(secret_alerts) == 1
    assert secret_alerts[0].trace_id == format(expected.trace_id, "032x")
    assert secret_alerts[0].span_id == format(expected.span_id, "016x")
