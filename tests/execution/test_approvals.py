"""Approvals: bound to the exact call, single use, role and count, expiry, no self-approval."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import warden
from tests.execution.conftest import pay
from warden.approvals import ApprovalStatus
from warden.errors import ApprovalError
from warden.execution import Approvals
from warden.runs import ActionState, RunStatus


def _refused(fn: Callable[[], Any]) -> str:
    with pytest.raises(ApprovalError) as err:
        fn()
    return err.value.code


def test_a_call_over_the_limit_waits_and_runs_once_after_approval(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    assert waiting.state is ActionState.AWAITING_APPROVAL and waiting.approval_id
    assert backend.all() == []
    run = gate.executor.store.run("run_1")
    assert run is not None and run.status is RunStatus.WAITING
    request = approvals.approve(waiting.approval_id, approver="fiona", reason="looks right")
    assert request.status is ApprovalStatus.APPROVED
    assert request.verdicts[0].approver == "fiona" and request.verdicts[0].reason == "looks right"
    done = gate.resume(waiting.action_id)
    assert done.state is ActionState.SUCCEEDED
    assert len(backend.all()) == 1
    # the agent retrying the same call gets the stored result; resuming again runs nothing
    assert gate.execute(pay(500)).replayed
    assert gate.resume(waiting.action_id).replayed
    assert len(backend.all()) == 1


def test_retrying_while_pending_opens_no_second_request(
    gate: warden.Gate, approvals: Approvals
) -> None:
    first = gate.execute(pay(500))
    second = gate.execute(pay(500))
    assert second.approval_id == first.approval_id
    assert second.state is ActionState.AWAITING_APPROVAL
    assert len(approvals.list()) == 1


def test_the_agent_retrying_after_approval_runs_the_approved_action(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="frank")
    done = gate.execute(pay(500))
    assert done.state is ActionState.SUCCEEDED and done.action_id == waiting.action_id
    assert len(backend.all()) == 1


def test_approval_survives_a_restart_and_executes_exactly_once(
    open_gate: Callable[..., warden.Gate], payments: warden.Project, backend: Any, clock: Any
) -> None:
    first = open_gate()
    waiting = first.execute(pay(500))
    first.store.close()  # type: ignore[attr-defined]  # the agent process goes away
    operator = open_gate()
    Approvals(operator.executor.store, roles=payments.roles, clock=clock).approve(
        waiting.approval_id, approver="fiona"
    )
    operator.store.close()  # type: ignore[attr-defined]
    restarted = open_gate()
    done = restarted.resume(waiting.action_id)
    assert done.state is ActionState.SUCCEEDED
    assert restarted.resume(waiting.action_id).replayed
    assert len(backend.all()) == 1


def test_concurrent_resumes_execute_once(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona")
    barrier = threading.Barrier(16)
    outcomes: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            r = gate.resume(waiting.action_id)
            outcomes.append("ran" if not r.replayed else r.state.value)
        except ApprovalError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ran") == 1
    assert len(backend.all()) == 1


def test_an_approval_replayed_with_other_arguments_is_refused(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona")
    code = _refused(lambda: gate.execute(pay(900), approval_id=waiting.approval_id))
    assert code == "W-APR-001"
    code = _refused(lambda: gate.execute(pay(500, run="run_2"), approval_id=waiting.approval_id))
    assert code == "W-APR-001"
    assert backend.all() == []
    # with the exact call it runs
    assert gate.execute(pay(500), approval_id=waiting.approval_id).ok


def test_changed_arguments_need_a_new_approval(gate: warden.Gate, approvals: Approvals) -> None:
    first = gate.execute(pay(500))
    approvals.approve(first.approval_id, approver="fiona")
    changed = gate.execute(pay(501))
    assert changed.state is ActionState.AWAITING_APPROVAL
    assert changed.approval_id != first.approval_id


def test_an_approval_used_twice_is_refused(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona")
    assert gate.execute(pay(500), approval_id=waiting.approval_id).ok
    assert _refused(lambda: gate.execute(pay(500), approval_id=waiting.approval_id)) == "W-APR-004"
    assert len(backend.all()) == 1


def test_an_expired_approval_is_refused(
    gate: warden.Gate, approvals: Approvals, clock: warden.FixedClock, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    clock.advance(3601)  # the fixture's expire_after is 1h
    assert _refused(lambda: approvals.approve(waiting.approval_id, approver="fiona")) == "W-APR-002"
    late = gate.execute(pay(500))
    assert late.state is ActionState.REJECTED


def test_an_approval_that_expires_after_approval_cannot_run(
    gate: warden.Gate, approvals: Approvals, clock: warden.FixedClock, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona")
    clock.advance(3601)
    assert _refused(lambda: gate.execute(pay(500), approval_id=waiting.approval_id)) == "W-APR-002"
    assert backend.all() == []


def test_the_requester_cannot_approve(
    gate: warden.Gate, payments: warden.Project, clock: Any
) -> None:
    waiting = gate.execute(pay(500, on_behalf_of="fiona"))
    approvals = Approvals(gate.executor.store, roles=payments.roles, clock=clock)
    assert _refused(lambda: approvals.approve(waiting.approval_id, approver="fiona")) == "W-APR-003"
    assert (
        approvals.approve(waiting.approval_id, approver="frank").status is ApprovalStatus.APPROVED
    )


def test_two_person_rule_needs_distinct_approvers_and_every_role(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(5000))
    request = approvals.get(waiting.approval_id)
    assert set(request.roles) == {"finance", "ops"} and request.count == 2
    after_one = approvals.approve(waiting.approval_id, approver="fiona")
    assert after_one.status is ApprovalStatus.PENDING
    assert after_one.missing() == (("ops",), 1)
    assert _refused(lambda: approvals.approve(waiting.approval_id, approver="fiona")) == "W-APR-005"
    # frank holds finance only: the request still needs ops
    assert (
        _refused(lambda: approvals.approve(waiting.approval_id, approver="frank", role="ops"))
        == "W-APR-006"
    )
    assert _refused(lambda: gate.resume(waiting.action_id)) == "W-APR-009"
    done = approvals.approve(waiting.approval_id, approver="olga")
    assert done.status is ApprovalStatus.APPROVED
    assert gate.resume(waiting.action_id).ok


def test_someone_without_a_role_cannot_approve(gate: warden.Gate, approvals: Approvals) -> None:
    waiting = gate.execute(pay(500))
    assert (
        _refused(lambda: approvals.approve(waiting.approval_id, approver="mallory")) == "W-APR-006"
    )


def test_a_denied_approval_rejects_the_action(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    request = approvals.deny(waiting.approval_id, approver="fiona", reason="wrong payee")
    assert request.status is ApprovalStatus.DENIED
    assert _refused(lambda: gate.execute(pay(500), approval_id=waiting.approval_id)) == "W-APR-007"
    assert gate.execute(pay(500)).state is ActionState.REJECTED
    assert _refused(lambda: approvals.approve(waiting.approval_id, approver="frank")) == "W-APR-004"
    assert backend.all() == []


def test_an_unknown_approval_is_refused(gate: warden.Gate, approvals: Approvals) -> None:
    assert _refused(lambda: approvals.approve("apr_nope", approver="fiona")) == "W-APR-008"
    assert _refused(lambda: gate.execute(pay(5), approval_id="apr_nope")) == "W-APR-008"


def test_a_changed_policy_invalidates_the_approval(
    open_gate: Callable[..., warden.Gate], payments: warden.Project, clock: Any, backend: Any
) -> None:
    g = open_gate()
    waiting = g.execute(pay(500))
    Approvals(g.executor.store, roles=payments.roles, clock=clock).approve(
        waiting.approval_id, approver="fiona"
    )
    newer = warden.policy_from_text(
        "policy:\n  tools: [pay]\n  rules:\n    - if: 'amount_usd <= 10000'\n      allow: true\n"
    )
    g2 = warden.Gate(
        policies=newer,
        agents=payments.agents,
        tools=payments.tools,
        store=g.store,
        clock=clock,
    )
    assert _refused(lambda: g2.resume(waiting.action_id)) == "W-APR-001"
    assert backend.all() == []


def test_verdicts_are_audited(gate: warden.Gate, approvals: Approvals) -> None:
    waiting = gate.execute(pay(500))
    approvals.approve(waiting.approval_id, approver="fiona", reason="ok")
    gate.resume(waiting.action_id)
    store: Any = gate.executor.store
    kinds = [row[1] for row in _kinds(store)]
    assert kinds == [
        "config.load",
        "decision",
        "approval.request",
        "approval.verdict",
        "approval.used",
        "outcome",
    ]


def _kinds(store: Any) -> list[tuple[int, str]]:
    import json

    return [(seq, json.loads(body)["kind"]) for seq, _s, _n, body, _h in store.audit_rows()]


def test_the_run_waits_then_runs_again_and_can_be_ended(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    store = gate.executor.store
    assert store.run("run_1").status is RunStatus.WAITING  # type: ignore[union-attr]
    approvals.approve(waiting.approval_id, approver="fiona")
    gate.resume(waiting.action_id)
    assert store.run("run_1").status is RunStatus.RUNNING  # type: ignore[union-attr]
    gate.end_run("run_1", outcome="paid acme")
    ended = store.run("run_1")
    assert ended is not None and ended.status is RunStatus.SUCCEEDED
    assert ended.outcome == "paid acme"


def test_wait_polls_until_people_approve_then_runs_once(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    assert waiting.approval_id is not None
    still = gate.wait(waiting.action_id, timeout_s=0.05, poll_s=0.01)
    assert still.state is ActionState.AWAITING_APPROVAL and backend.all() == []
    later = threading.Timer(
        0.1, lambda: approvals.approve(waiting.approval_id or "", approver="fiona")
    )
    later.start()
    try:
        done = gate.wait(waiting.action_id, timeout_s=10, poll_s=0.02)
    finally:
        later.join()
    assert done.state is ActionState.SUCCEEDED
    assert len(backend.all()) == 1


def test_wait_returns_at_once_when_people_deny(
    gate: warden.Gate, approvals: Approvals, backend: Any
) -> None:
    waiting = gate.execute(pay(500))
    approvals.deny(waiting.approval_id or "", approver="fiona", reason="no")
    done = gate.wait(waiting.action_id, timeout_s=30, poll_s=0.01)
    assert done.state is ActionState.REJECTED
    assert backend.all() == []
