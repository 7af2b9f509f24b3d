"""The support desk's tools: two reads, a refund and a reply, over the billing backend.

Each tool has a strict argument model (the contract the gate checks) and a risk tier.
The refund passes Warden's idempotency key to the backend, plans itself on request
(`dry_run`), can be looked up after a crash (`reconcile`) and undone (`compensate`).

The billing database is ``$SUPPORT_DESK_BILLING_DB``, else ``.warden/billing.db`` in
this folder; it is created and seeded the first time a tool or fact provider opens it.
"""

from __future__ import annotations

from typing import Any, Literal

from billing import Refund, open_billing
from pydantic import BaseModel, Field, field_validator

import warden

CUSTOMER_ID = r"^cus_[a-z0-9]{3,32}$"
ORDER_ID = r"^ord_[0-9]{4,12}$"
TICKET_ID = r"^T-[0-9]{4,8}$"


class CustomerRef(BaseModel):
    customer_id: str = Field(pattern=CUSTOMER_ID, description="the customer's id, cus_...")


class RefundRequest(BaseModel):
    order_id: str = Field(pattern=ORDER_ID, description="the order to refund, ord_...")
    customer_id: str = Field(pattern=CUSTOMER_ID, description="the customer who paid for it")
    amount_usd: float = Field(gt=0, le=500, description="USD, at most 500; larger is for people")
    reason: str = Field(min_length=3, max_length=500, description="why, in a few words")
    method: Literal["original_payment", "store_credit"] = "original_payment"

    @field_validator("amount_usd")
    @classmethod
    def _whole_cents(cls, value: float) -> float:
        if abs(value * 100 - round(value * 100)) > 1e-6:
            raise ValueError("amounts are in whole cents")
        return value


class TicketReply(BaseModel):
    ticket_id: str = Field(pattern=TICKET_ID, description="the ticket answered, T-...")
    body: str = Field(
        min_length=1, max_length=4000, description="the reply, as the customer reads it"
    )
    mode: Literal["draft", "send"] = Field(
        description="draft: saved for a person to review; send: goes to the customer"
    )


@warden.tool(risk="read", cache_ttl_s=300)
def lookup_customer(args: CustomerRef) -> dict[str, Any]:
    """Look up a customer: name, email, tier and whether they filed a chargeback lately."""
    billing = open_billing()
    customer = billing.customer(args.customer_id)
    return {
        "customer_id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "tier": customer.tier,
        "chargeback_last_180d": billing.chargeback_within(customer.id, days=180),
    }


@warden.tool(risk="read")
def list_invoices(args: CustomerRef) -> dict[str, Any]:
    """List a customer's invoices, newest first, with each order's item, status and refunds."""
    billing = open_billing()
    orders = {o.id: o for o in billing.orders(args.customer_id)}
    invoices: list[dict[str, Any]] = []
    for inv in billing.invoices(args.customer_id):
        order = orders[inv.order_id]
        invoices.append(
            {
                "invoice_id": inv.id,
                "order_id": inv.order_id,
                "item": order.item,
                "amount_usd": inv.amount_usd,
                "status": inv.status,
                "issued_at": inv.issued_at,
                "order_status": order.status,
                "order_total_usd": order.amount_usd,
                "refunded_usd": order.refunded_usd,
            }
        )
    return {"customer_id": args.customer_id, "invoices": invoices}


def _refund_result(refund: Refund) -> dict[str, Any]:
    return {
        "refund_id": refund.id,
        "order_id": refund.order_id,
        "customer_id": refund.customer_id,
        "amount_usd": refund.amount_usd,
        "method": refund.method,
        "created_at": refund.created_at,
        "reversed_at": refund.reversed_at,
    }


@warden.tool(
    risk="high_risk",
    sensitive=["customer_id", "order_id"],
    timeout_s=1.0,  # the slow processor's refunds time out: the outcome is unknown
)
def create_refund(args: RefundRequest, ctx: warden.ToolContext) -> dict[str, Any]:
    """Refund part or all of an order, to the original payment method or as store credit."""
    refund = open_billing().create_refund(
        order_id=args.order_id,
        customer_id=args.customer_id,
        amount_usd=args.amount_usd,
        reason=args.reason,
        method=args.method,
        idempotency_key=ctx.idempotency_key,
    )
    return _refund_result(refund)


@create_refund.dry_run
def plan_refund(args: RefundRequest) -> dict[str, Any]:
    """The refund as a diff of the order's balance; nothing is written."""
    order = open_billing().order(args.order_id)
    after = round(order.refundable_usd - args.amount_usd, 2)
    return {
        "order_id": order.id,
        "item": order.item,
        "order_customer_id": order.customer_id,
        "order_total_usd": order.amount_usd,
        "refunded_so_far_usd": order.refunded_usd,
        "this_refund_usd": args.amount_usd,
        "balance_after_usd": after,
        "method": args.method,
        "would_be_refused": after < 0 or order.customer_id != args.customer_id,
    }


@create_refund.reconcile
def find_refund(args: RefundRequest, ctx: warden.ToolContext) -> dict[str, Any] | None:
    """After a crash: the refund made under this call's key, or None if none was made."""
    refund = open_billing().refund_by_key(ctx.idempotency_key)
    return _refund_result(refund) if refund is not None else None


@create_refund.compensate
def reverse_refund(
    args: RefundRequest, ctx: warden.ToolContext, result: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Undo the refund this call made (found by its idempotency key)."""
    billing = open_billing()
    refund = billing.refund_by_key(ctx.idempotency_key)
    if refund is None:
        raise LookupError(f"no refund was made under key {ctx.idempotency_key!r}")
    return _refund_result(billing.reverse_refund(refund.id))


@warden.tool(risk="write")
def send_reply(args: TicketReply, ctx: warden.ToolContext) -> dict[str, Any]:
    """Reply to the ticket: save a draft for a person to review, or send it to the customer."""
    reply = open_billing().save_reply(
        ticket_id=args.ticket_id,
        body=args.body,
        status="sent" if args.mode == "send" else "draft",
        idempotency_key=ctx.idempotency_key,
    )
    return {"reply_id": reply.id, "ticket_id": reply.ticket_id, "status": reply.status}
