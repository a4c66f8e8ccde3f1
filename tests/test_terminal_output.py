"""Stored text printed for a terminal: hostile values cannot drive the investigator's terminal.

A user id, session id, model, feature, error message or message content is whatever the
application, its users or a model wrote, so it may hold escape sequences (clear the screen,
retitle the window, plant an OSC 8 hyperlink), C1 controls, bidirectional overrides that reorder
what is read, carriage returns and backspaces that overwrite, NUL, and newlines that forge rows.

One store, written by the real SQLite exporter, holds such values in every field a command
prints; each command runs through the real CLI entry point. Its output may hold no raw control
character, direction override or invisible character, forges no line, and still shows each
value: its printable part as it is (letters of any script included) and the rest as escapes.
JSON output is exact JSON of the stored values; CSV is exact except on a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from genai_audit import semconv as sc
from genai_audit.cli import main
from genai_audit.forensics import SqliteAuditStore
from genai_audit.forensics.render import json_text, terminal_text
from genai_audit.integrity import INTEGRITY_FIELD
from genai_audit.store import sqlite as sqlite_store
from genai_audit.store.sqlite import SqliteSpanExporter

T0 = 1_740_823_200 * 1_000_000_000  # 2025-03-01T10:00:00Z
MONTH = "2025-03"
MS = 1_000_000

TAIL = (
    "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, retitle the terminal
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # an OSC 8 hyperlink
    "\x9b31m\x9d0;t\x9c"  # C1: CSI, OSC, ST
    "\u202eevil\u2066x\u2069\u200f"  # right-to-left override, isolate, mark
    "\rover\x08\x08\x00\x7f"  # carriage return and backspace overwrite, NUL, DEL
    "\n\tforged row\u2028\u200b\U000e0041"  # a forged line, tab, line separator, invisible characters
)
# TAIL as a terminal shows it, written out by hand: every control a visible escape, the backslash of
# the OSC 8 terminator before the C1 CSI doubled (it would read as an escape), the one before "click" not
SHOWN_TAIL = (
    r"\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\click\x1b]8;;\x1b\\\x9b31m\x9d0;t\x9c"
    r"\u202eevil\u2066x\u2069\u200f\rover\x08\x08\x00\x7f\n\tforged row\u2028\u200b\U000e0041"
)
HEAD = r"\x1b[2J"  # what every cut cell still shows after the value's printable start

# what no output may hold raw (LF only as the output's own line breaks)
FORBIDDEN = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff"
    "\U000e0000-\U000e007f\ud800-\udfff]"
)


def hostile(marker: str) -> str:
    """A value that starts with a readable, non-ASCII marker (at most 8 characters) and then attacks."""
    return marker + TAIL


SESSION = hostile("sess-Ωμ")
USER = hostile("usr-Zoë")
OTHER_USER = hostile("usr-Jürg")
FEATURE = hostile("feat-Łó")
MODEL = hostile("mdl-名前")
PROVIDER = hostile("prov-شم")
NAME = hostile("name-ñ")
REQUEST = hostile("req-é")
CONSENT = hostile("cons-ø")
LEVEL = hostile("cls-ü")
PII_TYPE = hostile("pii-Ä")
PII_TOKEN = hostile("tok-ß")
ALERT = hostile("alrt-å")
TRUNCATED = hostile("trnc-ç")
TECHNIQUE = hostile("tech-ğ")
FINISH = hostile("fin-ő")
ERROR_TYPE = hostile("err-Жж")
STATUS = hostile("stat-Ф")
EXC_TYPE = hostile("exct-ψ")
EXC_MESSAGE = hostile("excm-χ")
SYSTEM = hostile("sys-日本")
ROLE = hostile("role-ē")
PROMPT = hostile("ask-Ђђ")
ANSWER = hostile("ans-ą")
TOOL = hostile("tool-ř")
TOOL_ID = hostile("tid-ů")
TOOL_ARG = hostile("targ-ľ")
TOOL_RESULT = hostile("tres-ŧ")
TRACE = hostile("trc-ŋ")
SPAN = "-span-ŀ" + TAIL
STREAM = hostile("strm-ŝ")


def texts(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in pairs])


BASE = {
    sc.OPERATION_NAME: "chat",
    sc.PROVIDER_NAME: PROVIDER,
    sc.REQUEST_MODEL: MODEL,
    sc.ENDUSER_ID: USER,
    sc.SESSION_ID: SESSION,
    sc.AUDIT_FEATURE: FEATURE,
    sc.AUDIT_CLASSIFICATION: LEVEL,
    sc.USAGE_INPUT_TOKENS: 10,
    sc.USAGE_OUTPUT_TOKENS: 5,
    sc.USAGE_COST_USD: 0.25,
}
TOOL_CALL = {"type": "tool_call", "id": TOOL_ID, "name": TOOL, "arguments": {"q": TOOL_ARG}}
# (name, start in seconds after T0, duration in ms, attributes, error, exception event)
CALLS: list[tuple[str, float, int, dict[str, Any], tuple[str, str] | None, tuple[str, str] | None]] = [
    (
        NAME,
        0.0,
        100,
        {
            **BASE,
            sc.AUDIT_REQUEST_ID: REQUEST,
            sc.AUDIT_CONSENT: CONSENT,
            sc.AUDIT_PII_DETECTED: True,
            sc.AUDIT_PII_TYPES: [PII_TYPE],
            sc.AUDIT_PII_TOKENS: [PII_TOKEN],
            sc.AUDIT_ALERTS: [ALERT],
            sc.AUDIT_TRUNCATED: [TRUNCATED],
            sc.AUDIT_INJECTION_DETECTED: True,
            sc.AUDIT_INJECTION_TECHNIQUE: TECHNIQUE,
            sc.AUDIT_INJECTION_SCORE: 0.97,
            sc.SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": SYSTEM}]),
            sc.INPUT_MESSAGES: texts((ROLE, PROMPT), ("user", PROMPT)),
            sc.OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [TOOL_CALL], "finish_reason": FINISH}]),
            sc.RESPONSE_FINISH_REASONS: [FINISH],
        },
        None,
        None,
    ),
    (
        NAME,
        1.0,
        100,
        {
            **BASE,
            sc.INPUT_MESSAGES: json.dumps(
                [
                    {"role": "assistant", "parts": [TOOL_CALL]},
                    {"role": "tool", "parts": [{"type": "tool_call_response", "id": TOOL_ID, "response": TOOL_RESULT}]},
                ]
            ),
            sc.OUTPUT_MESSAGES: texts(("assistant", ANSWER)),
        },
        None,
        None,
    ),
    (NAME, 2.0, 100, {**BASE, sc.ENDUSER_ID: OTHER_USER}, (ERROR_TYPE, STATUS), (EXC_TYPE, EXC_MESSAGE)),
    # personal data sent with consent refused, and an unauthorized call: compliance lists their ids
    (NAME, 3.0, 100, {**BASE, sc.AUDIT_PII_DETECTED: True, sc.AUDIT_CONSENT: "false"}, None, None),
    (NAME, 4.0, 100, {**BASE, "http.response.status_code": 403}, ("PermissionDeniedError", "denied"), None),
    # five ordinary calls and one slow one: a latency outlier of the model and of the feature
    *[(NAME, 5.0 + n, 100, dict(BASE), None, None) for n in range(5)],
    (NAME, 11.0, 90_000, dict(BASE), None, None),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The calls, stored by the real exporter with hostile trace and span ids (and one hostile
    integrity stream name), as a store tampered with by whoever controls what it holds would be."""
    path = tmp_path_factory.mktemp("terminal") / "audit.db"
    written = sqlite_store.span_document

    def tampered(span: Any) -> dict[str, Any]:
        doc = written(span)
        doc["trace_id"] = TRACE + doc["trace_id"]
        doc["span_id"] = doc["span_id"] + SPAN
        if doc.get("parent_span_id"):
            doc["parent_span_id"] += SPAN
        if doc["attributes"].get("http.response.status_code") == 403:
            doc[INTEGRITY_FIELD] = {"stream": STREAM, "seq": 0, "leaf": "00"}
        return doc

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_store, "span_document", tampered)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path, integrity=False)))
        tracer = provider.get_tracer("test")
        for name, start, duration_ms, attributes, error, exception in CALLS:
            begin = T0 + int(start * 1e9)
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, start_time=begin)
            if error is not None:
                span.set_attribute(sc.ERROR_TYPE, error[0])
                span.set_status(Status(StatusCode.ERROR, error[1]))
            if exception is not None:
                span.add_event(
                    "exception", {"exception.type": exception[0], "exception.message": exception[1]}, timestamp=begin
                )
            span.end(end_time=begin + duration_ms * MS)
        provider.shutdown()
    with SqliteAuditStore(path) as opened:
        assert len(opened.query()) == len(CALLS)  # every hostile call was stored
    return str(path)


class Terminal(io.StringIO):
    """Standard output as a terminal."""

    def isatty(self) -> bool:
        return True


def run(capsys: pytest.CaptureFixture[str], *argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    code = main(list(argv), out=out)
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out, captured.err


def assert_terminal_safe(text: str, err: str = "") -> None:
    for stream in (text, err):
        found = FORBIDDEN.search(stream)
        assert found is None, f"raw {found.group()!r} at {found.start()}: {stream[max(0, found.start() - 40):][:80]!r}"
        assert not any(line.lstrip().startswith("forged row") for line in stream.splitlines())


def assert_shown(text: str, *values: str, whole: bool = True) -> None:
    """Each value is recognisable: its marker as it is, followed by its escaped attack (whole, or the
    beginning a cut cell keeps)."""
    for value in values:
        marker = value[: -len(TAIL)]
        assert marker + (SHOWN_TAIL if whole else HEAD) in text, (marker, text[:2000])


# --- one test per command that prints stored text for a terminal ------------------------------------------


def test_sessions_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "sessions", "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, SESSION, USER, OTHER_USER, MODEL)
    assert len(text.splitlines()) == 2  # the header and one session: no forged row


def test_report_cost_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "report", "cost", "--month", MONTH, "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, FEATURE, USER, OTHER_USER, MODEL, whole=False)
    # header, blank, column names, total, and one line per feature, two users, one model
    assert len(text.splitlines()) == 3 + 1 + 1 + 2 + 1
    assert text.count("…") == 4  # long keys are cut visibly, never inside an escape


def test_report_cost_csv_is_exact_in_a_file_and_escaped_on_a_terminal(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_cost = ("report", "cost", "--month", MONTH, "--store", store, "--format", "csv")
    code, text, err = run(capsys, *csv_cost, out=Terminal())
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, FEATURE, USER, MODEL)
    target = tmp_path / "cost.csv"
    code, _, err = run(capsys, *csv_cost, "-o", str(target))
    assert code == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(target.read_bytes().decode("utf-8"), newline="")))
    assert {row["key"] for row in rows if row["dimension"] != "total"} == {FEATURE, USER, OTHER_USER, MODEL}


def test_report_compliance_text(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    for framework in ("gdpr", "soc2"):
        code, text, err = run(capsys, "report", "compliance", "--framework", framework, "--store", store)
        assert code == 0 and err == ""
        assert_terminal_safe(text)
        assert_shown(text, LEVEL, TRACE)  # an overdue class; the ids of refused consent and a 403
        assert "unauthorized_access: " in text
    assert_shown(text, ALERT)


def test_query_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "query", "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, USER, OTHER_USER, SESSION, FEATURE, MODEL, ERROR_TYPE, whole=False)
    assert "PII:" + PII_TYPE[: -len(TAIL)] + HEAD in text
    assert_shown(text, TRACE)  # the trace:span column is never cut
    assert len(text.splitlines()) == 1 + len(CALLS) + 1


def test_stats_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    for by, values in (("feature", [FEATURE]), ("user", [USER, OTHER_USER]), ("model", [MODEL])):
        code, text, err = run(capsys, "stats", "--by", by, "--store", store)
        assert code == 0 and err == ""
        assert_terminal_safe(text)
        assert_shown(text, *values, ERROR_TYPE, whole=False)  # the group and its top error
        assert len(text.splitlines()) == 1 + len(values) + 1


def test_replay_text(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "replay", SESSION, "--store", store, "--excerpt", "1000")
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, SESSION, USER, OTHER_USER, FEATURE, MODEL, PROVIDER, NAME, REQUEST, CONSENT, LEVEL)
    assert_shown(text, ALERT, TRUNCATED, FINISH, ERROR_TYPE, EXC_TYPE, ROLE, TOOL, TOOL_ID, TRACE)
    assert "PII " + PII_TYPE[: -len(TAIL)] + SHOWN_TAIL in text and PII_TOKEN[: -len(TAIL)] + SHOWN_TAIL in text
    assert TECHNIQUE[: -len(TAIL)] + SHOWN_TAIL in text
    # content excerpts keep ordinary whitespace collapsed into one space; everything else shows
    excerpt_tail = SHOWN_TAIL.replace(r"\n\t", " ")
    for value in (SYSTEM, PROMPT, ANSWER, STATUS, EXC_MESSAGE, TOOL_RESULT):
        assert value[: -len(TAIL)] + excerpt_tail in text, value[: -len(TAIL)]
    # tool arguments are shown as JSON, whose own escapes are then shown with a doubled backslash
    assert TOOL_ARG[: -len(TAIL)] + r"\\u001b[2J" in text
    code, text, err = run(capsys, "replay", SESSION, "--store", store, "--format", "html")
    assert code == 0 and err == ""
    assert FORBIDDEN.search(text.replace("\t", "")) is None  # <pre> blocks keep their tabs and lines


def test_anomalies_table(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "anomalies", "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    assert "model=" + MODEL[: -len(TAIL)] + SHOWN_TAIL in text and "feature=" + FEATURE[: -len(TAIL)] in text
    assert_shown(text, TRACE)  # the outlier's record id
    assert text.endswith("2 anomalies\n") and len(text.splitlines()) == 3


def test_verify_text(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "verify", "--store", store)
    assert code == 1 and err == ""
    assert_terminal_safe(text)
    assert_shown(text, TRACE, STREAM)  # unsealed records by id; the record claiming a stream by its name
    assert "INSERTED" in text and len(text.splitlines()) == 1 + len(CALLS) + 1


def test_retention_dry_run_text(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = run(capsys, "retention", "apply", "--dry-run", "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    # retention reads the class with SQLite's json_extract, which ends the value at its NUL
    assert LEVEL[: -len(TAIL)] + SHOWN_TAIL.split(r"\x00")[0] in text
    assert "nothing deleted (dry run)" in text


def test_an_unexpected_failure_quoting_stored_text_is_one_escaped_line(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: Any, *args: Any) -> Any:
        raise RuntimeError(f"cannot read session {SESSION}")

    monkeypatch.setattr(SqliteAuditStore, "sessions", failing)
    code, text, err = run(capsys, "sessions", "--store", store)
    assert code == 1 and text == ""
    assert_terminal_safe(text, err)
    assert err.count("\n") == 1 and err.startswith("genai-audit: sessions failed: RuntimeError: cannot read session ")
    assert_shown(err, SESSION)


# --- machine-readable output stays exact ------------------------------------------------------------------


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("argv", "parse", "expected"),
    [
        (["export"], lines, [SESSION, USER, FEATURE, MODEL, ERROR_TYPE, TRACE]),
        (["query", "--json"], lines, [SESSION, USER, MODEL, STREAM]),
        (["sessions", "--json"], lines, [SESSION, USER, OTHER_USER, MODEL]),
        (["stats", "--by", "user", "--json"], json.loads, [USER, OTHER_USER, ERROR_TYPE]),
        (["replay", SESSION, "--json"], lines, [SESSION, EXC_TYPE, EXC_MESSAGE, TRACE]),
        (["replay", SESSION, "--format", "json"], json.loads, [SESSION, PROMPT, ANSWER, TOOL, TOOL_RESULT, STATUS]),
        (["report", "cost", "--month", MONTH, "--json"], json.loads, [FEATURE, USER, OTHER_USER, MODEL]),
        (["report", "compliance", "--framework", "soc2", "--json"], json.loads, [LEVEL, ALERT]),
        (["anomalies", "--json"], lines, [MODEL, FEATURE]),
        (["redteam", "export"], lines, [MODEL, FEATURE, TECHNIQUE, SYSTEM, PROMPT, ROLE]),
    ],
)
def test_json_output_is_exact_and_terminal_safe(
    store: str, capsys: pytest.CaptureFixture[str], argv: list[str], parse: Callable[[str], Any], expected: list[str]
) -> None:
    """Every JSON output decodes to the stored values exactly, and holds none of them raw: JSON
    escapes C0 controls itself, and DEL, C1, bidi and invisible characters are written as \\u escapes."""
    code, text, err = run(capsys, *argv, "--store", store)
    assert code == 0 and err == ""
    assert_terminal_safe(text)
    found = list(strings(parse(text)))
    for value in expected:  # exactly, or inside a record id
        assert any(value in string for string in found), value[: -len(TAIL)]
    marker = expected[0][: -len(TAIL)]
    assert (marker in text) is (argv[0] != "sessions")  # non-ASCII stays readable; sessions --json is ASCII


# --- the rendering function -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", r"\x1b[2J"),
        ("\x00\x07\x08\t\n\r\x0b\x0c\x1f\x7f", r"\x00\x07\x08\t\n\r\x0b\x0c\x1f\x7f"),
        ("\x85\x9b\x9d\x9c", r"\x85\x9b\x9d\x9c"),
        ("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e", r"\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"),
        ("\u2066\u2067\u2068\u2069\u2028\u2029", r"\u2066\u2067\u2068\u2069\u2028\u2029"),
        ("\u00ad\u180e\u200b\u2060\u2064\ufeff", r"\xad\u180e\u200b\u2060\u2064\ufeff"),
        ("\U000e0001\U000e0041\U000e007f", r"\U000e0001\U000e0041\U000e007f"),
        ("\ud800", r"\ud800"),
        ("a\\x1b", r"a\\x1b"),  # the text "\x1b" is not shown like the escape character
        ("a\\\x1b", r"a\\\x1b"),  # a backslash before an escaped character is doubled
        ("C:\\Users\\me\\dir", r"C:\\Users\me\dir"),  # only where it would read as an escape
        ("\\d+\\s*$ \\frac{1}{2}", "\\d+\\s*$ \\frac{1}{2}"),
    ],
)
def test_terminal_text_rules(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown


def test_terminal_text_keeps_plain_text_of_every_script() -> None:
    plain = (
        "Zoë Ørsted-Łukasiewicz, Ωμέγα Σίσυφος, Достоевский, 名前 東京, 김민준, محمد بن سلمان, "
        "דוד בן־גוריון, देवनागरी, می\u200cخواهم, ไทย, \U0001f469\u200d\U0001f469\u200d\U0001f467 e\u0301, "
        "\"quotes\" 'and' <tags> & 100% $PATH ~/x"
    )
    assert terminal_text(plain) == plain
    assert terminal_text(plain, len(plain)) == plain
    assert json.loads(json_text(plain)) == plain and "Zoë Ørsted" in json_text(plain) and "\u200c" in json_text(plain)


def test_terminal_text_keep_lines_and_width() -> None:
    assert terminal_text("a\tb\nc\r\x1b", keep_lines=True) == "a\tb\nc\\r\\x1b"
    assert terminal_text("abcdef", 4) == "abc…"
    assert terminal_text("ab\x1bcdef", 6) == "ab…"  # "\x1b" would not fit whole
    assert terminal_text("ab\x1bcdef", 7) == "ab\\x1b…"
    assert terminal_text("abc", 3) == "abc" and terminal_text("abcd", 1) == "…"


def decode(shown: str) -> str:
    """What terminal_text showed, read back: the escapes it writes, a doubled backslash, or a plain character."""
    out: list[str] = []
    i = 0
    while i < len(shown):
        char, nxt = shown[i], shown[i + 1 : i + 2]
        if char == "\\" and nxt in ("\\", "t", "n", "r", "x", "u", "U"):
            if nxt in "\\tnr":
                out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[nxt])
                i += 2
                continue
            size = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(shown[i + 2 : i + 2 + size], 16)))
            i += 2 + size
            continue
        out.append(char)
        i += 1
    return "".join(out)


TRICKY = st.sampled_from(list("\\xuUtnr0a\x1b\x07\x00\r\n\t\x08\x7f\x9b\u202e\u2066\u2028\u200b\ud800\U000e0041é名"))
TEXTS = st.text(st.one_of(TRICKY, st.characters()), max_size=40)


@given(TEXTS, st.integers(min_value=1, max_value=30))
def test_terminal_text_is_unambiguous_and_cuts_between_escapes(text: str, width: int) -> None:
    shown = terminal_text(text)
    assert FORBIDDEN.search(shown) is None
    assert decode(shown) == text  # two different values never look the same
    cut = terminal_text(text, width)
    assert FORBIDDEN.search(cut) is None and len(cut) <= width
    if cut != shown:
        assert cut.endswith("…") and text.startswith(decode(cut[:-1]))


@given(TEXTS)
def test_json_text_is_exact_json(text: str) -> None:
    value = {"v": [text, {text: 1}]}
    written = json_text(value, indent=2)
    assert json.loads(written) == value
    assert FORBIDDEN.search(written) is None
