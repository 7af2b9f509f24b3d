"""Cedar (``cedarpy``): the 21 rules as Cedar ``permit`` / ``forbid`` policies.

Encoding (Cedar has no rule order and only two decisions):

- every rule is one policy scoped to its file's tools (``resource == Tool::"..."``, or
  ``resource in ToolGroup::"refund_risk"`` for the file that covers two tools): an
  ``allow`` rule is a ``permit``; a ``deny`` rule and a ``require_approval`` rule are each
  a ``forbid``, annotated ``@outcome("deny")`` or ``@outcome("needs_approval")``;
- first-match within a file is encoded in the conditions: a rule's ``when`` also requires
  that no *earlier rule of the same file with a different outcome* matches. Then exactly
  the first matching rule's outcome fires in each file (an earlier rule with the same
  outcome gives the same outcome, so it need not be excluded);
- one request per call, action ``Action::"call"``. Cedar's forbid-overrides-permit and
  default deny then give: ``Allow`` -> allow. ``Deny`` -> the satisfied forbids (the
  decision's reasons, read back through their ``@id``) say deny if any has
  ``@outcome("deny")``, else needs_approval if any forbid fired, else deny (no match).

Errors: Cedar skips a policy whose condition fails to evaluate (for a ``forbid``, that
fails open); here any evaluation error stops the benchmark instead, and the workload
never causes one.

Numbers: Cedar has only integers, so amounts travel as whole cents (exact: every amount
is a multiple of $0.25); the conversion is part of the timed work. The context is a flat
record (measured faster than nested records). All requests of a pass go through one
`cedarpy.is_authorized_batch` call with a pre-parsed `PolicySet` and `Entities`; the time
per request is the batch time divided by the number of requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import cedarpy

from bench.workload import AGENT, Request

__all__ = ["CEDAR_FILES", "CedarEngine", "cedar_policies"]

ALLOW, DENY, APPROVAL = "allow", "deny", "needs_approval"

# (scope, [(rule id, outcome, Cedar condition over the flat context)]) in Warden's order
CEDAR_FILES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        'resource == Tool::"create_refund"',
        (
            ("R01-refund-chargeback", DENY, "context.chargeback_last_180d"),
            (
                "R02-refund-sanctioned-region",
                DENY,
                '["KP", "IR", "SY", "CU"].contains(context.region)',
            ),
            (
                "R03-refund-over-order-total",
                DENY,
                "context.amount_cents > context.order_total_cents",
            ),
            (
                "R04-refund-free-tier",
                DENY,
                'context.customer_tier == "free" && context.amount_cents > 2000',
            ),
            ("R05-refund-long-run", APPROVAL, "context.run_calls >= 8"),
            ("R06-refund-small", ALLOW, "context.amount_cents <= 5000"),
            (
                "R07-refund-pro-tenured",
                ALLOW,
                'context.amount_cents <= 15000 && context.customer_tier == "pro"'
                " && context.account_age_days >= 365",
            ),
            (
                "R08-refund-enterprise",
                ALLOW,
                'context.amount_cents <= 50000 && context.customer_tier == "enterprise"',
            ),
            ("R09-refund-huge", APPROVAL, "context.amount_cents > 200000"),
            (
                "R10-refund-manager",
                APPROVAL,
                'context.amount_cents > 5000 && ["USD", "EUR", "GBP"].contains(context.currency)',
            ),
        ),
    ),
    (
        'resource in ToolGroup::"refund_risk"',
        (
            ("R11-risk-fraud-block", DENY, "context.fraud_score >= 90"),
            (
                "R12-risk-velocity",
                APPROVAL,
                "context.refunded_last_30d_cents + context.amount_cents > 150000",
            ),
            (
                "R13-risk-elevated",
                APPROVAL,
                'context.fraud_score >= 60 && context.channel != "phone"',
            ),
            (
                "R14-risk-regional",
                APPROVAL,
                '["EU", "UK"].contains(context.region) && context.amount_cents > 100000',
            ),
            ("R15-risk-low", ALLOW, "context.fraud_score < 60"),
        ),
    ),
    (
        'resource == Tool::"issue_credit"',
        (
            ("R16-credit-cap", DENY, "context.amount_cents > 25000"),
            ("R17-credit-run-calls", DENY, "context.run_calls + 1 > 10"),
            (
                "R18-credit-free-tier",
                DENY,
                'context.customer_tier == "free" && context.amount_cents > 1000',
            ),
            (
                "R19-credit-small",
                ALLOW,
                "context.amount_cents <= 2500 && context.expires_days <= 90",
            ),
            (
                "R20-credit-ltv",
                ALLOW,
                "context.amount_cents * 50 <= context.lifetime_value_cents"
                ' && ["pro", "enterprise"].contains(context.customer_tier)',
            ),
            (
                "R21-credit-manager",
                APPROVAL,
                'context.amount_cents > 2500 && context.customer_tier != "free"',
            ),
        ),
    ),
)

ENTITIES: list[dict[str, Any]] = [
    {"uid": {"type": "Agent", "id": AGENT}, "attrs": {}, "parents": []},
    {"uid": {"type": "ToolGroup", "id": "refund_risk"}, "attrs": {}, "parents": []},
    *(
        {
            "uid": {"type": "Tool", "id": tool},
            "attrs": {},
            "parents": [{"type": "ToolGroup", "id": "refund_risk"}],
        }
        for tool in ("create_refund", "issue_credit")
    ),
]

# argument and fact values in USD, sent to Cedar as whole cents under these names
_CENTS = (
    ("amount_usd", "amount_cents"),
    ("order_total_usd", "order_total_cents"),
    ("refunded_last_30d_usd", "refunded_last_30d_cents"),
    ("lifetime_value_usd", "lifetime_value_cents"),
)


def cedar_policies() -> str:
    """The Cedar policy text for the 21 rules (see the module docstring)."""
    out: list[str] = []
    for scope, rules in CEDAR_FILES:
        for i, (rule_id, outcome, condition) in enumerate(rules):
            guards = [f"!({c})" for _, o, c in rules[:i] if o != outcome]
            effect = "permit" if outcome == ALLOW else "forbid"
            out.append(
                f'@id("{rule_id}") @outcome("{outcome}")\n'
                f'{effect}(principal, action == Action::"call", {scope})\n'
                f"when {{ {' && '.join([f'({condition})', *guards])} }};"
            )
    return "\n".join(out)


def cedar_context(r: Request) -> dict[str, Any]:
    """The request's values as one flat Cedar record (USD amounts in whole cents)."""
    ctx = {**r.facts, **r.context, **r.args, "run_calls": r.run_calls}
    for usd, cents in _CENTS:
        if usd in ctx:
            ctx[cents] = round(ctx.pop(usd) * 100)
    return ctx


class CedarEngine:
    """Decides `Request` batches with `cedarpy.is_authorized_batch`."""

    name = "cedar"

    def __init__(self) -> None:
        self.policies = cedarpy.PolicySet.from_str(cedar_policies())
        self.entities = cedarpy.Entities.from_json_str(json.dumps(ENTITIES))  # pyright: ignore[reportUnknownMemberType]
        self.outcomes = {rule_id: o for _, rules in CEDAR_FILES for rule_id, o, _ in rules}
        self._principal = {"type": "Agent", "id": AGENT}
        self._action = {"type": "Action", "id": "call"}

    def _request(self, r: Request) -> dict[str, Any]:
        return {
            "principal": self._principal,
            "action": self._action,
            "resource": {"type": "Tool", "id": r.tool},
            "context": cedar_context(r),
        }

    def _outcome(self, result: cedarpy.AuthzResult) -> str:
        if result.decision is cedarpy.Decision.Allow:
            return ALLOW
        diagnostics = result.diagnostics
        if diagnostics.errors or result.decision is not cedarpy.Decision.Deny:
            raise RuntimeError(f"cedar could not decide: {diagnostics.errors}")
        ids = cast(dict[str, str], diagnostics.id_annotations_by_reason)  # pyright: ignore[reportUnknownMemberType]
        fired = {self.outcomes[i] for i in ids.values()}
        return APPROVAL if fired == {APPROVAL} else DENY

    def decide(self, r: Request) -> str:
        """The outcome for one request (one call; `decide_all` batches)."""
        return self.decide_all([r])[0]

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """Outcomes for every request, in order, from one batch call."""
        batch = [self._request(r) for r in requests]
        results = cedarpy.is_authorized_batch(batch, self.policies, self.entities)  # pyright: ignore[reportUnknownMemberType]
        return [self._outcome(res) for res in results]
