"""The distributions of a source checkout, for installing all of them editable into another environment."""

from __future__ import annotations

from pathlib import Path


def projects(root: Path) -> list[Path]:
    """The folders of the checkout at ``root`` that hold a distribution: the core first."""
    found = [root]
    for candidate in [root / "processors", *sorted((root / "instrumentation").glob("*"))]:
        if (candidate / "pyproject.toml").is_file():
            found.append(candidate)
    return found


def editable_args(root: Path) -> list[str]:
    """``pip install`` arguments that install every distribution of the checkout editable.

    "compat" editable installs put each source root on ``sys.path``, where ``genai_audit``'s extended
    ``__path__`` finds the packages of the other distributions (setuptools' import-hook installs hide them).
    """
    args = ["--config-settings", "editable_mode=compat"]
    return args + [arg for project in projects(root) for arg in ("-e", str(project))]
