"""Executor.decide_async: the decide of an event loop, the same answers and records as
Executor.decide, with only the commit (and a replay's rarer steps) awaited."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import warden
from tests.audit.logs import json_values
from tests.execution.conftest import pay
from warden.errors import IdempotencyError
from warden.execution import (
    _hash_and_key,  # pyright: ignore[reportPrivateUsage]
    derive_key,
    request_hash,
)
from warden.runs import ActionState, Execution


async def _offload(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


def _decide(gate: warden.Gate, call: warden.ToolCall) -> Execution:
    return asyncio.run(gate.executor.decide_async(call, _offload))


def _kinds(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [k for (k,) in conn.execute("SELECT kind FROM audit ORDER BY seq")]
    finally:
        conn.close()


def test_an_allowed_call_is_recorded_and_held_as_decide_would(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    done = _decide(gate, pay(5.0, step=1))
    assert done.state is ActionState.EXECUTING and not done.replayed
    assert done.decision is not None and done.decision.outcome.value == "allow"
    assert backend.effects == []  # the caller runs the tool
    assert _kinds(db)[-1] == "decision"
    ledger = gate.store.ledger("run_1")
    assert ledger is not None and ledger.reserved_calls == 1
    reported = gate.executor.report(done.action_id, ok=True, result={"ok": 1})
    assert reported.state is ActionState.SUCCEEDED


def test_a_replay_a_deny_and_an_approval_request_answer_as_decide_does(
    gate: warden.Gate, db: Path
) -> None:
    first = _decide(gate, pay(5.0, step=1))
    again = _decide(gate, pay(5.0, step=1))
    assert again.replayed and again.action_id == first.action_id
    assert again.state is ActionState.EXECUTING
    waiting = _decide(gate, pay(500.0, step=2))
    assert waiting.state is ActionState.AWAITING_APPROVAL and waiting.approval_id
    denied = _decide(gate, pay(5.0, step=3, tool="nope"))
    assert denied.state is ActionState.DECIDED and denied.decision is not None
    assert _kinds(db)[-3:] == ["decision", "approval.request", "decision"]
    with pytest.raises(IdempotencyError):
        _decide(gate, pay(6.0, step=9, idempotency_key=first.idempotency_key))


def test_a_record_that_cannot_be_committed_gives_the_reservation_back(
    gate: warden.Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(gate.executor.store, "_decision_op", lambda action: broken)
    with pytest.raises(warden.WardenError, match="disk I/O error"):
        _decide(gate, pay(5.0, step=1))
    ledger = gate.store.ledger("run_1")
    assert ledger is not None and ledger.reserved_calls == 0


def test_a_caller_that_goes_away_leaves_the_decision_to_finish_in_a_thread(
    gate: warden.Gate, db: Path
) -> None:
    async def go_away() -> None:
        task = asyncio.ensure_future(gate.executor.decide_async(pay(5.0, step=1), _offload))
        for _ in range(50):  # until it awaits the commit
            await asyncio.sleep(0)
            if gate.executor._inflight:  # pyright: ignore[reportPrivateUsage]
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # the writer settles the commit; a thread finishes

    asyncio.run(go_away())
    assert _kinds(db)[-1] == "decision"
    ledger = gate.store.ledger("run_1")
    assert ledger is not None and ledger.reserved_calls == 1  # held for the report
    assert len(gate.executor._held) == 1  # pyright: ignore[reportPrivateUsage]


@settings(max_examples=200, deadline=None)
@given(
    args=st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    tool=st.text(max_size=8),
    run_id=st.text(max_size=8),
    step=st.none() | st.integers(min_value=-(2**70), max_value=2**70),
    key=st.none() | st.just("") | st.text(min_size=1, max_size=8),
)
def test_the_hash_and_key_of_a_call_are_request_hash_and_derive_key(
    args: dict[str, Any], tool: str, run_id: str, step: int | None, key: str | None
) -> None:
    call = warden.ToolCall(
        agent="a", tool=tool, args=args, run_id=run_id, step=step, idempotency_key=key
    )
    try:
        expected = (request_hash(tool, args), key or derive_key(run_id, step, tool, args))
    except (TypeError, ValueError):
        with pytest.raises((TypeError, ValueError)):
            _hash_and_key(call)
        return
    assert _hash_and_key(call) == expected
