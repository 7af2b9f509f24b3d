"""The gate's verdict, as a value.

A deny is the system working: `Gate.decide` returns a `Decision`, it never raises for one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

__all__ = ["ApprovalRequirement", "Decision", "Outcome", "RuleRef", "Stage", "json_ready"]


class Outcome(StrEnum):
    """What happens to the proposed call."""

    ALLOW = "allow"
    """Execute it."""
    DENY = "deny"
    """Do not execute it; the reasons say why."""
    NEEDS_APPROVAL = "needs_approval"
    """Wait for the required people to approve this exact call."""
    SUGGEST_ONLY = "suggest_only"
    """Record it as a proposal for a person; do not execute it."""

    @property
    def strictness(self) -> int:
        """deny > needs_approval > suggest_only > allow; across policy files the strictest wins."""
        return _STRICTNESS[self]


_STRICTNESS = {
    Outcome.ALLOW: 0,
    Outcome.SUGGEST_ONLY: 1,
    Outcome.NEEDS_APPROVAL: 2,
    Outcome.DENY: 3,
}


class Stage(StrEnum):
    """Which check of the gate settled the outcome (DESIGN.md, "the path of one tool call")."""

    KILL_SWITCH = "kill_switch"
    IDENTITY = "identity"
    CONTRACT = "contract"
    LOOP = "loop"
    BUDGET = "budget"
    BREAKER = "breaker"
    POLICY = "policy"
    MODE = "mode"


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleRef:
    """A rule that fired, and where it is written."""

    id: str
    """The rule's id (its `id:`, or ``<policy>#<n>``)."""
    file: str
    """The file it is written in."""
    line: int
    """The line its condition (or the rule) starts on."""

    def __str__(self) -> str:
        return f"{self.id} ({self.file}:{self.line})"


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalRequirement:
    """Who must approve: every listed role at least once, `count` distinct people in all."""

    roles: tuple[str, ...]
    """Roles that must each approve."""
    count: int = 1
    """Distinct approvers needed (2 for a two-person rule)."""

    def merge(self, other: ApprovalRequirement) -> ApprovalRequirement:
        roles = tuple(dict.fromkeys((*self.roles, *other.roles)))
        return ApprovalRequirement(roles=roles, count=max(self.count, other.count, len(roles)))

    def __str__(self) -> str:
        who = " and ".join(self.roles)
        return who if self.count <= 1 else f"{self.count} approvers ({who})"


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The gate's verdict on one proposed tool call."""

    outcome: Outcome
    """What happens to the call."""
    stage: Stage
    """Which check settled the outcome."""
    code: str | None
    """Stable code of a deny, a stop, a demotion or a mode's approval (``W-POL-101`` ...);
    None when the policy allowed the call or its own rule asked for approval."""
    reasons: tuple[str, ...]
    """Plain-language reasons, most important first."""
    rules: tuple[RuleRef, ...]
    """The policy rules that fired, with file:line."""
    policy_revision: str
    """Content hash of the policy set that decided."""
    agent: str
    """The agent that proposed the call."""
    tool: str
    """The tool it proposed."""
    run_id: str
    """The run the call belongs to."""
    mode: str
    """The agent's effective mode when deciding (after any breaker demotion)."""
    args: Mapping[str, Any] | None = None
    """The validated arguments (None when the contract check failed)."""
    fingerprint: str | None = None
    """Hash of tool and canonical arguments; the basis for loop detection and idempotency."""
    approval: ApprovalRequirement | None = None
    """Who must approve, when the outcome is needs_approval."""
    redact_fields: frozenset[str] = frozenset()
    """Argument and output fields to redact before anything is logged."""
    stop_run: bool = False
    """True when the run must stop and escalate (budget, loop, kill switch)."""
    breaker_probe: bool = False
    """True when this call is the half-open breaker's probe: its outcome closes or reopens it."""
    reservation: Any = None
    """The budget reservation held for an allowed call; settle or release it."""
    decided_at: float = 0.0
    """When, in seconds since the epoch, by the gate's clock."""
    latency_ns: int = 0
    """How long the decision took."""
    extra: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Details for humans (the failing field's path, budget figures ...)."""
    inputs: Mapping[str, Any] | None = None
    """What the decision read, so that `warden replay` can decide it again: ``now``, the
    call's ``context`` (and ``principal``), the estimates, and as far as the checks got,
    the kill switch that stopped it, the loop count (``repeats``), the budget breach, the
    breaker's phase and probe, the run's ledger figures (``ledger``: calls, USD, tokens,
    started at; ``tainted``), the facts the policy consulted (``facts``, and
    ``fact_errors`` for lookups that failed) and, for a call stopped before its arguments
    were validated, the arguments as given (``raw_args``). History is not copied: a
    replay rebuilds it from the recorded actions."""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def explain(self) -> str:
        """One line for a person: outcome, code and the first reason."""
        head = self.outcome.value + (f" [{self.code}]" if self.code else "")
        reason = self.reasons[0] if self.reasons else ""
        rules = ", ".join(str(r) for r in self.rules)
        return f"{head}: {reason}" + (f" — {rules}" if rules else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the reservation, an in-process handle, is left out)."""
        return {
            "outcome": self.outcome.value,
            "stage": self.stage.value,
            "code": self.code,
            "reasons": list(self.reasons),
            "rules": [{"id": r.id, "file": r.file, "line": r.line} for r in self.rules],
            "policy_revision": self.policy_revision,
            "agent": self.agent,
            "tool": self.tool,
            "run_id": self.run_id,
            "mode": self.mode,
            "args": dict(self.args) if self.args is not None else None,
            "fingerprint": self.fingerprint,
            "approval": (
                {"roles": list(self.approval.roles), "count": self.approval.count}
                if self.approval
                else None
            ),
            "redact_fields": sorted(self.redact_fields),
            "stop_run": self.stop_run,
            "breaker_probe": self.breaker_probe,
            "decided_at": self.decided_at,
            "latency_ns": self.latency_ns,
            "extra": dict(self.extra),
            "inputs": _inputs_json(self.inputs) if self.inputs is not None else None,
        }


_FROM_CALLERS = ("context", "facts", "raw_args")
"""The parts of `Decision.inputs` a caller or a fact provider supplied: anything may be
in them. The gate's own parts (numbers, names, tuples, enums of str) encode as they are."""


def _inputs_json(inputs: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(inputs)
    for key in _FROM_CALLERS:
        if key in out:
            out[key] = json_ready(out[key])
    return out


_PLAIN = frozenset({str, int, bool, type(None)})


def json_ready(value: Any) -> Any:
    """`value` as JSON data: mappings become dicts with string keys, tuples lists; a value
    JSON has no form for (a datetime in a caller's context, NaN) becomes its repr, so a
    decision record can always be written."""
    if type(cast(object, value)) in _PLAIN:  # the common case, checked first
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str | int):  # str and int subclasses (enums) encode as themselves
        return value
    if isinstance(value, Mapping):
        items = cast(Mapping[Any, Any], value).items()
        return {k if isinstance(k, str) else str(k): json_ready(v) for k, v in items}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in cast(list[Any] | tuple[Any, ...], value)]
    return repr(value)
