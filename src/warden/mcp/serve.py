"""Serving the proxy: over stdio (one client, one agent) or Streamable HTTP (agent keys).

Over HTTP every request must carry an agent key, ``Authorization: Bearer wdn_ag_...``,
checked against the store's keys the way `warden serve` checks them (the same
`warden.server.auth.KeyRing`, so `warden keys` issues, scopes, rotates and revokes them).
A request without one, with a bad or revoked one, or with an operator token is answered
401 before the MCP layer reads it; the key's agent and tool scope go with the request.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.stdio import stdio_server

from warden.errors import AuthError
from warden.identity import KeyKind
from warden.mcp.proxy import PRINCIPAL_KEY, Proxy

if TYPE_CHECKING:
    from warden.server.auth import KeyRing

__all__ = ["BearerAgents", "serve_http", "serve_stdio"]

log = logging.getLogger("warden.mcp")

Scope = dict[str, Any]
ASGIApp = Any


async def serve_stdio(proxy: Proxy) -> None:
    """Serve one client on this process's stdin and stdout until it closes them."""
    async with proxy.upstreams(), stdio_server() as (read, write):
        await proxy.server.run(read, write, proxy.initialization_options())


class BearerAgents:
    """ASGI middleware: only requests with a valid agent key reach the MCP app."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        from warden.server.auth import bearer_token

        header = dict(scope.get("headers") or []).get(b"authorization")
        try:
            token = bearer_token(header)
            principal = self.keys.cached(token)
            if principal is None:
                principal = await anyio.to_thread.run_sync(self.keys.authenticate, token)
            if principal.kind is not KeyKind.AGENT:
                raise AuthError(
                    "W-AUTH-005", "operator tokens cannot call tools; use the agent's key"
                )
        except AuthError as exc:
            await _refuse(send, exc)
            return
        state = scope.setdefault("state", {})
        state[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


async def _refuse(send: Any, exc: AuthError) -> None:
    status = 403 if exc.code == "W-AUTH-005" else 401
    body = json.dumps({"code": exc.code, "message": exc.message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="warden"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_http(
    proxy: Proxy,
    sock: socket.socket,
    keys: KeyRing,
    *,
    host: str,
    path: str = "/mcp",
    log_level: str = "warning",
) -> None:
    """Serve Streamable HTTP on `sock` until interrupted (SIGINT, SIGTERM)."""
    import uvicorn

    app = proxy.server.streamable_http_app(streamable_http_path=path, host=host)
    config = uvicorn.Config(
        BearerAgents(app, keys),
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    async with proxy.upstreams():
        await uvicorn.Server(config).serve(sockets=[sock])
