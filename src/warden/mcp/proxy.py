"""`warden mcp proxy`: an MCP server in front of upstream MCP servers, with Warden between.

    client ──tools/list──> proxy: the agent's allowed tools that an upstream offers now,
                                  annotated with Warden's risk tier (upstream hints in _meta)
    client ──tools/call──> proxy ──Gate.execute──> decision recorded ──> upstream tools/call
                                  (exactly once, under an idempotency key) ──> outcome recorded

Who calls: over stdio, the agent named by ``--agent`` (or ``proxy.agent``); over
Streamable HTTP, the agent whose key (``Authorization: Bearer wdn_ag_...``) came with
the request, its tool scope included. No agent, no service: fail closed.

Each MCP session is one Warden run (budgets, loop detection and approvals are per run);
each call is a new action with its own idempotency key (run, step, tool, arguments).

A call that needs approval opens a request and comes back pending, with the approval id
and the command an approver runs. When the client can elicit, the person is told what
waits and for whom, and may choose to wait for the verdict; their answer is never the
approval itself (approvals keep Warden's rules: roles, no self-approval). The same call
again after approval runs the approved action, once.

The decision core never sees the MCP SDK: this package calls `Gate.execute` like any
other edge. Threads: handlers run on the event loop; `Gate.execute` runs in a worker
thread (it blocks on the store and the tool); the tool's `UpstreamCall` comes back to
the loop through `Bridge` to use the client session.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import mcp.types as mt
from anyio.from_thread import BlockingPortal
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from warden import __version__
from warden.approvals import ApprovalRequest
from warden.canonical import canonical_text
from warden.errors import ApprovalError, AuthError, ExecutionError, WardenError
from warden.gate import Gate, ToolCall
from warden.identity import Principal
from warden.mcp.config import ProxyConfig, ProxySettings
from warden.mcp.contract import UpstreamCall, upstream_call
from warden.mcp.results import (
    APPROVAL_KEY,
    approval_message,
    approval_schema,
    error_result,
    execution_result,
    pending_result,
)
from warden.mcp.upstream import Bridge, UpstreamServer
from warden.runs import ActionState, Execution
from warden.tools.spec import RiskTier, Tool

__all__ = ["PRINCIPAL_KEY", "Proxy"]

log = logging.getLogger("warden.mcp")

PRINCIPAL_KEY = "warden.principal"
"""Where the HTTP layer leaves the authenticated `Principal` in the request's ASGI state."""

_MAX_SESSIONS = 10_000
_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class _Caller:
    agent: str
    principal: str | None
    """The authenticated agent (HTTP); None over stdio, where configuration names it."""
    scope: frozenset[str] | None
    """The key's tool scope (None: all the agent's tools)."""
    session: str


@dataclass(kw_only=True, slots=True)
class _Session:
    """One MCP session: one Warden run."""

    run_id: str
    steps: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    pending: dict[str, str] = field(default_factory=dict[str, str])
    """Request hash of a call that waits for approval -> its action."""


class Proxy:
    """The proxy's MCP server, its upstream connections and its sessions."""

    def __init__(
        self,
        *,
        gate: Gate,
        config: ProxyConfig,
        agent: str | None = None,
        on_behalf_of: str | None = None,
        settings: ProxySettings | None = None,
    ) -> None:
        """`agent`: who stdio callers act as; None when callers authenticate (HTTP)."""
        self.gate = gate
        self.config = config
        self.settings = settings or config.settings
        self.agent = agent
        self.on_behalf_of = on_behalf_of
        self.tools: dict[str, Tool] = {}
        """The project's upstream tools, by Warden name."""
        by_upstream: dict[str, dict[str, Tool]] = {ns: {} for ns in config.upstreams}
        for tool in gate.tools:
            call = upstream_call(tool)
            if call is None or call.config != config.file:
                continue
            ns = call.declaration.namespace
            if ns in by_upstream:
                self.tools[tool.name] = tool
                by_upstream[ns][call.declaration.remote] = tool
        self.servers = {
            ns: UpstreamServer(
                config.upstreams[ns],
                tools,
                on_change=self._tools_changed,
                health_interval_s=self.settings.health_interval_s,
            )
            for ns, tools in by_upstream.items()
        }
        self.bus = InMemorySubscriptionBus()
        self.server: Server[Any] = Server(
            "warden-mcp-proxy",
            version=__version__,
            title="Warden MCP proxy",
            instructions=(
                "Every tool call passes Warden: it may be denied, or wait for a person's "
                "approval; the result says which and why."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
        )
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._listeners: OrderedDict[str, ServerSession] = OrderedDict()
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(64)
        self._shown: frozenset[tuple[str, str, str]] = frozenset()

    def initialization_options(self) -> Any:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    # --- upstreams -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def upstreams(self) -> AsyncGenerator[None]:
        """Connect to every upstream (waiting for each first attempt) and keep them
        connected while the block runs; tool calls go through them meanwhile."""
        async with contextlib.AsyncExitStack() as stack:
            portal = await stack.enter_async_context(BlockingPortal())
            tg = await stack.enter_async_context(anyio.create_task_group())
            bridge = Bridge(portal, self.servers)
            calls = [c for t in self.tools.values() if (c := upstream_call(t)) is not None]
            for call in calls:
                call.link = bridge
            for server in self.servers.values():
                tg.start_soon(server.run)
            wait = max((u.connect_timeout_s for u in self.config.upstreams.values()), default=0)
            with anyio.move_on_after(wait + 1.0):
                for server in self.servers.values():
                    await server.tried.wait()
            try:
                yield
            finally:
                _unlink(calls)
                tg.cancel_scope.cancel()

    async def _tools_changed(self) -> None:
        """An upstream's tools changed: tell the clients that listed tools, if what they
        may see changed."""
        shown = frozenset(_shown(t) for s in self.servers.values() for t in _listed(s))
        if shown == self._shown:
            return
        self._shown = shown
        with self._lock:
            listeners = list(self._listeners.values())
        for session in listeners:
            with contextlib.suppress(Exception):
                await session.send_tool_list_changed()
        await self.bus.publish(ToolsListChanged())

    # --- who calls ---------------------------------------------------------------------------

    def _caller(self, ctx: ServerRequestContext[Any]) -> _Caller:
        if self.agent is not None:
            return _Caller(agent=self.agent, principal=None, scope=None, session="stdio")
        principal = _principal(ctx)
        if principal is None:  # the HTTP layer refuses first; never serve without one
            raise MCPError(mt.INVALID_REQUEST, "W-AUTH-001: no agent key came with the request")
        headers = getattr(ctx.request, "headers", None)
        sid = headers.get("mcp-session-id") if headers is not None else None
        return _Caller(
            agent=principal.name,
            principal=principal.name,
            scope=principal.tools,
            session=f"{principal.key_id}:{sid or '-'}",
        )

    def _session(self, caller: _Caller) -> _Session:
        with self._lock:
            found = self._sessions.get(caller.session)
            if found is None:
                found = _Session(run_id=self.gate.new_run_id())
                self._sessions[caller.session] = found
                while len(self._sessions) > _MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(caller.session)
            return found

    def visible(self, caller: _Caller) -> list[Tool]:
        """The tools `caller` may see: its agent's allowed tools that an upstream offers
        now, within the key's scope."""
        manifest = self.gate.agent(caller.agent)
        if manifest is None:
            return []
        shown: list[Tool] = []
        for server in self.servers.values():
            for remote in server.listing:
                tool = server.tools[remote]
                if tool.name not in manifest.allowed_tools:
                    continue
                if caller.scope is not None and tool.name not in caller.scope:
                    continue
                shown.append(tool)
        return shown

    # --- tools/list ----------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        caller = self._caller(ctx)
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            with self._lock:  # it listed tools: tell it when they change
                self._listeners[caller.session] = ctx.session
                self._listeners.move_to_end(caller.session)
                while len(self._listeners) > _MAX_SESSIONS:
                    self._listeners.popitem(last=False)
        return mt.ListToolsResult(tools=[self._describe(t) for t in self.visible(caller)])

    def _describe(self, tool: Tool) -> mt.Tool:
        call = upstream_call(tool)
        assert call is not None
        server = self.servers[call.declaration.namespace]
        listed = server.listing.get(call.declaration.remote)
        schema = call.contract.schema or {"type": "object"}
        meta: dict[str, Any] = {
            "warden/risk": tool.risk.value,
            "warden/sensitive": sorted(tool.sensitive),
            "warden/upstream": call.declaration.namespace,
        }
        if listed is not None and listed.annotations is not None:
            # the upstream's own claims, shown for what they are: hints, never trusted
            meta["warden/upstream_hints"] = listed.annotations.model_dump(
                by_alias=True, mode="json", exclude_none=True
            )
        return mt.Tool(
            name=tool.name,
            title=(listed.title if listed is not None else None),
            description=tool.description,
            input_schema=schema,
            output_schema=listed.output_schema if listed is not None else None,
            annotations=_annotations(tool),
            _meta=meta,
        )

    # --- tools/call ----------------------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult | mt.InputRequiredResult:
        caller = self._caller(ctx)
        name, args = params.name, dict(params.arguments or {})
        if caller.scope is not None and name not in caller.scope:
            return error_result(
                AuthError("W-AUTH-005", f"the agent key is not scoped to tool {name!r}")
            )
        session = self._session(caller)
        try:
            ex = await anyio.to_thread.run_sync(
                self._execute, caller, session, name, args, limiter=self._limiter
            )
        except WardenError as exc:
            return error_result(exc)
        if ex.state is not ActionState.AWAITING_APPROVAL:
            return execution_result(ex)
        return await self._awaiting(ctx, params, session, ex)

    def _execute(
        self, caller: _Caller, session: _Session, name: str, args: dict[str, Any]
    ) -> Execution:
        """Run in a worker thread: resume a pending action of the same call, else decide
        and execute a new one."""
        key = _request_key(name, args)
        with self._lock:
            waiting = session.pending.get(key) if key is not None else None
            step = next(session.steps)
        if waiting is not None:
            try:
                ex = self._resume(waiting)
            except WardenError:  # denied, expired, replaced policy: a new call starts afresh
                with self._lock:
                    session.pending.pop(key or "", None)
                raise
            if ex.state is not ActionState.AWAITING_APPROVAL:
                with self._lock:
                    session.pending.pop(key or "", None)
            return ex
        ex = self.gate.execute(
            ToolCall(
                agent=caller.agent,
                tool=name,
                args=args,
                run_id=session.run_id,
                principal=caller.principal,
                step=step,
                on_behalf_of=self.on_behalf_of,
            ),
            # the decision is on disk before the upstream is called; the outcome rides
            # with the next commit (or is committed a moment later) while the client
            # gets its answer, as the runner does
            wait_outcome=False,
        )
        if ex.state is ActionState.AWAITING_APPROVAL and key is not None:
            with self._lock:
                session.pending[key] = ex.action_id
        return ex

    async def _awaiting(
        self,
        ctx: ServerRequestContext[Any],
        params: mt.CallToolRequestParams,
        session: _Session,
        ex: Execution,
    ) -> mt.CallToolResult | mt.InputRequiredResult:
        """A call that waits for approval: elicit where the client can (the person may
        choose to wait for the verdict), else answer pending."""
        request = await anyio.to_thread.run_sync(self._approval, ex.approval_id)
        wait_s = self.settings.approval_wait_s
        answer = _answer(params)
        if answer is None and _can_elicit(ctx):
            message = approval_message(request, ex, wait_s=wait_s)
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                return mt.InputRequiredResult(
                    input_requests={
                        APPROVAL_KEY: mt.ElicitRequest(
                            params=mt.ElicitRequestFormParams(
                                message=message, requested_schema=approval_schema()
                            )
                        )
                    },
                    request_state=ex.approval_id,
                )
            if ctx.session.can_send_request:
                try:
                    answer = await ctx.session.elicit_form(
                        message, approval_schema(), related_request_id=ctx.request_id
                    )
                except Exception as exc:  # the client could not ask: answer pending
                    log.info("elicitation failed: %s", exc)
        if answer is not None and _wants_wait(answer):
            done = await self._wait(session, ex, wait_s)
            if done is not None:
                return execution_result(done)
        return pending_result(ex, request)

    def _resume(self, action_id: str) -> Execution:
        """Run the action if its approval is complete; while it is pending, its state."""
        try:
            return self.gate.resume(action_id)
        except ApprovalError as exc:
            if exc.code != "W-APR-009":  # not "still pending"
                raise
        view = self.gate.executor.store.action(action_id)
        if view is None:  # pragma: no cover - the action was just read by resume
            raise ExecutionError("W-EXE-005", f"no action {action_id!r}")
        return Execution(
            action_id=view.id,
            state=view.state,
            run_id=view.run_id,
            agent=view.agent,
            tool=view.tool,
            idempotency_key=view.idempotency_key,
            approval_id=view.approval_id,
            replayed=True,
        )

    def _approval(self, approval_id: str | None) -> ApprovalRequest | None:
        if approval_id is None:
            return None
        return self.gate.executor.store.approval(approval_id)

    async def _wait(self, session: _Session, ex: Execution, wait_s: float) -> Execution | None:
        """Poll until the approval is decided (then the action runs, once), or time out."""
        with anyio.move_on_after(wait_s):
            while True:
                await anyio.sleep(_POLL_S)
                done = await anyio.to_thread.run_sync(
                    self._resume, ex.action_id, limiter=self._limiter
                )
                if done.state is not ActionState.AWAITING_APPROVAL:
                    with self._lock:
                        for k, v in list(session.pending.items()):
                            if v == ex.action_id:
                                del session.pending[k]
                    return done
        return None


def _listed(server: UpstreamServer) -> list[Tool]:
    return [server.tools[r] for r in server.listing]


def _shown(tool: Tool) -> tuple[str, str, str]:
    """What a client sees of a tool, to tell when it changed."""
    call = upstream_call(tool)
    schema = call.contract.schema if call is not None else None
    return tool.name, canonical_text(schema), tool.description


def _unlink(calls: Iterable[UpstreamCall]) -> None:
    for call in calls:
        call.link = None


def _principal(ctx: ServerRequestContext[Any]) -> Principal | None:
    scope: Any = getattr(ctx.request, "scope", None)
    if not isinstance(scope, Mapping):
        return None
    state: Any = cast(Mapping[str, Any], scope).get("state")
    if not isinstance(state, Mapping):
        return None
    found: Any = cast(Mapping[str, Any], state).get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def _request_key(name: str, args: Mapping[str, Any]) -> str | None:
    """What "the same call" means for resuming a pending one: tool and canonical args."""
    try:
        return canonical_text([name, args])
    except (TypeError, ValueError):
        return None


def _answer(params: mt.CallToolRequestParams) -> mt.ElicitResult | None:
    responses = params.input_responses or {}
    found = responses.get(APPROVAL_KEY)
    return found if isinstance(found, mt.ElicitResult) else None


def _wants_wait(answer: mt.ElicitResult) -> bool:
    content = answer.content or {}
    return answer.action == "accept" and content.get("wait") is not False


def _can_elicit(ctx: ServerRequestContext[Any]) -> bool:
    caps = ctx.session.client_capabilities
    if caps is None or caps.elicitation is None:
        return False
    form, url = caps.elicitation.form, caps.elicitation.url
    return form is not None or url is None  # `elicitation: {}` means form


def _annotations(tool: Tool) -> mt.ToolAnnotations:
    """Warden's own reading of the tool, from the operator's risk tier."""
    return mt.ToolAnnotations(
        read_only_hint=tool.risk is RiskTier.READ,
        destructive_hint=tool.risk in (RiskTier.HIGH_RISK, RiskTier.PROD_CONTROL),
        idempotent_hint=tool.risk is RiskTier.READ,
        open_world_hint=not tool.trusted_output,
    )
