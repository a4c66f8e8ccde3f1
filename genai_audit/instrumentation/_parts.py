"""Small helpers for reading SDK objects and building message parts.

SDK requests arrive as dicts or as the SDK's own pydantic models (a response
message passed back as history), and optional arguments as the SDK's
``NOT_GIVEN``/``omit`` sentinels; these helpers read all of them alike.

They run on every call and every stream chunk, so the common shapes (plain
dicts, plain values, SDK models) take short paths; anything else goes through
the general reading, which gives the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_SENTINELS = frozenset({"NotGiven", "Omit"})
#: types that are never an SDK sentinel, so need no name check
_PLAIN = frozenset({str, int, float, bool, list, dict, tuple})


def given(value: Any) -> bool:
    if value is None:
        return False
    kind = type(value)
    return kind in _PLAIN or kind.__name__ not in _SENTINELS


def arg(kwargs: Mapping[str, Any], name: str) -> Any:
    """A keyword argument, or None when absent or an SDK sentinel."""
    value = kwargs.get(name)
    if value is None or type(value) in _PLAIN:
        return value
    return value if type(value).__name__ not in _SENTINELS else None


def given_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments the caller gave: without None and SDK sentinels."""
    return {
        key: value
        for key, value in kwargs.items()
        if value is not None and (type(value) in _PLAIN or type(value).__name__ not in _SENTINELS)
    }


def plain_args(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """What :func:`given_args` reads, for readers that take None as absent: ``kwargs`` itself
    when it is a dict holding no SDK sentinel (as calls written by hand do), else ``given_args``."""
    if type(kwargs) is not dict:
        return given_args(kwargs)
    for value in kwargs.values():
        if value is not None and type(value) not in _PLAIN:
            return given_args(kwargs)
    return kwargs


def get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; sentinels read as ``default``."""
    if obj is None:
        return default
    kind = type(obj)
    if kind is dict:
        value = obj.get(name, default)
    else:
        model = _MODELS.get(kind)
        if model is None:
            model = _model(kind)
        if name in model.fields:  # a declared field of an SDK model: straight from the instance dict
            value = obj.__dict__.get(name, default)
        elif model.extras and name not in model.class_names and name[:1] != "_":
            # not a field: what ``getattr`` finds in the instance dict or the model's extra
            # fields, without the AttributeError a missing name costs
            value = obj.__dict__.get(name, _ABSENT)
            if value is _ABSENT:
                extra = obj.__pydantic_extra__
                value = extra.get(name, default) if extra else default
        elif isinstance(obj, Mapping):
            value = obj.get(name, default)
        else:
            value = getattr(obj, name, default)
    if value is None:
        return default
    if type(value) in _PLAIN:
        return value
    return value if type(value).__name__ not in _SENTINELS else default


_ABSENT = object()


class _Model:
    """How ``get`` reads instances of one class."""

    __slots__ = ("class_names", "extras", "fields")

    def __init__(self, fields: frozenset[str], extras: bool, class_names: frozenset[str]) -> None:
        #: declared pydantic fields: their values are in the instance ``__dict__``
        self.fields = fields
        #: pydantic 2 model: other public names are in ``__dict__`` or ``__pydantic_extra__``
        #: unless the class itself has them (``class_names``)
        self.extras = extras
        self.class_names = class_names


_NOT_A_MODEL = _Model(frozenset(), False, frozenset())
_MODELS: dict[type, _Model] = {}


def _pydantic_model_base() -> type | None:
    try:
        from pydantic import BaseModel
    except ImportError:
        return None
    return BaseModel


def _model(cls: type) -> _Model:
    found = _NOT_A_MODEL
    base = _pydantic_model_base()
    if base is not None and isinstance(cls, type) and issubclass(cls, base):
        declared = getattr(cls, "model_fields", None)
        pydantic2 = isinstance(declared, Mapping) and "__pydantic_extra__" in getattr(base, "__slots__", ())
        if not isinstance(declared, Mapping):  # pydantic 1
            declared = getattr(cls, "__fields__", None)
        if isinstance(declared, Mapping):
            fields = frozenset(str(name) for name in declared)
            found = _Model(fields, pydantic2, frozenset(dir(cls)) - fields if pydantic2 else frozenset())
    if len(_MODELS) > 512:  # classes made at run time must not grow this without bound
        _MODELS.clear()
    _MODELS[cls] = found
    return found


def model_fields(cls: type) -> frozenset[str]:
    """Declared field names of a pydantic model class (empty for anything else).

    The values of declared fields live in the instance ``__dict__``, so for them
    ``obj.__dict__.get(name)`` reads what ``getattr(obj, name, None)`` would.
    """
    model = _MODELS.get(cls)
    if model is None:
        model = _model(cls)
    return model.fields


def fast_reader(cache: dict[type, bool], cls: type, names: frozenset[str]) -> bool:
    """Whether instances of ``cls`` can be read through their ``__dict__`` for ``names`` (cached in ``cache``)."""
    ok = cache.get(cls)
    if ok is None:
        ok = bool(names) and names <= model_fields(cls)
        if len(cache) > 512:
            cache.clear()
        cache[cls] = ok
    return ok


def fields(obj: Any, names: frozenset[str], cache: dict[type, bool]) -> Mapping[str, Any]:
    """``names`` of a response object, read as ``get`` reads them: ``.get(name)`` is None when absent.

    An SDK model that declares all of ``names`` is read straight from its
    instance dict (response models hold no sentinels); anything else goes
    through ``get``. ``cache`` remembers the answer per class.
    """
    kind = type(obj)
    if cache.get(kind) or fast_reader(cache, kind, names):
        values: Mapping[str, Any] = obj.__dict__
        return values
    return {name: get(obj, name) for name in names}


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
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return text


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text if isinstance(text, str) else plain(text)}


def int_or_none(value: Any) -> int | None:
    # a plain int answers on the first test: token counts and request numbers almost always are one
    return value if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)) else None


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


_SERVERS: dict[int, tuple[Any, Mapping[str, Any]]] = {}
#: per client class: the instance attribute its ``base_url`` property returns as it is, or None
_URL_FIELDS: dict[type, str | None] = {}
_URL_FIELD_NAMES = ("_configured_base_url", "_base_url")


def base_url(client: Any) -> Any:
    """``client.base_url``, read from the instance dict when the class's property only returns it.

    The property may do more than return the field (openai 3.x imports a module on
    every read, which costs more than the rest of reading a request), so each
    class is asked once which field, if any, the property returns as it is;
    setting ``base_url`` later changes that field, so the answer stays right.
    """
    kind = type(client)
    try:
        name = _URL_FIELDS[kind]
    except KeyError:
        url = get(client, "base_url")
        state = getattr(client, "__dict__", None)
        found = None
        if url is not None and isinstance(state, dict):
            found = next((name for name in _URL_FIELD_NAMES if state.get(name) is url), None)
        if len(_URL_FIELDS) > 64:  # classes made at run time must not grow this without bound
            _URL_FIELDS.clear()
        _URL_FIELDS[kind] = found
        return url
    if name is not None:
        url = client.__dict__.get(name)
        if url is not None:
            return url
    return get(client, "base_url")


def server_attributes(client: Any) -> Mapping[str, Any]:
    """server.address/port from an SDK client's base URL (do not modify the mapping returned).

    URL objects are immutable, so what one says is remembered.
    """
    if client is None:
        return {}
    # base_url's short path, inline: the field its class's property returns as it is
    name = _URL_FIELDS.get(type(client))
    url = client.__dict__.get(name) if name is not None else None
    if url is None:
        url = base_url(client)
        if url is None:
            return {}
    cached = _SERVERS.get(id(url))
    if cached is not None and cached[0] is url:
        return cached[1]
    host = get(url, "host")
    if not host:
        return {}
    port = get(url, "port")
    if not isinstance(port, int):
        port = 443 if get(url, "scheme") == "https" else 80
    found = {"server.address": host, "server.port": port}
    if type(url).__name__ == "URL":
        if len(_SERVERS) > 64:
            _SERVERS.clear()
        _SERVERS[id(url)] = (url, found)  # the URL is held, so its id is not reused while cached
    return found
