"""The agent API over HTTP: decide, run, report; execute; replays; the kill switch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Running, error_code, pay


@pytest.fixture
def backend(server: Running) -> Any:
    import payment_tools  # the project copy's module, loaded by the server

    payment_tools.BACKEND.reset()
    return payment_tools.BACKEND


def test_decide_records_the_decision_and_the_outcome_settles_the_budget(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    viewer = server.client(server.tokens["viewer"])
    answer = agent.post("/v1/decide", json=pay(40, estimated_usd=0.5, step=1))
    assert answer.status_code == 200, answer.text
    decided = answer.json()
    assert decided["state"] == "executing" and decided["outcome"] == "allow"
    assert decided["rules"] == [{"id": "payments#1", "file": "policies/payments.yaml", "line": 4}]
    assert decided["replayed"] is False and decided["idempotency_key"].startswith("ik_")
    assert [d["action_id"] for d in server.audit("decision")] == [decided["action_id"]]
    assert viewer.get("/v1/runs/run_1").json()["calls"] == 0  # reserved, not yet spent

    report = {"ok": True, "result": {"charge_id": "ch_1"}, "duration_ms": 12.0, "usd": 0.25}
    done = agent.post(f"/v1/actions/{decided['action_id']}/outcome", json=report)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "action_id": decided["action_id"],
        "run_id": "run_1",
        "state": "succeeded",
        "result": {"charge_id": "ch_1"},
        "error": None,
        "replayed": False,
    }
    run = viewer.get("/v1/runs/run_1").json()
    assert (run["calls"], run["usd"]) == (1, 0.25)
    assert run["actions"][0]["state"] == "succeeded"


def test_the_same_call_replays_and_the_same_report_is_harmless(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    first = agent.post("/v1/decide", json=pay(40, step=1)).json()
    again = agent.post("/v1/decide", json=pay(40, step=1)).json()
    assert again["replayed"] is True and again["action_id"] == first["action_id"]
    assert again["state"] == "executing" and again["outcome"] == "allow"
    other = agent.post("/v1/decide", json=pay(41, idempotency_key=first["idempotency_key"]))
    assert (other.status_code, error_code(other)) == (409, "W-IDM-001")

    url = f"/v1/actions/{first['action_id']}/outcome"
    assert agent.post(url, json={"ok": True, "result": {"n": 1}}).json()["replayed"] is False
    assert agent.post(url, json={"ok": True, "result": {"n": 1}}).json()["replayed"] is True
    changed = agent.post(url, json={"ok": False, "error": {"message": "declined"}})
    assert (changed.status_code, error_code(changed)) == (409, "W-EXE-006")
    after = agent.post("/v1/decide", json=pay(40, step=1)).json()
    assert after["state"] == "succeeded" and after["replayed"] is True
    assert len(server.audit("outcome")) == 1


def test_a_failed_tool_is_reported_with_its_message(server: Running) -> None:
    agent = server.client(server.tokens["payer"])
    decided = agent.post("/v1/decide", json=pay(40)).json()
    done = agent.post(
        f"/v1/actions/{decided['action_id']}/outcome",
        json={"ok": False, "error": {"message": "card declined", "type": "Declined"}},
    ).json()
    assert done["state"] == "failed"
    assert done["error"] == {"code": "W-EXE-001", "type": "Declined", "message": "card declined"}


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [("act_nope", 404, "W-API-006"), ("denied", 409, "W-EXE-005")],
    ids=["unknown-action", "denied-action"],
)
def test_an_outcome_needs_an_action_left_executing(
    server: Running, action: str, status: int, code: str
) -> None:
    agent = server.client(server.tokens["payer"])
    if action == "denied":
        denied = agent.post("/v1/decide", json=pay(40, args={"unknown": 1})).json()
        assert denied["outcome"] == "deny" and denied["code"] == "W-CON-001"
        assert denied["state"] == "decided"
        action = denied["action_id"]
    answer = agent.post(f"/v1/actions/{action}/outcome", json={"ok": True})
    assert (answer.status_code, error_code(answer)) == (status, code)


def test_a_deny_is_a_decision_not_an_error(server: Running) -> None:
    answer = server.client(server.tokens["payer"]).post("/v1/decide", json=pay(40, tool="teleport"))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["outcome"], body["code"], body["stage"]) == ("deny", "W-IDN-003", "identity")
    assert body["idempotency_key"] is None


def test_execute_runs_the_projects_tool_once(server: Running, backend: Any) -> None:
    agent = server.client(server.tokens["payer"])
    done = agent.post("/v1/execute", json=pay(40, step=3))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "succeeded" and body["attempts"] == 1
    assert body["result"]["charge_id"] == "ch_" + body["idempotency_key"][-12:]
    again = agent.post("/v1/execute", json=pay(40, step=3)).json()
    assert again["replayed"] is True and again["result"] == body["result"]
    assert len(backend.all()) == 1


def test_an_action_is_readable_by_its_own_agent_only(server: Running) -> None:
    from warden.identity import KeyKind

    stranger = server.key("stranger", KeyKind.AGENT, "other_bot")
    agent = server.client(server.tokens["payer"])
    decided = agent.post("/v1/decide", json=pay(40)).json()
    url = f"/v1/actions/{decided['action_id']}"
    assert agent.get(url).json()["state"] == "executing"
    assert server.client(server.tokens["viewer"]).get(url).json()["tool"] == "pay"
    theirs = server.client(stranger)
    for answer in (theirs.get(url), theirs.post(f"{url}/outcome", json={"ok": True})):
        assert (answer.status_code, error_code(answer)) == (403, "W-AUTH-005")


def test_the_kill_switch_set_over_the_api_stops_decisions(server: Running) -> None:
    admin = server.client(server.tokens["admin"])
    agent = server.client(server.tokens["payer"])
    engaged = admin.post("/v1/kill", json={"scope": "agent:payer", "reason": "refund spike"})
    assert engaged.status_code == 200, engaged.text
    assert engaged.json()["engaged"][0] | {"at": 0} == {
        "scope": "agent:payer",
        "by": "ada",
        "reason": "refund spike",
        "at": 0,
    }
    stopped = agent.post("/v1/decide", json=pay(40)).json()
    assert (stopped["outcome"], stopped["code"], stopped["stop_run"]) == ("deny", "W-KIL-001", True)
    viewer = server.client(server.tokens["viewer"])
    assert [k["scope"] for k in viewer.get("/v1/kills").json()["engaged"]] == ["agent:payer"]

    lifted = admin.post("/v1/unkill", json={"scope": "agent:payer", "reason": "fixed"}).json()
    assert lifted == {"engaged": [], "changed": True}
    assert admin.post("/v1/unkill", json={"scope": "agent:payer"}).json()["changed"] is False
    assert agent.post("/v1/decide", json=pay(40, run="run_2")).json()["outcome"] == "allow"
    assert [a["engaged"] for a in server.audit("kill") + server.audit("unkill")] == [True, False]


@pytest.mark.parametrize(
    ("scope", "message"),
    [("agent:payr", "no agent named 'payr'"), ("everything", "is not 'all'")],
    ids=["typo", "not-a-scope"],
)
def test_a_kill_switch_for_nothing_is_refused(server: Running, scope: str, message: str) -> None:
    answer = server.client(server.tokens["admin"]).post(
        "/v1/kill", json={"scope": scope, "reason": "x"}
    )
    assert (answer.status_code, error_code(answer)) == (422, "W-API-004")
    assert message in answer.json()["error"]["message"]
