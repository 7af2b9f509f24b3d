"""A LangChain agent whose tool calls go through Warden, offline.

    python examples/integrations/langchain/agent.py

LangChain's fake chat model plays the agent: it asks for three refunds at once. Warden runs
the small one, denies the huge one (the model reads why) and pauses the graph on the third
until a support lead approves it in Warden; the resumed graph runs it exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

import warden
from warden.execution import Approvals
from warden.integrations.langchain import WardenMiddleware, resume, warden_interrupts

SHOP = Path(__file__).resolve().parents[1] / "shop"


class ScriptedChat(GenericFakeChatModel):
    """LangChain's fake chat model; it answers from its script whatever tools it is given."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:
        return self


def refund(call_id: str, order_id: str, amount_usd: float) -> dict[str, Any]:
    args = {"order_id": order_id, "amount_usd": amount_usd, "reason": "damaged in transit"}
    return {"name": "refund_order", "args": args, "id": call_id}


def show(messages: list[Any]) -> None:
    for m in messages:
        if isinstance(m, ToolMessage):
            print(f"  tool {m.name} [{m.status}] -> {m.content}")
        elif isinstance(m, AIMessage) and m.content:
            print(f"  model: {m.content}")


def main() -> None:
    project = warden.load_project(SHOP)
    store = warden.SQLiteStore.temporary()  # removed again on close
    gate = project.gate(store=store, ids=warden.CountingIds())
    approvals = Approvals(gate.executor.store, roles=project.roles, clock=gate.clock)
    import shop_tools  # the shop's module; loading the project made it importable

    model = ScriptedChat(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        refund("call_1", "ord_1001", 20.0),
                        refund("call_2", "ord_1003", 900.0),
                        refund("call_3", "ord_1002", 120.0),
                    ],
                ),
                AIMessage(content="Two refunds are done; the $900 one goes to finance."),
            ]
        )
    )
    warden_mw = WardenMiddleware(gate, agent="shop_agent", on_behalf_of="alex")
    agent = create_agent(model, middleware=[warden_mw], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "run_langchain_1"}}  # the Warden run id

    print("1. the agent asks for three refunds")
    result = agent.invoke({"messages": [("user", "Refund ord_1001, ord_1003, ord_1002")]}, config)
    show(result["messages"])
    paused = warden_interrupts(result)
    for i in paused:
        print(f"  paused: {i.value['tool']} {i.value['args']['order_id']} needs {i.value['needs']}")

    print("2. people decide in Warden")
    approval_id = paused[0].value["approval_id"]
    try:
        approvals.approve(approval_id, approver="alex")
    except warden.ApprovalError as exc:
        print(f"  alex (the run acts for alex) cannot approve: {exc.code}")
    approvals.approve(approval_id, approver="sam", reason="the parcel photo shows the damage")
    print("  sam (support_lead) approves")

    print("3. the graph resumes; the approved refund runs once")
    result = agent.invoke(resume(result), config)
    show(result["messages"][-2:])
    print(f"refund_order ran {shop_tools.BACKEND.calls} times")
    run = gate.executor.store.run("run_langchain_1")
    assert run is not None
    for a in sorted(run.actions, key=lambda a: a.args["order_id"]):
        print(f"  recorded: {a.tool} {a.args['order_id']}: {a.outcome} -> {a.state.value}")
    store.close()


if __name__ == "__main__":
    main()
