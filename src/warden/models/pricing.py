"""Token usage to USD, through genai-prices (a maintained price list of models).

Cached input tokens are charged at the provider's cached rate. A model the price list
does not know costs nothing and is reported as unpriced, never guessed. The price list
is loaded on first use, so commands that price nothing do not pay for it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

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
    known, flat = _rates(model, provider)
    if not known:
        return Price(usd=0.0, priced=False, model=model, provider=provider)
    if flat is not None:  # flat per-token prices: the sum calc_price makes, 40x faster
        per_input, per_cached, per_output = flat
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        usd = (
            (usage.input_tokens - cached) * per_input
            + cached * per_cached
            + usage.output_tokens * per_output
        ) / 1_000_000
        return Price(usd=usd, priced=True, model=model, provider=provider)
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    calc = calc_price(  # tiered by prompt size: genai-prices decides
        PriceUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cached_input_tokens or None,
            output_tokens=usage.output_tokens,
        ),
        model_ref=model,
        provider_id=provider,
    )
    return Price(usd=float(calc.total_price), priced=True, model=model, provider=provider)


@lru_cache(maxsize=256)
def _rates(model: str, provider: str) -> tuple[bool, tuple[float, float, float] | None]:
    """Whether the price list knows the model, and its USD per million input, cached-input
    and output tokens when its prices are flat (None when they are tiered)."""
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    try:
        found = calc_price(PriceUsage(input_tokens=1), model_ref=model, provider_id=provider)
    except LookupError:
        return False, None
    rates = found.model_price
    cached = rates.cache_read_mtok if rates.cache_read_mtok is not None else rates.input_mtok
    flat: list[float] = []
    for rate in (rates.input_mtok, cached, rates.output_mtok):
        if rate is not None and not isinstance(rate, Decimal):
            return True, None
        flat.append(float(rate or 0))
    return True, (flat[0], flat[1], flat[2])
