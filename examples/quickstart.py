"""Three refunds an agent proposes, decided and executed exactly once (the README's example)."""

from pathlib import Path

import warden

project = warden.load_project(Path(__file__).parent / "refunds")
with warden.SQLiteStore.temporary() as store:  # a project's own: .warden/warden.db
    gate = project.gate(store=store)
    for step, (amount, tier) in enumerate([(30.0, "pro"), (75.0, "standard"), (30.0, "trial")]):
        done = gate.execute(  # decide, record durably, run the tool once, record the outcome
            warden.ToolCall(
                agent="refund_autopilot",
                tool="create_refund",
                run_id="run_42",
                step=step,  # a retried step is answered from the store, not re-run
                args={"order_id": "ord_123456", "amount_usd": amount, "reason": "damaged"},
                context={"customer_tier": tier, "customer_id": "cus_1"},
            )
        )
        print(f"${amount:>5} {tier:<8} {done.state:<17} {done.decision.explain()}")
