"""Approvals: bound to one call, by the roles in warden.yaml, single use, expiring."""

from collections.abc import Callable

import warden
from warden.approvals import ApprovalRequest
from warden.errors import ApprovalError
from warden.execution import Approvals
from warden.store.sqlite import SQLiteStore

project = warden.load_project(".")
clock = warden.FixedClock("2026-03-02T09:00:00+00:00")


def payout(amount: float, run_id: str) -> warden.ToolCall:
    return warden.ToolCall(
        agent="payout_bot",
        tool="send_payout",
        run_id=run_id,
        args={"payee": "acme", "amount_usd": amount},
        on_behalf_of="tara",  # the person this run works for
    )


def attempt(what: str, verdict: Callable[[], ApprovalRequest]) -> None:
    """Give a verdict (or run an approved call) and print the outcome or the refusal."""
    try:
        print(f"{what:<28} ok: {verdict().status}")
    except ApprovalError as exc:
        print(f"{what:<28} {exc.code}: {exc.message}")


with SQLiteStore.temporary() as store:
    gate = project.gate(store=store, clock=clock, ids=warden.CountingIds())
    desk = Approvals(store, roles=project.roles, clock=clock)  # what `warden approvals` uses

    waiting = gate.execute(payout(900.0, "run_1"))
    apr = waiting.approval_id
    print(f"{waiting.action_id} {waiting.state}, approval {apr}")
    attempt("tara approves her own run", lambda: desk.approve(apr, approver="tara"))
    attempt("rita (risk) approves", lambda: desk.approve(apr, approver="rita"))
    attempt("tom (treasury) approves", lambda: desk.approve(apr, approver="tom", reason="ok"))

    done = gate.resume(waiting.action_id)  # the agent's process runs it, exactly once
    print(f"resumed                      {done.state} {done.result}")
    print(f"approval is now              {desk.get(apr).status}")
    try:
        gate.execute(payout(900.0, "run_1"), approval_id=apr)
    except ApprovalError as exc:
        print(f"use it again                 {exc.code}: {exc.message}")

    big = gate.execute(payout(8000.0, "run_2"))
    attempt("tom approves 8000", lambda: desk.approve(big.approval_id, approver="tom"))
    print(f"still needed                 {desk.get(big.approval_id).missing()}")
    attempt("rita approves 8000", lambda: desk.approve(big.approval_id, approver="rita"))
    try:
        gate.execute(payout(8500.0, "run_2"), approval_id=big.approval_id)
    except ApprovalError as exc:
        print(f"run it with 8500 instead     {exc.code}: {exc.message}")

    late = gate.execute(payout(700.0, "run_3"))
    clock.advance(hours=5)  # past approvals.expire_after (4h)
    attempt("tom approves after 5 hours", lambda: desk.approve(late.approval_id, approver="tom"))
    gate.executor.close()
