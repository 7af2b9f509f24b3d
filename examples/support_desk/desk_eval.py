"""The support desk's eval backend: a fresh billing database for each eval case.

`evals/support_desk.yaml` names it (``backend: desk_eval:backend``). `warden eval run`
calls `backend` once per case with the case's own empty folder. It copies a billing
database seeded once per process (a few milliseconds: no schema or rows to build), points
the desk's tools and fact providers at the copy through ``$SUPPORT_DESK_BILLING_DB``, and
returns a `DeskBackend`, whose `state()` the case's ``expect.state`` checks read:

==================  ===========================================================================
``refunds``         every refund made in the case, oldest first: ``id``, ``order_id``,
                    ``customer_id``, ``amount_usd``, ``method``, ``reason``,
                    ``idempotency_key``, ``reversed`` (true when compensated)
``replies``         every reply saved in the case, oldest first: ``ticket_id``, ``status``
                    (``draft`` or ``sent``), ``body``
``refunded``        what was refunded per order, reversed refunds left out:
                    ``{order_id: usd}``, only orders with a refund
``refunded_usd``    the case's refunds in total, reversed refunds left out
==================  ===========================================================================

A case may start from a world where something already happened (a refund an earlier
ticket made): the suite gives it as ``backend_args`` and they arrive here as keywords,
``backend(workdir, refunds=[{order_id: ..., amount_usd: ...}])``.

Customers behind the slow payment processor (``cus_slowpay``) hang for
`SLOW_SECONDS` here instead of the demo's 3 seconds: still past the refund tool's 1 s
timeout, so the case sees the same unknown outcome, but the late write lands soon after.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from billing import DB_ENV, SLOW_ENV, Billing, seed

from warden import SystemClock

__all__ = ["SLOW_SECONDS", "DeskBackend", "backend"]

SLOW_SECONDS = 1.2
"""How long the slow processor hangs in an eval case (the refund tool times out at 1 s)."""

_templates: dict[date, bytes] = {}
_lock = threading.Lock()


def _template(today: date) -> bytes:
    """The seeded billing database for `today`, built once per process."""
    with _lock:
        found = _templates.get(today)
        if found is None:
            with tempfile.TemporaryDirectory(prefix="support-desk-eval-") as tmp:
                found = seed(Path(tmp) / "billing.db", today=today).read_bytes()
            _templates[today] = found
        return found


class DeskBackend:
    """One case's billing database, and what the case's checks read from it."""

    def __init__(self, path: Path, *, restore: Mapping[str, str | None]) -> None:
        self.path = path
        """The case's billing database."""
        self._restore = dict(restore)

    def state(self) -> dict[str, Any]:
        """Refunds and replies as JSON values (see the module docstring)."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            refunds = [
                {
                    "id": r["id"],
                    "order_id": r["order_id"],
                    "customer_id": r["customer_id"],
                    "amount_usd": r["amount_usd"],
                    "method": r["method"],
                    "reason": r["reason"],
                    "idempotency_key": r["idempotency_key"],
                    "reversed": r["reversed_at"] is not None,
                }
                for r in conn.execute("SELECT * FROM refunds ORDER BY rowid")
            ]
            replies = [
                {"ticket_id": r["ticket_id"], "status": r["status"], "body": r["body"]}
                for r in conn.execute("SELECT * FROM replies ORDER BY rowid")
            ]
        finally:
            conn.close()
        cents: dict[str, int] = {}
        for r in refunds:
            if not r["reversed"]:
                cents[r["order_id"]] = cents.get(r["order_id"], 0) + round(r["amount_usd"] * 100)
        return {
            "refunds": refunds,
            "replies": replies,
            "refunded": {order: c / 100 for order, c in cents.items()},
            "refunded_usd": sum(cents.values()) / 100,
        }

    def close(self) -> None:
        """Give the environment variables back the values they had before the case."""
        for name, value in self._restore.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def backend(workdir: Path, *, refunds: Sequence[Mapping[str, Any]] = ()) -> DeskBackend:
    """A fresh billing database in `workdir` for one eval case.

    `refunds` are made before the case starts, each ``{order_id, amount_usd}`` with
    optional ``reason``, ``method`` and ``ticket`` (the ticket that made it): the world
    after an earlier ticket was worked.
    """
    path = Path(workdir) / "billing.db"
    path.write_bytes(_template(SystemClock().now().date()))
    if refunds:
        billing = Billing(path)
        for i, r in enumerate(refunds):
            order = billing.order(str(r["order_id"]))
            billing.create_refund(
                order_id=order.id,
                customer_id=order.customer_id,
                amount_usd=float(r["amount_usd"]),
                reason=str(r.get("reason", "refunded by an earlier ticket")),
                method=str(r.get("method", "original_payment")),
                idempotency_key=f"{r.get('ticket', 'earlier')}:setup:{i}",
            )
    restore = {name: os.environ.get(name) for name in (DB_ENV, SLOW_ENV)}
    os.environ[DB_ENV] = str(path)
    os.environ[SLOW_ENV] = str(SLOW_SECONDS)
    return DeskBackend(path, restore=restore)
