"""Timelines laid out for a terminal, as JSON, and as a self-contained HTML report.

Stored content is whatever users, tools and models wrote, so it is treated as hostile in
every format. Every stored value a command prints for a terminal goes through
:func:`terminal_text`, which shows control characters, direction overrides and invisible
characters as visible escapes (``\\x1b``, ``\\u202e``); JSON output goes through
:func:`json_text`, which is exact JSON with the same characters as ``\\u`` escapes; in HTML every
stored value is escaped, the page has no script, and its Content-Security-Policy forbids scripts
and remote resources anyway, so the report can be attached to a ticket and opened anywhere.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from genai_audit.forensics.timeline import Entry, Message, Timeline, shown

# What a terminal must never receive raw, and what a reader cannot see: the C0 controls (NUL, BS,
# TAB, LF, CR, ESC, ...); DEL and the C1 controls (U+009B is CSI, U+009D OSC, U+0085 NEL); the
# bidirectional marks, embeddings, overrides and isolates; the line and paragraph separators;
# invisible characters no script needs (soft hyphen, Mongolian vowel separator, zero-width space,
# word joiner and invisible operators, BOM, the tag characters of "ASCII smuggling"); and lone
# surrogates, which cannot even be encoded. Zero-width (non-)joiners stay: scripts need them.
_C0 = "\x00-\x1f"
_C0_BUT_LINES = "\x00-\x08\x0b-\x1f"  # TAB and LF kept
_BEYOND_C0 = (
    "\x7f-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\u2028\u2029"
    "\u00ad\u180e\u200b\u2060-\u2064\ufeff\U000e0000-\U000e007f"
    "\ud800-\udfff"
)
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _unsafe(chars: str) -> re.Pattern[str]:
    """A backslash that would read as the start of an escape, or a character to escape."""
    return re.compile(f"\\\\(?=[\\\\xuUtnr{chars}])|[{chars}]")


_TERMINAL = _unsafe(_C0 + _BEYOND_C0)
_TERMINAL_LINES = _unsafe(_C0_BUT_LINES + _BEYOND_C0)
# json.dumps escapes the C0 controls in strings itself; outside strings it writes ASCII (and LF when indented)
_JSON_UNSAFE = re.compile(f"[{_BEYOND_C0}]")


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_text(text: str, width: int | None = None, *, keep_lines: bool = False) -> str:
    """A stored value as a terminal may show it: the one place stored text is made safe to print.

    Printable text, letters of every script included, is shown as it is. Each character a terminal
    would act on or a reader could not see (listed above) is shown as its Python escape: ``\\t``,
    ``\\n``, ``\\r``, ``\\xHH`` up to U+00FF, ``\\uHHHH``, ``\\UHHHHHHHH``. A backslash is doubled
    where it would otherwise read as the start of such an escape (before ``x``, ``u``, ``U``, ``t``,
    ``n``, ``r``, a backslash or an escaped character), so two different values never look the same.
    ``width`` cuts the result to that many characters, ``…`` marking the cut, never inside an escape.
    ``keep_lines`` leaves TAB and LF as they are (multi-line text for HTML ``<pre>``).
    """
    pattern = _TERMINAL_LINES if keep_lines else _TERMINAL
    if width is None:
        return pattern.sub(_escape, text)
    head = text[: width + 1]  # escaping never shortens, so this is all that can be shown
    pieces: list[str] = []
    position = 0
    for found in pattern.finditer(head):
        pieces.extend((head[position : found.start()], _escape(found)))
        position = found.end()
    pieces.append(head[position:])
    whole = "".join(pieces)
    if len(whole) <= width:
        return whole
    room = max(0, width - 1)
    kept: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 1 and len(piece) > room:  # an escape is shown whole or not at all
            break
        kept.append(piece[:room])
        room -= len(kept[-1])
        if not room:
            break
    return "".join(kept) + "…"


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as exact JSON for output: UTF-8 text as it is (names in any script stay readable),
    and every character :func:`terminal_text` escapes written as a ``\\u`` escape, so JSON printed to
    a terminal cannot drive it either. ``json.loads`` gives back exactly ``value``."""
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(value, ensure_ascii=False, indent=indent))


def _json_escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


# runs of whitespace an excerpt shows as one space: the ordinary kinds (CRLF too), not the ones
# terminal_text shows (a lone CR, VT, FF, the separators)
_FLAT = re.compile("(?:\r\n|[^\\S\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029])+")


def excerpt(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (``…`` marks a cut), safe for a terminal."""
    return terminal_text(_FLAT.sub(" ", text).strip(" "), limit)


def _clock(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{(ns // 1_000_000) % 1000:03d}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _flag_phrases(entry: Entry) -> list[str]:
    flags = entry.flags
    phrases = []
    if flags.pii_detected:
        tokens = f" {' '.join(flags.pii_tokens)}" if flags.pii_tokens else ""
        phrases.append(f"PII {','.join(flags.pii_types) or '?'} x{flags.pii_count}{tokens}")
    if flags.secrets_detected:
        phrases.append("SECRET")
    if flags.injection_detected:
        score = f" {flags.injection_score:.2f}" if flags.injection_score is not None else ""
        how = ", ".join(item for item in (flags.injection_technique, flags.injection_source) if item)
        phrases.append(f"INJECTION{score}" + (f" {how}" if how else ""))
    if flags.alerts:
        phrases.append(f"alerts {','.join(flags.alerts)}")
    if flags.processing_failed:
        phrases.append(f"processing failed: {','.join(flags.processing_failed)}")
    return phrases


# --- terminal ---------------------------------------------------------------------------------------------


def render_text(timeline: Timeline, *, excerpt_chars: int = 200) -> str:
    """The timeline for a terminal: one block per call, children indented under their parent."""
    t = timeline
    out: list[str] = [
        f"session {terminal_text(t.session_id)}  user(s) {terminal_text(', '.join(t.users)) or '-'}  calls {t.calls}  "
        f"errors {t.errors}"
    ]
    out.append(
        f"   {_clock(t.start_ns)} -> {_clock(t.end_ns)} UTC ({_duration(t.duration_ms)})  "
        f"tokens in={t.input_tokens} out={t.output_tokens}  cost {_usd(t.cost_usd)}"
    )
    facts = [
        ("features", ", ".join(t.features)),
        ("models", ", ".join(t.models)),
        ("requests", ", ".join(t.request_ids)),
        ("class", t.classification or ""),
        ("PII", ", ".join(t.pii_types)),
        ("injection", f"{t.injection_calls} call(s)" if t.injection_calls else ""),
        ("alerts", ", ".join(t.alerts)),
    ]
    shown = [f"{label} {terminal_text(value)}" for label, value in facts if value]
    if shown:
        out.append("   " + "  ".join(shown))
    for entry in t.entries:
        out.append("")
        out.extend(_entry_lines(entry, excerpt_chars))
    out.append("")
    out.append(f"total tokens in={t.input_tokens} out={t.output_tokens}  cost {_usd(t.cost_usd)}")
    return "\n".join(out) + "\n"


def _entry_lines(e: Entry, limit: int) -> list[str]:
    pad = "  " * e.depth
    body = pad + "   "
    tokens_in = "-" if e.input_tokens is None else e.input_tokens
    tokens_out = "-" if e.output_tokens is None else e.output_tokens
    stream = " stream" if e.stream else ""
    cost = f"  {_usd(e.cost_usd)}" if e.cost_usd is not None else ""
    lines = [
        f"{pad}#{e.index} {_clock(e.start_ns)} UTC  +{e.offset_ms / 1000:.3f}s  {terminal_text(e.provider or '-')} "
        f"{terminal_text(e.name)}{stream}  {e.latency_ms:.0f} ms  tokens in={tokens_in} out={tokens_out}{cost}"
    ]
    context = [
        f"{label}={terminal_text(value)}"
        for label, value in (
            ("user", e.user),
            ("feature", e.feature),
            ("request", e.request_id),
            ("consent", e.consent),
            ("class", e.flags.classification),
        )
        if value is not None
    ]
    if e.parent_index is not None:
        context.insert(0, f"child of #{e.parent_index}")
    if context:
        lines.append(body + "  ".join(context))
    lines.append(f"{body}trace {terminal_text(e.trace_id)} span {terminal_text(e.span_id)}")
    flags = _flag_phrases(e)
    if flags:
        lines.append(f"{body}flags: " + terminal_text("; ".join(flags)))
    for message in e.system:
        lines.append(f"{body}system> {excerpt(message.text, limit)}")
    for message in e.input:
        lines.append(f"{body}{terminal_text(message.role)}> {excerpt(message.text, limit)}")
    if e.failed:
        lines.append(f"{body}ERROR {terminal_text(e.error_type or '-')}: {excerpt(e.error_message or '', limit)}")
        for exc in e.exceptions:
            lines.append(f"{body}  exception {terminal_text(exc.type or '-')}: {excerpt(exc.message or '', limit)}")
    for message in e.output:
        reasons = e.finish_reasons
        suffix = f"  (finish: {terminal_text(', '.join(reasons))})" if reasons else ""
        lines.append(f"{body}{terminal_text(message.role)}< {excerpt(message.text, limit)}{suffix}")
    for call in e.tool_calls:
        result = (
            f" -> result in #{call.result_entry}: {excerpt(shown(call.result), limit)}"
            if call.has_result
            else " -> no result recorded"
        )
        lines.append(
            f"{body}tool call {terminal_text(call.name or '?')}({excerpt(shown(call.arguments), limit)})"
            f" id={terminal_text(call.id or '-')}{result}"
        )
    for tool_result in e.tool_results:
        origin = (
            f" for #{tool_result.call_entry} {terminal_text(tool_result.name or '')}" if tool_result.call_entry else ""
        )
        lines.append(
            f"{body}tool result{origin} id={terminal_text(tool_result.id or '-')}: "
            f"{excerpt(shown(tool_result.result), limit)}"
        )
    if e.flags.truncated:
        lines.append(f"{body}note: content truncated: {terminal_text(', '.join(e.flags.truncated))}")
    return lines


# --- JSON -----------------------------------------------------------------------------------------------------


def render_json(timeline: Timeline) -> str:
    return json_text(timeline.to_dict(), indent=2) + "\n"


# --- HTML -----------------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; --line: #d0d7de; --muted: #57606a; --bad: #b42318; --warn: #9a6700; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1100px; padding: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 8px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { width: 170px; color: var(--muted); font-weight: 600; }
.summary { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 16px 0 24px; }
.entry { border: 1px solid var(--line); border-left: 4px solid #8c959f; border-radius: 8px;
         padding: 12px 16px; margin: 0 0 14px; page-break-inside: avoid; }
.entry.failed { border-left-color: var(--bad); }
.entry.flagged { border-left-color: var(--warn); }
.badge { display: inline-block; font-size: 11px; font-weight: 700; border-radius: 10px; padding: 1px 8px;
         margin-left: 6px; vertical-align: 2px; color: #fff; background: #57606a; }
.badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); } .badge.ok { background: var(--ok); }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 2px 16px;
         margin: 6px 0 10px; }
.facts div span { color: var(--muted); }
.msg { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; }
.msg .role { font-size: 11px; font-weight: 700; text-transform: uppercase; color: var(--muted);
             padding: 3px 8px; border-bottom: 1px solid var(--line); background: #f6f8fa; }
.msg pre { padding: 6px 8px; }
.msg.out { background: #f0fff4; } .msg.sys { background: #fbfbfb; }
.error { border: 1px solid var(--bad); background: #fff5f5; border-radius: 6px; padding: 6px 8px; margin: 6px 0; }
.flags { background: #fff8e6; border: 1px solid #f2cc60; border-radius: 6px; padding: 6px 8px; margin: 6px 0; }
h3 { font-size: 13px; margin: 10px 0 4px; color: var(--muted); }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media print { body { padding: 0; } a { color: inherit; text-decoration: none; } }
"""


def _h(value: Any) -> str:
    """One stored value as HTML text: escaped (quotes included), controls made visible (lines kept)."""
    return html.escape(terminal_text(shown(value), keep_lines=True), quote=True)


def _role_class(role: str) -> str:
    return "out" if role == "assistant" else "sys" if role == "system" else "in"


def _messages_html(messages: Iterable[Message], direction: str) -> list[str]:
    parts: list[str] = []
    for message in messages:
        label = f"{message.role} {direction}"
        if message.finish_reason:
            label += f" · finish: {message.finish_reason}"
        parts.append(
            f'<div class="msg {_role_class(message.role)}"><div class="role">{_h(label)}</div>'
            f"<pre>{_h(message.text)}</pre></div>"
        )
    return parts


def _entry_html(e: Entry) -> str:
    classes = ["entry"]
    if e.failed:
        classes.append("failed")
    elif e.flags.labels:
        classes.append("flagged")
    badges = []
    if e.failed:
        badges.append('<span class="badge bad">ERROR</span>')
    for label in e.flags.labels:
        kind = "bad" if label in ("INJECTION", "SECRET", "PROCESSING-FAILED") else "warn"
        badges.append(f'<span class="badge {kind}">{_h(label)}</span>')
    if e.stream:
        badges.append('<span class="badge">stream</span>')
    facts: list[tuple[str, str]] = [
        ("time (UTC)", _h(_clock(e.start_ns))),
        ("offset", _h(f"+{e.offset_ms / 1000:.3f} s")),
        ("latency", _h(f"{e.latency_ms:.1f} ms")),
        (
            "tokens",
            _h(
                f"in {e.input_tokens if e.input_tokens is not None else '-'} / "
                f"out {e.output_tokens if e.output_tokens is not None else '-'}"
            ),
        ),
        ("cost", _h(_usd(e.cost_usd))),
        ("provider", _h(e.provider or "-")),
        ("model", _h(e.request_model or "-") + (f" → {_h(e.response_model)}" if e.response_model else "")),
        ("user", _h(e.user or "-")),
        ("feature", _h(e.feature or "-")),
        ("request id", _h(e.request_id or "-")),
        ("consent", _h(e.consent or "-")),
        ("classification", _h(e.flags.classification or "-")),
        ("trace", f'<span class="mono">{_h(e.trace_id)}</span>'),
        ("span", f'<span class="mono">{_h(e.span_id)}</span>'),
    ]
    if e.parent_index is not None:
        facts.append(("parent", f'<a href="#e{e.parent_index}">#{e.parent_index}</a>'))
    elif e.parent_span_id:
        facts.append(("parent span", f'<span class="mono">{_h(e.parent_span_id)}</span> (not in this session)'))
    if e.children:
        facts.append(("children", " ".join(f'<a href="#e{child}">#{child}</a>' for child in e.children)))
    chunks = [
        f'<article class="{" ".join(classes)}" id="e{e.index}" style="margin-left: {min(e.depth, 8) * 24}px">',
        f"<h2>#{e.index} {_h(e.name)}{''.join(badges)}</h2>",
        '<div class="facts">'
        + "".join(f"<div><span>{label}</span> {value}</div>" for label, value in facts)
        + "</div>",
    ]
    flags = _flag_phrases(e)
    if flags or e.flags.truncated:
        items = [f"<div>{_h(phrase)}</div>" for phrase in flags]
        if e.flags.truncated:
            items.append(f"<div>content truncated: {_h(', '.join(e.flags.truncated))}</div>")
        if e.flags.security_score is not None:
            items.append(f"<div>security score {_h(f'{e.flags.security_score:.2f}')}</div>")
        chunks.append('<div class="flags">' + "".join(items) + "</div>")
    if e.system or e.input:
        chunks.append("<h3>Request</h3>")
        chunks.extend(_messages_html(e.system, "(instructions)"))
        chunks.extend(_messages_html(e.input, "→"))
    if e.failed:
        lines = [f"<div><strong>{_h(e.error_type or 'error')}</strong>: {_h(e.error_message or '')}</div>"]
        lines.extend(f"<div>exception {_h(exc.type or '-')}: {_h(exc.message or '')}</div>" for exc in e.exceptions)
        chunks.append('<div class="error">' + "".join(lines) + "</div>")
    if e.output:
        chunks.append("<h3>Response</h3>")
        chunks.extend(_messages_html(e.output, "←"))
    if e.tool_calls:
        rows = []
        for call in e.tool_calls:
            where = f'<a href="#e{call.result_entry}">#{call.result_entry}</a>' if call.result_entry else "-"
            result = f"<pre>{_h(call.result)}</pre>" if call.has_result else '<span class="muted">not recorded</span>'
            rows.append(
                f'<tr><td><code>{_h(call.name or "?")}</code><br><span class="muted mono">{_h(call.id or "")}</span>'
                f"</td><td><pre>{_h(call.arguments)}</pre></td><td>{result}</td><td>{where}</td></tr>"
            )
        chunks.append(
            "<h3>Tool calls</h3><table><tr><th>tool</th><th>arguments</th><th>result</th><th>result sent in</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    if e.tool_results:
        rows = []
        for tool_result in e.tool_results:
            origin = (
                f'<a href="#e{tool_result.call_entry}">#{tool_result.call_entry}</a> {_h(tool_result.name or "")}'
                if tool_result.call_entry
                else '<span class="muted">call not in this session</span>'
            )
            rows.append(
                f'<tr><td>{origin}<br><span class="muted mono">{_h(tool_result.id or "")}</span></td>'
                f"<td><pre>{_h(tool_result.result)}</pre></td></tr>"
            )
        chunks.append(
            "<h3>Tool results sent</h3><table><tr><th>called in</th><th>result</th></tr>" + "".join(rows) + "</table>"
        )
    chunks.append("</article>")
    return "\n".join(chunks)


def render_html(timeline: Timeline, *, generated_ns: int | None = None) -> str:
    """A self-contained HTML page: inline CSS, no script, no remote resource, every value escaped."""
    t = timeline
    now = generated_ns if generated_ns is not None else int(datetime.now(timezone.utc).timestamp() * 1e9)
    summary = [
        ("session", f'<span class="mono">{_h(t.session_id)}</span>'),
        ("user(s)", _h(", ".join(t.users) or "-")),
        ("time (UTC)", _h(f"{_clock(t.start_ns)} → {_clock(t.end_ns)}  ({_duration(t.duration_ms)})")),
        ("calls", _h(f"{t.calls}, {t.errors} failed")),
        ("tokens", _h(f"in {t.input_tokens} / out {t.output_tokens}")),
        ("cost", _h(_usd(t.cost_usd))),
        ("features", _h(", ".join(t.features) or "-")),
        ("models", _h(", ".join(t.models) or "-")),
        ("request ids", _h(", ".join(t.request_ids) or "-")),
        ("classification", _h(t.classification or "-")),
        ("personal data", _h(", ".join(t.pii_types) or "none found")),
        ("pseudonym tokens", "<pre>" + _h("\n".join(t.pii_tokens)) + "</pre>" if t.pii_tokens else "-"),
        ("prompt injection", _h(f"{t.injection_calls} call(s) flagged" if t.injection_calls else "none flagged")),
        ("alerts", _h(", ".join(t.alerts) or "-")),
        ("source", _h(t.source or "-")),
    ]
    rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in summary)
    entries = "\n".join(_entry_html(entry) for entry in t.entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>genai-audit session {_h(t.session_id)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>LLM audit trail: session <span class="mono">{_h(t.session_id)}</span></h1>
<div class="muted">Forensic timeline generated by genai-audit on {_h(_clock(now))} UTC. Prompt and response
content is shown as stored: already redacted (personal data replaced by pseudonym tokens).</div>
</header>
<section class="summary"><table>{rows}</table></section>
<section>
{entries}
</section>
<footer>{t.calls} call(s). Times are span start times in UTC; latency is the span duration.</footer>
</body>
</html>
"""
