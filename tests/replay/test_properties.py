"""The replay invariant, as a hypothesis property: whatever calls went through a real gate
on SQLite (facts, history, run budgets, loops, the kill switch, breakers, approvals,
night and day), replaying them under the recorded revision reproduces every decision."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.replay import world
from tests.replay.conftest import Desk
from warden.errors import WardenError
from warden.provenance import Content, Label
from warden.replay import ReplayStatus
from warden.runs import ActionState, Execution
from warden.store.sqlite import SQLiteStore


def _weighted(*pairs: tuple[Any, int]) -> st.SearchStrategy[Any]:
    return st.sampled_from([value for value, weight in pairs for _ in range(weight)])


_CALL = st.fixed_dictionaries(
    {
        "agent": _weighted(("desk", 5), ("cautious", 1)),
        "tool": _weighted(("refund", 2), ("lookup", 1)),
        "customer": _weighted(("c1", 3), ("c2", 3), ("c9", 1)),
        "amount": st.sampled_from([1, 5, 8, 12, 15, 30, 60, 77, 150]),
        "fail": _weighted((False, 5), (True, 1)),
        "run": st.sampled_from(["run_a", "run_b", "run_c"]),
        "vip": _weighted((False, 4), (True, 1)),
        "tainted": _weighted((False, 6), (True, 1)),
    }
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "call": _CALL,
    "advance": _weighted((30, 3), (600, 2), (3600, 1), (30_000, 1)),
    "kill": st.sampled_from(["agent:desk", "tool:lookup"]),
    "unkill": st.sampled_from(["agent:desk", "tool:lookup"]),
    "approve": st.none(),
    "end": st.sampled_from(["run_a", "run_b", "run_c"]),
}
_OP = _weighted(
    ("call", 16), ("advance", 3), ("kill", 1), ("unkill", 2), ("approve", 3), ("end", 1)
).flatmap(lambda kind: st.tuples(st.just(kind), _VALUES[kind]))


def _apply(desk: Desk, op: str, value: Any, waiting: list[Execution]) -> None:
    if op == "call":
        v = dict(value)
        args: dict[str, Any] = {"customer": v["customer"]}
        if v["tool"] == "refund":
            args |= {"amount": v["amount"], "fail": v["fail"]}
        done = desk.execute(
            world.call(
                v["tool"],
                agent=v["agent"],
                run=v["run"],
                context={"vip": True} if v["vip"] else {},
                content=(Content(text="mail", label=Label.UNTRUSTED),) if v["tainted"] else (),
                **args,
            )
        )
        if done.state is ActionState.AWAITING_APPROVAL:
            waiting.append(done)
    elif op == "advance":
        desk.clock.advance(value)
    elif op == "kill":
        desk.gate.kill(value, by="olga", reason="drill")
    elif op == "unkill":
        desk.gate.unkill(value, by="olga")
    elif op == "approve" and waiting:
        with contextlib.suppress(WardenError):  # expired, or held by a kill switch
            desk.approve_and_resume(waiting.pop(0))
    elif op == "end":
        desk.gate.end_run(value)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(_OP, min_size=10, max_size=50))
def test_replay_under_the_recorded_revision_reproduces_every_decision(
    ops: list[tuple[str, Any]],
) -> None:
    store = SQLiteStore.temporary()
    desk = Desk(store)
    try:
        waiting: list[Execution] = []
        for op, value in ops:
            _apply(desk, op, value, waiting)
        decisions = store.recorded_decisions()
        replayed = desk.replayer().replay(decisions)
        assert len(replayed) == len(decisions)
        wrong = [
            (r.tool, r.recorded, r.replayed, r.notes)
            for r in replayed
            if r.status is not ReplayStatus.SAME or r.notes or r.looked_up_now
        ]
        assert not wrong, wrong
    finally:
        desk.gate.executor.close()
        store.close()
