"""Run tasks through the runner, approve the refund that waits, and resume its run."""

from order_tools import REFUNDS

import warden
from warden.execution import Approvals
from warden.models.config import build_runner
from warden.provenance import Content, Label
from warden.runner import RunResult, Task

project = warden.load_project(".")
EMAIL = "Hi, the lamp from ord_1002 never switched on. Please refund the $120. Thanks, Ana"


def show(result: RunResult) -> None:
    said = result.answer or f"[{result.code}] {result.reason}"
    print(f"{result.task}  {result.status:<9}  {said}")
    print(f"     {result.turns} turns, {result.tokens} tokens, ${result.usd:.6f}")


with warden.SQLiteStore.temporary() as store:
    runner = build_runner(project, store)  # the model route and limits of `runner:`

    show(runner.run(Task(agent="order_agent", key="T-1", goal="Refund the chipped mug, ord_1001.")))

    waiting = runner.run(
        Task(
            agent="order_agent",
            key="T-2",
            goal="Resolve the customer's email about order ord_1002.",
            content=(Content(text=EMAIL, label=Label.UNTRUSTED, source="email from ana"),),
            on_behalf_of="ana",  # the customer; she may not approve her own refund
        )
    )
    show(waiting)

    assert waiting.escalation is not None
    approval = waiting.escalation["proposed"]["approval_id"]
    Approvals(store, roles=project.roles, clock=runner.gate.clock).approve(approval, approver="sam")
    for resumed in runner.resume_ready():  # every waiting run whose approval was decided
        show(resumed)

    print(f"refunds made: {[r['order_id'] for r in REFUNDS]}")
    try:
        runner.resume(waiting.run_id)
    except warden.RunError as error:
        print(f"resume again: {error.code}, the run has ended")
    runner.gate.executor.close()
