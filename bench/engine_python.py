"""The baseline: the 21 rules as a hand-written Python function.

Same semantics as Warden: within a policy file the first matching rule decides (a file
where nothing matches abstains); across files the strictest outcome wins (deny >
needs_approval > allow); nothing matched, or an unknown tool: deny. Like Warden, it stops
at the first deny. It is what a careful developer would write inline: plain ``if``
chains over the dictionaries, constant sets hoisted, no framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.workload import Request

__all__ = ["PythonEngine", "decide"]

ALLOW, DENY, APPROVAL = "allow", "deny", "needs_approval"
_SANCTIONED = frozenset({"KP", "IR", "SY", "CU"})
_CURRENCIES = frozenset({"USD", "EUR", "GBP"})
_EU_UK = frozenset({"EU", "UK"})
_PAID_TOP = frozenset({"pro", "enterprise"})

Map = Mapping[str, Any]


def _refunds(a: Map, c: Map, f: Map, calls: int) -> str | None:
    """refunds.yaml (R01-R10)."""
    amount = a["amount_usd"]
    tier = c["customer_tier"]
    if f["chargeback_last_180d"] or c["region"] in _SANCTIONED or amount > a["order_total_usd"]:
        return DENY
    if tier == "free" and amount > 20:
        return DENY
    if calls >= 8:
        return APPROVAL
    if amount <= 50:
        return ALLOW
    if amount <= 150 and tier == "pro" and f["account_age_days"] >= 365:
        return ALLOW
    if amount <= 500 and tier == "enterprise":
        return ALLOW
    if amount > 2000 or a["currency"] in _CURRENCIES:  # R09, then R10 (amount > 50 here)
        return APPROVAL
    return None


def _risk(a: Map, c: Map, f: Map) -> str | None:
    """refund_risk.yaml (R11-R15)."""
    score = f["fraud_score"]
    if score >= 90:
        return DENY
    amount = a["amount_usd"]
    if f["refunded_last_30d_usd"] + amount > 1500:
        return APPROVAL
    if score >= 60 and c["channel"] != "phone":
        return APPROVAL
    if c["region"] in _EU_UK and amount > 1000:
        return APPROVAL
    if score < 60:
        return ALLOW
    return None


def _credits(a: Map, c: Map, f: Map, calls: int) -> str | None:
    """credits.yaml (R16-R21)."""
    amount = a["amount_usd"]
    tier = c["customer_tier"]
    if amount > 250 or calls + 1 > 10 or (tier == "free" and amount > 10):
        return DENY
    if amount <= 25 and a["expires_days"] <= 90:
        return ALLOW
    if amount * 50 <= f["lifetime_value_usd"] and tier in _PAID_TOP:
        return ALLOW
    if amount > 25 and tier != "free":
        return APPROVAL
    return None


def decide(tool: str, args: Map, context: Map, facts: Map, run_calls: int) -> str:
    """The outcome for one call of `tool`; a value that cannot be read fails closed."""
    try:
        if tool == "create_refund":
            first = _refunds(args, context, facts, run_calls)
        elif tool == "issue_credit":
            first = _credits(args, context, facts, run_calls)
        else:
            return DENY
        if first == DENY:
            return DENY
        second = _risk(args, context, facts)
    except Exception:  # like Warden: a missing name or a type mismatch denies
        return DENY
    if second == DENY:
        return DENY
    if first == APPROVAL or second == APPROVAL:
        return APPROVAL
    if first == ALLOW or second == ALLOW:
        return ALLOW
    return DENY


class PythonEngine:
    """`decide` behind the same interface as the other engines."""

    name = "python"

    def decide(self, r: Request) -> str:
        return decide(r.tool, r.args, r.context, r.facts, r.run_calls)

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """Outcomes for every request, in order."""
        return [decide(r.tool, r.args, r.context, r.facts, r.run_calls) for r in requests]
