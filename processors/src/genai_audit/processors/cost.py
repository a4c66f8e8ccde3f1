"""What each call cost, in US dollars, from a table of per-token prices.

The prices ship in ``data/pricing.json`` (list prices of the OpenAI and
Anthropic APIs, dated by its ``as_of`` field, with the pages they were read
from). A JSON or TOML file named by ``GENAI_AUDIT_PRICING_FILE`` overrides and
extends them: same layout, every rate in USD per million tokens::

    {
      "models": {
        "gpt-4o": {"input": 2.0},                          # change one rate of a known model
        "my-model": {"input": 1.0, "output": 3.0},         # add a model
        "my-embedder": {"kind": "embeddings", "input": 0.05}
      },
      "aliases": {"prod-chat-deployment": "gpt-4o"}        # a deployment name priced as a model
    }

A model entry has ``input`` and ``output`` (required for a new model, except
``output`` for embeddings), ``cached_input`` (the price of a cache read;
defaults to ``input``), ``cache_write`` (the price of writing the prompt cache;
defaults to ``input``), ``kind`` (``text`` or ``embeddings``) and
``provider``. A partial entry for a known model changes only the rates it
names; ``null`` clears an optional rate.

Model names are matched (case-insensitively) by this rule, never across
families:

1. the exact name, among the models and the aliases;
2. else the longest known name ``N`` such that the model is ``N``, then ``-``
   or ``@``, then a version: a date (``2024-08-06``, ``20250929``), a
   four-digit snapshot (``0613``) or ``latest``. So ``gpt-4o-2024-08-06`` is
   priced as ``gpt-4o`` and ``claude-sonnet-4-5-20250929`` as
   ``claude-sonnet-4-5``, while ``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``
   (the longer name) and ``claude-opus-4-6`` or ``gpt-4o-realtime-preview``
   stay unknown. A snapshot priced apart from its family (``gpt-4o-2024-05-13``)
   is listed by its full name and wins by rule 1.

:class:`CostStep` prices the response model, else (absent or unknown) the
request model. Tokens follow the semantic conventions as the instrumentation
records them: ``gen_ai.usage.input_tokens`` counts *all* input tokens,
including cache reads and cache writes (the Anthropic instrumentation adds
Anthropic's separately reported cache counts in), so the uncached remainder is
``input - cache_read - cache_creation``. A record whose input count is smaller
than its cache counts (a producer that followed Anthropic's own convention) is
read as uncached input only. Reasoning tokens are part of the output count and
priced as output. Embeddings are priced on input only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors.chain import AuditRecord

__all__ = ["CostStep", "ModelPrice", "PricingTable", "cost_step_from_env"]

PER_TOKENS: Final = Decimal(1_000_000)
#: Costs are rounded to a thousandth of a micro-dollar: exact for rates given
#: to three decimals per million tokens.
COST_QUANTUM: Final = Decimal("1e-9")
KINDS: Final = ("text", "embeddings")
_VERSION: Final = re.compile(r"[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)")
_RATE_FIELDS: Final = ("input", "output", "cached_input", "cache_write")
_OPTIONAL_RATES: Final = ("cached_input", "cache_write")
_ENTRY_FIELDS: Final = frozenset({*_RATE_FIELDS, "kind", "provider"})
_TOP_FIELDS: Final = frozenset({"models", "aliases", "as_of", "currency", "unit", "sources", "notes"})
_SHIPPED: Final = "data/pricing.json"


@dataclass(frozen=True)
class ModelPrice:
    """Rates of one model, USD per million tokens."""

    input: Decimal
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    kind: str = "text"
    provider: str | None = None

    def cost(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        embeddings: bool = False,
    ) -> Decimal:
        """The exact cost of one call; ``input_tokens`` includes the cache reads and writes."""
        cached = cache_read_tokens + cache_write_tokens
        uncached = input_tokens - cached if input_tokens >= cached else input_tokens
        total = (
            uncached * self.input
            + cache_read_tokens * (self.input if self.cached_input is None else self.cached_input)
            + cache_write_tokens * (self.input if self.cache_write is None else self.cache_write)
        )
        if not embeddings and self.kind != "embeddings":
            total += output_tokens * (self.output or Decimal(0))
        return total / PER_TOKENS


class PricingTable:
    """Model prices with the name-matching rule of the module docstring."""

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        aliases: Mapping[str, str] | None = None,
        *,
        as_of: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.models: dict[str, ModelPrice] = {name.lower(): price for name, price in models.items()}
        self.aliases: dict[str, str] = {}
        for alias, target in (aliases or {}).items():
            if target.lower() not in self.models:
                raise ValueError(f"alias {alias!r} names unknown model {target!r}")
            self.aliases[alias.lower()] = target.lower()
        self.as_of = as_of
        self.sources: dict[str, str] = dict(sources or {})
        names = {name: name for name in self.models}
        names.update(self.aliases)
        self._names = names
        # longest first, so the first prefix that fits is the longest known one
        self._by_length = sorted(names, key=len, reverse=True)
        self._cache: dict[str, str | None] = {}

    # -- loading ----------------------------------------------------------------
    @classmethod
    def shipped(cls) -> PricingTable:
        """The prices that ship with genai-audit."""
        return _shipped()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], base: PricingTable | None = None) -> PricingTable:
        """``base`` (default: the shipped prices) overridden and extended by a JSON or TOML file.

        Raises :class:`ConfigError` naming the file and what is wrong with it.
        """
        path = Path(path)
        label = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"pricing file {label!r}: cannot read it: {exc.strerror or exc}") from None
        data = _parse(label, raw, toml=path.suffix.lower() == ".toml")
        return (base or cls.shipped()).merged(data, label)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PricingTable:
        """The shipped prices, with the file named by ``GENAI_AUDIT_PRICING_FILE`` applied when set."""
        env = os.environ if env is None else env
        given = env.get(sc.ENV_PRICING_FILE, "").strip()
        if not given:
            return cls.shipped()
        try:
            return cls.from_file(os.path.expanduser(given))
        except ConfigError as exc:
            raise ConfigError(f"{sc.ENV_PRICING_FILE}: {exc}") from None

    def merged(self, data: Mapping[str, Any], label: str = "pricing data") -> PricingTable:
        """A new table: this one with the models and aliases of ``data`` (file layout) applied."""
        models, aliases = _validate(label, data, self.models)
        merged_models = {**self.models, **models}
        merged_aliases = {**self.aliases, **aliases}
        for alias, target in merged_aliases.items():
            if target not in merged_models:
                raise ConfigError(f"pricing file {label!r}: aliases.{alias}: unknown model {target!r}")
        as_of = data.get("as_of")
        sources = data.get("sources")
        return PricingTable(
            merged_models,
            merged_aliases,
            as_of=as_of if isinstance(as_of, str) else self.as_of,
            sources={**self.sources, **sources} if isinstance(sources, dict) else self.sources,
        )

    # -- lookup -----------------------------------------------------------------
    def resolve(self, model: str) -> str | None:
        """The table name ``model`` is priced as, or None when it is not known."""
        key = model.strip().lower()
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._names.get(key)
        if found is None:
            for name in self._by_length:
                if len(key) > len(name) and key.startswith(name) and _VERSION.fullmatch(key, len(name)):
                    found = self._names[name]
                    break
        if len(self._cache) < 4096:
            self._cache[key] = found
        return found

    def lookup(self, model: str) -> ModelPrice | None:
        name = self.resolve(model)
        return None if name is None else self.models[name]

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.resolve(model) is not None

    def __len__(self) -> int:
        return len(self.models)


@functools.lru_cache(maxsize=1)
def _shipped() -> PricingTable:
    raw = resources.files("genai_audit.processors").joinpath(_SHIPPED).read_bytes()
    label = f"genai_audit.processors/{_SHIPPED}"
    return PricingTable({}).merged(_parse(label, raw, toml=False), label)


if sys.version_info >= (3, 11):

    def _parse_toml(label: str, raw: bytes) -> Any:
        import tomllib

        try:
            return tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"pricing file {label!r}: not valid TOML: {exc}") from None

else:

    def _parse_toml(label: str, raw: bytes) -> Any:
        raise ConfigError(f"pricing file {label!r}: TOML needs Python 3.11 or later; use JSON")


def _parse(label: str, raw: bytes, *, toml: bool) -> Mapping[str, Any]:
    data: Any
    if toml:
        data = _parse_toml(label, raw)
    else:
        try:
            data = json.loads(raw.decode("utf-8"), parse_float=Decimal)
        except UnicodeDecodeError as exc:
            raise ConfigError(f"pricing file {label!r}: not UTF-8 text: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"pricing file {label!r}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"pricing file {label!r}: expected an object with a 'models' table at the top")
    return data


def _rate(label: str, where: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float)):
        raise ConfigError(f"pricing file {label!r}: {where}: expected a number (USD per million tokens), got {value!r}")
    rate = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not rate.is_finite() or rate < 0:
        raise ConfigError(f"pricing file {label!r}: {where}: expected a non-negative number, got {value}")
    return rate


def _validate(
    label: str, data: Mapping[str, Any], known: Mapping[str, ModelPrice]
) -> tuple[dict[str, ModelPrice], dict[str, str]]:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"pricing file {label!r}: {problem}")

    unknown = sorted(key for key in data if key not in _TOP_FIELDS and not str(key).startswith("_"))
    if unknown:
        expected = ", ".join(sorted(_TOP_FIELDS))
        raise fail(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; expected {expected}")
    currency = data.get("currency", "USD")
    if currency != "USD":
        raise fail(f"currency {currency!r}: only USD is supported")
    raw_models = data.get("models", {})
    if not isinstance(raw_models, dict):
        raise fail("'models' must be a table of model name -> rates")
    models: dict[str, ModelPrice] = {}
    for name, entry in raw_models.items():
        if not isinstance(name, str) or not name.strip():
            raise fail(f"models: model name {name!r} must be a non-empty string")
        key = name.strip().lower()
        where = f"models.{name}"
        if not isinstance(entry, dict):
            raise fail(f"{where}: expected a table of rates, got {entry!r}")
        extra = sorted(set(entry) - _ENTRY_FIELDS)
        if extra:
            expected = ", ".join(sorted(_ENTRY_FIELDS))
            raise fail(f"{where}: unknown field(s) {', '.join(map(repr, extra))}; expected {expected}")
        base = models.get(key) or known.get(key)
        changes: dict[str, Any] = {}
        for field_name in _RATE_FIELDS:
            if field_name not in entry:
                continue
            value = entry[field_name]
            if value is None:
                if field_name not in _OPTIONAL_RATES:
                    raise fail(f"{where}.{field_name}: required rate cannot be null")
                changes[field_name] = None
            else:
                changes[field_name] = _rate(label, f"{where}.{field_name}", value)
        if "kind" in entry:
            if entry["kind"] not in KINDS:
                raise fail(f"{where}.kind: expected one of {', '.join(KINDS)}, got {entry['kind']!r}")
            changes["kind"] = entry["kind"]
        if "provider" in entry:
            if entry["provider"] is not None and not isinstance(entry["provider"], str):
                raise fail(f"{where}.provider: expected a string, got {entry['provider']!r}")
            changes["provider"] = entry["provider"]
        if base is None:
            if "input" not in changes:
                raise fail(f"{where}: a new model needs an 'input' rate")
            kind = changes.get("kind", "text")
            if kind != "embeddings" and changes.get("output") is None:
                raise fail(f"{where}: a new model needs an 'output' rate (or kind 'embeddings')")
            price = ModelPrice(input=changes.pop("input"))
            models[key] = replace(price, **changes)
        else:
            models[key] = replace(base, **changes)
    raw_aliases = data.get("aliases", {})
    if not isinstance(raw_aliases, dict):
        raise fail("'aliases' must be a table of name -> model")
    aliases: dict[str, str] = {}
    for alias, target in raw_aliases.items():
        if not isinstance(alias, str) or not alias.strip() or not isinstance(target, str) or not target.strip():
            raise fail(f"aliases: {alias!r} = {target!r}: expected a name and a model name")
        aliases[alias.strip().lower()] = target.strip().lower()
    return models, aliases


def _tokens(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


class CostStep:
    """Processing step: sets ``gen_ai.usage.cost_usd`` from the call's token counts.

    When the call reports tokens but neither its response nor its request model
    is in the table, sets ``gen_ai.audit.cost.unknown_model`` instead (and no
    cost). Calls without token counts (failures, cut-off streams) are left alone.
    """

    reads_content_only = True

    def __init__(self, table: PricingTable | None = None) -> None:
        self.table = table if table is not None else PricingTable.shipped()

    def __call__(self, record: AuditRecord) -> None:
        attributes = record.attributes
        input_tokens = _tokens(attributes.get(sc.USAGE_INPUT_TOKENS))
        output_tokens = _tokens(attributes.get(sc.USAGE_OUTPUT_TOKENS))
        if input_tokens is None and output_tokens is None:
            return
        price = None
        for key in (sc.RESPONSE_MODEL, sc.REQUEST_MODEL):
            model = attributes.get(key)
            if isinstance(model, str) and model.strip():
                price = self.table.lookup(model)
                if price is not None:
                    break
        if price is None:
            attributes[sc.AUDIT_COST_UNKNOWN_MODEL] = True
            return
        cost = price.cost(
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            cache_read_tokens=_tokens(attributes.get(sc.USAGE_CACHE_READ_INPUT_TOKENS)) or 0,
            cache_write_tokens=_tokens(attributes.get(sc.USAGE_CACHE_CREATION_INPUT_TOKENS)) or 0,
            embeddings=attributes.get(sc.OPERATION_NAME) == sc.OP_EMBEDDINGS,
        )
        attributes[sc.USAGE_COST_USD] = float(cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN))


def cost_step_from_env(env: Mapping[str, str] | None = None) -> CostStep:
    """A :class:`CostStep` with the shipped prices and ``GENAI_AUDIT_PRICING_FILE`` applied.

    Raises :class:`ConfigError` at once for a file it cannot use.
    """
    return CostStep(PricingTable.from_env(env))
