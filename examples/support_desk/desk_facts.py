"""What the refund policy may ask the billing backend: read-only, cached per run.

An unknown customer or order makes its provider fail, and the gate denies the call
(W-POL-104): a refund the backend cannot vouch for never goes ahead.
"""

from __future__ import annotations

from billing import open_billing

import warden


@warden.fact("customer_tier", keys=["customer_id"])
def customer_tier(q: warden.FactQuery) -> str:
    """standard, pro or enterprise."""
    return open_billing().customer(q.value("customer_id")).tier


@warden.fact("chargeback_last_180d", keys=["customer_id"])
def chargeback_last_180d(q: warden.FactQuery) -> bool:
    """Whether the customer filed a chargeback in the last 180 days."""
    return open_billing().chargeback_within(q.value("customer_id"), days=180)


@warden.fact("order_customer", keys=["order_id"])
def order_customer(q: warden.FactQuery) -> str:
    """The customer who placed (and paid for) the order."""
    return open_billing().order(q.value("order_id")).customer_id
