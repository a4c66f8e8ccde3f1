"""Small helpers for reading SDK objects and building message parts.

SDK requests arrive as dicts or as the SDK's own pydantic models (a response
message passed back as history), and optional arguments as the SDK's
``NOT_GIVEN``/``omit`` sentinels; these helpers read all of them alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_SENTINELS = frozenset({"NotGiven", "Omit"})


def given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in _SENTINELS


def arg(kwargs: Mapping[str, Any], name: str) -> Any:
    """A keyword argument, or None when absent or an SDK sentinel."""
    value = kwargs.get(name)
    return value if given(value) else None


def get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; sentinels read as ``default``."""
    if obj is None:
        return default
    value = obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)
    return value if given(value) else default


def plain(value: Any) -> Any:
    """A JSON-compatible copy of an SDK value (models are dumped, tuples become lists)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if given(v)}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return plain(dump(exclude_none=True))
        except Exception:  # noqa: BLE001 - a model that cannot dump is recorded by its repr
            return repr(value)
    if not given(value):
        return None
    return str(value)


def json_or_text(text: Any) -> Any:
    """Tool-call arguments: parsed JSON when they are JSON, else the text as sent."""
    if not isinstance(text, str):
        return plain(text)
    try:
        return json.loads(text)
    except ValueError:
        return text


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text if isinstance(text, str) else plain(text)}


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def float_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def server_attributes(client: Any) -> dict[str, Any]:
    """server.address/port from an SDK client's base URL."""
    url = get(client, "base_url")
    host = get(url, "host")
    if not host:
        return {}
    port = get(url, "port")
    if not isinstance(port, int):
        port = 443 if get(url, "scheme") == "https" else 80
    return {"server.address": host, "server.port": port}
