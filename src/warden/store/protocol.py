"""What the gate needs from a state store.

The gate keeps no state of its own: kill switches, budgets, loop counts, breakers and
action history live behind this protocol, so the same gate runs on the in-memory store
(this package), on SQLite, or on PostgreSQL shared by many processes. Every method that
reads and then writes does both atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from warden.approvals import ApprovalRequest, ApprovalStatus, Verdict
from warden.breakers import BreakerConfig, BreakerState, Phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation
from warden.history import ActionRecord
from warden.identity import ApiKey
from warden.killswitch import KillRecord
from warden.policy.evaluate import PolicySource
from warden.runs import ActionState, ActionView, RunStatus, RunView

__all__ = [
    "ActionOutcome",
    "DurableStore",
    "NewAction",
    "RecordedDecision",
    "StateStore",
    "StoredRevision",
]


class StateStore(Protocol):
    shared_budgets: bool
    """Whether budget reservations live where every process sees them (PostgreSQL), so
    a reservation one process made can be settled by another; False when they live in
    this process's memory (the in-memory and SQLite stores) and die with it."""

    # kill switch -----------------------------------------------------------------------
    def killed(self, agent: str, tool: str) -> KillRecord | None:
        """The engaged kill switch covering this call, if any."""
        ...

    def set_kill(self, scope: str, *, engaged: bool, by: str, reason: str, at: float) -> None: ...

    def kills(self) -> Sequence[KillRecord]: ...

    # budgets ---------------------------------------------------------------------------
    def reserve(
        self, run_id: str, limits: BudgetLimits, amounts: Amounts, now: float
    ) -> Reservation | BudgetBreach:
        """Hold `amounts` for a call if every limit allows it; atomic."""
        ...

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        """Replace a reservation by what the call really cost."""
        ...

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back (the call did not run)."""
        ...

    def add_usage(self, run_id: str, amounts: Amounts, now: float) -> None:
        """Commit usage that was not reserved (model tokens and cost)."""
        ...

    def ledger(self, run_id: str) -> Ledger | None: ...

    # loops -----------------------------------------------------------------------------
    def note_call(self, run_id: str, fingerprint: str) -> int:
        """Count one more proposal of this exact call in this run; returns the count."""
        ...

    # breakers --------------------------------------------------------------------------
    def breaker_check(
        self, agent: str, config: BreakerConfig, now: float, *, want_probe: bool
    ) -> tuple[Phase, bool]:
        """The breaker's phase, and whether this caller got the half-open probe slot."""
        ...

    def breaker_record(
        self, agent: str, config: BreakerConfig, *, ok: bool, now: float, probe: bool
    ) -> Phase: ...

    def breaker_return_probe(self, agent: str) -> None:
        """Give back a probe slot that was claimed but not used."""
        ...

    def breaker_state(self, agent: str) -> BreakerState | None: ...

    # history and per-run caches --------------------------------------------------------
    def record_action(self, agent: str, record: ActionRecord) -> None: ...

    def history(self, agent: str) -> Sequence[ActionRecord]:
        """The agent's action records, oldest first."""
        ...

    def fact_cache(self, run_id: str) -> dict[Any, Any]: ...

    def forget_run(self, run_id: str) -> None:
        """Drop a finished run's ledger, loop counts and fact cache."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class NewAction:
    """A decided action, recorded with its decision before anything executes."""

    id: str
    run_id: str
    agent: str
    tool: str
    step: int | None
    state: ActionState
    outcome: str
    """The decision's outcome."""
    code: str | None
    reasons: tuple[str, ...]
    args: Mapping[str, Any]
    idem_key: str | None
    """Claimed for the agent in the same transaction; None for a deny (nothing to replay)."""
    request_hash: str
    owner: str
    decided_at: float
    policy_revision: str
    started_by: str | None
    decision: Mapping[str, Any]
    """The decision as JSON, for the audit record."""
    redact_fields: frozenset[str] = frozenset()
    approval: ApprovalRequest | None = None
    run_status: RunStatus | None = None
    """A new status for the run (waiting, escalated, killed), if the decision changes it."""
    run_reason: str | None = None
    est_usd: float = 0.0
    """The cost the call reserved; recovery charges it to the run if the call took effect."""
    est_tokens: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionOutcome:
    """What happened when an action executed (or what recovery found out)."""

    action_id: str
    run_id: str
    agent: str
    tool: str
    state: ActionState
    at: float
    result: Any = None
    error: Mapping[str, Any] | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    redact_fields: frozenset[str] = frozenset()
    ledger: tuple[int, float, int] | None = None
    """The run's committed calls, USD and tokens after settling, to persist."""
    run_status: RunStatus | None = None
    run_reason: str | None = None
    release_key: bool = False
    """Free the idempotency key (the call never took effect and may be proposed again)."""
    how: str = "executed"
    """executed, reconciled, late (a timed-out call that returned), compensated."""
    expect: ActionState = ActionState.EXECUTING
    """The state the action must still be in; otherwise nothing is written."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStart:
    """Who a run is, for the first save of the runner's state (later saves repeat it)."""

    run_id: str
    agent: str
    policy_revision: str
    started_at: float
    started_by: str | None = None
    task: str | None = None
    """The task's own key (a ticket id), shown by `warden runs list`."""
    status: RunStatus | None = None
    """running or waiting, to (re)open the run; None leaves its status alone."""
    escalation: Mapping[str, Any] | None = None
    """The escalation packet, when the run stopped or waits for a person."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedDecision:
    """A recorded action as a replay reads it: the decision and what it read."""

    action_id: str
    seq: int
    """Its place in the order actions were recorded (SQLite's rowid, PostgreSQL's ``n``);
    with `decided_at`, the decision order."""
    run_id: str
    agent: str
    tool: str
    step: int | None
    decided_at: float
    """When it was decided: the gate's ``now``."""
    outcome: str
    code: str | None
    args: Mapping[str, Any]
    """The validated arguments (``{}`` for a call stopped before they were validated)."""
    stage: str | None
    """The check that settled it; None for an action recorded before Warden kept
    decision inputs (schema version 4)."""
    rule_ids: tuple[str, ...] = ()
    mode: str | None = None
    policy_revision: str | None = None
    inputs: Mapping[str, Any] | None = None
    """`Decision.inputs` as recorded; None for an action recorded before Warden kept
    them (or when the caller did not ask for them)."""
    approved_at: float | None = None
    """When its approval was spent and it started executing, if it was."""
    est_usd: float = 0.0
    est_tokens: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredRevision:
    """A policy revision's sources, as a gate that loaded it stored them."""

    revision: str
    sources: tuple[PolicySource, ...]
    first_seen: float
    """When a gate first loaded it here (seconds since the epoch)."""


class DurableStore(StateStore, Protocol):
    """A state store that also keeps runs, actions, approvals and the audit log durably.

    Every ``record_*`` method returns only once its write is committed.
    """

    owner: str
    """This process's identity (host:pid:boot), written on the actions it executes."""

    seq_gaps: bool
    """Whether the audit log's global numbers may skip (a PostgreSQL sequence does where
    a transaction rolled back); verify with ``verify_rows(..., contiguous=False)`` then."""

    def record_decision(self, action: NewAction) -> ActionView | None:
        """Record the decision, the action and its key claim together.

        Returns None once committed, or the action already holding the idempotency key
        (nothing is written then)."""
        ...

    def record_outcome(self, outcome: ActionOutcome, *, wait: bool = True) -> bool:
        """Record an outcome if the action is still in ``outcome.expect`` (a compare-and-set,
        so two recoverers never both settle one action); returns whether it was written.

        With ``wait=False`` the write rides with the next write this store commits, or is
        committed in the background a moment later if none comes (always before any later
        write); it returns True. A crash before that commit leaves the action executing, for
        recovery to settle (reconcile, or outcome unknown)."""
        ...

    def action(self, action_id: str) -> ActionView | None: ...

    def action_by_key(self, agent: str, key: str) -> ActionView | None: ...

    def open_actions(self, state: ActionState) -> Sequence[ActionView]:
        """Actions in `state` (executing ones, for recovery)."""
        ...

    def start_approved(self, approval_id: str, action_id: str, *, owner: str, at: float) -> None:
        """Spend an approved approval and move its action to executing, atomically.

        Raises ApprovalError W-APR-004 if another caller already did."""
        ...

    def approval(self, approval_id: str) -> ApprovalRequest | None: ...

    def approvals(
        self, status: ApprovalStatus | None = None, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]: ...

    def add_verdict(
        self, approval_id: str, judge: Callable[[ApprovalRequest], Verdict]
    ) -> ApprovalRequest:
        """Apply `judge` to the current request inside the write transaction and store the
        verdict it returns (it raises to refuse); returns the updated request."""
        ...

    def expire_approvals(self, now: float) -> int:
        """Mark pending requests past their expiry expired, and their actions rejected."""
        ...

    def run(self, run_id: str) -> RunView | None: ...

    def runs(self, *, limit: int = 50, status: RunStatus | None = None) -> Sequence[RunView]: ...

    def end_run(
        self, run_id: str, status: RunStatus, *, at: float, outcome: str | None, reason: str | None
    ) -> None: ...

    def save_run_state(
        self, start: RunStart, state: Mapping[str, Any], *, at: float, wait: bool = True
    ) -> None:
        """Save the runner's state of a run (its conversation, timeline, escalation packet)
        and the run's budget figures, creating the run if it is new. Waits for the commit;
        with ``wait=False`` it returns at once, and the store must commit the save no later
        than (in the same transaction as, or before) the next write it commits."""
        ...

    def run_state(self, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The runner's saved state of a run and its escalation packet, or None."""
        ...

    def credit_wait(self, run_id: str, seconds: float) -> None:
        """Leave `seconds` the run spent waiting for people out of its wall time."""
        ...

    def audit(
        self,
        stream: str,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: float,
        redact_fields: frozenset[str] = frozenset(),
    ) -> None:
        """Append one audit record and wait for it to be committed."""
        ...

    def audit_rows(self, *, after: int = 0) -> Iterator[tuple[int, str, int, bytes, bytes]]:
        """Every audit record after `after`, as ``(seq, stream, stream_seq, body, hash)``,
        in global order (what `warden.audit.verify.verify_rows` reads)."""
        ...

    # replay ------------------------------------------------------------------------------
    def save_policy_revision(
        self, revision: str, sources: Sequence[PolicySource], *, at: float
    ) -> None:
        """Keep a policy revision's sources, once (a revision already kept stays as it
        is): a gate saves the revision it loads, so its decisions can be replayed."""
        ...

    def policy_revision(self, revision: str) -> StoredRevision | None:
        """A kept revision's sources, or None."""
        ...

    def recorded_decisions(
        self,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        since: float | None = None,
        until: float | None = None,
        inputs: bool = True,
    ) -> Sequence[RecordedDecision]:
        """The recorded actions of a run, or decided in ``[since, until)`` (of one agent),
        in decision order; without `inputs`, their inputs are not read (history)."""
        ...

    # keys ---------------------------------------------------------------------------------
    def add_key(self, key: ApiKey, *, retire_at: float | None = None) -> None:
        """Store a new key (its hash only) and audit its creation. A rotation
        (``key.replaces`` set) also moves the old key's expiry to `retire_at` (the end of
        its grace period), in the same transaction."""
        ...

    def key(self, key_id: str) -> ApiKey | None: ...

    def keys(self) -> Sequence[ApiKey]:
        """Every key, newest first, revoked and expired ones included."""
        ...

    def revoke_key(self, key_id: str, *, at: float, by: str) -> ApiKey:
        """Revoke a key and audit it; W-AUTH-002 when there is no such key."""
        ...

    def close(self) -> None: ...
