"""The durable store contract: what every backend must do, tested through the protocol only.

The `backend` fixture lists the stores this module runs against; a new backend (PostgreSQL)
joins by adding a factory, and the tests below run on it unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from warden.approvals import ApprovalRequest, ApprovalStatus, Verdict, check_verdict
from warden.audit.verify import verify_rows
from warden.budgets import Amounts, BudgetLimits
from warden.errors import ApprovalError
from warden.policy.evaluate import PolicySource
from warden.runs import ActionState, RunStatus
from warden.store.protocol import ActionOutcome, DurableStore, NewAction
from warden.store.sqlite import SQLiteStore

Factory = Callable[[], DurableStore]


def _sqlite(tmp_path: Path) -> Factory:
    return lambda: SQLiteStore(tmp_path / "contract.db")


def _postgres(tmp_path: Path) -> Factory:
    from tests.store.conftest import postgres_database
    from warden.store.postgres import PostgresStore

    url = postgres_database()
    return lambda: PostgresStore(url)


BACKENDS: dict[str, Callable[[Path], Factory]] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(BACKENDS))
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Opens the backend; calling it again opens it afresh on the same data (a restart)."""
    opened: list[DurableStore] = []
    factory = BACKENDS[request.param](tmp_path)

    def open_store() -> DurableStore:
        store = factory()
        opened.append(store)
        return store

    yield open_store
    for s in opened:
        s.close()


@pytest.fixture
def store(reopen: Factory) -> DurableStore:
    return reopen()


_counter = iter(range(1, 1_000_000))


def action(
    store: DurableStore,
    *,
    key: str | None = "k1",
    state: ActionState = ActionState.EXECUTING,
    args: dict[str, Any] | None = None,
    approval: ApprovalRequest | None = None,
    run: str = "run_1",
    agent: str = "a1",
    **more: Any,
) -> NewAction:
    n = next(_counter)
    return NewAction(
        id=more.pop("id", f"act_{n}"),
        run_id=run,
        agent=agent,
        tool="pay",
        step=None,
        state=state,
        outcome="allow",
        code=None,
        reasons=("ok",),
        args=args if args is not None else {"amount_usd": 5.0},
        idem_key=key,
        request_hash=more.pop("request_hash", "h1"),
        owner=store.owner,
        decided_at=1000.0 + n,
        policy_revision="sha256:rev",
        started_by=None,
        decision={"outcome": "allow"},
        approval=approval,
        **more,
    )


def outcome(a: NewAction, state: ActionState = ActionState.SUCCEEDED, **more: Any) -> ActionOutcome:
    return ActionOutcome(
        action_id=a.id,
        run_id=a.run_id,
        agent=a.agent,
        tool=a.tool,
        state=state,
        at=2000.0,
        **more,
    )


def request(a_id: str, *, roles: tuple[str, ...] = ("finance",), count: int = 1) -> ApprovalRequest:
    return ApprovalRequest(
        id=f"apr_{a_id}",
        action_id=a_id,
        run_id="run_1",
        agent="a1",
        tool="pay",
        args={"amount_usd": 5.0},
        binding="sha256:b",
        policy_revision="sha256:rev",
        roles=roles,
        count=count,
        requested_by=("a1",),
        requested_at=1000.0,
        expires_at=5000.0,
        status=ApprovalStatus.PENDING,
    )


def test_recording_a_decision_claims_its_key_once(store: DurableStore) -> None:
    first = action(store)
    assert store.record_decision(first) is None
    second = action(store)
    found = store.record_decision(second)
    assert found is not None and found.id == first.id
    assert store.action(second.id) is None
    assert store.action_by_key("a1", "k1").id == first.id  # type: ignore[union-attr]
    assert store.action_by_key("a2", "k1") is None  # keys are per agent


def test_concurrent_claims_of_one_key_leave_one_action(store: DurableStore) -> None:
    barrier = threading.Barrier(16)
    winners: list[str] = []

    def claim() -> None:
        a = action(store, key="race")
        barrier.wait()
        if store.record_decision(a) is None:
            winners.append(a.id)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_an_outcome_is_stored_and_replayable_after_a_restart(reopen: Factory) -> None:
    store = reopen()
    a = action(store)
    store.record_decision(a)
    store.record_outcome(outcome(a, result={"id": 7}, attempts=1, ledger=(1, 0.5, 0)))
    store.close()
    again = reopen()
    view = again.action_by_key("a1", "k1")
    assert view is not None and view.state is ActionState.SUCCEEDED and view.result == {"id": 7}
    run = again.run("run_1")
    assert run is not None and (run.calls, run.usd) == (1, 0.5)
    assert [x.id for x in run.actions] == [a.id]


def test_a_released_key_can_be_claimed_again(store: DurableStore) -> None:
    a = action(store)
    store.record_decision(a)
    store.record_outcome(outcome(a, ActionState.FAILED, release_key=True))
    assert store.action_by_key("a1", "k1") is None
    assert store.record_decision(action(store)) is None


def test_open_actions_lists_the_executing_ones(store: DurableStore) -> None:
    a, b = action(store, key="x"), action(store, key="y")
    store.record_decision(a)
    store.record_decision(b)
    store.record_outcome(outcome(a))
    assert [v.id for v in store.open_actions(ActionState.EXECUTING)] == [b.id]


def test_a_deny_is_recorded_without_a_key(store: DurableStore) -> None:
    a = action(store, key=None, state=ActionState.DECIDED, run_status=RunStatus.ESCALATED)
    assert store.record_decision(a) is None
    run = store.run("run_1")
    assert run is not None and run.status is RunStatus.ESCALATED


def _judge(approver: str, roles: frozenset[str], approve: bool = True) -> Callable[..., Verdict]:
    return lambda req: check_verdict(
        req,
        approver=approver,
        approver_roles=roles,
        approve=approve,
        role=None,
        reason="",
        now=1500.0,
    )


def test_verdicts_move_a_request_and_spending_it_is_atomic(store: DurableStore) -> None:
    n = next(_counter)
    req = request(f"act_a{n}")
    a = action(store, id=f"act_a{n}", state=ActionState.AWAITING_APPROVAL, approval=req)
    store.record_decision(a)
    assert store.approval(req.id).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    done = store.add_verdict(req.id, _judge("fiona", frozenset({"finance"})))
    assert done.status is ApprovalStatus.APPROVED
    wins: list[str] = []

    def spend() -> None:
        try:
            store.start_approved(req.id, a.id, owner=store.owner, at=1600.0)
            wins.append("won")
        except ApprovalError as exc:
            wins.append(exc.code)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == ["W-APR-004"] * 7 + ["won"]
    assert store.approval(req.id).status is ApprovalStatus.USED  # type: ignore[union-attr]
    assert store.action(a.id).state is ActionState.EXECUTING  # type: ignore[union-attr]


def test_a_refused_verdict_writes_nothing(store: DurableStore) -> None:
    n = next(_counter)
    req = request(f"act_b{n}")
    store.record_decision(
        action(store, id=f"act_b{n}", state=ActionState.AWAITING_APPROVAL, approval=req)
    )
    with pytest.raises(ApprovalError):
        store.add_verdict(req.id, _judge("mallory", frozenset()))
    assert store.approval(req.id).verdicts == ()  # type: ignore[union-attr]


def test_expiry_rejects_the_waiting_action(store: DurableStore) -> None:
    n = next(_counter)
    req = request(f"act_c{n}")
    store.record_decision(
        action(store, id=f"act_c{n}", state=ActionState.AWAITING_APPROVAL, approval=req)
    )
    assert store.expire_approvals(4999.0) == 0
    assert store.expire_approvals(5000.0) == 1
    assert store.approval(req.id).status is ApprovalStatus.EXPIRED  # type: ignore[union-attr]
    assert store.action(f"act_c{n}").state is ActionState.REJECTED  # type: ignore[union-attr]


def test_kill_switches_persist(reopen: Factory) -> None:
    store = reopen()
    store.set_kill("tool:pay", engaged=True, by="olga", reason="incident", at=1.0)
    store.close()
    again = reopen()
    found = again.killed("a1", "pay")
    assert found is not None and found.by == "olga"
    again.set_kill("tool:pay", engaged=False, by="olga", reason="", at=2.0)
    assert again.killed("a1", "pay") is None


def test_budget_ledgers_persist_through_outcomes(reopen: Factory) -> None:
    store = reopen()
    limits = BudgetLimits(max_tool_calls=3)
    held = store.reserve("run_1", limits, Amounts(calls=1), 10.0)
    a = action(store)
    store.record_decision(a)
    store.settle(held, Amounts(calls=1))  # type: ignore[arg-type]
    ledger = store.ledger("run_1")
    assert ledger is not None
    store.record_outcome(
        outcome(a, ledger=(ledger.committed_calls, ledger.committed_usd, ledger.committed_tokens))
    )
    store.close()
    again = reopen()
    assert again.ledger("run_1").calls == 1  # type: ignore[union-attr]


def test_every_write_leaves_a_verifying_audit_chain(reopen: Factory) -> None:
    store = reopen()
    a = action(store)
    store.record_decision(a)
    store.record_outcome(outcome(a, result={"card": "4242 4242 4242 4242"}))
    store.audit("system", "note", {"hello": "world"}, at=3.0)
    store.set_kill("all", engaged=True, by="olga", reason="drill", at=4.0)
    store.end_run("run_1", RunStatus.SUCCEEDED, at=5.0, outcome="done", reason=None)
    store.close()
    again = reopen()
    report = verify_rows(again.audit_rows())
    assert report.records == 5
    again.audit("system", "note", {"after": "restart"}, at=6.0)
    assert verify_rows(again.audit_rows()).records == 6


def test_runs_are_listed_newest_first_and_can_end(store: DurableStore) -> None:
    store.record_decision(action(store, key="r1", run="run_a"))
    store.record_decision(action(store, key="r2", run="run_b"))
    assert [r.id for r in store.runs()] == ["run_b", "run_a"]
    store.end_run("run_a", RunStatus.SUCCEEDED, at=9.0, outcome="refunded", reason=None)
    ended = store.run("run_a")
    assert ended is not None and ended.status is RunStatus.SUCCEEDED and ended.outcome == "refunded"
    assert [r.id for r in store.runs(status=RunStatus.SUCCEEDED)] == ["run_a"]


# --- replay: recorded decisions and policy revisions ---------------------------------------


def _decided(store: DurableStore, *, stage: str = "policy", **more: Any) -> NewAction:
    """An action whose decision says what it read, as `Gate.decide` records it."""
    inputs = more.pop("inputs", {"now": 1.0, "context": {"tier": "gold"}, "repeats": 1})
    changes = {k: more.pop(k) for k in ("decided_at", "outcome") if k in more}
    a = action(store, **more)
    decision = {
        "outcome": a.outcome,
        "stage": stage,
        "rules": [{"id": "refunds-small", "file": "p.yaml", "line": 3}],
        "mode": "act",
        "inputs": inputs,
    }
    return replace(a, decision=decision, **changes)


def test_a_policy_revision_is_kept_once_with_its_sources(reopen: Factory) -> None:
    store = reopen()
    sources = (
        PolicySource(name="agents/a.yaml", text="agent: {name: a}\n", kind="manifest"),
        PolicySource(name="policies/p.yaml", text="policy:\n  rules: []\n"),
    )
    assert store.policy_revision("sha256:r1") is None
    store.save_policy_revision("sha256:r1", sources, at=10.0)
    store.save_policy_revision("sha256:r1", sources[:1], at=20.0)  # kept as first saved
    store.close()
    kept = reopen().policy_revision("sha256:r1")
    assert kept is not None
    assert kept.sources == sources and kept.first_seen == 10.0


def test_recorded_decisions_come_back_in_decision_order_with_what_they_read(
    store: DurableStore,
) -> None:
    late = _decided(store, key="k1", run="run_x")
    early = _decided(store, key="k2", run="run_x", stage="budget", decided_at=late.decided_at - 5)
    other = _decided(store, key="k3", run="run_y", agent="a2")
    for a in (late, early, other):
        store.record_decision(a)
    found = store.recorded_decisions(run_id="run_x")
    assert [d.action_id for d in found] == [early.id, late.id]
    d = found[1]
    assert (d.stage, d.rule_ids, d.mode, d.policy_revision) == (
        "policy",
        ("refunds-small",),
        "act",
        "sha256:rev",
    )
    assert d.inputs == {"now": 1.0, "context": {"tier": "gold"}, "repeats": 1}
    assert d.args == {"amount_usd": 5.0} and d.outcome == "allow" and d.approved_at is None
    assert [d.inputs for d in store.recorded_decisions(run_id="run_x", inputs=False)] == [None] * 2
    window = store.recorded_decisions(since=early.decided_at, until=other.decided_at)
    assert [d.action_id for d in window] == [early.id, late.id]  # until is excluded
    assert [d.action_id for d in store.recorded_decisions(agent="a2")] == [other.id]


def test_a_recorded_decision_knows_when_its_approval_was_spent(store: DurableStore) -> None:
    n = next(_counter)
    req = request(f"act_r{n}")
    a = _decided(store, id=f"act_r{n}", state=ActionState.AWAITING_APPROVAL, approval=req)
    store.record_decision(a)
    store.add_verdict(req.id, _judge("fiona", frozenset({"finance"})))
    store.start_approved(req.id, a.id, owner=store.owner, at=1600.0)
    (found,) = store.recorded_decisions(run_id="run_1")
    assert found.approved_at == 1600.0


def test_history_after_a_restart_holds_a_spent_approval_as_the_process_did(
    reopen: Factory,
) -> None:
    """The approved action counts as allowed, from when it started, as `Executor` records
    it in the process: a restart does not change what `history.*` conditions see."""
    store = reopen()
    n = next(_counter)
    req = request(f"act_h{n}")
    a = _decided(
        store,
        id=f"act_h{n}",
        state=ActionState.AWAITING_APPROVAL,
        approval=req,
        outcome="needs_approval",
        decided_at=2e9,  # the stores load the last 90 days of history
    )
    store.record_decision(a)
    store.add_verdict(req.id, _judge("fiona", frozenset({"finance"})))
    store.start_approved(req.id, a.id, owner=store.owner, at=2e9 + 60)
    store.close()
    seen = [(r.at, r.outcome, r.approved) for r in reopen().history("a1")]
    assert seen == [(2e9, "needs_approval", False), (2e9 + 60, "allow", True)]
