"""A run's actions and their states, then recovery after a crash mid-call."""

import tempfile
from pathlib import Path

from payout_tools import BANK

import warden
from warden.runs import ActionState
from warden.store.sqlite import SQLiteStore

project = warden.load_project(".")
clock = warden.FixedClock("2026-03-02T09:00:00+00:00")


def payout(amount: object, run_id: str = "run_1") -> warden.ToolCall:
    args = {"payee": "acme", "amount_usd": amount}
    return warden.ToolCall(agent="payout_bot", tool="send_payout", run_id=run_id, args=args)


with tempfile.TemporaryDirectory() as folder:
    db = Path(folder) / "warden.db"
    store = SQLiteStore(db)
    gate = project.gate(store=store, clock=clock, ids=warden.CountingIds())

    for call in (payout(120.0), payout(900.0), payout("a lot")):
        done = gate.execute(call)
        print(f"{done.action_id}  {done.state:<17}  {done.code or '-':<9}  {done.result}")

    run = store.run("run_1")
    assert run is not None
    print(f"\nrun_1 is {run.status}, {run.calls} tool call executed")
    for action in run.actions:
        print(f"  {action.id}  {action.outcome:<14}  {action.state:<17}  {action.reasons[0]}")

    # the process dies after the bank took the payout, before Warden heard back
    BANK.crash_after_send = True
    try:
        gate.execute(payout(150.0, run_id="run_2"))
    except KeyboardInterrupt:
        print("\nthe process died while send_payout ran")
    BANK.crash_after_send = False
    gate.executor.close()
    store.close()

    # a new process opens the same database and settles what the dead one left
    with SQLiteStore(db) as store:
        gate = project.gate(store=store, clock=clock)
        print(f"left executing: {[a.id for a in store.open_actions(ActionState.EXECUTING)]}")
        for settled in gate.recover():
            print(f"recovered {settled.action_id}: {settled.state} {settled.result}")
        gate.executor.close()
