"""``genai-audit scan``: the configured policy, dry-run over the user's own text, one line at a time.

Each input line (plain text, or with ``--jsonl`` a JSON object with a ``text``
string) goes through the same processing chain a recorded prompt goes through:
the policy from the environment, the same pseudonym key (so a token printed
here equals the one stored for the same value), classification and
prompt-injection scoring. Nothing is recorded and no alert is delivered.

Input is read as bytes with bounded memory: a line longer than
:data:`MAX_LINE_BYTES`, a line that is not UTF-8, or one holding a NUL byte is
reported (on stderr, and as an ``error`` object with ``--json``) and skipped,
and the command then exits 1; the others are processed as usual.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from genai_audit import semconv as sc

#: the longest line read whole; longer ones are reported and skipped, read in pieces of this size
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Line:
    """One input line: its number, and its text or why it cannot be scanned."""

    number: int
    text: str | None = None
    error: str | None = None


def read_lines(stream: BinaryIO, jsonl: bool, max_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """The lines of ``stream``, never holding more than ``max_bytes`` of one line in memory."""
    number = 0
    while True:
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while True:  # the rest of the over-long line, discarded piece by piece
                rest = stream.readline(max_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
            yield Line(number, error=f"longer than {max_bytes} bytes")
            continue
        raw = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
        if b"\x00" in raw:
            yield Line(number, error=f"binary data (a NUL byte at byte {raw.index(0)})")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Line(number, error=f"not UTF-8 (byte {exc.start})")
            continue
        if jsonl:
            yield _json_line(number, text)
        else:
            yield Line(number, text)


def _json_line(number: int, text: str) -> Line:
    if not text.strip():
        return Line(number, error="empty line, expected a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Line(number, error=f"not JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Line(number, error="JSON nested too deeply")
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return Line(number, error='expected a JSON object with a "text" string')
    return Line(number, value["text"])


class Scanner:
    """The processing chain of the configured policy, applied to one text at a time."""

    def __init__(self) -> None:
        from genai_audit.processors.pipeline import build_chain, build_redactor
        from genai_audit.processors.policy import load_policy

        policy = load_policy()
        self.redactor = build_redactor(policy) if policy.redaction else None
        self.chain = build_chain(policy, alerts=None, redactor=self.redactor)

    def scan(self, text: str) -> dict[str, Any]:
        """The redacted text, what was found where, the injection verdict and the classification."""
        from genai_audit.processors.chain import AuditRecord

        findings = []
        if self.redactor is not None:
            for finding in self.redactor.findings(text):
                original = text[finding.start : finding.end]
                findings.append(
                    {
                        "type": finding.entity,
                        "start": finding.start,
                        "end": finding.end,
                        "token": self.redactor.replacement(finding, original),
                    }
                )
        prompt = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
        record = AuditRecord(content={sc.INPUT_MESSAGES: prompt})
        self.chain(record)
        if record.failures:  # fail closed, as the recorded path does
            raise RuntimeError(f"processing failed: {', '.join(record.failures)}")
        attributes = record.attributes
        redacted = record.content[sc.INPUT_MESSAGES][0]["parts"][0]["content"]
        technique = attributes.get(sc.AUDIT_INJECTION_TECHNIQUE)
        return {
            "text": redacted,
            "findings": findings,
            "injection": {
                "score": attributes.get(sc.AUDIT_INJECTION_SCORE, 0.0),
                "detected": bool(attributes.get(sc.AUDIT_INJECTION_DETECTED, False)),
                "technique": technique if isinstance(technique, str) else None,
            },
            "classification": attributes.get(sc.AUDIT_CLASSIFICATION),
        }


def run(stream: BinaryIO, out: TextIO, err: TextIO, *, jsonl: bool, as_json: bool) -> int:
    """Scan every line of ``stream``; 0 when every line was scanned, 1 when some were skipped."""
    from genai_audit.forensics.render import json_text, terminal_text

    scanner = Scanner()
    skipped = 0
    for line in read_lines(stream, jsonl):
        if line.text is None:
            skipped += 1
            err.write(f"genai-audit: scan: line {line.number}: {line.error}; skipped\n")
            out.write((json_text({"line": line.number, "error": line.error}) if as_json else "") + "\n")
            continue
        result = scanner.scan(line.text)
        if as_json:
            out.write(json_text(result) + "\n")
        else:
            redacted = result["text"]
            out.write((terminal_text(redacted) if out.isatty() else redacted) + "\n")
    if skipped:
        err.write(f"genai-audit: scan: {skipped} line(s) skipped\n")
        return 1
    return 0
