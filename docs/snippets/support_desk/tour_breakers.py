"""The breaker: failed refunds trip it, writes become proposals, a probe closes it again."""

import itertools

import warden

project = warden.load_project(".")
clock = warden.FixedClock("2026-01-06T10:00:00+00:00")
gate = project.gate(clock=clock)
orders = itertools.count(100001)


def refund() -> warden.Decision:
    """Propose a $30 refund in a run of its own (so loop and budget checks stay quiet)."""
    args = {
        "order_id": f"ord_{next(orders)}",
        "customer_id": "cus_100",
        "amount_usd": 30.0,
        "reason": "damaged",
    }
    call = warden.ToolCall(
        agent="refund_bot", tool="create_refund", run_id=gate.new_run_id(), args=args
    )
    return gate.decide(call)


# five refunds run and fail: 5 errors in 5 calls is over the 20% limit (min_calls 5)
for _ in range(5):
    decision = refund()
    assert decision.allowed
    gate.settle(decision, ok=False)

decision = refund()
print("open:     ", decision.outcome, decision.code, decision.mode)
print("          ", decision.reasons[0])

clock.advance(120)  # the cooldown passes: the next write is let through as the probe
decision = refund()
print("half-open:", decision.outcome, "probe" if decision.breaker_probe else "")
gate.settle(decision, ok=True)  # the probe succeeded: the breaker closes

decision = refund()
print("closed:   ", decision.outcome, decision.code, decision.mode)
