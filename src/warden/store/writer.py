"""One writer thread with group commit, for any database behind a `Session`.

Every durable write goes through `GroupWriter.submit`: the caller hands over a function
of the connection and blocks until the transaction holding it is committed. The thread
takes whatever requests are waiting, runs them in one transaction and commits once, so 32
concurrent callers pay for one commit (one fsync), not 32.

A request that raises is not allowed to spoil its neighbours: the batch is rolled back
and every request in it is retried in a transaction of its own, so only the faulty one
gets the error. When the connection itself is lost, nothing is retried (the commit may or
may not have happened): every request in the batch gets the error, and the next batch
opens a new connection, so the writer outlives a database restart.

A caller on an event loop uses `GroupWriter.submit_async` instead, and awaits a future:
the writer settles all the futures of a batch in one callback on their loop after the
commit, so a batch of 30 costs the loop one wakeup, not 30.

`Writer` is the SQLite flavour (``BEGIN IMMEDIATE``; before each batch `on_begin` runs
inside the transaction, which the store uses to notice commits by other processes); the
PostgreSQL store brings its own `Session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from warden.errors import StoreError

__all__ = ["GroupWriter", "Session", "Writer"]

T = TypeVar("T")
C = TypeVar("C")
Op = Callable[[C], T]


class Session(Protocol[C]):
    """The database-specific part of a `GroupWriter`: connecting, running a transaction."""

    def connect(self) -> C:
        """A new connection (raise a `StoreError` if the database cannot be reached)."""
        ...

    def run(self, conn: C, ops: Sequence[Callable[[C], Any]]) -> list[Any]:
        """Run `ops` in order in one transaction and commit it; their results."""
        ...

    def rollback(self, conn: C) -> None:
        """Undo a failed `run` (never raises)."""
        ...

    def usable(self, conn: C) -> bool:
        """False once the connection is lost; the writer then opens a new one."""
        ...

    def error(self, exc: BaseException) -> BaseException:
        """What the caller sees for `exc` (a driver error becomes a `StoreError`)."""
        ...

    def close(self, conn: C) -> None:
        """Close the connection (never raises)."""
        ...


class _Request(Generic[T]):
    __slots__ = ("done", "error", "future", "op", "result")

    def __init__(
        self, op: Callable[[Any], T], wait: bool, future: asyncio.Future[T] | None = None
    ) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: threading.Lock | None = None
        self.future = future
        if wait:
            self.done = threading.Lock()
            self.done.acquire()


def _settle(requests: list[_Request[Any]]) -> None:
    """On the futures' loop: hand each its result or error (unless its caller gave up)."""
    for req in requests:
        future = req.future
        if future is None or future.done():
            continue
        if req.error is not None:
            future.set_exception(req.error)
        else:
            future.set_result(req.result)


_STOP = object()


class GroupWriter(Generic[C]):
    """Serialises and group-commits writes to one database, through `session`."""

    def __init__(self, session: Session[C], *, max_batch: int = 512, name: str = "warden-writer"):
        self._session = session
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._conn: C | None = None
        self._settled: list[_Request[Any]] = []
        """Finished requests of the batch whose callers await a future (writer thread)."""
        self.batches = 0
        """Transactions committed or attempted (a retried batch counts once)."""
        self.requests = 0
        """Requests in them."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, op: Op[C, T]) -> T:
        """Run `op(connection)` in the next batch; return once it is committed."""
        if self._closed:
            raise StoreError("W-STO-001", "the store is closed")
        req = _Request(op, wait=True)
        self._queue.put(req)
        assert req.done is not None
        req.done.acquire()
        if req.error is not None:
            raise req.error
        return req.result

    def submit_async(self, op: Op[C, T]) -> asyncio.Future[T]:
        """Run `op(connection)` in the next batch; a future of the running loop that is
        settled once it is committed."""
        if self._closed:
            raise StoreError("W-STO-001", "the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Request(op, wait=False, future=future))
        return future

    def submit_nowait(self, op: Op[C, Any]) -> None:
        """Queue `op` for the next batch without waiting (best-effort bookkeeping)."""
        if not self._closed:
            self._queue.put(_Request(op, wait=False))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._conn = self._session.connect()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        get, get_nowait = self._queue.get, self._queue.get_nowait
        try:
            while True:
                first = get()
                if first is _STOP:
                    return
                batch: list[_Request[Any]] = [first]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        more = get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)
                self._commit(batch)
                if self._settled:
                    self._wake()
                if stop:
                    return
        finally:
            if self._conn is not None:
                self._session.close(self._conn)

    def _connection(self) -> C:
        conn = self._conn
        if conn is not None and self._session.usable(conn):
            return conn
        if conn is not None:
            self._conn = None
            self._session.close(conn)
        self._conn = self._session.connect()
        return self._conn

    def _commit(self, batch: list[_Request[Any]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            conn = self._connection()
        except BaseException as exc:
            for req in batch:
                self._finish(req, exc)
            return
        try:
            results = self._session.run(conn, [req.op for req in batch])
        except BaseException as exc:
            self._session.rollback(conn)
            if len(batch) == 1 or not self._session.usable(conn):
                for req in batch:
                    self._finish(req, exc)
                return
            self._one_by_one(conn, batch)
            return
        for req, result in zip(batch, results, strict=True):
            req.result = result
            self._finish(req, None)

    def _one_by_one(self, conn: C, batch: list[_Request[Any]]) -> None:
        """Find the faulty requests: each in a transaction of its own."""
        lost: BaseException | None = None
        for req in batch:
            if lost is not None:
                self._finish(req, lost)
                continue
            try:
                req.result = self._session.run(conn, [req.op])[0]
            except BaseException as alone:
                self._session.rollback(conn)
                if not self._session.usable(conn):
                    lost = alone
                self._finish(req, alone)
            else:
                self._finish(req, None)

    def _finish(self, req: _Request[Any], exc: BaseException | None) -> None:
        if exc is not None:
            req.result = None
            req.error = self._session.error(exc)
        if req.done is not None:
            req.done.release()
        elif req.future is not None:
            self._settled.append(req)

    def _wake(self) -> None:
        """Settle the batch's futures: one callback per event loop."""
        settled, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[_Request[Any]]] = {}
        for req in settled:
            assert req.future is not None
            by_loop.setdefault(req.future.get_loop(), []).append(req)
        for loop, requests in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, requests)


class _SQLiteSession:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on a connection in autocommit mode."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_begin: Callable[[sqlite3.Connection], None] | None,
        on_rollback: Callable[[], None] | None,
    ) -> None:
        self._connect = connect
        self._on_begin = on_begin
        self._on_rollback = on_rollback

    def connect(self) -> sqlite3.Connection:
        return self._connect()

    def run(
        self, conn: sqlite3.Connection, ops: Sequence[Callable[[sqlite3.Connection], Any]]
    ) -> list[Any]:
        conn.execute("BEGIN IMMEDIATE")
        if self._on_begin is not None:
            self._on_begin(conn)
        results = [op(conn) for op in ops]
        conn.execute("COMMIT")
        return results

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if self._on_rollback is not None:
            self._on_rollback()

    def usable(self, conn: sqlite3.Connection) -> bool:
        return True

    def error(self, exc: BaseException) -> BaseException:
        return StoreError("W-STO-001", f"SQLite: {exc}") if isinstance(exc, sqlite3.Error) else exc

    def close(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


class Writer(GroupWriter[sqlite3.Connection]):
    """Serialises and group-commits writes to one SQLite database (``synchronous=FULL``:
    a caller returns once its transaction is on disk)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = 512,
        on_begin: Callable[[sqlite3.Connection], None] | None = None,
        on_rollback: Callable[[], None] | None = None,
        name: str = "warden-writer",
    ) -> None:
        super().__init__(
            _SQLiteSession(connect, on_begin, on_rollback), max_batch=max_batch, name=name
        )
