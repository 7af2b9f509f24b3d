"""The PostgreSQL section: durable decisions on a shared database, with and without group
commit, against the server's own commit rate.

A durable decision is `PostgresStore.record_decision` of a typical allowed action: the
decision of the payments fixture's ``pay`` call (amount 25) as `Gate.execute` records it
before running the tool, with its own action id and idempotency key, for one of
`PgConfig.agents` agents, and a new run every `RUN_LENGTH` decisions of a caller. It is
committed (the action row, the run row, the key claim and the audit record, appended by
``warden_audit_append``) before the call returns. Timed alike, on the same server:

- ``PostgresStore(url)``: the writer thread group-commits what the callers hand it;
- ``PostgresStore(url, group_commit=False)``: one transaction per decision, each on a
  pool connection (PostgreSQL may still flush several of them in one WAL write);
- for scale, one-row ``INSERT`` in autocommit (one transaction, one WAL flush each) of a
  row of the same size, from one caller and from as many as the decisions have;
- ``Gate.execute`` of the same call on each store, end to end (decide, record, run the
  tool, record the outcome, settle), for information.

Every measurement runs on a fresh database, dropped afterwards; the group-commit and the
one-commit stores alternate `repeat` times and the median rate is reported.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import warden
from bench.durable_calls import CallSample, _call, _drive, _reset_backend, payments
from bench.timing import latency
from warden.runs import ActionState
from warden.store.protocol import NewAction

if TYPE_CHECKING:  # psycopg is imported when the section runs: the bench runs without it
    from warden.store.postgres import PostgresStore

__all__ = ["PgConfig", "measure_pg"]

RUN_LENGTH = 100
"""Decisions per run: a new ``runs`` row every 100 decisions of a caller."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PgConfig:
    """How much to measure."""

    threads: int = 32
    """Concurrent callers."""
    seconds: float = 3.0
    """Timed calling per repeat, per store."""
    repeat: int = 3
    warmup: int = 10
    """Untimed calls per caller before each timed stretch."""
    raw_seconds: float = 1.0
    execute_seconds: float = 2.0
    """Timed `Gate.execute` per store (information only); 0 to skip."""
    pool_size: int = 16
    agents: int = 8
    """Caller t decides for agent ``payer<t % agents>``: each agent's audit stream is
    locked by one transaction at a time, so the agents are the parallelism the database
    has to offer (a server sees many agents)."""

    @classmethod
    def quick(cls) -> PgConfig:
        return cls(seconds=1.0, repeat=1, warmup=5, raw_seconds=0.3, execute_seconds=0.5)

    @classmethod
    def tiny(cls) -> PgConfig:
        """A smoke test: a few calls from a few threads."""
        return cls(
            threads=4, seconds=0.05, repeat=1, warmup=2, raw_seconds=0.02, execute_seconds=0.05
        )


def _typical_decision() -> dict[str, Any]:
    """The decision `Gate.execute` records for an allowed ``pay`` call, as JSON."""
    gate = payments().gate(store=warden.MemoryStore(), clock=warden.FixedClock())
    decision = gate.decide(_call("shape", 0, 0))
    if not decision.allowed:
        raise RuntimeError(f"the typical call was not allowed: {decision.reasons}")
    return decision.to_dict()


def _decisions(store: PostgresStore, decision: dict[str, Any], prefix: str, agents: int) -> Any:
    ids = itertools.count()
    lock = threading.Lock()

    def call(t: int, i: int) -> None:
        with lock:
            n = next(ids)
        args = decision.get("args") or {"payee": "acme", "amount_usd": 25.0}
        found = store.record_decision(
            NewAction(
                id=f"act_{prefix}_{n:08d}",
                run_id=f"{prefix}-t{t:02d}-r{i // RUN_LENGTH:05d}",
                agent=f"payer{t % agents}",
                tool="pay",
                step=i % RUN_LENGTH,
                state=ActionState.EXECUTING,
                outcome="allow",
                code=None,
                reasons=tuple(decision.get("reasons") or ()),
                args=args,
                idem_key=f"ik_{prefix}_{t:02d}_{i:08d}",
                request_hash="sha256:" + "0" * 64,
                owner=store.owner,
                decided_at=1_767_258_000.0 + n / 1000,
                policy_revision=str(decision.get("policy_revision", "")),
                started_by=None,
                decision=decision,
            )
        )
        if found is not None:
            raise RuntimeError(f"decision {t}/{i} found its key taken")

    return call


def _with_store(
    config: PgConfig, *, group_commit: bool, work: str, seconds: float, decision: dict[str, Any]
) -> CallSample:
    """Time `work` (``decide`` or ``execute``) on a fresh database with one store."""
    from warden.store.postgres import PostgresStore
    from warden.testing.postgres import drop_database, fresh_database

    url = fresh_database(prefix="warden_bench", skip=False)
    store = PostgresStore(url, group_commit=group_commit, pool_size=config.pool_size)
    gate = None
    try:
        prefix = "gc" if group_commit else "one"
        if work == "decide":
            call = _decisions(store, decision, prefix, config.agents)
        else:
            gate = payments().gate(store=store, clock=warden.FixedClock(), ids=warden.CountingIds())

            def call(t: int, i: int) -> None:
                assert gate is not None
                done = gate.execute(_call(prefix, t, i))
                if done.state is not ActionState.SUCCEEDED:
                    raise RuntimeError(f"call {t}/{i} ended {done.state.value}: {done.error}")

        before = [(0, 0)]

        def note_writer() -> None:
            before[0] = store.writer_stats

        sample = _drive(
            call,
            threads=config.threads,
            seconds=seconds,
            warmup=config.warmup,
            at_start=note_writer,
        )
        after = store.writer_stats
        return CallSample(
            threads=sample.threads,
            calls=sample.calls,
            elapsed_s=sample.elapsed_s,
            latencies_ns=sample.latencies_ns,
            writer=(after[0] - before[0][0], after[1] - before[0][1]),
        )
    finally:
        if gate is not None:
            gate.executor.close()
            _reset_backend()
        store.close()
        drop_database(url)


def _summary(samples: list[CallSample]) -> dict[str, Any]:
    per = [latency(s.latencies_ns) for s in samples]
    batches = sum(s.writer[0] for s in samples if s.writer)
    requests = sum(s.writer[1] for s in samples if s.writer)
    return {
        "rate_per_s": statistics.median(s.rate for s in samples),
        "per_repeat_per_s": [s.rate for s in samples],
        "calls": [s.calls for s in samples],
        "p50_us": statistics.median(x.p50_ns for x in per) / 1000,
        "p99_us": statistics.median(x.p99_ns for x in per) / 1000,
        "writer": {
            "transactions": batches,
            "requests": requests,
            "requests_per_transaction": requests / batches if batches else 0.0,
        },
    }


def raw_insert_rate(*, threads: int, seconds: float, body_bytes: int = 600) -> dict[str, Any]:
    """One-row ``INSERT`` per transaction (autocommit, ``synchronous_commit`` as the server
    has it) from `threads` connections at once, on a fresh database."""
    import psycopg

    from warden.testing.postgres import drop_database, fresh_database

    url = fresh_database(prefix="warden_bench_raw", skip=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, body bytea NOT NULL)")
        body = b"x" * body_bytes
        counts = [0] * threads
        barrier = threading.Barrier(threads + 1)
        deadline = [0.0]

        def insert(k: int) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                barrier.wait()
                n = 0
                while True:
                    conn.execute("INSERT INTO t (body) VALUES (%s)", (body,))
                    n += 1
                    if time.perf_counter() >= deadline[0]:
                        break
                counts[k] = n

        workers = [threading.Thread(target=insert, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        started = time.perf_counter()
        deadline[0] = started + seconds
        barrier.wait()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
    finally:
        drop_database(url)
    total = sum(counts)
    return {
        "threads": threads,
        "commits": total,
        "elapsed_s": elapsed,
        "rate_per_s": total / elapsed,
    }


def _server(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method")
        }
    return settings


def measure_pg(config: PgConfig) -> dict[str, Any]:
    """Run the PostgreSQL section; returns its part of the results document, or
    ``{"skipped": why}`` when PostgreSQL is not installed."""
    try:
        from warden.testing.postgres import PostgresMissing, drop_database, fresh_database
    except ImportError as exc:  # no psycopg: the postgres extra is not installed
        return {"skipped": f"psycopg is not installed ({exc})"}
    try:
        probe = fresh_database(prefix="warden_bench_probe", skip=False)
    except PostgresMissing as exc:
        return {"skipped": str(exc)}
    try:
        server = _server(probe)
    finally:
        drop_database(probe)
    decision = _typical_decision()
    group: list[CallSample] = []
    single: list[CallSample] = []
    for _ in range(config.repeat):
        for grouped, samples in ((True, group), (False, single)):
            samples.append(
                _with_store(
                    config,
                    group_commit=grouped,
                    work="decide",
                    seconds=config.seconds,
                    decision=decision,
                )
            )
    grouped_summary, single_summary = _summary(group), _summary(single)
    section: dict[str, Any] = {
        "server": server,
        "threads": config.threads,
        "seconds_per_repeat": config.seconds,
        "repeats": config.repeat,
        "pool_size": config.pool_size,
        "agents": config.agents,
        "calls_per_run": RUN_LENGTH,
        "decide": {
            "group_commit": grouped_summary,
            "one_commit_per_decision": single_summary,
            "ratio": grouped_summary["rate_per_s"] / single_summary["rate_per_s"],
        },
        "raw_insert": {
            "one_caller": raw_insert_rate(threads=1, seconds=config.raw_seconds),
            "concurrent": raw_insert_rate(threads=config.threads, seconds=config.raw_seconds),
        },
    }
    if config.execute_seconds > 0:
        execute = {
            name: _summary(
                [
                    _with_store(
                        config,
                        group_commit=grouped,
                        work="execute",
                        seconds=config.execute_seconds,
                        decision=decision,
                    )
                ]
            )
            for name, grouped in (("group_commit", True), ("one_commit_per_call", False))
        }
        execute["ratio"] = (
            execute["group_commit"]["rate_per_s"] / execute["one_commit_per_call"]["rate_per_s"]
        )
        section["execute"] = execute
    return section
