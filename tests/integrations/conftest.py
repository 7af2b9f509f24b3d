"""A durable gate over the shop the framework examples govern, on a fresh SQLite file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import warden
from warden.execution import Approvals
from warden.store.sqlite import SQLiteStore

SHOP = Path(__file__).resolve().parents[2] / "examples" / "integrations" / "shop"


@pytest.fixture(scope="session")
def shop() -> warden.Project:
    return warden.load_project(SHOP)


@pytest.fixture
def clock() -> warden.FixedClock:
    return warden.FixedClock("2026-03-01T09:00:00+00:00")


@pytest.fixture
def gate(shop: warden.Project, tmp_path: Path, clock: warden.FixedClock) -> Iterator[warden.Gate]:
    store = SQLiteStore(tmp_path / "warden.db")
    yield shop.gate(store=store, clock=clock)
    store.close()


@pytest.fixture
def backend(gate: warden.Gate) -> Any:
    """The shop's order book (the module the gate's tools live in), reset."""
    found: Any = sys.modules[gate.tools["refund_order"].fn.__module__].BACKEND
    found.reset()
    return found


@pytest.fixture
def approvals(gate: warden.Gate, shop: warden.Project, clock: warden.FixedClock) -> Approvals:
    return Approvals(gate.executor.store, roles=shop.roles, clock=clock)


def refund_args(order_id: str, amount_usd: float) -> dict[str, Any]:
    return {"order_id": order_id, "amount_usd": amount_usd, "reason": "damaged"}


SMALL = refund_args("ord_1001", 20.0)
"""Allowed by the refund policy."""
LARGE = refund_args("ord_1002", 120.0)
"""Needs a support lead's approval."""
HUGE = refund_args("ord_1003", 900.0)
"""Denied: over the refund limit."""
