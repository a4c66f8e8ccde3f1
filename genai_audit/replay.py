"""A readable forensic timeline of one session, from stored documents.

The timeline itself (calls in order with their parent/child structure, tool calls paired
with their results, tokens, cost, personal-data and injection flags) is built by
:func:`genai_audit.forensics.build_timeline`; this module keeps the terminal rendering's
historical entry point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from genai_audit.forensics.render import render_html, render_json, render_text
from genai_audit.forensics.timeline import Timeline, build_timeline

__all__ = ["Timeline", "build_timeline", "render_html", "render_json", "render_text", "render_timeline"]


def render_timeline(
    docs: Iterable[dict[str, Any]],
    *,
    excerpt: int = 200,
    events: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None = None,
) -> str:
    """The session's timeline for a terminal; prompts and responses cut to ``excerpt`` characters."""
    return render_text(build_timeline(docs, events), excerpt_chars=excerpt)
