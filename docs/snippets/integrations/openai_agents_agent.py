"""An OpenAI Agents SDK agent under Warden: a refund waits for a support lead, then runs once."""

import asyncio
from pathlib import Path

from agents import Agent, RunConfig, Runner
from agents.testing import ScriptedModel, assistant_message, function_call

import warden
from warden.execution import Approvals
from warden.integrations.openai_agents import WardenTools

project = warden.load_project(Path(__file__).parents[3] / "examples/integrations/shop")
store = warden.SQLiteStore.temporary()  # a real deployment keeps one database file
gate = project.gate(store=store, ids=warden.CountingIds())

tools = WardenTools(gate, agent="shop_agent", run_id="run_42", on_behalf_of="alex")
refund = {"order_id": "ord_1002", "amount_usd": 120.0, "reason": "damaged"}
model = ScriptedModel(  # the SDK's test model stands in for a real one, offline
    [
        [function_call("refund_order", refund, call_id="call_1")],
        [assistant_message("Refunded.")],
    ]
)
agent = Agent(name="shop_agent", model=model, tools=tools.tools)
config = RunConfig(tracing_disabled=True)


async def main() -> None:
    result = await Runner.run(agent, "Refund order ord_1002", hooks=tools.hooks, run_config=config)
    print("interrupted:", [item.tool_name for item in result.interruptions])

    # a support lead approves in Warden, as `warden approvals approve ID --as sam` would
    request = tools.governor.approval_for("run_42", "call_1")
    assert request is not None
    Approvals(store, roles=project.roles, clock=gate.clock).approve(request.id, approver="sam")

    state = result.to_state()
    print("still pending:", tools.results(state))  # answers the SDK from Warden's verdicts
    result = await Runner.run(agent, state, hooks=tools.hooks, run_config=config)
    print("tool:", result.new_items[-2].output)
    print("model:", result.final_output)


asyncio.run(main())
store.close()
