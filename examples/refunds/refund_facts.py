"""Fact providers for the refund example: read-only lookups policies may consult."""

from __future__ import annotations

import warden

# customers with a chargeback in the last 180 days (a real provider would ask billing)
_CHARGEBACKS = {"cus_chargeback"}


@warden.fact("chargeback_last_180d", keys=["customer_id"], timeout_s=1.0)
def chargeback_last_180d(q: warden.FactQuery) -> bool:
    return q.value("customer_id") in _CHARGEBACKS
