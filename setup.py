"""Build hooks: the start-up hook file that makes GENAI_AUDIT_ENABLED work, and three C extensions.

Python runs every ``*.pth`` file in site-packages at interpreter start; ours
holds one line that reads the environment variable and, only when it is set,
imports :mod:`genai_audit._autostart`.

``genai_audit.processors._collect`` is the candidate loop of the PII detectors
in C. It is optional: without a compiler the install goes on and the detectors
run the same loop in Python. ``genai_audit._jsonenc`` writes captured content as
JSON; without it the standard library's encoder does.
``genai_audit.instrumentation.openai._fastread`` reads chat requests and responses
of the usual shape; without it the Python reading does all of them. Everything else is in
pyproject.toml.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH_NAME = "genai_audit-autostart.pth"


class BuildPyWithPth(build_py):
    """Copy the start-up hook into the wheel root (site-packages once installed)."""

    def run(self) -> None:
        super().run()
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "genai_audit", "autostart.pth")
        self.copy_file(src, self._pth_target(), preserve_mode=False)

    def _pth_target(self) -> str:
        # An editable wheel is assembled from the install directory, not from
        # build_lib, so the hook goes there to reach site-packages as well.
        if getattr(self, "editable_mode", False):
            return os.path.join(self.get_finalized_command("install").install_lib, PTH_NAME)
        return os.path.join(self.build_lib, PTH_NAME)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), self._pth_target()]


setup(
    cmdclass={"build_py": BuildPyWithPth},
    ext_modules=[
        Extension("genai_audit.processors._collect", ["processors/_collect.c"], optional=True),
        Extension("genai_audit._jsonenc", ["genai_audit/_jsonenc.c"], optional=True),
        Extension(
            "genai_audit.instrumentation.openai._fastread", ["instrumentation/openai/_fastread.c"], optional=True
        ),
    ],
)
