"""Read-only lookups that policies may consult as facts."""

import warden

# a real provider would ask the billing and CRM systems
_TIERS = {"cus_100": "pro", "cus_200": "enterprise", "cus_300": "standard", "cus_666": "pro"}
_CHARGEBACKS = {"cus_666"}


@warden.fact("customer_tier", keys=["customer_id"])
def customer_tier(q: warden.FactQuery) -> str:
    return _TIERS[q.value("customer_id")]  # an unknown customer fails the decision closed


@warden.fact("chargeback_last_180d", keys=["customer_id"], timeout_s=1.0)
def chargeback_last_180d(q: warden.FactQuery) -> bool:
    return q.value("customer_id") in _CHARGEBACKS
