"""Run at interpreter start by the ``genai_audit-autostart.pth`` hook when GENAI_AUDIT_ENABLED is true.

Configures the whole pipeline from environment variables. A configuration
error is reported on stderr and the application starts anyway, unaudited:
the hook must never stop a program from running.
"""

from __future__ import annotations

import logging
import os
import sys


def _start() -> None:
    from genai_audit.config import ConfigError

    level = os.environ.get("GENAI_AUDIT_LOG_LEVEL", "").upper()
    if level:
        logging.getLogger("genai_audit").setLevel(level)
    try:
        from genai_audit.bootstrap import configure

        configure()
    except ConfigError as exc:
        sys.stderr.write(f"genai-audit: not enabled: {exc}\n")
    except Exception as exc:  # noqa: BLE001 - the application must start regardless
        sys.stderr.write(f"genai-audit: not enabled: unexpected error {exc!r}\n")


_start()
