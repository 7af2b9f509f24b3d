"""The admin API's switches: the kill switch, policy reload, the audit log.

Flipping a switch and reloading policies need `admin`; reading the switches and the
audit log needs any operator role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from warden.audit.export import export_line
from warden.audit.verify import verify_rows
from warden.errors import ApiError, AuditError
from warden.identity import Principal
from warden.killswitch import KillRecord, parse_scope
from warden.server.access import ADMIN, VIEWER, body_errors, errors, role, service_of
from warden.server.schemas import (
    KillRequest,
    KillsResponse,
    ReloadResponse,
    UnkillRequest,
    VerifyResponse,
)
from warden.server.service import Service

__all__ = ["router"]

router = APIRouter(redirect_slashes=False)

# --- kill switch ---------------------------------------------------------------------------


def _kills(service: Service, changed: bool = False) -> dict[str, Any]:
    found: list[KillRecord] = sorted(service.store.kills(), key=lambda k: k.scope)
    return {
        "engaged": [{"scope": k.scope, "by": k.by, "reason": k.reason, "at": k.at} for k in found],
        "changed": changed,
    }


def _checked_scope(service: Service, scope: str) -> str:
    """Refuse a scope naming an agent or tool the project does not know: a typo would
    stop nothing."""
    try:
        parse_scope(scope)
    except ValueError as exc:
        raise ApiError("W-API-004", f"scope: {exc}") from None
    kind, _, name = scope.partition(":")
    if kind == "agent" and service.gate.agent(name) is None:
        known = ", ".join(a.name for a in service.gate.agents)
        raise ApiError("W-API-004", f"scope: no agent named {name!r} (known: {known})")
    if kind == "tool" and name not in service.gate.tools:
        known = ", ".join(service.gate.tools.names())
        raise ApiError("W-API-004", f"scope: no tool named {name!r} (known: {known})")
    return scope


@router.get(
    "/v1/kills",
    tags=["kill switch"],
    summary="The engaged kill switches",
    response_model=KillsResponse,
    responses=errors(),
    openapi_extra=role("viewer"),
)
async def list_kills(request: Request, _: Principal = VIEWER) -> Any:
    service = service_of(request)
    return await service.run(_kills, service)


@router.post(
    "/v1/kill",
    tags=["kill switch"],
    summary="Engage a kill switch",
    response_model=KillsResponse,
    responses=body_errors(422),
    openapi_extra=role("admin"),
)
async def kill(request: Request, body: KillRequest, principal: Principal = ADMIN) -> Any:
    """Deny every call of all agents, one agent or one tool (W-KIL-001) from now on,
    on every replica within its kill-switch poll. Recorded with who and why."""
    service = service_of(request)
    scope = _checked_scope(service, body.scope)

    def engage() -> dict[str, Any]:
        service.gate.kill(scope, by=principal.name, reason=body.reason.strip())
        return _kills(service, changed=True)

    return await service.run(engage)


@router.post(
    "/v1/unkill",
    tags=["kill switch"],
    summary="Lift a kill switch",
    response_model=KillsResponse,
    responses=body_errors(422),
    openapi_extra=role("admin"),
)
async def unkill(request: Request, body: UnkillRequest, principal: Principal = ADMIN) -> Any:
    """Lift one engaged scope (`changed` is false when it was not engaged); other
    scopes stay engaged."""
    service = service_of(request)
    scope = body.scope

    def lift() -> dict[str, Any]:
        if scope not in {k.scope for k in service.store.kills()}:
            return _kills(service, changed=False)
        service.gate.unkill(scope, by=principal.name, reason=body.reason.strip())
        return _kills(service, changed=True)

    return await service.run(lift)


# --- policies and the audit log --------------------------------------------------------------


@router.post(
    "/v1/policies/reload",
    tags=["policies"],
    summary="Reload the project's policies from disk",
    response_model=ReloadResponse,
    responses=body_errors(422),
    openapi_extra=role("admin"),
)
async def reload(request: Request, principal: Principal = ADMIN) -> Any:
    """Load warden.yaml, the manifests and the policies again and put the new gate in
    force at once (audited as `config.reload` with the old and new revision). A file
    that does not load is 422 with its code and `file`/`line`; the policies in force
    stay."""
    service = service_of(request)
    return await service.run(service.reload, principal.name)


@router.get(
    "/v1/audit/verify",
    tags=["audit"],
    summary="Verify the audit log",
    response_model=VerifyResponse,
    responses=errors(),
    openapi_extra=role("viewer"),
)
async def verify(request: Request, _: Principal = VIEWER) -> Any:
    """Check every record's numbering and every stream's hash chain. A log that does
    not verify is a 200 answer with `ok: false` and the first bad record."""
    service = service_of(request)

    def check() -> dict[str, Any]:
        rows = service.store.audit_rows()
        try:
            report = verify_rows(rows, contiguous=not service.store.seq_gaps)
        except AuditError as exc:
            return {
                "ok": False,
                "records": 0,
                "last_seq": 0,
                "streams": {},
                "problem": {
                    "code": exc.code,
                    "message": exc.message,
                    "seq": exc.seq,
                    "stream": exc.stream,
                },
            }
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        return {
            "ok": True,
            "records": report.records,
            "last_seq": report.last_seq,
            "streams": {
                name: {"stream_seq": h.stream_seq, "seq": h.seq, "hash": h.hash}
                for name, h in sorted(report.streams.items())
            },
            "problem": None,
        }

    return await service.run(check)


@router.get(
    "/v1/audit/export",
    tags=["audit"],
    summary="Export the audit log as JSON lines",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One record per line, as `warden audit export` writes them; "
            "`warden audit verify --file` verifies the result.",
        },
        **errors(),
    },
    openapi_extra=role("viewer"),
)
async def export(
    request: Request,
    after: int = Query(default=0, ge=0, description="Only records after this sequence number."),
    _: Principal = VIEWER,
) -> StreamingResponse:
    service = service_of(request)

    def lines() -> Iterator[bytes]:
        batch: list[bytes] = []
        for row in service.store.audit_rows(after=after):
            batch.append(export_line(*row))
            if len(batch) >= 512:
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
