"""Recovery after a real crash, beyond the matrix's single recoverer.

Each test crashes a real process with SIGKILL through the fork server (no recovery
there), then recovers in this process and states what must hold: two recoverers never
both settle one action, a call settled by recovery counts against its run's budget, and
a dead owner whose pid was reused is still recognised as dead.
"""

from __future__ import annotations

import dataclasses
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from tests.crash.children import BACKEND, DB, PAYMENTS
from tests.crash.conftest import ForkServer
from tests.crash.invariants import gather
from tests.crash.plan import RECONCILED_TOOL, CallSpec, RunSpec
from warden.budgets import BudgetLimits
from warden.decision import Outcome
from warden.runs import ActionState, ActionView
from warden.store.sqlite import SQLiteStore

PAY_40 = CallSpec(
    tool=RECONCILED_TOOL, run_id="run_x", step=1, payee="acme", amount_usd=40.0, key="key_x"
)


def _crash(forkserver: ForkServer, run_dir: Path, point: str) -> None:
    """One $40 payment, SIGKILLed at `point`; the action is left executing."""
    spec = RunSpec(
        index=0,
        seed="fixed",
        point=point,
        variant="after_effect" if point == "during_call" else "",
        crash_after=0,
        threads=1,
        calls=(PAY_40,),
        recover=False,
    )
    ended = forkserver.run(spec, run_dir)
    assert ended["crash"]["signal"] == 9, ended


@pytest.fixture(scope="module")
def payments() -> warden.Project:
    return warden.load_project(PAYMENTS)


@pytest.fixture
def stores(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SQLiteStore]]:
    monkeypatch.setenv("WARDEN_TEST_BACKEND", str(run_dir / BACKEND))
    opened: list[SQLiteStore] = []
    yield opened
    for s in opened:
        s.close()


def _open(stores: list[SQLiteStore], run_dir: Path) -> SQLiteStore:
    store = SQLiteStore(run_dir / DB)
    stores.append(store)
    return store


@pytest.mark.timeout(60)
def test_a_second_recoverer_never_overwrites_an_action_already_settled(
    forkserver: ForkServer,
    run_dir: Path,
    payments: warden.Project,
    stores: list[SQLiteStore],
) -> None:
    # two processes restart after the crash and both recover. B lists the executing
    # action; before B reconciles it, A settles it (no effect: failed, key released) and
    # the agent's retry pays. B's reconcile hook now finds that payment by key.
    _crash(forkserver, run_dir, "after_record")
    a = payments.gate(store=_open(stores, run_dir))
    b_store = _open(stores, run_dir)
    b = payments.gate(store=b_store)
    listed = b_store.open_actions

    def a_recovers_and_the_agent_retries(state: ActionState) -> list[ActionView]:
        views = list(listed(state))
        assert [e.state for e in a.recover()] == [ActionState.FAILED]
        assert a.execute(warden.ToolCall(**PAY_40.as_call_kwargs())).ok
        return views

    b_store.open_actions = a_recovers_and_the_agent_retries  # type: ignore[method-assign]
    b.recover()
    evidence = gather(run_dir)
    assert len(evidence.effects) == 1
    # one payment, so one succeeded action; the first never ran and must stay failed
    states = sorted(action.state for action in evidence.actions.values())
    assert states == ["failed", "succeeded"], states


@pytest.mark.timeout(60)
def test_a_payment_settled_by_recovery_still_counts_against_the_run_budget(
    forkserver: ForkServer,
    run_dir: Path,
    payments: warden.Project,
    stores: list[SQLiteStore],
) -> None:
    # the $40 payment happened; the process died before recording its outcome
    _crash(forkserver, run_dir, "before_outcome")
    payer = payments.agents[0]
    capped = dataclasses.replace(payer, budgets=BudgetLimits(max_usd=50.0))
    gate = warden.Gate(
        policies=payments.policies,
        agents=[capped],
        tools=payments.tools,
        store=_open(stores, run_dir),
    )
    assert [e.state for e in gate.recover()] == [ActionState.SUCCEEDED]
    # a second $40 payment in the run would spend $80 of a $50 budget
    second = dataclasses.replace(PAY_40, step=2, key="key_y")
    decision = gate.decide(warden.ToolCall(**second.as_call_kwargs()))
    assert decision.outcome is Outcome.DENY, decision.reasons


@pytest.mark.timeout(60)
def test_an_action_whose_dead_owner_pid_was_reused_is_still_recovered(
    forkserver: ForkServer,
    run_dir: Path,
    payments: warden.Project,
    stores: list[SQLiteStore],
) -> None:
    _crash(forkserver, run_dir, "during_call")
    store = _open(stores, run_dir)
    (view,) = store.open_actions(ActionState.EXECUTING)
    # the dead owner's pid now belongs to another live process (here: the fork server)
    host, pid, token = view.owner.split(":")
    assert host == socket.gethostname() and int(pid) != forkserver.proc.pid
    reused = f"{host}:{forkserver.proc.pid}:{token}"
    conn = sqlite3.connect(run_dir / DB)
    with conn:
        conn.execute("UPDATE actions SET owner = ? WHERE id = ?", (reused, view.id))
    conn.close()
    gate = payments.gate(store=store)
    assert [e.state for e in gate.recover()] == [ActionState.SUCCEEDED]
