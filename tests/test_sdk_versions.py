"""Supported SDK versions are tested versions: the declarations, the README and the tested releases agree.

``make test-sdk-versions`` (tools/sdk_envs.py) runs the instrumentation tests, this
file among them, against the oldest and the newest supported release of each SDK.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from genai_audit.instrumentation.anthropic.package import _instruments as anthropic_instruments
from genai_audit.instrumentation.openai.package import _instruments as openai_instruments
from tests.sdk_support import FEATURES, installed, present
from tools.sdk_envs import ENVIRONMENTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: the page the README sends readers to for which feature needs which release
VERSIONS_PAGE = (ROOT / "docs" / "sdk-versions.md").read_text(encoding="utf-8")
SDKS = {"openai": openai_instruments, "anthropic": anthropic_instruments}


def _declared(sdk: str) -> Requirement:
    (spec,) = SDKS[sdk]
    return Requirement(spec)


def _bounds(requirement: Requirement) -> tuple[Version, Version]:
    lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    upper = [Version(s.version) for s in requirement.specifier if s.operator == "<"]
    assert len(lower) == 1 and len(upper) == 1, requirement
    return lower[0], upper[0]


def _pins(sdk: str) -> list[Version]:
    return [
        Version(next(iter(Requirement(pin).specifier)).version)
        for pins in ENVIRONMENTS.values()
        for pin in pins
        if Requirement(pin).name == sdk
    ]


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_every_declaration_of_the_range_is_the_same(sdk: str) -> None:
    """package.py, the instrumentation's ``instruments`` extra and the root extras declare one range."""
    declared = _declared(sdk)
    project = tomllib.loads((ROOT / "instrumentation" / sdk / "pyproject.toml").read_text())["project"]
    (extra,) = project["optional-dependencies"]["instruments"]
    assert Requirement(extra).specifier == declared.specifier
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in (sdk, "dev"):
        (found,) = [Requirement(r) for r in root[name] if Requirement(r).name == sdk]
        assert found.specifier == declared.specifier, name


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_the_range_runs_from_the_oldest_tested_release_to_the_declared_upper_bound(sdk: str) -> None:
    lower, upper = _bounds(_declared(sdk))
    pins = _pins(sdk)
    assert min(pins) == lower, "the lower bound is the oldest release the instrumentation tests run on"
    assert max(pins) < upper
    assert f"| `{sdk}` >= {lower}, < {upper} |" in README


def test_the_readme_names_the_tested_releases() -> None:
    for sdk in SDKS:
        assert f"{sdk} {min(_pins(sdk))} and {max(_pins(sdk))}" in README, sdk


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_each_sdk_feature_is_documented_with_its_first_release(name: str) -> None:
    feature = FEATURES[name]
    assert f"| {feature.what} | {feature.sdk} {feature.since} |" in VERSIONS_PAGE
    assert Version(feature.since) > min(_pins(feature.sdk)), "the oldest tested release has it: no need to mark"


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_an_sdk_feature_is_present_exactly_from_its_first_release(name: str) -> None:
    """What deselects a test (the installed SDK lacks the feature) agrees with the README's version."""
    feature = FEATURES[name]
    version = installed(feature.sdk)
    assert version is not None
    assert present(name) == (Version(version) >= Version(feature.since)), f"{feature.sdk} {version}"

