"""Ask Warden about three refunds an agent proposes (the README's example)."""

from pathlib import Path

import warden

project = warden.load_project(Path(__file__).parent / "refunds")
gate = project.gate()

for amount, tier in [(30.0, "pro"), (75.0, "standard"), (30.0, "trial")]:
    decision = gate.decide(
        warden.ToolCall(
            agent="refund_autopilot",
            tool="create_refund",
            run_id="run_42",
            args={"order_id": "ord_123456", "amount_usd": amount, "reason": "damaged"},
            context={"customer_tier": tier, "customer_id": "cus_1"},
        )
    )
    print(f"${amount:>5} {tier:<8} {decision.explain()}")
    if decision.allowed:
        refund = project.tools["create_refund"].invoke(decision.args)  # run it, then settle
        gate.settle(decision, ok=True)
