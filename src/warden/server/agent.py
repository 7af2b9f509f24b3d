"""The agent API's bodies and answers, on the lean path: no framework between the bytes
and `Executor.decide`.

    POST /v1/decide                  decide and record; the caller runs the tool
    POST /v1/execute                 decide, record, and Warden runs the project's tool
    POST /v1/actions/{id}/outcome    the outcome of a tool the caller ran

The bodies are checked here by hand, field by field, with the same rules as the pydantic
models in `warden.server.schemas` (which describe them in the OpenAPI document); a test
keeps the two in step. A refusal names the field: ``W-API-004 estimated_usd: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from warden.errors import ApiError
from warden.gate import ToolCall
from warden.runs import ActionView, Execution
from warden.server.schemas import COUNT_MAX, KEY_MAX, NAME_MAX, TEXT_MAX

__all__ = ["Report", "decision_json", "execution_json", "outcome_json", "read_call", "read_report"]

_CALL_FIELDS = frozenset(
    {
        "agent",
        "tool",
        "args",
        "run_id",
        "step",
        "idempotency_key",
        "context",
        "estimated_usd",
        "estimated_tokens",
        "on_behalf_of",
    }
)
_REPORT_FIELDS = frozenset({"ok", "result", "error", "duration_ms", "usd"})
_ERROR_FIELDS = frozenset({"message", "type"})
_EMPTY: Mapping[str, Any] = {}


def _bad(field: str, message: str) -> ApiError:
    return ApiError("W-API-004", f"{field}: {message}")


def _unknown(body: Mapping[str, Any], known: frozenset[str], where: str = "") -> None:
    extra = [k for k in body if k not in known]
    if extra:
        raise _bad(where + extra[0], "unknown field (the API reference lists the fields)")


def _text(body: Mapping[str, Any], field: str, *, limit: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if type(value) is not str:
        raise _bad(field, "must be a string")
    if not value:
        raise _bad(field, "must not be empty")
    if len(value) > limit:
        raise _bad(field, f"must be at most {limit} characters")
    return value


def _name(body: Mapping[str, Any], field: str) -> str:
    value = _text(body, field, limit=NAME_MAX)
    if value is None:
        raise _bad(field, "required")
    return value


def _object(body: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    if field not in body:
        return None
    value = body[field]
    if type(value) is not dict:
        raise _bad(field, "must be an object")
    return cast(dict[str, Any], value)


def _number(body: Mapping[str, Any], field: str, *, nullable: bool = False) -> float | None:
    value = body.get(field)
    if value is None:
        if field in body and not nullable:
            raise _bad(field, "must be a number")
        return None
    if type(value) is not float and type(value) is not int:
        raise _bad(field, "must be a number")
    if value < 0:
        raise _bad(field, "must be 0 or more")
    return float(value)


def _count(body: Mapping[str, Any], field: str, *, nullable: bool) -> int | None:
    value = body.get(field)
    if value is None:
        if field in body and not nullable:
            raise _bad(field, "must be an integer")
        return None
    if type(value) is not int:
        raise _bad(field, "must be an integer")
    if value < 0:
        raise _bad(field, "must be 0 or more")
    if value > COUNT_MAX:
        raise _bad(field, f"must be at most {COUNT_MAX}")
    return value


def read_call(body: Mapping[str, Any], *, principal: str) -> ToolCall:
    """The tool call a decide or execute body proposes (W-API-004 naming the field)."""
    _unknown(body, _CALL_FIELDS)
    agent = _name(body, "agent")
    tool = _name(body, "tool")
    args = _object(body, "args")
    if args is None:
        raise _bad("args", "required")
    run_id = _name(body, "run_id")
    context = _object(body, "context")
    usd = _number(body, "estimated_usd")
    tokens = _count(body, "estimated_tokens", nullable=False)
    return ToolCall(
        agent=agent,
        tool=tool,
        args=args,
        run_id=run_id,
        step=_count(body, "step", nullable=True),
        idempotency_key=_text(body, "idempotency_key", limit=KEY_MAX),
        context=context if context is not None else _EMPTY,
        estimated_usd=usd if usd is not None else 0.0,
        estimated_tokens=tokens if tokens is not None else 0,
        on_behalf_of=_text(body, "on_behalf_of", limit=NAME_MAX),
        principal=principal,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """An outcome body, checked."""

    ok: bool
    result: Any
    error: Mapping[str, Any] | None
    duration_ms: float
    usd: float | None


def read_report(body: Mapping[str, Any]) -> Report:
    """The outcome an outcome body reports (W-API-004 naming the field)."""
    _unknown(body, _REPORT_FIELDS)
    ok = body.get("ok")
    if ok is None:
        raise _bad("ok", "required")
    if type(ok) is not bool:
        raise _bad("ok", "must be true or false")
    error = _object(body, "error") if body.get("error") is not None else None
    if error is not None:
        _unknown(error, _ERROR_FIELDS, "error.")
        message = error.get("message")
        if message is None:
            raise _bad("error.message", "required")
        if type(message) is not str:
            raise _bad("error.message", "must be a string")
        if len(message) > TEXT_MAX:
            raise _bad("error.message", f"must be at most {TEXT_MAX} characters")
        kind = error.get("type")
        if kind is not None and type(kind) is not str:
            raise _bad("error.type", "must be a string")
        if kind is not None and len(kind) > NAME_MAX:
            raise _bad("error.type", f"must be at most {NAME_MAX} characters")
    duration = _number(body, "duration_ms")
    return Report(
        ok=ok,
        result=body.get("result"),
        error=error,
        duration_ms=duration if duration is not None else 0.0,
        usd=_number(body, "usd", nullable=True),
    )


def decision_json(done: Execution, view: ActionView | None) -> dict[str, Any]:
    """The decide answer; `view` is the stored action when `done` carries no decision (a
    replay, or an approved action handed over)."""
    d = done.decision
    if d is not None:
        return {
            "action_id": done.action_id,
            "run_id": done.run_id,
            "state": done.state.value,
            "outcome": d.outcome.value,
            "stage": d.stage.value,
            "code": d.code,
            "reasons": list(d.reasons),
            "rules": [{"id": r.id, "file": r.file, "line": r.line} for r in d.rules],
            "policy_revision": d.policy_revision,
            "mode": d.mode,
            "stop_run": d.stop_run,
            "approval": (
                {"roles": list(d.approval.roles), "count": d.approval.count}
                if d.approval is not None
                else None
            ),
            "idempotency_key": done.idempotency_key,
            "approval_id": done.approval_id,
            "replayed": done.replayed,
        }
    return {
        "action_id": done.action_id,
        "run_id": done.run_id,
        "state": done.state.value,
        "outcome": view.outcome if view is not None else "allow",
        "stage": None,
        "code": view.code if view is not None else None,
        "reasons": list(view.reasons) if view is not None else [],
        "rules": [],
        "policy_revision": None,
        "mode": None,
        "stop_run": False,
        "approval": None,
        "idempotency_key": done.idempotency_key,
        "approval_id": done.approval_id,
        "replayed": done.replayed,
    }


def execution_json(done: Execution, view: ActionView | None) -> dict[str, Any]:
    """The execute answer: the decision and what running the tool gave."""
    found = decision_json(done, view)
    found["result"] = done.result
    found["error"] = dict(done.error) if done.error is not None else None
    found["attempts"] = done.attempts
    found["duration_ms"] = done.duration_ms
    return found


def outcome_json(done: Execution) -> dict[str, Any]:
    """The outcome answer."""
    return {
        "action_id": done.action_id,
        "run_id": done.run_id,
        "state": done.state.value,
        "result": done.result,
        "error": dict(done.error) if done.error is not None else None,
        "replayed": done.replayed,
    }
