"""The installed instrumentations, found by their ``opentelemetry_instrumentor`` entry points.

Each instrumentation distribution declares one entry point named
``genai_audit_<library>``, where ``<library>`` is the module the application
imports (``openai``, ``anthropic``). ``GENAI_AUDIT_ENABLED=true`` and
``opentelemetry-instrument`` both find them this way, so an installed
instrumentation is used with no change here, and one that is not installed is
never looked for.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

GROUP = "opentelemetry_instrumentor"
PREFIX = "genai_audit_"


def installed() -> dict[str, EntryPoint]:
    """The instrumented module's name -> the entry point of its instrumentor, for every one installed."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        if point.name.startswith(PREFIX) and point.value.startswith("genai_audit.instrumentation."):
            found.setdefault(point.name[len(PREFIX) :], point)
    return found
