"""The shared store: one PostgreSQL database (``WARDEN_DATABASE_URL=postgresql://...``)
that many Warden processes (replicas) use at once.

- Nothing a replica must agree on lives in process memory: budgets, loop counts,
  breakers, kill switches and history are rows every replica reads and changes
  atomically (see `warden.store.pg_state`); idempotency keys are a unique index;
  an approval is spent by one conditional UPDATE, and verdicts are added under its row
  lock.
- Durable writes go through one writer thread per process with its own connection,
  which group-commits whatever callers are waiting, pipelined; each caller returns only
  after COMMIT. With ``group_commit=False`` every write is its own transaction, on a pool
  connection (the benchmark's baseline).
- The audit log is partitioned into streams (``agent:<name>``, ``system``); each append
  is one call of ``warden_audit_append``, which locks only its stream's head, so replicas
  writing for different agents never wait for each other. Global numbers come from a
  sequence and may skip (a rolled-back append burns one): verify with
  ``verify_rows(..., contiguous=False)``.
- Failures are store errors (W-STO-001 unreachable, W-STO-004 read-only), never a
  driver traceback or a password; the pool and the writer reconnect by themselves.

Importing this module imports psycopg (the ``postgres`` extra); `warden.store.open_store`
imports it only when a ``postgresql://`` URL is opened.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

import psycopg
from pydantic_core import to_json

from warden.approvals import ApprovalRequest, ApprovalStatus, Verdict, status_after
from warden.audit.chain import SYSTEM_STREAM, agent_stream
from warden.audit.redact import Redactor
from warden.canonical import canonical_json
from warden.errors import ApprovalError, AuthError, StoreError
from warden.identity import ApiKey
from warden.killswitch import parse_scope
from warden.owner import new_owner
from warden.policy.evaluate import PolicySource
from warden.runs import ActionState, ActionView, RunStatus, RunView
from warden.store.pg_connection import (
    Connection,
    Database,
    Later,
    Op,
    alive,
    store_error,
    transaction,
)
from warden.store.pg_schema import migrate
from warden.store.pg_state import SharedState
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
from warden.store.writer import GroupWriter

__all__ = ["PostgresStore", "audit_pieces"]

_LIVE_STATES = (ActionState.EXECUTING.value, ActionState.AWAITING_APPROVAL.value)
_RUN_COLUMNS = (
    "r.id, r.agent, r.status, r.policy_revision, r.started_at, r.ended_at, r.outcome, "
    "r.reason, coalesce(l.committed_calls, r.calls), coalesce(l.committed_usd, r.usd), "
    "coalesce(l.committed_tokens, r.tokens), r.started_by, r.task"
)
_RUNS = f"SELECT {_RUN_COLUMNS} FROM runs r LEFT JOIN ledgers l ON l.run_id = r.id"
_KEY_COLUMNS = (
    "id, kind, name, secret_hash, tools, roles, created_at, created_by, expires_at, "
    "revoked_at, revoked_by, replaces"
)
_APPEND = "SELECT warden_audit_append(%s, %s, %s, %s, %s, %s, %s)"
_VAULT = "INSERT INTO audit_vault (seq, path, kind, commitment, salt, value, at)"
_IF_RECORDED = "WHERE EXISTS (SELECT 1 FROM actions WHERE id = %s)"
_DECIDE = (
    "WITH recorded AS ("
    f"INSERT INTO actions ({INSERT_ACTION_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s, %s) "
    "ON CONFLICT DO NOTHING RETURNING id) "
    f"{_APPEND} FROM recorded"
)
_OUTCOME = (
    "WITH done AS ("
    "UPDATE actions SET state = %s, finished_at = %s, attempts = %s, result = %s, error = %s, "
    "idem_key = CASE WHEN %s THEN NULL ELSE idem_key END "
    "WHERE id = %s AND state = %s RETURNING id) "
    f"{_APPEND} FROM done"
)

Prepared = tuple[bytes, list[Any]]
"""Audit data as canonical JSON, and the values redaction took out of it."""


def _json(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


def audit_pieces(stream: str, kind: str, at: float) -> tuple[bytes, bytes, bytes]:
    """The parts of a record's body around its data and numbers, as
    `warden.audit.chain.compose` writes them: ``{"at":<at>,"data":``,
    ``,"kind":<kind>`` and ``,"stream":<stream>``. ``warden_audit_append`` puts them
    together with the data and the numbers it hands out."""
    if type(at) is float:  # json's float: repr, and no NaN or infinity
        if at != at or at in (float("inf"), float("-inf")):
            raise ValueError(f"Out of range float values are not JSON compliant: {at!r}")
        number = repr(at)
    else:
        number = canonical_json(at).decode("utf-8")
    return (
        f'{{"at":{number},"data":'.encode(),
        f',"kind":{encode_basestring(kind)}'.encode(),
        f',"stream":{encode_basestring(stream)}'.encode(),
    )


class _Write:
    """A durable write, and the audit streams it appends to (locked first, in order,
    when a batch appends to several)."""

    __slots__ = ("op", "streams")

    def __init__(self, op: Op, streams: tuple[str, ...]) -> None:
        self.op = op
        self.streams = streams

    def __call__(self, conn: Connection) -> Any:
        return self.op(conn)


def _with_stream_locks(ops: Sequence[Op]) -> list[Op]:
    streams = sorted({s for op in ops if isinstance(op, _Write) for s in op.streams})
    if len(streams) < 2:
        return list(ops)

    def lock(conn: Connection) -> None:
        conn.execute("SELECT warden_audit_lock(%s)", (streams,))

    return [lock, *ops]


class _Session:
    """The writer thread's connection to PostgreSQL (see `warden.store.writer`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def connect(self) -> Connection:
        return self._db.connect()

    def run(self, conn: Connection, ops: Sequence[Op]) -> list[Any]:
        locked = _with_stream_locks(ops)
        try:
            results = transaction(conn, locked)
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.DiskFull):
            conn.close()  # a read-only session stays so: the next batch reconnects
            raise
        return results[len(locked) - len(ops) :]

    def rollback(self, conn: Connection) -> None:
        """Nothing left to do: `transaction` rolls back what failed."""

    def usable(self, conn: Connection) -> bool:
        return alive(conn)

    def error(self, exc: BaseException) -> BaseException:
        return store_error(exc, self._db.where)

    def close(self, conn: Connection) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


class PostgresStore(SharedState):
    """A `DurableStore` in a PostgreSQL database that many processes share."""

    seq_gaps = True
    """The audit log's global numbers may skip: verify it with ``contiguous=False``."""

    def __init__(
        self,
        url: str,
        *,
        group_commit: bool = True,
        max_batch: int = 256,
        pool_size: int = 10,
        kill_poll_s: float = 0.2,
        redactor: Redactor | None = None,
        idempotency_retention_s: float = 86_400.0,
        retain_days: int | None = None,
        history_days: float = 90.0,
        connect_timeout_s: float = 5.0,
        create: bool = True,
    ) -> None:
        """Open (and migrate) the database at `url`.

        `kill_poll_s` bounds how stale this process's view of what other replicas change
        may be: kill switches, breaker phases, history. `pool_size` connections serve
        reads and hot state; the writer has one more. Without `create`, a database with
        no Warden schema is W-STO-001 rather than set up (commands that only read).
        """
        db = Database(url, pool_size=pool_size, connect_timeout_s=connect_timeout_s)
        try:
            self._setup(db, create=create)
            super().__init__(db, poll_s=kill_poll_s, history_days=history_days)
            self.where = db.where
            """The database, as messages name it (no password)."""
            self.owner = new_owner()
            self.idempotency_retention_s = idempotency_retention_s
            self.retain_days = retain_days
            self._redactor = redactor if redactor is not None else Redactor()
            self._known_runs: set[str] = set()
            self._last_purge = 0.0
            self._closed = False
            self._direct = 0  # transactions committed without the writer
            self._direct_lock = threading.Lock()
            self._writer = (
                GroupWriter(_Session(db), max_batch=max_batch, name="warden-pg-writer")
                if group_commit
                else None
            )
            self._refresh_kills(force=True)
        except BaseException:
            db.close()
            raise

    @staticmethod
    def _setup(db: Database, *, create: bool) -> None:
        conn = db.connect()
        try:
            if not create:
                known = conn.execute("SELECT to_regclass('warden_schema') IS NOT NULL").fetchone()
                if not (known and known[0]):
                    raise StoreError(
                        "W-STO-001",
                        f"no Warden database at {db.where}: it holds no Warden schema",
                        hint="Nothing has been recorded there yet. Check the database name "
                        "in the URL.",
                    )
            migrate(conn, where=db.where)
        except psycopg.Error as exc:
            raise store_error(exc, db.where) from None
        finally:
            conn.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def _submit(self, op: Op, *streams: str) -> Any:
        """Commit `op` (in the writer's next batch, or alone); its result."""
        if self._closed:
            raise StoreError("W-STO-001", "the store is closed")
        write = _Write(op, streams)
        if self._writer is not None:
            return self._writer.submit(write)
        with self._direct_lock:
            self._direct += 1
        return self._db.transaction([write])[0]

    def flush(self) -> None:
        """Nothing to do: PostgreSQL commits deferred writes at once."""

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(transactions committed, write requests in them): the group-commit ratio."""
        if self._writer is not None:
            return self._writer.batches, self._writer.requests
        return self._direct, self._direct

    # --- the audit chain -----------------------------------------------------------------

    def _prepare(self, data: Mapping[str, Any], fields: frozenset[str] = frozenset()) -> Prepared:
        """Redact, then encode: in the caller's thread, outside the writer."""
        clean, removed = self._redactor.redact(data, fields)
        return canonical_json(clean), removed

    @staticmethod
    def _append(
        conn: Connection,
        stream: str,
        kind: str,
        at: float,
        prepared: Prepared,
        *,
        guard: str | None = None,
    ) -> None:
        """Queue one record's append (and its redacted values) on `conn`; with `guard`,
        only if the action of that id exists (it was recorded in this transaction)."""
        data_json, removed = prepared
        head, kind_json, stream_json = audit_pieces(stream, kind, at)
        params = (stream, at, kind, head, data_json, kind_json, stream_json)
        if guard is None:
            conn.execute(_APPEND, params)
        else:
            conn.execute(f"{_APPEND} {_IF_RECORDED}", (*params, guard))
        PostgresStore._vault(conn, removed, at, guard)

    @staticmethod
    def _vault(conn: Connection, removed: list[Any], at: float, guard: str | None) -> None:
        """The redacted values of the record just appended (``currval`` is its seq)."""
        for r in removed:
            values = (r.path, r.kind, r.commitment, r.salt, _json(r.value), at)
            if guard is None:
                conn.execute(
                    f"{_VAULT} VALUES (currval('audit_seq'), %s, %s, %s, %s, %s, %s)", values
                )
            else:
                conn.execute(
                    f"{_VAULT} SELECT currval('audit_seq'), %s, %s, %s, %s, %s, %s {_IF_RECORDED}",
                    (*values, guard),
                )

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
        self._submit(lambda conn: self._append(conn, stream, kind, at, prepared), stream)

    def append_batch(self, records: Sequence[tuple[str, str, float, Mapping[str, Any]]]) -> None:
        """Append many audit records in one transaction (imports and benchmarks)."""
        prepared = [(s, k, at, self._prepare(d)) for s, k, at, d in records]

        def op(conn: Connection) -> None:
            for stream, kind, at, p in prepared:
                self._append(conn, stream, kind, at, p)

        self._submit(op, *{s for s, _, _, _ in records})

    def audit_rows(
        self, *, after: int = 0, batch: int = 5000
    ) -> Iterator[tuple[int, str, int, bytes, bytes]]:
        """Every audit row after `after` as ``(seq, stream, stream_seq, body, hash)``, in
        seq order, from one snapshot (so each stream's records read as an unbroken run)."""
        conn = self._db.connect(autocommit=False)
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.cursor(name="warden_audit_rows", binary=True) as cur:
                cur.itersize = batch
                cur.execute(
                    "SELECT seq, stream, stream_seq, body, hash FROM audit "
                    "WHERE seq > %s ORDER BY seq",
                    (after,),
                )
                yield from cur
            conn.rollback()
        except psycopg.Error as exc:
            raise store_error(exc, self.where) from None
        finally:
            conn.close()

    def audit_count(self) -> int:
        """How many audit records the log holds."""
        row = self._db.one("SELECT count(*) FROM audit")
        return int(row[0]) if row else 0

    # --- kill switch -----------------------------------------------------------------------

    def set_kill(self, scope: str, *, engaged: bool, by: str, reason: str, at: float) -> None:
        parse_scope(scope)
        prepared = self._prepare({"scope": scope, "engaged": engaged, "by": by, "reason": reason})

        def op(conn: Connection) -> None:
            if engaged:
                conn.execute(
                    "INSERT INTO kills (scope, by, reason, at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (scope) DO UPDATE SET by = excluded.by, "
                    "reason = excluded.reason, at = excluded.at",
                    (scope, by, reason, at),
                )
            else:
                conn.execute("DELETE FROM kills WHERE scope = %s", (scope,))
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'kill_version'")
            self._append(conn, SYSTEM_STREAM, "kill" if engaged else "unkill", at, prepared)

        self._submit(op, SYSTEM_STREAM)
        self._refresh_kills(force=True)

    # --- actions ---------------------------------------------------------------------------

    def record_decision(self, action: NewAction) -> ActionView | None:
        a = action
        stream = agent_stream(a.agent)
        prepared = self._prepare(decision_audit(a), a.redact_fields)
        approval = a.approval
        opened = approval_audit(a)
        approval_prepared = self._prepare(opened) if opened is not None else None
        row = action_row(a)
        new_run = a.run_id not in self._known_runs

        data_json, removed = prepared
        pieces = audit_pieces(stream, "decision", a.decided_at)

        def op(conn: Connection) -> Later:
            # the action, its key claim and its audit record in one statement; the rest
            # only if the action was recorded (the key was free)
            recorded = conn.execute(
                _DECIDE, (*row, stream, a.decided_at, "decision", pieces[0], data_json, *pieces[1:])
            )
            self._vault(conn, removed, a.decided_at, a.id)
            if new_run:
                conn.execute(
                    "INSERT INTO runs (id, agent, status, policy_revision, started_at, started_by) "
                    f"SELECT %s, %s, 'running', %s, %s, %s {_IF_RECORDED} "
                    "ON CONFLICT (id) DO NOTHING",
                    (a.run_id, a.agent, a.policy_revision, a.decided_at, a.started_by, a.id),
                )
            if a.run_status is not None:
                conn.execute(
                    "UPDATE runs SET status = %s, reason = coalesce(%s, reason) "
                    "WHERE id = %s AND EXISTS (SELECT 1 FROM actions WHERE id = %s)",
                    (a.run_status.value, a.run_reason, a.run_id, a.id),
                )
            if approval is not None and approval_prepared is not None:
                conn.execute(
                    "INSERT INTO approvals (id, action_id, binding, policy_revision, roles, "
                    "count, requested_by, requested_at, expires_at, status) "
                    f"SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending' {_IF_RECORDED}",
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
                        a.id,
                    ),
                )
                self._append(
                    conn, stream, "approval.request", a.decided_at, approval_prepared, guard=a.id
                )

            def then() -> ActionView | None:
                if recorded.fetchone() is not None:
                    return None
                found = conn.execute(  # the key is taken: nothing was written
                    f"SELECT {ACTION_COLUMNS} FROM actions WHERE agent = %s AND idem_key = %s",
                    (a.agent, a.idem_key),
                ).fetchone()
                if found is None:
                    raise StoreError("W-STO-001", f"action {a.id} could not be recorded")
                return action_view(found)

            return Later(then)

        existing = self._submit(op, stream)
        if existing is None:
            self._known_runs.add(a.run_id)
        return existing

    def record_outcome(self, outcome: ActionOutcome, *, wait: bool = True) -> bool:
        """Record an outcome if the action is still in ``outcome.expect``.

        ``wait=False`` commits at once as well: PostgreSQL has no cheap way to ride with a
        later write. ``outcome.ledger`` is kept on the run row only as a fallback for a run
        whose ledger row is gone: the shared ledger row, not one process's view, is what
        `run` shows."""
        o = outcome
        prepared = self._prepare(outcome_audit(o), o.redact_fields)
        result = _json(o.result) if o.result is not None else None
        error = _json(dict(o.error)) if o.error is not None else None
        stream = agent_stream(o.agent)

        data_json, removed = prepared
        pieces = audit_pieces(stream, "outcome", o.at)
        figures = o.ledger if o.ledger is not None else (0, 0.0, 0)  # greatest(x, 0) = x
        status = o.run_status.value if o.run_status is not None else None

        def op(conn: Connection) -> Later:
            # the compare-and-set and its audit record in one statement
            done = conn.execute(
                _OUTCOME,
                (
                    o.state.value,
                    o.at,
                    o.attempts,
                    result,
                    error,
                    o.release_key,
                    o.action_id,
                    o.expect.value,
                    stream,
                    o.at,
                    "outcome",
                    pieces[0],
                    data_json,
                    *pieces[1:],
                ),
            )

            def then() -> bool:
                appended = done.fetchone()
                if appended is None:
                    return False  # settled meanwhile (another recoverer): nothing written
                for r in removed:
                    conn.execute(
                        f"{_VAULT} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (appended[0], r.path, r.kind, r.commitment, r.salt, _json(r.value), o.at),
                    )
                if o.ledger is not None or status is not None:
                    conn.execute(
                        "UPDATE runs SET calls = greatest(calls, %s), usd = greatest(usd, %s), "
                        "tokens = greatest(tokens, %s), status = coalesce(%s, status), "
                        "reason = coalesce(%s, reason) WHERE id = %s",
                        (*figures, status, o.run_reason if status else None, o.run_id),
                    )
                return True

            return Later(then)

        written = bool(self._submit(op, stream))
        if o.at - self._last_purge > 3600.0:  # hourly, in the background when it can be
            self._last_purge = o.at
            if self._writer is not None:
                self._writer.submit_nowait(_Write(self._purge_op(o.at), ()))
            else:
                with contextlib.suppress(StoreError):
                    self.purge(o.at)
        return written

    def action(self, action_id: str) -> ActionView | None:
        row = self._db.one(f"SELECT {ACTION_COLUMNS} FROM actions WHERE id = %s", (action_id,))
        return action_view(row) if row is not None else None

    def action_by_key(self, agent: str, key: str) -> ActionView | None:
        row = self._db.one(
            f"SELECT {ACTION_COLUMNS} FROM actions WHERE agent = %s AND idem_key = %s",
            (agent, key),
        )
        return action_view(row) if row is not None else None

    def open_actions(self, state: ActionState) -> Sequence[ActionView]:
        rows = self._db.rows(
            f"SELECT {ACTION_COLUMNS} FROM actions WHERE state = %s ORDER BY decided_at, n",
            (state.value,),
        )
        return [action_view(r) for r in rows]

    # --- replay: recorded decisions and policy revisions ------------------------------------

    def save_policy_revision(
        self, revision: str, sources: Sequence[PolicySource], *, at: float
    ) -> None:
        if self._db.one("SELECT 1 FROM policy_revisions WHERE revision = %s", (revision,)):
            return  # the common case: a replica loading a revision kept before
        body = sources_json(sources)
        self._submit(
            lambda conn: conn.execute(
                "INSERT INTO policy_revisions (revision, sources, first_seen) "
                "VALUES (%s, %s, %s) ON CONFLICT (revision) DO NOTHING",
                (revision, body, at),
            )
        )

    def policy_revision(self, revision: str) -> StoredRevision | None:
        row = self._db.one(
            "SELECT sources, first_seen FROM policy_revisions WHERE revision = %s", (revision,)
        )
        if row is None:
            return None
        return StoredRevision(
            revision=revision, sources=revision_sources(row[0]), first_seen=row[1]
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
        sql, params = recorded_query(
            seq="n",
            placeholder="%s",
            run_id=run_id,
            agent=agent,
            since=since,
            until=until,
            inputs=inputs,
        )
        return [recorded_decision(r) for r in self._db.rows(sql, params)]

    # --- approvals -------------------------------------------------------------------------

    def start_approved(self, approval_id: str, action_id: str, *, owner: str, at: float) -> None:
        found = self.action(action_id)
        stream = agent_stream(found.agent if found is not None else "")
        prepared = self._prepare({"approval_id": approval_id, "action_id": action_id})

        def op(conn: Connection) -> Later:
            spent = conn.execute(
                "UPDATE approvals SET status = 'used', used_at = %s, "
                "used_recorded = clock_timestamp() WHERE id = %s AND status = 'approved' "
                "RETURNING id",
                (at, approval_id),
            )

            def then() -> None:
                if spent.fetchone() is None:
                    raise ApprovalError("W-APR-004", f"approval {approval_id} was already used")
                conn.execute(
                    "UPDATE actions SET state = 'executing', owner = %s, approved = true "
                    "WHERE id = %s AND state = 'awaiting_approval'",
                    (owner, action_id),
                )
                conn.execute(
                    "UPDATE runs SET status = 'running' WHERE status = 'waiting' AND id = "
                    "(SELECT run_id FROM actions WHERE id = %s)",
                    (action_id,),
                )
                self._append(conn, stream, "approval.used", at, prepared)

            return Later(then)

        self._submit(op, stream)

    @staticmethod
    def _approval(conn: Connection, approval_id: str) -> ApprovalRequest | None:
        row = conn.execute(
            "SELECT p.id, p.action_id, a.run_id, a.agent, a.tool, a.args, p.binding, "
            "p.policy_revision, p.roles, p.count, p.requested_by, p.requested_at, "
            "p.expires_at, p.status, a.reasons FROM approvals p JOIN actions a "
            "ON a.id = p.action_id WHERE p.id = %s",
            (approval_id,),
        ).fetchone()
        if row is None:
            return None
        verdicts = tuple(
            Verdict(approver=who, role=role, approve=ok, reason=why, at=at)
            for who, role, ok, why, at in conn.execute(
                "SELECT approver, role, approve, reason, at FROM verdicts "
                "WHERE approval_id = %s ORDER BY at, approver",
                (approval_id,),
            )
        )
        return ApprovalRequest(
            id=row[0],
            action_id=row[1],
            run_id=row[2],
            agent=row[3],
            tool=row[4],
            args=loads(row[5]),
            binding=row[6],
            policy_revision=row[7],
            roles=tuple(loads(row[8])),
            count=row[9],
            requested_by=tuple(loads(row[10])),
            requested_at=row[11],
            expires_at=row[12],
            status=ApprovalStatus(row[13]),
            reasons=tuple(loads(row[14])),
            verdicts=verdicts,
        )

    def approval(self, approval_id: str) -> ApprovalRequest | None:
        return self._db.run(lambda conn: self._approval(conn, approval_id))

    def approvals(
        self, status: ApprovalStatus | None = None, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        def read(conn: Connection) -> list[ApprovalRequest]:
            if status is None:
                ids = conn.execute(
                    "SELECT id FROM approvals ORDER BY requested_at DESC LIMIT %s", (limit,)
                ).fetchall()
            else:
                ids = conn.execute(
                    "SELECT id FROM approvals WHERE status = %s "
                    "ORDER BY requested_at DESC LIMIT %s",
                    (status.value, limit),
                ).fetchall()
            found = (self._approval(conn, i) for (i,) in ids)
            return [r for r in found if r is not None]

        return self._db.run(read)

    def add_verdict(
        self, approval_id: str, judge: Callable[[ApprovalRequest], Verdict]
    ) -> ApprovalRequest:
        owner = self._db.one(
            "SELECT a.agent FROM approvals p JOIN actions a ON a.id = p.action_id WHERE p.id = %s",
            (approval_id,),
        )
        if owner is None:
            raise ApprovalError("W-APR-008", f"no approval request {approval_id!r}")
        stream = agent_stream(owner[0])

        def op(conn: Connection) -> Later:
            conn.execute("SELECT id FROM approvals WHERE id = %s FOR UPDATE", (approval_id,))

            def then() -> ApprovalRequest:
                request = self._approval(conn, approval_id)  # read under the row lock
                if request is None:
                    raise ApprovalError("W-APR-008", f"no approval request {approval_id!r}")
                verdict = judge(request)
                conn.execute(
                    "INSERT INTO verdicts (approval_id, approver, role, approve, reason, at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
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
                    "UPDATE approvals SET status = %s WHERE id = %s", (status.value, approval_id)
                )
                if status is ApprovalStatus.DENIED:
                    conn.execute(
                        "UPDATE actions SET state = 'rejected', finished_at = %s WHERE id = %s",
                        (verdict.at, request.action_id),
                    )
                data = verdict_audit(request, verdict, status)
                self._append(conn, stream, "approval.verdict", verdict.at, self._prepare(data))
                updated = self._approval(conn, approval_id)
                assert updated is not None
                return updated

            return Later(then)

        return self._submit(op, stream)

    def expire_approvals(self, now: float) -> int:
        due = self._db.one(
            "SELECT count(*) FROM approvals WHERE status IN ('pending', 'approved') "
            "AND expires_at <= %s",
            (now,),
        )
        if not due or not due[0]:
            return 0  # the common case: no write at all

        def op(conn: Connection) -> Later:
            expired = conn.execute(
                "UPDATE approvals p SET status = 'expired' FROM actions a "
                "WHERE a.id = p.action_id AND p.status IN ('pending', 'approved') "
                "AND p.expires_at <= %s RETURNING p.id, p.action_id, a.agent",
                (now,),
            )

            def then() -> int:
                rows = expired.fetchall()
                for approval_id, action_id, agent in rows:
                    conn.execute(
                        "UPDATE actions SET state = 'rejected', finished_at = %s "
                        "WHERE id = %s AND state = 'awaiting_approval'",
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

            return Later(then)

        return int(self._submit(op))

    # --- runs ------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunView | None:
        def read(conn: Connection) -> RunView | None:
            row = conn.execute(f"{_RUNS} WHERE r.id = %s", (run_id,)).fetchone()
            if row is None:
                return None
            actions = conn.execute(
                f"SELECT {ACTION_COLUMNS} FROM actions WHERE run_id = %s ORDER BY decided_at, n",
                (run_id,),
            ).fetchall()
            return run_view(row, tuple(action_view(a) for a in actions))

        return self._db.run(read)

    def runs(self, *, limit: int = 50, status: RunStatus | None = None) -> Sequence[RunView]:
        if status is None:
            rows = self._db.rows(f"{_RUNS} ORDER BY r.started_at DESC LIMIT %s", (limit,))
        else:
            rows = self._db.rows(
                f"{_RUNS} WHERE r.status = %s ORDER BY r.started_at DESC LIMIT %s",
                (status.value, limit),
            )
        return [run_view(r, ()) for r in rows]

    def end_run(
        self, run_id: str, status: RunStatus, *, at: float, outcome: str | None, reason: str | None
    ) -> None:
        """End a run; its ledger's figures are copied onto the run row, which keeps them
        once the ledger is forgotten."""
        found = self._db.one("SELECT agent FROM runs WHERE id = %s", (run_id,))
        if found is None:
            return
        stream = agent_stream(found[0])
        prepared = self._prepare(
            {"run_id": run_id, "status": status.value, "outcome": outcome, "reason": reason}
        )

        def op(conn: Connection) -> None:
            conn.execute(
                "UPDATE runs SET status = %s, ended_at = %s, outcome = %s, "
                "reason = coalesce(%s, reason) WHERE id = %s",
                (status.value, at, outcome, reason, run_id),
            )
            conn.execute(
                "UPDATE runs r SET calls = greatest(r.calls, l.committed_calls), "
                "usd = greatest(r.usd, l.committed_usd), "
                "tokens = greatest(r.tokens, l.committed_tokens) "
                "FROM ledgers l WHERE l.run_id = r.id AND r.id = %s",
                (run_id,),
            )
            self._append(conn, stream, "run.end", at, prepared)

        self._submit(op, stream)

    def save_run_state(
        self, start: RunStart, state: Mapping[str, Any], *, at: float, wait: bool = True
    ) -> None:
        """Save the runner's state of a run, creating the run if it is new.

        ``wait=False`` commits at once as well (see `record_outcome`). The run's budget
        figures are not copied: the shared ledger row holds them."""
        body = to_json(state).decode("utf-8")
        escalation = _json(dict(start.escalation)) if start.escalation is not None else None
        known = start.run_id in self._known_runs

        def op(conn: Connection) -> None:
            if not known:
                conn.execute(
                    "INSERT INTO runs (id, agent, status, policy_revision, started_at, "
                    "started_by, task) VALUES (%s, %s, 'running', %s, %s, %s, %s) "
                    "ON CONFLICT (id) DO NOTHING",
                    (
                        start.run_id,
                        start.agent,
                        start.policy_revision,
                        start.started_at,
                        start.started_by,
                        start.task,
                    ),
                )
            if start.status is not None:  # running or waiting: the run is open (again)
                conn.execute(
                    "UPDATE runs SET status = %s, ended_at = NULL WHERE id = %s",
                    (start.status.value, start.run_id),
                )
            conn.execute(
                "INSERT INTO run_states (run_id, state, escalation, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET "
                "state = excluded.state, escalation = excluded.escalation, "
                "updated_at = excluded.updated_at",
                (start.run_id, body, escalation, at),
            )

        self._submit(op)
        self._known_runs.add(start.run_id)

    def run_state(self, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        row = self._db.one("SELECT state, escalation FROM run_states WHERE run_id = %s", (run_id,))
        if row is None:
            return None
        return loads(row[0]), loads(row[1])

    # --- keys ------------------------------------------------------------------------------

    def add_key(self, key: ApiKey, *, retire_at: float | None = None) -> None:
        prepared = self._prepare(key_audit(key, retire_at=retire_at))

        def op(conn: Connection) -> None:
            conn.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                key_row(key),
            )
            if key.replaces is not None:
                conn.execute(
                    "UPDATE api_keys SET expires_at = least(coalesce(expires_at, %s), %s) "
                    "WHERE id = %s",
                    (retire_at, retire_at, key.replaces),
                )
            self._append(conn, SYSTEM_STREAM, "key.create", key.created_at, prepared)

        self._submit(op, SYSTEM_STREAM)

    def key(self, key_id: str) -> ApiKey | None:
        row = self._db.one(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        return key_from_row(row) if row is not None else None

    def keys(self) -> Sequence[ApiKey]:
        rows = self._db.rows(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC")
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, *, at: float, by: str) -> ApiKey:
        prepared = self._prepare({"key_id": key_id, "by": by})

        def op(conn: Connection) -> Later:
            revoked = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s), "
                "revoked_by = coalesce(revoked_by, %s) WHERE id = %s RETURNING id",
                (at, by, key_id),
            )

            def then() -> None:
                if revoked.fetchone() is None:
                    raise AuthError("W-AUTH-002", f"no key {key_id!r}")
                self._append(conn, SYSTEM_STREAM, "key.revoke", at, prepared)

            return Later(then)

        self._submit(op, SYSTEM_STREAM)
        found = self.key(key_id)
        assert found is not None
        return found

    # --- retention -------------------------------------------------------------------------

    def _purge_op(self, now: float) -> Op:
        def op(conn: Connection) -> None:
            conn.execute(
                "UPDATE actions SET idem_key = NULL WHERE idem_key IS NOT NULL "
                "AND decided_at < %s AND state <> ALL(%s)",
                (now - self.idempotency_retention_s, list(_LIVE_STATES)),
            )
            if self.retain_days is not None:
                conn.execute(
                    "DELETE FROM audit_vault WHERE at < %s", (now - self.retain_days * 86_400.0,)
                )

        return op

    def purge(self, now: float) -> None:
        """Drop idempotency keys past their retention, and redacted values past
        ``retain_days`` (the audit chain keeps only commitments, so it still verifies)."""
        self._submit(self._purge_op(now))
