"""The same three calls by the triage bot at each mode: only the write changes."""

import dataclasses

import warden

project = warden.load_project(".")
triage_bot = project.agent("triage_bot")
assert triage_bot is not None

calls = {
    "read": ("lookup_customer", {"customer_id": "cus_100"}),
    "draft": ("draft_reply", {"ticket_id": "T-1", "body": "Sorry about that!"}),
    "write": ("tag_ticket", {"ticket_id": "T-1", "tag": "billing"}),
}

print(f"{'mode':<17} {'read':<8} {'draft':<8} write")
for mode in warden.Mode:
    agent = dataclasses.replace(triage_bot, mode=mode)
    gate = warden.Gate(
        policies=project.policies,
        agents=[agent],
        tools=project.tools,
        facts=project.facts,
        clock=warden.FixedClock("2026-01-06T10:00:00+00:00"),
    )
    outcomes = {}
    for kind, (tool, args) in calls.items():
        decision = gate.decide(
            warden.ToolCall(agent="triage_bot", tool=tool, args=args, run_id="run_1")
        )
        outcomes[kind] = f"{decision.outcome}" + (f" ({decision.code})" if decision.code else "")
    print(f"{mode:<17} {outcomes['read']:<8} {outcomes['draft']:<8} {outcomes['write']}")
