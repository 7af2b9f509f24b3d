"""One call stopped at each check of the gate, in the gate's order."""

from typing import Any

import warden

project = warden.load_project(".")
gate = project.gate(clock=warden.FixedClock("2026-01-06T10:00:00+00:00"))


def refund(amount_usd: object, order_id: str = "ord_100001") -> dict[str, object]:
    return {
        "order_id": order_id,
        "customer_id": "cus_100",
        "amount_usd": amount_usd,
        "reason": "damaged",
    }


def show(title: str, decision: warden.Decision) -> None:
    print(f"{title:<20} {decision.stage:<12} {decision.outcome:<15} {decision.code or '-'}")
    print(f"    {decision.reasons[0]}")


def call(
    tool: str, args: dict[str, object], agent: str = "refund_bot", **more: Any
) -> warden.ToolCall:
    return warden.ToolCall(agent=agent, tool=tool, args=args, run_id=gate.new_run_id(), **more)


gate.kill("tool:create_refund", by="oncall", reason="refund spike under investigation")
show("kill switch", gate.decide(call("create_refund", refund(30.0))))
gate.unkill("tool:create_refund", by="oncall")

show("unknown agent", gate.decide(call("create_refund", refund(30.0), agent="ghost")))
show("tool not allowed", gate.decide(call("tag_ticket", {"ticket_id": "T-1", "tag": "x"})))
show("bad arguments", gate.decide(call("create_refund", refund("30"))))

same = call("lookup_customer", {"customer_id": "cus_100"})
show("same call 3 times", [gate.decide(same) for _ in range(3)][-1])

show("over budget", gate.decide(call("create_refund", refund(30.0), estimated_usd=0.75)))
show("policy: allow", gate.decide(call("create_refund", refund(30.0))))
show("policy: approval", gate.decide(call("create_refund", refund(120.0))))
show(
    "policy: deny",
    gate.decide(call("create_refund", refund(30.0), context={"incident_open": True})),
)
show(
    "mode: suggest_only",
    gate.decide(call("tag_ticket", {"ticket_id": "T-1", "tag": "billing"}, agent="triage_bot")),
)
