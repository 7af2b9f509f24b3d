"""The refund example's tools (the seed's RefundRequest contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field

import warden


class CustomerQuery(BaseModel):
    customer_id: str = Field(min_length=3, max_length=40)


class RefundRequest(BaseModel):
    order_id: str = Field(min_length=6)
    amount_usd: float = Field(gt=0, le=500)  # hard limit to cap blast radius
    reason: str = Field(max_length=500)


@warden.tool(risk="read", cache_ttl_s=60)
def lookup_customer(args: CustomerQuery) -> dict[str, str]:
    """Look up a customer's tier and contact details."""
    return {"customer_id": args.customer_id, "tier": "pro"}


@warden.tool(risk="read")
def list_invoices(args: CustomerQuery) -> list[dict[str, object]]:
    """List a customer's recent invoices."""
    return []


@warden.tool(risk="high_risk", sensitive=["order_id"], timeout_s=10)
def create_refund(args: RefundRequest) -> dict[str, object]:
    """Refund part or all of an order to the original payment method."""
    return {"refund_id": f"re_{args.order_id}", "amount_usd": args.amount_usd}


@create_refund.dry_run
def _plan_refund(args: RefundRequest) -> dict[str, object]:
    return {"would_refund": args.amount_usd, "order_id": args.order_id}


class DeleteCustomer(BaseModel):
    customer_id: str = Field(min_length=3, max_length=40)


@warden.tool(risk="prod_control")
def delete_customer(args: DeleteCustomer) -> None:
    """Delete a customer record. No refund agent is allowed this tool."""
    raise RuntimeError("not in this example")
