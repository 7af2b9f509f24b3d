"""Gate.execute: durable decision, exactly-once execution, Stripe-style idempotency."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import warden
from tests.execution.conftest import pay
from warden.errors import IdempotencyError, StoreError
from warden.runs import ActionState, RunStatus
from warden.store.sqlite import SQLiteStore


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_an_allowed_call_runs_once_with_its_key_and_leaves_records(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    done = gate.execute(pay(40))
    assert done.state is ActionState.SUCCEEDED and done.ok
    assert done.result == {"charge_id": "ch_" + done.idempotency_key[-12:], "amount_usd": 40.0}
    assert [e["key"] for e in backend.all()] == [done.idempotency_key]
    kinds = [k for (k,) in _rows(db, "SELECT kind FROM audit ORDER BY seq")]
    assert kinds == ["config.load", "decision", "outcome"]
    (state, attempts) = _rows(db, "SELECT state, attempts FROM actions")[0]
    assert (state, attempts) == ("succeeded", 1)
    run = gate.executor.store.run("run_1")
    assert run is not None and run.calls == 1 and run.status is RunStatus.RUNNING


def test_the_same_key_and_arguments_return_the_stored_result(
    gate: warden.Gate, backend: Any
) -> None:
    first = gate.execute(pay(40, idempotency_key="k1"))
    again = gate.execute(pay(40, idempotency_key="k1"))
    assert again.replayed and not first.replayed
    assert again.result == first.result and again.action_id == first.action_id
    assert len(backend.all()) == 1


def test_the_derived_key_makes_a_retried_step_idempotent(gate: warden.Gate, backend: Any) -> None:
    a = gate.execute(pay(40, step=3))
    b = gate.execute(pay(40, step=3))
    c = gate.execute(pay(40, step=4))
    assert b.replayed and b.idempotency_key == a.idempotency_key
    assert not c.replayed and c.idempotency_key != a.idempotency_key
    assert len(backend.all()) == 2


def test_the_same_key_with_other_arguments_is_an_error(gate: warden.Gate, backend: Any) -> None:
    gate.execute(pay(40, idempotency_key="k1"))
    with pytest.raises(IdempotencyError) as err:
        gate.execute(pay(41, idempotency_key="k1"))
    assert err.value.code == "W-IDM-001"
    assert len(backend.all()) == 1


def test_keys_are_scoped_per_agent(
    tmp_path: Path, payments: warden.Project, clock: warden.FixedClock, backend: Any
) -> None:
    import dataclasses

    twin = dataclasses.replace(payments.agents[0], name="payer_two")
    with SQLiteStore(tmp_path / "w.db") as store:
        g = warden.Gate(
            policies=payments.policies,
            agents=[payments.agents[0], twin],
            tools=payments.tools,
            store=store,
            clock=clock,
        )
        a = g.execute(pay(10, idempotency_key="shared"))
        b = g.execute(
            warden.ToolCall(
                agent="payer_two",
                tool="pay",
                run_id="run_1",
                args={"payee": "acme", "amount_usd": 99.0},
                idempotency_key="shared",
            )
        )
    assert not b.replayed and a.action_id != b.action_id


def test_a_stored_error_is_returned_again_without_running_the_tool(
    gate: warden.Gate, backend: Any
) -> None:
    import payment_tools

    failed = gate.execute(pay(10, tool="flaky_pay", idempotency_key="f"))
    assert failed.state is ActionState.FAILED
    assert failed.error is not None and failed.error["code"] == "W-EXE-001"
    assert failed.attempts == 3  # 1 + retries=2
    calls = payment_tools.CALLS["flaky_pay"]
    again = gate.execute(pay(10, tool="flaky_pay", idempotency_key="f"))
    assert again.replayed and again.state is ActionState.FAILED and again.error == failed.error
    assert payment_tools.CALLS["flaky_pay"] == calls


def test_retries_reuse_the_key_until_the_tool_succeeds(gate: warden.Gate, backend: Any) -> None:
    done = gate.execute(pay(10, tool="flaky_pay", args={"note": "fail:2"}))
    assert done.state is ActionState.SUCCEEDED and done.attempts == 3
    assert [e["key"] for e in backend.all()] == [done.idempotency_key]


def test_a_deny_is_recorded_and_claims_no_key(gate: warden.Gate, db: Path, backend: Any) -> None:
    denied = gate.execute(pay(-5, args={"unknown": 1}))
    assert denied.state is ActionState.DECIDED and denied.decision.code == "W-CON-001"
    assert denied.idempotency_key is None
    assert _rows(db, "SELECT state, idem_key, outcome FROM actions") == [("decided", None, "deny")]
    assert backend.all() == []


def test_a_timeout_marks_the_outcome_unknown_and_records_a_late_result(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    done = gate.execute(
        warden.ToolCall(
            agent="payer",
            tool="slow_pay",
            run_id="run_9",
            args={"payee": "acme", "amount_usd": 5.0, "seconds": 0.6},
        )
    )
    assert done.state is ActionState.OUTCOME_UNKNOWN
    assert done.error is not None and done.error["code"] == "W-EXE-002"
    run = gate.executor.store.run("run_9")
    assert run is not None and run.status is RunStatus.ESCALATED
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = gate.executor.store.action(done.action_id)
        if view is not None and view.state is ActionState.SUCCEEDED:
            break
        time.sleep(0.05)
    view = gate.executor.store.action(done.action_id)
    assert view is not None and view.state is ActionState.SUCCEEDED
    hows = [b for (b,) in _rows(db, "SELECT body FROM audit WHERE kind = 'outcome'")]
    assert any(b'"how":"late"' in bytes(b) for b in hows)


def test_32_threads_with_one_key_execute_once(gate: warden.Gate, backend: Any) -> None:
    barrier = threading.Barrier(32)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            r: Any = gate.execute(pay(25, idempotency_key="one"))
        except IdempotencyError as exc:
            r = exc.code
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(backend.all()) == 1
    executed = [r for r in results if not isinstance(r, str) and not r.replayed]
    assert len(executed) == 1
    others = [r for r in results if isinstance(r, str) or r.replayed]
    assert all(r == "W-IDM-002" or r.replayed for r in others)
    assert len(results) == 32


def test_64_threads_competing_for_the_last_budget_unit_one_wins(
    tmp_path: Path, payments: warden.Project, clock: warden.FixedClock, backend: Any
) -> None:
    import dataclasses

    limits = dataclasses.replace(payments.agents[0].budgets, max_tool_calls=5)
    agent = dataclasses.replace(payments.agents[0], budgets=limits)
    with SQLiteStore(tmp_path / "w.db") as store:
        g = warden.Gate(
            policies=payments.policies,
            agents=[agent],
            tools=payments.tools,
            store=store,
            clock=clock,
        )
        for i in range(4):
            assert g.execute(pay(1, step=i)).ok
        barrier = threading.Barrier(64)
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            barrier.wait()
            r = g.execute(pay(1, step=100 + i))
            with lock:
                outcomes.append(r.state.value if r.ok else str(r.decision.code))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert outcomes.count("succeeded") == 1
    assert outcomes.count("W-BUD-001") == 63
    assert len(backend.all()) == 5


def test_budget_ledgers_survive_a_restart(
    open_gate: Callable[..., warden.Gate], backend: Any
) -> None:
    first = open_gate()
    for i in range(3):
        first.execute(pay(1, step=i, run="run_b"))
    first.store.close()  # type: ignore[attr-defined]
    second = open_gate()
    ledger = second.store.ledger("run_b")
    assert ledger is not None and ledger.calls == 3


def test_the_kill_switch_persists_and_reaches_another_process(
    open_gate: Callable[..., warden.Gate], backend: Any, db: Path
) -> None:
    agent_side = open_gate(kill_poll_s=0.0)
    operator_side = open_gate()  # another connection to the same file, as `warden kill` has
    operator_side.kill("agent:payer", by="olga", reason="incident 42")
    denied = agent_side.execute(pay(5))
    assert denied.decision.code == "W-KIL-001"
    run = agent_side.executor.store.run("run_1")
    assert run is not None and run.status is RunStatus.KILLED
    agent_side.store.close()  # type: ignore[attr-defined]
    reopened = open_gate()
    assert [k.scope for k in reopened.store.kills()] == ["agent:payer"]
    reopened.unkill("agent:payer", by="olga")
    assert reopened.execute(pay(5, run="run_2")).ok
    kinds = [k for (k,) in _rows(db, "SELECT kind FROM audit WHERE stream = 'system'")]
    assert kinds.count("kill") == 1 and kinds.count("unkill") == 1


def test_breaker_state_survives_a_restart(
    tmp_path: Path, payments: warden.Project, clock: warden.FixedClock, backend: Any
) -> None:
    import dataclasses

    agent = dataclasses.replace(
        payments.agents[0], breaker=warden.BreakerConfig(error_rate_max=0.1, min_calls=2)
    )

    def gate_on(store: SQLiteStore) -> warden.Gate:
        return warden.Gate(
            policies=payments.policies,
            agents=[agent],
            tools=payments.tools,
            store=store,
            clock=clock,
        )

    with SQLiteStore(tmp_path / "w.db") as store:
        g = gate_on(store)
        for i in range(3):
            g.execute(pay(1, tool="flaky_pay", step=i))
        state = store.breaker_state("payer")
        assert state is not None and state.phase.value == "open"
    with SQLiteStore(tmp_path / "w.db") as store:
        state = store.breaker_state("payer")
        assert state is not None and state.phase.value == "open"
        demoted = gate_on(store).execute(pay(1, step=50))
        assert demoted.decision.code == "W-BRK-001"


def test_execute_needs_a_durable_store(payments: warden.Project) -> None:
    with pytest.raises(warden.GateError) as err:
        payments.gate().execute(pay(1))
    assert err.value.code == "W-GATE-001"


def test_a_database_from_a_newer_warden_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StoreError) as err:
        SQLiteStore(path)
    assert err.value.code == "W-STO-002"


def test_a_file_that_is_not_a_warden_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError) as err:
        SQLiteStore(junk)
    assert err.value.code == "W-STO-003"
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (y)")
    conn.close()
    with pytest.raises(StoreError) as err:
        SQLiteStore(other)
    assert err.value.code == "W-STO-003"


def test_redacted_fields_never_reach_the_audit_log(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    gate.execute(pay(10, args={"card_number": "4242 4242 4242 4242", "note": "mail a@b.io"}))
    bodies = b"".join(bytes(b) for (b,) in _rows(db, "SELECT body FROM audit"))
    assert b"4242" not in bodies and b"a@b.io" not in bodies
    assert b'"$redacted"' in bodies
    vault = _rows(db, "SELECT path, kind FROM audit_vault ORDER BY path")
    assert ("decision.args.card_number", "field") in vault


def test_recovery_reconciles_or_marks_outcome_unknown(
    gate: warden.Gate, backend: Any, db: Path
) -> None:
    # two actions left 'executing' by a process that died: one took effect, one did not
    done = gate.execute(pay(7, idempotency_key="took-effect"))
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE actions SET state = 'executing', owner = 'elsewhere:1:x' WHERE id = ?",
        (done.action_id,),
    )
    conn.commit()
    conn.close()
    lost = gate.execute(pay(8, idempotency_key="never-ran"))
    backend.reset()
    backend.charge("took-effect", 7.0)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE actions SET state = 'executing' WHERE id = ?", (lost.action_id,))
    conn.commit()
    conn.close()
    settled = {e.action_id: e for e in gate.recover(force=True)}
    assert settled[done.action_id].state is ActionState.SUCCEEDED
    assert settled[lost.action_id].state is ActionState.FAILED
    assert settled[lost.action_id].error["code"] == "W-EXE-004"
    # the released key lets the call be proposed again, and it runs
    again = gate.execute(pay(8, idempotency_key="never-ran"))
    assert again.ok and not again.replayed
