"""The source tree: each distribution's folder path below ``src/`` is its import path, and what is
installed is what is found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from genai_audit.config import ConfigError, Settings
from genai_audit.instrumentation.registry import installed

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = sorted(path.parent.name for path in (ROOT / "instrumentation").glob("*/pyproject.toml"))


def test_every_library_folder_is_one_distribution_whose_path_is_its_import_path() -> None:
    assert LIBRARIES == ["anthropic", "groq", "openai"]
    for library in LIBRARIES:
        folder = ROOT / "instrumentation" / library
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == f"genai-audit-instrumentation-{library}"
        package = folder / "src" / "genai_audit" / "instrumentation" / library
        assert (package / "__init__.py").is_file() and (package / "package.py").is_file()
        # namespace portions only: the core owns genai_audit/__init__.py and genai_audit/instrumentation/
        assert not (folder / "src" / "genai_audit" / "__init__.py").exists()
        assert not (folder / "src" / "genai_audit" / "instrumentation" / "__init__.py").exists()
        points = project["entry-points"]["opentelemetry_instrumentor"]
        assert list(points) == [f"genai_audit_{library}"]
        assert points[f"genai_audit_{library}"].startswith(f"genai_audit.instrumentation.{library}:")


def test_the_core_extras_name_every_library() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for library in LIBRARIES:
        assert f"genai-audit-instrumentation-{library}==0.1.0" in extras[library]
    assert extras["all"] == ["genai-audit[openai,anthropic,groq]"]


def test_installed_instrumentations_are_found_by_their_entry_points() -> None:
    points = installed()
    assert sorted(points) == LIBRARIES
    for library, point in points.items():
        instrumentor = point.load()
        assert instrumentor.__module__ == f"genai_audit.instrumentation.{library}"


def test_packages_of_every_source_root_are_found() -> None:
    """processors/ and instrumentation/<library>/ extend genai_audit's path, editable or installed."""
    import genai_audit.processors

    roots = {Path(entry).resolve() for entry in genai_audit.__path__}
    assert (ROOT / "genai_audit").resolve() in roots
    assert Path(genai_audit.processors.__file__).resolve().is_relative_to(ROOT / "processors" / "src")


def test_unknown_instrumentation_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown instrumentation cohere; installed: anthropic, groq, openai"):
        Settings.from_env({"GENAI_AUDIT_INSTRUMENT": "openai,cohere"})
    assert Settings.from_env({}).instrument is None
    assert Settings.from_env({"GENAI_AUDIT_INSTRUMENT": "anthropic"}).instrument == ("anthropic",)


def test_every_shipped_data_file_is_in_the_processors_wheel() -> None:
    """A data file the package reads but its distribution does not list would be missing once installed."""
    folder = ROOT / "processors"
    listed = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    data = folder / "src" / "genai_audit" / "processors" / "data"
    assert sorted(f"data/{path.name}" for path in data.iterdir()) == sorted(listed["genai_audit.processors"])
