"""Instrumentation of LLM client libraries: one subpackage per library."""

from genai_audit.instrumentation._core import flush_metrics

__all__ = ["flush_metrics"]
