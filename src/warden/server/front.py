"""The raw ASGI front: every request passes here first, and the agent API ends here.

    request ─> /healthz? ─ yes ─> 200 at once (no limit, no store)
                  │
                  ▼
              in flight < max? ─ no ─> 503 W-API-005 + Retry-After, at once
                  │
                  ▼
              POST /v1/decide | /v1/execute | /v1/actions/{id}/outcome
                  │ yes                                     │ no
                  ▼                                         ▼
              key (cached) ─> body (size, JSON, depth) ─>   body checked the same way,
              fields ─> scope ─> decide: on the loop,       then handed to FastAPI (the
              awaiting the commit; execute, report and      admin API, OpenAPI document)
              the rest: a worker thread

The decision path runs no framework code: it reads the headers it needs, checks the body
with `warden.server.bodies` and builds the `ToolCall` by hand. A decide whose key is
cached then runs on the event loop up to the commit of its record, which it awaits (the
writer thread wakes the loop once per committed batch): no hop to a worker thread and
back, and the loop waits for no fsync. (The store's reads on the way, an idempotency key
looked up, are from SQLite's cache and the WAL, which no writer blocks.) An execute, a key
read on a cache miss, a project with fact providers, and a replay's rarer steps go to a
worker thread. Every refusal is answered with the
error JSON of `warden.server.problems`, and the ones that matter for security (bad
credentials or rights, unreadable bodies) are audited as ``api.rejected``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from warden.errors import ApiError, WardenError
from warden.identity import Principal
from warden.server.agent import read_call, read_report
from warden.server.auth import bearer_token, key_id_of
from warden.server.bodies import parse_object, read_body
from warden.server.problems import (
    encode,
    error_body,
    error_headers,
    internal_error,
    is_audited,
    status_of,
)
from warden.server.service import Service

__all__ = ["Front"]

log = logging.getLogger("warden.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_HEALTHY = encode({"status": "ok"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OUTCOME_PREFIX = "/v1/actions/"
_OUTCOME_SUFFIX = "/outcome"


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a whole JSON response."""
    out = [_JSON, (b"content-length", str(len(body)).encode("ascii"))]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Front:
    """The ASGI application `warden serve` runs: the agent API, then FastAPI."""

    def __init__(self, service: Service, api: ASGIApp) -> None:
        self.service = service
        self.api = api
        self.inflight = 0
        """Requests being handled now (the event loop's own count; no lock needed)."""
        self.shed = 0
        """Requests answered 503 W-API-005 since start (not audited: writing a record per
        shed request would feed the overload)."""
        settings = service.settings
        self._max_inflight = settings.max_inflight
        self._max_body = settings.max_body
        self._max_depth = settings.max_depth
        self._body_timeout = settings.body_timeout_s

    async def _body(self, receive: Receive, size: int | None) -> bytes:
        """The request body, within the size limit and the time limit."""
        try:
            async with asyncio.timeout(self._body_timeout):
                return await read_body(receive, limit=self._max_body, declared=size)
        except TimeoutError:
            raise ApiError(
                "W-API-001", f"the body did not arrive within {self._body_timeout:g} s"
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.api(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/healthz":
            await respond(send, 200, _HEALTHY)
            return
        if self.inflight >= self._max_inflight:
            self.shed += 1
            exc = WardenError(
                "W-API-005",
                f"the server is handling {self.inflight} requests, its limit "
                f"(--max-inflight {self._max_inflight})",
            )
            await respond(send, 503, error_body(exc), error_headers(exc.code))
            return
        self.inflight += 1
        try:
            if scope["method"] == "POST":
                if path == "/v1/decide":
                    await self._propose(scope, receive, send, run=False)
                    return
                if path == "/v1/execute":
                    await self._propose(scope, receive, send, run=True)
                    return
                if path.startswith(_OUTCOME_PREFIX) and path.endswith(_OUTCOME_SUFFIX):
                    action_id = path[len(_OUTCOME_PREFIX) : -len(_OUTCOME_SUFFIX)]
                    if action_id and "/" not in action_id:
                        await self._report(scope, receive, send, action_id)
                        return
            await self._forward(scope, receive, send)
        finally:
            self.inflight -= 1

    # --- the agent API ----------------------------------------------------------------------

    async def _propose(self, scope: Scope, receive: Receive, send: Send, *, run: bool) -> None:
        auth = _header(scope, b"authorization")
        size = _length(_header(scope, b"content-length"))
        service = self.service
        try:
            token = bearer_token(auth)
            principal = service.keys.cached(token)
            raw = await self._body(receive, size)
            size = len(raw)
            body = parse_object(raw, max_depth=self._max_depth)
            call = read_call(body, principal=_agent_name(principal, body))
            if not run and principal is not None and service.decides_on_loop():
                answer = await service.decide(principal, call)
            else:
                answer = await asyncio.get_running_loop().run_in_executor(
                    service.pool, _propose_job, service, token, principal, call, run
                )
        except WardenError as exc:
            await self.refuse(scope, send, exc, size)
        except Exception:
            log.exception("POST %s failed", scope["path"])
            await self.refuse(scope, send, internal_error(), size)
        else:
            await respond(send, 200, answer)

    async def _report(self, scope: Scope, receive: Receive, send: Send, action_id: str) -> None:
        auth = _header(scope, b"authorization")
        size = _length(_header(scope, b"content-length"))
        service = self.service
        try:
            token = bearer_token(auth)
            principal = service.keys.cached(token)
            raw = await self._body(receive, size)
            size = len(raw)
            report = read_report(parse_object(raw, max_depth=self._max_depth))
            answer = await asyncio.get_running_loop().run_in_executor(
                service.pool, service.report, token, principal, action_id, report
            )
        except WardenError as exc:
            if exc.code == "W-EXE-005" and exc.message.startswith("no action"):
                exc = WardenError("W-API-006", f"no action {action_id!r}")
            await self.refuse(scope, send, exc, size)
        except Exception:
            log.exception("POST %s failed", scope["path"])
            await self.refuse(scope, send, internal_error(), size)
        else:
            await respond(send, 200, answer)

    # --- everything else: FastAPI, behind the same body checks -------------------------------

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _BODY_METHODS:
            await self._call_api(scope, receive, send)
            return
        size = _length(_header(scope, b"content-length"))
        try:
            raw = await self._body(receive, size)
            size = len(raw)
            if raw.strip():
                parse_object(raw, max_depth=self._max_depth)
        except WardenError as exc:
            await self.refuse(scope, send, exc, size)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self._call_api(scope, replay, send)

    async def _call_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to FastAPI; a fault that escapes it (its handler has already
        answered W-API-007 and logged it) goes no further."""
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.api(scope, receive, sending)
        except Exception:
            if not started:
                log.exception("%s %s failed", scope["method"], scope["path"])
                await self.refuse(scope, send, internal_error(), None)

    # --- refusals -----------------------------------------------------------------------------

    async def refuse(
        self, scope: Scope, send: Send, exc: WardenError, size: int | None, *, audit: bool = False
    ) -> None:
        """Answer `exc`, after auditing it when it is a refusal that matters."""
        status = status_of(exc.code)
        if audit or is_audited(exc.code):
            await self.audit(scope, exc.code, status, size)
        await respond(send, status, error_body(exc), error_headers(exc.code))

    async def audit(self, scope: Scope, code: str, status: int, size: int | None) -> None:
        """Record a refused request (``api.rejected``), in a worker thread."""
        client = scope.get("client")
        try:
            await self.service.run(
                lambda: self.service.audit_rejection(
                    method=scope["method"],
                    path=scope["path"],
                    code=code,
                    status=status,
                    key_id=key_id_of(_header(scope, b"authorization")),
                    body_bytes=size,
                    client=client[0] if client else None,
                )
            )
        except RuntimeError:  # the pool is shut down: the server is stopping
            return


def _agent_name(principal: Principal | None, body: dict[str, Any]) -> str:
    """Who the gate is told the caller is: the key's agent (checked against the body's
    agent in the worker), or, before the key is read, the agent the body names."""
    if principal is not None:
        return principal.name
    agent = body.get("agent")
    return agent if isinstance(agent, str) else ""


def _propose_job(
    service: Service, token: str, principal: Principal | None, call: Any, run: bool
) -> bytes:
    return service.propose(token, principal, call, run=run)
