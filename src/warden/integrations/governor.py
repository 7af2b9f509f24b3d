"""One framework tool call through Warden, and what the framework should do next.

Every adapter does the same four things, here once:

1. make a `ToolCall` for the agent, with the run id the framework keeps across a pause
   and an idempotency key derived from that run id and the framework's tool-call id;
2. `Gate.execute` it: decided, recorded durably, run exactly once, outcome recorded (a
   second call with the same key returns the stored action: that is how a resumed call
   finds its approval, and why a framework that asks twice never runs a tool twice);
3. classify the `Execution` into a `Handling`: hand the result to the model, tell the
   model why the call did not run, pause for an approval, or stop the run;
4. count the framework's model usage against the run's budgets (`charge`, `breach`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from warden.approvals import ApprovalRequest, ApprovalStatus
from warden.budgets import Amounts, BudgetBreach, check
from warden.canonical import canonical_json
from warden.decision import Decision, Outcome
from warden.errors import IntegrationError
from warden.gate import Gate, ToolCall
from warden.models.base import Usage
from warden.models.pricing import price
from warden.provenance import Content, Label
from warden.runs import ActionState, Execution, RunStatus
from warden.tools.spec import Tool

__all__ = [
    "Governor",
    "Handling",
    "IntegrationError",
    "MissingExtra",
    "Next",
    "missing_extra",
    "resolve_run_id",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_STOP_PREFIXES = ("W-KIL-", "W-LOOP-", "W-BUD-", "W-BRK-001")
"""Codes of a recorded decision that stop the run (a replayed action carries no Decision)."""


class MissingExtra(IntegrationError, ImportError):
    """W-INT-001: the framework an adapter needs is not installed (also an ImportError)."""


def missing_extra(extra: str, framework: str, exc: ImportError) -> MissingExtra:
    """The error an adapter module raises when its framework cannot be imported."""
    return MissingExtra(
        "W-INT-001",
        f"warden.integrations needs {framework} for this adapter ({exc}); "
        f"install it with: pip install 'warden[{extra}]'",
    )


class Next(StrEnum):
    """What the framework does with a call Warden has handled."""

    RETURN = "return"
    """The tool ran: hand `Handling.result` to the model."""
    TELL = "tell"
    """The call did not run (denied, failed, rejected, recorded as a suggestion): the model
    hears `Handling.message`."""
    WAIT = "wait"
    """People must approve it in Warden first: pause the run with `Handling.approval`."""
    STOP = "stop"
    """Warden stopped the run (budget, loop, kill switch, breaker, outcome unknown)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Handling:
    """A framework tool call after Warden, in the terms every adapter speaks."""

    next: Next
    execution: Execution
    """What `Gate.execute` returned (a replay carries no decision)."""
    result: Any = None
    """The tool's result as JSON, for `Next.RETURN`."""
    message: str = ""
    """What the model hears, for `TELL` and `STOP` (and the reason, for `WAIT`)."""
    code: str | None = None
    """The decision's or the error's code (``W-POL-101``, ``W-BUD-001`` ...)."""
    approval: Mapping[str, Any] | None = None
    """For `WAIT`: the approval request, as the framework's pause carries it (type
    ``warden.approval``, ``approval_id``, ``action_id``, ``run_id``, ``agent``, ``tool``,
    ``args``, ``needs``, ``reasons``, ``expires_at``)."""
    is_error: bool = False
    """True when the model should read `message` as a tool error (everything but a result
    and a recorded suggestion)."""

    def text(self) -> str:
        """What the model reads: the result as JSON, or the message."""
        if self.next is Next.RETURN:
            return json.dumps(self.result, ensure_ascii=False, default=str)
        return self.message


@dataclass(kw_only=True, slots=True)
class _Taint:
    """Runs in which a tool whose output is untrusted has returned (per process)."""

    seen: set[str] = field(default_factory=set[str])
    checked: set[str] = field(default_factory=set[str])
    lock: threading.Lock = field(default_factory=threading.Lock)


class Governor:
    """Runs one agent's framework tool calls through a gate.

    `agent` is the manifest's agent name; `context` (facts for policies, ``context.*``),
    `on_behalf_of` (the person the run acts for: they may not approve its actions),
    `principal` (the authenticated caller) and `content` (labelled context, e.g. an email
    as `Label.UNTRUSTED`) go on every call. A run in which a tool declared
    ``trusted_output=False`` has returned is tainted for the calls after it, as in the
    runner."""

    def __init__(
        self,
        gate: Gate,
        *,
        agent: str,
        context: Mapping[str, Any] | None = None,
        on_behalf_of: str | None = None,
        principal: str | None = None,
        content: Sequence[Content] = (),
    ) -> None:
        manifest = gate.agent(agent)
        if manifest is None:
            raise IntegrationError(
                "W-INT-005", f"no agent {agent!r} is declared in the gate's manifests"
            )
        self.gate = gate
        self.agent = agent
        self.context: Mapping[str, Any] = dict(context) if context is not None else _EMPTY
        self.on_behalf_of = on_behalf_of
        self.principal = principal
        self.content = tuple(content)
        self._allowed = manifest.allowed_tools
        self._taint = _Taint()

    # --- the agent's tools ----------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """The Warden tools the agent may call (its manifest's allowed_tools), by name."""
        return sorted((t for t in self.gate.tools if t.name in self._allowed), key=lambda t: t.name)

    # --- one call -------------------------------------------------------------------------

    @staticmethod
    def key(run_id: str, call_id: str) -> str:
        """The idempotency key of a framework tool call: stable across pauses and resumes."""
        digest = hashlib.sha256(canonical_json(["framework-call", run_id, call_id])).hexdigest()
        return "fw_" + digest[:40]

    def call(self, run_id: str, call_id: str, tool: str, args: Mapping[str, Any]) -> ToolCall:
        """The `ToolCall` Warden decides for one framework tool call."""
        if not run_id:
            raise IntegrationError("W-INT-002", f"a call to {tool} has no Warden run id")
        content = self.content
        if self._tainted(run_id):
            content = (
                *content,
                Content(text="", label=Label.UNTRUSTED, source="an untrusted tool's output"),
            )
        return ToolCall(
            agent=self.agent,
            tool=tool,
            args=args,
            run_id=run_id,
            context=self.context,
            principal=self.principal,
            idempotency_key=self.key(run_id, call_id),
            on_behalf_of=self.on_behalf_of,
            content=content,
        )

    def handle(self, run_id: str, call_id: str, tool: str, args: Mapping[str, Any]) -> Handling:
        """Execute one framework tool call through the gate (blocking) and classify it."""
        ex = self.gate.execute(self.call(run_id, call_id, tool, args))
        found = self.gate.tools.get(tool)
        if ex.ok and found is not None and not found.trusted_output:
            with self._taint.lock:
                self._taint.seen.add(run_id)
        return self.classify(ex)

    async def handle_async(
        self, run_id: str, call_id: str, tool: str, args: Mapping[str, Any]
    ) -> Handling:
        """`handle` for an event loop: the gate and the tool run in a worker thread."""
        return await asyncio.to_thread(self.handle, run_id, call_id, tool, args)

    # --- what the framework does next -------------------------------------------------------

    def classify(self, ex: Execution) -> Handling:
        """Turn an `Execution` into what the framework does next (as the runner does)."""
        state = ex.state
        if state in (ActionState.SUCCEEDED, ActionState.COMPENSATED):
            return Handling(next=Next.RETURN, execution=ex, result=ex.result)
        if state is ActionState.FAILED:
            err = ex.error or {}
            code = _text(err.get("code"))
            return Handling(
                next=Next.TELL,
                execution=ex,
                code=code,
                message=f"The call failed [{code}]: {err.get('message')}",
                is_error=True,
            )
        if state is ActionState.REJECTED:
            return self._rejected(ex)
        if state is ActionState.AWAITING_APPROVAL:
            return self._waiting(ex)
        if state is ActionState.OUTCOME_UNKNOWN:
            err = ex.error or {}
            code = _text(err.get("code")) or "W-EXE-003"
            reason = _text(err.get("message")) or "the outcome of the call is unknown"
            return Handling(
                next=Next.STOP,
                execution=ex,
                code=code,
                message=f"Stopped [{code}]: {reason}",
                is_error=True,
            )
        if state is ActionState.EXECUTING:  # held by another caller under the same key
            return Handling(
                next=Next.TELL,
                execution=ex,
                code="W-IDM-002",
                message="The same call is already in progress; it was not made again.",
                is_error=True,
            )
        return self._decided(ex)

    def _decided(self, ex: Execution) -> Handling:
        """A deny, a stop or a suggestion (from the decision, or the stored action)."""
        decision = ex.decision if isinstance(ex.decision, Decision) else None
        if decision is not None:
            outcome, code, reasons = decision.outcome, decision.code, decision.reasons
            stop = decision.stop_run or code == "W-BRK-001"
        else:
            view = self.gate.executor.store.action(ex.action_id)
            outcome = Outcome(view.outcome) if view is not None else Outcome.DENY
            code = view.code if view is not None else None
            reasons = view.reasons if view is not None else ()
            stop = code is not None and code.startswith(_STOP_PREFIXES)
        reason = reasons[0] if reasons else outcome.value
        if stop:
            return Handling(
                next=Next.STOP,
                execution=ex,
                code=code,
                message=f"Stopped [{code}]: {reason}",
                is_error=True,
            )
        if outcome is Outcome.SUGGEST_ONLY:
            return Handling(
                next=Next.TELL,
                execution=ex,
                code=code,
                message=f"Recorded as a suggestion for a person ({reason}); it was not executed.",
            )
        return Handling(
            next=Next.TELL,
            execution=ex,
            code=code,
            message=f"Denied [{code}]: {reason}",
            is_error=True,
        )

    def _waiting(self, ex: Execution) -> Handling:
        request = self.approval(ex.approval_id)
        needs = _needs(request) if request is not None else "a person's approval"
        reasons = list(request.reasons) if request is not None else []
        approval = {
            "type": "warden.approval",
            "approval_id": ex.approval_id,
            "action_id": ex.action_id,
            "run_id": ex.run_id,
            "agent": ex.agent,
            "tool": ex.tool,
            "args": dict(request.args) if request is not None else {},
            "needs": needs,
            "reasons": reasons,
            "expires_at": request.expires_at if request is not None else None,
        }
        why = reasons[0] if reasons else "it needs approval"
        return Handling(
            next=Next.WAIT,
            execution=ex,
            code=ex.code,
            approval=approval,
            message=f"Waiting for approval {ex.approval_id} in Warden ({needs}): {why}",
        )

    def _rejected(self, ex: Execution) -> Handling:
        """Denied by a person, or expired: the model hears who said what."""
        request = self.approval(ex.approval_id)
        said = (
            [f"{v.approver}: {v.reason}" for v in request.verdicts if not v.approve and v.reason]
            if request is not None
            else []
        )
        expired = request is not None and request.status is ApprovalStatus.EXPIRED
        if expired and not said:
            said = ["nobody decided before the request expired"]
        why = f" ({'; '.join(said)})" if said else ""
        code = "W-APR-002" if expired else "W-APR-007"
        return Handling(
            next=Next.TELL,
            execution=ex,
            code=code,
            message=f"A person did not approve this call [{code}]{why}; it was not made.",
            is_error=True,
        )

    # --- approvals --------------------------------------------------------------------------

    def approval(self, approval_id: str | None) -> ApprovalRequest | None:
        """The approval request, with its status brought up to date (expiry)."""
        if approval_id is None:
            return None
        store = self.gate.executor.store
        request = store.approval(approval_id)
        if (
            request is not None
            and request.status is ApprovalStatus.PENDING
            and self.gate.clock.timestamp() >= request.expires_at
        ):
            store.expire_approvals(self.gate.clock.timestamp())
            request = store.approval(approval_id)
        return request

    def approval_for(self, run_id: str, call_id: str) -> ApprovalRequest | None:
        """The approval request of a framework tool call, if it has one."""
        view = self.gate.executor.store.action_by_key(self.agent, self.key(run_id, call_id))
        return self.approval(view.approval_id) if view is not None else None

    # --- model usage and budgets -----------------------------------------------------------

    def charge(
        self,
        run_id: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        model: str = "",
        provider: str = "",
    ) -> float:
        """Count one model response against the run's budgets; returns its USD (0 when the
        price list does not know the model)."""
        usage = Usage(
            input_tokens=max(0, input_tokens),
            output_tokens=max(0, output_tokens),
            cached_input_tokens=max(0, cached_input_tokens),
        )
        usd = price(usage, model=model, provider=provider).usd if model else 0.0
        self.gate.record_usage(run_id, tokens=usage.total, usd=usd)
        return usd

    def breach(self, run_id: str) -> BudgetBreach | None:
        """The budget of the agent's manifest the run has gone over, or None."""
        manifest = self.gate.agent(self.agent)
        ledger = self.gate.store.ledger(run_id)
        if manifest is None or ledger is None:
            return None
        return check(ledger, manifest.budgets, Amounts(), self.gate.clock.timestamp())

    def stop_for_budget(self, run_id: str, breach: BudgetBreach) -> None:
        """Record that the run stopped over a budget (it escalates, as in the runner)."""
        self.gate.end_run(
            run_id, status=RunStatus.ESCALATED, outcome="budget", reason=breach.reason
        )

    def remaining(self, run_id: str) -> tuple[int | None, int | None, float | None]:
        """(tool calls, tokens, USD) the run has left under the manifest's budgets; None
        where the manifest sets no limit."""
        manifest = self.gate.agent(self.agent)
        if manifest is None:
            return None, None, None
        limits = manifest.budgets
        ledger = self.gate.store.ledger(run_id)
        calls, tokens, usd = (
            (ledger.calls, ledger.tokens, ledger.usd) if ledger is not None else (0, 0, 0.0)
        )
        return (
            max(0, limits.max_tool_calls - calls) if limits.max_tool_calls is not None else None,
            max(0, limits.max_tokens - tokens) if limits.max_tokens is not None else None,
            max(0.0, limits.max_usd - usd) if limits.max_usd is not None else None,
        )

    # --- pieces -------------------------------------------------------------------------------

    def _tainted(self, run_id: str) -> bool:
        taint = self._taint
        with taint.lock:
            if run_id in taint.seen:
                return True
            if run_id in taint.checked:
                return False
        run = self.gate.executor.store.run(run_id)  # a resumed run: look at what it did
        untrusted = {t.name for t in self.gate.tools if not t.trusted_output}
        found = run is not None and any(
            a.tool in untrusted and a.state is ActionState.SUCCEEDED for a in run.actions
        )
        with taint.lock:
            taint.checked.add(run_id)
            if found:
                taint.seen.add(run_id)
        return found


def resolve_run_id(
    given: str | Callable[[Any], str | None] | None, source: Any, fallback: str | None
) -> str:
    """The run id of a call: `given` (a string, or a function of the framework's context
    `source`), else the framework's own stable id `fallback`; W-INT-002 without one."""
    found = given(source) if callable(given) else given
    run_id = found or fallback
    if not run_id:
        raise IntegrationError(
            "W-INT-002",
            "no Warden run id for this call: pass run_id= to the adapter (or give the "
            "framework a stable id for the conversation)",
        )
    return run_id


def _needs(request: ApprovalRequest) -> str:
    """Who still has to approve: ``support_manager``, ``2 approvers (security)``."""
    roles, people = request.missing()
    who = " and ".join(roles or request.roles)
    return who if people <= 1 else f"{people} approvers ({who})"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
