"""The HTTP API's bodies, as pydantic models: they validate what the admin API receives
and describe every endpoint in the OpenAPI document (docs/reference/openapi.json).

The agent endpoints (decide, execute, outcome) validate their bodies by hand on the lean
path (`warden.server.agent`); a test holds that validation and these models to the same
answers, field by field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionModel",
    "ApprovalModel",
    "DecideRequest",
    "DecisionResponse",
    "ErrorResponse",
    "ExecuteResponse",
    "HealthResponse",
    "KillModel",
    "KillRequest",
    "KillsResponse",
    "OutcomeRequest",
    "OutcomeResponse",
    "ReadyResponse",
    "ReloadResponse",
    "RunDetail",
    "RunModel",
    "UnkillRequest",
    "VerdictRequest",
    "VerifyResponse",
]

NAME_MAX = 200
"""Longest agent, tool, run or person name the API takes."""
KEY_MAX = 255
"""Longest idempotency key."""
TEXT_MAX = 2000
"""Longest reason or error message."""
COUNT_MAX = 2**53
"""Largest step or token count (an integer a database column and a JSON number in any
language both hold exactly)."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class _Out(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


# --- errors ----------------------------------------------------------------------------------


class ErrorDetail(_Out):
    code: str
    """The stable code (``W-AUTH-002`` ...); docs/errors/<code>.md explains it."""
    message: str
    """What went wrong in this request."""
    hint: str
    """What to do about it."""
    file: str | None = None
    """For a configuration file that cannot be loaded: the file."""
    line: int | None = None
    """... and the line."""


class ErrorResponse(_Out):
    """Every error the server answers."""

    error: ErrorDetail


# --- the agent API ---------------------------------------------------------------------------


class DecideRequest(_In):
    """One tool call an agent proposes."""

    agent: str = Field(min_length=1, max_length=NAME_MAX)
    """The agent proposing the call; it must be the agent the key belongs to."""
    tool: str = Field(min_length=1, max_length=NAME_MAX)
    """The tool's registered name; it must be in the key's tool scope."""
    args: dict[str, Any]
    """The arguments as the model produced them; checked against the tool's contract."""
    run_id: str = Field(min_length=1, max_length=NAME_MAX)
    """The run the call belongs to (budgets, loops and history are kept per run)."""
    step: int | None = Field(default=None, ge=0, le=COUNT_MAX)
    """The call's step in its run; part of the derived idempotency key."""
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=KEY_MAX)
    """The caller's own key; by default one is derived from run, step, tool and arguments."""
    context: dict[str, Any] = Field(default_factory=dict[str, Any])
    """Facts the caller supplies for policies: customer tier, environment ..."""
    estimated_usd: float = Field(default=0.0, ge=0)
    """Expected cost of the call, reserved against the run's USD budget."""
    estimated_tokens: int = Field(default=0, ge=0, le=COUNT_MAX)
    """Expected tokens, reserved against the run's token budget."""
    on_behalf_of: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    """The person the run acts for; they may not approve its actions."""


class RuleModel(_Out):
    id: str
    """The rule's id."""
    file: str
    """The file it is written in."""
    line: int
    """The line its condition starts on."""


class ApprovalNeed(_Out):
    roles: list[str]
    """Roles that must each approve."""
    count: int
    """Distinct approvers needed."""


class DecisionResponse(_Out):
    """The decision on a proposed call, and the durable action that records it."""

    action_id: str
    """The recorded action (``act_...``)."""
    run_id: str
    state: str
    """Where the action is: ``executing`` (allowed: run the tool, then report its
    outcome), ``awaiting_approval``, ``decided`` (denied, or recorded as a suggestion),
    or, for a replay, whatever state it reached."""
    outcome: str
    """``allow``, ``deny``, ``needs_approval`` or ``suggest_only``."""
    stage: str | None
    """Which check settled the outcome (null for a replay)."""
    code: str | None
    """The stable code of a deny, a stop or a demotion."""
    reasons: list[str]
    """Plain-language reasons, most important first."""
    rules: list[RuleModel]
    """The policy rules that fired, with file and line (empty for a replay)."""
    policy_revision: str | None
    """The policy set that decided (null for a replay)."""
    mode: str | None
    """The agent's effective mode when deciding (null for a replay)."""
    stop_run: bool
    """True when the run must stop and escalate (budget, loop, kill switch)."""
    approval: ApprovalNeed | None
    """Who must approve, when the outcome is ``needs_approval``."""
    idempotency_key: str | None
    """The key the action holds (null for a deny)."""
    approval_id: str | None
    """The approval request, when the action waits for (or ran after) one."""
    replayed: bool
    """True when this is the stored action of an earlier call with the same key. Run the
    tool only for an ``executing`` action that is not a replay."""


class ActionErrorModel(_Out):
    code: str
    """W-EXE-001 (the tool failed), W-EXE-002 (timed out) ..."""
    type: str | None
    """The exception's type."""
    message: str


class ExecuteResponse(DecisionResponse):
    """The decision, and what running the tool gave."""

    result: Any = None
    """The tool's return value, when it succeeded."""
    error: ActionErrorModel | None = None
    """Why the tool failed, timed out or did not run."""
    attempts: int = 0
    """How many times the tool was called (retries included)."""
    duration_ms: float = 0.0
    """How long executing took."""


class ReportedError(_In):
    message: str = Field(max_length=TEXT_MAX)
    """What went wrong."""
    type: str | None = Field(default=None, max_length=NAME_MAX)
    """The exception's type, if any."""


class OutcomeRequest(_In):
    """What happened when the caller ran an allowed action's tool."""

    ok: bool
    """True when the tool succeeded."""
    result: Any = None
    """Its return value (JSON), when it succeeded."""
    error: ReportedError | None = None
    """Why it failed, when it did not."""
    duration_ms: float = Field(default=0.0, ge=0)
    """How long it took."""
    usd: float | None = Field(default=None, ge=0)
    """What it cost; by default the estimate the call reserved."""


class OutcomeResponse(_Out):
    """The action with its recorded outcome."""

    action_id: str
    run_id: str
    state: str
    """``succeeded`` or ``failed``."""
    result: Any = None
    error: ActionErrorModel | None = None
    replayed: bool
    """True when the same outcome had already been recorded."""


# --- the admin API -----------------------------------------------------------------------


class ActionModel(_Out):
    """One recorded action."""

    id: str
    run_id: str
    agent: str
    tool: str
    step: int | None
    state: str
    outcome: str
    """The decision's outcome."""
    code: str | None
    reasons: list[str]
    args: dict[str, Any]
    idempotency_key: str | None
    approval_id: str | None
    decided_at: float
    """Seconds since the epoch."""
    finished_at: float | None
    attempts: int
    result: Any = None
    error: ActionErrorModel | None = None


class RunModel(_Out):
    """One run (one task by one agent)."""

    id: str
    agent: str
    status: str
    """running, waiting, succeeded, failed, escalated or killed."""
    policy_revision: str
    started_at: float
    ended_at: float | None
    started_by: str | None
    task: str | None
    outcome: str | None
    reason: str | None
    calls: int
    usd: float
    tokens: int


class RunDetail(RunModel):
    """A run and the timeline of its actions."""

    actions: list[ActionModel]


class StillNeeded(_Out):
    roles: list[str]
    approvers: int


class VerdictModel(_Out):
    approver: str
    role: str
    verdict: str
    """``approve`` or ``deny``."""
    reason: str
    at: float


class ApprovalModel(_Out):
    """An approval request, bound to exactly one call."""

    id: str
    action_id: str
    run_id: str
    agent: str
    tool: str
    args: dict[str, Any]
    binding: str
    """The hash of agent, tool, arguments, policy revision and run it approves."""
    policy_revision: str
    roles: list[str]
    count: int
    requested_by: list[str]
    """Who may not approve it."""
    requested_at: float
    expires_at: float
    status: str
    """pending, approved, denied, used or expired."""
    reasons: list[str]
    still_needed: StillNeeded
    verdicts: list[VerdictModel]


class VerdictRequest(_In):
    """An approver's verdict. Who gives it is the token's operator."""

    reason: str = Field(default="", max_length=TEXT_MAX)
    """Why (recorded with the verdict; required to deny)."""
    role: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    """The role to give it as (default: one the request still needs, that the token
    holds)."""


class KillRequest(_In):
    scope: str = Field(min_length=1, max_length=NAME_MAX + 6)
    """``all``, ``agent:NAME`` or ``tool:NAME``."""
    reason: str = Field(min_length=1, max_length=TEXT_MAX)
    """Why (recorded with the switch)."""


class UnkillRequest(_In):
    scope: str = Field(min_length=1, max_length=NAME_MAX + 6)
    """The scope to lift."""
    reason: str = Field(default="", max_length=TEXT_MAX)
    """Why it is safe again."""


class KillModel(_Out):
    scope: str
    by: str
    reason: str
    at: float


class KillsResponse(_Out):
    engaged: list[KillModel]
    """Every engaged kill switch."""
    changed: bool = False
    """For kill and unkill: whether this request changed anything."""


class ReloadResponse(_Out):
    changed: bool
    """Whether the policy revision changed."""
    old_revision: str
    new_revision: str
    policies: int
    """How many policies are loaded now."""


class StreamHeadModel(_Out):
    stream_seq: int
    seq: int
    hash: str


class AuditProblem(_Out):
    code: str
    message: str
    seq: int | None
    stream: str | None


class VerifyResponse(_Out):
    ok: bool
    """True when every record verified."""
    records: int
    last_seq: int
    streams: dict[str, StreamHeadModel]
    problem: AuditProblem | None = None
    """The first bad record, when the log does not verify."""


class HealthResponse(_Out):
    status: str


class ReadyResponse(_Out):
    status: str
    policy_revision: str
    """The policy set in force."""
