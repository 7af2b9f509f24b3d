"""The fleet summary: the operator's numbers over a set of runs, per agent too."""

from __future__ import annotations

from types import ModuleType

import pytest

import warden
from tests.runner.conftest import DONE, scripted, uses
from warden.fleet import FleetSummary, p95
from warden.runner import Runner, Task
from warden.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 0.0), ([5.0], 5.0), ([float(i) for i in range(1, 21)], 19.0), ([3.0, 1.0, 2.0], 3.0)],
)
def test_p95_is_the_nearest_rank(values: list[float], expected: float) -> None:
    assert p95(values) == expected


def test_the_summary_counts_outcomes_cost_and_agents(
    gate: warden.Gate, store: SQLiteStore, tools: ModuleType
) -> None:
    pay = uses("pay", payee="acme", amount_usd=5)
    runs = [
        Runner(gate, scripted(pay, DONE)).run(Task(agent="clerk", goal="Pay acme", key="A-1")),
        Runner(gate, scripted(pay, DONE)).run(Task(agent="clerk", goal="Pay acme", key="A-2")),
        Runner(gate, scripted(pay, pay, pay, DONE)).run(
            Task(agent="tight", goal="Pay acme thrice", key="B-1")
        ),
        Runner(gate, scripted(uses("pay", payee="acme", amount_usd=500), DONE)).run(
            Task(agent="clerk", goal="Pay acme a lot", key="A-3")
        ),
    ]
    summary = FleetSummary.of(store, [r.run_id for r in runs])

    assert (summary.runs, summary.succeeded, summary.escalated, summary.waiting) == (4, 2, 1, 1)
    assert summary.approvals_waiting == 1
    assert summary.success_rate == 0.5
    assert summary.escalation_codes == {"W-BUD-001": 1}
    assert summary.usd == pytest.approx(sum(r.usd for r in runs))
    assert summary.cost_per_success == pytest.approx(summary.usd / 2)
    clerk, tight = summary.by_agent["clerk"], summary.by_agent["tight"]
    assert (clerk.runs, clerk.succeeded, tight.runs, tight.succeeded) == (3, 2, 1, 0)
    assert tight.cost_per_success is None and clerk.cost_per_success is not None
    assert summary.p95_ms >= summary.p95_tool_ms
    assert summary.to_dict()["by_agent"]["clerk"]["runs"] == 3
    assert {r.task for r in store.runs(limit=10)} == {"A-1", "A-2", "A-3", "B-1"}
