"""Runs that wait and resume: approvals decided by people, and a process that dies
between steps or inside a tool. Completed actions are never run twice."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import warden
from tests.runner.conftest import (
    DONE,
    Crash,
    Watched,
    events,
    kinds,
    line_of,
    scripted,
    shop_tools,
    store_of,
    uses,
)
from warden.execution import Approvals
from warden.models.base import Role
from warden.runner import Runner, RunResult, Task
from warden.runs import ActionState, RunStatus
from warden.store.sqlite import SQLiteStore

PAY_500 = uses("pay", payee="acme", amount_usd=500)


def approval_id(result: RunResult) -> str:
    assert result.escalation is not None
    return str(result.escalation["proposed"]["approval_id"])


# --- waiting for an approval ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("turn", "dry_run"),
    [
        (PAY_500, {"would_charge": {"payee": "acme", "amount_usd": 500.0}}),
        (uses("slow_pay", payee="acme", amount_usd=500, seconds=0.01), None),
    ],
    ids=["tool with a dry run", "tool without one"],
)
def test_a_call_that_needs_approval_waits_with_a_packet(
    gate: warden.Gate,
    store: SQLiteStore,
    tools: ModuleType,
    turn: dict[str, Any],
    dry_run: dict[str, Any] | None,
) -> None:
    (tool, args), *_ = turn["calls"][0].items()

    result = Runner(gate, scripted(turn, DONE)).run(Task(agent="clerk", goal="Pay acme 500"))

    assert result.status is RunStatus.WAITING
    assert result.reason == "needs approval by finance (payments#2)"
    packet = result.escalation
    assert packet is not None
    line = line_of("policies/payments.yaml", 'if: "amount_usd <= 1000"')
    assert packet["stopped_by"]["kind"] == "approval"
    assert packet["stopped_by"]["where"] == [f"policies/payments.yaml:{line}"]
    proposed = packet["proposed"]
    assert (proposed["tool"], proposed["args"], proposed["needs"]) == (tool, args, "finance")
    assert proposed["dry_run"] == dry_run
    apr = proposed["approval_id"]
    assert apr.startswith("apr_")
    options = {o["do"]: o["command"] for o in packet["options"]}
    resume = f"warden runs resume {result.run_id}"
    assert options["approve"] == f"warden approvals approve {apr} --as NAME && {resume}"
    assert options["deny"].startswith(f"warden approvals deny {apr} --as NAME ")
    assert kinds(result)[-1] == "run.wait"

    row = store.run(result.run_id)
    assert row is not None
    assert row.status is RunStatus.WAITING
    assert [(a.state, a.approval_id) for a in row.actions] == [(ActionState.AWAITING_APPROVAL, apr)]
    assert tools.BACKEND.charges == []


def test_resuming_while_the_approval_is_pending_changes_nothing(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType
) -> None:
    model = Watched(scripted(PAY_500, DONE))
    runner = Runner(gate, model)
    waiting = runner.run(Task(agent="clerk", goal="Pay acme 500"))

    again = runner.resume(waiting.run_id)

    assert (again.status, again.code) == (RunStatus.WAITING, "W-APR-009")
    assert again.escalation == waiting.escalation
    assert len(model.requests) == 1
    assert tools.BACKEND.charges == []
    row = store.run(waiting.run_id)
    assert row is not None
    assert row.status is RunStatus.WAITING
    assert [a.state for a in row.actions] == [ActionState.AWAITING_APPROVAL]
    assert runner.resume_ready() == []


@pytest.mark.parametrize("restart", [False, True], ids=["same process", "after a restart"])
def test_an_approved_payment_runs_exactly_once_when_the_run_resumes(
    open_gate: Callable[[], warden.Gate],
    shop: warden.Project,
    clock: warden.FixedClock,
    tools: ModuleType,
    restart: bool,
) -> None:
    gate = open_gate()
    model = scripted(PAY_500, {"text": "Paid acme 500 USD."})
    waiting = Runner(gate, model).run(Task(agent="clerk", goal="Pay acme 500"))
    Approvals(store_of(gate), roles=shop.roles, clock=clock).approve(
        approval_id(waiting), approver="fiona"
    )
    clock.advance(600)
    runner = Runner(open_gate() if restart else gate, model)

    result = runner.resume(waiting.run_id)

    assert (result.status, result.answer) == (RunStatus.SUCCEEDED, "Paid acme 500 USD.")
    assert [(c["payee"], c["amount_usd"]) for c in tools.BACKEND.charges] == [("acme", 500.0)]
    assert result.tool_calls == 1
    (resumed,) = events(result, "run.resume")
    assert (resumed["approval"], resumed["approval_id"]) == ("approved", approval_id(waiting))
    tool = events(result, "tool")[-1]
    assert (tool["state"], tool["output"]["amount_usd"]) == ("succeeded", 500.0)
    with pytest.raises(warden.RunError) as err:
        runner.resume(waiting.run_id)
    assert err.value.code == "W-RUN-002"
    assert len(tools.BACKEND.charges) == 1


def test_a_denied_payment_is_told_to_the_model_and_the_run_goes_on(
    gate: warden.Gate, store: SQLiteStore, approvals: Approvals, tools: ModuleType
) -> None:
    model = Watched(scripted(PAY_500, {"text": "Finance said no."}))
    runner = Runner(gate, model)
    waiting = runner.run(Task(agent="clerk", goal="Pay acme 500"))
    approvals.deny(approval_id(waiting), approver="fiona", reason="not in the contract")

    result = runner.resume(waiting.run_id)

    assert (result.status, result.answer) == (RunStatus.SUCCEEDED, "Finance said no.")
    told = [m for m in model.requests[-1].messages if m.role is Role.TOOL]
    assert [(m.content, m.is_error) for m in told] == [
        ("A person did not approve this call (fiona: not in the contract); it was not made.", True)
    ]
    assert tools.BACKEND.charges == []
    row = store.run(waiting.run_id)
    assert row is not None
    assert [a.state for a in row.actions] == [ActionState.REJECTED]


def test_resume_ready_resumes_only_the_runs_whose_approval_is_decided(
    gate: warden.Gate, store: SQLiteStore, approvals: Approvals, tools: ModuleType
) -> None:
    runner = Runner(gate, scripted(PAY_500, DONE))
    pending, approved, denied = (
        runner.run(Task(agent="clerk", goal=f"Pay acme 500 ({n})")) for n in range(3)
    )
    finished = Runner(gate, scripted(DONE)).run(Task(agent="clerk", goal="Nothing to pay"))
    assert runner.resume_ready() == []
    approvals.approve(approval_id(approved), approver="frank")
    approvals.deny(approval_id(denied), approver="fiona", reason="duplicate")

    resumed = runner.resume_ready()

    assert {(r.run_id, r.status) for r in resumed} == {
        (approved.run_id, RunStatus.SUCCEEDED),
        (denied.run_id, RunStatus.SUCCEEDED),
    }
    assert [r.id for r in store.runs(status=RunStatus.WAITING)] == [pending.run_id]
    assert finished.status is RunStatus.SUCCEEDED
    assert len(tools.BACKEND.charges) == 1
    assert runner.resume_ready() == []


def test_an_expired_approval_lets_the_run_go_on(
    gate: warden.Gate, clock: warden.FixedClock, tools: ModuleType
) -> None:
    runner = Runner(gate, scripted(PAY_500, {"text": "Nobody approved it."}))
    waiting = runner.run(Task(agent="clerk", goal="Pay acme 500"))
    clock.advance(2 * 3600)  # the project's approvals expire after 1h

    (result,) = runner.resume_ready()

    assert (result.run_id, result.status) == (waiting.run_id, RunStatus.SUCCEEDED)
    assert tools.BACKEND.charges == []


# --- a process that dies --------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["between steps", "inside the tool, after the charge"],
)
def test_a_run_resumes_after_a_crash_without_repeating_a_completed_payment(
    open_gate: Callable[[], warden.Gate], tools: ModuleType, where: str
) -> None:
    script = scripted(uses("pay", payee="acme", amount_usd=50), {"text": "Paid."})
    first = open_gate()
    if where == "between steps":
        model: Any = Watched(script, crash_on=2)  # dies asking for turn 2
    else:
        model = script
        tools.CRASH_AFTER[1] = Crash("the process died before the charge was recorded")
    with pytest.raises(Crash):
        Runner(first, model).run(Task(agent="clerk", goal="Pay acme 50", run_id="run_crash"))
    assert len(tools.BACKEND.charges) == 1
    first.executor.close()
    store_of(first).close()

    result = Runner(open_gate(), script).resume("run_crash")

    assert (result.status, result.answer) == (RunStatus.SUCCEEDED, "Paid.")
    assert len(tools.BACKEND.charges) == 1
    assert result.tool_calls == 1
    (tool,) = events(result, "tool")
    assert (tool["state"], tool["replayed"]) == ("succeeded", True)


AMOUNTS = st.integers(min_value=1, max_value=100)
CALLS = st.tuples(st.sampled_from(["acme", "globex"]), AMOUNTS)
TURNS = st.lists(st.lists(CALLS, min_size=1, max_size=3), min_size=1, max_size=5)
CRASHES = st.none() | st.tuples(st.sampled_from(["model", "tool"]), st.integers(1, 8))


@settings(max_examples=30, deadline=None)
@given(turns=TURNS, crash=CRASHES)
def test_every_proposed_payment_is_charged_once_however_the_run_is_interrupted(
    shop: warden.Project, turns: list[list[tuple[str, int]]], crash: tuple[str, int] | None
) -> None:
    tools = shop_tools()
    script = scripted(
        *({"calls": [{"pay": {"payee": p, "amount_usd": a}} for p, a in turn]} for turn in turns),
        DONE,
    )
    model: Any = script
    if crash is not None and crash[0] == "model":
        model = Watched(script, crash_on=crash[1])
    elif crash is not None:
        tools.CRASH_AFTER[crash[1]] = Crash("the process died after a charge")
    clock = warden.FixedClock("2026-03-01T09:00:00+00:00")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "warden.db"
        result: RunResult | None = None
        with SQLiteStore(db) as store:
            gate = shop.gate(store=store, clock=clock)
            try:
                result = Runner(gate, model).run(
                    Task(agent="clerk", goal="Pay them", run_id="run_prop")
                )
            except Crash:
                assert crash is not None
                event(f"crashed in the {crash[0]}")
            gate.executor.close()
        with SQLiteStore(db) as store:
            gate = shop.gate(store=store, clock=clock)
            runner = Runner(gate, script)
            if result is None:
                result = runner.resume("run_prop")

            assert result.status is RunStatus.SUCCEEDED
            charges = tools.BACKEND.charges
            assert Counter((c["payee"], c["amount_usd"]) for c in charges) == Counter(
                (p, float(a)) for turn in turns for p, a in turn
            )
            assert len({c["key"] for c in charges}) == len(charges)
            assert result.tool_calls == len(charges)
            with pytest.raises(warden.RunError) as err:
                runner.resume("run_prop")
            assert err.value.code == "W-RUN-002"
            gate.executor.close()
