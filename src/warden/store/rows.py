"""Action, run and key rows as both stores select them, and the values built from them.

The columns are the same in the SQLite and PostgreSQL schemas, in the same order, with
JSON kept as text (canonical JSON for arguments and reasons), so the two stores read
alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, LiteralString, cast

from warden.approvals import ApprovalRequest, ApprovalStatus, Verdict
from warden.canonical import canonical_json, canonical_text
from warden.identity import ApiKey, KeyKind
from warden.policy.evaluate import PolicySource
from warden.runs import ActionState, ActionView, RunStatus, RunView
from warden.store.protocol import ActionOutcome, NewAction, RecordedDecision

__all__ = [
    "ACTION_COLUMNS",
    "INSERT_ACTION_COLUMNS",
    "action_row",
    "action_view",
    "approval_audit",
    "decision_audit",
    "key_audit",
    "key_from_row",
    "key_row",
    "loads",
    "outcome_audit",
    "recorded_decision",
    "recorded_query",
    "revision_sources",
    "sources_json",
    "verdict_audit",
]

ACTION_COLUMNS = (
    "id, run_id, agent, tool, step, state, outcome, code, reasons, args, idem_key, "
    "request_hash, approval_id, owner, decided_at, finished_at, attempts, result, error, "
    "est_usd, est_tokens"
)
"""What `action_view` reads, in order."""


def loads(raw: str | None) -> Any:
    """A JSON text column: its value, or None for NULL."""
    return json.loads(raw) if raw is not None else None


def action_view(row: Sequence[Any]) -> ActionView:
    """An action from the columns `ACTION_COLUMNS` names."""
    (
        id_,
        run_id,
        agent,
        tool,
        step,
        state,
        outcome,
        code,
        reasons,
        args,
        key,
        request_hash,
        approval_id,
        owner,
        decided_at,
        finished_at,
        attempts,
        result,
        error,
        est_usd,
        est_tokens,
    ) = row
    return ActionView(
        id=id_,
        run_id=run_id,
        agent=agent,
        tool=tool,
        step=step,
        state=ActionState(state),
        outcome=outcome,
        code=code,
        reasons=tuple(json.loads(reasons)),
        args=json.loads(args),
        idempotency_key=key,
        request_hash=request_hash,
        approval_id=approval_id,
        owner=owner,
        decided_at=decided_at,
        finished_at=finished_at,
        attempts=attempts,
        result=loads(result),
        error=cast(Mapping[str, Any] | None, loads(error)),
        est_usd=est_usd,
        est_tokens=est_tokens,
    )


def run_view(row: Sequence[Any], actions: tuple[ActionView, ...]) -> RunView:
    """A run from ``id, agent, status, policy_revision, started_at, ended_at, outcome,
    reason, calls, usd, tokens, started_by, task``."""
    id_, agent, status, revision, started, ended, outcome, reason, calls, usd, tokens, by, task = (
        row
    )
    return RunView(
        id=id_,
        agent=agent,
        status=RunStatus(status),
        policy_revision=revision,
        started_at=started,
        ended_at=ended,
        outcome=outcome,
        reason=reason,
        calls=calls,
        usd=usd,
        tokens=tokens,
        started_by=by,
        task=task,
        actions=actions,
    )


def key_audit(key: ApiKey, *, retire_at: float | None) -> dict[str, Any]:
    """What the audit log keeps of a new key: everything but its hash."""
    return {
        "key_id": key.id,
        "kind": key.kind.value,
        "name": key.name,
        "tools": sorted(key.tools) if key.tools is not None else None,
        "roles": sorted(key.roles),
        "expires_at": key.expires_at,
        "by": key.created_by,
        "replaces": key.replaces,
        "retire_at": retire_at,
    }


def key_row(key: ApiKey) -> tuple[Any, ...]:
    """A key as the columns ``id, kind, name, secret_hash, tools, roles, created_at,
    created_by, expires_at, revoked_at, revoked_by, replaces``."""
    return (
        key.id,
        key.kind.value,
        key.name,
        key.secret_hash,
        canonical_text(sorted(key.tools)) if key.tools is not None else None,
        canonical_text(sorted(key.roles)),
        key.created_at,
        key.created_by,
        key.expires_at,
        key.revoked_at,
        key.revoked_by,
        key.replaces,
    )


def key_from_row(row: Sequence[Any]) -> ApiKey:
    id_, kind, name, secret_hash, tools, roles, created, by, expires, revoked, rby, replaces = row
    return ApiKey(
        id=id_,
        kind=KeyKind(kind),
        name=name,
        secret_hash=secret_hash,
        tools=frozenset(json.loads(tools)) if tools is not None else None,
        roles=frozenset(json.loads(roles)),
        created_at=created,
        created_by=by,
        expires_at=expires,
        revoked_at=revoked,
        revoked_by=rby,
        replaces=replaces,
    )


def decision_audit(a: NewAction) -> dict[str, Any]:
    """What the audit log keeps of a recorded decision (before redaction)."""
    return {
        "action_id": a.id,
        "idempotency_key": a.idem_key,
        "state": a.state.value,
        "step": a.step,
        "decision": dict(a.decision),
    }


def approval_audit(a: NewAction) -> dict[str, Any] | None:
    """What the audit log keeps of the approval request a decision opens, if any."""
    approval = a.approval
    if approval is None:
        return None
    return {
        "approval_id": approval.id,
        "action_id": a.id,
        "binding": approval.binding,
        "roles": list(approval.roles),
        "count": approval.count,
        "requested_by": list(approval.requested_by),
        "expires_at": approval.expires_at,
    }


INSERT_ACTION_COLUMNS = (
    "id, run_id, agent, tool, step, state, outcome, code, reasons, args, idem_key, "
    "request_hash, approval_id, owner, decided_at, est_usd, est_tokens, stage, rule_ids, "
    "mode, policy_revision, inputs"
)
"""What `action_row` gives values for, in order."""


def action_row(a: NewAction) -> tuple[Any, ...]:
    """A new action as the columns `INSERT_ACTION_COLUMNS` names: the decision's stage,
    rule ids, mode and inputs come from its JSON form (``a.decision``)."""
    d = a.decision
    rules = d.get("rules")
    inputs = d.get("inputs")
    return (
        a.id,
        a.run_id,
        a.agent,
        a.tool,
        a.step,
        a.state.value,
        a.outcome,
        a.code,
        canonical_json(list(a.reasons)).decode("utf-8"),
        canonical_json(dict(a.args)).decode("utf-8"),
        a.idem_key,
        a.request_hash,
        a.approval.id if a.approval else None,
        a.owner,
        a.decided_at,
        a.est_usd,
        a.est_tokens,
        d.get("stage"),
        canonical_text([r["id"] for r in rules]) if rules is not None else None,
        d.get("mode"),
        a.policy_revision,
        canonical_text(inputs) if inputs is not None else None,
    )


def recorded_query(
    *,
    seq: LiteralString,
    placeholder: LiteralString,
    run_id: str | None,
    agent: str | None,
    since: float | None,
    until: float | None,
    inputs: bool,
) -> tuple[LiteralString, list[Any]]:
    """The SELECT of `DurableStore.recorded_decisions` for both stores: `seq` is the
    column that numbers actions in the order they were recorded (``rowid``, ``n``),
    `placeholder` the driver's parameter marker (``?``, ``%s``)."""
    where: list[LiteralString] = []
    params: list[Any] = []
    clauses: tuple[tuple[LiteralString, Any], ...] = (
        ("a.run_id = ", run_id),
        ("a.agent = ", agent),
        ("a.decided_at >= ", since),
        ("a.decided_at < ", until),
    )
    for clause, value in clauses:
        if value is not None:
            where.append(clause + placeholder)
            params.append(value)
    # only constant column names and placeholders are formatted in; values are parameters
    sql = (
        f"SELECT a.id, a.{seq}, a.run_id, a.agent, a.tool, a.step, a.decided_at, a.outcome, "  # noqa: S608
        "a.code, a.args, a.stage, a.rule_ids, a.mode, a.policy_revision, "
        f"{'a.inputs' if inputs else 'NULL'}, p.used_at, a.est_usd, a.est_tokens "
        "FROM actions a LEFT JOIN approvals p ON p.id = a.approval_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY a.decided_at, a.{seq}"
    )
    return sql, params


def recorded_decision(row: Sequence[Any]) -> RecordedDecision:
    """A recorded decision from a row of `recorded_query`."""
    (
        id_,
        seq,
        run_id,
        agent,
        tool,
        step,
        decided_at,
        outcome,
        code,
        args,
        stage,
        rule_ids,
        mode,
        revision,
        inputs,
        used_at,
        est_usd,
        est_tokens,
    ) = row
    return RecordedDecision(
        action_id=id_,
        seq=seq,
        run_id=run_id,
        agent=agent,
        tool=tool,
        step=step,
        decided_at=decided_at,
        outcome=outcome,
        code=code,
        args=json.loads(args),
        stage=stage,
        rule_ids=tuple(json.loads(rule_ids)) if rule_ids is not None else (),
        mode=mode,
        policy_revision=revision,
        inputs=loads(inputs),
        approved_at=used_at,
        est_usd=est_usd,
        est_tokens=est_tokens,
    )


def sources_json(sources: Sequence[PolicySource]) -> str:
    """A revision's sources as the ``policy_revisions.sources`` column keeps them."""
    return canonical_text([{"name": s.name, "text": s.text, "kind": s.kind} for s in sources])


def revision_sources(raw: str) -> tuple[PolicySource, ...]:
    """The sources `sources_json` wrote."""
    items = cast(list[dict[str, str]], json.loads(raw))
    return tuple(
        PolicySource(name=i["name"], text=i["text"], kind=i.get("kind", "policy")) for i in items
    )


def outcome_audit(o: ActionOutcome) -> dict[str, Any]:
    """What the audit log keeps of an action's outcome (before redaction)."""
    return {
        "action_id": o.action_id,
        "run_id": o.run_id,
        "tool": o.tool,
        "state": o.state.value,
        "how": o.how,
        "attempts": o.attempts,
        "duration_ms": round(o.duration_ms, 3),
        "result": o.result,
        "error": dict(o.error) if o.error is not None else None,
    }


def verdict_audit(
    request: ApprovalRequest, verdict: Verdict, status: ApprovalStatus
) -> dict[str, Any]:
    """What the audit log keeps of a verdict, with the request's status after it."""
    return {
        "approval_id": request.id,
        "action_id": request.action_id,
        "approver": verdict.approver,
        "role": verdict.role,
        "verdict": "approve" if verdict.approve else "deny",
        "reason": verdict.reason,
        "status": status.value,
    }
