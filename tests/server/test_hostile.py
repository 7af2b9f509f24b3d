"""Hostile input, overload and a failing store: a clear code every time, never a 5xx
traceback, never a skipped check, every refusal audited."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tests.server.conftest import Running, ServerFactory, error_code, pay
from warden.identity import KeyKind

_DEEP = b'{"agent": "payer", "args": ' + b"[" * 40 + b"]" * 40 + b"}"
_DEEPER = b"[" * 2000 + b"]" * 2000  # deeper than the JSON parser's recursion limit
_SURROGATE = b'{"agent": "payer", "tool": "pay", "run_id": "r", "args": {"payee": "\\ud800"}}'

BODIES: dict[str, tuple[bytes, int, str]] = {
    "oversized": (b'{"pad": "' + b"x" * 5000 + b'"}', 413, "W-API-002"),
    "deep-nesting": (_DEEP, 400, "W-API-003"),
    "deeper-than-the-parser": (_DEEPER, 400, "W-API-003"),
    "duplicate-keys": (b'{"agent": "payer", "agent": "other"}', 400, "W-API-001"),
    "nan": (b'{"estimated_usd": NaN}', 400, "W-API-001"),
    "infinity": (b'{"estimated_usd": Infinity}', 400, "W-API-001"),
    "minus-infinity": (b'{"estimated_usd": -Infinity}', 400, "W-API-001"),
    "overflowing-number": (b'{"estimated_usd": 1e999}', 400, "W-API-001"),
    "step-beyond-a-database-integer": (
        json.dumps({**pay(1), "step": 2**64}).encode(),
        422,
        "W-API-004",
    ),
    "tokens-beyond-a-database-integer": (
        json.dumps({**pay(1), "estimated_tokens": 10**30}).encode(),
        422,
        "W-API-004",
    ),
    "latin-1": ('{"agent": "pâyer"}'.encode("latin-1"), 400, "W-API-001"),
    "utf-16": ('{"agent": "payer"}'.encode("utf-16"), 400, "W-API-001"),
    "utf-8-bom": (b'\xef\xbb\xbf{"agent": "payer"}', 400, "W-API-001"),
    "lone-surrogate": (_SURROGATE, 400, "W-API-001"),
    "array": (b'[{"agent": "payer"}]', 400, "W-API-001"),
    "string": (b'"payer"', 400, "W-API-001"),
    "null": (b"null", 400, "W-API-001"),
    "empty": (b"", 400, "W-API-001"),
    "two-values": (b'{"a": 1} {"b": 2}', 400, "W-API-001"),
    "not-json": (b"agent=payer&tool=pay", 400, "W-API-001"),
    "unknown-field": (json.dumps({**pay(1), "admin": True}).encode(), 422, "W-API-004"),
    "missing-field": (json.dumps({"agent": "payer", "tool": "pay"}).encode(), 422, "W-API-004"),
    "wrong-type": (json.dumps({**pay(1), "step": "3"}).encode(), 422, "W-API-004"),
    "bool-for-number": (json.dumps({**pay(1), "estimated_usd": True}).encode(), 422, "W-API-004"),
    "negative-cost": (json.dumps({**pay(1), "estimated_usd": -1}).encode(), 422, "W-API-004"),
    "args-not-object": (json.dumps({**pay(1), "args": [1]}).encode(), 422, "W-API-004"),
    "homoglyph-agent": (json.dumps({**pay(1), "agent": "pаyer"}).encode(), 403, "W-AUTH-005"),
    "zero-width-agent": (
        json.dumps({**pay(1), "agent": "pay\u200ber"}).encode(),
        403,
        "W-AUTH-005",
    ),
}


@pytest.fixture
def small(start: ServerFactory) -> Running:
    """A server with a 4 KiB body limit, the payer's key and an admin token."""
    running = start(max_body=4096)
    running.key("payer", KeyKind.AGENT, "payer")
    running.key("admin", KeyKind.OPERATOR, "ada", roles=("admin",))
    return running


_FIELD_CHECKS = ("W-API-004", "W-AUTH-005")  # of the decide body only
CASES = [
    pytest.param(path, body, status, code, id=f"{path}-{name}")
    for path in ("/v1/decide", "/v1/actions/act_x/outcome", "/v1/kill")
    for name, (body, status, code) in BODIES.items()
    if path == "/v1/decide" or code not in _FIELD_CHECKS
    if path != "/v1/kill" or body  # the admin API takes an empty body as no body
]


@pytest.mark.parametrize(("path", "body", "status", "code"), CASES)
def test_a_hostile_body_gets_a_clear_code_and_is_audited(
    small: Running, path: str, body: bytes, status: int, code: str
) -> None:
    token = small.tokens["admin" if path == "/v1/kill" else "payer"]
    before = len(small.audit("api.rejected"))
    answer = small.client(token).post(
        path, content=body, headers={"content-type": "application/json"}
    )
    assert (answer.status_code, error_code(answer)) == (status, code), answer.text
    rejected = small.audit("api.rejected")
    assert len(rejected) == before + 1
    assert (rejected[-1]["code"], rejected[-1]["path"]) == (code, path)
    assert rejected[-1]["body_bytes"] == (
        len(body) if status != 413 else rejected[-1]["body_bytes"]
    )
    assert small.audit("decision") == []


def test_a_chunked_body_is_cut_off_at_the_limit(small: Running) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    answer = small.client(small.tokens["payer"]).post("/v1/decide", content=chunks())
    assert (answer.status_code, error_code(answer)) == (413, "W-API-002")


@pytest.mark.parametrize(
    "text",
    [
        "аcme",  # Cyrillic a
        "ac\u200bme",  # zero-width space
        "acme\u202e",  # right-to-left override
        "\u2066acme\u2069",  # bidi isolates
        "ａｃｍｅ",  # fullwidth
    ],
    ids=["homoglyph", "zero-width", "bidi-override", "bidi-isolate", "fullwidth"],
)
def test_confusable_characters_in_arguments_are_decided_never_a_5xx(
    small: Running, text: str
) -> None:
    agent = small.client(small.tokens["payer"])
    answer = agent.post(
        "/v1/decide",
        json=pay(1, run=f"run {text}", args={"payee": text, "note": text}, on_behalf_of=text),
    )
    assert answer.status_code == 200, answer.text
    decided = answer.json()
    assert decided["outcome"] in ("allow", "deny", "needs_approval")
    action = agent.get(f"/v1/actions/{decided['action_id']}").json()
    assert action["args"]["payee"] == text and action["run_id"] == f"run {text}"


def test_a_full_server_answers_503_at_once_and_checks_nothing(start: ServerFactory) -> None:
    running = start(max_inflight=1)
    token = running.key("payer", KeyKind.AGENT, "payer")
    host, port = running.url.removeprefix("http://").split(":")
    body = json.dumps(pay(40)).encode()
    slow = socket.create_connection((host, int(port)))
    try:  # a client that sends half its body holds the only slot
        slow.sendall(
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
            + token.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:10]
        )
        deadline = time.monotonic() + 10
        while running.front.inflight < 1:
            assert time.monotonic() < deadline, "the slow request never arrived"
            time.sleep(0.01)
        shed = running.client(token).post("/v1/decide", json=pay(41))
        assert (shed.status_code, error_code(shed)) == (503, "W-API-005")
        assert shed.headers["retry-after"] == "1"
        assert running.audit("decision") == []
        slow.sendall(body[10:])
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        slow.close()
    assert len(running.audit("decision")) == 1
    assert running.client(token).post("/v1/decide", json=pay(41)).status_code == 200
    assert running.client().get("/healthz").status_code == 200


def test_a_store_that_fails_makes_the_server_fail_closed(server: Running) -> None:
    import payment_tools

    payment_tools.BACKEND.reset()
    agent = server.client(server.tokens["payer"])
    assert agent.post("/v1/decide", json=pay(40, step=1)).status_code == 200
    server.service.store.close()  # the database goes away underneath
    for path in ("/v1/decide", "/v1/execute"):
        answer = agent.post(path, json=pay(40, step=2))
        assert (answer.status_code, error_code(answer)) == (503, "W-STO-001"), answer.text
        assert answer.headers["retry-after"] == "1"
    assert payment_tools.BACKEND.all() == []
    ready = server.client().get("/readyz")
    assert (ready.status_code, error_code(ready)) == (503, "W-STO-001")
    assert server.client().get("/healthz").status_code == 200


def test_a_client_that_stalls_mid_body_is_answered_and_frees_its_slot(
    start: ServerFactory,
) -> None:
    running = start(max_inflight=1, body_timeout_s=0.2)
    token = running.key("payer", KeyKind.AGENT, "payer")
    host, port = running.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
            + token.encode()
            + b"\r\ncontent-length: 100\r\n\r\n{"
        )
        stalled.settimeout(30)
        answer = stalled.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"W-API-001"' in answer and b"did not arrive within 0.2 s" in answer
    assert running.audit("api.rejected")[-1]["code"] == "W-API-001"
    assert running.client(token).post("/v1/decide", json=pay(40)).status_code == 200
