"""Tests of the support desk's agents through the whole gate, with Warden's pytest fixtures."""

import warden
from warden.testing import CapturingGate


def refund(amount_usd: float, run_id: str = "run_1") -> warden.ToolCall:
    return warden.ToolCall(
        agent="refund_bot",
        tool="create_refund",
        run_id=run_id,
        args={
            "order_id": "ord_100001",
            "customer_id": "cus_100",
            "amount_usd": amount_usd,
            "reason": "damaged",
        },
    )


def test_small_refund_is_allowed_and_large_one_waits_for_a_manager(
    warden_gate: CapturingGate,
) -> None:
    assert warden_gate.decide(refund(30.0)).allowed
    large = warden_gate.decide(refund(250.0))
    assert large.outcome == "needs_approval"
    assert large.approval is not None
    assert large.approval.roles == ("support_manager",)


def test_ninth_tool_call_in_a_run_stops_it(
    warden_gate: CapturingGate, warden_decisions: list[warden.Decision]
) -> None:
    for i in range(9):
        call = warden.ToolCall(
            agent="refund_bot",
            tool="lookup_customer",
            run_id="run_1",
            args={"customer_id": f"cus_{i:03d}"},
        )
        decision = warden_gate.decide(call)
        if decision.allowed:
            warden_gate.settle(decision, ok=True)
    assert [d.code for d in warden_decisions][-2:] == [None, "W-BUD-001"]
    assert warden_decisions[-1].stop_run


def test_breaker_lets_a_probe_through_after_the_cooldown(
    warden_gate: CapturingGate, warden_clock: warden.FixedClock
) -> None:
    for i in range(5):
        decision = warden_gate.decide(refund(30.0, run_id=f"run_{i}"))
        warden_gate.settle(decision, ok=False)
    assert warden_gate.decide(refund(30.0, run_id="run_5")).code == "W-BRK-001"
    warden_clock.advance(minutes=2)
    assert warden_gate.decide(refund(30.0, run_id="run_6")).breaker_probe
