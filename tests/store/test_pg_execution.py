"""The execution races of tests/execution, run through two gates on two PostgreSQL stores
sharing one database, as two replicas of a Warden server would."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

import warden
from tests.execution.conftest import PAYMENTS, pay
from tests.store.conftest import postgres_database
from tests.store.test_postgres import at_once
from warden.errors import ApprovalError, IdempotencyError
from warden.execution import Approvals
from warden.store.postgres import PostgresStore


@pytest.fixture(scope="module")
def payments() -> warden.Project:
    return warden.load_project(PAYMENTS)


@pytest.fixture
def backend(payments: warden.Project) -> Any:
    import payment_tools  # the fixture project's module, importable once loaded

    payment_tools.BACKEND.reset()
    return payment_tools.BACKEND


@pytest.fixture
def stores() -> Iterator[tuple[PostgresStore, PostgresStore]]:
    url = postgres_database()
    a, b = PostgresStore(url), PostgresStore(url)
    yield a, b
    a.close()
    b.close()


def gates(
    payments: warden.Project, stores: tuple[PostgresStore, PostgresStore], **budgets: Any
) -> list[warden.Gate]:
    agent = payments.agents[0]
    if budgets:
        agent = dataclasses.replace(agent, budgets=dataclasses.replace(agent.budgets, **budgets))
    clock = warden.FixedClock("2026-03-01T09:00:00+00:00")
    return [
        warden.Gate(
            policies=payments.policies, agents=[agent], tools=payments.tools, store=s, clock=clock
        )
        for s in stores
    ]


def test_32_threads_on_two_replicas_with_one_key_execute_once(
    payments: warden.Project, stores: tuple[PostgresStore, PostgresStore], backend: Any
) -> None:
    replicas = gates(payments, stores)

    def call(i: int) -> Any:
        try:
            return replicas[i % 2].execute(pay(25, idempotency_key="one"))
        except IdempotencyError as exc:
            return exc.code

    results = at_once(32, call)
    assert len(backend.all()) == 1
    assert len([r for r in results if not isinstance(r, str) and not r.replayed]) == 1
    assert all(r == "W-IDM-002" or r.replayed for r in results if isinstance(r, str) or r.replayed)


def test_64_threads_on_two_replicas_competing_for_the_last_budget_unit_one_wins(
    payments: warden.Project, stores: tuple[PostgresStore, PostgresStore], backend: Any
) -> None:
    replicas = gates(payments, stores, max_tool_calls=5)
    for i in range(4):
        assert replicas[i % 2].execute(pay(1, step=i)).ok

    def call(i: int) -> str:
        r = replicas[i % 2].execute(pay(1, step=100 + i))
        return r.state.value if r.ok else str(r.decision.code)  # type: ignore[union-attr]

    outcomes = at_once(64, call)
    assert outcomes.count("succeeded") == 1
    assert outcomes.count("W-BUD-001") == 63
    assert len(backend.all()) == 5
    run = stores[0].run("run_1")
    assert run is not None and run.calls == 5


def test_concurrent_resumes_on_two_replicas_execute_once(
    payments: warden.Project, stores: tuple[PostgresStore, PostgresStore], backend: Any
) -> None:
    replicas = gates(payments, stores)
    waiting = replicas[0].execute(pay(500))
    approvals = Approvals(stores[1], roles=payments.roles, clock=replicas[1].clock)
    approvals.approve(waiting.approval_id or "", approver="fiona")

    def resume(i: int) -> str:
        try:
            r = replicas[i % 2].resume(waiting.action_id)
        except ApprovalError as exc:
            return exc.code
        return "ran" if not r.replayed else r.state.value

    outcomes = at_once(16, resume)
    assert outcomes.count("ran") == 1
    assert len(backend.all()) == 1
