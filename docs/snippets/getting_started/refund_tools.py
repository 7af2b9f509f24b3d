"""The refund desk's one tool. Its argument model is the contract Warden checks."""

from pydantic import BaseModel, Field

import warden


class RefundRequest(BaseModel):
    order_id: str = Field(min_length=6)
    amount_usd: float = Field(gt=0, le=500)
    reason: str = Field(max_length=500)


@warden.tool(risk="high_risk")
def create_refund(args: RefundRequest) -> dict[str, object]:
    """Refund part or all of an order to the original payment method."""
    return {"refund_id": f"re_{args.order_id}", "amount_usd": args.amount_usd}
