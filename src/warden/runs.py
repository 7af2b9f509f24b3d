"""Runs and actions, as values: what a durable store records and `warden runs` shows.

A run is one task by one agent. Each tool call it proposes is an action, which moves
through these states (the decision record and the first state commit together, so the
first durable state is already past ``proposed``)::

    proposed ─┬─> decided                          denied, or recorded as a suggestion
              ├─> awaiting_approval ─┬─> executing  (approved; exactly once)
              │                      └─> rejected   (denied or expired)
              └─> executing ─┬─> succeeded ──> compensated
                             ├─> failed
                             └─> outcome_unknown ──> succeeded / failed (reconciled)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ActionState", "ActionView", "Execution", "RunStatus", "RunView"]


class ActionState(StrEnum):
    PROPOSED = "proposed"
    """Proposed by the agent; not yet decided (never durable on its own)."""
    DECIDED = "decided"
    """Decided and not to be executed: a deny, or a write recorded as a suggestion."""
    AWAITING_APPROVAL = "awaiting_approval"
    """Waits for people to approve exactly this call."""
    EXECUTING = "executing"
    """The decision is recorded; the tool is running (or was, when a process died)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"
    """The tool may or may not have taken effect; a person must look (the run escalates)."""
    COMPENSATED = "compensated"
    """Succeeded, then undone by the tool's compensate hook."""
    REJECTED = "rejected"
    """Its approval was denied or expired; it never ran."""

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the action by itself."""
        return self in _FINAL


_FINAL = frozenset(
    {
        ActionState.DECIDED,
        ActionState.SUCCEEDED,
        ActionState.FAILED,
        ActionState.OUTCOME_UNKNOWN,
        ActionState.COMPENSATED,
        ActionState.REJECTED,
    }
)


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    """An action waits for approval."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ESCALATED = "escalated"
    """Stopped for a person: budget, loop, outcome unknown."""
    KILLED = "killed"
    """Stopped by a kill switch."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Execution:
    """What `Gate.execute` returns: the action's state after the call, and its result."""

    action_id: str
    """The durable action's id (``act_...``)."""
    state: ActionState
    """Where the action is now."""
    run_id: str
    agent: str
    tool: str
    decision: Any = None
    """The `Decision` made for this call; None when the result was replayed from the store."""
    result: Any = None
    """The tool's return value as JSON (a pydantic model is dumped), when it succeeded."""
    error: Mapping[str, Any] | None = None
    """``{"code", "message", "type"}`` when the tool failed, or why the action did not run."""
    idempotency_key: str | None = None
    """The key the action ran under (None for a deny: nothing was executed)."""
    approval_id: str | None = None
    """The approval request, when the action waits for (or ran after) one."""
    replayed: bool = False
    """True when this is the stored result of an earlier call with the same key."""
    attempts: int = 0
    """How many times the tool was called (1 + retries used); 0 for a cached result."""
    duration_ms: float = 0.0
    """How long executing took, retries included."""
    cached_from: str | None = None
    """For a read tool's cached result: the action whose result was reused."""
    saved_ms: float = 0.0
    """For a cached result: how long the original call took (the time saved)."""

    @property
    def ok(self) -> bool:
        """True when the tool ran and succeeded."""
        return self.state is ActionState.SUCCEEDED

    @property
    def code(self) -> str | None:
        """The error's code, else the decision's code."""
        if self.error is not None:
            return str(self.error.get("code"))
        return getattr(self.decision, "code", None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "state": self.state.value,
            "run_id": self.run_id,
            "agent": self.agent,
            "tool": self.tool,
            "decision": self.decision.to_dict() if self.decision is not None else None,
            "result": self.result,
            "error": dict(self.error) if self.error is not None else None,
            "idempotency_key": self.idempotency_key,
            "approval_id": self.approval_id,
            "replayed": self.replayed,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "cached_from": self.cached_from,
            "saved_ms": self.saved_ms,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionView:
    """One stored action, as `warden runs show` lists it."""

    id: str
    run_id: str
    agent: str
    tool: str
    state: ActionState
    outcome: str
    """The decision's outcome: allow, deny, needs_approval, suggest_only."""
    code: str | None
    args: Mapping[str, Any]
    decided_at: float
    finished_at: float | None = None
    idempotency_key: str | None = None
    request_hash: str = ""
    approval_id: str | None = None
    result: Any = None
    error: Mapping[str, Any] | None = None
    reasons: tuple[str, ...] = ()
    attempts: int = 0
    owner: str = ""
    """Which process executes it (host:pid:boot), for crash recovery."""
    step: int | None = None
    est_usd: float = 0.0
    """The cost the call reserved."""
    est_tokens: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class RunView:
    """One stored run."""

    id: str
    agent: str
    status: RunStatus
    policy_revision: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None
    reason: str | None = None
    calls: int = 0
    usd: float = 0.0
    tokens: int = 0
    started_by: str | None = None
    task: str | None = None
    """The task's own key (a ticket id), when the runner started the run."""
    actions: tuple[ActionView, ...] = field(default_factory=tuple[ActionView, ...])

    def summary(self) -> dict[str, Any]:
        """The run as JSON, without its actions (`warden runs --json`, the HTTP API)."""
        return {
            "id": self.id,
            "agent": self.agent,
            "status": self.status.value,
            "policy_revision": self.policy_revision,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "started_by": self.started_by,
            "task": self.task,
            "outcome": self.outcome,
            "reason": self.reason,
            "calls": self.calls,
            "usd": self.usd,
            "tokens": self.tokens,
        }
