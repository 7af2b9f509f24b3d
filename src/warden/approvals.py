"""Approvals: a person's yes, bound to exactly the call they saw.

An approval request carries the hash of (agent, tool, canonical arguments, policy
revision, run). The action runs only if the call presented at execution hashes the same,
so changed arguments, another run, or a newer policy need a new approval. Each request:

- names the roles that must approve (each at least once) and a count of distinct people
  (a two-person rule is ``count: 2``);
- expires (``approvals.expire_after`` in warden.yaml, 24 hours by default);
- refuses the requester (the calling principal, the agent, the person the run acts for);
- is single use: once its action starts executing, it is spent.

The rules live here as pure functions; a store keeps requests and verdicts, and applies
`check_verdict` inside its own transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from warden.canonical import canonical_json
from warden.errors import ApprovalError

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "Verdict",
    "binding_hash",
    "check_usable",
    "check_verdict",
    "status_after",
]


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    """Every role and the count are satisfied; the action may run once."""
    DENIED = "denied"
    USED = "used"
    """Its action started executing; the approval is spent."""
    EXPIRED = "expired"


def binding_hash(
    *, agent: str, tool: str, args: Mapping[str, Any], policy_revision: str, run_id: str
) -> str:
    """The hash an approval is bound to."""
    payload = {
        "agent": agent,
        "args": dict(args),
        "policy_revision": policy_revision,
        "run_id": run_id,
        "tool": tool,
    }
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """One person's answer."""

    approver: str
    role: str
    approve: bool
    reason: str
    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalRequest:
    """A stored approval request and its verdicts."""

    id: str
    action_id: str
    run_id: str
    agent: str
    tool: str
    args: Mapping[str, Any]
    binding: str
    policy_revision: str
    roles: tuple[str, ...]
    count: int
    requested_by: tuple[str, ...]
    """Who may not approve: the principal, the agent, the person the run acts for."""
    requested_at: float
    expires_at: float
    status: ApprovalStatus
    reasons: tuple[str, ...] = ()
    verdicts: tuple[Verdict, ...] = ()

    def missing(self) -> tuple[tuple[str, ...], int]:
        """Roles not yet covered by an approving verdict, and approvers still needed."""
        approving = [v for v in self.verdicts if v.approve]
        covered = {v.role for v in approving}
        roles = tuple(r for r in self.roles if r not in covered)
        people = len({v.approver for v in approving})
        return roles, max(0, self.count - people)

    def to_dict(self) -> dict[str, Any]:
        roles, people = self.missing()
        return {
            "id": self.id,
            "action_id": self.action_id,
            "run_id": self.run_id,
            "agent": self.agent,
            "tool": self.tool,
            "args": dict(self.args),
            "binding": self.binding,
            "policy_revision": self.policy_revision,
            "roles": list(self.roles),
            "count": self.count,
            "requested_by": list(self.requested_by),
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
            "status": self.status.value,
            "reasons": list(self.reasons),
            "still_needed": {"roles": list(roles), "approvers": people},
            "verdicts": [
                {
                    "approver": v.approver,
                    "role": v.role,
                    "verdict": "approve" if v.approve else "deny",
                    "reason": v.reason,
                    "at": v.at,
                }
                for v in self.verdicts
            ],
        }


def check_verdict(
    request: ApprovalRequest,
    *,
    approver: str,
    approver_roles: frozenset[str],
    approve: bool,
    role: str | None,
    reason: str,
    now: float,
) -> Verdict:
    """The verdict to store, or the ApprovalError saying why it is refused."""
    if request.status is ApprovalStatus.PENDING and now >= request.expires_at:
        raise ApprovalError("W-APR-002", f"approval {request.id} expired before this verdict")
    if request.status is ApprovalStatus.EXPIRED:
        raise ApprovalError("W-APR-002", f"approval {request.id} has expired")
    if request.status is not ApprovalStatus.PENDING:
        raise ApprovalError("W-APR-004", f"approval {request.id} is already {request.status.value}")
    if approver in request.requested_by:
        raise ApprovalError("W-APR-003", f"{approver} requested this action and cannot approve it")
    if any(v.approver == approver for v in request.verdicts):
        raise ApprovalError(
            "W-APR-005", f"{approver} already gave a verdict on approval {request.id}"
        )
    if role is not None:
        if role not in request.roles:
            raise ApprovalError(
                "W-APR-006",
                f"role {role!r} is not one this request needs ({', '.join(request.roles)})",
            )
        if role not in approver_roles:
            raise ApprovalError("W-APR-006", f"{approver} does not hold the role {role!r}")
        chosen = role
    else:
        held = [r for r in request.roles if r in approver_roles]
        if not held:
            raise ApprovalError(
                "W-APR-006",
                f"{approver} holds none of the roles this request needs "
                f"({', '.join(request.roles)}); roles are granted under `roles:` in warden.yaml",
            )
        uncovered, _ = request.missing()
        chosen = next((r for r in held if r in uncovered), held[0])
    return Verdict(approver=approver, role=chosen, approve=approve, reason=reason, at=now)


def status_after(request: ApprovalRequest, verdicts: Sequence[Verdict]) -> ApprovalStatus:
    """The request's status once `verdicts` are its verdicts: one deny denies it."""
    if any(not v.approve for v in verdicts):
        return ApprovalStatus.DENIED
    covered = {v.role for v in verdicts}
    people = {v.approver for v in verdicts}
    if all(r in covered for r in request.roles) and len(people) >= request.count:
        return ApprovalStatus.APPROVED
    return ApprovalStatus.PENDING


def check_usable(request: ApprovalRequest, *, binding: str, now: float) -> None:
    """Raise unless `request` lets a call hashing to `binding` execute now."""
    if request.binding != binding:
        raise ApprovalError(
            "W-APR-001",
            f"approval {request.id} was given for another call (agent, tool, arguments, "
            "policy revision or run differ)",
        )
    if request.status is ApprovalStatus.USED:
        raise ApprovalError("W-APR-004", f"approval {request.id} was already used")
    if request.status is ApprovalStatus.DENIED:
        raise ApprovalError("W-APR-007", f"approval {request.id} was denied")
    if request.status is ApprovalStatus.EXPIRED or now >= request.expires_at:
        raise ApprovalError("W-APR-002", f"approval {request.id} has expired")
    if request.status is ApprovalStatus.PENDING:
        roles, people = request.missing()
        need = ", ".join(roles) if roles else f"{people} more approver(s)"
        raise ApprovalError("W-APR-009", f"approval {request.id} still needs {need}")
