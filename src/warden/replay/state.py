"""The recorded state: a `StateStore` that answers the gate from one recorded decision.

`RecordedState.begin` sets the decision a replay is about to decide again; from then on
the gate's reads get what that decision read (`Decision.inputs`): the kill switch, the
loop count, the budget check, the breaker, the run's ledger. Its writes go nowhere.

History is not part of a decision's inputs: `RecordedState.history` rebuilds it from the
agent's recorded actions decided before the current one (their recorded outcomes and
arguments), and the approvals spent before it, as a gate's store holds them: each action
as decided, each spent approval as an allowed, approved record from when it started.

When a check the recording never reached asks (the recorded gate stopped the call
earlier; a store with shared budgets reads the ledger only for policies that read
``run``), the answer is assumed (no repeat, within budget, breaker closed, no run
figures) and `RecordedState.notes` says so.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from warden.breakers import BreakerConfig, BreakerState, Phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation
from warden.facts import FactError
from warden.history import ActionRecord
from warden.killswitch import KillRecord
from warden.store.protocol import RecordedDecision, StoredRevision

__all__ = ["RecordedFacts", "RecordedState", "Recordings", "ReplayClock"]

_REACHED = {  # the last check a decision that settled at this stage went through
    "kill_switch": 1,
    "identity": 2,
    "contract": 3,
    "loop": 4,
    "budget": 5,
    "policy": 7,
    "breaker": 8,
    "mode": 8,
}
_BUDGET, _POLICY = _REACHED["budget"], _REACHED["policy"]


class Recordings(Protocol):
    """What a replay reads from a durable store (`DurableStore` has it)."""

    def policy_revision(self, revision: str) -> StoredRevision | None: ...

    def recorded_decisions(
        self,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        since: float | None = None,
        until: float | None = None,
        inputs: bool = True,
    ) -> Sequence[RecordedDecision]: ...


class RecordedFacts(Mapping[str, Any]):
    """The facts a decision consulted, given to the replayed call: the recorded values,
    and the recorded provider failures raised again. A name no provider knew then is not
    among them: the providers are asked, and (as then) know nothing of it, or answer now
    (which the replay reports as looked up now)."""

    __slots__ = ("_errors", "_values")

    def __init__(self, values: Mapping[str, Any], errors: Mapping[str, str | None]) -> None:
        self._values = values
        self._errors = {name: why for name, why in errors.items() if why is not None}

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._errors:
            raise FactError(self._errors[name])
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._errors

    def __iter__(self) -> Iterator[str]:
        return iter({**self._values, **self._errors})

    def __len__(self) -> int:
        return len(self._values) + sum(1 for n in self._errors if n not in self._values)


@dataclass(slots=True)
class _History:
    """One agent's recorded history, sorted by (time, record order)."""

    keys: list[tuple[float, int]] = field(default_factory=lambda: list[tuple[float, int]]())
    records: list[ActionRecord] = field(default_factory=lambda: list[ActionRecord]())


class RecordedState:
    """A `StateStore` that answers the gate from one recorded decision at a time.

    `begin` sets the decision; the gate's reads then get what that decision read, its
    writes go nowhere. History comes from `recordings`, one agent at a time, when a
    policy first reads it."""

    shared_budgets = True
    """The gate reads the ledger only for a policy that reads ``run``: a ledger it asks
    for and the recording lacks is then an assumption worth a note."""

    def __init__(self, recordings: Recordings, *, history_s: float) -> None:
        self._recordings = recordings
        self._history_s = history_s
        self._histories: dict[str, _History] = {}
        self._spans: dict[str, tuple[float, float]] = {}
        self._facts: dict[str, dict[Any, Any]] = defaultdict(dict)
        self._current: RecordedDecision | None = None
        self._inputs: Mapping[str, Any] = {}
        self._reached = 0
        self.notes: list[str] = []
        """What this decision's replay had to assume."""
        self.asked = False
        """Whether a fact provider was asked (a fact the recording lacks)."""

    def expect(self, decisions: Iterable[RecordedDecision]) -> None:
        """Note the span of time each agent's decisions cover, so its history is read
        once (again, if these reach outside what was read)."""
        for d in decisions:
            lo, hi = self._spans.get(d.agent, (d.decided_at, d.decided_at))
            span = (min(lo, d.decided_at), max(hi, d.decided_at))
            if span != (lo, hi):
                self._histories.pop(d.agent, None)
            self._spans[d.agent] = span

    def begin(self, decision: RecordedDecision, inputs: Mapping[str, Any]) -> None:
        self._current = decision
        self._inputs = inputs
        self._reached = _REACHED.get(decision.stage or "", 0)
        self.notes = []
        self.asked = False

    def _assume(self, note: str) -> None:
        stage = self._current.stage if self._current is not None else None
        self.notes.append(f"{note} (the recorded decision stopped at {stage})")

    # kill switch -----------------------------------------------------------------------
    def killed(self, agent: str, tool: str) -> KillRecord | None:
        kill = self._inputs.get("kill")
        if kill is None:
            return None
        return KillRecord(scope=kill["scope"], by=kill["by"], reason=kill["reason"], at=0.0)

    def set_kill(self, scope: str, *, engaged: bool, by: str, reason: str, at: float) -> None:
        """A replay changes nothing."""

    def kills(self) -> Sequence[KillRecord]:
        return ()

    # budgets ---------------------------------------------------------------------------
    def reserve(
        self, run_id: str, limits: BudgetLimits, amounts: Amounts, now: float
    ) -> Reservation | BudgetBreach:
        breach = self._inputs.get("budget")
        if breach is not None:
            return BudgetBreach(
                code=breach["code"],
                reason=breach["reason"],
                limit=breach["limit"],
                would_be=breach["would_be"],
            )
        if self._reached < _BUDGET:
            self._assume("budget not checked: assumed within budget")
        return Reservation(run_id=run_id, amounts=amounts, id=0)

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        """A replay changes nothing."""

    def release(self, reservation: Reservation) -> None:
        """A replay changes nothing."""

    def add_usage(self, run_id: str, amounts: Amounts, now: float) -> None:
        """A replay changes nothing."""

    def ledger(self, run_id: str) -> Ledger | None:
        if "ledger" not in self._inputs:
            if self._reached >= _POLICY:
                self.notes.append(
                    "run figures not recorded (budgets shared in a database are read only "
                    "for policies that read run): run.* read as zero"
                )
            else:
                self._assume("run figures not recorded: run.* read as zero")
            return None
        recorded = self._inputs["ledger"]
        if recorded is None:
            return None
        calls, usd, tokens, started = recorded
        return Ledger(
            started_at=started, committed_calls=calls, committed_usd=usd, committed_tokens=tokens
        )

    # loops -----------------------------------------------------------------------------
    def note_call(self, run_id: str, fingerprint: str) -> int:
        repeats = self._inputs.get("repeats")
        if repeats is None:
            self._assume("loop count not recorded: assumed the first")
            return 1
        return int(repeats)

    # breakers --------------------------------------------------------------------------
    def breaker_check(
        self, agent: str, config: BreakerConfig, now: float, *, want_probe: bool
    ) -> tuple[Phase, bool]:
        recorded = self._inputs.get("breaker")
        if recorded is None:
            if self._reached >= _POLICY:
                self.notes.append("breaker phase not recorded (no breaker then): assumed closed")
            else:
                self._assume("breaker phase not recorded: assumed closed")
            return Phase.CLOSED, False
        return Phase(recorded[0]), bool(recorded[1])

    def breaker_record(
        self, agent: str, config: BreakerConfig, *, ok: bool, now: float, probe: bool
    ) -> Phase:
        return Phase.CLOSED

    def breaker_return_probe(self, agent: str) -> None:
        """A replay changes nothing."""

    def breaker_state(self, agent: str) -> BreakerState | None:
        return None

    # history and per-run caches --------------------------------------------------------
    def record_action(self, agent: str, record: ActionRecord) -> None:
        """History comes from the recording, as recorded."""

    def history(self, agent: str) -> Sequence[ActionRecord]:
        """The agent's recorded actions before the current one (and approvals spent
        before it), within the stores' history horizon."""
        d = self._current
        if d is None:
            return ()
        h = self._histories.get(agent)
        if h is None:
            h = self._histories[agent] = self._load_history(agent, d)
        end = bisect_left(h.keys, (d.decided_at, d.seq))
        start = bisect_left(h.keys, (d.decided_at - self._history_s, -2))
        return h.records[start:end]

    def _load_history(self, agent: str, current: RecordedDecision) -> _History:
        lo, hi = self._spans.get(agent, (current.decided_at, current.decided_at))
        rows = self._recordings.recorded_decisions(
            agent=agent, since=lo - self._history_s, until=hi + 1.0, inputs=False
        )
        entries: list[tuple[tuple[float, int], ActionRecord]] = []
        for r in rows:
            args = dict(r.args)
            entries.append(
                (
                    (r.decided_at, r.seq),
                    ActionRecord(
                        at=r.decided_at, run_id=r.run_id, tool=r.tool, outcome=r.outcome, args=args
                    ),
                )
            )
            if r.approved_at is not None:  # as `Executor` records it when the action starts
                entries.append(
                    (
                        (r.approved_at, -1),
                        ActionRecord(
                            at=r.approved_at,
                            run_id=r.run_id,
                            tool=r.tool,
                            outcome="allow",
                            args=args,
                            approved=True,
                        ),
                    )
                )
        entries.sort(key=lambda e: e[0])
        return _History(keys=[k for k, _ in entries], records=[r for _, r in entries])

    def fact_cache(self, run_id: str) -> dict[Any, Any]:
        self.asked = True  # a provider is about to be asked: the fact was not recorded
        return self._facts[run_id]

    def forget_run(self, run_id: str) -> None:
        """A replay changes nothing."""


class ReplayClock:
    """The recorded decision's ``now``."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def timestamp(self) -> float:
        return self.at
