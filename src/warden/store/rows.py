"""Action and run rows as the PostgreSQL store selects them, and the views built from them.

The columns are those of the SQLite schema, in the same order, with JSON kept as text
(canonical JSON for arguments and reasons), so the two stores read alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from warden.runs import ActionState, ActionView, RunStatus, RunView

__all__ = ["ACTION_COLUMNS", "action_view", "loads", "run_view"]

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
