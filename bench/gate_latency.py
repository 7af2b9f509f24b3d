"""`Gate.decide` latency with every check on, in memory.

The gate runs the benchmark's 21 rules for an agent in mode ``act`` with budgets, a
circuit breaker and loop detection; a `MemoryStore`; a `FixedClock`; tools whose
arguments a real (strict) pydantic model validates; context in the call and facts given
through `ToolCall.facts`; the caller's identity checked (``principal``); a kill switch
engaged elsewhere. Gate.decide has no tracing hook, so there is nothing to turn off.

Each run takes `RUN_LENGTH` calls; every allowed decision is settled (outside the timed
region), so budgets never run out and ``run.calls`` grows within a run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

import warden
from bench.engine_warden import load_rules
from bench.timing import gc_paused
from bench.workload import AGENT, Request
from warden.manifest import parse_manifest
from warden.yamlsource import parse_yaml

__all__ = ["GateSample", "build_gate", "measure_gate"]

RUN_LENGTH = 8
"""Calls per run (the manifest allows 20)."""
EST_USD, EST_TOKENS = 0.002, 300

MANIFEST = f"""\
agent:
  name: {AGENT}
  version: "2.0.0"
  owner: support-platform
  mode: act
  budgets:
    max_usd_per_task: 1.00
    max_tool_calls: 20
    max_tokens: 50000
    max_wall_seconds: 600
  permissions:
    allowed_tools: [create_refund, issue_credit]
  circuit_breakers:
    action_error_rate_max: 20%
    window: 5m
    min_calls: 5
    cooldown: 60s
  loop_detection:
    max_identical_calls: 2
"""


class RefundArgs(BaseModel):
    """Arguments of ``create_refund``."""

    order_id: str = Field(min_length=6, max_length=40)
    customer_id: str = Field(min_length=3, max_length=40)
    amount_usd: float = Field(gt=0, le=10_000)
    currency: Literal["USD", "EUR", "GBP", "JPY"]
    order_total_usd: float = Field(gt=0, le=100_000)
    reason: str = Field(max_length=500)


class CreditArgs(BaseModel):
    """Arguments of ``issue_credit``."""

    customer_id: str = Field(min_length=3, max_length=40)
    amount_usd: float = Field(gt=0, le=10_000)
    reason: str = Field(max_length=500)
    expires_days: int = Field(ge=1, le=3650)


@warden.tool(risk="high_risk", sensitive=["order_id"])
def create_refund(args: RefundArgs) -> dict[str, Any]:
    """Refund part or all of an order."""
    return {"refund_id": f"re_{args.order_id}"}


@warden.tool(risk="write")
def issue_credit(args: CreditArgs) -> dict[str, Any]:
    """Put a goodwill credit on a customer's account."""
    return {"credit_usd": args.amount_usd}


def build_gate() -> warden.Gate:
    """A gate with every check on, over the benchmark's rules, in memory.

    A kill switch is engaged for a tool the agent does not use, so the kill-switch check
    looks up every scope that covers a call instead of returning early on an empty store.
    """
    manifest = parse_manifest(parse_yaml(MANIFEST, file="bench/agent.yaml"))
    gate = warden.Gate(
        policies=load_rules(),
        agents=[manifest],
        tools=[create_refund, issue_credit],
        store=warden.MemoryStore(),
        clock=warden.FixedClock(),
        ids=warden.CountingIds(),
    )
    gate.kill("tool:delete_customer", by="bench", reason="not part of this workload")
    return gate


def _calls(requests: Sequence[Request], count: int, prefix: str) -> list[warden.ToolCall]:
    """`count` calls cycling through `requests`, `RUN_LENGTH` to a run."""
    calls: list[warden.ToolCall] = []
    for i in range(count):
        r = requests[i % len(requests)]
        calls.append(
            warden.ToolCall(
                agent=AGENT,
                principal=AGENT,
                tool=r.tool,
                args=r.args,
                run_id=f"{prefix}_{i // RUN_LENGTH:06d}",
                context=r.context,
                facts=r.facts,
                estimated_usd=EST_USD,
                estimated_tokens=EST_TOKENS,
            )
        )
    return calls


@dataclass(frozen=True, kw_only=True, slots=True)
class GateSample:
    """One repeat: per-decision latencies (ns) and what the decisions were."""

    latencies_ns: list[int]
    outcomes: dict[str, int]
    stages: dict[str, int]


def _drive(gate: warden.Gate, calls: Sequence[warden.ToolCall]) -> GateSample:
    """Decide every call, timing each `decide` alone; settle what was allowed."""
    decide, settle, clock = gate.decide, gate.settle, time.perf_counter_ns
    latencies: list[int] = []
    decisions: list[warden.Decision] = []
    with gc_paused():  # no collector pauses inside the timed region
        for call in calls:
            start = clock()
            decision = decide(call)
            latencies.append(clock() - start)
            decisions.append(decision)
            if decision.reservation is not None:
                settle(decision, ok=True, usd=EST_USD, tokens=EST_TOKENS)
    return GateSample(
        latencies_ns=latencies,
        outcomes=dict(Counter(d.outcome.value for d in decisions)),
        stages=dict(Counter(d.stage.value for d in decisions)),
    )


def measure_gate(
    requests: Sequence[Request], *, decisions: int, warmup: int, repeat: int
) -> list[GateSample]:
    """`repeat` samples of `decisions` timed decisions, each on a fresh gate after `warmup`."""
    samples: list[GateSample] = []
    for n in range(repeat):
        gate = build_gate()
        _drive(gate, _calls(requests, warmup, f"warm{n}"))
        sample = _drive(gate, _calls(requests, decisions, f"run{n}"))
        early = {k: v for k, v in sample.stages.items() if k not in ("policy", "mode")}
        if early:
            raise RuntimeError(f"decisions stopped before the policy stage: {early}")
        samples.append(sample)
    return samples
