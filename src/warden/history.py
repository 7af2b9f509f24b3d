"""``history`` in a condition: this agent's earlier actions, and the order of this run's.

    history.count(tool='create_refund', within='24h') < 20
    history.sum_of('amount_usd', tool='create_refund', within='1d') + amount_usd <= 500
    history.happened_before('lookup_customer')            # earlier in this run
    history.happened_before('lookup_customer', 'list_invoices')
    history.approved_before(tool='create_refund', within='30d')

Only actions the gate allowed count, unless ``outcome='any'`` (or another outcome) is given.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from warden.durations import parse_duration

__all__ = ["ActionRecord", "HistoryView"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionRecord:
    """One decided action, as history sees it."""

    at: float
    """When it was decided (seconds since the epoch)."""
    run_id: str
    tool: str
    outcome: str
    args: dict[str, Any]
    approved: bool = False
    """True once people approved it (set by the approvals flow)."""


class HistoryView:
    """Read-only questions over an agent's action records (sorted by time)."""

    __slots__ = ("_now", "_records", "_run_id", "_tool")

    def __init__(
        self, records: Sequence[ActionRecord], *, run_id: str, tool: str, now: float
    ) -> None:
        self._records = records
        self._run_id = run_id
        self._tool = tool
        self._now = now

    def _window(self, within: str | float | None) -> Sequence[ActionRecord]:
        if within is None:
            return self._records
        horizon = self._now - parse_duration(within)
        start = bisect_left(self._records, horizon, key=lambda r: r.at)
        return self._records[start:]

    def _select(
        self, tool: str | None, within: str | float | None, outcome: str
    ) -> list[ActionRecord]:
        return [
            r
            for r in self._window(within)
            if (tool is None or r.tool == tool) and (outcome == "any" or r.outcome == outcome)
        ]

    def count(
        self, tool: str | None = None, within: str | float | None = None, outcome: str = "allow"
    ) -> int:
        """How many earlier actions (of `tool`, within the window) had `outcome`."""
        return len(self._select(tool, within, outcome))

    def sum_of(
        self,
        field: str,
        tool: str | None = None,
        within: str | float | None = None,
        outcome: str = "allow",
    ) -> float:
        """The sum of argument `field` over the selected earlier actions."""
        total = 0.0
        for r in self._select(tool, within, outcome):
            value = r.args.get(field, 0)
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += value
        return total

    def approved_before(self, tool: str | None = None, within: str | float | None = None) -> bool:
        """Whether people approved an earlier action (of `tool`, within the window)."""
        tool = tool or self._tool
        return any(r.approved for r in self._window(within) if r.tool == tool)

    def seen(self, tool: str) -> bool:
        """Whether `tool` was allowed earlier in this run."""
        return any(
            r.run_id == self._run_id and r.tool == tool and r.outcome == "allow"
            for r in self._records
        )

    def happened_before(self, first: str, second: str | None = None) -> bool:
        """Whether `first` was allowed in this run before `second` (default: this call)."""
        mine = [r for r in self._records if r.run_id == self._run_id and r.outcome == "allow"]
        first_at = next((i for i, r in enumerate(mine) if r.tool == first), None)
        if first_at is None:
            return False
        if second is None:
            return True
        second_at = next((i for i, r in enumerate(mine) if r.tool == second), None)
        return second_at is not None and first_at < second_at
