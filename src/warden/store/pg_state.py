"""The gate's hot state in PostgreSQL, shared by every replica: a `StateStore`.

- Budgets: one ``ledgers`` row per run. `reserve` is one conditional upsert (the limits
  are its WHERE clause), so no number of replicas can overspend; a refused reservation
  re-reads the row and explains it with `warden.budgets.check`. `settle` and `release`
  work from the reservation's amounts, so any replica can settle any reservation.
- Loop counts: an upsert that returns the new count.
- Breakers: a row per agent changed only under its lock, by ``warden_breaker_record``
  and ``warden_breaker_claim`` (see `warden.store.pg_schema`); the half-open probe slot
  is claimed in the database. `breaker_check` serves the phase read at most `poll_s` ago.
- Kill switches: a version counter polled every `poll_s` seconds, the switches re-read
  when it moved.
- History: an agent's actions from the ``actions`` table, re-read (only what is new) at
  most `poll_s` after the last read, plus what this process decided since.

Statements run on the pool's fast-commit connections (see `warden.store.pg_connection`).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from warden.breakers import BreakerConfig, BreakerState, Phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation, check
from warden.errors import StoreError
from warden.history import ActionRecord
from warden.killswitch import KillRecord, kill_scopes
from warden.store.pg_connection import Connection, Database

__all__ = ["SharedState"]

_HISTORY_CAP = 100_000
_HISTORY_OVERLAP = timedelta(seconds=2)
"""How far back a history refresh looks before the last one started, on the server's
clock: a transaction that took longer than this from insert to commit could be missed."""

_RESERVE = """
INSERT INTO ledgers AS l (run_id, started_at, reserved_calls, reserved_usd, reserved_tokens)
SELECT %(run)s, %(now)s, %(calls)s, %(usd)s, %(tokens)s
WHERE (%(max_calls)s::bigint IS NULL OR %(calls)s <= %(max_calls)s::bigint)
  AND (%(max_tokens)s::bigint IS NULL OR %(tokens)s <= %(max_tokens)s::bigint)
  AND (%(max_usd)s::float8 IS NULL OR %(usd)s <= %(max_usd)s::float8 + 1e-12)
ON CONFLICT (run_id) DO UPDATE SET
    reserved_calls = l.reserved_calls + excluded.reserved_calls,
    reserved_usd = l.reserved_usd + excluded.reserved_usd,
    reserved_tokens = l.reserved_tokens + excluded.reserved_tokens
WHERE (%(max_wall)s::float8 IS NULL OR %(now)s - l.started_at <= %(max_wall)s::float8)
  AND (%(max_calls)s::bigint IS NULL
       OR l.committed_calls + l.reserved_calls + excluded.reserved_calls <= %(max_calls)s::bigint)
  AND (%(max_tokens)s::bigint IS NULL
       OR l.committed_tokens + l.reserved_tokens + excluded.reserved_tokens
          <= %(max_tokens)s::bigint)
  AND (%(max_usd)s::float8 IS NULL
       OR (l.committed_usd + l.reserved_usd) + excluded.reserved_usd
          <= %(max_usd)s::float8 + 1e-12)
RETURNING 1
"""
# The same sums, in the same order, as `warden.budgets.check`: a reservation this
# statement refuses is one `check` refuses, and the other way round.

_SETTLE = """
UPDATE ledgers SET
    reserved_calls = greatest(0, reserved_calls - %(held_calls)s),
    reserved_usd = greatest(0.0, reserved_usd - %(held_usd)s),
    reserved_tokens = greatest(0, reserved_tokens - %(held_tokens)s),
    committed_calls = committed_calls + %(calls)s,
    committed_usd = committed_usd + %(usd)s,
    committed_tokens = committed_tokens + %(tokens)s
WHERE run_id = %(run)s
"""

_LEDGER = """
SELECT started_at, committed_calls, committed_usd, committed_tokens,
       reserved_calls, reserved_usd, reserved_tokens
  FROM ledgers WHERE run_id = %(run)s
UNION ALL
SELECT started_at + waited_s, calls, usd, tokens, 0, 0, 0
  FROM runs WHERE id = %(run)s AND NOT EXISTS (SELECT 1 FROM ledgers WHERE run_id = %(run)s)
"""

_HISTORY = """
SELECT a.id, a.decided_at, a.run_id, a.tool, a.outcome, a.args, false
  FROM actions a
 WHERE a.agent = %(agent)s AND {actions}
UNION ALL
SELECT 'approved:' || p.id, p.used_at, a.run_id, a.tool, 'allow', a.args, true
  FROM approvals p JOIN actions a ON a.id = p.action_id
 WHERE a.agent = %(agent)s AND p.used_at IS NOT NULL AND {approvals}
"""
_HISTORY_FIRST = _HISTORY.format(
    actions="a.decided_at >= (SELECT max(decided_at) FROM actions WHERE agent = %(agent)s)"
    " - %(span)s",
    approvals="p.used_at >= (SELECT max(decided_at) FROM actions WHERE agent = %(agent)s)"
    " - %(span)s",
)
_HISTORY_NEWER = _HISTORY.format(
    actions="a.recorded >= %(since)s", approvals="p.used_recorded >= %(since)s"
)


@dataclass(slots=True)
class _Breaker:
    """A breaker's phase as last read, and when (monotonic seconds)."""

    phase: Phase
    opened_at: float
    probe_out: bool
    probe_at: float
    read_at: float


@dataclass(slots=True)
class _History:
    """One agent's history as this process knows it."""

    rows: dict[str, ActionRecord] = field(default_factory=lambda: dict[str, ActionRecord]())
    """Read from the database, by action id (or ``approved:<approval id>``)."""
    mine: list[tuple[float, ActionRecord]] = field(
        default_factory=lambda: list[tuple[float, ActionRecord]]()
    )
    """Recorded by this process since the last read began (monotonic time, record)."""
    since: datetime | None = None
    """The server's clock when the last read began."""
    read_at: float = -math.inf
    merged: list[ActionRecord] | None = None
    """`rows` and `mine` by time; appended to in place while records come in order."""


class SharedState:
    """A `StateStore` in one PostgreSQL database that many processes share."""

    shared_budgets = True

    def __init__(self, db: Database, *, poll_s: float, history_days: float) -> None:
        self._db = db
        self._poll_s = poll_s
        self._history_s = history_days * 86_400.0
        self._kills: dict[str, KillRecord] = {}
        self._kill_version = -1
        self._kill_read_at = -math.inf
        self._kill_lock = threading.Lock()
        self._reservations = itertools.count(1)
        self._breakers: dict[str, _Breaker] = {}
        self._histories: dict[str, _History] = {}
        self._history_lock = threading.Lock()
        self._facts: dict[str, dict[Any, Any]] = defaultdict(dict)

    # --- kill switch ------------------------------------------------------------------

    def _refresh_kills(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._kill_read_at < self._poll_s:
            return
        if not self._kill_lock.acquire(blocking=force):
            return  # another thread is reading them: go on with what we have
        try:
            started = time.monotonic()
            if not force and started - self._kill_read_at < self._poll_s:
                return
            rows = self._db.rows(
                "SELECT m.value, k.scope, k.by, k.reason, k.at FROM meta m "
                "LEFT JOIN kills k ON true WHERE m.key = 'kill_version'"
            )
            version = int(rows[0][0]) if rows else 0
            if version != self._kill_version or force:
                self._kills = {
                    s: KillRecord(scope=s, by=b, reason=r, at=a)
                    for _, s, b, r, a in rows
                    if s is not None
                }
                self._kill_version = version
            self._kill_read_at = started
        finally:
            self._kill_lock.release()

    def killed(self, agent: str, tool: str) -> KillRecord | None:
        self._refresh_kills()
        kills = self._kills
        if not kills:
            return None
        for scope in kill_scopes(agent, tool):
            found = kills.get(scope)
            if found is not None:
                return found
        return None

    def kills(self) -> Sequence[KillRecord]:
        self._refresh_kills(force=True)
        return list(self._kills.values())

    # --- budgets ----------------------------------------------------------------------

    def reserve(
        self, run_id: str, limits: BudgetLimits, amounts: Amounts, now: float
    ) -> Reservation | BudgetBreach:
        params = {
            "run": run_id,
            "now": now,
            "calls": amounts.calls,
            "usd": amounts.usd,
            "tokens": amounts.tokens,
            "max_calls": limits.max_tool_calls,
            "max_tokens": limits.max_tokens,
            "max_usd": limits.max_usd,
            "max_wall": limits.max_wall_seconds,
        }
        for _ in range(20):
            if self._db.update(_RESERVE, params) is not None:
                return Reservation(run_id=run_id, amounts=amounts, id=next(self._reservations))
            # Refused. The run's clock starts at its first reservation, granted or not (as
            # in memory); then say why, from the row as it is now (a release may have made
            # room meanwhile: then try again).
            self._db.update(
                "INSERT INTO ledgers (run_id, started_at) VALUES (%s, %s) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, now),
            )
            ledger = self.ledger(run_id) or Ledger(started_at=now)
            breach = check(ledger, limits, amounts, now)
            if breach is not None:
                return breach
        raise StoreError("W-STO-001", f"the budget of run {run_id} changes too fast to reserve")

    def _settle(self, reservation: Reservation, actual: Amounts) -> None:
        held = reservation.amounts
        self._db.update(
            _SETTLE,
            {
                "run": reservation.run_id,
                "held_calls": held.calls,
                "held_usd": held.usd,
                "held_tokens": held.tokens,
                "calls": actual.calls,
                "usd": actual.usd,
                "tokens": actual.tokens,
            },
        )

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        self._settle(reservation, actual)

    def release(self, reservation: Reservation) -> None:
        self._settle(reservation, Amounts())

    def add_usage(self, run_id: str, amounts: Amounts, now: float) -> None:
        self._db.update(
            "INSERT INTO ledgers AS l (run_id, started_at, committed_calls, committed_usd, "
            "committed_tokens) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET "
            "committed_calls = l.committed_calls + excluded.committed_calls, "
            "committed_usd = l.committed_usd + excluded.committed_usd, "
            "committed_tokens = l.committed_tokens + excluded.committed_tokens",
            (run_id, now, amounts.calls, amounts.usd, amounts.tokens),
        )

    def ledger(self, run_id: str) -> Ledger | None:
        """The run's ledger row (or, once forgotten, the figures its run row kept)."""
        row = self._db.one(_LEDGER, {"run": run_id})
        if row is None:
            return None
        started, c_calls, c_usd, c_tokens, r_calls, r_usd, r_tokens = row
        return Ledger(
            started_at=started,
            committed_calls=c_calls,
            committed_usd=c_usd,
            committed_tokens=c_tokens,
            reserved_calls=r_calls,
            reserved_usd=r_usd,
            reserved_tokens=r_tokens,
        )

    def credit_wait(self, run_id: str, seconds: float) -> None:
        """Leave `seconds` spent waiting for people out of the run's wall time."""
        credit = max(0.0, seconds)
        self._db.update(
            "WITH ledger AS (UPDATE ledgers SET started_at = started_at + %(s)s "
            "WHERE run_id = %(run)s) "
            "UPDATE runs SET waited_s = waited_s + %(s)s WHERE id = %(run)s",
            {"s": credit, "run": run_id},
        )

    # --- loops ------------------------------------------------------------------------

    def note_call(self, run_id: str, fingerprint: str) -> int:
        row = self._db.update(
            "INSERT INTO loop_counts AS c (run_id, fingerprint, count) VALUES (%s, %s, 1) "
            "ON CONFLICT (run_id, fingerprint) DO UPDATE SET count = c.count + 1 "
            "RETURNING count",
            (run_id, fingerprint),
        )
        assert row is not None
        return int(row[0])

    # --- breakers ---------------------------------------------------------------------

    def _remember(self, agent: str, row: Sequence[Any]) -> _Breaker:
        phase, opened_at, probe_out, probe_at = row[:4]
        found = _Breaker(Phase(phase), opened_at, probe_out, probe_at, time.monotonic())
        self._breakers[agent] = found
        return found

    def _breaker(self, agent: str) -> _Breaker:
        known = self._breakers.get(agent)
        if known is not None and time.monotonic() - known.read_at < self._poll_s:
            return known
        row = self._db.one(
            "SELECT phase, opened_at, probe_out, probe_at FROM breakers WHERE agent = %s",
            (agent,),
        )
        return self._remember(agent, row or ("closed", 0.0, False, 0.0))

    def breaker_check(
        self, agent: str, config: BreakerConfig, now: float, *, want_probe: bool
    ) -> tuple[Phase, bool]:
        b = self._breaker(agent)
        if b.phase is Phase.CLOSED:
            return Phase.CLOSED, False
        phase = b.phase
        if phase is Phase.OPEN and now - b.opened_at >= config.cooldown_s:
            phase = Phase.HALF_OPEN  # what `current_phase` would say
        probing = (
            b.phase is Phase.HALF_OPEN and b.probe_out and now - b.probe_at < config.cooldown_s
        )
        if not want_probe or phase is not Phase.HALF_OPEN or probing:
            return phase, False
        row = self._db.update(
            "SELECT phase, opened_at, probe_out, probe_at, claimed "
            "FROM warden_breaker_claim(%s, %s, %s)",
            (agent, now, config.cooldown_s),
        )
        assert row is not None
        return self._remember(agent, row).phase, bool(row[4])

    def breaker_record(
        self, agent: str, config: BreakerConfig, *, ok: bool, now: float, probe: bool
    ) -> Phase:
        row = self._db.update(
            "SELECT phase, opened_at, probe_out, probe_at "
            "FROM warden_breaker_record(%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                agent,
                ok,
                now,
                probe,
                config.window_s,
                config.min_calls,
                config.error_rate_max,
                config.cooldown_s,
            ),
        )
        assert row is not None
        return self._remember(agent, row).phase

    def breaker_return_probe(self, agent: str) -> None:
        self._db.update("UPDATE breakers SET probe_out = false WHERE agent = %s", (agent,))
        self._breakers.pop(agent, None)

    def breaker_state(self, agent: str) -> BreakerState | None:
        def read(conn: Connection) -> BreakerState | None:
            row = conn.execute(
                "SELECT phase, opened_at, probe_out, probe_at, errors FROM breakers "
                "WHERE agent = %s",
                (agent,),
            ).fetchone()
            if row is None:
                return None
            phase, opened_at, probe_out, probe_at, errors = row
            state = BreakerState(
                phase=Phase(phase),
                opened_at=opened_at,
                probe_out=probe_out,
                probe_at=probe_at,
                errors=errors,
            )
            events = conn.execute(
                "SELECT at, ok FROM breaker_events WHERE agent = %s ORDER BY at", (agent,)
            )
            state.events.extend((float(at), bool(ok)) for at, ok in events)
            moves = conn.execute(
                "SELECT at, phase FROM (SELECT at, phase FROM breaker_transitions "
                "WHERE agent = %s ORDER BY at DESC LIMIT 20) t ORDER BY at",
                (agent,),
            )
            state.transitions.extend((float(at), Phase(p)) for at, p in moves)
            return state

        return self._db.run(read)

    # --- history ----------------------------------------------------------------------

    def record_action(self, agent: str, record: ActionRecord) -> None:
        """Count the decision in this process's history at once; other replicas see it
        once its action row is committed (within their poll interval)."""
        with self._history_lock:
            h = self._histories.get(agent)
            if h is None:
                h = self._histories[agent] = _History()
            h.mine.append((time.monotonic(), record))
            merged = h.merged
            if merged is not None and (not merged or merged[-1].at <= record.at):
                merged.append(record)
            else:
                h.merged = None

    def history(self, agent: str) -> Sequence[ActionRecord]:
        with self._history_lock:
            h = self._histories.get(agent)
            if h is None:
                h = self._histories[agent] = _History()
            if time.monotonic() - h.read_at >= self._poll_s:
                self._read_history(agent, h)
            if h.merged is None:
                merged = [*h.rows.values(), *(r for _, r in h.mine)]
                merged.sort(key=lambda r: r.at)
                h.merged = merged[-_HISTORY_CAP:]
            return h.merged

    def _read_history(self, agent: str, h: _History) -> None:
        """Read what is new in the agent's actions (all of it the first time)."""
        started = time.monotonic()

        def read(conn: Connection) -> tuple[datetime, list[tuple[Any, ...]]]:
            clock = conn.execute("SELECT clock_timestamp()").fetchone()
            assert clock is not None
            mark: datetime = clock[0]
            if h.since is None:
                rows = conn.execute(_HISTORY_FIRST, {"agent": agent, "span": self._history_s})
            else:
                rows = conn.execute(_HISTORY_NEWER, {"agent": agent, "since": h.since})
            return mark, rows.fetchall()

        mark, rows = self._db.run(read)
        for key, at, run_id, tool, outcome, args, approved in rows:
            if key not in h.rows:
                h.rows[key] = ActionRecord(
                    at=at,
                    run_id=run_id,
                    tool=tool,
                    outcome=outcome,
                    args=_json_object(args),
                    approved=approved,
                )
        if h.rows:
            horizon = max(r.at for r in h.rows.values()) - self._history_s
            if len(h.rows) > _HISTORY_CAP or min(r.at for r in h.rows.values()) < horizon:
                keep = sorted(h.rows.items(), key=lambda kv: kv[1].at)[-_HISTORY_CAP:]
                h.rows = {k: r for k, r in keep if r.at >= horizon}
        # what this process recorded before the read began is in the rows now, or never
        # will be (a decision that was not recorded durably)
        h.mine = [(t, r) for t, r in h.mine if t >= started]
        h.since = mark - _HISTORY_OVERLAP
        h.read_at = started
        h.merged = None

    # --- per-run caches -----------------------------------------------------------------

    def fact_cache(self, run_id: str) -> dict[Any, Any]:
        return self._facts[run_id]

    def forget_run(self, run_id: str) -> None:
        self._db.update(
            "WITH ledger AS (DELETE FROM ledgers WHERE run_id = %(run)s) "
            "DELETE FROM loop_counts WHERE run_id = %(run)s",
            {"run": run_id},
        )
        self._facts.pop(run_id, None)


def _json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]
