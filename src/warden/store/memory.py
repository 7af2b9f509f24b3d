"""The in-memory state store: fast, thread-safe, gone when the process ends.

Used by tests, benchmarks, `warden policy test` and embedded gates that need no
durability. Each kind of state has its own lock, so budget reservations never wait for
breaker bookkeeping.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from warden.breakers import BreakerConfig, BreakerState, Phase, claim_probe, current_phase, record
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation, check
from warden.clock import SystemClock
from warden.errors import GateError
from warden.history import ActionRecord
from warden.killswitch import KillRecord, kill_scopes, parse_scope

__all__ = ["MemoryStore"]

_HISTORY_CAP = 100_000


class MemoryStore:
    """A `StateStore` held in this process's memory."""

    shared_budgets = False

    def __init__(self) -> None:
        self._kills: dict[str, KillRecord] = {}
        self._budget_lock = threading.Lock()
        self._ledgers: dict[str, Ledger] = {}
        self._open: dict[int, Reservation] = {}
        self._next_reservation = 0
        self._loop_lock = threading.Lock()
        self._seen: dict[str, dict[str, int]] = defaultdict(dict)
        self._breaker_lock = threading.Lock()
        self._breakers: dict[str, BreakerState] = {}
        self._history_lock = threading.Lock()
        self._history: dict[str, list[ActionRecord]] = defaultdict(list)
        self._facts: dict[str, dict[Any, Any]] = defaultdict(dict)

    # kill switch -----------------------------------------------------------------------
    def killed(self, agent: str, tool: str) -> KillRecord | None:
        kills = self._kills
        if not kills:
            return None
        for scope in kill_scopes(agent, tool):
            found = kills.get(scope)
            if found is not None:
                return found
        return None

    def set_kill(self, scope: str, *, engaged: bool, by: str, reason: str, at: float) -> None:
        parse_scope(scope)
        if engaged:
            self._kills[scope] = KillRecord(scope=scope, by=by, reason=reason, at=at)
        else:
            self._kills.pop(scope, None)

    def kills(self) -> Sequence[KillRecord]:
        return list(self._kills.values())

    # budgets ---------------------------------------------------------------------------
    def reserve(
        self, run_id: str, limits: BudgetLimits, amounts: Amounts, now: float
    ) -> Reservation | BudgetBreach:
        with self._budget_lock:
            ledger = self._ledgers.get(run_id)
            if ledger is None:
                ledger = self._ledgers[run_id] = Ledger(started_at=now)
            breach = check(ledger, limits, amounts, now)
            if breach is not None:
                return breach
            ledger.reserve(amounts)
            self._next_reservation += 1
            res = Reservation(run_id=run_id, amounts=amounts, id=self._next_reservation)
            self._open[res.id] = res
            return res

    def _close(self, reservation: Reservation) -> Ledger:
        """Take a reservation off its run's ledger.

        A reservation this store did not hand out (id 0: made by another process sharing
        the database, or by this one before a restart, as `Executor.report` settles them)
        holds nothing here: it counts as already released, and a settle commits only the
        actual usage (to the run's ledger, opened now if this process has none)."""
        if reservation.id == 0:
            ledger = self._ledgers.get(reservation.run_id)
            if ledger is None:
                ledger = self._ledgers[reservation.run_id] = Ledger(
                    started_at=SystemClock().timestamp()
                )
            return ledger
        if self._open.pop(reservation.id, None) is None:
            raise GateError(
                "W-GATE-001", f"reservation {reservation.id} was already settled or released"
            )
        ledger = self._ledgers[reservation.run_id]
        ledger.unreserve(reservation.amounts)
        return ledger

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        with self._budget_lock:
            self._close(reservation).commit(actual)

    def release(self, reservation: Reservation) -> None:
        with self._budget_lock:
            self._close(reservation)

    def add_usage(self, run_id: str, amounts: Amounts, now: float) -> None:
        with self._budget_lock:
            ledger = self._ledgers.get(run_id)
            if ledger is None:
                ledger = self._ledgers[run_id] = Ledger(started_at=now)
            ledger.commit(amounts)

    def ledger(self, run_id: str) -> Ledger | None:
        return self._ledgers.get(run_id)

    def credit_wait(self, run_id: str, seconds: float) -> None:
        """Leave `seconds` spent waiting for people out of the run's wall time."""
        with self._budget_lock:
            ledger = self._ledgers.get(run_id)
            if ledger is not None:
                ledger.started_at += max(0.0, seconds)

    # loops -----------------------------------------------------------------------------
    def note_call(self, run_id: str, fingerprint: str) -> int:
        with self._loop_lock:
            seen = self._seen[run_id]
            count = seen.get(fingerprint, 0) + 1
            seen[fingerprint] = count
            return count

    # breakers --------------------------------------------------------------------------
    def _breaker(self, agent: str) -> BreakerState:
        state = self._breakers.get(agent)
        if state is None:
            state = self._breakers[agent] = BreakerState()
        return state

    def breaker_check(
        self, agent: str, config: BreakerConfig, now: float, *, want_probe: bool
    ) -> tuple[Phase, bool]:
        with self._breaker_lock:
            state = self._breaker(agent)
            if state.phase is Phase.CLOSED:
                return Phase.CLOSED, False
            if want_probe and claim_probe(state, config, now):
                return Phase.HALF_OPEN, True
            return current_phase(state, config, now), False

    def breaker_record(
        self, agent: str, config: BreakerConfig, *, ok: bool, now: float, probe: bool
    ) -> Phase:
        with self._breaker_lock:
            return record(self._breaker(agent), config, ok, now, probe=probe)

    def breaker_return_probe(self, agent: str) -> None:
        with self._breaker_lock:
            self._breaker(agent).probe_out = False

    def breaker_state(self, agent: str) -> BreakerState | None:
        return self._breakers.get(agent)

    # history ---------------------------------------------------------------------------
    def record_action(self, agent: str, record: ActionRecord) -> None:
        with self._history_lock:
            records = self._history[agent]
            records.append(record)
            if len(records) > _HISTORY_CAP:
                # a new list: a reader still scanning the old one is not disturbed
                self._history[agent] = records[_HISTORY_CAP // 2 :]

    def history(self, agent: str) -> Sequence[ActionRecord]:
        return self._history.get(agent, ())

    def fact_cache(self, run_id: str) -> dict[Any, Any]:
        return self._facts[run_id]

    def forget_run(self, run_id: str) -> None:
        with self._budget_lock:
            self._ledgers.pop(run_id, None)
        with self._loop_lock:
            self._seen.pop(run_id, None)
        self._facts.pop(run_id, None)
