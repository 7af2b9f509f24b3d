"""`warden kill` and `warden unkill`: audited flips, never anonymous."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Seeded, execute, invoke, pay, rows
from warden.runs import ActionState


def test_kill_engages_a_switch_that_a_running_agent_obeys_and_the_log_records(
    seeded: Seeded,
) -> None:
    code, out = invoke(
        "kill",
        "-p",
        str(seeded.root),
        "--agent",
        "payer",
        "--reason",
        "refund spike",
        "--as",
        "alice",
    )
    assert code == 0, out
    assert "kill switch agent:payer engaged by alice: refund spike" in out
    assert "warden unkill --agent payer" in out

    (denied,) = execute(seeded.db, seeded.root, pay(10, "run_9"))
    assert denied.state is ActionState.DECIDED and denied.code == "W-KIL-001"

    bodies = [b for (b,) in rows(seeded.db, "SELECT body FROM audit WHERE kind = 'kill'")]
    assert len(bodies) == 1
    assert b'"by":"alice"' in bodies[0] and b'"scope":"agent:payer"' in bodies[0]


def test_kill_takes_who_from_warden_user(seeded: Seeded) -> None:
    code, out = invoke(
        "kill", "-p", str(seeded.root), "--all", "--reason", "drill", env={"WARDEN_USER": "olga"}
    )
    assert code == 0, out
    assert "engaged by olga" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--all", "--reason", "x"), "--as NAME"),
        (("--all", "--reason", "x", "--as", "  "), "--as NAME"),
        (("--all", "--as", "alice"), "--reason TEXT"),
        (("--as", "alice", "--reason", "x"), "exactly one scope"),
        (("--all", "--tool", "pay", "--as", "alice", "--reason", "x"), "exactly one scope"),
        (("--agent", "payr", "--as", "alice", "--reason", "x"), "no agent named 'payr'"),
        (("--tool", "refund", "--as", "alice", "--reason", "x"), "no tool named 'refund'"),
    ],
    ids=["no-who", "blank-who", "no-reason", "no-scope", "two-scopes", "typo-agent", "typo-tool"],
)
def test_kill_refuses_an_anonymous_unexplained_or_unclear_flip(
    seeded: Seeded, args: tuple[str, ...], message: str
) -> None:
    code, out = invoke("kill", "-p", str(seeded.root), *args)
    assert code == 2
    assert message in out
    assert rows(seeded.db, "SELECT count(*) FROM kills") == [(0,)]


def test_kill_list_shows_engaged_switches(seeded: Seeded) -> None:
    code, out = invoke("kill", "--list", "-p", str(seeded.root))
    assert code == 0 and "no kill switch is engaged" in out
    for scope in (("--tool", "pay"), ("--all",)):
        code, out = invoke(
            "kill", "-p", str(seeded.root), *scope, "--reason", "incident 7", "--as", "bob"
        )
        assert code == 0, out
    code, out = invoke("kill", "--list", "-p", str(seeded.root))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["scope", "engaged", "by", "reason"]
    assert lines[1].startswith("all ") and "bob" in lines[1] and "incident 7" in lines[1]
    assert lines[2].startswith("tool:pay ")


def test_kill_creates_the_database_when_there_is_none_yet(project: Path) -> None:
    code, out = invoke(
        "kill", "-p", str(project), "--all", "--reason", "before go-live", "--as", "alice"
    )
    assert code == 0, out
    assert rows(project / ".warden" / "warden.db", "SELECT scope, by FROM kills") == [
        ("all", "alice")
    ]


def test_unkill_lifts_one_switch_and_says_what_is_still_engaged(seeded: Seeded) -> None:
    for scope in (("--agent", "payer"), ("--tool", "pay")):
        invoke("kill", "-p", str(seeded.root), *scope, "--reason", "spike", "--as", "alice")
    code, out = invoke(
        "unkill", "-p", str(seeded.root), "--agent", "payer", "--as", "bob", "--reason", "fixed"
    )
    assert code == 0, out
    assert "kill switch agent:payer lifted by bob" in out and "still engaged: tool:pay" in out
    kinds = [k for (k,) in rows(seeded.db, "SELECT kind FROM audit WHERE stream = 'system'")]
    assert kinds.count("kill") == 2 and kinds.count("unkill") == 1


def test_unkill_needs_who_and_changes_nothing_when_nothing_is_engaged(seeded: Seeded) -> None:
    code, out = invoke("unkill", "-p", str(seeded.root), "--all")
    assert code == 2 and "--as NAME" in out
    code, out = invoke("unkill", "-p", str(seeded.root), "--all", "--as", "bob")
    assert code == 1
    assert "no kill switch is engaged for all" in out and "nothing changed" in out
    assert rows(seeded.db, "SELECT count(*) FROM audit WHERE kind = 'unkill'") == [(0,)]
