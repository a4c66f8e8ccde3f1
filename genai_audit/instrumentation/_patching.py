"""Applying and removing wrappers on SDK classes, tolerant of SDK versions.

A target missing from the installed SDK version is skipped (logged at debug),
so one instrumentor serves every version in its supported range.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from wrapt import wrap_function_wrapper

logger = logging.getLogger("genai_audit.instrumentation")

Target = tuple[str, str, Callable[..., Any]]  # (module, "Class.method", wrapper)


def _resolve(module: str, path: str) -> tuple[Any, str] | None:
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *parents, attribute = path.split(".")
    for name in parents:
        owner = getattr(owner, name, None)
        if owner is None:
            return None
    if not hasattr(owner, attribute):
        return None
    return owner, attribute


def wrap_all(targets: Iterable[Target]) -> list[tuple[Any, str]]:
    """Wrap every target that exists; return what was wrapped (for :func:`unwrap_all`)."""
    done = []
    seen: set[tuple[int, str]] = set()
    for module, path, wrapper in targets:
        found = _resolve(module, path)
        if found is None:
            logger.debug("genai-audit: %s.%s not in this SDK version; skipped", module, path)
            continue
        owner, attribute = found
        if (id(owner), attribute) in seen:
            continue
        seen.add((id(owner), attribute))
        wrap_function_wrapper(owner, attribute, wrapper)
        done.append((owner, attribute))
    return done


def unwrap_all(wrapped: Iterable[tuple[Any, str]]) -> None:
    for owner, attribute in wrapped:
        current = getattr(owner, attribute, None)
        original = getattr(current, "__wrapped__", None)
        if original is not None:
            setattr(owner, attribute, original)
