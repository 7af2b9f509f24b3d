"""Warden's own engine: `PolicySet.evaluate` over the YAML rules in ``bench/rules21/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.workload import AGENT, Request
from warden.history import HistoryView
from warden.policy import AgentView, NowView, PolicySet, RunView, Scope, load_policies

__all__ = ["FIELDS", "NOW", "RULES_DIR", "RUN_ID", "WardenEngine", "load_rules"]

RULES_DIR = Path(__file__).resolve().parent / "rules21"
"""The three policy files holding the 21 benchmark rules."""

NOW = 1_767_258_000.0
"""2026-01-01T09:00:00Z: the instant every decision is made at."""
RUN_ID = "run_bench"
"""The run every policy-only decision belongs to."""


FIELDS: dict[str, frozenset[str]] = {
    "create_refund": frozenset(
        {"order_id", "customer_id", "amount_usd", "currency", "order_total_usd", "reason"}
    ),
    "issue_credit": frozenset({"customer_id", "amount_usd", "reason", "expires_days"}),
}
"""The tools' argument names, which a project takes from the tools' models."""


def load_rules() -> PolicySet:
    """The benchmark's policy set, loaded and compiled the way a project loads it (a project
    passes every tool's argument names, so a bare argument name is read from ``args``)."""
    return load_policies([RULES_DIR], root=RULES_DIR.parent, fields=FIELDS)


class WardenEngine:
    """Decides a `Request` the way `Gate.decide` runs its policy stage.

    The agent's plan table is kept (as the gate keeps it); the plan for the tool is read
    from it per call and called directly; the
    per-call views are built inside the timed call when the plan's conditions read them
    (``run`` as the plain tuple of its figures), as the gate does; the agent's view is built
    once, as the gate does at start-up.
    """

    name = "warden"

    def __init__(self, policies: PolicySet | None = None) -> None:
        self.policies = policies if policies is not None else load_rules()
        self.agent = AgentView(name=AGENT, version="1", owner="bench", mode="act", autonomy="L3")

    def decide(self, r: Request) -> str:
        """The outcome (``allow``, ``deny`` or ``needs_approval``) for one request."""
        return self.decide_all([r])[0]

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """Outcomes for every request, in order."""
        agent, plans = self.agent, self.policies.plans(AGENT)
        out: list[str] = []
        for r in requests:
            plan = plans[r.tool]
            result = plan.decide(
                r.args,
                r.context,
                r.facts,
                agent,
                (RUN_ID, r.run_calls, 0.0, 0, 0.0, False) if plan.uses_run else None,
                NowView(NOW) if plan.uses_now else None,
                HistoryView((), run_id=RUN_ID, tool=r.tool, now=NOW) if plan.uses_history else None,
            )
            out.append(result.outcome)  # an Outcome is a str: "allow", "deny" ...
        return out

    def first_matches(self, r: Request) -> list[str]:
        """Ids of the rule that matched first in each policy covering the request."""
        run = RunView(id=RUN_ID, calls=r.run_calls)
        history = HistoryView((), run_id=RUN_ID, tool=r.tool, now=NOW)
        call = (Scope(r.args, r.context, r.facts), r.args, self.agent, run, r.context, r.facts)
        found: list[str] = []
        for policy in self.policies.covering(r.tool, AGENT):
            index: int = policy.match(*call, NowView(NOW), history)
            if index >= 0:
                found.append(policy.rules[index].ref.id)
        return found
