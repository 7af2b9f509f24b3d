"""The escalation packet a person gets: what it holds, and what it must not."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

import warden
from tests.runner.conftest import scripted, uses
from warden.runner import Runner, Task
from warden.runner.escalation import options_for, render
from warden.store.sqlite import SQLiteStore

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


@pytest.fixture
def packet(gate: warden.Gate, tools: ModuleType) -> dict[str, Any]:
    """A run that read a customer's contact and card details, then waits to pay them."""
    model = scripted(
        uses("get_customer", customer_id="cus_1"),
        uses("pay", payee=EMAIL, amount_usd=500),
        {"text": "Done."},
    )
    result = Runner(gate, model).run(Task(agent="clerk", goal="Refund cus_1", key="T-3"))
    assert result.escalation is not None
    tool = result.timeline[2]
    assert (tool["kind"], tool["output"]["email"]) == ("tool", EMAIL)  # the timeline has it
    return dict(result.escalation)


def test_personal_data_in_tool_output_is_redacted_in_the_packet(packet: dict[str, Any]) -> None:
    output = packet["steps"][0]["output"]

    assert output["customer_id"] == "cus_1"
    assert output["email"]["$redacted"] == "email"
    assert output["card"]["$redacted"] == "card"
    assert output["card"]["commitment"].startswith("sha256:")
    assert packet["proposed"]["args"]["payee"]["$redacted"] == "email"
    assert packet["proposed"]["dry_run"]["would_charge"]["payee"]["$redacted"] == "email"
    text = json.dumps(packet)
    assert EMAIL not in text
    assert CARD not in text


def test_the_rendered_packet_shows_markers_not_values(packet: dict[str, Any]) -> None:
    text = render(packet)

    assert "email=[redacted email], card=[redacted card]" in text
    assert "pay(payee=[redacted email], amount_usd=500)" in text
    assert EMAIL not in text
    assert CARD not in text


def test_the_stored_packet_is_the_redacted_one(packet: dict[str, Any], store: SQLiteStore) -> None:
    saved = store.run_state(packet["run_id"])

    assert saved is not None
    assert saved[1] == packet
    assert EMAIL not in json.dumps(saved[1])


def test_the_packet_counts_what_the_run_spent(packet: dict[str, Any]) -> None:
    assert packet["cost"]["tool_calls"] == 1  # the payment has not run
    assert packet["cost"]["tokens"] > 0
    assert [(s["step"], s["tool"], s["state"]) for s in packet["steps"]] == [
        (0, "get_customer", "succeeded"),
        (100, "pay", "awaiting_approval"),
    ]


@pytest.mark.parametrize(
    ("kind", "options", "does"),
    [
        ("approval", {"approval_id": "apr_1"}, ["approve", "deny"]),
        ("budget", {"where": "agents/a.yaml:7"}, ["raise the budget, then resume"]),
        ("kill_switch", {"scope": "tool:pay"}, ["lift the switch when it is safe, then resume"]),
        (
            "outcome_unknown",
            {"key": "ik_1", "action_id": "act_1"},
            [
                "check the backend for the effect",
                "undo it if it happened and should not have",
                "resume once it is settled",
            ],
        ),
        ("model", {}, ["resume when it is back"]),
        ("turn_limit", {}, []),
    ],
    ids=["approval", "budget", "kill switch", "outcome unknown", "model", "turn limit"],
)
def test_every_packet_ends_with_taking_the_task_over_by_hand(
    kind: str, options: dict[str, str], does: list[str]
) -> None:
    got = options_for(kind, run_id="run_1", **options)

    assert [o["do"] for o in got] == [*does, "take the task over by hand"]
    assert got[-1]["command"] == "warden runs show run_1"
