"""CEL (``common-expression-language``): the 21 rules as CEL expressions.

Encoding: one CEL program per policy file, compiled once, of the form
``(r1) ? 0 : (r2) ? 1 : ... : -1``, so one evaluation returns the index of the file's
first matching rule, just as Warden compiles one matcher per file. Per request, one
`cel.Context` is built and shared by the programs of the covering files (the library
converts the variables once per context). Combining the files (strictest wins, no match
is a deny) happens in Python, in the same way as Warden does it.

Variable layout: converting Python values into CEL values dominates CEL's cost, and
nested maps cost about twice as much as top-level variables. The rules are written over
``args``, ``context``, ``facts`` and ``run`` maps (layout ``nested``); the ``flat``
layout, CEL's fastest and the one the targets are judged on, drops those prefixes and
binds every value as a top-level variable (``run.calls`` becomes ``run_calls``), with
Warden's precedence for bare names (argument, else context value, else fact).

Numbers: CEL compares int with double; every amount is a double, as in the requests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cel

from bench.workload import Request

__all__ = ["CEL_FILES", "CelEngine"]

ALLOW, DENY, APPROVAL = "allow", "deny", "needs_approval"

# (policy id, tools, [(rule id, outcome, CEL condition)]) in Warden's rule order
CEL_FILES: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...]], ...] = (
    (
        "refunds",
        ("create_refund",),
        (
            ("R01-refund-chargeback", DENY, "facts.chargeback_last_180d"),
            ("R02-refund-sanctioned-region", DENY, "context.region in ['KP', 'IR', 'SY', 'CU']"),
            ("R03-refund-over-order-total", DENY, "args.amount_usd > args.order_total_usd"),
            (
                "R04-refund-free-tier",
                DENY,
                "context.customer_tier == 'free' && args.amount_usd > 20.0",
            ),
            ("R05-refund-long-run", APPROVAL, "run.calls >= 8"),
            ("R06-refund-small", ALLOW, "args.amount_usd <= 50.0"),
            (
                "R07-refund-pro-tenured",
                ALLOW,
                "args.amount_usd <= 150.0 && context.customer_tier == 'pro'"
                " && facts.account_age_days >= 365",
            ),
            (
                "R08-refund-enterprise",
                ALLOW,
                "args.amount_usd <= 500.0 && context.customer_tier == 'enterprise'",
            ),
            ("R09-refund-huge", APPROVAL, "args.amount_usd > 2000.0"),
            (
                "R10-refund-manager",
                APPROVAL,
                "args.amount_usd > 50.0 && args.currency in ['USD', 'EUR', 'GBP']",
            ),
        ),
    ),
    (
        "refund_risk",
        ("create_refund", "issue_credit"),
        (
            ("R11-risk-fraud-block", DENY, "facts.fraud_score >= 90"),
            (
                "R12-risk-velocity",
                APPROVAL,
                "facts.refunded_last_30d_usd + args.amount_usd > 1500.0",
            ),
            (
                "R13-risk-elevated",
                APPROVAL,
                "facts.fraud_score >= 60 && context.channel != 'phone'",
            ),
            (
                "R14-risk-regional",
                APPROVAL,
                "context.region in ['EU', 'UK'] && args.amount_usd > 1000.0",
            ),
            ("R15-risk-low", ALLOW, "facts.fraud_score < 60"),
        ),
    ),
    (
        "credits",
        ("issue_credit",),
        (
            ("R16-credit-cap", DENY, "args.amount_usd > 250.0"),
            ("R17-credit-run-calls", DENY, "run.calls + 1 > 10"),
            (
                "R18-credit-free-tier",
                DENY,
                "context.customer_tier == 'free' && args.amount_usd > 10.0",
            ),
            (
                "R19-credit-small",
                ALLOW,
                "args.amount_usd <= 25.0 && args.expires_days <= 90",
            ),
            (
                "R20-credit-ltv",
                ALLOW,
                "args.amount_usd * 50.0 <= facts.lifetime_value_usd"
                " && context.customer_tier in ['pro', 'enterprise']",
            ),
            (
                "R21-credit-manager",
                APPROVAL,
                "args.amount_usd > 25.0 && context.customer_tier != 'free'",
            ),
        ),
    ),
)

_STRICTNESS = {ALLOW: 0, APPROVAL: 1, DENY: 2}
_PREFIX = re.compile(r"\b(?:args|context|facts)\.")

Layout = Literal["flat", "nested"]


def flatten(condition: str) -> str:
    """A nested-layout condition rewritten for the flat layout."""
    return _PREFIX.sub("", condition).replace("run.calls", "run_calls")


@dataclass(frozen=True, slots=True)
class _Program:
    program: cel.Program
    outcomes: tuple[str, ...]


def _chain(conditions: Sequence[str]) -> str:
    """``(c0) ? 0 : (c1) ? 1 : ... : -1``: the index of the first true condition."""
    return " : ".join(f"({c}) ? {i}" for i, c in enumerate(conditions)) + " : -1"


class CelEngine:
    """Decides a `Request` by evaluating one compiled CEL program per covering file."""

    def __init__(self, layout: Layout = "flat") -> None:
        self.layout = layout
        self.name = "cel" if layout == "flat" else f"cel_{layout}"
        by_tool: dict[str, list[_Program]] = {}
        for _id, tools, rules in CEL_FILES:
            conditions = [cond if layout == "nested" else flatten(cond) for _, _, cond in rules]
            compiled = _Program(
                program=cel.compile(_chain(conditions)),
                outcomes=tuple(outcome for _, outcome, _ in rules),
            )
            for tool in tools:
                by_tool.setdefault(tool, []).append(compiled)
        self._by_tool = {tool: tuple(ps) for tool, ps in by_tool.items()}

    def decide(self, r: Request) -> str:
        """The outcome for one request; an expression that cannot be evaluated denies."""
        programs = self._by_tool.get(r.tool)
        if not programs:
            return DENY
        if self.layout == "flat":
            variables = {**r.facts, **r.context, **r.args, "run_calls": r.run_calls}
        else:
            variables = {
                "args": r.args,
                "context": r.context,
                "facts": r.facts,
                "run": {"calls": r.run_calls},
            }
        ctx = cel.Context(variables=variables)
        best = -1
        for p in programs:
            try:
                index: int = p.program.execute(ctx)
            except (RuntimeError, TypeError, ValueError):  # fail closed, as Warden does
                return DENY
            if index < 0:
                continue
            outcome = p.outcomes[index]
            if outcome == DENY:
                return DENY
            best = max(best, _STRICTNESS[outcome])
        return DENY if best < 0 else (APPROVAL if best == 1 else ALLOW)

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """Outcomes for every request, in order."""
        decide = self.decide
        return [decide(r) for r in requests]
