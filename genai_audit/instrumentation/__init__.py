"""The runtime every instrumented library shares: span lifecycle, metrics, wrappers, streams.

Each library's instrumentation is a distribution of its own
(``instrumentation/<library>/`` in the source tree, importable as
``genai_audit.instrumentation.<library>``); ``__path__`` is extended so that
they are found wherever each is installed.
"""

from __future__ import annotations

from pkgutil import extend_path
from typing import Any

__path__ = extend_path(__path__, __name__)

__all__ = ["flush_metrics"]


def __getattr__(name: str) -> Any:
    if name == "flush_metrics":  # loaded on use: the registry is read without the runtime
        from genai_audit.instrumentation._core import flush_metrics

        return flush_metrics
    raise AttributeError(f"module 'genai_audit.instrumentation' has no attribute {name!r}")
