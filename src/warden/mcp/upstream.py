"""The proxy's side as a client: one connection per upstream MCP server, kept alive.

An `UpstreamServer` starts the server (stdio) or connects to it (Streamable HTTP), does
the MCP handshake, lists its tools and gives each declared tool its contract. It pings
the server every few seconds; when the connection goes (the server crashed, a call found
it closed, a ping failed) its tools lose their contracts (calls are denied, W-MCP-006)
and it reconnects with backoff, while the proxy goes on serving the other upstreams.
``notifications/tools/list_changed`` from the server makes it list again.

`Bridge` is what a tool's `UpstreamCall` calls from the executor's worker thread: it runs
the call on the proxy's event loop (an anyio blocking portal) and waits for the answer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, cast

import anyio
import httpx2
import mcp.types as mt
from anyio.from_thread import BlockingPortal
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from warden import __version__
from warden.errors import McpError
from warden.mcp.config import Upstream
from warden.mcp.contract import UpstreamCall
from warden.tools.spec import Tool, ToolContext

__all__ = ["Bridge", "UpstreamServer", "UpstreamToolError"]

log = logging.getLogger("warden.mcp")

_CLIENT = mt.Implementation(name="warden-mcp-proxy", version=__version__)
_MAX_BACKOFF_S = 30.0


class UpstreamToolError(Exception):
    """The upstream ran the call and answered with an error result: its text, verbatim."""


class UpstreamServer:
    """One upstream MCP server and the declared tools it offers."""

    def __init__(
        self,
        upstream: Upstream,
        tools: Mapping[str, Tool],
        *,
        on_change: Callable[[], Awaitable[None]],
        health_interval_s: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.tools = dict(tools)
        """The declared tools, by the upstream's own tool name."""
        self.on_change = on_change
        self.health_interval_s = health_interval_s
        self.listing: dict[str, mt.Tool] = {}
        """What the upstream lists for each declared tool it offers now."""
        self.undeclared: list[str] = []
        """Tools the upstream offers that the proxy file does not declare (hidden)."""
        self.error: str | None = None
        """Why it is not connected, when it is not."""
        self.connected = anyio.Event()
        self.tried = anyio.Event()
        """Set once the first attempt to connect has succeeded or failed."""
        self._session: ClientSession | None = None
        self._lost = anyio.Event()

    @property
    def namespace(self) -> str:
        return self.upstream.namespace

    # --- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled: connect, serve, and after a loss reconnect."""
        backoff = 0.5
        while True:
            try:
                async with self._connect() as session:
                    backoff = 0.5
                    await self._serve(session)
                log.warning("upstream %s: connection lost; reconnecting", self.namespace)
            except Exception as exc:
                self.error = _describe(exc)
                log.warning(
                    "upstream %s (%s): W-MCP-002 %s; retrying in %.1f s",
                    self.namespace,
                    self.upstream.target,
                    self.error,
                    backoff,
                )
            finally:
                self._session = None
                self.connected = anyio.Event()
                self.tried.set()
                with anyio.CancelScope(shield=True):
                    await self._forget()
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncGenerator[ClientSession]:
        async with contextlib.AsyncExitStack() as stack:
            if self.upstream.command is not None:
                read, write = await stack.enter_async_context(stdio_client(self._stdio()))
            else:
                client = await stack.enter_async_context(self._http_client())
                assert self.upstream.url is not None
                read, write = await stack.enter_async_context(
                    streamable_http_client(self.upstream.url, http_client=client)
                )
            session = await stack.enter_async_context(
                ClientSession(read, write, message_handler=self._on_message, client_info=_CLIENT)
            )
            with anyio.fail_after(self.upstream.connect_timeout_s):
                await session.initialize()
            yield session

    def _stdio(self) -> StdioServerParameters:
        command = self.upstream.command
        assert command is not None
        env = {k: os.environ[k] for k in self.upstream.pass_env if k in os.environ}
        env.update(self.upstream.env)
        return StdioServerParameters(
            command=command[0], args=list(command[1:]), env=env, cwd=self.upstream.cwd
        )

    def _http_client(self) -> httpx2.AsyncClient:
        headers = dict(self.upstream.headers)
        for header, variable in self.upstream.headers_env.items():
            value = os.environ.get(variable)
            if value is None:
                raise McpError(
                    "W-MCP-002",
                    f"upstream {self.namespace}: the environment variable {variable} (header "
                    f"{header}) is not set",
                )
            headers[header] = value
        return httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30, read=300), follow_redirects=True
        )

    async def _serve(self, session: ClientSession) -> None:
        self._lost = anyio.Event()
        self._session = session
        await self.refresh()
        self.error = None
        self.connected.set()
        self.tried.set()
        log.info(
            "upstream %s: connected (%s), %d of its tools declared",
            self.namespace,
            self.upstream.target,
            len(self.listing),
        )
        while not self._lost.is_set():
            with anyio.move_on_after(self.health_interval_s):
                await self._lost.wait()
            if self._lost.is_set():
                return
            try:
                with anyio.fail_after(self.health_interval_s):
                    await session.send_ping()
            except Exception:
                return

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, mt.ToolListChangedNotification):
            log.info("upstream %s: its tool list changed; listing again", self.namespace)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("upstream %s: listing tools failed: %s", self.namespace, exc)
                self._lost.set()
        elif isinstance(message, Exception):
            log.debug("upstream %s: transport: %s", self.namespace, message)

    async def probe(self) -> list[mt.Tool]:
        """Connect once and list every tool the upstream offers (declared or not)."""
        async with self._connect() as session:
            return await _list_all(session)

    # --- tools -----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """List the upstream's tools and give the declared ones their contracts."""
        session = self._session
        if session is None:
            return
        offered = {t.name: t for t in await _list_all(session)}
        listing: dict[str, mt.Tool] = {}
        for remote, tool in self.tools.items():
            entry = offered.get(remote)
            call = tool.fn
            assert isinstance(call, UpstreamCall)
            problem = call.contract.offer(entry.input_schema if entry is not None else None)
            if entry is None:
                continue
            if problem is not None:
                log.warning("upstream %s: tool %s hidden: %s", self.namespace, remote, problem)
                continue
            listing[remote] = entry
            if call.declaration.description is None:
                tool.description = entry.description or ""
        undeclared = sorted(set(offered) - set(self.tools))
        if undeclared and undeclared != self.undeclared:
            log.info(
                "upstream %s: not declared in %s, so hidden: %s",
                self.namespace,
                call_file(self.tools),
                ", ".join(undeclared),
            )
        missing = sorted(set(self.tools) - set(offered))
        if missing:
            log.warning(
                "upstream %s: declared but not offered: %s", self.namespace, ", ".join(missing)
            )
        self.undeclared = undeclared
        self.listing = listing
        await self.on_change()

    async def _forget(self) -> None:
        had = bool(self.listing)
        for tool in self.tools.values():
            call = tool.fn
            assert isinstance(call, UpstreamCall)
            call.contract.offer(None)
        self.listing = {}
        if had:
            await self.on_change()

    async def call(
        self, remote: str, arguments: dict[str, Any], timeout_s: float, key: str
    ) -> mt.CallToolResult:
        """Call one tool; W-MCP-002 when not connected, W-MCP-003 when the connection
        goes during the call."""
        session = self._session
        if session is None or self._lost.is_set():  # gone, or going: nothing was sent
            raise McpError(
                "W-MCP-002",
                f"upstream {self.namespace!r} is not connected"
                + (f" ({self.error})" if self.error else "; reconnecting"),
            )
        try:
            return await session.call_tool(
                remote,
                arguments,
                read_timeout_seconds=timeout_s,
                meta={"warden/idempotency_key": key},
            )
        except MCPError as exc:
            if exc.code == mt.CONNECTION_CLOSED:
                self._lost.set()
                raise McpError(
                    "W-MCP-003",
                    f"upstream {self.namespace!r} closed the connection during the call to "
                    f"{remote}; it may or may not have taken effect",
                ) from None
            raise


def _innermost(error: BaseException) -> BaseException:
    inner: tuple[BaseException, ...] = getattr(error, "exceptions", ())
    if isinstance(error, BaseExceptionGroup) and inner:
        return _innermost(inner[0])
    return cast(BaseException, error)


def _describe(error: BaseException) -> str:
    """The innermost cause of a failed connection, in a line (task groups wrap it)."""
    exc = _innermost(error)
    if isinstance(exc, TimeoutError):
        return "no answer to the MCP handshake in time"
    if isinstance(exc, MCPError) and exc.code == mt.CONNECTION_CLOSED:
        return "the server closed the connection (did it start? see its output above)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _list_all(session: ClientSession) -> list[mt.Tool]:
    found: list[mt.Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=mt.PaginatedRequestParams(cursor=cursor))
        found.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return found


def call_file(tools: Mapping[str, Tool]) -> str:
    """The proxy file the tools came from, by name (for messages)."""
    for tool in tools.values():
        if isinstance(tool.fn, UpstreamCall):
            return tool.fn.config.name
    return "the proxy file"


class Bridge:
    """Runs upstream calls on the proxy's event loop for the executor's worker threads."""

    def __init__(self, portal: BlockingPortal, servers: Mapping[str, UpstreamServer]) -> None:
        self.portal = portal
        self.servers = dict(servers)

    def call(self, tool: UpstreamCall, arguments: dict[str, Any], context: ToolContext) -> Any:
        decl = tool.declaration
        server = self.servers[decl.namespace]
        # past the tool's timeout the executor records outcome_unknown; a late answer
        # within this longer wait is still recorded (succeeded or failed)
        wait = max(decl.timeout_s * 4, decl.timeout_s + 60.0)
        result = self.portal.call(
            functools.partial(server.call, decl.remote, arguments, wait, context.idempotency_key)
        )
        if result.is_error:
            raise UpstreamToolError(_text(result) or f"{decl.remote} reported an error")
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _text(result: mt.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mt.TextContent))
