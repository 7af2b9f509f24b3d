"""What the gate needs from a state store.

The gate keeps no state of its own: kill switches, budgets, loop counts, breakers and
action history live behind this protocol, so the same gate runs on the in-memory store
(this package), on SQLite, or on PostgreSQL shared by many processes. Every method that
reads and then writes does both atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from warden.breakers import BreakerConfig, BreakerState, Phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation
from warden.history import ActionRecord
from warden.killswitch import KillRecord

__all__ = ["StateStore"]


class StateStore(Protocol):
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
