"""Cost step: shipped prices, model-name matching, cached tokens, user overrides."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors import AuditRecord, ProcessingChain
from genai_audit.processors.chain import IDENTITY, set_default_chain
from genai_audit.processors.cost import CostStep, PricingTable, cost_step_from_env
from genai_audit.testing.fake_provider import FakeProvider, Reply


def record(**attributes: Any) -> AuditRecord:
    return AuditRecord(attributes=dict(attributes))


def priced(step: CostStep | None = None, /, **attributes: Any) -> AuditRecord:
    rec = record(**attributes)
    (step or CostStep())(rec)
    return rec


def usage(model: str, input_tokens: int, output_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        sc.REQUEST_MODEL: model,
        sc.USAGE_INPUT_TOKENS: input_tokens,
        sc.USAGE_OUTPUT_TOKENS: output_tokens,
        **extra,
    }


# --------------------------------------------------------------------------- #
# The shipped table
# --------------------------------------------------------------------------- #


def test_shipped_table_is_dated_sourced_and_covers_both_providers() -> None:
    table = PricingTable.shipped()
    assert table.as_of is not None and len(table.as_of) == 10
    assert any("openai.com" in url for url in table.sources.values())
    assert any("anthropic.com" in url for url in table.sources.values())
    for model in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "claude-opus-4-1",
        "claude-opus-4",
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5",
        "claude-sonnet-4",
        "claude-3-7-sonnet",
        "claude-3-5-sonnet",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
        "claude-3-haiku",
        "claude-3-opus",
    ):
        assert model in table, model
    for name, price in table.models.items():
        assert price.output is not None or price.kind == "embeddings", name
        if price.provider == "anthropic":
            assert price.cached_input is not None and price.cache_write is not None, name


def test_known_model_cost() -> None:
    # gpt-4o: 2.50 in, 10.00 out per million tokens
    rec = priced(**usage("gpt-4o", 1000, 500))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.0025 + 0.005)
    assert sc.AUDIT_COST_UNKNOWN_MODEL not in rec.attributes


def test_cost_is_exact_decimal_rounded_to_nano_dollars() -> None:
    rec = priced(**usage("gpt-4o-mini", 3, 7))  # 3 * 0.15e-6 + 7 * 0.6e-6
    assert rec.attributes[sc.USAGE_COST_USD] == 0.00000465
    rec = priced(**usage("gpt-5-nano", 1, 0))  # 0.05 per million: 5e-8
    assert rec.attributes[sc.USAGE_COST_USD] == 5e-8


def test_anthropic_model() -> None:
    rec = priced(**usage("claude-sonnet-4-5", 2_000, 1_000, **{sc.PROVIDER_NAME: "anthropic"}))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(2_000 * 3e-6 + 1_000 * 15e-6)


# --------------------------------------------------------------------------- #
# Matching
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-2024-12-17", "o1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4-0613", "gpt-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-opus-4-6", "claude-opus-4-6"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("GPT-4o-2024-08-06", "gpt-4o"),
        # a snapshot priced apart from its family is listed by its full name
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ],
)
def test_dated_snapshots_resolve_to_their_family(model: str, expected: str) -> None:
    assert PricingTable.shipped().resolve(model) == expected


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-9",  # a newer model, not a snapshot of claude-opus-4
        "claude-opus-5-5",  # nor of claude-opus-5
        "claude-sonnet-4-7-20260101",
        "gpt-4o-realtime-preview",  # a different product in the family
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-minimal",
        "gpt-4oo",
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",  # fine-tuned models are priced apart
        "llama3",
        "",
    ],
)
def test_never_guesses_across_families(model: str) -> None:
    assert PricingTable.shipped().resolve(model) is None


def test_response_model_preferred_over_request_model() -> None:
    rec = priced(**usage("gpt-4o", 1_000_000, 0, **{sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18"}))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.15)


def test_request_model_used_when_response_model_absent_or_unknown() -> None:
    rec = priced(**usage("gpt-4o-mini", 1_000_000, 0))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.15)
    rec = priced(**usage("gpt-4o-mini", 1_000_000, 0, **{sc.RESPONSE_MODEL: "something-else"}))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.15)


# --------------------------------------------------------------------------- #
# Cached tokens, embeddings, unknown models
# --------------------------------------------------------------------------- #


def test_openai_cached_input_priced_at_cached_rate() -> None:
    # OpenAI: input_tokens include the cached ones (prompt_tokens_details.cached_tokens)
    rec = priced(**usage("gpt-4o", 10_000, 1_000, **{sc.USAGE_CACHE_READ_INPUT_TOKENS: 8_000}))
    expected = 2_000 * 2.5e-6 + 8_000 * 1.25e-6 + 1_000 * 10e-6
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(expected)


def test_anthropic_cache_read_and_write_priced_apart() -> None:
    # The Anthropic instrumentation records input_tokens as the sum of uncached
    # input, cache reads and cache writes (the semantic-convention total).
    uncached, read, write, out = 100, 50_000, 10_000, 800
    rec = priced(
        **usage(
            "claude-sonnet-4-5-20250929",
            uncached + read + write,
            out,
            **{sc.USAGE_CACHE_READ_INPUT_TOKENS: read, sc.USAGE_CACHE_CREATION_INPUT_TOKENS: write},
        )
    )
    expected = uncached * 3e-6 + read * 0.3e-6 + write * 3.75e-6 + out * 15e-6
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(expected)


def test_input_count_below_cache_counts_is_read_as_uncached_only() -> None:
    # a producer that followed Anthropic's own convention (input excludes the cache)
    rec = priced(
        **usage(
            "claude-haiku-4-5",
            100,
            0,
            **{sc.USAGE_CACHE_READ_INPUT_TOKENS: 5_000, sc.USAGE_CACHE_CREATION_INPUT_TOKENS: 1_000},
        )
    )
    expected = 100 * 1e-6 + 5_000 * 0.1e-6 + 1_000 * 1.25e-6
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(expected)


def test_anthropic_instrumentation_usage_is_priced_as_recorded() -> None:
    from genai_audit.instrumentation.anthropic import _extract

    class Call:
        def __init__(self) -> None:
            self.attributes: dict[str, Any] = {sc.REQUEST_MODEL: "claude-3-5-haiku-20241022"}

        def set(self, key: str, value: Any) -> None:
            if value is not None:
                self.attributes[key] = value

    call = Call()
    usage_block = {
        "input_tokens": 10,
        "cache_read_input_tokens": 1_000,
        "cache_creation_input_tokens": 200,
        "output_tokens": 50,
    }
    _extract.read_usage(call, usage_block)  # type: ignore[arg-type]
    rec = priced(**call.attributes)
    expected = 10 * 0.8e-6 + 1_000 * 0.08e-6 + 200 * 1.0e-6 + 50 * 4e-6
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(expected)


def test_embeddings_priced_on_input_only() -> None:
    rec = priced(
        **{
            sc.OPERATION_NAME: sc.OP_EMBEDDINGS,
            sc.REQUEST_MODEL: "text-embedding-3-small",
            sc.USAGE_INPUT_TOKENS: 1_000_000,
            sc.USAGE_OUTPUT_TOKENS: 999,
        }
    )
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.02)


def test_unknown_model_flagged_without_cost() -> None:
    rec = priced(**usage("my-local-llama", 10, 10, **{sc.RESPONSE_MODEL: "my-local-llama:8b"}))
    assert rec.attributes[sc.AUDIT_COST_UNKNOWN_MODEL] is True
    assert sc.USAGE_COST_USD not in rec.attributes


def test_no_tokens_no_cost_no_flag() -> None:
    rec = priced(**{sc.REQUEST_MODEL: "gpt-4o"})
    assert sc.USAGE_COST_USD not in rec.attributes and sc.AUDIT_COST_UNKNOWN_MODEL not in rec.attributes
    rec = priced(**{sc.REQUEST_MODEL: "unknown-thing", sc.USAGE_INPUT_TOKENS: True})  # not a count
    assert not {sc.USAGE_COST_USD, sc.AUDIT_COST_UNKNOWN_MODEL} & set(rec.attributes)


def test_output_only_usage_is_priced() -> None:
    rec = priced(**{sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_OUTPUT_TOKENS: 100})
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(100 * 10e-6)


def test_runs_in_the_chain() -> None:
    chain = ProcessingChain([CostStep()])
    rec = chain(record(**usage("o4-mini", 1_000, 1_000)))
    assert rec.failures == []
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(1_000 * 1.1e-6 + 1_000 * 4.4e-6)


# --------------------------------------------------------------------------- #
# User pricing file
# --------------------------------------------------------------------------- #


def write(tmp_path: Path, data: Any, name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_user_file_overrides_and_extends(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "as_of": "2031-01-01",
            "models": {
                "gpt-4o": {"input": 2.0},  # partial: output stays the shipped 10.00
                "acme-chat": {"input": 1, "output": 3, "cached_input": 0.5, "provider": "acme"},
                "acme-embed": {"kind": "embeddings", "input": 0.05},
            },
            "aliases": {"prod-chat-deployment": "gpt-4o"},
        },
    )
    step = cost_step_from_env({sc.ENV_PRICING_FILE: str(path)})
    assert step.table.as_of == "2031-01-01"
    rec = priced(step, **usage("gpt-4o-2024-08-06", 1_000_000, 1_000_000))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(2.0 + 10.0)
    rec = priced(step, **usage("acme-chat", 2_000_000, 1_000_000, **{sc.USAGE_CACHE_READ_INPUT_TOKENS: 1_000_000}))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(1.0 + 0.5 + 3.0)
    rec = priced(step, **usage("acme-embed", 1_000_000, 0))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(0.05)
    rec = priced(step, **usage("prod-chat-deployment", 1_000_000, 0))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(2.0)
    # the shipped table itself is untouched
    assert PricingTable.shipped().models["gpt-4o"].input == Decimal("2.5")


def test_null_clears_an_optional_rate(tmp_path: Path) -> None:
    path = write(tmp_path, {"models": {"gpt-4o": {"cached_input": None}}})
    table = PricingTable.from_file(path)
    rec = priced(CostStep(table), **usage("gpt-4o", 1_000_000, 0, **{sc.USAGE_CACHE_READ_INPUT_TOKENS: 1_000_000}))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(2.5)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib")
def test_user_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[models."acme-chat"]\ninput = 0.1\noutput = 0.3\n', name="prices.toml")
    step = cost_step_from_env({sc.ENV_PRICING_FILE: str(path)})
    rec = priced(step, **usage("acme-chat-20250101", 10_000_000, 0))
    assert rec.attributes[sc.USAGE_COST_USD] == pytest.approx(1.0)


def test_no_file_set_uses_shipped_prices() -> None:
    assert cost_step_from_env({}).table is PricingTable.shipped()
    assert cost_step_from_env({sc.ENV_PRICING_FILE: "  "}).table is PricingTable.shipped()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ({"modles": {}}, "unknown top-level key(s) 'modles'"),
        ({"models": []}, "'models' must be a table"),
        ({"models": {"gpt-4o": {"input": "cheap"}}}, "models.gpt-4o.input: expected a number"),
        ({"models": {"gpt-4o": {"input": -1}}}, "models.gpt-4o.input: expected a non-negative number"),
        ({"models": {"gpt-4o": {"input": True}}}, "models.gpt-4o.input: expected a number"),
        ({"models": {"gpt-4o": {"ouput": 1}}}, "models.gpt-4o: unknown field(s) 'ouput'"),
        ({"models": {"gpt-4o": {"output": None}}}, "models.gpt-4o.output: required rate cannot be null"),
        ({"models": {"new-model": {"output": 1}}}, "models.new-model: a new model needs an 'input' rate"),
        ({"models": {"new-model": {"input": 1}}}, "models.new-model: a new model needs an 'output' rate"),
        ({"models": {"gpt-4o": {"kind": "image"}}}, "models.gpt-4o.kind: expected one of text, embeddings"),
        ({"models": {"gpt-4o": 2.5}}, "models.gpt-4o: expected a table of rates"),
        ({"currency": "EUR", "models": {}}, "currency 'EUR': only USD is supported"),
        ({"aliases": {"prod": "no-such-model"}}, "aliases.prod: unknown model 'no-such-model'"),
    ],
)
def test_bad_user_file_error_names_file_and_problem(tmp_path: Path, content: Any, problem: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        cost_step_from_env({sc.ENV_PRICING_FILE: str(path)})
    message = str(caught.value)
    assert message.startswith(f"{sc.ENV_PRICING_FILE}: pricing file {str(path)!r}: "), message
    assert problem in message, message


def test_bad_json_error_gives_position(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "models": {\n    "x": {"input": 1,}\n  }\n}')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* at line 3 column"):
        PricingTable.from_file(path)


def test_missing_user_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=r"GENAI_AUDIT_PRICING_FILE: pricing file '.*nope\.json': cannot read it"):
        cost_step_from_env({sc.ENV_PRICING_FILE: str(missing)})


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib")
def test_bad_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[models\ninput = 1", name="prices.toml")
    with pytest.raises(ConfigError, match=r"pricing file '.*prices\.toml': not valid TOML"):
        PricingTable.from_file(path)


# --------------------------------------------------------------------------- #
# End to end: real SDKs against the fake provider, through our instrumentation
# --------------------------------------------------------------------------- #


@pytest.fixture
def cost_chain() -> Iterator[None]:
    set_default_chain(ProcessingChain([CostStep()]))
    yield
    set_default_chain(IDENTITY)


@pytest.mark.usefixtures("cost_chain")
def test_openai_call_span_carries_cost(instrumented: Any, fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(
        Reply(text="ok", input_tokens=1_000, output_tokens=100, cached_input_tokens=800, model="gpt-4o-2024-08-06")
    )
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    attributes = instrumented.span().attributes
    assert attributes[sc.USAGE_COST_USD] == pytest.approx(200 * 2.5e-6 + 800 * 1.25e-6 + 100 * 10e-6)


@pytest.mark.usefixtures("cost_chain")
def test_anthropic_call_span_carries_cost(instrumented: Any, fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    # the provider reports 100 uncached input tokens and 1000 cache reads apart
    fake.script(Reply(text="ok", input_tokens=100, output_tokens=50, cached_input_tokens=1_000))
    claude.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    attributes = instrumented.span().attributes
    assert attributes[sc.USAGE_INPUT_TOKENS] == 1_100
    assert attributes[sc.USAGE_COST_USD] == pytest.approx(100 * 1e-6 + 1_000 * 0.1e-6 + 50 * 5e-6)


@pytest.mark.usefixtures("cost_chain")
def test_unknown_model_span_is_flagged(instrumented: Any, fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script(Reply(text="ok"))
    oai.chat.completions.create(model="local-llama", messages=[{"role": "user", "content": "hi"}])
    attributes = instrumented.span().attributes
    assert attributes[sc.AUDIT_COST_UNKNOWN_MODEL] is True and sc.USAGE_COST_USD not in attributes
