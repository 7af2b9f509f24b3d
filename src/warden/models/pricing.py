"""Token usage to USD, through genai-prices (a maintained price list of models).

Cached input tokens are charged at the provider's cached rate. A model the price list
does not know costs nothing and is reported as unpriced, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage as _PriceUsage
from genai_prices import calc_price

from warden.models.base import Usage

__all__ = ["Price", "price"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Price:
    usd: float
    priced: bool
    """False when the price list does not know the model (usd is then 0)."""
    model: str
    provider: str


def price(usage: Usage, *, model: str, provider: str) -> Price:
    """What `usage` costs on `model` at `provider`'s list prices."""
    if usage.total == 0:
        return Price(usd=0.0, priced=_known(model, provider), model=model, provider=provider)
    rates = _flat_rates(model, provider)
    if rates is not None:  # flat per-token prices: the same sum calc_price makes, 40x faster
        per_input, per_cached, per_output = rates
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        usd = (
            (usage.input_tokens - cached) * per_input
            + cached * per_cached
            + usage.output_tokens * per_output
        ) / 1_000_000
        return Price(usd=usd, priced=True, model=model, provider=provider)
    try:
        calc = calc_price(
            _PriceUsage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cached_input_tokens or None,
                output_tokens=usage.output_tokens,
            ),
            model_ref=model,
            provider_id=provider,
        )
    except LookupError:
        return Price(usd=0.0, priced=False, model=model, provider=provider)
    return Price(usd=float(calc.total_price), priced=True, model=model, provider=provider)


@lru_cache(maxsize=256)
def _flat_rates(model: str, provider: str) -> tuple[float, float, float] | None:
    """USD per million input, cached-input and output tokens, when the model's prices are
    flat (no tiers by prompt size); None otherwise, or when it is not in the list."""
    try:
        found = calc_price(_PriceUsage(input_tokens=1), model_ref=model, provider_id=provider)
    except LookupError:
        return None
    rates = found.model_price
    per_input, per_cached, per_output = (
        rates.input_mtok,
        rates.cache_read_mtok if rates.cache_read_mtok is not None else rates.input_mtok,
        rates.output_mtok,
    )
    flat: list[float] = []
    for rate in (per_input, per_cached, per_output):
        if rate is not None and not isinstance(rate, Decimal):
            return None  # tiered by prompt size: leave it to calc_price
        flat.append(float(rate or 0))
    return flat[0], flat[1], flat[2]


@lru_cache(maxsize=256)
def _known(model: str, provider: str) -> bool:
    try:
        calc_price(_PriceUsage(input_tokens=1), model_ref=model, provider_id=provider)
    except LookupError:
        return False
    return True
