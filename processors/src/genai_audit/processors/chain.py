"""The processing chain: small steps over one :class:`AuditRecord`.

Instrumentation builds one record per LLM call — the span attributes known so
far and the captured content in structured form (message-parts lists, not
JSON text) — and runs the chain on it *before* anything becomes a span
attribute. Steps redact content in place, add attributes (classification,
flags, cost), or raise alerts.

The chain fails closed: when a step raises, every piece of content is
replaced by a placeholder, the failure is named on the record and counted,
and the remaining steps still run on what is left. Raw content never leaves
because a step broke. (Steps marked ``reads_content_only`` — they score or
price but never change content — only record their failure.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from opentelemetry.util.types import AttributeValue

logger = logging.getLogger("genai_audit.processors")

WITHHELD = "[content withheld: audit processing failed]"


@dataclass
class AuditRecord:
    """What one LLM call is about to record.

    ``content`` maps a span attribute name (``gen_ai.input.messages``,
    ``gen_ai.output.messages``, ``gen_ai.system_instructions``,
    ``gen_ai.tool.definitions``, ``exception.message``) to a JSON-compatible
    value. ``attributes`` are the span attributes gathered so far, including
    the audit context; steps may add to them. ``trace_id`` / ``span_id`` (lower-case
    hex, W3C widths) name the span the record belongs to, when there is one, so
    that what a step raises (an alert) points at the trace.
    """

    attributes: MutableMapping[str, AttributeValue] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    trace_id: str | None = None
    span_id: str | None = None


@runtime_checkable
class Step(Protocol):
    """One processing step. Mutates the record; may raise (the chain fails closed).

    A step that never changes ``record.content`` (scoring, pricing, alerting)
    may say so with a true ``reads_content_only`` attribute: its failure is
    then recorded and counted, but the content the earlier steps produced is
    kept instead of withheld.
    """

    def __call__(self, record: AuditRecord) -> None: ...


def _step_name(step: Step) -> str:
    return getattr(step, "__name__", None) or type(step).__name__


class ProcessingChain:
    """Runs steps in order over a record; see the module docstring for failure handling."""

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps: Sequence[Step] = tuple(steps)
        for step in self.steps:
            if not callable(step):
                raise TypeError(f"processing step {step!r} is not callable")
        self._lock = threading.Lock()
        self._failures = 0

    @property
    def failures(self) -> int:
        """How many step failures this chain has masked so far."""
        return self._failures

    def close(self, timeout: float = 5.0) -> None:
        """Close the steps that hold resources (alert delivery); errors are logged."""
        for step in self.steps:
            closer = getattr(step, "close", None)
            if callable(closer):
                try:
                    closer(timeout)
                except Exception:
                    logger.warning("closing audit processing step %s failed", _step_name(step), exc_info=True)

    def __call__(self, record: AuditRecord) -> AuditRecord:
        for step in self.steps:
            try:
                step(record)
            except Exception:
                name = _step_name(step)
                logger.warning("audit processing step %s failed; content withheld", name, exc_info=True)
                with self._lock:
                    self._failures += 1
                record.failures.append(name)
                if getattr(step, "reads_content_only", False):
                    continue  # the content is as the earlier steps left it (redacted)
                record.content = dict.fromkeys(record.content, WITHHELD)
        return record


#: The chain used when nothing else is configured.
IDENTITY = ProcessingChain()
_default: ProcessingChain = IDENTITY


def set_default_chain(chain: ProcessingChain) -> None:
    """Make ``chain`` the one instrumentation uses when given none explicitly."""
    global _default
    _default = chain


def default_chain() -> ProcessingChain:
    return _default
