"""`warden runs list` and `warden runs show`."""

from __future__ import annotations

import json

import warden
from tests.cli.conftest import Seeded, execute, invoke, pay


def test_list_shows_each_run_newest_first(seeded: Seeded) -> None:
    code, out = invoke("runs", "list", "-p", str(seeded.root))
    assert code == 0, out
    lines = out.splitlines()
    header = ["run", "agent", "task", "status", "started", "calls", "cost", "reason"]
    assert lines[0].split() == header
    assert [line.split()[0] for line in lines[1:]] == ["run_2", "run_1"]
    run_1 = lines[2].split()
    assert run_1[1:4] == ["payer", "-", "waiting"] and run_1[6] == "1"


def test_list_filters_by_status_and_limits(seeded: Seeded) -> None:
    execute(seeded.db, seeded.root, pay(20, "run_3"))
    code, out = invoke("runs", "list", "-p", str(seeded.root), "--status", "running")
    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["run_3"]
    code, out = invoke("runs", "list", "-p", str(seeded.root), "--status", "killed")
    assert code == 0 and "no runs with status killed" in out
    code, out = invoke("runs", "list", "-p", str(seeded.root), "--limit", "1", "--json")
    assert [r["id"] for r in json.loads(out)] == ["run_3"]


def test_list_refuses_an_unknown_status(seeded: Seeded) -> None:
    code, out = invoke("runs", "list", "-p", str(seeded.root), "--status", "sleeping")
    assert code == 2 and "sleeping" in out


def test_show_prints_the_header_and_the_timeline(seeded: Seeded) -> None:
    code, out = invoke("runs", "show", "run_1", "-p", str(seeded.root))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "run run_1 payer waiting"
    assert "1 call, $0.0000, 0 tokens" in out
    assert lines[lines.index("timeline") + 1].split()[1:] == ["pay", "succeeded", "allow"]
    for expected in (
        "allowed by payments#1",
        '→ {"amount_usd": 50.0, "charge_id": "ch_',
        "awaiting_approval  needs_approval",
        "needs approval by finance (payments#2)",
        f"approval {seeded.approval_id}",
    ):
        assert expected in out, expected


def test_show_prints_a_denial_with_its_code_and_reason(seeded: Seeded) -> None:
    bad = warden.ToolCall(
        agent="payer", tool="pay", run_id="run_1", args={"payee": "acme", "amount_usd": "lots"}
    )
    execute(seeded.db, seeded.root, bad)
    code, out = invoke("runs", "show", "run_1", "-p", str(seeded.root))
    assert code == 0, out
    assert "pay  decided  deny W-CON-001" in out
    assert "pay.amount_usd: Input should be a valid number" in out


def test_show_json_holds_the_run_and_every_action(seeded: Seeded) -> None:
    code, out = invoke("runs", "show", "run_1", "-p", str(seeded.root), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["id"] == "run_1" and doc["status"] == "waiting" and doc["calls"] == 1
    assert [(a["state"], a["outcome"]) for a in doc["actions"]] == [
        ("succeeded", "allow"),
        ("awaiting_approval", "needs_approval"),
    ]
    assert doc["actions"][1]["approval_id"] == seeded.approval_id
    assert doc["actions"][0]["result"]["amount_usd"] == 50.0


def test_show_of_an_unknown_run_is_w_run_001(seeded: Seeded) -> None:
    code, out = invoke("runs", "show", "run_nope", "-p", str(seeded.root))
    assert code == 2
    assert "W-RUN-001 no run 'run_nope'" in out and "warden runs list" in out
