"""A durable gate over the payments fixture project, on a fresh SQLite file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import warden
from warden.execution import Approvals
from warden.store.sqlite import SQLiteStore

PAYMENTS = Path(__file__).resolve().parents[1] / "fixtures" / "payments"


@pytest.fixture(scope="session")
def payments() -> warden.Project:
    return warden.load_project(PAYMENTS)


@pytest.fixture
def backend(payments: warden.Project) -> Any:
    import payment_tools  # the fixture project's module, importable once loaded

    payment_tools.BACKEND.reset()
    payment_tools.CALLS["flaky_pay"] = 0
    return payment_tools.BACKEND


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warden.db"


@pytest.fixture
def clock() -> warden.FixedClock:
    return warden.FixedClock("2026-03-01T09:00:00+00:00")


@pytest.fixture
def open_gate(
    payments: warden.Project, db: Path, clock: warden.FixedClock
) -> Iterator[Callable[..., warden.Gate]]:
    stores: list[SQLiteStore] = []

    def make(**options: Any) -> warden.Gate:
        store = SQLiteStore(db, **options)
        stores.append(store)
        return payments.gate(store=store, clock=clock)

    yield make
    for s in stores:
        s.close()


@pytest.fixture
def gate(open_gate: Callable[..., warden.Gate]) -> warden.Gate:
    return open_gate()


@pytest.fixture
def approvals(gate: warden.Gate, payments: warden.Project, clock: warden.FixedClock) -> Approvals:
    return Approvals(gate.executor.store, roles=payments.roles, clock=clock)


def pay(amount: float, *, run: str = "run_1", tool: str = "pay", **more: Any) -> warden.ToolCall:
    args = {"payee": more.pop("payee", "acme"), "amount_usd": amount, **more.pop("args", {})}
    return warden.ToolCall(agent="payer", tool=tool, run_id=run, args=args, **more)
