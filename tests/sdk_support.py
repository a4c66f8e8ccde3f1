"""What the instrumentation tests need from an SDK that differs between the supported SDK releases.

The instrumentation tests run against the oldest and the newest supported release
of each SDK (``make test-sdk-versions``). A test that uses an SDK feature newer than
the oldest supported release says so with ``@requires_sdk("feature")``; conftest
deselects it, and prints that it did, when the installed SDK lacks the feature.
Whether the feature is there is asked of the installed SDK itself (``probe``);
``since`` is the first release that has it, which the README states and
tests/test_sdk_versions.py checks against the probe.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

import pytest

# One TLS context for every client: loading CA certificates per client dominates run time.
TLS = ssl.create_default_context()


def http_client(sdk: Any, *, asynchronous: bool = False, **options: Any) -> Any:
    """The HTTP client ``sdk`` (the ``openai`` or ``anthropic`` module) makes by default, with ``options``.

    ``DefaultHttpxClient``/``DefaultAsyncHttpxClient`` are what the SDKs export for
    this; older releases take a plain ``httpx`` client, the library they are built on.
    """
    name = "DefaultAsyncHttpxClient" if asynchronous else "DefaultHttpxClient"
    factory = getattr(sdk, name, None)
    if factory is None:
        import httpx

        factory = httpx.AsyncClient if asynchronous else httpx.Client
    return factory(verify=TLS, **options)


def _has(module: str, path: str) -> bool:
    """Whether ``module`` (imported) has the attribute path ``path`` ("Class.method")."""
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return False
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return False
    for name in path.split("."):
        owner = getattr(owner, name, None)
        if owner is None:
            return False
    return True


def _takes(module: str, path: str, parameter: str) -> bool:
    """Whether the function at ``module``/``path`` declares ``parameter``."""
    if not _has(module, path):
        return False
    function: Any = importlib.import_module(module)
    for name in path.split("."):
        function = getattr(function, name)
    return parameter in inspect.signature(function).parameters


def _parses_to_dict() -> bool:
    """Whether the SDK builds a plain ``dict`` from a JSON object (what ``parse(to=dict)`` asks for)."""
    try:
        from openai._models import construct_type

        return construct_type(value={"id": "x"}, type_=dict) == {"id": "x"}
    except Exception:  # noqa: BLE001 - a release that cannot is one without the feature
        return False


@dataclass(frozen=True)
class Feature:
    sdk: str  #: the distribution
    since: str  #: its first release that has the feature
    what: str  #: the feature as the README names it
    probe: Callable[[], bool]


_CHAT = "openai.resources.chat.completions"
_MESSAGES = "anthropic.resources.messages"

FEATURES: dict[str, Feature] = {
    "openai.service_tier": Feature(
        "openai", "1.35.0", "`service_tier` request parameter of `chat.completions.create`",
        lambda: _takes(_CHAT, "Completions.create", "service_tier"),
    ),
    "openai.parse_to_dict": Feature(
        "openai", "3.12.0", "`with_raw_response` results' `parse(to=dict)`",
        _parses_to_dict,
    ),
    "openai.chat_helpers": Feature(
        "openai", "1.92.0", "`chat.completions.parse` and `chat.completions.stream(...)` (before: under `beta.`)",
        lambda: _has(_CHAT, "Completions.parse") and _has(_CHAT, "Completions.stream"),
    ),
    "openai.responses": Feature(
        "openai", "1.66.0", "`responses.create`, `responses.stream(...)`",
        lambda: _has("openai.resources.responses", "Responses.create"),
    ),
    "anthropic.beta_messages": Feature(
        "anthropic", "0.36.0", "`beta.messages.create` and `beta.messages.stream(...)`",
        lambda: _has("anthropic.resources.beta.messages", "Messages.create")
        or _has("anthropic.resources.beta.messages.messages", "Messages.create"),
    ),
    "anthropic.output_config": Feature(
        "anthropic", "0.77.0", "`output_config` request parameter of `messages.create`",
        lambda: _takes(_MESSAGES, "Messages.create", "output_config"),
    ),
}


def requires_sdk(*features: str) -> pytest.MarkDecorator:
    """Mark a test (or a parameter) as using these SDK features: deselected where one is absent."""
    unknown = [name for name in features if name not in FEATURES]
    if unknown:
        raise ValueError(f"unknown SDK features {unknown}; known: {sorted(FEATURES)}")
    return pytest.mark.requires_sdk(*features)


@cache
def present(feature: str) -> bool:
    return FEATURES[feature].probe()


def installed(sdk: str) -> str | None:
    try:
        return metadata.version(sdk)
    except metadata.PackageNotFoundError:
        return None


def absent(item: pytest.Item) -> list[str]:
    """The SDK features ``item`` requires that the installed SDKs lack."""
    return [name for mark in item.iter_markers("requires_sdk") for name in mark.args if not present(name)]
