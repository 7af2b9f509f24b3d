"""The agent API and the health checks, as FastAPI routes: declared so the OpenAPI
document describes them. `warden.server.front` answers these paths itself (the lean
decision path) before a request could reach FastAPI; only `/readyz` is answered here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from warden.server.access import ERRORS, KEY, ActionId, errors, front_only, role, service_of
from warden.server.schemas import (
    DecideRequest,
    DecisionResponse,
    ErrorResponse,
    ExecuteResponse,
    HealthResponse,
    OutcomeRequest,
    OutcomeResponse,
    ReadyResponse,
)

__all__ = ["router"]

router = APIRouter(redirect_slashes=False)

# --- the agent API (answered by the front; declared for the OpenAPI document) -------------


@router.post(
    "/v1/decide",
    tags=["agent"],
    summary="Decide a proposed tool call, for the caller to run",
    response_model=DecisionResponse,
    responses=errors(400, 409, 413, 422),
    openapi_extra=role("agent"),
)
async def decide(body: DecideRequest, _: Any = KEY) -> Any:
    """Check the call (kill switch, identity and scope, contract, loops, budgets,
    breaker, policy, mode) and record the decision durably before answering. When the
    answer is `executing` and not `replayed`, run the tool and report its outcome to
    `POST /v1/actions/{action_id}/outcome`; the budget stays reserved until then. The
    same call again (same idempotency key) replays the stored action; the same key with
    other arguments is 409 W-IDM-001. A deny is a 200 answer with outcome `deny`."""
    raise front_only()


@router.post(
    "/v1/execute",
    tags=["agent"],
    summary="Decide a proposed tool call and run the project's tool",
    response_model=ExecuteResponse,
    responses=errors(400, 409, 413, 422),
    openapi_extra=role("agent"),
)
async def execute(body: DecideRequest, _: Any = KEY) -> Any:
    """Decide as `/v1/decide` does, then run the tool the project registers, exactly
    once under the idempotency key, and record its outcome. A call whose key is in
    progress is 409 W-IDM-002."""
    raise front_only()


@router.post(
    "/v1/actions/{action_id}/outcome",
    tags=["agent"],
    summary="Report the outcome of a tool the caller ran",
    response_model=OutcomeResponse,
    responses=errors(400, 404, 409, 413, 422),
    openapi_extra=role("agent"),
)
async def outcome(action_id: ActionId, body: OutcomeRequest, _: Any = KEY) -> Any:
    """Record the outcome of an action `/v1/decide` left executing, settle its budget
    and feed the agent's breaker. Only the action's own agent may report it. The same
    report again answers the stored outcome (`replayed`); another outcome for an action
    that has one is 409 W-EXE-006; an action that is not executing is 409 W-EXE-005."""
    raise front_only()


# --- health ------------------------------------------------------------------------------


@router.get(
    "/healthz",
    tags=["health"],
    summary="Liveness",
    response_model=HealthResponse,
    openapi_extra=role("none"),
)
async def healthz() -> Any:  # pragma: no cover - the front answers it
    """200 while the process serves requests. Needs no key and touches no store."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["health"],
    summary="Readiness",
    response_model=ReadyResponse,
    responses={503: {"model": ErrorResponse, "description": ERRORS[503]}},
    openapi_extra=role("none"),
)
async def readyz(request: Request) -> Any:
    """200 when the store answers and policies are loaded; 503 with the store's code
    otherwise. Needs no key."""
    service = service_of(request)
    return await service.run(service.ready)
