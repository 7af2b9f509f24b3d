"""The order desk's tools, over a small in-memory shop that counts every refund it makes."""

from typing import Any

from pydantic import BaseModel, Field

import warden

ORDERS = {
    "ord_1001": {"item": "mug, chipped", "paid_usd": 30.0, "status": "delivered"},
    "ord_1002": {"item": "lamp, dead on arrival", "paid_usd": 120.0, "status": "delivered"},
    "ord_1003": {"item": "desk, scratched", "paid_usd": 250.0, "status": "delivered"},
}
REFUNDS: list[dict[str, Any]] = []
"""Every refund the shop made, with the idempotency key Warden gave it."""


class OrderRef(BaseModel):
    order_id: str = Field(pattern=r"^ord_[0-9]{4}$")


class RefundRequest(BaseModel):
    order_id: str = Field(pattern=r"^ord_[0-9]{4}$")
    amount_usd: float = Field(gt=0, le=500)


@warden.tool(risk="read", cache_ttl_s=60)
def lookup_order(args: OrderRef) -> dict[str, Any]:
    """Look an order up: the item, what was paid and whether it was delivered."""
    return {"order_id": args.order_id, **ORDERS[args.order_id]}


def plan_refund(args: RefundRequest) -> dict[str, Any]:
    """What the refund would do, without doing it (shown to approvers)."""
    paid = ORDERS[args.order_id]["paid_usd"]
    left = paid - args.amount_usd
    return {"order_id": args.order_id, "refund_usd": args.amount_usd, "left_usd": left}


@warden.tool(risk="high_risk", dry_run=plan_refund)
def refund(args: RefundRequest, ctx: warden.ToolContext) -> dict[str, Any]:
    """Refund part or all of an order to the original payment method."""
    for done in REFUNDS:
        if done["key"] == ctx.idempotency_key:  # the shop deduplicates by key, as Stripe does
            return done["receipt"]
    receipt = {"refund_id": f"re_{len(REFUNDS) + 1:03d}", "amount_usd": args.amount_usd}
    REFUNDS.append({"key": ctx.idempotency_key, "order_id": args.order_id, "receipt": receipt})
    return receipt
