"""Run budgets: reserve before a call, settle after it, release if it never ran.

A run's ledger counts what is *committed* (settled calls, model usage) and what is
*reserved* (calls decided but not yet settled). A reservation succeeds only if committed
plus reserved plus the request stays within every limit, so concurrent callers can never
overspend: the store applies `check` and the update under one lock (or one conditional
UPDATE), and no quantity ever goes negative.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Amounts", "BudgetBreach", "BudgetLimits", "Ledger", "Reservation", "check"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BudgetLimits:
    """A run's limits; None disables a limit."""

    max_usd: float | None = None
    """Most spend per run (model and tool cost), in USD."""
    max_tool_calls: int | None = None
    """Most tool calls per run."""
    max_tokens: int | None = None
    """Most model tokens per run."""
    max_wall_seconds: float | None = None
    """Longest a run may go on, from its first call."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Amounts:
    """A quantity of budget: what a call reserves or what it turned out to cost."""

    calls: int = 0
    usd: float = 0.0
    tokens: int = 0

    def __post_init__(self) -> None:
        if self.calls < 0 or self.usd < 0 or self.tokens < 0 or self.usd != self.usd:
            raise ValueError("budget amounts cannot be negative")


@dataclass(kw_only=True, slots=True)
class Ledger:
    """One run's budget state. Mutated only by a store, under its lock."""

    started_at: float
    committed_calls: int = 0
    committed_usd: float = 0.0
    committed_tokens: int = 0
    reserved_calls: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0

    @property
    def committed(self) -> tuple[int, float, int]:
        """(calls, USD, tokens) committed: what a store persists for the run."""
        return self.committed_calls, self.committed_usd, self.committed_tokens

    @property
    def calls(self) -> int:
        return self.committed_calls + self.reserved_calls

    @property
    def usd(self) -> float:
        return self.committed_usd + self.reserved_usd

    @property
    def tokens(self) -> int:
        return self.committed_tokens + self.reserved_tokens

    def reserve(self, amounts: Amounts) -> None:
        self.reserved_calls += amounts.calls
        self.reserved_usd += amounts.usd
        self.reserved_tokens += amounts.tokens

    def unreserve(self, amounts: Amounts) -> None:
        self.reserved_calls = max(0, self.reserved_calls - amounts.calls)
        self.reserved_usd = max(0.0, self.reserved_usd - amounts.usd)
        self.reserved_tokens = max(0, self.reserved_tokens - amounts.tokens)

    def commit(self, amounts: Amounts) -> None:
        self.committed_calls += amounts.calls
        self.committed_usd += amounts.usd
        self.committed_tokens += amounts.tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class Reservation:
    """Budget held for one decided call."""

    run_id: str
    amounts: Amounts
    id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class BudgetBreach:
    """Why a reservation was refused."""

    code: str
    """W-BUD-001 calls, -002 USD, -003 tokens, -004 wall time."""
    reason: str
    limit: float
    would_be: float


def check(
    ledger: Ledger, limits: BudgetLimits, request: Amounts, now: float
) -> BudgetBreach | None:
    """The first limit `request` would break, or None. Pure: the store holds the lock."""
    if limits.max_wall_seconds is not None:
        elapsed = now - ledger.started_at
        if elapsed > limits.max_wall_seconds:
            return BudgetBreach(
                code="W-BUD-004",
                reason=f"run has taken {elapsed:.1f}s, "
                f"over max_wall_seconds {limits.max_wall_seconds:g}",
                limit=limits.max_wall_seconds,
                would_be=elapsed,
            )
    if limits.max_tool_calls is not None:
        calls = ledger.calls + request.calls
        if calls > limits.max_tool_calls:
            return BudgetBreach(
                code="W-BUD-001",
                reason=f"tool call {calls} would exceed max_tool_calls {limits.max_tool_calls}",
                limit=limits.max_tool_calls,
                would_be=calls,
            )
    if limits.max_tokens is not None:
        tokens = ledger.tokens + request.tokens
        if tokens > limits.max_tokens:
            return BudgetBreach(
                code="W-BUD-003",
                reason=f"{tokens} tokens would exceed max_tokens {limits.max_tokens}",
                limit=limits.max_tokens,
                would_be=tokens,
            )
    if limits.max_usd is not None:
        usd = ledger.usd + request.usd
        if usd > limits.max_usd + 1e-12:
            return BudgetBreach(
                code="W-BUD-002",
                reason=f"${usd:.4f} would exceed max_usd_per_task ${limits.max_usd:g}",
                limit=limits.max_usd,
                would_be=usd,
            )
    return None
