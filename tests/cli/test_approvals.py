"""`warden approvals`: people's verdicts, checked against warden.yaml's roles."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Seeded, invoke, resume, rows
from warden.runs import ActionState

RESUMES = "approved; the action runs when its run resumes"


def test_list_shows_the_pending_requests_and_what_each_still_needs(seeded: Seeded) -> None:
    code, out = invoke("approvals", "list", "-p", str(seeded.root))
    assert code == 0, out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {seeded.approval_id, seeded.two_person_id}
    assert "payer → pay" in lines[seeded.approval_id]
    assert lines[seeded.approval_id].split()[-1] == "finance"
    assert lines[seeded.two_person_id].rstrip().endswith("finance, ops")


def test_list_json_holds_each_request_in_full(seeded: Seeded) -> None:
    code, out = invoke("approvals", "list", "-p", str(seeded.root), "--json")
    assert code == 0, out
    found = {r["id"]: r for r in json.loads(out)}
    single = found[seeded.approval_id]
    assert single["args"] == {"payee": "acme", "amount_usd": 500.0, "note": "", "card_number": ""}
    assert single["still_needed"] == {"roles": ["finance"], "approvers": 1}
    assert single["requested_by"] == ["payer", "frank"]


def test_list_all_includes_decided_requests(seeded: Seeded) -> None:
    invoke(
        "approvals",
        "deny",
        seeded.approval_id,
        "-p",
        str(seeded.root),
        "--as",
        "fiona",
        "--reason",
        "wrong payee",
    )
    code, out = invoke("approvals", "list", "-p", str(seeded.root))
    assert seeded.approval_id not in out
    code, out = invoke("approvals", "list", "-p", str(seeded.root), "--all")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith(seeded.approval_id))
    assert line.split()[-1] == "denied"


def test_show_explains_the_request(seeded: Seeded) -> None:
    code, out = invoke("approvals", "show", seeded.approval_id, "-p", str(seeded.root))
    assert code == 0, out
    for expected in (
        f"approval {seeded.approval_id} pending",
        "payer → pay",
        f"run_1, action {seeded.action_id}",
        '"amount_usd": 500.0',
        "needs approval by finance (payments#2)",
        "roles finance; 1 approver in all",
        "payer, frank (requested it)",
        "expires ",
        "(in ",
        "verdicts   none yet",
        "binding    sha256:",
    ):
        assert expected in out, expected


def test_show_json_is_the_request_as_a_dict(seeded: Seeded) -> None:
    code, out = invoke("approvals", "show", seeded.approval_id, "-p", str(seeded.root), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["id"] == seeded.approval_id and doc["status"] == "pending"
    assert doc["reasons"] == ["needs approval by finance (payments#2)"]


def test_approving_records_a_verdict_and_leaves_running_to_the_agent(seeded: Seeded) -> None:
    code, out = invoke(
        "approvals",
        "approve",
        seeded.approval_id,
        "-p",
        str(seeded.root),
        "--as",
        "fiona",
        "--reason",
        "invoice 42 checked",
    )
    assert code == 0, out
    assert "approved by fiona as finance" in out and RESUMES in out
    assert rows(seeded.db, "SELECT state FROM actions WHERE id = ?", seeded.action_id) == [
        ("awaiting_approval",)
    ]
    done = resume(seeded.db, seeded.root, seeded.action_id)
    assert done.state is ActionState.SUCCEEDED and done.result["amount_usd"] == 500.0
    code, out = invoke("approvals", "show", seeded.approval_id, "-p", str(seeded.root))
    assert "used" in out.splitlines()[0]
    assert "approve by fiona as finance" in out and "invoice 42 checked" in out


def test_approval_takes_who_from_warden_user(seeded: Seeded) -> None:
    code, out = invoke(
        "approvals",
        "approve",
        seeded.approval_id,
        "-p",
        str(seeded.root),
        env={"WARDEN_USER": "fiona"},
    )
    assert code == 0, out
    assert "approved by fiona" in out


def test_a_two_person_rule_says_who_is_still_needed(seeded: Seeded) -> None:
    base = ("approvals", "approve", seeded.two_person_id, "-p", str(seeded.root))
    code, out = invoke(*base, "--as", "fiona")
    assert code == 0, out
    assert "fiona approves as finance" in out and "still needs ops" in out
    assert RESUMES not in out
    code, out = invoke(*base, "--as", "olga")
    assert code == 0 and RESUMES in out


def test_denying_rejects_the_action_and_needs_a_reason(seeded: Seeded) -> None:
    base = ("approvals", "deny", seeded.approval_id, "-p", str(seeded.root), "--as", "fiona")
    code, out = invoke(*base)
    assert code == 2 and "--reason" in out
    code, out = invoke(*base, "--reason", "payee not on the vendor list")
    assert code == 0, out
    assert "denied by fiona as finance" in out and "will not run" in out
    assert rows(seeded.db, "SELECT state FROM actions WHERE id = ?", seeded.action_id) == [
        ("rejected",)
    ]


@pytest.mark.parametrize(
    ("who", "approval", "code", "message"),
    [
        ("frank", "mine", "W-APR-003", "frank requested this action and cannot approve it"),
        ("fiona", "apr_nope", "W-APR-008", "no approval request 'apr_nope'"),
        ("olga", "mine", "W-APR-006", "olga holds none of the roles this request needs"),
    ],
    ids=["self-approval", "unknown", "wrong-role"],
)
def test_a_refused_verdict_shows_its_code_message_and_fix(
    seeded: Seeded, who: str, approval: str, code: str, message: str
) -> None:
    target = seeded.approval_id if approval == "mine" else approval
    status, out = invoke("approvals", "approve", target, "-p", str(seeded.root), "--as", who)
    assert status == 2
    assert f"{code} {message}" in out
    assert "fix:" in out and f"docs/errors/{code}.md" in out and "Traceback" not in out


def test_a_second_verdict_by_the_same_person_is_refused(seeded: Seeded) -> None:
    base = ("approvals", "approve", seeded.two_person_id, "-p", str(seeded.root), "--as", "fiona")
    assert invoke(*base)[0] == 0
    code, out = invoke(*base)
    assert code == 2 and "W-APR-005" in out


def test_a_verdict_needs_a_name(seeded: Seeded) -> None:
    code, out = invoke("approvals", "approve", seeded.approval_id, "-p", str(seeded.root))
    assert code == 2 and "--as NAME" in out
    assert rows(seeded.db, "SELECT count(*) FROM verdicts") == [(0,)]


def test_show_of_an_unknown_request_is_w_apr_008(seeded: Seeded) -> None:
    code, out = invoke("approvals", "show", "apr_missing", "-p", str(seeded.root))
    assert code == 2 and "W-APR-008" in out
