"""Connections to PostgreSQL: a pool for reads and single statements, transactions for
durable writes, and psycopg's errors turned into `StoreError`.

- Every failure reaches callers as a `StoreError`: W-STO-004 when the database refuses
  writes (a standby, ``default_transaction_read_only``, a full disk), W-STO-001 for the
  rest (refused, gone, timed out). A message names the database as
  ``postgresql://user@host:port/name``: never with its password.
- A connection that failed is dropped (the pool replaces it), and one that met a
  read-only database is closed too, so the store works again by itself once the
  database does, without a restart.
- A pooled connection the server ended while it was idle is noticed before use (a poll
  of its socket) and replaced; a read whose connection died under it is retried once.
  Once a connection is lost, calls no longer wait for the pool: while the server is
  down they fail at once with its reason, and once it is back they use connections of
  their own until the pool has reconnected.
- Durable writes are ops run by `transaction`: in pipeline mode, so a transaction of
  many statements costs two round trips, not one per statement. An op that needs a
  result returns a `Later`, resolved once the pipeline has synced.
"""

from __future__ import annotations

import contextlib
import re
import select
from collections.abc import Callable, Sequence
from typing import Any, LiteralString, TypeVar

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from warden.errors import StoreError

__all__ = ["Database", "Later", "Op", "alive", "describe", "store_error", "transaction"]

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
Op = Callable[[Connection], Any]
"""A durable write: queues statements on the connection; returns a value or a `Later`."""

_SECRET = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
_REFUSES_WRITES = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.DiskFull)


class Later:
    """What an `Op` returns when its result needs the answers to its statements: `fn`
    runs once the pipeline has synced, inside the same transaction (it may queue more
    statements, and may raise to roll the transaction back)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn


def describe(url: str) -> str:
    """``postgresql://user@host:port/name``: the database, without the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "the PostgreSQL database (its URL does not parse)"
    user = parts.get("user")
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    name = parts.get("dbname") or user or ""
    return f"postgresql://{f'{user}@' if user else ''}{host}:{port}/{name}"


def _scrub(text: str) -> str:
    """A driver message, first line only, any ``user:password@`` masked."""
    first = text.strip().splitlines()[0] if text.strip() else type(text).__name__
    return _SECRET.sub(r"\1:***@", first)


def store_error(exc: BaseException, where: str) -> BaseException:
    """The `StoreError` a caller sees for a driver error (other exceptions pass)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, _REFUSES_WRITES):
        return StoreError("W-STO-004", f"{where} refuses writes: {_scrub(str(exc))}")
    if isinstance(exc, PoolTimeout):
        return StoreError("W-STO-001", f"no connection to {where}: {_scrub(str(exc))}")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError("W-STO-001", f"cannot reach {where}: {_scrub(str(exc))}")
    if isinstance(exc, psycopg.Error):
        code = f" [{exc.sqlstate}]" if exc.sqlstate else ""
        return StoreError("W-STO-001", f"{where}{code}: {_scrub(str(exc))}")
    return exc


def alive(conn: Connection) -> bool:
    """Whether an idle connection still looks usable: not closed, and nothing waiting on
    its socket (an idle session is sent something only when the server ends it)."""
    if conn.closed or conn.broken:
        return False
    try:
        waiting, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not waiting


def transaction(conn: Connection, ops: Sequence[Op], *, synchronous: bool = False) -> list[Any]:
    """Run `ops` in one transaction on an autocommit connection, pipelined, and commit;
    returns their results. Two round trips: one for the statements the ops queue, one for
    those their `Later` results queue and the COMMIT (one in all without a `Later`).

    With `synchronous`, the commit waits for the WAL flush even on a connection whose
    session does not (the pool's, see `Database`). Raises driver errors as they are, after
    rolling back.
    """
    try:
        with conn.pipeline() as pipe:
            conn.execute("BEGIN")
            if synchronous:
                conn.execute("SET LOCAL synchronous_commit = on")
            results = [op(conn) for op in ops]
            if any(isinstance(r, Later) for r in results):
                pipe.sync()
                results = [r.fn() if isinstance(r, Later) else r for r in results]
            conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    return results


class Database:
    """One PostgreSQL database through a pool of up to `pool_size` connections.

    Pool connections are in autocommit with ``synchronous_commit = off``: they serve
    reads and the single-statement updates of shared hot state (budgets, loop counts,
    breakers), whose commits every replica sees at once and which reach disk no later
    than the next synchronous commit, the durable record that depends on them (the WAL
    is flushed in order). Durable writes pass ``synchronous=True`` to `transaction`.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout_s: float = 5.0,
        name: str = "warden",
    ) -> None:
        self.url = url
        self.where = describe(url)
        self._connect_timeout_s = connect_timeout_s
        self._size = max(1, pool_size)
        self._down = False
        """The last connection attempt outside the pool failed: the server is down."""
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout_s))},
            min_size=1,
            max_size=self._size,
            open=False,
            configure=_fast_commits,
            name=name,
            timeout=connect_timeout_s,
            reconnect_timeout=30.0,
        )
        self._pool.open(wait=False)

    def connect(self, *, autocommit: bool = True) -> Connection:
        """A connection of its own, outside the pool (the writer's, migrations')."""
        try:
            return psycopg.connect(
                self.url,
                autocommit=autocommit,
                connect_timeout=max(1, round(self._connect_timeout_s)),
            )
        except psycopg.Error as exc:
            raise store_error(exc, self.where) from None

    def run(self, fn: Callable[[Connection], T], *, idempotent: bool = True) -> T:
        """`fn(connection)` on a pool connection.

        A connection the server ended while it sat in the pool is dropped unused (the pool
        replaces it). One that dies under `fn` is retried once on a fresh connection if
        `fn` is `idempotent`, or if the server had ended the session before `fn` ran.
        When the pool has no connection to give (the server was down, or every connection
        is busy), `fn` runs on a connection of its own: it fails at once, with the
        server's reason, while the server is down, and works as soon as it is back."""
        if self._down and not self._pool_ready():
            return self._alone(fn)  # fails at once while down; works once it is back
        retried, stale = False, 0
        while True:
            conn: Connection | None = None
            try:
                with self._pool.connection() as conn:
                    if not alive(conn) and stale < self._size:
                        stale += 1
                        conn.close()  # the pool drops a closed connection
                        continue
                    try:
                        result = fn(conn)
                    except _REFUSES_WRITES:
                        conn.close()  # its session may stay read-only: take a new one
                        raise
                    self._down = False  # the pool serves again
                    return result
            except PoolTimeout:
                return self._alone(fn)
            except psycopg.Error as exc:
                lost = conn is not None and (conn.closed or conn.broken)
                safe = idempotent or isinstance(exc, psycopg.errors.AdminShutdown)
                if lost and safe and not retried:
                    retried = True
                    continue
                if lost:  # the server went away: the next calls fail fast, not in the pool
                    self._down = True
                raise store_error(exc, self.where) from None

    def _pool_ready(self) -> bool:
        return self._pool.get_stats().get("pool_available", 0) > 0

    def _alone(self, fn: Callable[[Connection], T]) -> T:
        """`fn` on a new connection outside the pool, closed after."""
        try:
            conn = self.connect()
        except StoreError:
            self._down = True
            raise
        # the server answers again; calls go on here until the pool has reconnected
        try:
            _fast_commits(conn)
            return fn(conn)
        except psycopg.Error as exc:
            raise store_error(exc, self.where) from None
        finally:
            conn.close()

    def rows(
        self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Every row `sql` returns."""
        return self.run(lambda conn: conn.execute(sql, params).fetchall())

    def one(
        self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
    ) -> tuple[Any, ...] | None:
        """The first row `sql` returns, or None."""
        return self.run(lambda conn: conn.execute(sql, params).fetchone())

    def update(
        self, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
    ) -> tuple[Any, ...] | None:
        """Run one statement that changes shared state, in its own (fast) commit; the first
        row it returns, if any. Retried only if the server never saw it."""

        def go(conn: Connection) -> tuple[Any, ...] | None:
            cur = conn.execute(sql, params)
            return cur.fetchone() if cur.description is not None else None

        return self.run(go, idempotent=False)

    def transaction(self, ops: Sequence[Op]) -> list[Any]:
        """`ops` in one synchronous transaction on a pool connection (no group commit)."""
        return self.run(lambda conn: transaction(conn, ops, synchronous=True), idempotent=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close(timeout=5.0)


def _fast_commits(conn: Connection) -> None:
    conn.execute("SET synchronous_commit = off")
