"""The order agent's tasks, run end to end with the scripted model: a small eval."""

from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from warden.execution import Approvals
from warden.models.scripted import ScriptedModel
from warden.provenance import Content, Label
from warden.runner import Runner, Task

HERE = Path(__file__).parent
EMAIL = Content(text="Please refund my lamp.", label=Label.UNTRUSTED, source="email")


@pytest.fixture
def runner() -> Iterator[Runner]:
    project = warden.load_project(HERE)
    with warden.SQLiteStore.temporary() as store:
        gate = project.gate(store=store, clock=warden.FixedClock())
        yield Runner(gate, ScriptedModel.load(HERE / "model_script.yaml"))
        gate.executor.close()


@pytest.mark.parametrize(
    ("key", "content", "status", "code"),
    [
        ("T-1", (), "succeeded", None),
        ("T-2", (EMAIL,), "waiting", "W-APR-009"),
        ("T-2", (), "succeeded", None),  # the same refund, without untrusted text
        ("T-3", (), "succeeded", None),
    ],
    ids=["small refund", "refund from an email", "refund from the task alone", "cut-off args"],
)
def test_each_task_ends_as_expected(
    runner: Runner, key: str, content: tuple[Content, ...], status: str, code: str | None
) -> None:
    result = runner.run(Task(agent="order_agent", key=key, goal="Help.", content=content))

    assert (result.status, result.code) == (status, code)


def test_an_approved_refund_runs_once_after_the_resume(runner: Runner) -> None:
    from order_tools import REFUNDS  # the project's module, imported by load_project

    before = len(REFUNDS)
    waiting = runner.run(Task(agent="order_agent", key="T-2", goal="Help.", content=(EMAIL,)))
    assert waiting.escalation is not None
    approval = waiting.escalation["proposed"]["approval_id"]
    roles = warden.load_project(HERE).roles
    Approvals(runner.store, roles=roles, clock=runner.gate.clock).approve(approval, approver="sam")

    done = runner.resume(waiting.run_id)

    assert done.status == "succeeded"
    assert len(REFUNDS) == before + 1
    with pytest.raises(warden.RunError, match="has ended"):
        runner.resume(waiting.run_id)
