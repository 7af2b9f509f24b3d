"""A Pydantic AI agent whose tool calls go through Warden, offline.

    python examples/integrations/pydantic_ai/agent.py

Pydantic AI's FunctionModel plays the agent: it asks for three refunds at once. Warden
runs the small one, denies the huge one (the model reads why) and defers the third until a
support lead approves it in Warden; the resumed run executes it exactly once. The model's
usage is charged to the Warden run, and the run's UsageLimits come from the agent's budgets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import warden
from warden.execution import Approvals
from warden.integrations.pydantic_ai import WardenCapability

SHOP = Path(__file__).resolve().parents[1] / "shop"
RUN_ID = "run_pydantic_ai_1"  # the run's conversation id is the Warden run id


def refund(call_id: str, order_id: str, amount_usd: float) -> ToolCallPart:
    args = {"order_id": order_id, "amount_usd": amount_usd, "reason": "damaged in transit"}
    return ToolCallPart("refund_order", args, tool_call_id=call_id)


def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The agent's turns: three refunds, then a summary once every call is answered."""
    usage = RequestUsage(input_tokens=400, output_tokens=60)
    if len(messages) == 1:
        calls = [
            refund("call_1", "ord_1001", 20.0),
            refund("call_2", "ord_1003", 900.0),
            refund("call_3", "ord_1002", 120.0),
        ]
        return ModelResponse(parts=calls, usage=usage)
    text = "Two refunds are done; the $900 one goes to finance."
    return ModelResponse(parts=[TextPart(text)], usage=usage)


def show(messages: list[ModelMessage]) -> None:
    for m in messages:
        for part in m.parts if isinstance(m, ModelRequest) else ():
            if isinstance(part, ToolReturnPart):
                print(f"  tool {part.tool_name} [{part.outcome}] -> {part.content}")


async def main() -> None:
    project = warden.load_project(SHOP)
    store = warden.SQLiteStore.temporary()  # removed again on close
    gate = project.gate(store=store, ids=warden.CountingIds())
    approvals = Approvals(gate.executor.store, roles=project.roles, clock=gate.clock)
    import shop_tools  # the shop's module; loading the project made it importable

    governed = WardenCapability(gate, agent="shop_agent", on_behalf_of="alex")
    agent = Agent(
        FunctionModel(play), capabilities=[governed], output_type=[str, DeferredToolRequests]
    )
    limits = governed.usage_limits(RUN_ID)
    print(
        f"usage limits from the budgets: {limits.tool_calls_limit} tool calls, "
        f"{limits.total_tokens_limit} tokens"
    )

    print("1. the agent asks for three refunds")
    result = await agent.run(
        "Refund ord_1001, ord_1003, ord_1002", conversation_id=RUN_ID, usage_limits=limits
    )
    show(result.all_messages())
    deferred = result.output
    assert isinstance(deferred, DeferredToolRequests)
    for call in deferred.approvals:
        needs: Any = deferred.metadata[call.tool_call_id]["needs"]
        print(f"  deferred: {call.tool_name} {call.args_as_dict()['order_id']} needs {needs}")

    print("2. people decide in Warden")
    approval_id = deferred.metadata["call_3"]["approval_id"]
    try:
        approvals.approve(approval_id, approver="alex")
    except warden.ApprovalError as exc:
        print(f"  alex (the run acts for alex) cannot approve: {exc.code}")
    approvals.approve(approval_id, approver="sam", reason="the parcel photo shows the damage")
    print("  sam (support_lead) approves")

    print("3. the run resumes with Warden's verdicts; the approved refund runs once")
    answers = governed.toolset.results(deferred, run_id=RUN_ID)
    result = await agent.run(
        message_history=result.all_messages(),
        deferred_tool_results=answers,
        usage_limits=governed.usage_limits(RUN_ID),
    )
    show(result.new_messages())
    print(f"  model: {result.output}")
    print(f"refund_order ran {shop_tools.BACKEND.calls} times")
    ledger = gate.store.ledger(RUN_ID)
    assert ledger is not None
    print(f"run {RUN_ID}: {ledger.committed_calls} tool calls, {ledger.committed_tokens} tokens")
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
