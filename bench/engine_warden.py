"""Warden's own engine: `PolicySet.evaluate` over the YAML rules in ``bench/rules21/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.requests import AGENT, Request
from warden.history import HistoryView
from warden.policy import AgentView, NowView, PolicySet, RunView, Scope, load_policies

__all__ = ["RULES_DIR", "WardenEngine", "load_rules"]

RULES_DIR = Path(__file__).resolve().parent / "rules21"
"""The three policy files holding the 21 benchmark rules."""

NOW = 1_767_258_000.0
"""2026-01-01T09:00:00Z: the instant every decision is made at."""
RUN_ID = "run_bench"


def load_rules() -> PolicySet:
    """The benchmark's policy set, loaded and compiled the way a project loads it."""
    return load_policies([RULES_DIR], root=RULES_DIR.parent)


class WardenEngine:
    """Decides a `Request` with `PolicySet.evaluate`.

    The per-call views (``run``, ``now``, ``history``) are built inside the timed call, as
    the gate builds them; the agent's view is built once, as the gate does at start-up.
    """

    name = "warden"

    def __init__(self, policies: PolicySet | None = None) -> None:
        self.policies = policies if policies is not None else load_rules()
        self.agent = AgentView(name=AGENT, version="1", owner="bench", mode="act", autonomy="L3")

    def decide(self, r: Request) -> str:
        """The outcome (``allow``, ``deny`` or ``needs_approval``) for one request."""
        result = self.policies.evaluate(
            r.tool,
            args=r.args,
            agent=self.agent,
            run=RunView(id=RUN_ID, calls=r.run_calls),
            context=r.context,
            facts=r.facts,
            now=NowView(NOW),
            history=HistoryView((), run_id=RUN_ID, tool=r.tool, now=NOW),
        )
        return result.outcome.value

    def decide_all(self, requests: Sequence[Request]) -> list[str]:
        """Outcomes for every request, in order."""
        evaluate, agent, out = self.policies.evaluate, self.agent, []
        for r in requests:
            result = evaluate(
                r.tool,
                args=r.args,
                agent=agent,
                run=RunView(id=RUN_ID, calls=r.run_calls),
                context=r.context,
                facts=r.facts,
                now=NowView(NOW),
                history=HistoryView((), run_id=RUN_ID, tool=r.tool, now=NOW),
            )
            out.append(result.outcome.value)
        return out

    def first_matches(self, r: Request) -> list[str]:
        """Ids of the rule that matched first in each policy covering the request."""
        run = RunView(id=RUN_ID, calls=r.run_calls)
        history = HistoryView((), run_id=RUN_ID, tool=r.tool, now=NOW)
        call = (Scope(r.args, r.context, r.facts), r.args, self.agent, run, r.context, r.facts)
        found: list[str] = []
        for policy in self.policies.covering(r.tool, AGENT):
            index = policy.match(*call, NowView(NOW), history)
            if index >= 0:
                found.append(policy.rules[index].ref.id)
        return found
