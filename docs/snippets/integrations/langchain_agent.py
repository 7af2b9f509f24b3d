"""A LangChain agent under Warden: a refund waits for a support lead, then runs once."""

from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

import warden
from warden.execution import Approvals
from warden.integrations.langchain import WardenMiddleware, resume, warden_interrupts

project = warden.load_project(Path(__file__).parents[3] / "examples/integrations/shop")
store = warden.SQLiteStore.temporary()  # a real deployment keeps one database file
gate = project.gate(store=store, ids=warden.CountingIds())


class FakeChat(GenericFakeChatModel):  # stands in for a real chat model, offline
    def bind_tools(self, tools: Any, **kwargs: Any) -> "FakeChat":
        return self


refund = {"order_id": "ord_1002", "amount_usd": 120.0, "reason": "damaged"}
model = FakeChat(
    messages=iter(
        [
            AIMessage("", tool_calls=[{"name": "refund_order", "args": refund, "id": "call_1"}]),
            AIMessage("Refunded."),
        ]
    )
)
agent = create_agent(
    model,
    middleware=[WardenMiddleware(gate, agent="shop_agent", on_behalf_of="alex")],
    checkpointer=InMemorySaver(),  # a graph that pauses needs a checkpointer
)
config: Any = {"configurable": {"thread_id": "run_42"}}  # the thread is the Warden run

result = agent.invoke({"messages": [("user", "Refund order ord_1002")]}, config)
[paused] = warden_interrupts(result)
print("paused:", paused.value["approval_id"], "needs", paused.value["needs"])

# a support lead approves in Warden, as `warden approvals approve ID --as sam` would
approvals = Approvals(gate.executor.store, roles=project.roles, clock=gate.clock)
approvals.approve(paused.value["approval_id"], approver="sam")

result = agent.invoke(resume(result), config)  # the approved refund runs, once
for message in result["messages"][-2:]:
    print(f"{message.type}: {message.content}")
store.close()
