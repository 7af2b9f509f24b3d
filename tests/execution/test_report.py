"""Executor.decide and Executor.report: the caller runs the tool, Warden records the rest."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import warden
from tests.execution.conftest import pay
from warden.errors import AuthError, ExecutionError, IdempotencyError
from warden.execution import Approvals
from warden.runs import ActionState
from warden.store.sqlite import SQLiteStore


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _outcomes(db: Path) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(b)) for (b,) in _rows(db, "SELECT body FROM audit WHERE kind = 'outcome'")
    ]


def _ledger(gate: warden.Gate, run: str = "run_1") -> tuple[int, float, int, int]:
    ledger = gate.store.ledger(run)
    assert ledger is not None
    return (*ledger.committed, ledger.reserved_calls)


def _code(fn: Callable[[], Any], kind: type[Exception] = ExecutionError) -> str:
    with pytest.raises(kind) as err:
        fn()
    return getattr(err.value, "code", "")


def test_decide_records_the_decision_and_leaves_the_action_executing_without_running_it(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    held = gate.executor.decide(pay(40, estimated_usd=0.5))
    assert held.state is ActionState.EXECUTING and not held.replayed
    assert held.decision.outcome.value == "allow" and held.idempotency_key
    assert backend.all() == []
    assert [k for (k,) in _rows(db, "SELECT kind FROM audit ORDER BY seq")] == [
        "config.load",
        "decision",
    ]
    assert _rows(db, "SELECT state, owner FROM actions") == [
        ("executing", gate.executor.store.owner)
    ]
    assert _ledger(gate) == (0, 0.0, 0, 1)  # reserved, not yet committed


def test_a_reported_success_is_recorded_and_settles_the_budget(gate: warden.Gate, db: Path) -> None:
    held = gate.executor.decide(pay(40, estimated_usd=0.5))
    done = gate.executor.report(
        held.action_id, ok=True, result={"charge_id": "ch_1"}, duration_ms=12.5, usd=0.25
    )
    assert done.state is ActionState.SUCCEEDED and done.result == {"charge_id": "ch_1"}
    assert not done.replayed
    assert _ledger(gate) == (1, 0.25, 0, 0)
    (outcome,) = _outcomes(db)
    assert outcome["data"]["how"] == "reported" and outcome["data"]["state"] == "succeeded"
    run = gate.executor.store.run("run_1")
    assert run is not None and (run.calls, run.usd) == (1, 0.25)


def test_without_a_reported_cost_the_estimate_is_settled(gate: warden.Gate) -> None:
    held = gate.executor.decide(pay(40, estimated_usd=0.5))
    gate.executor.report(held.action_id, ok=True)
    assert _ledger(gate) == (1, 0.5, 0, 0)


def test_a_reported_failure_keeps_the_callers_message(gate: warden.Gate) -> None:
    held = gate.executor.decide(pay(40))
    done = gate.executor.report(
        held.action_id, ok=False, error={"message": "card declined", "type": "Declined"}
    )
    assert done.state is ActionState.FAILED
    assert done.error == {"code": "W-EXE-001", "type": "Declined", "message": "card declined"}
    view = gate.executor.store.action(held.action_id)
    assert view is not None and view.error == done.error


def test_the_same_report_twice_returns_the_stored_outcome_and_settles_once(
    gate: warden.Gate,
) -> None:
    held = gate.executor.decide(pay(40))
    first = gate.executor.report(held.action_id, ok=True, result={"id": 1})
    again = gate.executor.report(held.action_id, ok=True, result={"id": 1})
    assert again.replayed and again.state is first.state and again.result == first.result
    assert _ledger(gate) == (1, 0.0, 0, 0)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"ok": True, "result": {"id": 1}}, {"ok": False, "error": {"message": "boom"}}),
        ({"ok": True, "result": {"id": 1}}, {"ok": True, "result": {"id": 2}}),
        ({"ok": False, "error": {"message": "a"}}, {"ok": False, "error": {"message": "b"}}),
    ],
    ids=["success-then-failure", "another-result", "another-error"],
)
def test_another_outcome_for_a_recorded_action_is_refused(
    gate: warden.Gate, first: dict[str, Any], second: dict[str, Any]
) -> None:
    held = gate.executor.decide(pay(40))
    gate.executor.report(held.action_id, **first)
    assert _code(lambda: gate.executor.report(held.action_id, **second)) == "W-EXE-006"


def test_only_an_action_left_executing_takes_a_report(
    gate: warden.Gate, approvals: Approvals
) -> None:
    denied = gate.executor.decide(pay(-5, args={"unknown": 1}))
    assert denied.state is ActionState.DECIDED
    waiting = gate.executor.decide(pay(500))
    assert waiting.state is ActionState.AWAITING_APPROVAL
    for action_id in (denied.action_id, waiting.action_id, "act_missing"):
        assert _code(lambda a=action_id: gate.executor.report(a, ok=True)) == "W-EXE-005"


def test_a_report_for_another_agents_action_is_refused(gate: warden.Gate) -> None:
    held = gate.executor.decide(pay(40))
    assert (
        _code(lambda: gate.executor.report(held.action_id, ok=True, agent="other"), AuthError)
        == "W-AUTH-005"
    )
    assert gate.executor.report(held.action_id, ok=True, agent="payer").ok


def test_deciding_the_same_call_again_replays_the_held_action(gate: warden.Gate) -> None:
    first = gate.executor.decide(pay(40, step=1))
    again = gate.executor.decide(pay(40, step=1))
    assert again.replayed and again.action_id == first.action_id
    assert again.state is ActionState.EXECUTING
    reused = pay(41, idempotency_key=first.idempotency_key)
    assert _code(lambda: gate.executor.decide(reused), IdempotencyError) == "W-IDM-001"
    gate.executor.report(first.action_id, ok=True)
    assert gate.executor.decide(pay(40, step=1)).state is ActionState.SUCCEEDED


def test_an_approved_action_decided_again_is_handed_to_the_caller_once(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.executor.decide(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona")
    claimed = gate.executor.decide(pay(500))
    assert claimed.state is ActionState.EXECUTING and not claimed.replayed
    assert claimed.action_id == waiting.action_id and claimed.approval_id == waiting.approval_id
    again = gate.executor.decide(pay(500))
    assert again.replayed and again.state is ActionState.EXECUTING
    done = gate.executor.report(claimed.action_id, ok=True, usd=1.0)
    assert done.ok and backend.all() == []  # the caller ran it, not Warden
    assert _ledger(gate) == (1, 1.0, 0, 0)


def test_a_reservation_made_by_another_process_is_settled_from_the_estimate(
    gate: warden.Gate, payments: warden.Project, db: Path, clock: warden.FixedClock
) -> None:
    held = gate.executor.decide(pay(40, estimated_usd=0.5, estimated_tokens=7))
    with SQLiteStore(db) as other:
        replica = payments.gate(store=other, clock=clock)
        done = replica.executor.report(held.action_id, ok=True)
        assert done.ok
        ledger = other.ledger("run_1")
        assert ledger is not None and ledger.committed == (1, 0.5, 7)
        replica.executor.close()
    run = gate.executor.store.run("run_1")
    assert run is not None and (run.calls, run.usd, run.tokens) == (1, 0.5, 7)


def test_a_held_decision_let_go_past_the_limit_is_released_then_settled_on_report(
    gate: warden.Gate,
) -> None:
    gate.executor.max_held = 1
    a = gate.executor.decide(pay(10, step=1))
    b = gate.executor.decide(pay(20, step=2))
    assert _ledger(gate) == (0, 0.0, 0, 1)  # a's reservation was given back
    gate.executor.report(a.action_id, ok=True)
    gate.executor.report(b.action_id, ok=True)
    assert _ledger(gate) == (2, 0.0, 0, 0)


def test_a_late_report_settles_an_action_recovery_marked_unknown(
    gate: warden.Gate, db: Path
) -> None:
    held = gate.executor.decide(
        warden.ToolCall(
            agent="payer", tool="blind_pay", run_id="run_1", args={"payee": "a", "amount_usd": 5}
        )
    )
    (recovered,) = gate.recover(force=True)  # as after a restart: nobody knows what happened
    assert recovered.state is ActionState.OUTCOME_UNKNOWN
    done = gate.executor.report(held.action_id, ok=True, result={"id": "x"})
    assert done.state is ActionState.SUCCEEDED
    assert [o["data"]["how"] for o in _outcomes(db)] == ["reconciled", "reported-late"]
    assert gate.executor.report(held.action_id, ok=True, result={"id": "x"}).replayed


def test_concurrent_reports_of_one_action_settle_it_once(gate: warden.Gate) -> None:
    held = gate.executor.decide(pay(40))
    barrier = threading.Barrier(16)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        r = gate.executor.report(held.action_id, ok=True, result={"id": 1})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert sum(not r.replayed for r in results) == 1
    assert _ledger(gate) == (1, 0.0, 0, 0)


def test_a_reported_result_is_redacted_in_the_audit_log_like_an_executed_one(
    gate: warden.Gate, db: Path
) -> None:
    held = gate.executor.decide(pay(40))
    gate.executor.report(held.action_id, ok=True, result={"card_number": "4111 1111 1111 1111"})
    (outcome,) = _outcomes(db)
    assert "4111" not in json.dumps(outcome)
