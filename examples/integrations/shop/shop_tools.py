"""The shop's tools, over an in-memory order book (a real shop would call its backend)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

import warden


@dataclass
class Backend:
    """The order book, and every refund the tools were asked to make."""

    orders: dict[str, float] = field(default_factory=dict[str, float])
    refunds: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    calls: int = 0
    """How many times refund_order's body ran (Warden runs each call exactly once)."""

    def reset(self) -> None:
        self.orders = {"ord_1001": 20.0, "ord_1002": 120.0, "ord_1003": 900.0}
        self.refunds.clear()
        self.calls = 0


BACKEND = Backend()
BACKEND.reset()


class OrderQuery(BaseModel):
    order_id: str = Field(min_length=4, max_length=40)


class Refund(BaseModel):
    order_id: str = Field(min_length=4, max_length=40)
    amount_usd: float = Field(gt=0)
    reason: str = Field(max_length=200)


@warden.tool(risk="read")
def lookup_order(args: OrderQuery) -> dict[str, Any]:
    """Look an order up: its total in USD."""
    total = BACKEND.orders.get(args.order_id)
    return {"order_id": args.order_id, "found": total is not None, "total_usd": total}


@warden.tool(risk="high_risk")
def refund_order(args: Refund, ctx: warden.ToolContext) -> dict[str, Any]:
    """Refund part or all of an order to the original payment method."""
    BACKEND.calls += 1
    refund = {
        "refund_id": f"re_{len(BACKEND.refunds) + 1}",
        "order_id": args.order_id,
        "amount_usd": args.amount_usd,
        "idempotency_key": ctx.idempotency_key,
    }
    BACKEND.refunds.append(refund)
    return {"refund_id": refund["refund_id"], "amount_usd": args.amount_usd}


class Account(BaseModel):
    customer_id: str = Field(min_length=3, max_length=40)


@warden.tool(risk="prod_control")
def delete_account(args: Account) -> None:
    """Delete a customer's account. The shop agent is not allowed this tool."""
    raise RuntimeError("never reached: the agent may not call it")
