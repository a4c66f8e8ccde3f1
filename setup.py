"""Build hook: the start-up hook file that makes GENAI_AUDIT_ENABLED work.

Python runs every ``*.pth`` file in site-packages at interpreter start; ours
holds one line that reads the environment variable and, only when it is set,
imports :mod:`genai_audit._autostart`. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os

from setuptools import setup
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


setup(cmdclass={"build_py": BuildPyWithPth})
