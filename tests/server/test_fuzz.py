"""The checked-in OpenAPI document against a live server: schemathesis generates requests
for every operation in docs/reference/openapi.json, valid ones and invalid ones, and sends
them with real keys (an agent key on the agent API, an admin token elsewhere), so they get
past authentication and into the checks behind it.

Every answer must be one the document describes (status, content type, body schema), never
a 5xx but an explicit 503 with ``Retry-After``, and every refusal must be in the audit log
as one ``api.rejected`` record, as the reference promises. Runs are bounded and
deterministic (``derandomize``), so a failure reproduces.

Then a table of hostile names the fuzzer would rarely hit and tests/server/test_hostile.py
does not cover: confusable (homoglyph, zero-width, bidi) agent, tool and kill-switch names,
and bytes that are not UTF-8 in a path or a header.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import Running, ServerFactory, error_code, pay
from warden.audit.verify import verify_rows
from warden.identity import KeyKind

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "reference" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(str(OPENAPI))
OPERATIONS = {op.label: op for op in (found.ok() for found in SCHEMA.get_all_operations())}

EXAMPLES = 20
"""Per operation and generation mode: enough to reach past each check, small enough that
the file runs in well under a minute."""
HEALTH = frozenset({"/healthz", "/readyz"})
"""No key, no parameters, no body: nothing a negative case could get wrong."""
AGENT_API = frozenset({"/v1/decide", "/v1/execute", "/v1/actions/{action_id}/outcome"})
PAYER_TOOLS = ("pay", "blind_pay", "lookup_payment")  # the ones that answer at once
REFUSALS = frozenset({400, 401, 403, 404, 413, 422})
"""Refused requests, which the reference says are audited (credentials, rights, unreadable
bodies, unknown things); a 409 is a conflict with stored state, audited or not."""
_BODY_CHECKED = (400, 413)  # the front reads every POST body: unreadable, or too large
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _rejections(server: Running) -> tuple[int, dict[str, Any] | None]:
    """How many ``api.rejected`` records the log holds, and the data of the last one."""
    rows = server.rows(
        "SELECT (SELECT count(*) FROM audit WHERE kind = 'api.rejected'), (SELECT body FROM "
        "audit WHERE kind = 'api.rejected' ORDER BY seq DESC LIMIT 1)"
    )
    count, body = rows[0]
    return int(count), json.loads(bytes(body))["data"] if body is not None else None


def _strategy(label: str, mode: GenerationMode) -> st.SearchStrategy[Case]:
    """The operation's cases. Valid decide and execute bodies come as the payer proposing
    one of its own tools (often with arguments its contract takes), so that they reach the
    gate, the policies and the tool, not only the key's scope: other agents' names are
    the negative cases' and the hostile table's business."""
    generated = OPERATIONS[label].as_strategy(mode)
    if mode is not GenerationMode.POSITIVE or OPERATIONS[label].path not in AGENT_API:
        return generated

    def as_payer(case: Case, tool: str, args: dict[str, Any] | None) -> Case:
        if isinstance(case.body, dict) and "agent" in case.body:
            body: dict[str, Any] = {**case.body, "agent": "payer", "tool": tool}
            for field in ("step", "estimated_tokens"):  # the server takes integers strictly
                if isinstance(body.get(field), float):
                    body[field] = int(body[field])
            if args is not None:
                body["args"] = args
            case.body = body
        return case

    payments = st.fixed_dictionaries(
        {"payee": st.text(min_size=1, max_size=20), "amount_usd": st.floats(0, 2000)},
        optional={"note": st.text(max_size=20)},
    )
    return st.builds(
        as_payer, generated, st.sampled_from(PAYER_TOOLS), st.one_of(st.none(), payments)
    )


def _check(server: Running, label: str, case: Case, before: int) -> None:
    """Send `case` with a key that may call the operation, and judge the answer."""
    token = server.tokens["payer" if OPERATIONS[label].path in AGENT_API else "admin"]
    response = case.call(base_url=server.url, headers={"authorization": f"Bearer {token}"})
    status = response.status_code
    body = response.json() if response.headers.get("content-type") == ["application/json"] else {}
    code = body["error"]["code"] if status >= 400 else None
    if status >= 500:  # only an explicit, retryable refusal: overloaded or store down
        assert status == 503 and code is not None, (status, response.content[:500])
        assert code == "W-API-005" or code.startswith("W-STO-"), code
        assert response.headers.get("retry-after"), response.headers
    case.validate_response(response, checks=CHECKS)
    after, last = _rejections(server)
    if status in REFUSALS:
        assert after == before + 1, f"{status} {code} for {case.method} {case.path} not audited"
        assert last is not None
        assert (last["method"], last["status"], last["code"]) == (case.method, status, code)
    elif status != 409:
        assert after == before, f"{status} for {case.method} {case.path} audited as rejected"


FUZZED = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or OPERATIONS[label].path not in HEALTH
]


@pytest.mark.parametrize(("label", "mode"), FUZZED)
def test_fuzzed_requests_get_documented_answers_and_every_refusal_is_audited(
    server: Running, label: str, mode: GenerationMode
) -> None:
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @given(case=_strategy(label, mode))
    def fuzz(case: Case) -> None:
        before, _ = _rejections(server)
        _check(server, label, case, before)
        seen.append(1)

    fuzz()
    assert seen, "no request was generated"
    assert server.client().get("/healthz").status_code == 200  # no crash
    report = verify_rows(server.service.store.audit_rows())  # and a chain that still holds
    assert report.records >= _rejections(server)[0]


REFUSED: dict[str, tuple[int, str, bytes | None]] = {
    # what is wrong with the request: (status, code, body); None: a JSON {} body
    "no-key": (401, "W-AUTH-001", None),
    "unreadable-body": (400, "W-API-001", b"\xff{"),
    "oversized-body": (413, "W-API-002", b"{" + b" " * 5000 + b"}"),
}


def _refusal_cases() -> list[Any]:
    cases: list[Any] = []
    for label, operation in OPERATIONS.items():
        for kind in REFUSED:
            if operation.path in HEALTH or (kind != "no-key" and operation.method != "post"):
                continue
            cases.append(pytest.param(label, kind, id=f"{label}-{kind}"))
    return cases


@pytest.mark.parametrize(("label", "kind"), _refusal_cases())
def test_every_operation_documents_the_refusals_it_answers(
    start: ServerFactory, label: str, kind: str
) -> None:
    server = start(max_body=4096)
    token = server.key("admin", KeyKind.OPERATOR, "ada", roles=("admin",))
    if OPERATIONS[label].path in AGENT_API:
        token = server.key("payer", KeyKind.AGENT, "payer")
    status, code, body = REFUSED[kind]
    operation = OPERATIONS[label]
    path = operation.path.replace("{action_id}", "act_x").replace("{approval_id}", "apr_x")
    client = server.client(token if kind != "no-key" else None)
    answer = client.request(
        operation.method.upper(),
        path.replace("{run_id}", "run_x"),
        content=body if body is not None else b"{}",
        headers={"content-type": "application/json"},
    )
    assert (answer.status_code, error_code(answer)) == (status, code), answer.text
    assert str(status) in operation.definition.raw["responses"], sorted(
        operation.definition.raw["responses"]
    )


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_a_verdict_on_an_unknown_approval_is_the_documented_404_and_audited(
    server: Running, verdict: str
) -> None:
    before, _ = _rejections(server)
    answer = server.client(server.tokens["fiona"]).post(
        f"/v1/approvals/apr_missing/{verdict}", json={"reason": "no such request"}
    )
    assert answer.status_code == 404, answer.text
    after, last = _rejections(server)
    assert (error_code(answer), after - before) == ("W-API-006", 1)
    assert last is not None and last["path"] == f"/v1/approvals/apr_missing/{verdict}"


# --- hostile names ---------------------------------------------------------------------------

NAMES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    # id: (token, path, body, status, code): a confusable name is never the real one
    "agent-bidi-override": ("payer", "/v1/decide", pay(1, agent="payer\u202e"), 403, "W-AUTH-005"),
    "agent-bidi-isolates": (
        "payer",
        "/v1/decide",
        pay(1, agent="\u2066payer\u2069"),
        403,
        "W-AUTH-005",
    ),
    "agent-fullwidth": ("payer", "/v1/execute", pay(1, agent="ｐａｙｅｒ"), 403, "W-AUTH-005"),
    "kill-agent-homoglyph": (
        "admin",
        "/v1/kill",
        {"scope": "agent:pаyer", "reason": "x"},
        422,
        "W-API-004",
    ),
    "kill-tool-zero-width": (
        "admin",
        "/v1/kill",
        {"scope": "tool:pa\u200by", "reason": "x"},
        422,
        "W-API-004",
    ),
    "kill-agent-bidi": (
        "admin",
        "/v1/kill",
        {"scope": "agent:payer\u202e", "reason": "x"},
        422,
        "W-API-004",
    ),
    "kill-all-zero-width": (
        "admin",
        "/v1/kill",
        {"scope": "all\u200b", "reason": "x"},
        422,
        "W-API-004",
    ),
    "unkill-homoglyph": ("admin", "/v1/unkill", {"scope": "аll"}, 200, ""),
}


@pytest.mark.parametrize(
    ("token", "path", "body", "status", "code"), list(NAMES.values()), ids=list(NAMES)
)
def test_a_confusable_name_is_refused_or_matches_nothing(
    server: Running, token: str, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    before, _ = _rejections(server)
    answer = server.client(server.tokens[token]).post(path, json=body)
    assert answer.status_code == status, answer.text
    after, last = _rejections(server)
    if status == 200:  # lifting a switch that is not engaged changes nothing
        assert answer.json() == {"engaged": [], "changed": False}
        assert after == before
        return
    assert error_code(answer) == code
    assert after == before + 1 and last is not None and last["code"] == code
    assert server.client(server.tokens["admin"]).get("/v1/kills").json()["engaged"] == []
    assert server.audit("decision") == []


@pytest.mark.parametrize(
    "tool",
    ["pаy", "pa\u200by", "pay\u202e", "\u2066pay\u2069"],
    ids=["homoglyph", "zero-width", "bidi-override", "bidi-isolates"],
)
def test_a_confusable_tool_name_is_denied_as_unknown_and_never_runs(
    server: Running, tool: str
) -> None:
    import payment_tools

    payment_tools.BACKEND.reset()
    answer = server.client(server.tokens["payer"]).post(
        "/v1/execute", json={**pay(1), "tool": tool}
    )
    assert answer.status_code == 200, answer.text
    decided = answer.json()
    assert (decided["outcome"], decided["state"], decided["code"]) == (
        "deny",
        "decided",
        "W-IDN-003",
    )
    assert payment_tools.BACKEND.all() == []


def _raw(server: Running, request: bytes) -> bytes:
    """Send `request` as it is (bytes no client would send) and read the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_bytes_that_are_not_utf8_in_a_path_or_a_key_are_refused_and_audited(
    server: Running,
) -> None:
    admin = server.tokens["admin"].encode()
    cases = [
        (
            b"GET /v1/runs/%FF%FE HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + admin,
            b"404",
            "W-API-006",
        ),
        (
            b"GET /v1/runs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer wdn_\xff\xfe",
            b"401",
            "W-AUTH-001",
        ),
        (
            b"GET /v1/runs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + admin + b"\xc3",
            b"401",
            "W-AUTH-001",
        ),
    ]
    for request, status, code in cases:
        before, _ = _rejections(server)
        answer = _raw(server, request + b"\r\nconnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
        assert f'"code":"{code}"'.encode() in answer, answer[:500]
        after, last = _rejections(server)
        assert after == before + 1 and last is not None and last["code"] == code
