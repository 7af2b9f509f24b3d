"""Reading hostile JSON bodies, and the agent API's hand-written checks against the models
that describe them in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from warden.errors import ApiError
from warden.server.agent import read_call, read_report
from warden.server.bodies import parse_object
from warden.server.schemas import DecideRequest, OutcomeRequest


def _code(raw: bytes, max_depth: int = 32) -> str:
    with pytest.raises(ApiError) as err:
        parse_object(raw, max_depth=max_depth)
    return err.value.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a": {"a": 1, "a": 2}}', "W-API-001"),
        (b'{"a": [1, {"b": NaN}]}', "W-API-001"),
        (b'{"a": 1e400}', "W-API-001"),
        (b'{"a": -1e400}', "W-API-001"),
        (b'{"a": ' + b"1" * 4400 + b"}", "W-API-001"),
        (b'{"\\udc00": 1}', "W-API-001"),
        (b'{"a": "\xff"}', "W-API-001"),
        (b"\xef\xbb\xbf{}", "W-API-001"),
        (b"{} []", "W-API-001"),
        (b"  ", "W-API-001"),
        (b"[" * 33 + b"]" * 33, "W-API-003"),
        (b'{"a":' * 33 + b"1" + b"}" * 33, "W-API-003"),
        (b"[" * 5000 + b"]" * 5000, "W-API-003"),
    ],
    ids=[
        "nested-duplicate",
        "nested-nan",
        "overflow",
        "negative-overflow",
        "too-many-digits",
        "surrogate-key",
        "invalid-utf8",
        "bom",
        "two-values",
        "blank",
        "deep-array",
        "deep-object",
        "deeper-than-recursion",
    ],
)
def test_a_body_that_is_not_one_plain_json_object_is_refused(raw: bytes, code: str) -> None:
    assert _code(raw) == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b' \n{"a": 1}\n ', {"a": 1}),
        (b'{"emoji": "\\ud83d\\ude00"}', {"emoji": "😀"}),
        (b'{"a": [[[[1]]]]}', {"a": [[[[1]]]]}),
        ('{"payee": "аcme\u200b\u202e"}'.encode(), {"payee": "аcme\u200b\u202e"}),
        (b'{"n": 1.5e300, "big": 123456789012345678901234567890}', None),
    ],
    ids=["whitespace", "surrogate-pair", "nesting-within-limit", "confusables", "big-numbers"],
)
def test_a_plain_object_is_read_as_json_reads_it(raw: bytes, expected: Any) -> None:
    assert parse_object(raw, max_depth=32) == (expected if expected else json.loads(raw))


def test_depth_is_counted_exactly_at_the_limit() -> None:
    at = b"[" * 31 + b"]" * 31
    assert parse_object(b'{"a": ' + at + b"}", max_depth=32)
    assert _code(b'{"a": [' + at + b"]}", max_depth=32) == "W-API-003"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists))
def test_any_json_value_inside_an_object_reads_back_unchanged(value: Any) -> None:
    raw = json.dumps({"v": value}, ensure_ascii=False).encode()
    assert parse_object(raw, max_depth=1000) == {"v": value}


# --- the hand-written field checks agree with the models ---------------------------------------

_CALL = {"agent": "payer", "tool": "pay", "run_id": "r", "args": {"a": 1}}
DECIDE_BODIES: list[dict[str, Any]] = [
    _CALL,
    {**_CALL, "step": 3, "idempotency_key": "k", "context": {"tier": "pro"}},
    {**_CALL, "estimated_usd": 1, "estimated_tokens": 5, "on_behalf_of": "ann"},
    {**_CALL, "estimated_usd": 0.25, "step": None, "idempotency_key": None},
    {**_CALL, "on_behalf_of": None},
    {**_CALL, "step": 2**53},
    {k: v for k, v in _CALL.items() if k != "agent"},
    {k: v for k, v in _CALL.items() if k != "args"},
    {k: v for k, v in _CALL.items() if k != "run_id"},
    {**_CALL, "agent": ""},
    {**_CALL, "agent": None},
    {**_CALL, "agent": 7},
    {**_CALL, "tool": "t" * 201},
    {**_CALL, "tool": "t" * 200},
    {**_CALL, "args": []},
    {**_CALL, "args": None},
    {**_CALL, "context": None},
    {**_CALL, "context": "tier=pro"},
    {**_CALL, "step": -1},
    {**_CALL, "step": 1.0},
    {**_CALL, "step": True},
    {**_CALL, "step": "1"},
    {**_CALL, "step": 2**53 + 1},
    {**_CALL, "estimated_usd": -0.5},
    {**_CALL, "estimated_usd": False},
    {**_CALL, "estimated_usd": None},
    {**_CALL, "estimated_usd": "1"},
    {**_CALL, "estimated_tokens": 1.5},
    {**_CALL, "estimated_tokens": None},
    {**_CALL, "idempotency_key": ""},
    {**_CALL, "idempotency_key": "k" * 256},
    {**_CALL, "idempotency_key": "k" * 255},
    {**_CALL, "on_behalf_of": ""},
    {**_CALL, "unknown": 1},
]
OUTCOME_BODIES: list[dict[str, Any]] = [
    {"ok": True},
    {"ok": True, "result": {"id": 1}, "duration_ms": 3, "usd": 0.5},
    {"ok": False, "error": {"message": "boom", "type": "E"}},
    {"ok": False, "error": {"message": "boom"}, "usd": None},
    {"ok": True, "error": None, "result": None},
    {"ok": True, "result": [1, "two"]},
    {},
    {"ok": None},
    {"ok": 1},
    {"ok": "true"},
    {"ok": False, "error": {}},
    {"ok": False, "error": {"message": 3}},
    {"ok": False, "error": {"message": "m" * 2001}},
    {"ok": False, "error": {"message": "m", "type": 5}},
    {"ok": False, "error": {"message": "m", "stack": "..."}},
    {"ok": False, "error": "boom"},
    {"ok": True, "duration_ms": -1},
    {"ok": True, "duration_ms": None},
    {"ok": True, "usd": -1},
    {"ok": True, "usd": True},
    {"ok": True, "extra": 1},
]


def _model_accepts(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


def _hand_accepts(read: Any, body: dict[str, Any]) -> bool:
    """Whether the hand-written check takes `body` (it refuses only with W-API-004)."""
    try:
        read(body)
    except ApiError as exc:
        refused: str = exc.code
    else:
        return True
    assert refused == "W-API-004"
    return False


@pytest.mark.parametrize("body", DECIDE_BODIES, ids=lambda b: json.dumps(b)[:60])
def test_the_decide_checks_agree_with_the_decide_model(body: dict[str, Any]) -> None:
    accepted = _hand_accepts(lambda b: read_call(b, principal="payer"), body)
    assert accepted == _model_accepts(DecideRequest, body)
    if accepted:
        call, model = read_call(body, principal="payer"), DecideRequest.model_validate(body)
        for name in DecideRequest.model_fields:
            assert getattr(call, name) == getattr(model, name), name


@pytest.mark.parametrize("body", OUTCOME_BODIES, ids=lambda b: json.dumps(b)[:60])
def test_the_outcome_checks_agree_with_the_outcome_model(body: dict[str, Any]) -> None:
    accepted = _hand_accepts(read_report, body)
    assert accepted == _model_accepts(OutcomeRequest, body)
    if accepted:
        report, model = read_report(body), OutcomeRequest.model_validate(body)
        assert (report.ok, report.result, report.duration_ms, report.usd) == (
            model.ok,
            model.result,
            model.duration_ms,
            model.usd,
        )


def test_a_refused_field_is_named() -> None:
    with pytest.raises(ApiError) as err:
        read_call({**_CALL, "estimated_usd": "1"}, principal="payer")
    assert err.value.message.startswith("estimated_usd: ")
    with pytest.raises(ApiError) as err:
        read_report({"ok": False, "error": {"message": "m", "stack": "..."}})
    assert err.value.message.startswith("error.stack: ")
