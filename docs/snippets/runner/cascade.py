"""A cascade (a cheap model first, a strong one when it doubts) and the two caches."""

import warden
from warden.fleet import FleetSummary
from warden.models.route import ResponseCache, Route
from warden.models.scripted import ScriptedModel
from warden.runner import Runner, Task

LOOKUP = {"calls": [{"lookup_order": {"order_id": "ord_1002"}}], "confidence": 0.9}
REFUND = {"calls": [{"refund": {"order_id": "ord_1001", "amount_usd": 30.0}}]}
cheap = ScriptedModel(
    {
        "T-4": [LOOKUP, {"text": "Your lamp was delivered.", "confidence": 0.9}],
        "T-5": [{**REFUND, "confidence": 0.6}, {"text": "Refunded $30.", "confidence": 0.9}],
    },
    name="cheap",
    prices_as=("openai", "gpt-4o-mini"),
)
strong = ScriptedModel(
    {"T-5": [{**REFUND, "confidence": 0.95}, {"text": "Refunded $30."}]},
    name="strong",
    prices_as=("openai", "gpt-4o"),
)
route = Route(models=(cheap, strong), min_confidence={"high_risk": 0.8})

project = warden.load_project(".")
with warden.SQLiteStore.temporary() as store:
    gate = project.gate(store=store, ids=warden.CountingIds())
    runner = Runner(gate, route, cache=ResponseCache(ttl_s=600))
    runs = [
        runner.run(Task(agent="order_agent", key="T-4", goal="Where is my lamp, ord_1002?")),
        runner.run(Task(agent="order_agent", key="T-4", goal="Where is my lamp, ord_1002?")),
        runner.run(Task(agent="order_agent", key="T-5", goal="Refund the chipped mug, ord_1001.")),
    ]
    for result in runs:
        print(f"{result.run_id} {result.task} {result.status}")
        for e in result.timeline:
            if e["kind"] == "model":
                note = f"cached, saved ${e['saved_usd']:.6f}" if e["cached"] else ""
                note = f"next model: {e['escalated']}" if e["escalated"] else note
                print(f"  model {e['model']:<12} ${e['usd']:.6f}  {note}".rstrip())
            elif e["kind"] == "tool":
                note = "cached result" if e["cached"] else ""
                print(f"  tool  {e['tool']:<12} {e['state']}  {note}".rstrip())

    fleet = FleetSummary.of(store, [r.run_id for r in runs])
    print(f"spend ${fleet.usd:.6f}, per successful run ${fleet.cost_per_success:.6f}")
    print(f"model answers reused: {fleet.model_cache_hits}, saved ${fleet.model_saved_usd:.6f}")
    print(f"tool results reused: {fleet.tool_cache_hits}")
    gate.executor.close()
