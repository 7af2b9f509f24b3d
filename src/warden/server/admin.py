"""The admin API's reads and verdicts: runs, actions, approvals.

Operators call it with tokens from `warden keys create --operator`: `viewer` reads,
`approver:<role>` also gives verdicts for that approval role, `admin` may do
everything. Agent keys may read only their own actions here. Every handler checks the
caller's role first, then does its store work in a worker thread.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from warden.approvals import ApprovalRequest, ApprovalStatus, check_verdict
from warden.errors import ApiError, ApprovalError, AuthError
from warden.execution import Approvals
from warden.identity import KeyKind, Principal, role_ok
from warden.runs import ActionView, RunStatus
from warden.server.access import (
    ADMIN,
    APPROVER,
    VIEWER,
    ActionId,
    ApprovalId,
    RunId,
    body_errors,
    caller,
    errors,
    role,
    service_of,
)
from warden.server.schemas import (
    ActionModel,
    ApprovalModel,
    RunDetail,
    RunModel,
    VerdictRequest,
)
from warden.server.service import Service

__all__ = ["action_json", "router"]

router = APIRouter(redirect_slashes=False)


def action_json(action: ActionView) -> dict[str, Any]:
    """An action as the API shows it."""
    return {
        "id": action.id,
        "run_id": action.run_id,
        "agent": action.agent,
        "tool": action.tool,
        "step": action.step,
        "state": action.state.value,
        "outcome": action.outcome,
        "code": action.code,
        "reasons": list(action.reasons),
        "args": dict(action.args),
        "idempotency_key": action.idempotency_key,
        "approval_id": action.approval_id,
        "decided_at": action.decided_at,
        "finished_at": action.finished_at,
        "attempts": action.attempts,
        "result": action.result,
        "error": dict(action.error) if action.error is not None else None,
    }


def _not_found(what: str, ident: str) -> ApiError:
    return ApiError("W-API-006", f"no {what} {ident!r}")


@router.get(
    "/v1/runs",
    tags=["runs"],
    summary="List runs, newest first",
    response_model=list[RunModel],
    responses=errors(422),
    openapi_extra=role("viewer"),
)
async def list_runs(
    request: Request,
    status: RunStatus | None = Query(default=None, description="Only runs in this status."),  # noqa: B008
    limit: int = Query(default=50, ge=1, le=1000, description="At most this many runs."),
    _: Principal = VIEWER,
) -> Any:
    service = service_of(request)
    found = await service.run(lambda: service.store.runs(limit=limit, status=status))
    return [r.summary() for r in found]


@router.get(
    "/v1/runs/{run_id}",
    tags=["runs"],
    summary="One run and the timeline of its actions",
    response_model=RunDetail,
    responses=errors(404),
    openapi_extra=role("viewer"),
)
async def get_run(request: Request, run_id: RunId, _: Principal = VIEWER) -> Any:
    service = service_of(request)
    run = await service.run(service.store.run, run_id)
    if run is None:
        raise _not_found("run", run_id)
    return {**run.summary(), "actions": [action_json(a) for a in run.actions]}


@router.get(
    "/v1/actions/{action_id}",
    tags=["runs"],
    summary="One action: its decision, state and outcome",
    response_model=ActionModel,
    responses=errors(404),
    openapi_extra=role("viewer, or the action's agent"),
)
async def get_action(
    request: Request,
    action_id: ActionId,
    principal: Principal = Depends(caller),  # noqa: B008
) -> Any:
    """Operators with any role read every action; an agent key reads its own agent's."""
    service = service_of(request)
    if principal.kind is KeyKind.OPERATOR and not role_ok(principal, "viewer"):
        raise AuthError("W-AUTH-005", "reading actions needs the viewer role")
    view = await service.run(service.store.action, action_id)
    if view is None or (principal.kind is KeyKind.AGENT and view.agent != principal.name):
        if view is not None:
            raise AuthError(
                "W-AUTH-005", f"action {action_id} belongs to another agent than {principal.name}"
            )
        raise _not_found("action", action_id)
    return action_json(view)


# --- approvals -----------------------------------------------------------------------------


@router.get(
    "/v1/approvals",
    tags=["approvals"],
    summary="List approval requests, newest first",
    response_model=list[ApprovalModel],
    responses=errors(422),
    openapi_extra=role("viewer"),
)
async def list_approvals(
    request: Request,
    status: Literal["pending", "approved", "denied", "used", "expired", "all"] = Query(
        default="pending", description="Only requests in this status (`all`: every one)."
    ),
    _: Principal = VIEWER,
) -> Any:
    """Requests past their expiry are marked expired first."""
    service = service_of(request)
    desk = Approvals(service.store, roles={}, clock=service.clock)
    chosen = None if status == "all" else ApprovalStatus(status)
    found = await service.run(desk.list, chosen)
    return [r.to_dict() for r in found]


async def _approval(service: Service, approval_id: str) -> ApprovalRequest:
    found = await service.run(service.store.approval, approval_id)
    if found is None:
        raise _not_found("approval request", approval_id)
    return found


@router.get(
    "/v1/approvals/{approval_id}",
    tags=["approvals"],
    summary="One approval request and its verdicts",
    response_model=ApprovalModel,
    responses=errors(404),
    openapi_extra=role("viewer"),
)
async def get_approval(request: Request, approval_id: ApprovalId, _: Principal = VIEWER) -> Any:
    return (await _approval(service_of(request), approval_id)).to_dict()


def _verdict(
    service: Service,
    principal: Principal,
    approval_id: ApprovalId,
    approve: bool,
    body: VerdictRequest,
) -> dict[str, Any]:
    if not approve and not body.reason.strip():
        raise ApiError("W-API-004", "reason: required to deny")
    admin = "admin" in principal.roles
    held = principal.approver_roles
    now = service.clock.timestamp()

    def judge(request: ApprovalRequest) -> Any:
        return check_verdict(
            request,
            approver=principal.name,
            approver_roles=frozenset(request.roles) if admin else held,
            approve=approve,
            role=body.role,
            reason=body.reason,
            now=now,
        )

    try:
        return service.store.add_verdict(approval_id, judge).to_dict()
    except ApprovalError as exc:
        if exc.code == "W-APR-008":  # no such request: 404 W-API-006, like a GET of it
            raise _not_found("approval request", approval_id) from None
        raise


_VERDICT_DOC = (
    " The verdict is given as the token's operator, with the approval roles the token "
    "holds (`approver:<role>`; an admin token holds every role). The rules of every "
    "verdict apply: whoever requested the action cannot approve it (W-APR-003), one "
    "verdict per person (W-APR-005), a role the request needs (W-APR-006), before it "
    "expires (W-APR-002). A verdict never runs the action: its agent resumes it."
)


@router.post(
    "/v1/approvals/{approval_id}/approve",
    tags=["approvals"],
    summary="Approve a request",
    response_model=ApprovalModel,
    responses=body_errors(404, 409, 422),
    openapi_extra=role("approver"),
    description="Record an approving verdict." + _VERDICT_DOC,
)
async def approve(
    request: Request,
    approval_id: ApprovalId,
    body: VerdictRequest,
    principal: Principal = APPROVER,
) -> Any:
    service = service_of(request)
    return await service.run(_verdict, service, principal, approval_id, True, body)


@router.post(
    "/v1/approvals/{approval_id}/deny",
    tags=["approvals"],
    summary="Deny a request",
    response_model=ApprovalModel,
    responses=body_errors(404, 409, 422),
    openapi_extra=role("approver"),
    description="Record a denying verdict (a `reason` is required): the action is "
    "rejected and never runs." + _VERDICT_DOC,
)
async def deny(
    request: Request,
    approval_id: ApprovalId,
    body: VerdictRequest,
    principal: Principal = APPROVER,
) -> Any:
    service = service_of(request)
    return await service.run(_verdict, service, principal, approval_id, False, body)


@router.post(
    "/v1/approvals/{approval_id}/execute",
    tags=["approvals"],
    summary="Run an approved action now",
    response_model=ActionModel,
    responses=body_errors(404, 409),
    openapi_extra=role("admin"),
)
async def execute_approved(request: Request, approval_id: ApprovalId, _: Principal = ADMIN) -> Any:
    """Run the project's tool for an action whose approval is complete, exactly once
    (the approval is spent), and answer the action with its outcome. An action that is
    not yet approved is 409 W-APR-009; one already run answers as it stands."""
    service = service_of(request)
    found = await _approval(service, approval_id)

    def run() -> ActionView | None:
        service.executor.resume(found.action_id)
        return service.store.action(found.action_id)

    view = await service.run(run)
    if view is None:  # pragma: no cover - an approval always has its action
        raise _not_found("action", found.action_id)
    return action_json(view)
