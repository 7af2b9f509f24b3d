"""Idempotency keys: a retry returns the stored result, and the bank sees one key."""

from payout_tools import BANK

import warden
from warden.errors import IdempotencyError
from warden.store.sqlite import SQLiteStore

project = warden.load_project(".")
clock = warden.FixedClock("2026-03-02T09:00:00+00:00")


def payout(step: int, key: str | None = None, amount: float = 120.0) -> warden.ToolCall:
    return warden.ToolCall(
        agent="payout_bot",
        tool="send_payout",
        run_id="run_1",
        args={"payee": "acme", "amount_usd": amount},
        step=step,
        idempotency_key=key,
    )


with SQLiteStore.temporary() as store:
    gate = project.gate(store=store, clock=clock, ids=warden.CountingIds())

    # no key given: Warden derives one from the run, the step, the tool and the arguments
    first = gate.execute(payout(step=1))
    retry = gate.execute(payout(step=1))  # the agent retries after a timeout, say
    print(f"derived key  {first.idempotency_key}")
    print(f"first        {first.action_id} replayed={first.replayed} {first.result}")
    print(f"retry        {retry.action_id} replayed={retry.replayed} {retry.result}")
    later = gate.execute(payout(step=2))  # the same payout again, on purpose, at a new step
    print(f"next step    {later.action_id} replayed={later.replayed} {later.result}")

    # a key the caller gives, e.g. from its own order id
    given = gate.execute(payout(step=3, key="invoice-7781"))
    print(f"given key    {given.idempotency_key} {given.result}")
    try:
        gate.execute(payout(step=3, key="invoice-7781", amount=125.0))
    except IdempotencyError as exc:
        print(f"other args   {exc.code}: {exc.message}")

    print(f"the bank saw {sorted(BANK.payouts)}")
    gate.executor.close()
