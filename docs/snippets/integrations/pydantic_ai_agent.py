"""A Pydantic AI agent under Warden: a refund waits for a support lead, then runs once."""

import asyncio
from pathlib import Path

from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import warden
from warden.execution import Approvals
from warden.integrations.pydantic_ai import WardenCapability

project = warden.load_project(Path(__file__).parents[3] / "examples/integrations/shop")
store = warden.SQLiteStore.temporary()  # a real deployment keeps one database file
gate = project.gate(store=store, ids=warden.CountingIds())


def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Stands in for a real model, offline: one refund, then a word once it is answered."""
    if len(messages) == 1:
        refund = {"order_id": "ord_1002", "amount_usd": 120.0, "reason": "damaged"}
        return ModelResponse(parts=[ToolCallPart("refund_order", refund, tool_call_id="call_1")])
    return ModelResponse(parts=[TextPart("Refunded.")])


governed = WardenCapability(gate, agent="shop_agent", on_behalf_of="alex")
agent = Agent(FunctionModel(play), capabilities=[governed], output_type=[str, DeferredToolRequests])


async def main() -> None:
    limits = governed.usage_limits("run_42")  # what the agent's budgets leave for this run
    result = await agent.run("Refund order ord_1002", conversation_id="run_42", usage_limits=limits)
    deferred = result.output
    assert isinstance(deferred, DeferredToolRequests)
    approval = deferred.metadata["call_1"]
    print("deferred:", approval["approval_id"], "needs", approval["needs"])

    # a support lead approves in Warden, as `warden approvals approve ID --as sam` would
    Approvals(store, roles=project.roles, clock=gate.clock).approve(
        approval["approval_id"], approver="sam"
    )
    result = await agent.run(
        message_history=result.all_messages(),  # keeps conversation_id, the Warden run
        deferred_tool_results=governed.toolset.results(deferred, run_id="run_42"),
        usage_limits=governed.usage_limits("run_42"),
    )
    print("model:", result.output)
    ledger = gate.store.ledger("run_42")
    assert ledger is not None
    print("run_42 used", ledger.committed_calls, "tool call and", ledger.committed_tokens, "tokens")


asyncio.run(main())
store.close()
