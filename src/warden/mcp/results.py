"""What an MCP client gets back for a call, from what Warden did with it.

- the call ran and succeeded: the upstream's own result, unchanged, with Warden's ids
  added under ``_meta``;
- the gate denied it, or recorded it as a suggestion: an error result
  (``isError: true``) saying the code and the reasons, with the rules' file:line;
- it failed upstream: the upstream's error text; failed otherwise (W-MCP-003, a
  timeout): the code and what happened;
- it waits for approval: an error result saying so, with the approval id and the
  command an approver runs. ``isError`` keeps clients from checking the text against the
  tool's output schema; the text says plainly that nothing failed and nothing ran.

Every result carries ``_meta["warden/..."]``: the action, its state and code, the run.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as mt

from warden.approvals import ApprovalRequest
from warden.decision import Decision, Outcome
from warden.errors import WardenError
from warden.runs import ActionState, Execution

__all__ = [
    "APPROVAL_KEY",
    "approval_message",
    "approval_schema",
    "error_result",
    "execution_result",
    "pending_result",
]

APPROVAL_KEY = "warden.approval"
"""The key of Warden's elicitation among an ``InputRequiredResult``'s requests."""


def _meta(ex: Execution, **more: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "warden/action_id": ex.action_id,
        "warden/state": ex.state.value,
        "warden/run_id": ex.run_id,
    }
    code = ex.code
    if code:
        meta["warden/code"] = code
    meta.update({f"warden/{k}": v for k, v in more.items() if v is not None})
    return meta


def _text_result(text: str, meta: dict[str, Any], *, error: bool = True) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(text=text)], is_error=error, _meta=meta)


def error_result(exc: WardenError) -> mt.CallToolResult:
    """A refusal before or around the gate (a busy key, an unusable approval ...)."""
    return _text_result(f"{exc.code}: {exc.message}", {"warden/code": exc.code})


def execution_result(ex: Execution) -> mt.CallToolResult:
    """The client's answer for an action in any state but awaiting approval."""
    if ex.state in (ActionState.SUCCEEDED, ActionState.COMPENSATED):
        return _succeeded(ex)
    if ex.state is ActionState.DECIDED:
        return _decided(ex)
    if ex.state is ActionState.REJECTED:
        return _text_result(
            f"A person did not approve this call to {ex.tool} (approval {ex.approval_id}), "
            "or the approval expired; it was not run.",
            _meta(ex, approval_id=ex.approval_id),
        )
    if ex.state is ActionState.EXECUTING:
        return _text_result(
            f"W-IDM-002: this call to {ex.tool} is running (action {ex.action_id}); "
            "ask again for its result.",
            _meta(ex),
        )
    return _failed(ex)


def _succeeded(ex: Execution) -> mt.CallToolResult:
    value: Any = ex.result
    meta = _meta(ex, approval_id=ex.approval_id, replayed=ex.replayed or None)
    if isinstance(value, dict):
        try:
            result = mt.CallToolResult.model_validate(value)
        except ValueError:
            result = None
        if result is not None:
            merged = {**(result.meta or {}), **meta}
            return result.model_copy(update={"meta": merged})
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return _text_result(text, meta, error=False)


def _decided(ex: Execution) -> mt.CallToolResult:
    decision: Decision | None = ex.decision
    code = ex.code or "W-GATE-001"
    if decision is None:
        return _text_result(f"{code}: this call to {ex.tool} was not run.", _meta(ex))
    reasons = "; ".join(decision.reasons) or "no reason given"
    rules = ", ".join(str(r) for r in decision.rules)
    where = f" (rules: {rules})" if rules else ""
    if decision.outcome is Outcome.SUGGEST_ONLY:
        text = (
            f"{code}: {ex.tool} was recorded as a suggestion for a person, not run: "
            f"{reasons}{where}"
        )
    else:
        text = f"{code}: Warden denied this call to {ex.tool}: {reasons}{where}"
    return _text_result(text, _meta(ex, outcome=decision.outcome.value, stage=decision.stage.value))


def _failed(ex: Execution) -> mt.CallToolResult:
    error = dict(ex.error or {})
    message = str(error.get("message") or "")
    meta = _meta(ex, error_type=error.get("type"))
    if error.get("type") == "UpstreamToolError":
        meta["warden/code"] = "W-MCP-005"
        return _text_result(message, meta)
    code = error.get("code") or ex.code or "W-EXE-001"
    if ex.state is ActionState.OUTCOME_UNKNOWN:
        what = "its outcome is unknown; a person must check before it is tried again"
    else:
        what = "it failed"
    return _text_result(f"{code}: {ex.tool}: {what}: {message}", meta)


def approval_message(request: ApprovalRequest | None, ex: Execution, *, wait_s: float) -> str:
    """What the person at the client is told while a call waits for approval."""
    approval = ex.approval_id or "?"
    who = _approvers(request)
    args = json.dumps(dict(request.args) if request else {}, sort_keys=True)
    if len(args) > 400:
        args = args[:397] + "..."
    return (
        f"Warden holds a call of agent {ex.agent} for approval: {ex.tool} {args}. "
        f"It needs {who} (approval {approval}); an approver runs "
        f"`warden approvals approve {approval} --as NAME`. "
        f"Your answer here is not an approval: wait up to {_duration(wait_s)} for the "
        "verdict, or decline to get a pending result now."
    )


def approval_schema() -> dict[str, Any]:
    """The form of Warden's elicitation: one yes/no, whether to wait for the verdict."""
    return {
        "type": "object",
        "properties": {
            "wait": {
                "type": "boolean",
                "title": "Wait for the verdict",
                "description": "Hold the call open until an approver decides (it then runs).",
                "default": True,
            }
        },
        "required": ["wait"],
    }


def pending_result(ex: Execution, request: ApprovalRequest | None) -> mt.CallToolResult:
    """The answer for a call that waits for approval: not run, how to approve, how to go on."""
    approval = ex.approval_id or "?"
    reasons = "; ".join(request.reasons) if request is not None and request.reasons else ""
    why = f" ({reasons})" if reasons else ""
    text = (
        f"PENDING: {ex.tool} waits for approval by {_approvers(request)}{why}. Nothing failed "
        f"and nothing was run. Approval id: {approval}. An approver runs: "
        f"warden approvals approve {approval} --as NAME. After approval, call {ex.tool} "
        "again with the same arguments to run it."
    )
    roles = list(request.roles) if request is not None else []
    return _text_result(
        text,
        _meta(ex, approval_id=approval, status="awaiting_approval", roles=roles or None),
    )


def _approvers(request: ApprovalRequest | None) -> str:
    if request is None:
        return "an approver"
    roles = ", ".join(request.roles) or "an approver"
    if request.count > 1:
        return f"{request.count} people ({roles})"
    return roles


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
