"""A durable desk (see `world`) on a fresh SQLite file, and the replayer over it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import warden
from tests.replay import world
from warden.execution import Approvals
from warden.replay import Replayer
from warden.runs import Execution
from warden.store.protocol import DurableStore
from warden.store.sqlite import SQLiteStore


class Desk:
    """A gate over the world's policies on a SQLite store; every call gets its own step
    (so its own idempotency key) and a clock one second later than the last."""

    def __init__(self, store: DurableStore) -> None:
        self.store = store
        self.clock = warden.FixedClock("2026-03-02T09:00:00+00:00")
        self.gate = world.gate(store, self.clock)
        self.approvals = Approvals(store, roles={"lead": frozenset({"lena"})}, clock=self.clock)
        self._steps = itertools.count()

    def execute(self, call: warden.ToolCall) -> Execution:
        self.clock.advance(1)
        return self.gate.execute(replace(call, step=next(self._steps)))

    def approve_and_resume(self, waiting: Execution) -> Execution:
        assert waiting.approval_id is not None
        self.clock.advance(1)
        self.approvals.approve(waiting.approval_id, approver="lena")
        self.clock.advance(1)
        return self.gate.resume(waiting.action_id)

    def replayer(self, **options: Any) -> Replayer:
        return Replayer(
            self.store,
            tools=world.TOOLS,
            agents=options.pop("agents", world.manifests()),
            facts=world.facts(),
            **options,
        )


@pytest.fixture
def desk() -> Iterator[Desk]:
    store = SQLiteStore.temporary()
    d = Desk(store)
    try:
        yield d
    finally:
        d.gate.executor.close()
        store.close()
