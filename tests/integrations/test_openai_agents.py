"""WardenTools in a real OpenAI Agents SDK run, played by the SDK's ScriptedModel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    RunConfig,
    Runner,
    ToolInputGuardrailTripwireTriggered,
    set_trace_processors,
)
from agents.items import ToolCallOutputItem
from agents.result import RunResult
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

import warden
from warden.approvals import ApprovalStatus
from warden.execution import Approvals
from warden.integrations import IntegrationError
from warden.integrations.openai_agents import WardenTools, WardenTraceProcessor
from warden.runs import ActionState, RunStatus

from .conftest import HUGE, LARGE, SMALL

RUN = "run_sdk_1"
QUIET = RunConfig(tracing_disabled=True)


def call(call_id: str, tool: str, args: dict[str, Any]) -> Any:
    return function_call(tool, args, call_id=call_id)


def step(*outputs: Any, tokens: int = 100) -> ModelStep:
    return ModelStep(
        output=list(outputs),
        usage=Usage(requests=1, input_tokens=tokens, output_tokens=0, total_tokens=tokens),
    )


@pytest.fixture
def tools(gate: warden.Gate) -> WardenTools:
    return WardenTools(gate, agent="shop_agent", run_id=RUN, on_behalf_of="alex")


Play = Callable[..., RunResult]


@pytest.fixture
def play(tools: WardenTools) -> Iterator[Callable[..., Any]]:
    """Build an agent over a script of model steps (a last "done" answer is added)."""

    def make(*steps: ModelStep, traced: bool = False) -> tuple[Agent[Any], ScriptedModel]:
        model = ScriptedModel([*steps, step(assistant_message("done"))], emit_traces=traced)
        return Agent(name="shop_agent", model=model, tools=tools.tools), model

    yield make
    set_trace_processors([])


def run(agent: Agent[Any], start: Any, tools: WardenTools, config: RunConfig = QUIET) -> Any:
    return asyncio.run(Runner.run(agent, start, hooks=tools.hooks, run_config=config))


def outputs(result: Any) -> list[str]:
    return [str(i.output) for i in result.new_items if isinstance(i, ToolCallOutputItem)]


def test_an_allowed_call_executes_once_and_the_model_gets_its_result(
    play: Callable[..., Any], tools: WardenTools, gate: warden.Gate, backend: Any
) -> None:
    agent, model = play(step(call("c1", "refund_order", SMALL)))
    result = run(agent, "refund please", tools)
    assert result.final_output == "done"
    assert outputs(result) == ['{"refund_id": "re_1", "amount_usd": 20.0}']
    assert backend.calls == 1
    assert "re_1" in str(model.last_call.input if model.last_call else "")
    run_view = gate.executor.store.run(RUN)
    assert run_view is not None
    assert [a.state for a in run_view.actions] == [ActionState.SUCCEEDED]


def test_a_denied_call_reaches_the_model_and_never_runs(
    play: Callable[..., Any], tools: WardenTools, backend: Any
) -> None:
    agent, model = play(step(call("c1", "refund_order", HUGE)))
    result = run(agent, "refund please", tools)
    denied = "Denied [W-POL-101]: refunds over $500 go through the finance team"
    assert outputs(result) == [denied]
    assert denied in str(model.last_call.input if model.last_call else "")
    assert backend.calls == 0
    [guarded] = result.tool_input_guardrail_results
    assert guarded.output.output_info["code"] == "W-POL-101"


def test_an_approval_interrupts_the_run_and_runs_once_after_people_approve_in_warden(
    play: Callable[..., Any],
    tools: WardenTools,
    gate: warden.Gate,
    approvals: Approvals,
    backend: Any,
) -> None:
    agent, _ = play(step(call("c1", "refund_order", SMALL), call("c2", "refund_order", LARGE)))
    result = run(agent, "refund please", tools)
    [item] = result.interruptions
    assert item.tool_name == "refund_order" and backend.calls == 1

    state = result.to_state()
    assert [i.tool_name for i in tools.results(state)] == ["refund_order"]  # still pending
    request = tools.governor.approval_for(RUN, "c2")
    assert request is not None
    approvals.approve(request.id, approver="sam")
    assert tools.results(state) == []

    result = run(agent, state, tools)
    assert result.final_output == "done"
    assert outputs(result)[-1] == '{"refund_id": "re_2", "amount_usd": 120.0}'
    assert backend.calls == 2
    used = gate.executor.store.approval(request.id)
    assert used is not None and used.status is ApprovalStatus.USED


def test_an_unanswered_interruption_stays_interrupted(
    play: Callable[..., Any], tools: WardenTools, approvals: Approvals, backend: Any
) -> None:
    agent, _ = play(step(call("c1", "refund_order", LARGE)))
    result = run(agent, "refund please", tools)
    request = tools.governor.approval_for(RUN, "c1")
    assert request is not None
    approvals.approve(request.id, approver="sasha")
    again = run(agent, result.to_state(), tools)  # the SDK does not ask needs_approval again
    assert [i.tool_name for i in again.interruptions] == ["refund_order"]
    assert backend.calls == 0
    state = again.to_state()
    assert tools.results(state) == []
    done = run(agent, state, tools)
    assert done.final_output == "done" and backend.calls == 1


def test_a_rejection_in_warden_reaches_the_model_and_the_call_never_runs(
    play: Callable[..., Any], tools: WardenTools, approvals: Approvals, backend: Any
) -> None:
    agent, model = play(step(call("c1", "refund_order", LARGE)))
    state = run(agent, "refund please", tools).to_state()
    request = tools.governor.approval_for(RUN, "c1")
    assert request is not None
    approvals.deny(request.id, approver="sam", reason="already refunded")
    assert tools.results(state) == []
    result = run(agent, state, tools)
    assert "sam: already refunded" in str(model.last_call.input if model.last_call else "")
    assert result.final_output == "done" and backend.calls == 0


def test_the_sdks_approval_alone_does_not_run_the_call(
    play: Callable[..., Any], tools: WardenTools, backend: Any
) -> None:
    agent, _ = play(step(call("c1", "refund_order", LARGE)))
    result = run(agent, "refund please", tools)
    state = result.to_state()
    state.approve(result.interruptions[0])
    with pytest.raises(ToolInputGuardrailTripwireTriggered) as refused:
        run(agent, state, tools)
    assert refused.value.output.output_info["code"] == "W-INT-003"
    assert backend.calls == 0


def test_a_stop_ends_the_run_with_the_sdks_tripwire(
    play: Callable[..., Any], tools: WardenTools, gate: warden.Gate, backend: Any
) -> None:
    look = {"order_id": "ord_1001"}
    agent, _ = play(step(*(call(f"c{i}", "lookup_order", look) for i in range(3))))
    with pytest.raises(ToolInputGuardrailTripwireTriggered) as tripped:
        run(agent, "look it up", tools)
    assert tripped.value.output.output_info["code"] == "W-LOOP-001"
    run_view = gate.executor.store.run(RUN)
    assert run_view is not None and run_view.status is RunStatus.ESCALATED


def test_a_call_over_the_budget_ends_the_run_with_the_sdks_tripwire(
    play: Callable[..., Any], tools: WardenTools, gate: warden.Gate, backend: Any
) -> None:
    agent, _ = play(step(call("c1", "lookup_order", {"order_id": "ord_1001"}), tokens=4500))
    with pytest.raises(ToolInputGuardrailTripwireTriggered) as tripped:
        run(agent, "look it up", tools)
    assert tripped.value.output.output_info["code"] == "W-BUD-003"


def test_model_usage_counts_against_the_budget_and_a_spent_one_stops_the_next_model_call(
    play: Callable[..., Any], tools: WardenTools, gate: warden.Gate, backend: Any
) -> None:
    look = call("c1", "lookup_order", {"order_id": "ord_1001"})
    agent, model = play(step(look), step(assistant_message("found it"), tokens=4400))
    run(agent, "first task step", tools)
    ledger = gate.store.ledger(RUN)
    assert ledger is not None and ledger.committed_tokens == 4500
    with pytest.raises(IntegrationError) as stopped:
        run(agent, "next step of the same run", tools)
    assert stopped.value.code == "W-INT-004" and "W-BUD-003" in stopped.value.message
    assert model.remaining_steps == 1  # the model was not asked again
    run_view = gate.executor.store.run(RUN)
    assert run_view is not None and run_view.status is RunStatus.ESCALATED


def test_the_trace_processor_records_spans_with_warden_decisions(
    play: Callable[..., Any], tools: WardenTools, gate: warden.Gate, backend: Any
) -> None:
    processor = WardenTraceProcessor(tools)
    set_trace_processors([processor])
    agent, _ = play(
        step(call("c1", "refund_order", SMALL), call("c2", "refund_order", HUGE)), traced=True
    )
    run(agent, "refund please", tools, RunConfig())
    records = processor.records
    kinds = {r.kind for r in records}
    assert {"agent", "function", "generation"} <= kinds
    decided = {r.warden["code"]: r for r in records if r.warden is not None}
    assert set(decided) == {None, "W-POL-101"}
    ran = decided[None].warden
    assert ran is not None and ran["state"] == "succeeded"
    action = gate.executor.store.action(ran["action_id"])
    assert action is not None and action.tool == "refund_order" and action.run_id == RUN
    assert all(r.trace_id == records[0].trace_id for r in records)
    assert any(r.usage for r in records)
