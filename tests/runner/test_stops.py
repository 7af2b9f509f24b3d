"""Runs that stop for a person: budgets, loops, kill switches, the turn limit, models
that cannot answer, actions whose outcome is unknown; each with its escalation packet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

import warden
from tests.runner.conftest import DONE, events, line_of, scripted, uses
from warden.runner import RunLimits, Runner, Task
from warden.runner.escalation import render
from warden.runs import ActionState, RunStatus
from warden.store.sqlite import SQLiteStore


@dataclass(frozen=True, kw_only=True)
class Stop:
    """One row of the table: a run, and how it must end."""

    agent: str = "clerk"
    turns: tuple[dict[str, Any], ...]
    limits: RunLimits = field(default_factory=RunLimits)
    kill: str | None = None
    """A kill switch engaged before the run starts."""
    status: RunStatus = RunStatus.ESCALATED
    code: str
    kind: str
    says: str
    """Part of the reason."""
    where: tuple[str, ...] | None = ()
    """The packet's file:line list (None: not checked here)."""
    proposed: str | None = None
    """The tool of the action the packet proposes, if any."""
    calls_made: int = 0


def lookups(n: int) -> tuple[dict[str, Any], ...]:
    return tuple(uses("lookup_balance", account=f"a-{i}") for i in range(n))


STOPS = {
    "budget: tool calls": Stop(
        agent="tight",
        turns=(*lookups(3), DONE),
        code="W-BUD-001",
        kind="budget",
        says="tool call 3 would exceed max_tool_calls 2",
        where=(f"agents/tight.yaml:{line_of('agents/tight.yaml', 'max_tool_calls')}",),
        proposed="lookup_balance",
        calls_made=2,
    ),
    "budget: tokens (runner limit)": Stop(
        turns=(
            {**uses("lookup_balance", account="a-1"), "usage": {"input_tokens": 60}},
            DONE,
        ),
        limits=RunLimits(max_tokens=50),
        code="W-BUD-003",
        kind="budget",
        says="60 tokens would exceed max_tokens 50",
        where=None,  # see test_a_runner_limit_is_not_blamed_on_the_manifest
        calls_made=1,
    ),
    "loop detection": Stop(
        agent="looper",
        turns=(*[uses("pay", payee="acme", amount_usd=1)] * 3, DONE),
        code="W-LOOP-001",
        kind="loop",
        says="pay with the same arguments proposed 3 times",
        where=(f"agents/looper.yaml:{line_of('agents/looper.yaml', 'max_identical_calls')}",),
        proposed="pay",
        calls_made=2,
    ),
    "kill switch": Stop(
        turns=(DONE,),
        kill="agent:clerk",
        status=RunStatus.KILLED,
        code="W-KIL-001",
        kind="kill_switch",
        says="kill switch 'agent:clerk' engaged by olga: a bad deploy",
    ),
    "turn limit": Stop(
        turns=(*lookups(3), DONE),
        limits=RunLimits(max_turns=2),
        code="W-RUN-003",
        kind="turn_limit",
        says="2 model turns without finishing (max_turns 2)",
        calls_made=2,
    ),
    "no model answers": Stop(
        turns=({"error": "server_error"},),
        code="W-RUN-004",
        kind="model",
        says="no model answered: W-MDL-001",
    ),
    "outcome unknown": Stop(
        turns=(uses("slow_pay", payee="acme", amount_usd=5, seconds=2.0), DONE),
        code="W-EXE-002",
        kind="outcome_unknown",
        says="slow_pay did not return within 0.05 s",
        proposed="slow_pay",
        calls_made=1,
    ),
}


@pytest.mark.parametrize("stop", list(STOPS.values()), ids=list(STOPS))
def test_a_stopped_run_escalates_with_a_packet_that_says_why(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType, stop: Stop
) -> None:
    if stop.kill is not None:
        gate.kill(stop.kill, by="olga", reason="a bad deploy")

    result = Runner(gate, scripted(*stop.turns), limits=stop.limits).run(
        Task(agent=stop.agent, goal="Do the thing", key="T-7")
    )
    late = settle_late_calls(store, tools, result.run_id)

    assert (result.status, result.code) == (stop.status, stop.code)
    assert result.reason is not None and stop.says in result.reason
    assert result.tool_calls == stop.calls_made
    packet = result.escalation
    assert packet is not None
    assert packet["run_id"] == result.run_id
    assert packet["task"] == {"key": "T-7", "goal": "Do the thing"}
    assert packet["stopped_by"]["kind"] == stop.kind
    assert packet["stopped_by"]["code"] == stop.code
    assert packet["stopped_by"]["reason"] == result.reason
    if stop.where is not None:
        assert packet["stopped_by"]["where"] == list(stop.where)
    assert (packet["proposed"] or {}).get("tool") == stop.proposed
    assert packet["cost"]["tool_calls"] == stop.calls_made
    assert len(packet["steps"]) == len(events(result, "tool"))
    assert packet["options"][-1]["do"] == "take the task over by hand"
    text = render(packet)
    assert result.reason in text
    assert f"[{stop.code}]" in text
    for where in packet["stopped_by"]["where"]:
        assert f"set at {where}" in text

    assert result.timeline[-1]["kind"] == "run.stop"
    row = store.run(result.run_id)
    assert row is not None
    assert row.status is stop.status
    assert row.ended_at is not None
    saved = store.run_state(result.run_id)
    assert saved is not None and saved[1] == packet
    if stop.kind == "outcome_unknown":
        assert late is ActionState.SUCCEEDED  # the late return is recorded after all


def settle_late_calls(store: SQLiteStore, tools: ModuleType, run_id: str) -> ActionState | None:
    """Let a timed-out call return, and wait until its late outcome is recorded."""
    row = store.run(run_id)
    assert row is not None
    unknown = [a.id for a in row.actions if a.state is ActionState.OUTCOME_UNKNOWN]
    if not unknown:
        return None
    tools.RELEASE.set()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        action = store.action(unknown[0])
        if action is not None and action.state is not ActionState.OUTCOME_UNKNOWN:
            return action.state
        time.sleep(0.005)
    return ActionState.OUTCOME_UNKNOWN


def test_an_outcome_unknown_packet_says_how_to_check_the_backend(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType
) -> None:
    result = Runner(
        gate, scripted(uses("slow_pay", payee="acme", amount_usd=5, seconds=2.0), DONE)
    ).run(Task(agent="clerk", goal="Pay acme"))
    settle_late_calls(store, tools, result.run_id)

    assert result.escalation is not None
    proposed = result.escalation["proposed"]
    row = store.run(result.run_id)
    assert row is not None
    (action,) = row.actions
    assert proposed["action_id"] == action.id
    commands = [o["command"] for o in result.escalation["options"]]
    assert f"look up idempotency key {action.idempotency_key} in the backend" in commands
    assert f"warden runs resume {result.run_id}" in commands


def test_a_kill_switch_engaged_mid_run_stops_the_next_call(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType
) -> None:
    class KillsAfterFirstTurn:
        """A model during whose first turn someone pulls the switch on `pay`."""

        def __init__(self) -> None:
            self.inner = scripted(uses("pay", payee="acme", amount_usd=5), DONE)
            self.name, self.provider, self.asked = "kills", "scripted", 0

        def complete(self, request: Any) -> Any:
            self.asked += 1
            if self.asked == 1:
                gate.kill("tool:pay", by="olga", reason="payments are paused")
            return self.inner.complete(request)

    result = Runner(gate, KillsAfterFirstTurn()).run(Task(agent="clerk", goal="Pay acme"))

    assert (result.status, result.code) == (RunStatus.KILLED, "W-KIL-001")
    assert tools.BACKEND.charges == []
    assert result.escalation is not None
    assert result.escalation["proposed"]["tool"] == "pay"
    commands = [o["command"] for o in result.escalation["options"]]
    assert any(c.startswith("warden unkill --tool pay") for c in commands)


def test_a_budget_stop_points_at_the_line_that_set_the_budget(
    gate: warden.Gate, tools: ModuleType
) -> None:
    result = Runner(gate, scripted(*lookups(3), DONE)).run(Task(agent="tight", goal="Look"))

    assert result.escalation is not None
    line = line_of("agents/tight.yaml", "max_tool_calls")
    (option, _) = result.escalation["options"]
    assert option["command"].startswith(f"edit agents/tight.yaml:{line}; warden runs resume ")
    assert tools.CALLS["lookup_balance"] == 2


# --- known bugs ----------------------------------------------------------------------------


RUNNER_LIMITS: dict[str, tuple[RunLimits, tuple[dict[str, Any], ...]]] = {
    "max_tokens": (
        RunLimits(max_tokens=50),
        ({**uses("lookup_balance", account="a"), "usage": {"input_tokens": 60}}, DONE),
    ),
    "max_tool_calls": (RunLimits(max_tool_calls=2), (*lookups(4), DONE)),
}


@pytest.mark.parametrize("limit", list(RUNNER_LIMITS), ids=list(RUNNER_LIMITS))
def test_a_runner_limit_is_not_blamed_on_the_manifest(gate: warden.Gate, limit: str) -> None:
    limits, turns = RUNNER_LIMITS[limit]

    result = Runner(gate, scripted(*turns), limits=limits).run(Task(agent="clerk", goal="Look"))

    assert result.escalation is not None
    assert result.escalation["stopped_by"]["kind"] == "budget"
    assert not any("clerk.yaml" in w for w in result.escalation["stopped_by"]["where"])


@pytest.mark.parametrize(
    "turns",
    [
        (*[uses("pay", payee="acme", amount_usd=n) for n in (1, 2, 3)], DONE),
        (
            {"calls": [{"pay": {"payee": "acme", "amount_usd": n}} for n in (1, 2, 3)]},
            DONE,
        ),
    ],
    ids=["across turns", "in one turn"],
)
def test_the_runners_max_tool_calls_stops_before_a_call_over_it(
    gate: warden.Gate, tools: ModuleType, turns: tuple[dict[str, Any], ...]
) -> None:
    result = Runner(gate, scripted(*turns), limits=RunLimits(max_tool_calls=2)).run(
        Task(agent="clerk", goal="Pay acme three times")
    )

    assert result.code == "W-BUD-001"
    assert len(tools.BACKEND.charges) <= 2


def test_a_kill_switch_packet_offers_to_lift_the_switch_and_resume(gate: warden.Gate) -> None:
    gate.kill("agent:clerk", by="olga", reason="a bad deploy")
    result = Runner(gate, scripted(DONE)).run(Task(agent="clerk", goal="Hi"))

    assert result.escalation is not None
    (lift, _) = result.escalation["options"]
    assert lift["command"] == (
        f"warden unkill --agent clerk --as NAME && warden runs resume {result.run_id}"
    )


def test_a_killed_run_resumes_once_the_switch_is_lifted(
    gate: warden.Gate, tools: ModuleType
) -> None:
    runner = Runner(gate, scripted(uses("pay", payee="acme", amount_usd=5), DONE))
    gate.kill("agent:clerk", by="olga", reason="a bad deploy")
    killed = runner.run(Task(agent="clerk", goal="Pay acme"))
    gate.unkill("agent:clerk", by="olga")

    result = runner.resume(killed.run_id)

    assert result.status is RunStatus.SUCCEEDED
    assert len(tools.BACKEND.charges) == 1


def test_a_stopped_runs_wall_time_covers_the_time_its_tools_took(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType
) -> None:
    runner = Runner(gate, scripted(uses("slow_pay", payee="acme", amount_usd=5, seconds=2.0), DONE))
    warm = runner.run(Task(agent="clerk", goal="Pay acme"))  # first-use costs out of the way
    result = runner.run(Task(agent="clerk", goal="Pay acme"))
    for run in (warm, result):
        settle_late_calls(store, tools, run.run_id)

    assert result.code == "W-EXE-002"
    assert result.tool_ms >= 50.0  # slow_pay's timeout
    assert result.wall_ms >= result.model_ms + result.tool_ms


def test_resume_asks_the_reconcile_hook_about_an_unknown_outcome() -> None:
    """Unit check of Executor.reconcile_unknown through the payments fixture: an action
    left outcome_unknown is settled by the tool's reconcile hook."""
    from pathlib import Path

    import warden
    from warden.runs import ActionState
    from warden.store.sqlite import SQLiteStore

    project = warden.load_project(Path(__file__).resolve().parents[1] / "fixtures" / "payments")
    import payment_tools  # pyright: ignore[reportMissingImports]

    with SQLiteStore.temporary() as store:
        gate = project.gate(store=store)
        call = warden.ToolCall(
            agent="payer", tool="pay", run_id="run_u", step=1, args={"payee": "a", "amount_usd": 5}
        )
        done = gate.execute(call)
        assert done.ok
        # pretend the outcome was never learnt
        store._submit(  # pyright: ignore[reportPrivateUsage]
            lambda conn: conn.execute(
                "UPDATE actions SET state = 'outcome_unknown' WHERE id = ?", (done.action_id,)
            )
        )
        settled = gate.executor.reconcile_unknown(done.action_id)
        assert settled.state is ActionState.SUCCEEDED
        assert settled.result is not None
        view = store.action(done.action_id)
        assert view is not None and view.state is ActionState.SUCCEEDED
        assert payment_tools.BACKEND.find(done.idempotency_key) is not None
        gate.executor.close()


def test_time_stopped_for_a_person_is_not_wall_time(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType, clock: warden.FixedClock
) -> None:
    """A run killed after its first payment, then left for two hours before the switch is
    lifted: its wall-time limit is measured without those hours, so resuming goes on
    instead of stopping with W-BUD-004."""

    flipped: list[bool] = []

    def kill_after_first_call(_run: str, event: Any) -> None:
        if event["kind"] == "tool" and not flipped:
            flipped.append(True)
            gate.kill("agent:clerk", by="olga", reason="a bad deploy")

    runner = Runner(
        gate,
        scripted(
            uses("pay", payee="acme", amount_usd=5), uses("pay", payee="bolt", amount_usd=6), DONE
        ),
        limits=RunLimits(max_wall_seconds=600),
        on_event=kill_after_first_call,
    )
    killed = runner.run(Task(agent="clerk", goal="Pay acme and bolt"))
    assert killed.status is RunStatus.KILLED
    clock.advance(7_200)
    gate.unkill("agent:clerk", by="olga")

    result = runner.resume(killed.run_id)

    assert result.status is RunStatus.SUCCEEDED, result
    assert len(tools.BACKEND.charges) == 2


def test_an_open_breaker_stops_the_run_with_where_it_is_set(
    gate: warden.Gate, tools: ModuleType, clock: warden.FixedClock
) -> None:
    """The agent's writes keep failing, its breaker opens: the gate demotes the next write
    to a suggestion (W-BRK-001), and the runner stops the run for a person instead of
    going on with a demoted agent."""
    manifest = gate.agent("fragile")
    assert manifest is not None and manifest.breaker is not None
    for _ in range(3):
        gate.store.breaker_record(
            "fragile", manifest.breaker, ok=False, now=clock.timestamp(), probe=False
        )
    runner = Runner(gate, scripted(uses("pay", payee="acme", amount_usd=5), DONE))

    result = runner.run(Task(agent="fragile", goal="Pay acme"))

    assert (result.status, result.code) == (RunStatus.ESCALATED, "W-BRK-001")
    assert result.escalation is not None
    stopped = result.escalation["stopped_by"]
    assert stopped["kind"] == "breaker"
    assert stopped["where"] == [
        f"agents/fragile.yaml:{line_of('agents/fragile.yaml', 'circuit_breakers')}"
    ]
    assert "circuit breaker" in render(result.escalation)
    assert tools.BACKEND.charges == []
