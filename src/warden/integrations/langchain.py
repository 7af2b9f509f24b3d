"""LangChain v1 / LangGraph: a middleware that sends every tool call through Warden.

::

    from langchain.agents import create_agent
    from warden.integrations.langchain import WardenMiddleware

    agent = create_agent(model, middleware=[WardenMiddleware(gate, agent="refund_agent")],
                         checkpointer=InMemorySaver())

The middleware brings the agent's Warden tools (its manifest's ``allowed_tools``) as
LangChain tools, and wraps every tool call the agent makes (`wrap_tool_call`):

- `Gate.execute` decides, records and runs it once, under an idempotency key derived
  from the Warden run id (by default the LangGraph ``thread_id``) and the tool-call id;
- a deny, a failure or a rejection comes back as a ``ToolMessage`` with
  ``status="error"`` and the code and reason, so the model hears why; a tool the agent
  has from elsewhere is denied as unregistered (fail closed);
- a call that needs approval raises a LangGraph `interrupt` carrying the approval
  request (``type: warden.approval``, ``approval_id`` ...). People approve or deny it in
  Warden; the graph is then resumed with ``Command(resume=...)`` (`resume` builds one),
  the node runs again, finds the approved action under the same key and runs it once. If
  the request is still pending the graph pauses again. A resume value of ``False`` or
  ``{"type": "reject"}`` rejects the call without running it; no resume value approves
  anything Warden has not;
- a stop (budget, loop, kill switch, breaker) answers the call, records ``warden_stop``
  in the agent's state and ends the graph before the model is asked again;
- every model answer's ``usage_metadata`` (tokens, and its price when the price list
  knows the model) is charged to the Warden run, and the graph ends before a model call
  once the manifest's budget is spent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NotRequired, cast

from warden.gate import Gate
from warden.integrations.governor import (
    Governor,
    Handling,
    IntegrationError,
    Next,
    missing_extra,
    resolve_run_id,
)
from warden.provenance import Content
from warden.tools.spec import Tool

try:
    from langchain.agents.middleware import AgentMiddleware, AgentState, hook_config
    from langchain.agents.middleware.types import ToolCallRequest
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import BaseTool, StructuredTool
    from langgraph.config import get_config
    from langgraph.runtime import Runtime
    from langgraph.types import Command, Interrupt, interrupt
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing_extra("langchain", "LangChain", exc) from exc

__all__ = ["WardenMiddleware", "WardenState", "resume", "warden_interrupts"]

RunIdSource = str | Callable[[RunnableConfig], str | None] | None


class WardenState(AgentState[Any]):
    """The agent's state, plus why Warden stopped the run (when it did)."""

    warden_stop: NotRequired[dict[str, Any]]
    """``{"code", "reason", "run_id", "action_id", "tool"}`` of the stop (the action and
    tool are None when a spent budget stopped the run before a model call)."""


class WardenMiddleware(AgentMiddleware[WardenState, Any, Any]):
    """Governs an agent's tool calls with a Warden gate (see the module docstring).

    `run_id` is the Warden run: a string, a function of the LangGraph config, or (by
    default) the config's ``thread_id``; it must stay the same when the graph resumes."""

    state_schema = WardenState

    def __init__(
        self,
        gate: Gate,
        *,
        agent: str,
        run_id: RunIdSource = None,
        context: Mapping[str, Any] | None = None,
        on_behalf_of: str | None = None,
        principal: str | None = None,
        content: Sequence[Content] = (),
    ) -> None:
        super().__init__()
        self.governor = Governor(
            gate,
            agent=agent,
            context=context,
            on_behalf_of=on_behalf_of,
            principal=principal,
            content=content,
        )
        self.run_id = run_id
        self.tools: Sequence[BaseTool] = [_langchain_tool(t) for t in self.governor.tools()]

    # --- tool calls ---------------------------------------------------------------------

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        """Execute the call through Warden; the framework's own handler is never called."""
        run_id, call_id, tool, args = self._call(request)
        handled = self.governor.handle(run_id, call_id, tool, args)
        while handled.next is Next.WAIT:
            answer = interrupt(dict(handled.approval or {}))
            if _rejects(answer):
                return _rejected(request, answer)
            handled = self.governor.handle(run_id, call_id, tool, args)
        return _answer(request, handled)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """`wrap_tool_call` on an event loop: the gate and the tool run in a worker thread."""
        run_id, call_id, tool, args = self._call(request)
        handled = await self.governor.handle_async(run_id, call_id, tool, args)
        while handled.next is Next.WAIT:
            answer = interrupt(dict(handled.approval or {}))
            if _rejects(answer):
                return _rejected(request, answer)
            handled = await self.governor.handle_async(run_id, call_id, tool, args)
        return _answer(request, handled)

    # --- model calls: stops and budgets ---------------------------------------------------

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: WardenState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The model is not asked again once Warden stopped the run, or the run has spent
        a budget of the agent's manifest: the graph ends."""
        if state.get("warden_stop"):
            return {"jump_to": "end"}
        run_id = self._run_id(get_config())
        breach = self.governor.breach(run_id)
        if breach is None:
            return None
        self.governor.stop_for_budget(run_id, breach)
        stop = {"code": breach.code, "reason": breach.reason, "run_id": run_id}
        return {"jump_to": "end", "warden_stop": {**stop, "action_id": None, "tool": None}}

    @hook_config(can_jump_to=["end"])
    async def abefore_model(
        self, state: WardenState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return self.before_model(state, runtime)

    def after_model(self, state: WardenState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Charge the model's answer (its ``usage_metadata``) to the Warden run's budgets."""
        messages = state["messages"]
        last = messages[-1] if messages else None
        usage = last.usage_metadata if isinstance(last, AIMessage) else None
        if last is None or usage is None:
            return None
        cached = cast(Mapping[str, Any], usage.get("input_token_details") or {})
        meta = cast(Mapping[str, Any], last.response_metadata or {})
        self.governor.charge(
            self._run_id(get_config()),
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
            cached_input_tokens=int(cached.get("cache_read", 0) or 0),
            model=str(meta.get("model_name") or ""),
            provider=str(meta.get("model_provider") or ""),
        )
        return None

    async def aafter_model(
        self, state: WardenState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return self.after_model(state, runtime)

    # --- pieces -------------------------------------------------------------------------------

    def _run_id(self, config: RunnableConfig) -> str:
        configurable = cast(Mapping[str, Any], config.get("configurable") or {})
        thread = configurable.get("thread_id")
        return resolve_run_id(self.run_id, config, str(thread) if thread else None)

    def _call(self, request: ToolCallRequest) -> tuple[str, str, str, dict[str, Any]]:
        runtime = cast(Any, request).runtime  # ToolRuntime's state type is left open
        run_id = self._run_id(cast(RunnableConfig, runtime.config))
        call = request.tool_call
        call_id = call.get("id") or ""
        if not call_id:
            raise IntegrationError(
                "W-INT-002",
                f"the model's call to {call['name']} has no tool-call id, so Warden cannot "
                "key it; use a chat model that returns tool-call ids",
            )
        return run_id, call_id, call["name"], dict(call["args"])


def warden_interrupts(result: Mapping[str, Any]) -> list[Interrupt]:
    """The interrupts in a graph result that wait for a Warden approval."""
    found = cast(Sequence[Interrupt], result.get("__interrupt__") or ())
    return [i for i in found if _is_approval(cast(Any, i).value)]


def _is_approval(value: Any) -> bool:
    return isinstance(value, Mapping) and cast(Mapping[str, Any], value).get("type") == (
        "warden.approval"
    )


def resume(result: Mapping[str, Any]) -> Command[Any]:
    """A ``Command`` that resumes every Warden interrupt of `result`: each paused call is
    looked up again in Warden, and runs once if people approved it there."""
    return Command(resume={i.id: True for i in warden_interrupts(result)})


def _answer(request: ToolCallRequest, handled: Handling) -> ToolMessage | Command[Any]:
    call = request.tool_call
    ex = handled.execution
    message = ToolMessage(
        content=handled.text(),
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error" if handled.is_error else "success",
        artifact={
            "warden": {
                "action_id": ex.action_id,
                "run_id": ex.run_id,
                "state": ex.state.value,
                "code": handled.code,
                "approval_id": ex.approval_id,
                "replayed": ex.replayed,
            }
        },
    )
    if handled.next is not Next.STOP:
        return message
    stop = {
        "code": handled.code,
        "reason": handled.message,
        "action_id": ex.action_id,
        "tool": ex.tool,
        "run_id": ex.run_id,
    }
    return Command(update={"messages": [message], "warden_stop": stop})


def _rejects(answer: Any) -> bool:
    """True for a resume value that rejects the call (``False``, ``{"type": "reject"}``)."""
    if answer is False:
        return True
    return isinstance(answer, Mapping) and cast(Mapping[str, Any], answer).get("type") == "reject"


def _rejected(request: ToolCallRequest, answer: Any) -> ToolMessage:
    said = cast(Mapping[str, Any], answer).get("message") if isinstance(answer, Mapping) else None
    why = f": {said}" if said else ""
    call = request.tool_call
    return ToolMessage(
        content=f"The user rejected this call{why}; it was not made.",
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error",
    )


def _langchain_tool(tool: Tool) -> BaseTool:
    """A LangChain tool the model sees for a Warden tool; `WardenMiddleware` runs it."""

    def outside(**_: Any) -> Any:
        raise IntegrationError(
            "W-INT-005",
            f"{tool.name} is a Warden tool: give WardenMiddleware to create_agent, which "
            "runs it through the gate",
        )

    return StructuredTool.from_function(
        func=outside,
        name=tool.name,
        description=tool.description,
        args_schema=tool.json_schema(),
    )
