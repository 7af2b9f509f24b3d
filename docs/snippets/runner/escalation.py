"""The escalation packet of a run that waits for approval: as text, and part of its JSON."""

import json

import warden
from warden.models.scripted import ScriptedModel
from warden.provenance import Content, Label
from warden.runner import RunLimits, Runner, Task, render_escalation

project = warden.load_project(".")
clock = warden.FixedClock("2026-03-02T09:00:00+00:00")
EMAIL = "Hi, the lamp from ord_1002 never switched on. Please refund the $120. Thanks, Ana"

with warden.SQLiteStore.temporary() as store:
    gate = project.gate(store=store, clock=clock, ids=warden.CountingIds())
    runner = Runner(gate, ScriptedModel.load("model_script.yaml"), limits=RunLimits(max_turns=6))
    result = runner.run(
        Task(
            agent="order_agent",
            key="T-2",
            goal="Resolve the customer's email about order ord_1002.",
            content=(Content(text=EMAIL, label=Label.UNTRUSTED, source="email from ana"),),
            on_behalf_of="ana",
        )
    )
    packet = result.escalation
    assert packet is not None
    print(render_escalation(packet))
    print()
    print(json.dumps(packet["stopped_by"], indent=2))
    gate.executor.close()
