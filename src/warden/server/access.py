"""Who may call an admin endpoint, and how the endpoints describe their callers and errors.

Every admin handler takes one of the role checks below as a dependency: `VIEWER`,
`APPROVER` or `ADMIN` (or `caller` when it decides for itself, as reading an action
does). The bearer scheme is declared here once, so the OpenAPI document shows it on every
endpoint; the check itself reads the header, asks the key ring (cached for at most a
second) and refuses with W-AUTH-001..005.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPBearer

from warden.errors import ApiError, AuthError
from warden.identity import Principal, role_ok
from warden.server.auth import bearer_token
from warden.server.schemas import ErrorResponse
from warden.server.service import Service

__all__ = [
    "ADMIN",
    "APPROVER",
    "KEY",
    "VIEWER",
    "ActionId",
    "ApprovalId",
    "RunId",
    "caller",
    "errors",
    "front_only",
    "needs",
    "role",
    "service_of",
]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="key",
    description=(
        "An agent key or operator token from `warden keys create`, sent as "
        "`Authorization: Bearer wdn_...`."
    ),
)

KEY = Security(bearer)
"""Declares the bearer scheme in the OpenAPI document; `caller` reads the header."""

ActionId = Annotated[str, Path(description="The action's id (`act_...`).")]
RunId = Annotated[str, Path(description="The run's id.")]
ApprovalId = Annotated[str, Path(description="The approval request's id (`apr_...`).")]

ERRORS: dict[int, str] = {
    400: "The body is not a readable JSON object (W-API-001) or nests too deeply (W-API-003).",
    401: "No credentials, or an unknown, expired or revoked key (W-AUTH-001..004).",
    403: "The key's role or scope does not cover this request (W-AUTH-005).",
    404: "No such run, action, approval or endpoint (W-API-006).",
    409: "The request conflicts with what is stored (W-IDM, W-APR, W-EXE codes).",
    413: "The body is larger than the server's limit (W-API-002).",
    422: "A field is missing, of the wrong type or unknown (W-API-004, naming the field).",
    503: "Overloaded (W-API-005) or the store cannot be written (W-STO-*): fails closed; "
    "retry after `Retry-After` seconds.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an endpoint documents: 401, 403 and 503 always, and `statuses`."""
    shown = sorted({401, 403, 503, *statuses})
    return {s: {"model": ErrorResponse, "description": ERRORS[s]} for s in shown}


def body_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`errors` of an endpoint that reads a JSON body: also 400 (unreadable) and 413."""
    return errors(400, 413, *statuses)


def role(needed: str) -> dict[str, Any]:
    """The OpenAPI extension saying who may call an endpoint (the reference shows it)."""
    return {"x-warden-role": needed}


def service_of(request: Request) -> Service:
    """The service the application serves."""
    service: Service = request.app.state.service
    return service


async def caller(request: Request, _: Any = KEY) -> Principal:
    """The request's principal (W-AUTH-001..004 when its key does not prove one)."""
    service = service_of(request)
    token = bearer_token(request.headers.get("authorization"))
    found = service.keys.cached(token)
    return found if found is not None else await service.run(service.keys.authenticate, token)


def needs(needed: str) -> Any:
    """A dependency refusing (W-AUTH-005) a principal without the role `needed`."""

    async def check(principal: Principal = Depends(caller)) -> Principal:  # noqa: B008
        if not role_ok(principal, needed):
            held = ", ".join(sorted(principal.roles)) or f"an {principal.kind.value} key"
            raise AuthError(
                "W-AUTH-005",
                f"this endpoint needs the {needed} role; key {principal.key_id} holds {held}",
            )
        return principal

    return Depends(check)


VIEWER = needs("viewer")
APPROVER = needs("approver")
ADMIN = needs("admin")


def front_only() -> ApiError:  # pragma: no cover - the front answers these paths
    return ApiError("W-API-007", "the agent API is answered by the server's front")
