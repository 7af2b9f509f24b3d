"""The embedded durable store: one SQLite file (``.warden/warden.db`` in a project).

- WAL journal; every write goes through one writer thread that group-commits with
  ``synchronous=FULL``, and each caller returns only once its transaction is on disk.
- Hot state (budget ledgers, loop counts, breakers, history) is served from memory, as
  in `MemoryStore`, and written through: ledgers with each outcome, breaker state after
  each change, history as action rows. A restarted process loads what it needs lazily.
- Kill switches are read from the database, polled every `kill_poll_s` seconds, so
  ``warden kill`` from another process stops this one within that time.
- Several processes may open the same file (an agent and ``warden approvals approve``,
  say): SQLite serialises their transactions, and the writer notices another process's
  commit (``PRAGMA data_version``) before it extends the audit chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic_core import to_json

from warden.approvals import ApprovalRequest, ApprovalStatus, Verdict, status_after
from warden.audit.chain import SYSTEM_STREAM, Chain, agent_stream
from warden.audit.redact import Redactor
from warden.breakers import BreakerConfig, BreakerState, Phase
from warden.budgets import Amounts, BudgetBreach, BudgetLimits, Ledger, Reservation
from warden.canonical import canonical_json
from warden.clock import SystemClock
from warden.errors import ApprovalError, AuthError, StoreError
from warden.history import ActionRecord
from warden.identity import ApiKey
from warden.killswitch import KillRecord, parse_scope
from warden.owner import new_owner
from warden.policy.evaluate import PolicySource
from warden.runs import ActionState, ActionView, RunStatus, RunView
from warden.store.memory import MemoryStore
from warden.store.migrations import migrate
from warden.store.protocol import (
    ActionOutcome,
    NewAction,
    RecordedDecision,
    RunStart,
    StoredRevision,
)
from warden.store.rows import (
    ACTION_COLUMNS,
    INSERT_ACTION_COLUMNS,
    action_row,
    action_view,
    approval_audit,
    decision_audit,
    key_audit,
    key_from_row,
    key_row,
    loads,
    outcome_audit,
    recorded_decision,
    recorded_query,
    revision_sources,
    run_view,
    sources_json,
    verdict_audit,
)
from warden.store.writer import Writer

__all__ = ["DEFAULT_PATH", "SQLiteStore"]

T = TypeVar("T")

DEFAULT_PATH = ".warden/warden.db"

_LIVE_STATES = (ActionState.EXECUTING.value, ActionState.AWAITING_APPROVAL.value)


_INSERT_ACTION = (
    f"INSERT OR IGNORE INTO actions ({INSERT_ACTION_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(INSERT_ACTION_COLUMNS.split(',')))})"
)


def _json(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


class SQLiteStore(MemoryStore):
    """A `DurableStore` on one SQLite file."""

    seq_gaps = False
    """The one writer numbers records 1, 2, 3 ... with no gap."""

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        group_commit: bool = True,
        max_batch: int = 512,
        redactor: Redactor | None = None,
        kill_poll_s: float = 0.05,
        idempotency_retention_s: float = 86_400.0,
        retain_days: int | None = None,
        history_days: float = 90.0,
        fsync: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self._temporary: Path | None = None
        self.owner = new_owner()
        self.idempotency_retention_s = idempotency_retention_s
        self.retain_days = retain_days
        self._history_s = history_days * 86_400.0
        self._synchronous = "FULL" if fsync else "OFF"
        """``fsync=False`` is for throwaway workspaces (an eval case's store): commits are
        ordered and atomic as ever, but not forced to disk, so a crash of the machine (not
        of the process) may lose the last ones."""
        self._redactor = redactor if redactor is not None else Redactor()
        self._kill_poll_s = kill_poll_s
        self._kill_checked = 0.0
        self._kill_version = -1
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._known_runs: set[str] = set()
        self._deferred: list[Callable[[sqlite3.Connection], Any]] = []
        self._deferred_lock = threading.Lock()
        self._deferred_added = threading.Event()
        self.defer_s = 0.002
        """How long a deferred write waits for a write to ride with before it is committed
        on its own, in the background."""
        self._loaded_ledgers: set[str] = set()
        self._loaded_history: set[str] = set()
        self._breaker_dirty: set[str] = set()
        self._last_purge = 0.0
        self._closed = False
        self._setup()
        self._chain = self._load_chain()
        self._chain_mark: Any = None
        self._data_version: int | None = None
        self._writer = Writer(
            self._connect_writer,
            max_batch=max_batch if group_commit else 1,
            on_begin=self._on_begin,
            on_rollback=self._on_rollback,
        )
        self._checkpoint_stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="warden-checkpoint", daemon=True
        )
        self._checkpointer.start()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="warden-deferred", daemon=True
        )
        self._flusher.start()
        self._load_breakers()
        self._refresh_kills(force=True)

    @classmethod
    def temporary(cls, **options: Any) -> SQLiteStore:
        """A store in a fresh temporary folder, removed on `close` (tests, `warden demo`)."""
        folder = Path(tempfile.mkdtemp(prefix="warden-"))
        store = cls(folder / "warden.db", **options)
        store._temporary = folder
        return store

    # --- connections -----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.Error as exc:
            code = "W-STO-003" if "not a database" in str(exc) else "W-STO-001"
            raise StoreError(code, f"cannot open {self.path}: {exc}") from None
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        # copying the WAL into the database (and its fsync) happens in the checkpoint
        # thread, not inside the commits callers wait for
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def _checkpoint_loop(self, every_s: float = 0.25) -> None:
        try:
            conn = self._connect()
        except StoreError:
            return
        try:
            while not self._checkpoint_stop.wait(every_s):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def _setup(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("W-STO-001", f"cannot create {self.path.parent}: {exc}") from None
        conn = self._connect()
        try:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    "W-STO-003", f"{self.path} is not a Warden database: {exc}"
                ) from None
            if str(mode).lower() != "wal":
                raise StoreError("W-STO-001", f"{self.path}: cannot switch to WAL ({mode})")
            migrate(conn, path=str(self.path))
        finally:
            conn.close()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("W-STO-001", "the store is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError("W-STO-001", f"SQLite: {exc}") from None

    def _submit(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Commit `op` through the writer, with any deferred writes ahead of it in the
        same transaction."""
        return self._writer.submit(self._with_deferred(op))

    def _submit_async(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`_submit` for a caller on an event loop: a future settled after the commit."""
        return self._writer.submit_async(self._with_deferred(op))

    def _with_deferred(
        self, op: Callable[[sqlite3.Connection], T]
    ) -> Callable[[sqlite3.Connection], T]:
        if not self._deferred:
            return op
        with self._deferred_lock:
            ahead, self._deferred = self._deferred, []
        if not ahead:
            return op

        def both(conn: sqlite3.Connection) -> T:
            for early in ahead:
                early(conn)
            return op(conn)

        return both

    def _defer(self, op: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue `op` to ride with the next write this store commits (in its transaction),
        or to be committed in the background `defer_s` later if none comes."""
        with self._deferred_lock:
            self._deferred.append(op)
        self._deferred_added.set()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._deferred_added.wait()
            self._deferred_added.clear()
            if self._closed:
                return
            time.sleep(self.defer_s)
            if not self._closed:
                with contextlib.suppress(Exception):  # the next write carries them then
                    self.flush()

    def flush(self) -> None:
        """Commit deferred writes now."""
        if self._deferred:
            self._submit(lambda conn: None)

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.flush()
        self._closed = True
        self._deferred_added.set()
        self._writer.close()
        self._flusher.join()
        self._checkpoint_stop.set()
        self._checkpointer.join()
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the audit chain ---------------------------------------------------------------

    def _load_chain(self, conn: sqlite3.Connection | None = None) -> Chain:
        own = conn is None
        c = conn if conn is not None else self._connect()
        try:
            last = c.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()[0]
            heads = {
                stream: (stream_seq, bytes(h))
                for stream, stream_seq, h in c.execute(
                    "SELECT stream, stream_seq, hash FROM audit WHERE seq IN "
                    "(SELECT max(seq) FROM audit GROUP BY stream)"
                )
            }
        finally:
            if own:
                c.close()
        return Chain(heads, last_seq=int(last))

    def _on_begin(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._data_version is not None and version != self._data_version:
            self._chain = self._load_chain(conn)  # another process appended
            self._kill_checked = 0.0
        self._data_version = version
        self._chain_mark = self._chain.snapshot()

    def _on_rollback(self) -> None:
        if self._chain_mark is not None:
            self._chain.restore(self._chain_mark)

    def _prepare(
        self, data: Mapping[str, Any], fields: frozenset[str] = frozenset()
    ) -> tuple[bytes, list[Any]]:
        """Redact, then encode: runs in the caller's thread, outside the writer."""
        clean, removed = self._redactor.redact(data, fields)
        return canonical_json(clean), removed

    def _append(
        self,
        conn: sqlite3.Connection,
        stream: str,
        kind: str,
        at: float,
        prepared: tuple[bytes, list[Any]],
    ) -> int:
        data_json, removed = prepared
        row = self._chain.append(stream, at, kind, data_json)
        conn.execute(
            "INSERT INTO audit (seq, stream, stream_seq, at, kind, body, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.seq, row.stream, row.stream_seq, at, kind, row.body, row.hash),
        )
        for r in removed:
            conn.execute(
                "INSERT INTO audit_vault (seq, path, kind, commitment, salt, value, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.seq, r.path, r.kind, r.commitment, r.salt, _json(r.value), at),
            )
        return row.seq

    def audit(
        self,
        stream: str,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: float,
        redact_fields: frozenset[str] = frozenset(),
    ) -> None:
        prepared = self._prepare(data, redact_fields)
        self._submit(lambda conn: self._append(conn, stream, kind, at, prepared))

    def audit_rows(
        self, *, after: int = 0, batch: int = 5000
    ) -> Iterator[tuple[int, str, int, bytes, bytes]]:
        """Every audit row as ``(seq, stream, stream_seq, body, hash)``, in order."""
        conn = self._connect()
        try:
            cur = conn.execute(
                "SELECT seq, stream, stream_seq, body, hash FROM audit WHERE seq > ? ORDER BY seq",
                (after,),
            )
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    return
                yield from rows
        finally:
            conn.close()

    def audit_count(self) -> int:
        return int(self._rows("SELECT count(*) FROM audit")[0][0])

    def append_batch(self, records: Sequence[tuple[str, str, float, Mapping[str, Any]]]) -> None:
        """Append many audit records in one transaction (imports and benchmarks)."""
        prepared = [(s, k, at, self._prepare(d)) for s, k, at, d in records]

        def op(conn: sqlite3.Connection) -> None:
            for stream, kind, at, p in prepared:
                self._append(conn, stream, kind, at, p)

        self._submit(op)

    # --- kill switch (durable, polled) ---------------------------------------------------

    def _refresh_kills(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._kill_checked < self._kill_poll_s:
            return
        self._kill_checked = now
        version = int(self._rows("SELECT value FROM meta WHERE key = 'kill_version'")[0][0])
        if version == self._kill_version and not force:
            return
        rows = self._rows("SELECT scope, by, reason, at FROM kills")
        self._kills = {s: KillRecord(scope=s, by=b, reason=r, at=a) for s, b, r, a in rows}
        self._kill_version = version

    def killed(self, agent: str, tool: str) -> KillRecord | None:
        self._refresh_kills()
        return super().killed(agent, tool)

    def kills(self) -> Sequence[KillRecord]:
        self._refresh_kills(force=True)
        return super().kills()

    def set_kill(self, scope: str, *, engaged: bool, by: str, reason: str, at: float) -> None:
        parse_scope(scope)
        prepared = self._prepare({"scope": scope, "engaged": engaged, "by": by, "reason": reason})

        def op(conn: sqlite3.Connection) -> None:
            if engaged:
                conn.execute(
                    "INSERT INTO kills (scope, by, reason, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (scope) DO UPDATE SET by = excluded.by, "
                    "reason = excluded.reason, at = excluded.at",
                    (scope, by, reason, at),
                )
            else:
                conn.execute("DELETE FROM kills WHERE scope = ?", (scope,))
            conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'kill_version'"
            )
            self._append(conn, SYSTEM_STREAM, "kill" if engaged else "unkill", at, prepared)

        self._submit(op)
        self._refresh_kills(force=True)

    # --- budgets: ledgers survive a restart ------------------------------------------------

    def _load_ledger(self, run_id: str) -> None:
        if run_id in self._loaded_ledgers:
            return
        rows = self._rows(
            "SELECT started_at + waited_s, calls, usd, tokens FROM runs WHERE id = ?", (run_id,)
        )
        with self._budget_lock:
            if rows and run_id not in self._ledgers:
                started, calls, usd, tokens = rows[0]
                self._ledgers[run_id] = Ledger(
                    started_at=started,
                    committed_calls=calls,
                    committed_usd=usd,
                    committed_tokens=tokens,
                )
            self._loaded_ledgers.add(run_id)

    def reserve(
        self, run_id: str, limits: BudgetLimits, amounts: Amounts, now: float
    ) -> Reservation | BudgetBreach:
        if run_id not in self._loaded_ledgers:
            self._load_ledger(run_id)
        return super().reserve(run_id, limits, amounts, now)

    def add_usage(self, run_id: str, amounts: Amounts, now: float) -> None:
        if run_id not in self._loaded_ledgers:
            self._load_ledger(run_id)
        super().add_usage(run_id, amounts, now)

    def ledger(self, run_id: str) -> Ledger | None:
        if run_id not in self._loaded_ledgers:
            self._load_ledger(run_id)
        return super().ledger(run_id)

    def forget_run(self, run_id: str) -> None:
        super().forget_run(run_id)
        self._loaded_ledgers.discard(run_id)

    def _figures(self, run_id: str) -> tuple[int, float, int]:
        """The run's committed calls, USD and tokens, as its `runs` row keeps them."""
        ledger = self.ledger(run_id)
        return ledger.committed if ledger is not None else (0, 0.0, 0)

    def credit_wait(self, run_id: str, seconds: float) -> None:
        if run_id not in self._loaded_ledgers:
            self._load_ledger(run_id)
        super().credit_wait(run_id, seconds)
        self._submit(
            lambda conn: conn.execute(
                "UPDATE runs SET waited_s = waited_s + ? WHERE id = ?", (seconds, run_id)
            )
        )

    # --- the runner's saved state ------------------------------------------------------------

    def save_run_state(
        self, start: RunStart, state: Mapping[str, Any], *, at: float, wait: bool = True
    ) -> None:
        figures = self._figures(start.run_id)
        body = to_json(state).decode("utf-8")  # pydantic-core's encoder: 4x json.dumps
        escalation = _json(dict(start.escalation)) if start.escalation is not None else None

        known = start.run_id in self._known_runs

        def op(conn: sqlite3.Connection) -> None:
            if not known:
                conn.execute(
                    "INSERT OR IGNORE INTO runs (id, agent, status, policy_revision, "
                    "started_at, started_by, task) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                    (
                        start.run_id,
                        start.agent,
                        start.policy_revision,
                        start.started_at,
                        start.started_by,
                        start.task,
                    ),
                )
            conn.execute(
                "UPDATE runs SET calls = max(calls, ?), usd = max(usd, ?), "
                "tokens = max(tokens, ?) WHERE id = ?",
                (*figures, start.run_id),
            )
            if start.status is not None:  # running or waiting: the run is open (again)
                conn.execute(
                    "UPDATE runs SET status = ?, ended_at = NULL WHERE id = ?",
                    (start.status.value, start.run_id),
                )
            conn.execute(
                "INSERT INTO run_states (run_id, state, escalation, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, "
                "escalation = excluded.escalation, updated_at = excluded.updated_at",
                (start.run_id, body, escalation, at),
            )

        if wait:
            self._submit(op)
        else:  # rides with the next write this store commits (its transaction, or earlier)
            self._defer(op)
        self._known_runs.add(start.run_id)

    def run_state(self, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        self.flush()
        rows = self._rows("SELECT state, escalation FROM run_states WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        return json.loads(rows[0][0]), loads(rows[0][1])

    # --- breakers: state written behind every change -----------------------------------

    def _load_breakers(self) -> None:
        for agent, raw in self._rows("SELECT agent, state FROM breakers"):
            d = json.loads(raw)
            state = BreakerState(
                phase=Phase(d["phase"]),
                opened_at=d["opened_at"],
                probe_at=d["probe_at"],
                errors=d["errors"],
            )
            state.events.extend((float(t), bool(ok)) for t, ok in d["events"])
            state.transitions.extend((float(t), Phase(p)) for t, p in d["transitions"])
            self._breakers[agent] = state

    def breaker_record(
        self, agent: str, config: BreakerConfig, *, ok: bool, now: float, probe: bool
    ) -> Phase:
        phase = super().breaker_record(agent, config, ok=ok, now=now, probe=probe)
        with self._breaker_lock:
            if agent in self._breaker_dirty:
                return phase
            self._breaker_dirty.add(agent)
        self._writer.submit_nowait(lambda conn: self._save_breaker(conn, agent))
        return phase

    def _save_breaker(self, conn: sqlite3.Connection, agent: str) -> None:
        with self._breaker_lock:
            self._breaker_dirty.discard(agent)
            s = self._breakers.get(agent)
            if s is None:
                return
            data = {
                "phase": s.phase.value,
                "opened_at": s.opened_at,
                "probe_at": s.probe_at,
                "errors": s.errors,
                "events": [[t, ok] for t, ok in s.events],
                "transitions": [[t, p.value] for t, p in s.transitions[-20:]],
            }
        conn.execute(
            "INSERT INTO breakers (agent, state) VALUES (?, ?) "
            "ON CONFLICT (agent) DO UPDATE SET state = excluded.state",
            (agent, json.dumps(data)),
        )

    # --- history: loaded from the action rows on first use ------------------------------

    def _load_history(self, agent: str, now: float | None = None) -> None:
        with self._history_lock:
            if agent in self._loaded_history:
                return
            self._loaded_history.add(agent)
        horizon = (now if now is not None else SystemClock().timestamp()) - self._history_s
        # each action as decided, and each approval spent as the allowed, approved record
        # `Executor` adds when it starts the action (as PostgreSQL's history reads them)
        rows = self._rows(
            "SELECT at, run_id, tool, outcome, args, approved FROM ("
            "SELECT decided_at AS at, rowid AS n, run_id, tool, outcome, args, 0 AS approved "
            "FROM actions WHERE agent = ? AND decided_at >= ? "
            "UNION ALL SELECT p.used_at, -1, a.run_id, a.tool, 'allow', a.args, 1 "
            "FROM approvals p JOIN actions a ON a.id = p.action_id "
            "WHERE a.agent = ? AND p.used_at >= ?) ORDER BY at, n",
            (agent, horizon, agent, horizon),
        )
        if not rows:
            return
        loaded = [
            ActionRecord(
                at=at,
                run_id=run,
                tool=tool,
                outcome=outcome,
                args=json.loads(args),
                approved=bool(approved),
            )
            for at, run, tool, outcome, args, approved in rows
        ]
        with self._history_lock:
            self._history[agent] = [*loaded, *self._history.get(agent, [])]

    def record_action(self, agent: str, record: ActionRecord) -> None:
        if agent not in self._loaded_history:
            self._load_history(agent, record.at)
        super().record_action(agent, record)

    def history(self, agent: str) -> Sequence[ActionRecord]:
        if agent not in self._loaded_history:
            self._load_history(agent)
        return super().history(agent)

    # --- actions ---------------------------------------------------------------------------

    def record_decision(self, action: NewAction) -> ActionView | None:
        existing = self._submit(self._decision_op(action))
        if existing is None:
            self._known_runs.add(action.run_id)
        return existing

    def record_decision_async(self, action: NewAction) -> asyncio.Future[ActionView | None]:
        """`record_decision` for a caller on an event loop: a future of the running loop,
        settled once the record is committed."""
        future = self._submit_async(self._decision_op(action))
        run_id = action.run_id

        def known(done: asyncio.Future[ActionView | None]) -> None:
            if not done.cancelled() and done.exception() is None and done.result() is None:
                self._known_runs.add(run_id)

        future.add_done_callback(known)
        return future

    def _decision_op(self, action: NewAction) -> Callable[[sqlite3.Connection], ActionView | None]:
        """What `record_decision` commits: everything but the commit is done here, in
        the caller's thread."""
        a = action
        stream = agent_stream(a.agent)
        prepared = self._prepare(decision_audit(a), a.redact_fields)
        approval = a.approval
        opened = approval_audit(a)
        approval_prepared = self._prepare(opened) if opened is not None else None
        row = action_row(a)
        new_run = a.run_id not in self._known_runs

        def op(conn: sqlite3.Connection) -> ActionView | None:
            cur = conn.execute(_INSERT_ACTION, row)
            if cur.rowcount == 0:
                found = conn.execute(
                    f"SELECT {ACTION_COLUMNS} FROM actions WHERE agent = ? AND idem_key = ?",
                    (a.agent, a.idem_key),
                ).fetchone()
                if found is None:
                    raise StoreError("W-STO-001", f"action {a.id} could not be recorded")
                return action_view(found)
            if new_run:
                conn.execute(
                    "INSERT OR IGNORE INTO runs (id, agent, status, policy_revision, started_at, "
                    "started_by) VALUES (?, ?, 'running', ?, ?, ?)",
                    (a.run_id, a.agent, a.policy_revision, a.decided_at, a.started_by),
                )
            if a.run_status is not None:
                conn.execute(
                    "UPDATE runs SET status = ?, reason = coalesce(?, reason) WHERE id = ?",
                    (a.run_status.value, a.run_reason, a.run_id),
                )
            if approval is not None:
                conn.execute(
                    "INSERT INTO approvals (id, action_id, binding, policy_revision, roles, "
                    "count, requested_by, requested_at, expires_at, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (
                        approval.id,
                        a.id,
                        approval.binding,
                        approval.policy_revision,
                        _json(list(approval.roles)),
                        approval.count,
                        _json(list(approval.requested_by)),
                        approval.requested_at,
                        approval.expires_at,
                    ),
                )
            self._append(conn, stream, "decision", a.decided_at, prepared)
            if approval_prepared is not None:
                self._append(conn, stream, "approval.request", a.decided_at, approval_prepared)
            return None

        return op

    def record_outcome(self, outcome: ActionOutcome, *, wait: bool = True) -> bool:
        o = outcome
        prepared = self._prepare(outcome_audit(o), o.redact_fields)
        result = _json(o.result) if o.result is not None else None
        error = _json(dict(o.error)) if o.error is not None else None
        stream = agent_stream(o.agent)

        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE actions SET state = ?, finished_at = ?, attempts = ?, result = ?, "
                "error = ?, idem_key = CASE WHEN ? THEN NULL ELSE idem_key END "
                "WHERE id = ? AND state = ?",
                (
                    o.state.value,
                    o.at,
                    o.attempts,
                    result,
                    error,
                    o.release_key,
                    o.action_id,
                    o.expect.value,
                ),
            )
            if cur.rowcount != 1:
                return False  # settled meanwhile (another recoverer): write nothing
            if o.ledger is not None:
                conn.execute(
                    "UPDATE runs SET calls = ?, usd = ?, tokens = ? WHERE id = ?",
                    (*o.ledger, o.run_id),
                )
            if o.run_status is not None:
                conn.execute(
                    "UPDATE runs SET status = ?, reason = coalesce(?, reason) WHERE id = ?",
                    (o.run_status.value, o.run_reason, o.run_id),
                )
            self._append(conn, stream, "outcome", o.at, prepared)
            return True

        if wait:
            written = bool(self._submit(op))
        else:  # rides with the next write, or commits in the background soon after
            self._defer(op)
            written = True
        if o.at - self._last_purge > 3600.0:
            self._last_purge = o.at
            self._writer.submit_nowait(lambda conn: self._purge(conn, o.at))
        return written

    def action(self, action_id: str) -> ActionView | None:
        rows = self._rows(f"SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?", (action_id,))
        return action_view(rows[0]) if rows else None

    def action_by_key(self, agent: str, key: str) -> ActionView | None:
        rows = self._rows(
            f"SELECT {ACTION_COLUMNS} FROM actions WHERE agent = ? AND idem_key = ?",
            (agent, key),
        )
        return action_view(rows[0]) if rows else None

    def open_actions(self, state: ActionState) -> Sequence[ActionView]:
        rows = self._rows(
            f"SELECT {ACTION_COLUMNS} FROM actions WHERE state = ? ORDER BY decided_at",
            (state.value,),
        )
        return [action_view(r) for r in rows]

    # --- replay: recorded decisions and policy revisions ------------------------------------

    def save_policy_revision(
        self, revision: str, sources: Sequence[PolicySource], *, at: float
    ) -> None:
        if self._rows("SELECT 1 FROM policy_revisions WHERE revision = ?", (revision,)):
            return  # the common case: a gate loading a revision kept before
        body = sources_json(sources)
        self._submit(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO policy_revisions (revision, sources, first_seen) "
                "VALUES (?, ?, ?)",
                (revision, body, at),
            )
        )

    def policy_revision(self, revision: str) -> StoredRevision | None:
        rows = self._rows(
            "SELECT sources, first_seen FROM policy_revisions WHERE revision = ?", (revision,)
        )
        if not rows:
            return None
        return StoredRevision(
            revision=revision, sources=revision_sources(rows[0][0]), first_seen=rows[0][1]
        )

    def recorded_decisions(
        self,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        since: float | None = None,
        until: float | None = None,
        inputs: bool = True,
    ) -> Sequence[RecordedDecision]:
        self.flush()
        sql, params = recorded_query(
            seq="rowid",
            placeholder="?",
            run_id=run_id,
            agent=agent,
            since=since,
            until=until,
            inputs=inputs,
        )
        return [recorded_decision(r) for r in self._rows(sql, params)]

    # --- approvals -------------------------------------------------------------------------

    def start_approved(self, approval_id: str, action_id: str, *, owner: str, at: float) -> None:
        found = self.action(action_id)
        agent = found.agent if found is not None else ""
        prepared = self._prepare({"approval_id": approval_id, "action_id": action_id})

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE approvals SET status = 'used', used_at = ? "
                "WHERE id = ? AND status = 'approved'",
                (at, approval_id),
            )
            if cur.rowcount != 1:
                raise ApprovalError("W-APR-004", f"approval {approval_id} was already used")
            conn.execute(
                "UPDATE actions SET state = 'executing', owner = ?, approved = 1 "
                "WHERE id = ? AND state = 'awaiting_approval'",
                (owner, action_id),
            )
            conn.execute(
                "UPDATE runs SET status = 'running' WHERE status = 'waiting' AND id = "
                "(SELECT run_id FROM actions WHERE id = ?)",
                (action_id,),
            )
            self._append(conn, agent_stream(agent), "approval.used", at, prepared)

        self._submit(op)

    def _approval(self, conn: sqlite3.Connection, approval_id: str) -> ApprovalRequest | None:
        row = conn.execute(
            "SELECT p.id, p.action_id, a.run_id, a.agent, a.tool, a.args, p.binding, "
            "p.policy_revision, p.roles, p.count, p.requested_by, p.requested_at, "
            "p.expires_at, p.status, a.reasons FROM approvals p JOIN actions a "
            "ON a.id = p.action_id WHERE p.id = ?",
            (approval_id,),
        ).fetchone()
        if row is None:
            return None
        verdicts = tuple(
            Verdict(approver=who, role=role, approve=bool(ok), reason=why, at=at)
            for who, role, ok, why, at in conn.execute(
                "SELECT approver, role, approve, reason, at FROM verdicts "
                "WHERE approval_id = ? ORDER BY at, approver",
                (approval_id,),
            )
        )
        return ApprovalRequest(
            id=row[0],
            action_id=row[1],
            run_id=row[2],
            agent=row[3],
            tool=row[4],
            args=json.loads(row[5]),
            binding=row[6],
            policy_revision=row[7],
            roles=tuple(json.loads(row[8])),
            count=row[9],
            requested_by=tuple(json.loads(row[10])),
            requested_at=row[11],
            expires_at=row[12],
            status=ApprovalStatus(row[13]),
            reasons=tuple(json.loads(row[14])),
            verdicts=verdicts,
        )

    def approval(self, approval_id: str) -> ApprovalRequest | None:
        try:
            return self._approval(self._reader(), approval_id)
        except sqlite3.Error as exc:
            raise StoreError("W-STO-001", f"SQLite: {exc}") from None

    def approvals(
        self, status: ApprovalStatus | None = None, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        if status is None:
            ids = self._rows(
                "SELECT id FROM approvals ORDER BY requested_at DESC LIMIT ?", (limit,)
            )
        else:
            ids = self._rows(
                "SELECT id FROM approvals WHERE status = ? ORDER BY requested_at DESC LIMIT ?",
                (status.value, limit),
            )
        found = (self.approval(i) for (i,) in ids)
        return [r for r in found if r is not None]

    def add_verdict(
        self, approval_id: str, judge: Callable[[ApprovalRequest], Verdict]
    ) -> ApprovalRequest:
        def op(conn: sqlite3.Connection) -> ApprovalRequest:
            request = self._approval(conn, approval_id)
            if request is None:
                raise ApprovalError("W-APR-008", f"no approval request {approval_id!r}")
            verdict = judge(request)
            conn.execute(
                "INSERT INTO verdicts (approval_id, approver, role, approve, reason, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    approval_id,
                    verdict.approver,
                    verdict.role,
                    verdict.approve,
                    verdict.reason,
                    verdict.at,
                ),
            )
            status = status_after(request, (*request.verdicts, verdict))
            conn.execute(
                "UPDATE approvals SET status = ? WHERE id = ?", (status.value, approval_id)
            )
            if status is ApprovalStatus.DENIED:
                conn.execute(
                    "UPDATE actions SET state = 'rejected', finished_at = ? WHERE id = ?",
                    (verdict.at, request.action_id),
                )
            data = verdict_audit(request, verdict, status)
            self._append(
                conn,
                agent_stream(request.agent),
                "approval.verdict",
                verdict.at,
                self._prepare(data),
            )
            updated = self._approval(conn, approval_id)
            assert updated is not None
            return updated

        return self._submit(op)

    def expire_approvals(self, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT p.id, p.action_id, a.agent FROM approvals p JOIN actions a "
                "ON a.id = p.action_id WHERE p.status IN ('pending', 'approved') "
                "AND p.expires_at <= ?",
                (now,),
            ).fetchall()
            for approval_id, action_id, agent in rows:
                conn.execute("UPDATE approvals SET status = 'expired' WHERE id = ?", (approval_id,))
                conn.execute(
                    "UPDATE actions SET state = 'rejected', finished_at = ? "
                    "WHERE id = ? AND state = 'awaiting_approval'",
                    (now, action_id),
                )
                self._append(
                    conn,
                    agent_stream(agent),
                    "approval.expired",
                    now,
                    self._prepare({"approval_id": approval_id, "action_id": action_id}),
                )
            return len(rows)

        return self._submit(op)

    # --- runs ------------------------------------------------------------------------------

    _RUN_COLUMNS = (
        "id, agent, status, policy_revision, started_at, ended_at, outcome, reason, calls, "
        "usd, tokens, started_by, task"
    )

    def run(self, run_id: str) -> RunView | None:
        rows = self._rows(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        actions = self._rows(
            f"SELECT {ACTION_COLUMNS} FROM actions WHERE run_id = ? ORDER BY decided_at, rowid",
            (run_id,),
        )
        return run_view(rows[0], tuple(action_view(a) for a in actions))

    def runs(self, *, limit: int = 50, status: RunStatus | None = None) -> Sequence[RunView]:
        if status is None:
            rows = self._rows(
                f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._rows(
                f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status = ? "
                "ORDER BY started_at DESC LIMIT ?",
                (status.value, limit),
            )
        return [run_view(r, ()) for r in rows]

    def end_run(
        self, run_id: str, status: RunStatus, *, at: float, outcome: str | None, reason: str | None
    ) -> None:
        found = self._rows("SELECT agent FROM runs WHERE id = ?", (run_id,))
        if not found:
            return
        figures = self._figures(run_id)
        prepared = self._prepare(
            {"run_id": run_id, "status": status.value, "outcome": outcome, "reason": reason}
        )

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, outcome = ?, "
                "reason = coalesce(?, reason), calls = max(calls, ?), usd = max(usd, ?), "
                "tokens = max(tokens, ?) WHERE id = ?",
                (status.value, at, outcome, reason, *figures, run_id),
            )
            self._append(conn, agent_stream(found[0][0]), "run.end", at, prepared)

        self._submit(op)

    # --- keys ------------------------------------------------------------------------------

    _KEY_COLUMNS = (
        "id, kind, name, secret_hash, tools, roles, created_at, created_by, expires_at, "
        "revoked_at, revoked_by, replaces"
    )

    def add_key(self, key: ApiKey, *, retire_at: float | None = None) -> None:
        prepared = self._prepare(key_audit(key, retire_at=retire_at))

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO api_keys ({self._KEY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                key_row(key),
            )
            if key.replaces is not None:
                conn.execute(
                    "UPDATE api_keys SET expires_at = min(coalesce(expires_at, ?), ?) WHERE id = ?",
                    (retire_at, retire_at, key.replaces),
                )
            self._append(conn, SYSTEM_STREAM, "key.create", key.created_at, prepared)

        self._submit(op)

    def key(self, key_id: str) -> ApiKey | None:
        rows = self._rows(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return key_from_row(rows[0]) if rows else None

    def keys(self) -> Sequence[ApiKey]:
        rows = self._rows(f"SELECT {self._KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC")
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, *, at: float, by: str) -> ApiKey:
        prepared = self._prepare({"key_id": key_id, "by": by})

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?), "
                "revoked_by = coalesce(revoked_by, ?) WHERE id = ?",
                (at, by, key_id),
            )
            if cur.rowcount != 1:
                raise AuthError("W-AUTH-002", f"no key {key_id!r}")
            self._append(conn, SYSTEM_STREAM, "key.revoke", at, prepared)

        self._submit(op)
        found = self.key(key_id)
        assert found is not None
        return found

    # --- retention -------------------------------------------------------------------------

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute(
            "UPDATE actions SET idem_key = NULL WHERE idem_key IS NOT NULL AND decided_at < ? "
            "AND state NOT IN (?, ?)",
            (now - self.idempotency_retention_s, *_LIVE_STATES),
        )
        if self.retain_days is not None:
            conn.execute(
                "DELETE FROM audit_vault WHERE at < ?", (now - self.retain_days * 86_400.0,)
            )

    def purge(self, now: float) -> None:
        """Drop idempotency keys past their retention, and redacted values past
        ``retain_days`` (the audit chain keeps only commitments, so it still verifies)."""
        self._submit(lambda conn: self._purge(conn, now))

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(batches committed, requests in them): the group-commit ratio."""
        return self._writer.batches, self._writer.requests
