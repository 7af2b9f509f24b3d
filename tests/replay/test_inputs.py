"""What `Gate.decide` records of what it read (`Decision.inputs`), on the in-memory store."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

import warden
from tests.replay import world
from warden.canonical import canonical_json
from warden.decision import Decision, json_ready
from warden.facts import FactError, FactView, UnknownName
from warden.store.memory import MemoryStore


def _decide(call: warden.ToolCall, store: MemoryStore | None = None) -> Decision:
    clock = warden.FixedClock("2026-03-02T09:00:00+00:00")
    return world.gate(store or MemoryStore(), clock).decide(call)


def test_a_policy_decision_records_what_it_read() -> None:
    d = _decide(world.call(customer="c1", amount=15, context={"ticket": "T-1"}, estimated_usd=0.1))
    assert d.allowed and d.inputs is not None
    assert d.inputs == {
        "now": d.decided_at,
        "context": {"ticket": "T-1"},
        "estimated_usd": 0.1,
        "estimated_tokens": 0,
        "repeats": 1,
        "breaker": ("closed", False),
        "ledger": (1, 0.1, 0, d.decided_at),
        "facts": {"tier": "gold"},
    }


@pytest.mark.parametrize(
    ("call", "present", "absent"),
    [
        (world.call(customer="c1", amount="five"), {"raw_args"}, {"repeats", "ledger"}),
        (world.call("lookup", agent="nobody", customer="c1"), {"raw_args"}, {"repeats"}),
        (world.call(customer="c9", amount=15), {"fact_errors", "ledger"}, {"raw_args", "facts"}),
        (world.call("lookup", customer="c1"), {"ledger", "repeats"}, {"breaker", "facts"}),
    ],
    ids=["contract deny", "unknown agent", "fact provider fails", "read tool"],
)
def test_each_decision_records_what_its_checks_read(
    call: warden.ToolCall, present: set[str], absent: set[str]
) -> None:
    d = _decide(call)
    assert d.inputs is not None
    assert present <= set(d.inputs) and not absent & set(d.inputs), sorted(d.inputs)


def test_a_failed_fact_is_recorded_with_its_error() -> None:
    d = _decide(world.call(customer="c9", amount=15))
    assert d.code == "W-POL-104" and d.inputs is not None
    assert d.inputs["fact_errors"] == {"tier": "fact 'tier' failed: LookupError: no customer c9"}


def test_a_store_with_shared_budgets_is_not_asked_for_a_ledger_no_policy_reads() -> None:
    class Shared(MemoryStore):
        shared_budgets = True

    read = _decide(world.call("lookup", customer="c1"), Shared())
    assert read.inputs is not None and "ledger" not in read.inputs
    refund = _decide(world.call(customer="c1", amount=5), Shared())  # refunds read run.*
    assert refund.inputs is not None and refund.inputs["ledger"] == (1, 0.0, 0, refund.decided_at)


def test_the_inputs_are_always_json_in_the_decision_record() -> None:
    odd: dict[str, Any] = {"when": datetime(2026, 3, 2, tzinfo=UTC), "ratio": math.nan, 3: (1, 2)}
    d = _decide(world.call(customer="c1", amount=5, context=odd))
    data = d.to_dict()["inputs"]
    assert data["context"] == {
        "when": "datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.timezone.utc)",
        "ratio": "nan",
        "3": [1, 2],
    }
    assert json.loads(canonical_json(d.to_dict()))["inputs"]["ledger"] == [1, 0.0, 0, d.decided_at]


def test_json_ready_leaves_json_as_it_is() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert json_ready(value) == value


def test_a_fact_view_remembers_what_it_served_and_what_failed() -> None:
    registry = world.facts()
    view = FactView(
        registry,
        world.call(customer="c9", amount=1),
        {"customer": "c9"},
        MemoryStore(),
        {"given": 1},
    )
    assert view["given"] == 1
    with pytest.raises(FactError):
        view["tier"]
    with pytest.raises(UnknownName):
        view["nothing"]
    assert view.served == {"given": 1}
    assert view.failed == {
        "tier": "fact 'tier' failed: LookupError: no customer c9",
        "nothing": None,
    }
