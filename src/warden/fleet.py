"""The operator's numbers over a set of runs: what a fleet summary or dashboard shows.

Success rate, escalations, approvals waiting, policy blocks, cost per successful outcome
(all spend divided by the runs that succeeded: failures cost money too), and p95 run
latency split into model time, tool time and Warden's own overhead; cache hits and what
they saved. Computed from the durable store, so any process can print it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from warden.runs import ActionState, RunStatus
from warden.store.protocol import DurableStore

__all__ = ["AgentFigures", "FleetSummary", "p95"]


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 n)
    return ordered[rank - 1]


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentFigures:
    """One agent's share of a fleet summary."""

    runs: int
    succeeded: int
    usd: float

    @property
    def cost_per_success(self) -> float | None:
        return self.usd / self.succeeded if self.succeeded else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "succeeded": self.succeeded,
            "usd": self.usd,
            "cost_per_success": self.cost_per_success,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetSummary:
    runs: int
    succeeded: int
    escalated: int
    waiting: int
    killed: int
    failed: int
    approvals_waiting: int
    policy_blocks: int
    """Tool calls the gate denied (policy, contract, scope, budgets, loops, switches)."""
    suggestions: int
    usd: float
    tokens: int
    tool_calls: int
    cost_per_success: float | None
    p95_ms: float
    p95_model_ms: float
    p95_tool_ms: float
    p95_overhead_ms: float
    model_cache_hits: int
    model_saved_usd: float
    tool_cache_hits: int
    tool_saved_ms: float
    escalation_codes: Mapping[str, int]
    by_agent: Mapping[str, AgentFigures]
    """Runs, successes, spend and cost per successful outcome of each agent."""

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.runs if self.runs else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["success_rate"] = self.success_rate
        out["escalation_codes"] = dict(self.escalation_codes)
        out["by_agent"] = {a: figures.to_dict() for a, figures in self.by_agent.items()}
        return out

    @classmethod
    def of(cls, store: DurableStore, run_ids: Iterable[str]) -> FleetSummary:
        statuses: dict[RunStatus, int] = dict.fromkeys(RunStatus, 0)
        walls: list[float] = []
        models: list[float] = []
        tools: list[float] = []
        overheads: list[float] = []
        codes: dict[str, int] = {}
        blocks = suggestions = waiting_approvals = tokens = calls = 0
        model_hits = tool_hits = 0
        usd = saved_usd = saved_ms = 0.0
        n = 0
        agents: dict[str, list[float]] = {}
        for run_id in run_ids:
            run = store.run(run_id)
            if run is None:
                continue
            n += 1
            statuses[run.status] += 1
            mine = agents.setdefault(run.agent, [0, 0, 0.0])
            mine[0] += 1
            mine[1] += run.status is RunStatus.SUCCEEDED
            mine[2] += run.usd
            usd += run.usd
            tokens += run.tokens
            calls += run.calls
            for a in run.actions:
                if a.outcome == "deny":
                    blocks += 1
                elif a.outcome == "suggest_only":
                    suggestions += 1
                if a.state is ActionState.AWAITING_APPROVAL:
                    waiting_approvals += 1
            saved = store.run_state(run_id)
            if saved is None:
                continue
            state, packet = saved
            wall, model, tool = (
                float(state.get(k, 0.0)) for k in ("wall_ms", "model_ms", "tool_ms")
            )
            walls.append(wall)
            models.append(model)
            tools.append(tool)
            overheads.append(max(0.0, wall - model - tool))
            for e in state.get("timeline", ()):
                if e.get("kind") == "model" and e.get("cached"):
                    model_hits += 1
                    saved_usd += float(e.get("saved_usd") or 0.0)
                elif e.get("kind") == "tool" and e.get("cached"):
                    tool_hits += 1
                    saved_ms += float(e.get("saved_ms") or 0.0)
            if packet is not None and run.status in (RunStatus.ESCALATED, RunStatus.KILLED):
                code = str(packet.get("stopped_by", {}).get("code") or "?")
                codes[code] = codes.get(code, 0) + 1
        ok = statuses[RunStatus.SUCCEEDED]
        return cls(
            runs=n,
            succeeded=ok,
            escalated=statuses[RunStatus.ESCALATED],
            waiting=statuses[RunStatus.WAITING],
            killed=statuses[RunStatus.KILLED],
            failed=statuses[RunStatus.FAILED],
            approvals_waiting=waiting_approvals,
            policy_blocks=blocks,
            suggestions=suggestions,
            usd=usd,
            tokens=tokens,
            tool_calls=calls,
            cost_per_success=usd / ok if ok else None,
            p95_ms=p95(walls),
            p95_model_ms=p95(models),
            p95_tool_ms=p95(tools),
            p95_overhead_ms=p95(overheads),
            model_cache_hits=model_hits,
            model_saved_usd=saved_usd,
            tool_cache_hits=tool_hits,
            tool_saved_ms=saved_ms,
            escalation_codes=codes,
            by_agent={
                a: AgentFigures(runs=int(r), succeeded=int(s), usd=u)
                for a, (r, s, u) in sorted(agents.items())
            },
        )
