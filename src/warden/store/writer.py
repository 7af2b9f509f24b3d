"""One writer thread with group commit.

Every write to the SQLite file goes through `Writer.submit`: the caller hands over a
function of the connection and blocks until the transaction holding it is committed
(``synchronous=FULL``: on disk). The thread takes whatever requests are waiting, runs them
in one transaction and commits once, so 32 concurrent callers pay for one fsync, not 32.

A request that raises is not allowed to spoil its neighbours: the batch is rolled back
and every request in it is retried in a transaction of its own, so only the faulty one
gets the error. Before each batch, `on_begin` runs inside the transaction (the store uses
it to notice commits by other processes).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from warden.errors import StoreError

__all__ = ["Writer"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]


class _Request(Generic[T]):
    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Op[T], wait: bool) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: threading.Lock | None = None
        if wait:
            self.done = threading.Lock()
            self.done.acquire()


_STOP = object()


class Writer:
    """Serialises and group-commits writes to one SQLite database."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = 512,
        on_begin: Callable[[sqlite3.Connection], None] | None = None,
        on_rollback: Callable[[], None] | None = None,
        name: str = "warden-writer",
    ) -> None:
        self._connect = connect
        self.max_batch = max_batch
        self._on_begin = on_begin
        self._on_rollback = on_rollback
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.batches = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def submit(self, op: Op[T]) -> T:
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

    def submit_nowait(self, op: Op[Any]) -> None:
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
            conn = self._connect()
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
                self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Request[Any]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            self._transaction(conn, batch)
        except BaseException as exc:
            self._rollback(conn)
            if len(batch) == 1:
                self._finish(batch[0], exc)
                return
            for req in batch:  # find the faulty one: each in a transaction of its own
                req.result = None
                try:
                    self._transaction(conn, [req])
                except BaseException as alone:
                    self._rollback(conn)
                    self._finish(req, alone)
                else:
                    self._finish(req, None)
            return
        for req in batch:
            self._finish(req, None)

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Request[Any]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        if self._on_begin is not None:
            self._on_begin(conn)
        for req in batch:
            req.result = req.op(conn)
        conn.execute("COMMIT")

    @staticmethod
    def _finish(req: _Request[Any], exc: BaseException | None) -> None:
        if exc is not None:
            req.error = (
                StoreError("W-STO-001", f"SQLite: {exc}") if isinstance(exc, sqlite3.Error) else exc
            )
        if req.done is not None:
            req.done.release()

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if self._on_rollback is not None:
            self._on_rollback()
