"""The benchmark workload: deterministic, realistic refund and credit calls.

Every engine decides the same `Request` values. Amounts are multiples of $0.25, so they
are exact in binary floating point and convert exactly to whole cents (Cedar has no
floating-point numbers); the agreement of the engines does not hinge on rounding.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AGENT", "TOOLS", "Request", "generate_requests"]

AGENT = "refund_autopilot"
"""The agent every request is proposed by."""
TOOLS = ("create_refund", "issue_credit")
"""The tools the 21 rules cover."""

_TIERS = ("free", "standard", "pro", "enterprise")
_TIER_WEIGHTS = (1, 3, 3, 2)
_REGIONS = ("US", "EU", "UK", "BR", "IN", "KP", "IR", "SY", "CU")
_REGION_WEIGHTS = (30, 20, 12, 8, 8, 1, 1, 1, 1)
_CURRENCIES = ("USD", "EUR", "GBP", "JPY")
_CURRENCY_WEIGHTS = (8, 4, 3, 2)
_CHANNELS = ("chat", "email", "phone")
_REASONS = ("damaged item", "late delivery", "duplicate charge", "goodwill", "outage credit")
# values the rules compare against: exact boundaries exercise <= versus <
_BOUNDARIES = (10.0, 20.0, 25.0, 50.0, 150.0, 250.0, 500.0, 1000.0, 1500.0, 2000.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """One proposed tool call, as every engine sees it."""

    tool: str
    args: Mapping[str, Any]
    """The call's arguments (the tool's pydantic model accepts them as they are)."""
    context: Mapping[str, Any]
    """What the caller supplies: customer_tier, region, channel."""
    facts: Mapping[str, Any]
    """Fact values given outright: chargeback, fraud score, account age, 30-day refunds, LTV."""
    run_calls: int
    """Tool calls earlier in the run (``run.calls``)."""


def _quarter(rng: random.Random, low: float, high: float) -> float:
    """A multiple of 0.25 in [low, high]: exact as a float and as cents."""
    return rng.randint(round(low * 4), round(high * 4)) / 4


def _amount(rng: random.Random) -> float:
    band = rng.random()
    if band < 0.12:
        return rng.choice(_BOUNDARIES)
    if band < 0.50:
        return _quarter(rng, 0.25, 60)
    if band < 0.80:
        return _quarter(rng, 40, 600)
    return _quarter(rng, 500, 3000)


def _facts(rng: random.Random) -> dict[str, Any]:
    return {
        "chargeback_last_180d": rng.random() < 0.07,
        "fraud_score": rng.choice((rng.randint(0, 59), rng.randint(0, 59), rng.randint(55, 100))),
        "account_age_days": rng.randint(0, 2500),
        "refunded_last_30d_usd": 0.0 if rng.random() < 0.4 else _quarter(rng, 0, 1400),
        "lifetime_value_usd": float(rng.choice((0, rng.randint(0, 3000), rng.randint(0, 30000)))),
    }


def _refund_args(rng: random.Random, n: int, customer: str, amount: float) -> dict[str, Any]:
    total = amount if rng.random() < 0.1 else _quarter(rng, amount * 0.8, amount * 3)
    return {
        "order_id": f"ord_{n:06d}{rng.randint(100, 999)}",
        "customer_id": customer,
        "amount_usd": amount,
        "currency": rng.choices(_CURRENCIES, _CURRENCY_WEIGHTS)[0],
        "order_total_usd": max(total, 0.25),
        "reason": rng.choice(_REASONS),
    }


def _credit_args(rng: random.Random, customer: str, amount: float) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "amount_usd": amount if rng.random() < 0.3 else _quarter(rng, 0.25, 300),
        "reason": rng.choice(_REASONS),
        "expires_days": rng.choice((30, 60, 90, 180, 365)),
    }


def _grey_zone(rng: random.Random, r: Request) -> Request:
    """A call no rule speaks to: moderate fraud score by phone, a JPY refund or a small
    free-tier credit that expires late. Every file abstains, so the answer is the default
    deny."""
    facts = {**r.facts, "fraud_score": rng.randint(60, 89), "refunded_last_30d_usd": 0.0}
    context = {**r.context, "channel": "phone", "region": "US"}
    if r.tool == "create_refund":
        amount = _quarter(rng, 51, 400)
        args = {**r.args, "amount_usd": amount, "order_total_usd": amount * 2, "currency": "JPY"}
        context["customer_tier"] = "standard"
        facts["chargeback_last_180d"] = False
        run_calls = rng.randint(0, 7)
    else:
        args = {**r.args, "amount_usd": _quarter(rng, 0.25, 10), "expires_days": 365}
        context["customer_tier"] = "free"
        run_calls = rng.randint(0, 9)
    return Request(tool=r.tool, args=args, context=context, facts=facts, run_calls=run_calls)


def _one(rng: random.Random, n: int) -> Request:
    tool = rng.choice(TOOLS)
    amount = _amount(rng)
    customer = f"cus_{rng.randint(10_000, 99_999)}"
    args = (
        _refund_args(rng, n, customer, amount)
        if tool == "create_refund"
        else _credit_args(rng, customer, amount)
    )
    context = {
        "customer_tier": rng.choices(_TIERS, _TIER_WEIGHTS)[0],
        "region": rng.choices(_REGIONS, _REGION_WEIGHTS)[0],
        "channel": rng.choice(_CHANNELS),
    }
    r = Request(
        tool=tool, args=args, context=context, facts=_facts(rng), run_calls=rng.randint(0, 12)
    )
    return _grey_zone(rng, r) if rng.random() < 0.04 else r


def generate_requests(count: int = 512, seed: int = 20_260_101) -> list[Request]:
    """`count` requests from ``random.Random(seed)``: the same list on every machine."""
    rng = random.Random(seed)
    return [_one(rng, n) for n in range(count)]
