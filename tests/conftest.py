"""Shared fixtures: the refund example project and gates over it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import warden
from warden.testing import CapturingGate

ROOT = Path(__file__).resolve().parents[1]
REFUNDS = ROOT / "examples" / "refunds"


@pytest.fixture(scope="session")
def refunds_project() -> warden.Project:
    return warden.load_project(REFUNDS)


@pytest.fixture
def clock() -> warden.FixedClock:
    return warden.FixedClock("2026-01-01T09:00:00+00:00")


@pytest.fixture
def gate(refunds_project: warden.Project, clock: warden.FixedClock) -> CapturingGate:
    return CapturingGate(
        refunds_project.gate(store=warden.MemoryStore(), clock=clock, ids=warden.CountingIds())
    )


def refund(amount: Any, order: str = "ord_123456", reason: str = "damaged") -> dict[str, Any]:
    return {"order_id": order, "amount_usd": amount, "reason": reason}


CallFactory = Callable[..., warden.ToolCall]


@pytest.fixture
def call() -> CallFactory:
    """Build a ToolCall with sensible defaults for the refund example."""

    def make(
        tool: str = "create_refund",
        args: dict[str, Any] | None = None,
        *,
        agent: str = "refund_autopilot",
        run_id: str = "run_1",
        **kw: Any,
    ) -> warden.ToolCall:
        return warden.ToolCall(
            agent=agent,
            tool=tool,
            run_id=run_id,
            args=args if args is not None else refund(30.0),
            **kw,
        )

    return make
