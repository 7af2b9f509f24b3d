"""WardenMiddleware in a real LangChain v1 agent, played by LangChain's fake chat model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import pytest

pytest.importorskip("langchain")

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import warden
from warden.approvals import ApprovalStatus
from warden.execution import Approvals
from warden.integrations import IntegrationError
from warden.integrations.langchain import WardenMiddleware, resume, warden_interrupts
from warden.runs import ActionState, RunStatus

from .conftest import HUGE, LARGE, SMALL

RUN = "thread_1"
CONFIG: Any = {"configurable": {"thread_id": RUN}}


class ScriptedChat(GenericFakeChatModel):
    """LangChain's fake chat model; it plays its script whatever tools it is bound to."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:
        return self


def turn(*calls: tuple[str, str, dict[str, Any]]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": i} for i, n, a in calls])


Build = Callable[..., Any]


@pytest.fixture
def build(gate: warden.Gate) -> Build:
    def make(*turns: AIMessage, checkpointer: Any = True, **options: Any) -> Any:
        script = [*turns, AIMessage(content="done")]
        options.setdefault("agent", "shop_agent")
        options.setdefault("on_behalf_of", "alex")
        return create_agent(
            ScriptedChat(messages=iter(script)),
            middleware=[WardenMiddleware(gate, **options)],
            checkpointer=InMemorySaver() if checkpointer else None,
        )

    return make


def ask(agent: Any, text: str = "refund please") -> dict[str, Any]:
    return agent.invoke({"messages": [("user", text)]}, CONFIG)


def tool_messages(messages: Iterable[BaseMessage]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


def test_an_allowed_call_executes_once_and_the_model_gets_its_result(
    build: Build, gate: warden.Gate, backend: Any
) -> None:
    result = ask(build(turn(("call_1", "refund_order", SMALL))))
    answer = tool_messages(result["messages"])["call_1"]
    assert answer.status == "success"
    assert '"amount_usd": 20.0' in str(answer.content)
    assert backend.calls == 1
    action = gate.executor.store.action(answer.artifact["warden"]["action_id"])
    assert action is not None and action.state is ActionState.SUCCEEDED
    assert action.run_id == RUN  # the thread id is the Warden run id
    assert result["messages"][-1].content == "done"


def test_a_denied_call_reaches_the_model_as_an_error_and_never_runs(
    build: Build, backend: Any
) -> None:
    result = ask(
        build(turn(("call_1", "refund_order", HUGE), ("call_2", "delete_account", {"x": 1})))
    )
    answers = tool_messages(result["messages"])
    assert answers["call_1"].status == "error"
    assert answers["call_1"].content == (
        "Denied [W-POL-101]: refunds over $500 go through the finance team"
    )
    assert answers["call_2"].status == "error"
    assert str(answers["call_2"].content).startswith("Denied [W-IDN-003]")
    assert backend.calls == 0


def test_an_approval_pauses_the_graph_and_runs_once_after_people_approve_in_warden(
    build: Build, gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    agent = build(turn(("call_1", "refund_order", LARGE)))
    result = ask(agent)
    [paused] = warden_interrupts(result)
    assert paused.value["needs"] == "support_lead" and paused.value["tool"] == "refund_order"
    approval_id = paused.value["approval_id"]
    assert backend.calls == 0

    result = agent.invoke(resume(result), CONFIG)  # still pending: the graph pauses again
    [again] = warden_interrupts(result)
    assert again.value["approval_id"] == approval_id and backend.calls == 0

    approvals.approve(approval_id, approver="sam", reason="photo shows the damage")
    result = agent.invoke(resume(result), CONFIG)
    assert not warden_interrupts(result)
    assert tool_messages(result["messages"])["call_1"].status == "success"
    assert result["messages"][-1].content == "done"
    assert backend.calls == 1
    request = gate.executor.store.approval(approval_id)
    assert request is not None and request.status is ApprovalStatus.USED


def test_a_rejection_in_warden_reaches_the_model_and_the_call_never_runs(
    build: Build, approvals: Approvals, backend: Any
) -> None:
    agent = build(turn(("call_1", "refund_order", LARGE)))
    result = ask(agent)
    approval_id = warden_interrupts(result)[0].value["approval_id"]
    approvals.deny(approval_id, approver="sasha", reason="already refunded")
    result = agent.invoke(resume(result), CONFIG)
    answer = tool_messages(result["messages"])["call_1"]
    assert answer.status == "error"
    assert "[W-APR-007] (sasha: already refunded)" in str(answer.content)
    assert backend.calls == 0


def test_a_rejection_in_the_framework_is_honoured(
    build: Build, gate: warden.Gate, backend: Any
) -> None:
    agent = build(turn(("call_1", "refund_order", LARGE)))
    result = ask(agent)
    [paused] = warden_interrupts(result)
    answer = {paused.id: {"type": "reject", "message": "not today"}}
    result = agent.invoke(Command(resume=answer), CONFIG)
    message = tool_messages(result["messages"])["call_1"]
    assert message.status == "error" and "not today" in str(message.content)
    assert backend.calls == 0
    request = gate.executor.store.approval(paused.value["approval_id"])
    assert request is not None and request.status is ApprovalStatus.PENDING


def test_a_framework_approval_alone_runs_nothing(build: Build, backend: Any) -> None:
    agent = build(turn(("call_1", "refund_order", LARGE)))
    result = ask(agent)
    [paused] = warden_interrupts(result)
    result = agent.invoke(Command(resume={paused.id: {"type": "approve"}}), CONFIG)
    assert warden_interrupts(result) and backend.calls == 0


def test_a_stop_ends_the_graph_before_the_model_is_asked_again(
    build: Build, gate: warden.Gate, backend: Any
) -> None:
    look = {"order_id": "ord_1001"}
    agent = build(turn(*((f"call_{i}", "lookup_order", look) for i in range(3))))
    result = ask(agent)
    stop = result["warden_stop"]
    assert stop["code"] == "W-LOOP-001" and stop["run_id"] == RUN
    assert isinstance(result["messages"][-1], ToolMessage)  # no "done": the model was not asked
    run = gate.executor.store.run(RUN)
    assert run is not None and run.status is RunStatus.ESCALATED


def test_the_run_id_can_be_given_instead_of_the_thread_id(
    build: Build, gate: warden.Gate, backend: Any
) -> None:
    agent = build(turn(("call_1", "refund_order", SMALL)), run_id=lambda config: "run_custom")
    ask(agent)
    assert gate.executor.store.run("run_custom") is not None


def test_a_call_without_a_run_id_is_refused(build: Build, backend: Any) -> None:
    agent = build(turn(("call_1", "refund_order", SMALL)), checkpointer=False)
    with pytest.raises(IntegrationError) as refused:
        agent.invoke({"messages": [("user", "refund please")]})
    assert refused.value.code == "W-INT-002"
    assert backend.calls == 0


def test_the_async_agent_is_governed_the_same_way(
    build: Build, approvals: Approvals, backend: Any
) -> None:
    agent = build(turn(("call_1", "refund_order", SMALL), ("call_2", "refund_order", LARGE)))

    async def go() -> dict[str, Any]:
        result = await agent.ainvoke({"messages": [("user", "refund please")]}, CONFIG)
        approvals.approve(warden_interrupts(result)[0].value["approval_id"], approver="sam")
        return await agent.ainvoke(resume(result), CONFIG)

    result = asyncio.run(go())
    answers = tool_messages(result["messages"])
    assert answers["call_1"].status == "success" and answers["call_2"].status == "success"
    assert backend.calls == 2


def test_its_tools_run_only_through_the_middleware(gate: warden.Gate, backend: Any) -> None:
    middleware = WardenMiddleware(gate, agent="shop_agent")
    assert sorted(t.name for t in middleware.tools) == ["lookup_order", "refund_order"]
    refund = next(t for t in middleware.tools if t.name == "refund_order")
    with pytest.raises(IntegrationError) as refused:
        refund.invoke(SMALL)
    assert refused.value.code == "W-INT-005" and backend.calls == 0


def spent(message: AIMessage, tokens: int) -> AIMessage:
    message.usage_metadata = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    return message


def test_model_usage_counts_against_the_budget_and_a_spent_one_ends_the_graph(
    build: Build, gate: warden.Gate, backend: Any
) -> None:
    look = ("call_1", "lookup_order", {"order_id": "ord_1001"})
    agent = build(spent(turn(look), 100), spent(AIMessage(content="found it"), 4400))
    first = ask(agent)
    assert first["messages"][-1].content == "found it"
    ledger = gate.store.ledger(RUN)
    assert ledger is not None and ledger.committed_tokens == 4500

    second = ask(agent, "and the other order?")  # the model is not asked: the budget is spent
    assert second["warden_stop"]["code"] == "W-BUD-003"
    assert second["messages"][-1].content == "and the other order?"
    run = gate.executor.store.run(RUN)
    assert run is not None and run.status is RunStatus.ESCALATED


def test_a_call_over_the_budget_stops_the_run(build: Build, backend: Any) -> None:
    agent = build(spent(turn(("call_1", "refund_order", SMALL)), 4500))
    result = ask(agent)
    assert result["warden_stop"]["code"] == "W-BUD-003" and backend.calls == 0
