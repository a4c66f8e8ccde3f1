"""Audit processing: the chain every captured prompt and response passes through.

See :mod:`genai_audit.processors.chain` for the interface steps implement.
"""

from genai_audit.processors.chain import WITHHELD, AuditRecord, ProcessingChain, Step

__all__ = ["WITHHELD", "AuditRecord", "ProcessingChain", "Step"]
