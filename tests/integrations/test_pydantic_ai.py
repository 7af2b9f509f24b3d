"""WardenCapability in a real Pydantic AI agent, played by its FunctionModel and TestModel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import (
    Agent,
    DeferredToolRequests,
    DeferredToolResults,
    ToolApproved,
    ToolDenied,
    UsageLimitExceeded,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

import warden
from warden.approvals import ApprovalStatus
from warden.execution import Approvals
from warden.integrations import IntegrationError
from warden.integrations.pydantic_ai import WardenCapability
from warden.runs import ActionState, RunStatus

from .conftest import HUGE, LARGE, SMALL

RUN = "conv_1"


def calls(*parts: tuple[str, str, dict[str, Any]], tokens: int = 100) -> ModelResponse:
    return ModelResponse(
        parts=[ToolCallPart(n, a, tool_call_id=i) for i, n, a in parts],
        usage=RequestUsage(input_tokens=tokens, output_tokens=0),
    )


def text(words: str = "done", tokens: int = 100) -> ModelResponse:
    return ModelResponse(parts=[TextPart(words)], usage=RequestUsage(input_tokens=tokens))


@pytest.fixture
def governed(gate: warden.Gate) -> WardenCapability:
    return WardenCapability(gate, agent="shop_agent", on_behalf_of="alex")


@pytest.fixture
def play(governed: WardenCapability) -> Callable[..., tuple[Agent[Any, Any], list[Any]]]:
    """An agent whose model answers with `responses` in turn; `seen` gets each request."""

    def make(*responses: ModelResponse) -> tuple[Agent[Any, Any], list[Any]]:
        script: Iterator[ModelResponse] = iter([*responses, text()])
        seen: list[list[ModelMessage]] = []

        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            seen.append(list(messages))
            return next(script)

        agent = Agent(
            FunctionModel(answer),
            capabilities=[governed],
            output_type=[str, DeferredToolRequests],
        )
        return agent, seen

    return make


def start(agent: Agent[Any, Any], **options: Any) -> Any:
    return asyncio.run(agent.run("refund please", conversation_id=RUN, **options))


def resume(agent: Agent[Any, Any], result: Any, answers: DeferredToolResults) -> Any:
    return asyncio.run(
        agent.run(message_history=result.all_messages(), deferred_tool_results=answers)
    )


def returns(messages: list[ModelMessage]) -> dict[str, ToolReturnPart]:
    return {
        p.tool_call_id: p
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    }


def test_an_allowed_call_executes_once_and_the_model_gets_its_result(
    play: Callable[..., Any], gate: warden.Gate, backend: Any
) -> None:
    agent, _ = play(calls(("c1", "refund_order", SMALL)))
    result = start(agent)
    assert result.output == "done"
    assert returns(result.all_messages())["c1"].content == {"refund_id": "re_1", "amount_usd": 20.0}
    assert backend.calls == 1
    run = gate.executor.store.run(RUN)  # the conversation id is the Warden run id
    assert run is not None and [a.state for a in run.actions] == [ActionState.SUCCEEDED]


def test_the_test_model_calls_the_warden_tools(gate: warden.Gate, backend: Any) -> None:
    governed = WardenCapability(gate, agent="shop_agent")
    agent = Agent(TestModel(call_tools=["lookup_order"]), capabilities=[governed])
    result = asyncio.run(agent.run("look it up", conversation_id=RUN))
    [looked] = returns(result.all_messages()).values()
    assert looked.tool_name == "lookup_order"
    run = gate.executor.store.run(RUN)
    assert run is not None and [a.tool for a in run.actions] == ["lookup_order"]


def test_a_denied_call_reaches_the_model_as_a_failure_and_never_runs(
    play: Callable[..., Any], backend: Any
) -> None:
    agent, seen = play(calls(("c1", "refund_order", HUGE)))
    result = start(agent)
    answer = returns(seen[-1])["c1"]
    assert answer.outcome == "failed"
    assert answer.content == "Denied [W-POL-101]: refunds over $500 go through the finance team"
    assert result.output == "done" and backend.calls == 0


def test_an_approval_defers_the_call_and_it_runs_once_after_people_approve_in_warden(
    play: Callable[..., Any],
    governed: WardenCapability,
    gate: warden.Gate,
    approvals: Approvals,
    backend: Any,
) -> None:
    agent, _ = play(calls(("c1", "refund_order", SMALL), ("c2", "refund_order", LARGE)))
    result = start(agent)
    deferred = result.output
    assert isinstance(deferred, DeferredToolRequests)
    assert [c.tool_call_id for c in deferred.approvals] == ["c2"]
    approval = deferred.metadata["c2"]
    assert approval["needs"] == "support_lead" and backend.calls == 1

    answers = governed.toolset.results(deferred, run_id=RUN)  # pending: ask Warden again
    assert isinstance(answers.approvals["c2"], ToolApproved)
    again = resume(agent, result, answers)
    assert isinstance(again.output, DeferredToolRequests) and backend.calls == 1

    approvals.approve(approval["approval_id"], approver="sam")
    done = resume(agent, again, governed.toolset.results(again.output, run_id=RUN))
    assert done.output == "done"
    assert returns(done.new_messages())["c2"].content == {"refund_id": "re_2", "amount_usd": 120.0}
    assert backend.calls == 2
    request = gate.executor.store.approval(approval["approval_id"])
    assert request is not None and request.status is ApprovalStatus.USED


def test_a_rejection_in_warden_reaches_the_model_and_the_call_never_runs(
    play: Callable[..., Any], governed: WardenCapability, approvals: Approvals, backend: Any
) -> None:
    agent, seen = play(calls(("c1", "refund_order", LARGE)))
    result = start(agent)
    approvals.deny(result.output.metadata["c1"]["approval_id"], approver="sam", reason="fraud")
    answers = governed.toolset.results(result.output, run_id=RUN)
    assert isinstance(answers.approvals["c1"], ToolDenied)
    done = resume(agent, result, answers)
    assert "sam: fraud" in str(returns(seen[-1])["c1"].content)
    assert done.output == "done" and backend.calls == 0


def test_approved_arguments_cannot_be_swapped_in_the_framework(
    play: Callable[..., Any], approvals: Approvals, backend: Any
) -> None:
    agent, _ = play(calls(("c1", "refund_order", LARGE)))
    result = start(agent)
    approvals.approve(result.output.metadata["c1"]["approval_id"], approver="sam")
    swapped = ToolApproved(override_args={**LARGE, "amount_usd": 450.0})
    with pytest.raises(warden.IdempotencyError) as refused:
        resume(agent, result, DeferredToolResults(approvals={"c1": swapped}))
    assert refused.value.code == "W-IDM-001" and backend.calls == 0


def test_a_stop_ends_the_run(play: Callable[..., Any], gate: warden.Gate, backend: Any) -> None:
    look = {"order_id": "ord_1001"}
    agent, _ = play(calls(*((f"c{i}", "lookup_order", look) for i in range(3))))
    with pytest.raises(IntegrationError) as stopped:
        start(agent)
    assert stopped.value.code == "W-INT-004" and "W-LOOP-001" in stopped.value.message
    run = gate.executor.store.run(RUN)
    assert run is not None and run.status is RunStatus.ESCALATED


def test_usage_limits_come_from_the_budgets_and_shrink_with_the_run(
    play: Callable[..., Any], governed: WardenCapability, backend: Any
) -> None:
    limits = governed.usage_limits(RUN)
    assert (limits.tool_calls_limit, limits.total_tokens_limit, limits.cost_limit) == (
        6,
        4000,
        None,
    )
    agent, _ = play(calls(("c1", "lookup_order", {"order_id": "ord_1001"}), tokens=1000))
    start(agent, usage_limits=limits)
    left = governed.usage_limits(RUN, include_cost=True)
    assert (left.tool_calls_limit, left.total_tokens_limit) == (5, 2900)
    assert left.cost_limit is not None and float(left.cost_limit) == pytest.approx(0.5)


def test_model_usage_is_charged_to_the_warden_run(
    play: Callable[..., Any], gate: warden.Gate, backend: Any
) -> None:
    agent, _ = play(calls(("c1", "lookup_order", {"order_id": "ord_1001"}), tokens=700))
    result = start(agent)
    ledger = gate.store.ledger(RUN)
    assert ledger is not None
    assert ledger.committed_tokens == result.usage.total_tokens == 800
    assert ledger.committed_calls == 1


def test_a_spent_warden_budget_refuses_the_next_model_request(
    play: Callable[..., Any], gate: warden.Gate, backend: Any
) -> None:
    look = {"order_id": "ord_1001"}
    agent, seen = play(calls(("c1", "lookup_order", look)), text("more", tokens=4500))
    first = start(agent)
    assert first.output == "more"
    with pytest.raises(UsageLimitExceeded, match=r"W-BUD-003"):
        asyncio.run(agent.run("and now?", message_history=first.all_messages()))
    assert len(seen) == 2  # the third request never reached the model
    run = gate.executor.store.run(RUN)
    assert run is not None and run.status is RunStatus.ESCALATED


def test_the_frameworks_own_limits_stop_a_run_over_the_mapped_budget(
    play: Callable[..., Any], governed: WardenCapability, gate: warden.Gate, backend: Any
) -> None:
    agent, _ = play(calls(("c1", "refund_order", SMALL), tokens=4500))
    with pytest.raises(UsageLimitExceeded, match=r"total_tokens_limit of 4000"):
        start(agent, usage_limits=governed.usage_limits(RUN))
    assert backend.calls == 0 and gate.executor.store.run(RUN) is None
