"""Pricing: the fast path for flat prices gives what genai-prices' own calculation gives."""

from __future__ import annotations

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from warden.models.base import Usage
from warden.models.pricing import price

MODELS = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("gpt-4.1-mini", "openai"),
    ("claude-haiku-4-5", "anthropic"),
    ("claude-sonnet-4-5", "anthropic"),  # tiered by prompt size: calc_price decides
]
USAGES = [
    Usage(input_tokens=1234, output_tokens=56),
    Usage(input_tokens=1234, output_tokens=56, cached_input_tokens=1000),
    Usage(input_tokens=300_000, output_tokens=10, cached_input_tokens=100_000),
    Usage(input_tokens=0, output_tokens=900),
]


@pytest.mark.parametrize(("model", "provider"), MODELS)
@pytest.mark.parametrize("usage", USAGES, ids=lambda u: f"{u.input_tokens}-{u.cached_input_tokens}")
def test_price_matches_genai_prices(model: str, provider: str, usage: Usage) -> None:
    expected = calc_price(
        PriceUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cached_input_tokens or None,
        ),
        model_ref=model,
        provider_id=provider,
    ).total_price
    got = price(usage, model=model, provider=provider)
    assert got.priced
    assert got.usd == pytest.approx(float(expected), rel=1e-12, abs=1e-15)


def test_an_unknown_model_is_unpriced_not_guessed() -> None:
    got = price(Usage(input_tokens=10, output_tokens=10), model="no-such-model", provider="openai")
    assert (got.priced, got.usd) == (False, 0.0)
