"""Scripted faults: a model that fails, a cascade that survives it, and broken arguments."""

import warden
from warden.models.route import Route
from warden.models.scripted import ScriptedModel
from warden.runner import Runner, Task

project = warden.load_project(".")
flaky = ScriptedModel.load("flaky_script.yaml")
steady = ScriptedModel.load("model_script.yaml")


def mug(key: str) -> Task:
    return Task(agent="order_agent", key=key, goal="Refund the chipped mug, ord_1001.")


with warden.SQLiteStore.temporary() as store:
    gate = project.gate(store=store, ids=warden.CountingIds())

    alone = Runner(gate, flaky).run(mug("T-1"))
    print(f"flaky alone:  {alone.status} [{alone.code}] {alone.reason}")

    routed = Runner(gate, Route(models=(flaky, steady))).run(mug("T-1"))
    print(f"flaky first:  {routed.status}, {routed.answer}")
    for e in routed.timeline:
        if e["kind"] == "model":
            print(f"  {e['model']:<15} {e['error'] or 'answered'}")

    garbled = Runner(gate, steady).run(mug("T-3"))
    print(f"cut-off args: {garbled.status}, {garbled.answer}")
    for e in garbled.timeline:
        if e["kind"] in ("malformed", "tool"):
            print(f"  {e['kind']:<9} {e['tool']} {e.get('state') or e['raw']}")

    other = Runner(gate, steady).run(Task(agent="order_agent", key="T-9", goal="Close my account."))
    print(f"no script:    {other.status}, {other.answer}")
    gate.executor.close()
