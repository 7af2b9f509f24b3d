"""Token usage to USD, through genai-prices (a maintained price list of models).

Cached input tokens are charged at the provider's cached rate. A model the price list
does not know costs nothing and is reported as unpriced, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
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
def _known(model: str, provider: str) -> bool:
    try:
        calc_price(_PriceUsage(input_tokens=1), model_ref=model, provider_id=provider)
    except LookupError:
        return False
    return True
