"""A payout tool over a pretend bank that, like Stripe, deduplicates by idempotency key."""

from typing import Any

from pydantic import BaseModel

import warden


class Payout(BaseModel):
    payee: str
    amount_usd: float
    iban: str = ""


class Bank:
    """Keeps one payout per idempotency key; a retry with the same key changes nothing."""

    def __init__(self) -> None:
        self.payouts: dict[str, dict[str, Any]] = {}
        self.crash_after_send = False
        """Stand in for a process that dies right after the bank took the payout."""

    def send(self, key: str, payee: str, amount_usd: float) -> dict[str, Any]:
        if key not in self.payouts:
            number = len(self.payouts) + 1
            self.payouts[key] = {"payout_id": f"po_{number:03d}", "amount_usd": amount_usd}
        if self.crash_after_send:
            raise KeyboardInterrupt("the process died")
        return self.payouts[key]


BANK = Bank()


def find_payout(args: Payout, ctx: warden.ToolContext) -> Any:
    """The reconcile hook: the payout made under this call's key, or None."""
    return BANK.payouts.get(ctx.idempotency_key)


@warden.tool(risk="high_risk", reconcile=find_payout)
def send_payout(args: Payout, ctx: warden.ToolContext) -> dict[str, Any]:
    """Send money to a payee; the bank deduplicates by the key Warden passes."""
    return BANK.send(ctx.idempotency_key, args.payee, args.amount_usd)
