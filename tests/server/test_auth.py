"""Who may call what: every refusal is coded, audited, and never echoes the secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.conftest import Running, error_code, pay, wall_clock
from warden.identity import KeyKind, new_key


@dataclass(frozen=True)
class Case:
    """One request and the refusal it gets."""

    header: Callable[[Running], str | None]
    """The Authorization header to send (None: none)."""
    method: str
    path: Callable[[Running], str]
    body: dict[str, Any] | None
    status: int
    code: str


def _token(label: str) -> Callable[[Running], str]:
    return lambda s: f"Bearer {s.tokens[label]}"


def _expired(s: Running) -> str:
    now = wall_clock()
    return "Bearer " + s.key(
        "expired", KeyKind.AGENT, "payer", created_at=now - 100, expires_at=now - 1
    )


def _revoked(s: Running) -> str:
    token = s.key("revoked", KeyKind.AGENT, "payer")
    s.service.store.revoke_key(token.split("_")[2], at=wall_clock(), by="tests")
    return f"Bearer {token}"


def _rotated_without_grace(s: Running) -> str:
    old = s.tokens["payer"]
    old_id = old.split("_")[2]
    now = wall_clock()
    record, _ = new_key(KeyKind.AGENT, "payer", created_at=now, created_by="t", replaces=old_id)
    s.service.store.add_key(record, retire_at=now)
    return f"Bearer {old}"


def _wrong_secret(s: Running) -> str:
    kind, key_id, secret = s.tokens["payer"].split("_", 3)[1:]
    other = ("A" if secret[0] != "A" else "B") + secret[1:]
    return f"Bearer wdn_{kind}_{key_id}_{other}"


def _other_kind(s: Running) -> str:
    return "Bearer " + s.tokens["payer"].replace("wdn_ag_", "wdn_op_", 1)


def _pending(s: Running) -> str:
    answer = s.client(s.tokens["payer"]).post("/v1/decide", json=pay(500, run="run_9"))
    return str(answer.json()["approval_id"])


_UNKNOWN = "Bearer wdn_ag_abcdefghijkl_" + "x" * 43
_DECIDE = ("POST", lambda s: "/v1/decide", pay(40))

CASES: dict[str, Case] = {
    "missing": Case(lambda s: None, *_DECIDE, 401, "W-AUTH-001"),
    "malformed": Case(lambda s: "Bearer nope", *_DECIDE, 401, "W-AUTH-001"),
    "not-bearer": Case(lambda s: "Basic dXNlcjpwYXNz", *_DECIDE, 401, "W-AUTH-001"),
    "unknown": Case(lambda s: _UNKNOWN, *_DECIDE, 401, "W-AUTH-002"),
    "wrong-secret": Case(_wrong_secret, *_DECIDE, 401, "W-AUTH-002"),
    "other-kind": Case(_other_kind, *_DECIDE, 401, "W-AUTH-002"),
    "expired": Case(_expired, *_DECIDE, 401, "W-AUTH-003"),
    "revoked": Case(_revoked, *_DECIDE, 401, "W-AUTH-004"),
    "rotated-after-grace": Case(_rotated_without_grace, *_DECIDE, 401, "W-AUTH-003"),
    "acting-as-another-agent": Case(
        _token("payer"),
        "POST",
        lambda s: "/v1/decide",
        {**pay(40), "agent": "refund_bot"},
        403,
        "W-AUTH-005",
    ),
    "tool-out-of-scope": Case(
        _token("pay-only"),
        "POST",
        lambda s: "/v1/decide",
        {**pay(4), "tool": "flaky_pay"},
        403,
        "W-AUTH-005",
    ),
    "operator-proposing-a-call": Case(_token("admin"), *_DECIDE, 403, "W-AUTH-005"),
    "agent-key-on-admin-api": Case(
        _token("payer"), "GET", lambda s: "/v1/runs", None, 403, "W-AUTH-005"
    ),
    "agent-key-approving": Case(
        _token("payer"),
        "POST",
        lambda s: f"/v1/approvals/{_pending(s)}/approve",
        {"reason": "me"},
        403,
        "W-AUTH-005",
    ),
    "viewer-approving": Case(
        _token("viewer"),
        "POST",
        lambda s: f"/v1/approvals/{_pending(s)}/approve",
        {"reason": "looks fine"},
        403,
        "W-AUTH-005",
    ),
    "approver-of-another-role": Case(
        _token("olga"),
        "POST",
        lambda s: f"/v1/approvals/{_pending(s)}/approve",
        {"reason": "ops says yes"},
        403,
        "W-APR-006",
    ),
    "approver-flipping-the-kill-switch": Case(
        _token("fiona"),
        "POST",
        lambda s: "/v1/kill",
        {"scope": "all", "reason": "x"},
        403,
        "W-AUTH-005",
    ),
    "viewer-reloading-policies": Case(
        _token("viewer"), "POST", lambda s: "/v1/policies/reload", None, 403, "W-AUTH-005"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_refused_request_is_coded_audited_and_never_echoes_the_secret(
    server: Running, case: Case
) -> None:
    server.key("pay-only", KeyKind.AGENT, "payer", tools=["pay"])
    header = case.header(server)
    path = case.path(server)
    rejected_before = len(server.audit("api.rejected"))
    decided_before = len(server.audit("decision"))
    c = server.client()
    headers = {"authorization": header} if header is not None else {}
    answer = c.request(case.method, path, json=case.body, headers=headers)
    assert (answer.status_code, error_code(answer)) == (case.status, case.code), answer.text
    if case.status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    rejected = server.audit("api.rejected")
    assert len(rejected) == rejected_before + 1
    record = rejected[-1]
    assert (record["code"], record["status"], record["path"]) == (case.code, case.status, path)
    if header is not None and header.startswith("Bearer wdn_"):
        assert record["key_id"] == header.split("_")[2]
        secret = header.split("_", 3)[3]
        dump = b"".join(bytes(b) for (b,) in server.rows("SELECT body FROM audit"))
        assert secret.encode() not in dump
    assert len(server.audit("decision")) == decided_before  # nothing was decided


def test_a_key_within_its_rotation_grace_and_its_successor_both_work(server: Running) -> None:
    old = server.tokens["payer"]
    now = wall_clock()
    record, new = new_key(
        KeyKind.AGENT, "payer", created_at=now, created_by="t", replaces=old.split("_")[2]
    )
    server.service.store.add_key(record, retire_at=now + 3600)
    for token in (old, new):
        answer = server.client(token).post("/v1/decide", json=pay(40, step=len(token)))
        assert answer.status_code == 200, answer.text


def test_a_revocation_reaches_a_server_that_caches_keys_within_a_second(
    start: Callable[..., Running],
) -> None:
    running = start(key_cache_s=1.0)
    token = running.key("payer", KeyKind.AGENT, "payer")
    agent = running.client(token)
    assert agent.post("/v1/decide", json=pay(40, step=1)).status_code == 200
    running.service.store.revoke_key(token.split("_")[2], at=wall_clock(), by="tests")
    deadline = time.monotonic() + 10
    codes: list[str] = []
    while time.monotonic() < deadline:
        answer = agent.post("/v1/decide", json=pay(40, step=2))
        if answer.status_code != 200:
            codes.append(error_code(answer))
            break
        time.sleep(0.05)
    assert codes == ["W-AUTH-004"]


def test_health_checks_and_the_openapi_document_need_no_key(server: Running) -> None:
    c = server.client()
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["policy_revision"] == server.service.gate.policies.revision
    assert c.get("/openapi.json").json()["info"]["title"] == "Warden HTTP API"
