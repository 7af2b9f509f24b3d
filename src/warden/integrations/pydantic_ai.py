"""Pydantic AI: a capability that brings an agent's Warden tools and counts its model usage.

::

    from pydantic_ai import Agent
    from warden.integrations.pydantic_ai import WardenCapability

    warden = WardenCapability(gate, agent="refund_agent")
    agent = Agent(model, capabilities=[warden], output_type=[str, DeferredToolRequests])
    result = await agent.run("Refund order ord_123456", conversation_id="run_42")

`WardenToolset` lists the Warden tools the agent may call and runs every call through
`Gate.execute` (decided, recorded, run once under a key derived from the Warden run id and
the tool-call id). The run id is the run's ``conversation_id`` unless one is given: Pydantic
AI keeps it when a run resumes from its message history. What comes back:

- a result goes to the model; a deny, a failure or a rejection is raised as
  ``ToolFailed`` with the code and reason (the model reads it and does not retry it);
- a call that needs approval is deferred with ``ApprovalRequired``; its metadata is the
  approval request (``approval_id``, ``needs`` ...), so the run ends with
  ``DeferredToolRequests``. People approve or deny it in Warden; `WardenToolset.results`
  builds the ``DeferredToolResults`` from Warden's verdicts, and the run resumes with
  them. A call Warden has approved runs once; one still pending is deferred again (the
  framework's ``ToolApproved`` means "ask Warden again", never "run it"); ``ToolDenied``
  is honoured; ``ToolApproved(override_args=...)`` is refused (W-IDM-001: the approval is
  bound to the arguments people saw);
- a stop over a budget raises ``UsageLimitExceeded``; another stop (loop, kill switch,
  breaker) raises `IntegrationError` W-INT-004.

`WardenCapability` registers that toolset and maps the framework's usage onto Warden's
budgets: every model response's tokens (and price, when the price list knows the model)
are charged to the Warden run, and a model request is refused with ``UsageLimitExceeded``
once the agent's manifest budget is spent. `WardenCapability.usage_limits` gives the
``UsageLimits`` that let Pydantic AI enforce what is left of those budgets itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic_core import SchemaValidator, core_schema

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

try:
    from pydantic_ai import (
        ApprovalRequired,
        DeferredToolRequests,
        DeferredToolResults,
        RunContext,
        ToolApproved,
        ToolDefinition,
        ToolDenied,
        ToolFailed,
        UsageLimitExceeded,
        UsageLimits,
    )
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.messages import ModelResponse
    from pydantic_ai.models import ModelRequestContext
    from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing_extra("pydantic-ai", "Pydantic AI", exc) from exc

__all__ = ["WardenCapability", "WardenToolset"]

RunIdSource = str | Callable[[RunContext[Any]], str | None] | None

_ANY_ARGS = SchemaValidator(
    core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
)
"""Arguments pass through as the model wrote them: Warden's strict contract check decides
(and a failure is recorded, and counts as an action error)."""


class WardenToolset(AbstractToolset[Any]):
    """An agent's Warden tools for Pydantic AI (see the module docstring)."""

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
        id: str = "warden",
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
        self._id = id
        self._defs = {
            t.name: ToolDefinition(
                name=t.name,
                description=t.description,
                parameters_json_schema=t.json_schema(),
                metadata={"warden_risk": t.risk.value},
            )
            for t in self.governor.tools()
        }

    @property
    def id(self) -> str | None:
        return self._id

    def run_id_of(self, ctx: RunContext[Any]) -> str:
        """The Warden run of a Pydantic AI run: `run_id`, else its ``conversation_id``."""
        return resolve_run_id(self.run_id, ctx, ctx.conversation_id)

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        return {
            name: ToolsetTool(
                toolset=self, tool_def=tool_def, max_retries=0, args_validator=_ANY_ARGS
            )
            for name, tool_def in self._defs.items()
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        call_id = ctx.tool_call_id or ""
        if not call_id:
            raise IntegrationError("W-INT-002", f"the call to {name} has no tool-call id")
        handled = await self.governor.handle_async(self.run_id_of(ctx), call_id, name, tool_args)
        return _answer(handled)

    def results(
        self, requests: DeferredToolRequests, *, run_id: str | None = None
    ) -> DeferredToolResults:
        """The answers to a run's deferred approvals, from Warden's verdicts.

        Approved (or still pending) in Warden → ``ToolApproved()``: the resumed call asks
        Warden again, which runs it once if approved and defers it again if pending.
        Denied or expired → ``ToolDenied`` with who said what. `run_id` is the Warden
        run (the run's ``conversation_id``, unless the toolset was given one)."""
        if run_id is None:
            if not isinstance(self.run_id, str):
                raise IntegrationError(
                    "W-INT-002",
                    "results() needs run_id= (the conversation id of the run that was deferred)",
                )
            run_id = self.run_id
        answers: dict[str, Any] = {}
        for call in requests.approvals:
            if call.tool_name not in self._defs:
                continue
            request = self.governor.approval_for(run_id, call.tool_call_id)
            status = request.status.value if request is not None else "missing"
            if status in ("denied", "expired") and request is not None:
                said = [f"{v.approver}: {v.reason}" for v in request.verdicts if not v.approve]
                why = f" ({'; '.join(said)})" if said else ""
                answers[call.tool_call_id] = ToolDenied(
                    f"A person did not approve this call [{status}]{why}; it was not made."
                )
            elif status == "missing":
                answers[call.tool_call_id] = ToolDenied("Warden has no approval request for it.")
            else:
                answers[call.tool_call_id] = ToolApproved()
        return DeferredToolResults(approvals=answers)


class WardenCapability(AbstractCapability[Any]):
    """Warden for a Pydantic AI agent: its tools, and its usage counted against budgets."""

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
        self.toolset = WardenToolset(
            gate,
            agent=agent,
            run_id=run_id,
            context=context,
            on_behalf_of=on_behalf_of,
            principal=principal,
            content=content,
        )

    @property
    def governor(self) -> Governor:
        return self.toolset.governor

    def get_toolset(self) -> AbstractToolset[Any]:
        return self.toolset

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        """Refuse a model request once the run has spent a budget of the agent's manifest."""
        run_id = self.toolset.run_id_of(ctx)
        breach = self.governor.breach(run_id)
        if breach is not None:
            self.governor.stop_for_budget(run_id, breach)
            raise UsageLimitExceeded(f"Warden budget [{breach.code}]: {breach.reason}")
        return request_context

    async def after_model_request(
        self,
        ctx: RunContext[Any],
        *,
        request_context: ModelRequestContext,
        response: ModelResponse,
    ) -> ModelResponse:
        """Charge the response's tokens (and price) to the Warden run."""
        usage = response.usage
        self.governor.charge(
            self.toolset.run_id_of(ctx),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cache_read_tokens,
            model=response.model_name or "",
            provider=response.provider_name or "",
        )
        return response

    def usage_limits(
        self, run_id: str, *, request_limit: int | None = 50, include_cost: bool = False
    ) -> UsageLimits:
        """``UsageLimits`` for what the run has left of its manifest's budgets.

        ``max_tool_calls`` → ``tool_calls_limit``, ``max_tokens`` → ``total_tokens_limit``
        and, with `include_cost` (Pydantic AI can price the model), ``max_usd_per_task`` →
        ``cost_limit``; each is what is left after the run's usage so far, so the limits
        fit a resumed run too. Warden's own checks apply either way."""
        calls, tokens, usd = self.governor.remaining(run_id)
        return UsageLimits(
            request_limit=request_limit,
            tool_calls_limit=calls,
            total_tokens_limit=tokens,
            cost_limit=Decimal(str(usd)) if include_cost and usd is not None else None,
        )


def _answer(handled: Handling) -> Any:
    """What the tool call returns, or the exception Pydantic AI turns into its outcome."""
    if handled.next is Next.RETURN:
        return handled.result
    if handled.next is Next.WAIT:
        raise ApprovalRequired(metadata=dict(handled.approval or {}))
    if handled.next is Next.STOP:
        if (handled.code or "").startswith("W-BUD-"):
            raise UsageLimitExceeded(f"Warden budget [{handled.code}]: {handled.message}")
        raise IntegrationError("W-INT-004", handled.message)
    if handled.is_error:
        raise ToolFailed(handled.message)
    return handled.message
