"""Ask the gate about three refunds, and run the one it allows."""

import warden

project = warden.load_project(".")
gate = project.gate()
run_id = gate.new_run_id()

for amount, tier in [(30.0, "pro"), (75.0, "standard"), (20.0, "trial")]:
    call = warden.ToolCall(
        agent="refund_agent",
        tool="create_refund",
        run_id=run_id,
        args={"order_id": "ord_123456", "amount_usd": amount, "reason": "damaged item"},
        context={"customer_tier": tier},
    )
    decision = gate.decide(call)
    print(f"${amount:g} for a {tier} customer: {decision.outcome}")
    print(f"  code:    {decision.code}")
    print(f"  reasons: {'; '.join(decision.reasons)}")
    print(f"  rules:   {', '.join(str(rule) for rule in decision.rules) or '-'}")
    if decision.approval is not None:
        print(f"  approve: {decision.approval}")

    if decision.allowed:
        result = project.tools["create_refund"].invoke(decision.args)
        gate.settle(decision, ok=True)
        print(f"  result:  {result}")
