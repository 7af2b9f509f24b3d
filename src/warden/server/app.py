"""Building the ASGI application: the front, the FastAPI admin API, their error handlers.

create_app(service)    the application `warden serve` runs
openapi_document()     the OpenAPI document, without a store (docs/reference/openapi.json)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from warden import __version__
from warden.errors import ApiError, WardenError
from warden.server import admin, declared, operations
from warden.server.auth import key_id_of
from warden.server.front import Front
from warden.server.problems import (
    error_body,
    error_headers,
    internal_error,
    is_audited,
    status_of,
)
from warden.server.service import Service

__all__ = ["create_app", "openapi_document"]

log = logging.getLogger("warden.server")

TITLE = "Warden HTTP API"
DESCRIPTION = (
    "The decision API agents call before acting (decide, execute, report an outcome) and "
    "the admin API operators use (runs, approvals, kill switch, policies, audit log). "
    "Every request but the health checks carries a key from `warden keys create` as "
    "`Authorization: Bearer wdn_...`. Every error is "
    '`{"error": {"code", "message", "hint"}}` with a stable code documented under '
    "docs/errors/."
)


def build_api(service: Service | None, *, owns_service: bool = False) -> FastAPI:
    """The FastAPI application of the admin API (and the OpenAPI document)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncGenerator[None]:
        yield
        if owns_service and service is not None:  # SIGTERM / SIGINT: close the store
            service.close()

    api = FastAPI(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # /v1/runs/ is no endpoint: 404 in JSON, not a redirect
        lifespan=lifespan,
    )
    api.state.service = service
    for part in (declared, admin, operations):
        api.include_router(part.router)

    async def refused(request: Request, exc: WardenError, *, audit: bool) -> Response:
        status = status_of(exc.code)
        if service is not None and (audit or is_audited(exc.code)):
            client = request.client
            size = request.headers.get("content-length")
            audit_rejection = service.audit_rejection
            await service.run(
                lambda: audit_rejection(
                    method=request.method,
                    path=request.url.path,
                    code=exc.code,
                    status=status,
                    key_id=key_id_of(request.headers.get("authorization")),
                    body_bytes=int(size) if size and size.isdigit() else None,
                    client=client.host if client else None,
                )
            )
        headers = {k.decode(): v.decode() for k, v in error_headers(exc.code)}
        return Response(
            error_body(exc), status_code=status, headers=headers, media_type="application/json"
        )

    async def on_warden_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WardenError)
        return await refused(request, exc, audit=False)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return await refused(request, _validation_error(exc), audit=False)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            what = (
                f"no endpoint {request.method} {request.url.path}"
                if exc.status_code == 404
                else f"{request.url.path} does not take {request.method}"
            )
            response = await refused(request, ApiError("W-API-006", what), audit=True)
            response.status_code = exc.status_code
            return response
        return await refused(request, ApiError("W-API-001", str(exc.detail)), audit=True)

    async def on_fault(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return await refused(request, internal_error(), audit=False)

    _own_error_shape(api)
    api.add_exception_handler(WardenError, on_warden_error)
    api.add_exception_handler(RequestValidationError, on_validation_error)
    api.add_exception_handler(HTTPException, on_http_error)
    api.add_exception_handler(Exception, on_fault)
    return api


_ERROR_REF = "#/components/schemas/ErrorResponse"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _own_error_shape(api: FastAPI) -> None:
    """Make the OpenAPI document say what the server answers on 422: FastAPI declares its
    own ``{"detail": [...]}`` shape, which the handlers here never send."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        doc = build()
        for methods in doc.get("paths", {}).values():
            for operation in methods.values():
                found = operation.get("responses", {}).get("422")
                if found is not None:
                    found["description"] = (
                        "A field is missing, of the wrong type or unknown (W-API-004, naming "
                        "the field)."
                    )
                    found["content"] = {"application/json": {"schema": {"$ref": _ERROR_REF}}}
        schemas = doc.get("components", {}).get("schemas", {})
        for name in _FASTAPI_SCHEMAS:
            schemas.pop(name, None)
        return doc

    api.openapi = openapi


def _validation_error(exc: RequestValidationError) -> ApiError:
    """W-API-004 naming the first failing field: ``reason: Field required``."""
    errors: list[Any] = list(exc.errors())
    if not errors:  # pragma: no cover - FastAPI always says what failed
        return ApiError("W-API-004", "the request does not match the API")
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    where, path = (loc[0], loc[1:]) if loc else ("body", [])
    field = ".".join(path) if path else where
    if where in ("query", "path", "header"):
        field = f"{field} ({where})"
    return ApiError("W-API-004", f"{field}: {first.get('msg', 'invalid')}")


def create_app(service: Service, *, owns_service: bool = False) -> Front:
    """The application to serve: the lean front, with the admin API behind it.

    With `owns_service`, the server's shutdown (SIGTERM, SIGINT) closes the service and
    its store."""
    return Front(service, build_api(service, owns_service=owns_service))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the whole API (built without a store)."""
    return build_api(None).openapi()
