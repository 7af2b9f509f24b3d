"""The admin API: approvals, runs, policy reload, the audit log, readiness."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Running, error_code, pay


@pytest.fixture
def backend(server: Running) -> Any:
    import payment_tools

    payment_tools.BACKEND.reset()
    return payment_tools.BACKEND


def _waiting(server: Running, amount: float = 500, **more: Any) -> dict[str, Any]:
    answer = server.client(server.tokens["payer"]).post("/v1/decide", json=pay(amount, **more))
    body = answer.json()
    assert body["state"] == "awaiting_approval", body
    return body


def test_an_approved_call_is_handed_to_the_agent_once(server: Running, backend: Any) -> None:
    waiting = _waiting(server, on_behalf_of="frank")
    approval = waiting["approval_id"]
    viewer = server.client(server.tokens["viewer"])
    listed = viewer.get("/v1/approvals").json()
    assert [r["id"] for r in listed] == [approval]
    assert listed[0]["requested_by"] == ["payer", "frank"]

    fiona = server.client(server.tokens["fiona"])
    approved = fiona.post(f"/v1/approvals/{approval}/approve", json={"reason": "checked"})
    assert approved.status_code == 200, approved.text
    verdict = approved.json()
    assert verdict["status"] == "approved"
    assert verdict["verdicts"][0] | {"at": 0} == {
        "approver": "fiona",
        "role": "finance",
        "verdict": "approve",
        "reason": "checked",
        "at": 0,
    }
    again = fiona.post(f"/v1/approvals/{approval}/approve", json={"reason": "again"})
    assert (again.status_code, error_code(again)) == (409, "W-APR-004")

    agent = server.client(server.tokens["payer"])
    claimed = agent.post("/v1/decide", json=pay(500, on_behalf_of="frank")).json()
    assert claimed["state"] == "executing" and claimed["replayed"] is False
    assert claimed["action_id"] == waiting["action_id"] and claimed["approval_id"] == approval
    twice = agent.post("/v1/decide", json=pay(500, on_behalf_of="frank")).json()
    assert twice["replayed"] is True
    assert viewer.get(f"/v1/approvals/{approval}").json()["status"] == "used"
    done = agent.post(f"/v1/actions/{waiting['action_id']}/outcome", json={"ok": True}).json()
    assert done["state"] == "succeeded"
    assert backend.all() == []  # the agent ran it, not Warden


def test_whoever_requested_an_action_cannot_approve_it(server: Running) -> None:
    waiting = _waiting(server, on_behalf_of="fiona")
    answer = server.client(server.tokens["fiona"]).post(
        f"/v1/approvals/{waiting['approval_id']}/approve", json={"reason": "mine"}
    )
    assert (answer.status_code, error_code(answer)) == (403, "W-APR-003")
    assert server.audit("api.rejected")[-1]["code"] == "W-APR-003"


def test_a_two_person_rule_needs_both_roles(server: Running) -> None:
    waiting = _waiting(server, 5000)
    url = f"/v1/approvals/{waiting['approval_id']}/approve"
    first = server.client(server.tokens["fiona"]).post(url, json={}).json()
    assert first["status"] == "pending" and first["still_needed"] == {
        "roles": ["ops"],
        "approvers": 1,
    }
    second = server.client(server.tokens["olga"]).post(url, json={"reason": "ok"}).json()
    assert second["status"] == "approved"


def test_a_denial_needs_a_reason_and_rejects_the_action(server: Running) -> None:
    waiting = _waiting(server)
    url = f"/v1/approvals/{waiting['approval_id']}/deny"
    frank = server.client(server.tokens["frank"])
    bare = frank.post(url, json={})
    assert (bare.status_code, error_code(bare)) == (422, "W-API-004")
    assert bare.json()["error"]["message"].startswith("reason:")
    denied = frank.post(url, json={"reason": "wrong payee"}).json()
    assert denied["status"] == "denied"
    action = server.client(server.tokens["viewer"]).get(f"/v1/actions/{waiting['action_id']}")
    assert action.json()["state"] == "rejected"


def test_an_admin_runs_an_approved_action_once(server: Running, backend: Any) -> None:
    waiting = _waiting(server)
    admin = server.client(server.tokens["admin"])
    url = f"/v1/approvals/{waiting['approval_id']}/execute"
    early = admin.post(url)
    assert (early.status_code, error_code(early)) == (409, "W-APR-009")
    admin.post(f"/v1/approvals/{waiting['approval_id']}/approve", json={"reason": "ok"})
    done = admin.post(url)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "succeeded"
    assert admin.post(url).json()["state"] == "succeeded"
    assert len(backend.all()) == 1


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/runs/nope", 404, "W-API-006"),
        ("/v1/actions/act_nope", 404, "W-API-006"),
        ("/v1/approvals/apr_nope", 404, "W-API-006"),
        ("/v1/runs?limit=0", 422, "W-API-004"),
        ("/v1/runs?status=sleeping", 422, "W-API-004"),
        ("/v1/approvals?status=maybe", 422, "W-API-004"),
        ("/v1/nothing-here", 404, "W-API-006"),
        ("/v1/decide", 405, "W-API-006"),
        ("/v1/runs/", 404, "W-API-006"),
    ],
    ids=[
        "no-run",
        "no-action",
        "no-approval",
        "limit-0",
        "bad-status",
        "bad-approval-status",
        "no-endpoint",
        "get-decide",
        "trailing-slash",
    ],
)
def test_a_read_that_finds_nothing_says_so_in_json(
    server: Running, path: str, status: int, code: str
) -> None:
    answer = server.client(server.tokens["viewer"]).get(path)
    assert (answer.status_code, error_code(answer)) == (status, code)
    if code == "W-API-004":
        assert "(query)" in answer.json()["error"]["message"]


def test_runs_list_and_show_the_timeline(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    for step in range(3):
        agent.post("/v1/decide", json=pay(10 + step, step=step))
    agent.post("/v1/decide", json=pay(10, run="run_2"))
    viewer = server.client(server.tokens["viewer"])
    runs = viewer.get("/v1/runs", params={"limit": 10}).json()
    assert {r["id"] for r in runs} == {"run_1", "run_2"}
    assert [r["id"] for r in viewer.get("/v1/runs", params={"limit": 1}).json()] == ["run_2"]
    shown = viewer.get("/v1/runs/run_1").json()
    assert [a["step"] for a in shown["actions"]] == [0, 1, 2]


def test_a_policy_reload_puts_the_new_policy_in_force_and_is_audited(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    assert agent.post("/v1/decide", json=pay(40, step=1)).json()["outcome"] == "allow"
    policy = server.root / "policies" / "payments.yaml"
    policy.write_text(policy.read_text().replace("amount_usd <= 100", "amount_usd <= 10"))
    answer = server.client(server.tokens["admin"]).post("/v1/policies/reload")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["changed"] is True and body["old_revision"] != body["new_revision"]
    assert server.service.gate.policies.revision == body["new_revision"]
    assert agent.post("/v1/decide", json=pay(40, step=2)).json()["outcome"] == "needs_approval"
    (record,) = server.audit("config.reload")
    assert record == {
        "ok": True,
        "by": "ada",
        "old_revision": body["old_revision"],
        "new_revision": body["new_revision"],
    }


def test_a_broken_policy_file_is_refused_and_the_old_policies_stay(server: Running) -> None:
    before = server.service.gate.policies.revision
    policy = server.root / "policies" / "payments.yaml"
    policy.write_text(policy.read_text().replace("amount_usd <= 100", "amount_usd <=> 100"))
    answer = server.client(server.tokens["admin"]).post("/v1/policies/reload")
    assert answer.status_code == 422, answer.text
    code = error_code(answer)
    assert code.startswith("W-POL-")
    error = answer.json()["error"]
    assert error["file"] == "policies/payments.yaml" and error["line"] == 4
    assert error["message"].startswith("policies/payments.yaml:4: ")
    assert server.service.gate.policies.revision == before
    agent = server.client(server.tokens["payer"])
    assert agent.post("/v1/decide", json=pay(40)).json()["outcome"] == "allow"
    assert server.audit("config.reload") == [
        {"ok": False, "by": "ada", "old_revision": before, "code": code}
    ]


def test_the_audit_log_verifies_and_exports_as_json_lines(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    for step in range(3):
        agent.post("/v1/decide", json=pay(10, step=step))
    viewer = server.client(server.tokens["viewer"])
    verified = viewer.get("/v1/audit/verify").json()
    assert verified["ok"] is True and verified["problem"] is None
    assert verified["records"] == verified["last_seq"] > 3
    exported = viewer.get("/v1/audit/export")
    assert exported.headers["content-type"] == "application/x-ndjson"
    lines = exported.text.splitlines()
    assert len(lines) == verified["records"]
    tail = viewer.get("/v1/audit/export", params={"after": verified["last_seq"] - 1}).text
    assert tail.splitlines() == lines[-1:]


def test_a_tampered_audit_log_does_not_verify(server: Running) -> None:
    server.client(server.tokens["payer"]).post("/v1/decide", json=pay(10))
    import sqlite3

    conn = sqlite3.connect(server.db)
    conn.execute("UPDATE audit SET body = replace(body, 'acme', 'evil') WHERE kind = 'decision'")
    conn.commit()
    conn.close()
    verified = server.client(server.tokens["viewer"]).get("/v1/audit/verify").json()
    assert verified["ok"] is False and verified["problem"]["code"] == "W-AUD-001"


def test_the_served_openapi_document_is_the_one_in_the_docs(server: Running) -> None:
    import json
    from pathlib import Path

    checked_in = Path(__file__).resolve().parents[2] / "docs" / "reference" / "openapi.json"
    served = server.client().get("/openapi.json").json()
    assert served == json.loads(checked_in.read_text(encoding="utf-8"))
    for path, methods in served["paths"].items():
        for method, operation in methods.items():
            assert operation.get("x-warden-role"), f"{method} {path} does not say who may call it"
            if path not in ("/healthz", "/readyz"):
                assert operation.get("security") == [{"key": []}], f"{method} {path}"
