"""Where `customer_tier` comes from, and how history feeds the daily refund cap."""

from typing import Any

import warden

project = warden.load_project(".")
gate = project.gate(clock=warden.FixedClock("2026-01-06T10:00:00+00:00"))


def refund(customer_id: str, **more: Any) -> warden.Decision:
    args = {"order_id": "ord_100001", "customer_id": customer_id, "amount_usd": 150.0}
    call = warden.ToolCall(
        agent="refund_bot",
        tool="create_refund",
        run_id=gate.new_run_id(),
        args={**args, "reason": "late"},
        **more,
    )
    decision = gate.decide(call)
    print(f"{decision.outcome:<15} {decision.reasons[0]}")
    return decision


# 1. no argument or context value is named customer_tier: the fact provider answers
refund("cus_200")
# 2. a context value comes before the fact provider
refund("cus_200", context={"customer_tier": "standard"})
# 3. the provider fails for an unknown customer: the call is denied
refund("cus_404")
# 4. a fact given with the call comes before the provider, which is not asked
refund("cus_404", facts={"customer_tier": "enterprise"})
# 5. two $150 refunds were allowed above; a third goes over the $400 daily cap
decision = refund("cus_200")
print(decision.approval)
