"""OpenAI Agents SDK: an agent's Warden tools as function tools, decided by Warden.

::

    from agents import Agent, Runner
    from warden.integrations.openai_agents import WardenTools

    tools = WardenTools(gate, agent="refund_agent", run_id="run_42")
    agent = Agent(name="refunds", model=model, tools=tools.tools)
    result = await Runner.run(agent, "Refund order ord_123456", hooks=tools.hooks)

Each Warden tool the agent may call becomes a ``FunctionTool`` with three Warden-backed
parts. The first of them to see a call executes it through `Gate.execute` (decided,
recorded, run once under a key derived from the run id and the SDK's ``call_id``); the
others read what it did, so no call ever runs twice:

- ``needs_approval``: the SDK asks it before running a call. Warden executes the call
  here; the answer is yes only when the call waits for people in Warden. The run is then
  interrupted with a ``ToolApprovalItem`` as usual;
- a tool input guardrail: a deny (or a failure, or a rejection) becomes
  ``reject_content`` with the code and reason, which the model reads; a stop (budget,
  loop, kill switch, breaker) becomes ``raise_exception``, which ends the run with the
  SDK's ``ToolInputGuardrailTripwireTriggered`` (its ``output_info`` carries the code);
- the tool body hands the recorded result to the model.

How approvals meet: people approve or deny in Warden. `WardenTools.results` then answers
the run state's interruptions from Warden's verdicts (approved → ``state.approve``,
denied or expired → ``state.reject`` with the reason, pending → left alone), and the run
resumes with ``Runner.run(agent, state)``; an approved call runs then, once. (The SDK
does not ask ``needs_approval`` again for an interruption left unanswered: it stays
interrupted.) The SDK's own ``state.approve`` does not run a call Warden has not
approved: the guardrail ends the run (``output_info`` code W-INT-003) and the call does
not run. ``state.reject`` is honoured.

`WardenTools.hooks` counts every model response's tokens (and its price, when the price
list knows the model) against the Warden run's budgets, and stops the run (W-INT-004)
before a model call once a budget is spent. `WardenTraceProcessor` records the SDK's
spans with the Warden decision of each tool call.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

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
    from agents import (
        Agent,
        FunctionTool,
        RunContextWrapper,
        RunHooks,
        RunState,
        ToolApprovalItem,
        ToolGuardrailFunctionOutput,
        ToolInputGuardrail,
        ToolInputGuardrailData,
        TracingProcessor,
        get_current_span,
    )
    from agents.items import ModelResponse, TResponseInputItem
    from agents.tool_context import ToolContext
    from agents.tracing import Span, Trace
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing_extra("openai-agents", "the OpenAI Agents SDK", exc) from exc

__all__ = ["SpanRecord", "WardenRunHooks", "WardenTools", "WardenTraceProcessor"]

RunIdSource = str | Callable[[RunContextWrapper[Any]], str | None]

_KEEP = 10_000
"""Handled calls (and spans) remembered per process, most recent last."""


class WardenTools:
    """An agent's Warden tools for the OpenAI Agents SDK (see the module docstring).

    `run_id` is the Warden run: a string, or a function of the SDK's run context (for an
    agent built once and run for many tasks, e.g. ``lambda ctx: ctx.context["run_id"]``).
    It must stay the same when a run resumes from its ``RunState``."""

    def __init__(
        self,
        gate: Gate,
        *,
        agent: str,
        run_id: RunIdSource,
        context: Mapping[str, Any] | None = None,
        on_behalf_of: str | None = None,
        principal: str | None = None,
        content: Sequence[Content] = (),
    ) -> None:
        self.governor = Governor(
            gate,
            agent=agent,
            context=context,
            on_behalf_of=on_behalf_of,
            principal=principal,
            content=content,
        )
        self.run_id = run_id
        self._handled: OrderedDict[tuple[str, str], Handling] = OrderedDict()
        self._spans: OrderedDict[str, Handling] = OrderedDict()
        self._lock = threading.Lock()
        self.guardrail: ToolInputGuardrail[Any] = ToolInputGuardrail(
            guardrail_function=self._guard, name="warden"
        )
        """The tool input guardrail every tool carries: deny → reject_content, stop →
        raise_exception."""
        self.tools: list[FunctionTool] = [self._function_tool(t) for t in self.governor.tools()]
        """One ``FunctionTool`` per Warden tool the agent may call."""
        self.hooks = WardenRunHooks(self)
        """Pass to ``Runner.run(..., hooks=...)``: model usage counts against the budgets."""

    # --- resuming --------------------------------------------------------------------------

    def results(
        self, state: RunState[Any, Any], *, run_id: str | None = None
    ) -> list[ToolApprovalItem]:
        """Answer `state`'s interruptions from Warden's verdicts; returns those still pending.

        Approved in Warden → ``state.approve``; denied or expired → ``state.reject`` with
        who said what; pending → left for later. Interruptions of other tools are left
        alone. Resume with ``Runner.run(agent, state)`` once nothing is pending (or
        anyway: a call still pending in Warden interrupts the run again). `run_id`
        defaults to the adapter's (a function of the run context is given the state's)."""
        pending: list[ToolApprovalItem] = []
        if run_id is None:  # the SDK keeps the state's run context private
            run_id = resolve_run_id(self.run_id, getattr(state, "_context", None), None)
        for item in state.get_interruptions():
            call_id = _call_id(item)
            if item.tool_name not in self._names() or call_id is None:
                continue
            request = self.governor.approval_for(run_id, call_id)
            if request is None:
                state.reject(item, rejection_message="Warden has no approval request for it.")
                continue
            status = request.status.value
            if status in ("approved", "used"):
                state.approve(item)
            elif status in ("denied", "expired"):
                said = [f"{v.approver}: {v.reason}" for v in request.verdicts if not v.approve]
                why = f" ({'; '.join(said)})" if said else ""
                state.reject(
                    item,
                    rejection_message=f"A person did not approve this call [{status}]{why}; "
                    "it was not made.",
                )
            else:
                pending.append(item)
        return pending

    # --- the three Warden-backed parts of a tool ------------------------------------------

    async def _needs_approval(
        self, name: str, ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        handled = await self._handle(ctx, call_id, name, params)
        return handled.next is Next.WAIT

    async def _guard(self, data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        tc = data.context
        handled = await self._handle(tc, tc.tool_call_id, tc.tool_name, _args(tc.tool_arguments))
        self._note_span(handled)
        info = _info(handled)
        if handled.next is Next.STOP:
            return ToolGuardrailFunctionOutput.raise_exception(output_info=info)
        if handled.next is Next.TELL:
            return ToolGuardrailFunctionOutput.reject_content(handled.message, output_info=info)
        if handled.next is Next.WAIT:  # approved in the SDK only: the run ends, nothing runs
            refused = _not_approved(handled)
            info.update(code=refused.code, message=refused.message)
            return ToolGuardrailFunctionOutput.raise_exception(output_info=info)
        return ToolGuardrailFunctionOutput.allow(output_info=info)

    async def _invoke(self, name: str, ctx: ToolContext[Any], arguments: str) -> str:
        handled = await self._handle(ctx, ctx.tool_call_id, name, _args(arguments))
        self._note_span(handled)
        if handled.next is Next.WAIT:
            raise _not_approved(handled)
        if handled.next is Next.STOP:  # only without the guardrail (removed by hand)
            raise IntegrationError("W-INT-004", handled.message)
        return handled.text()

    async def _handle(
        self, ctx: RunContextWrapper[Any], call_id: str, name: str, args: Any
    ) -> Handling:
        """The call's handling: remembered once final, asked of Warden otherwise."""
        run_id = resolve_run_id(self.run_id, ctx, None)
        key = (run_id, call_id)
        with self._lock:
            known = self._handled.get(key)
        if known is not None and known.next is not Next.WAIT:
            return known
        handled = await self.governor.handle_async(run_id, call_id, name, args)
        with self._lock:
            self._handled[key] = handled
            self._handled.move_to_end(key)
            while len(self._handled) > _KEEP:
                self._handled.popitem(last=False)
        return handled

    def _note_span(self, handled: Handling) -> None:
        """Remember which Warden action the current (function) span executed."""
        span = get_current_span()
        if span is None:
            return
        with self._lock:
            self._spans[span.span_id] = handled
            while len(self._spans) > _KEEP:
                self._spans.popitem(last=False)

    def handling_for_span(self, span_id: str) -> Handling | None:
        """The Warden handling of the tool call a function span ran, if it was one."""
        with self._lock:
            return self._spans.get(span_id)

    # --- pieces -------------------------------------------------------------------------------

    def _function_tool(self, tool: Tool) -> FunctionTool:
        return FunctionTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=tool.json_schema(),
            on_invoke_tool=partial(self._invoke, tool.name),
            strict_json_schema=False,  # Warden's contract check is the strict one
            tool_input_guardrails=[self.guardrail],
            needs_approval=partial(self._needs_approval, tool.name),
        )

    def _names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tools)


class WardenRunHooks(RunHooks[Any]):
    """Counts model usage against the Warden run's budgets; stops a run that spent them."""

    def __init__(self, tools: WardenTools) -> None:
        self._tools = tools

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        governor = self._tools.governor
        run_id = resolve_run_id(self._tools.run_id, context, None)
        breach = governor.breach(run_id)
        if breach is not None:
            governor.stop_for_budget(run_id, breach)
            raise IntegrationError("W-INT-004", f"[{breach.code}] {breach.reason}")

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        usage = response.usage
        details = getattr(usage, "input_tokens_details", None)
        model = agent.model if isinstance(agent.model, str) else ""
        self._tools.governor.charge(
            resolve_run_id(self._tools.run_id, context, None),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=int(getattr(details, "cached_tokens", 0) or 0),
            model=model,
            provider="openai" if model else "",
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanRecord:
    """One finished SDK span, with the Warden decision of the tool call it ran."""

    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    """The SDK's span type: ``agent``, ``function``, ``generation``, ``response``,
    ``guardrail``, ``turn`` ..."""
    name: str | None
    """The tool's, agent's or guardrail's name, when the span has one."""
    started_at: str | None
    ended_at: str | None
    error: str | None
    usage: Mapping[str, Any] | None = None
    """Token usage, on generation and turn spans."""
    warden: Mapping[str, Any] | None = None
    """For a Warden tool's function span: ``run_id``, ``action_id``, ``state``, ``next``,
    ``code``, ``approval_id``."""


class WardenTraceProcessor(TracingProcessor):
    """A tracing processor that keeps the SDK's spans joined with Warden's decisions.

    Register it with ``agents.add_trace_processor`` (or ``set_trace_processors``). Each
    finished span becomes a `SpanRecord` (the last `max_records` are kept in `records`)
    and is handed to `sink`, if given (to export them, e.g. as log lines)."""

    def __init__(
        self,
        *tools: WardenTools,
        sink: Callable[[SpanRecord], None] | None = None,
        max_records: int = _KEEP,
    ) -> None:
        self._tools = tools
        self._sink = sink
        self._max = max_records
        self._records: list[SpanRecord] = []
        self._lock = threading.Lock()

    @property
    def records(self) -> list[SpanRecord]:
        with self._lock:
            return list(self._records)

    def on_trace_start(self, trace: Trace) -> None:
        return None

    def on_trace_end(self, trace: Trace) -> None:
        return None

    def on_span_start(self, span: Span[Any]) -> None:
        return None

    def on_span_end(self, span: Span[Any]) -> None:
        data = span.span_data
        kind = str(getattr(data, "type", "") or "")
        name = getattr(data, "name", None) or getattr(data, "agent_name", None)
        usage = getattr(data, "usage", None)
        error = span.error
        warden = None
        if kind == "function":
            for tools in self._tools:
                handled = tools.handling_for_span(span.span_id)
                if handled is not None:
                    warden = _info(handled)
                    break
        record = SpanRecord(
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_id=span.parent_id,
            kind=kind,
            name=str(name) if name is not None else None,
            started_at=span.started_at,
            ended_at=span.ended_at,
            error=str(error.get("message")) if error else None,
            usage=cast(Mapping[str, Any], usage) if isinstance(usage, Mapping) else None,
            warden=warden,
        )
        with self._lock:
            self._records.append(record)
            del self._records[: max(0, len(self._records) - self._max)]
        if self._sink is not None:
            self._sink(record)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


def _info(handled: Handling) -> dict[str, Any]:
    ex = handled.execution
    return {
        "run_id": ex.run_id,
        "action_id": ex.action_id,
        "tool": ex.tool,
        "state": ex.state.value,
        "next": handled.next.value,
        "code": handled.code,
        "approval_id": ex.approval_id,
        "message": handled.message,
    }


def _not_approved(handled: Handling) -> IntegrationError:
    return IntegrationError(
        "W-INT-003",
        f"{handled.execution.tool} was approved in the SDK, but its approval "
        f"{handled.execution.approval_id} is still pending in Warden; the call did not run",
    )


def _args(arguments: str) -> Any:
    """The model's arguments; text that is not JSON goes to the gate as it is (and is
    denied by the contract check)."""
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def _call_id(item: ToolApprovalItem) -> str | None:
    raw: Any = item.raw_item
    found: Any = (
        cast(Mapping[str, Any], raw).get("call_id")
        if isinstance(raw, Mapping)
        else getattr(raw, "call_id", None)
    )
    return str(found) if found else None
