"""Durable governed calls: `Gate.execute` on SQLite (``synchronous=FULL``) from many threads.

The project is the payments fixture (``tests/fixtures/payments``): agent ``payer``, tool
``pay`` (a write tool whose backend appends to a list in memory and returns a small
dict), amounts of at most 100 allowed by policy. Every caller thread has its own runs of
`RUN_LENGTH` calls with distinct steps, so every call has its own derived idempotency key
and is decided, recorded, executed, recorded again and settled.

Three paths are timed alike, each call alone with `time.perf_counter_ns`:

- ``gate.execute(call)`` on `SQLiteStore(path)` (the writer group-commits);
- the same on `SQLiteStore(path, group_commit=False)`: one commit per write request;
- in memory: ``gate.decide`` + ``tool.run`` + ``gate.settle`` on a `MemoryStore`.

And, for scale, the raw rate of one-row ``INSERT`` + ``COMMIT`` in WAL with
``synchronous=FULL`` on the same disk.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import warden
from bench.timing import gc_paused
from warden.decision import Outcome
from warden.execution import decision_usd
from warden.runs import ActionState
from warden.store.sqlite import SQLiteStore

__all__ = ["CallSample", "measure_execute", "measure_in_memory", "raw_commit_rate"]

PAYMENTS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "payments"
AGENT, TOOL = "payer", "pay"
RUN_LENGTH = 100
"""Calls per run: a new run (a ``runs`` row, a ledger) every 100 calls of a thread."""

CallFn = Callable[[int, int], None]
"""One governed call by thread `t`, its `i`-th."""


@functools.cache
def payments() -> warden.Project:
    return warden.load_project(PAYMENTS)


def _reset_backend() -> None:
    """Drop the fixture backend's in-memory effects (it keeps one per executed call)."""
    import payment_tools  # pyright: ignore[reportMissingImports]  # importable once loaded

    payment_tools.BACKEND.reset()  # pyright: ignore[reportUnknownMemberType]


def _call(prefix: str, t: int, i: int) -> warden.ToolCall:
    return warden.ToolCall(
        agent=AGENT,
        tool=TOOL,
        run_id=f"{prefix}-t{t:02d}-r{i // RUN_LENGTH:05d}",
        step=i % RUN_LENGTH,
        args={"payee": f"supplier-{t:02d}", "amount_usd": float(1 + i % 100), "note": "bench"},
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class CallSample:
    """One timed stretch of governed calls from `threads` callers."""

    threads: int
    calls: int
    elapsed_s: float
    """From releasing the callers to the last one finishing."""
    latencies_ns: list[int]
    writer: tuple[int, int] | None = None
    """(batches committed, requests in them) during the timed stretch, for SQLite."""

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed_s


def _drive(
    call: CallFn,
    *,
    threads: int,
    seconds: float,
    warmup: int,
    at_start: Callable[[], None] | None = None,
) -> CallSample:
    """`threads` callers warm up with `warmup` calls each, then call for `seconds`.

    `at_start` runs once every caller has warmed up, just before the timed stretch. Every
    caller makes at least one timed call; the stretch ends when the last caller finishes
    the call it was in at the deadline.
    """
    clock = time.perf_counter_ns
    started = [0]

    def start_line() -> None:  # run by the barrier once all parties are there
        if at_start is not None:
            at_start()
        started[0] = clock()

    barrier = threading.Barrier(threads + 1, action=start_line)
    latencies: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def caller(t: int) -> None:
        try:
            for i in range(warmup):
                call(t, i)
        except BaseException as exc:
            errors.append(exc)
        barrier.wait()
        if errors:
            return
        mine, end, i = latencies[t], started[0] + int(seconds * 1e9), warmup
        try:
            while True:
                begin = clock()
                call(t, i)
                done = clock()
                mine.append(done - begin)
                i += 1
                if done >= end:
                    return
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=caller, args=(t,), daemon=True) for t in range(threads)]
    with gc_paused():
        for w in workers:
            w.start()
        barrier.wait()
        for w in workers:
            w.join()
        elapsed = (clock() - started[0]) / 1e9
    if errors:
        raise RuntimeError(f"a governed call failed: {errors[0]!r}") from errors[0]
    pooled = [v for mine in latencies for v in mine]
    return CallSample(threads=threads, calls=len(pooled), elapsed_s=elapsed, latencies_ns=pooled)


def measure_execute(
    folder: Path, *, group_commit: bool, threads: int, seconds: float, warmup: int
) -> CallSample:
    """`gate.execute` on a fresh SQLite file in `folder` (removed afterwards)."""
    here = Path(tempfile.mkdtemp(prefix="execute-", dir=folder))
    store = SQLiteStore(here / "warden.db", group_commit=group_commit)
    gate = payments().gate(store=store, clock=warden.FixedClock(), ids=warden.CountingIds())
    prefix = "gc" if group_commit else "one"
    before = [(0, 0)]

    def call(t: int, i: int) -> None:
        done = gate.execute(_call(prefix, t, i))
        if done.state is not ActionState.SUCCEEDED:
            raise RuntimeError(f"call {t}/{i} ended {done.state.value}: {done.error}")

    def note_writer() -> None:
        before[0] = store.writer_stats

    try:
        sample = _drive(call, threads=threads, seconds=seconds, warmup=warmup, at_start=note_writer)
        after = store.writer_stats
        return CallSample(
            threads=sample.threads,
            calls=sample.calls,
            elapsed_s=sample.elapsed_s,
            latencies_ns=sample.latencies_ns,
            writer=(after[0] - before[0][0], after[1] - before[0][1]),
        )
    finally:
        gate.executor.close()
        store.close()
        _reset_backend()
        shutil.rmtree(here, ignore_errors=True)


def measure_in_memory(*, threads: int, seconds: float, warmup: int) -> CallSample:
    """``decide`` + ``tool.run`` + ``settle`` on a `MemoryStore`: no durability at all."""
    gate = payments().gate(
        store=warden.MemoryStore(), clock=warden.FixedClock(), ids=warden.CountingIds()
    )
    tool = gate.tools[TOOL]

    def call(t: int, i: int) -> None:
        c = _call("mem", t, i)
        decision = gate.decide(c)
        if decision.outcome is not Outcome.ALLOW:
            raise RuntimeError(f"call {t}/{i} was not allowed: {decision.reasons}")
        ctx = warden.ToolContext(run_id=c.run_id, agent=AGENT, idempotency_key=f"{t}:{i}")
        tool.run(decision.args or {}, ctx)
        gate.settle(decision, ok=True, usd=decision_usd(decision))

    try:
        return _drive(call, threads=threads, seconds=seconds, warmup=warmup)
    finally:
        _reset_backend()


def raw_commit_rate(folder: Path, *, seconds: float, body_bytes: int = 600) -> dict[str, Any]:
    """One-row ``INSERT`` + ``COMMIT`` per transaction, WAL, ``synchronous=FULL``, one caller."""
    here = Path(tempfile.mkdtemp(prefix="raw-", dir=folder))
    conn = sqlite3.connect(here / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        body = b"x" * body_bytes
        commits, clock = 0, time.perf_counter_ns
        started = clock()
        end = started + int(seconds * 1e9)
        while True:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
            conn.execute("COMMIT")
            commits += 1
            if clock() >= end:
                break
        elapsed = (clock() - started) / 1e9
    finally:
        conn.close()
        shutil.rmtree(here, ignore_errors=True)
    return {"commits": commits, "elapsed_s": elapsed, "rate_per_s": commits / elapsed}
