"""An OpenAI Agents SDK agent whose tool calls go through Warden, offline.

    python examples/integrations/openai_agents/agent.py

The SDK's scripted test model plays the agent: it asks for three refunds at once. Warden
runs the small one, denies the huge one (the guardrail hands the model the reason) and
interrupts the run on the third (``needs_approval``) until a support lead approves it in
Warden; the resumed run executes it exactly once. A trace processor keeps the SDK's spans
joined with Warden's decisions, and model usage counts against the run's budgets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agents import Agent, Runner, set_trace_processors
from agents.items import ToolCallOutputItem
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

import warden
from warden.execution import Approvals
from warden.integrations.openai_agents import WardenTools, WardenTraceProcessor

SHOP = Path(__file__).resolve().parents[1] / "shop"
RUN_ID = "run_openai_agents_1"


def refund(call_id: str, order_id: str, amount_usd: float) -> Any:
    args = {"order_id": order_id, "amount_usd": amount_usd, "reason": "damaged in transit"}
    return function_call("refund_order", args, call_id=call_id)


def show(items: list[Any]) -> None:
    for item in items:
        if isinstance(item, ToolCallOutputItem):
            print(f"  tool output -> {item.output}")


async def main() -> None:
    project = warden.load_project(SHOP)
    store = warden.SQLiteStore.temporary()  # removed again on close
    gate = project.gate(store=store, ids=warden.CountingIds())
    approvals = Approvals(gate.executor.store, roles=project.roles, clock=gate.clock)
    import shop_tools  # the shop's module; loading the project made it importable

    tools = WardenTools(gate, agent="shop_agent", run_id=RUN_ID, on_behalf_of="alex")
    traces = WardenTraceProcessor(tools)
    set_trace_processors([traces])  # instead of the default exporter to OpenAI's backend
    used = Usage(requests=1, input_tokens=400, output_tokens=60, total_tokens=460)
    model = ScriptedModel(
        [
            ModelStep(
                output=[
                    refund("call_1", "ord_1001", 20.0),
                    refund("call_2", "ord_1003", 900.0),
                    refund("call_3", "ord_1002", 120.0),
                ],
                usage=used,
            ),
            ModelStep(
                output=[assistant_message("Two refunds are done; the $900 one goes to finance.")],
                usage=used,
            ),
        ],
        emit_traces=True,
    )
    agent = Agent(name="shop_agent", model=model, tools=tools.tools)

    print("1. the agent asks for three refunds")
    result = await Runner.run(agent, "Refund ord_1001, ord_1003, ord_1002", hooks=tools.hooks)
    show(result.new_items)
    for item in result.interruptions:
        print(f"  interrupted: {item.tool_name} needs approval in Warden")

    print("2. people decide in Warden")
    request = tools.governor.approval_for(RUN_ID, "call_3")
    assert request is not None
    try:
        approvals.approve(request.id, approver="alex")
    except warden.ApprovalError as exc:
        print(f"  alex (the run acts for alex) cannot approve: {exc.code}")
    approvals.approve(request.id, approver="sam", reason="the parcel photo shows the damage")
    print("  sam (support_lead) approves")

    print("3. the run resumes with Warden's verdicts; the approved refund runs once")
    state = result.to_state()
    pending = tools.results(state)  # approves in the SDK what Warden approved
    print(f"  still pending in Warden: {len(pending)}")
    result = await Runner.run(agent, state, hooks=tools.hooks)
    show(result.new_items[-2:])
    print(f"  model: {result.final_output}")
    print(f"refund_order ran {shop_tools.BACKEND.calls} times")
    ledger = gate.store.ledger(RUN_ID)
    assert ledger is not None
    print(f"run {RUN_ID}: {ledger.committed_calls} tool calls, {ledger.committed_tokens} tokens")
    print("spans joined with Warden decisions:")
    for record in traces.records:
        if record.warden is not None:
            w = record.warden
            print(f"  function span {record.name}: {w['state']} {w['code'] or ''}".rstrip())
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
