"""Which model answers a step (a cascade from a cheap model to a strong one), and what the
caches save: identical model requests, and read-tool results within their TTL."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

import warden
from tests.runner.conftest import DONE, Watched, events, scripted, uses
from warden.models.route import ResponseCache, Route
from warden.runner import Runner, Task
from warden.runs import RunStatus
from warden.store.sqlite import SQLiteStore

STRONG_PAY = {**uses("pay", payee="acme", amount_usd=20), "confidence": 0.9}


@dataclass(frozen=True, kw_only=True)
class Step:
    cheap: dict[str, Any]
    """The cheap model's first turn."""
    answered_by: list[str]
    """The models asked for the first step, in order."""
    escalated: str | None
    """Why the cheap model's turn was not kept (None: it was)."""
    error: str | None = None
    ran: tuple[str, dict[str, Any]]
    """The call that ran for the first step."""


STEPS = {
    "low confidence write": Step(
        cheap={**uses("pay", payee="acme", amount_usd=30), "confidence": 0.3},
        answered_by=["cheap", "strong"],
        escalated="confidence 0.30 is below 0.80 for this step's risk",
        ran=("pay", {"payee": "acme", "amount_usd": 20}),
    ),
    "write without a confidence": Step(
        cheap=uses("pay", payee="acme", amount_usd=30),
        answered_by=["cheap", "strong"],
        escalated="confidence 0.00 is below 0.80 for this step's risk",
        ran=("pay", {"payee": "acme", "amount_usd": 20}),
    ),
    "confident write": Step(
        cheap={**uses("pay", payee="acme", amount_usd=30), "confidence": 0.85},
        answered_by=["cheap"],
        escalated=None,
        ran=("pay", {"payee": "acme", "amount_usd": 30}),
    ),
    "low confidence read": Step(
        cheap={**uses("lookup_balance", account="a-1"), "confidence": 0.1},
        answered_by=["cheap"],
        escalated=None,
        ran=("lookup_balance", {"account": "a-1"}),
    ),
    "cheap model fails": Step(
        cheap={"error": "server_error"},
        answered_by=["cheap", "strong"],
        escalated="W-MDL-001: cheap: server error (HTTP 500), scripted",
        error="W-MDL-001",
        ran=("pay", {"payee": "acme", "amount_usd": 20}),
    ),
    "malformed call": Step(
        cheap={"calls": [{"tool": "pay", "raw": '{"payee": '}], "confidence": 1.0},
        answered_by=["cheap", "strong"],
        escalated="a tool call's arguments are not a JSON object",
        ran=("pay", {"payee": "acme", "amount_usd": 20}),
    ),
}


@pytest.mark.parametrize("step", list(STEPS.values()), ids=list(STEPS))
def test_a_cascade_keeps_the_cheap_models_turn_unless_it_is_doubtful(
    gate: warden.Gate, tools: ModuleType, step: Step
) -> None:
    cheap = Watched(scripted(step.cheap, DONE, name="cheap", prices_as=("openai", "gpt-4o-mini")))
    strong = Watched(scripted(STRONG_PAY, DONE, name="strong", prices_as=("openai", "gpt-4o")))
    route = Route(models=(cheap, strong), min_confidence={"high_risk": 0.8})

    result = Runner(gate, route).run(Task(agent="clerk", goal="Pay acme"))

    assert result.status is RunStatus.SUCCEEDED
    models = events(result, "model")
    first = models[: len(step.answered_by)]
    assert [m["model"] for m in first] == step.answered_by
    assert first[0]["escalated"] == step.escalated
    assert first[0]["error"] == step.error
    assert first[-1]["escalated"] is None
    assert len(strong.requests) == (1 if "strong" in step.answered_by else 0)
    tool = events(result, "tool")[0]
    assert (tool["tool"], tool["args"]) == step.ran
    assert kinds_after_first_step(result.timeline, len(first)) == ["tool", "model", "run.end"]
    charged = [e["usd"] for e in models]
    assert result.usd == pytest.approx(sum(charged))
    if step.error is None:  # a doubted turn was still paid for
        assert first[0]["usd"] > 0


def kinds_after_first_step(timeline: tuple[Any, ...], asked: int) -> list[str]:
    return [e["kind"] for e in timeline[1 + asked :]]


# --- caches --------------------------------------------------------------------------------


def test_an_identical_task_is_answered_from_the_response_cache(
    gate: warden.Gate, store: SQLiteStore
) -> None:
    model = Watched(
        scripted(
            uses("lookup_balance", account="a-1"),
            {"text": "The balance is 250 USD."},
            key="T-9",
            prices_as=("openai", "gpt-4o-mini"),
        )
    )
    runner = Runner(gate, model, cache=ResponseCache(ttl_s=300))
    task = Task(agent="clerk", goal="What is the balance of a-1?", key="T-9")

    first = runner.run(task)
    second = runner.run(task)

    assert first.run_id != second.run_id
    assert first.answer == second.answer == "The balance is 250 USD."
    assert len(model.requests) == 2  # the second run never asked the model
    asked, cached = events(first, "model"), events(second, "model")
    assert [m["cached"] for m in asked] == [False, False]
    assert [m["cached"] for m in cached] == [True, True]
    assert [m["saved_usd"] for m in cached] == pytest.approx([m["usd"] for m in asked])
    assert all(m["saved_usd"] > 0 and m["usd"] == 0.0 for m in cached)
    assert (second.usd, second.tokens, second.model_ms) == (0.0, 0, 0.0)
    assert first.usd > 0
    row = store.run(second.run_id)
    assert row is not None
    assert (row.usd, row.tokens) == (0.0, 0)


def test_the_response_cache_forgets_after_its_ttl(
    gate: warden.Gate, clock: warden.FixedClock
) -> None:
    model = Watched(scripted({"text": "Hello."}))
    runner = Runner(gate, model, cache=ResponseCache(ttl_s=60))

    runner.run(Task(agent="clerk", goal="Say hello"))
    clock.advance(61)
    late = runner.run(Task(agent="clerk", goal="Say hello"))

    assert len(model.requests) == 2
    assert [m["cached"] for m in events(late, "model")] == [False]


def test_a_read_tools_result_is_reused_within_its_ttl(
    gate: warden.Gate, store: SQLiteStore, clock: warden.FixedClock, tools: ModuleType
) -> None:
    runner = Runner(gate, scripted(uses("lookup_balance", account="a-1"), DONE))

    first = runner.run(Task(agent="clerk", goal="Balance?"))
    second = runner.run(Task(agent="clerk", goal="Balance?"))
    clock.advance(61)  # lookup_balance has cache_ttl_s 60
    third = runner.run(Task(agent="clerk", goal="Balance?"))

    tool = [events(r, "tool")[0] for r in (first, second, third)]
    assert [t["cached"] for t in tool] == [False, True, False]
    assert tool[1]["output"] == tool[0]["output"]
    assert tools.CALLS["lookup_balance"] == 2
    for r in (first, second, third):  # a cached result is still a recorded action
        row = store.run(r.run_id)
        assert row is not None
        assert [a.tool for a in row.actions] == ["lookup_balance"]


def test_a_write_is_never_cached(gate: warden.Gate, tools: ModuleType) -> None:
    runner = Runner(gate, scripted(uses("pay", payee="acme", amount_usd=5), DONE))

    runs = [runner.run(Task(agent="clerk", goal="Pay acme 5")) for _ in range(2)]

    assert [events(r, "tool")[0]["cached"] for r in runs] == [False, False]
    assert len(tools.BACKEND.charges) == 2
