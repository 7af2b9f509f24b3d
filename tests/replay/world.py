"""A small desk for replay tests: two agents, a write tool and a read tool, a fact
provider, and policies that read everything a decision can read (facts, history, run
figures, the clock, context, taint), built without files so each test can vary them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

import warden
from warden.facts import FactQuery, FactRegistry
from warden.gate import Gate
from warden.manifest import AgentManifest, parse_manifest, shorthand_policies
from warden.policy.evaluate import PolicySet
from warden.policy.load import policy_set
from warden.store.protocol import StateStore
from warden.tools.registry import ToolRegistry
from warden.yamlsource import parse_yaml

REFUNDS = """\
policy:
  id: refunds
  tool: refund
  rules:
    - id: refunds-night
      if: "now.hour >= 20"
      deny: no refunds at night
    - id: refunds-long-run
      if: "run.calls >= 4"
      deny: a long run stops refunding
    - id: refunds-tainted
      if: "run.tainted and amount > 5"
      deny: untrusted content entered the run
    - id: refunds-many
      if: "history.count(tool='refund', within='1h') >= 3"
      require_approval: lead
    - id: refunds-approved-before
      if: "history.approved_before(within='1d') and amount <= 40"
      allow: true
    - id: refunds-after-lookup
      if: "history.happened_before('lookup') and amount <= 12"
      allow: true
    - id: refunds-gold
      if: "amount <= 20 and facts.tier == 'gold'"
      allow: true
    - id: refunds-vip
      if: "context.get('vip', false)"
      allow: true
    - id: refunds-small
      if: "amount <= 10"
      allow: true
    - id: refunds-audited
      if: "amount == 77 and facts.audit_flag"
      deny: flagged by audit (no provider knows audit_flag)
    - id: refunds-rest
      require_approval: lead
  log:
    redact_fields: [note]
"""

LOOKUPS = """\
policy:
  id: lookups
  tool: lookup
  rules:
    - id: lookups-own
      if: "customer == context.get('customer', customer)"
      allow: true
    - id: lookups-other
      deny: only the ticket's customer
"""

DESK = """\
agent:
  name: desk
  version: "1"
  owner: team
  mode: act
  budgets:
    max_tool_calls: 6
    max_usd_per_task: 0.5
  permissions:
    allowed_tools: [refund, lookup]
    refund:
      max_amount: 100
  circuit_breakers:
    action_error_rate_max: 40%
    window: 10m
    min_calls: 3
    cooldown: 60s
  loop_detection:
    max_identical_calls: 2
  approvals:
    default_role: lead
"""

CAUTIOUS = """\
agent:
  name: cautious
  version: "1"
  owner: team
  mode: suggest_then_act
  permissions:
    allowed_tools: [refund]
  approvals:
    default_role: lead
"""

POLICIES = {"policies/refunds.yaml": REFUNDS, "policies/lookups.yaml": LOOKUPS}
MANIFESTS = {"agents/desk.yaml": DESK, "agents/cautious.yaml": CAUTIOUS}
TIERS = {"c1": "gold", "c2": "silver"}
"""The `tier` fact; any other customer makes the provider fail (W-POL-104)."""


class RefundArgs(BaseModel):
    customer: str
    amount: float
    fail: bool = False
    note: str = ""


class LookupArgs(BaseModel):
    customer: str


@warden.tool(risk="write")
def refund(args: RefundArgs) -> dict[str, Any]:
    """Refund a customer; fails when asked to (to move the breaker)."""
    if args.fail:
        raise RuntimeError("the backend refused")
    return {"refunded": args.amount}


@warden.tool(risk="read")
def lookup(args: LookupArgs) -> dict[str, Any]:
    """Read a customer."""
    return {"customer": args.customer}


TOOLS = ToolRegistry([refund, lookup])
FIELDS = {t.name: t.field_names for t in TOOLS}


def _tier(q: FactQuery) -> str:
    customer = str(q.value("customer"))
    if customer not in TIERS:
        raise LookupError(f"no customer {customer}")
    return TIERS[customer]


def facts() -> FactRegistry:
    registry = FactRegistry()
    registry.register("tier", _tier, keys=["customer"])
    return registry


def manifests(texts: Mapping[str, str] = MANIFESTS) -> list[AgentManifest]:
    return [parse_manifest(parse_yaml(text, file=name)) for name, text in texts.items()]


def policies(
    texts: Mapping[str, str] = POLICIES, agents: list[AgentManifest] | None = None
) -> PolicySet:
    """The policy set a project with these files would load (manifests' shorthands in)."""
    agents = manifests() if agents is None else agents
    return policy_set(
        [parse_yaml(text, file=name) for name, text in texts.items()],
        extra=[p for m in agents for p in shorthand_policies(m, fields=FIELDS)],
        extra_sources=[(m.file, m.doc.text) for m in agents],
        fields=FIELDS,
    )


def gate(store: StateStore, clock: warden.FixedClock, texts: Mapping[str, str] = POLICIES) -> Gate:
    agents = manifests()
    return Gate(
        policies=policies(texts, agents),
        agents=agents,
        tools=TOOLS,
        store=store,
        facts=facts(),
        clock=clock,
        ids=warden.CountingIds(),
        approval_ttl_s=86_400.0,
    )


def call(
    tool: str = "refund", *, run: str = "run_1", agent: str = "desk", **args: Any
) -> warden.ToolCall:
    """A call; ``context``, ``content``, ``step`` and estimates go to the call, the rest
    are arguments."""
    options = {k: args.pop(k) for k in ("context", "content", "step", "estimated_usd") if k in args}
    return warden.ToolCall(agent=agent, tool=tool, run_id=run, args=args, **options)
