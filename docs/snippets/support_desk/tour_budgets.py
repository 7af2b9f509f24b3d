"""A run's budget: reserve on decide, settle after the call, stop when a limit is hit."""

import warden

project = warden.load_project(".")
clock = warden.FixedClock("2026-01-06T10:00:00+00:00")
gate = project.gate(clock=clock)
run_id = "run_budget_tour"
lookup = {"customer_id": "cus_100"}

# an allowed decision holds a reservation: one tool call, plus the estimates given
decision = gate.decide(
    warden.ToolCall(
        agent="refund_bot", tool="lookup_customer", run_id=run_id, args=lookup, estimated_usd=0.01
    )
)
assert decision.allowed
gate.settle(decision, ok=True, usd=0.002)  # what the call really cost

# model usage is not a tool call; count it against the same run
gate.record_usage(run_id, tokens=18_500, usd=0.04)

decision = gate.decide(
    warden.ToolCall(
        agent="refund_bot",
        tool="lookup_customer",
        run_id=run_id,
        args={"customer_id": "cus_200"},
        estimated_tokens=2_000,
    )
)
print(decision.outcome, decision.code, decision.stop_run)
print(decision.reasons[0])
print(dict(decision.extra))

# wall time counts from the run's first call
clock.advance(301)
decision = gate.decide(
    warden.ToolCall(agent="refund_bot", tool="lookup_customer", run_id=run_id, args=lookup)
)
print(decision.outcome, decision.code, decision.reasons[0])
