"""The support desk's tools: one per risk tier, each with a strict argument model."""

from typing import Literal

from pydantic import BaseModel, Field

import warden


class CustomerQuery(BaseModel):
    customer_id: str = Field(min_length=3, max_length=40)


class ReplyDraft(BaseModel):
    ticket_id: str
    body: str = Field(max_length=5_000)


class TicketTag(BaseModel):
    ticket_id: str
    tag: str = Field(pattern=r"^[a-z0-9-]+$")


class RefundRequest(BaseModel):
    order_id: str = Field(min_length=6)
    customer_id: str
    amount_usd: float = Field(gt=0, le=500)
    reason: str = Field(max_length=500)
    method: Literal["original_payment", "store_credit"] = "original_payment"


@warden.tool(risk="read", cache_ttl_s=60)
def lookup_customer(args: CustomerQuery) -> dict[str, str]:
    """Look up a customer's tier and contact details."""
    return {"customer_id": args.customer_id, "tier": "pro"}


@warden.tool(risk="draft")
def draft_reply(args: ReplyDraft) -> dict[str, str]:
    """Write a reply to a ticket for a person to review and send."""
    return {"ticket_id": args.ticket_id, "draft": args.body}


@warden.tool(risk="write", limits=warden.Limits(max_string_length=200))
def tag_ticket(args: TicketTag) -> None:
    """Add a tag to a ticket."""


@warden.tool(risk="high_risk", sensitive=["order_id"], timeout_s=10, retries=2)
def create_refund(args: RefundRequest) -> dict[str, object]:
    """Refund part or all of an order."""
    return {"refund_id": f"re_{args.order_id}", "amount_usd": args.amount_usd}


@create_refund.dry_run
def plan_refund(args: RefundRequest) -> dict[str, object]:
    return {"would_refund_usd": args.amount_usd, "order_id": args.order_id}


@create_refund.compensate
def reverse_refund(args: RefundRequest) -> None:
    """Undo a completed refund."""
