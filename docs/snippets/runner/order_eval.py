"""The order desk's eval backend: each eval case starts with a shop that made no refund.

`evals/orders.yaml` names it (`backend: order_eval:backend`). `warden eval run` calls
`backend` once per case with the case's own empty folder; the case's `state` checks read
what `state()` returns.
"""

from pathlib import Path
from typing import Any

from order_tools import REFUNDS


class OrderShop:
    def state(self) -> dict[str, Any]:
        """The refunds the case made: order and amount."""
        return {
            "refunds": [
                {"order_id": r["order_id"], "amount_usd": r["receipt"]["amount_usd"]}
                for r in REFUNDS
            ]
        }


def backend(workdir: Path) -> OrderShop:
    REFUNDS.clear()  # the shop keeps its refunds in memory; a file-backed one would copy
    return OrderShop()  # a seeded database into `workdir` instead
