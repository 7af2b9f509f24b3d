"""The audit log: batched appends, and ``warden audit verify`` over the database and an export.

Records are decision-sized: the data `SQLiteStore.record_decision` writes for an allowed
``pay`` call of the payments fixture (action id, key, state, step and the decision as
JSON, about 0.7 kB canonical), with a hex idempotency key and fingerprint of their own,
spread round-robin over several agent streams. They are
appended with `SQLiteStore.append_batch` (one transaction, one fsync per batch), then
verified with `warden.audit.verify.verify_rows` straight from the database, and from an
export file written with `export_line` and read back with `read_export`.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import warden
from bench.durable_calls import AGENT, TOOL, payments
from bench.timing import gc_paused
from warden.audit.chain import agent_stream
from warden.canonical import canonical_json
from warden.store.sqlite import SQLiteStore

__all__ = ["build_batches", "measure_append", "measure_export", "measure_verify"]

Record = tuple[str, str, float, Mapping[str, Any]]


def _decision_template() -> dict[str, Any]:
    gate = payments().gate(store=warden.MemoryStore(), clock=warden.FixedClock())
    call = warden.ToolCall(
        agent=AGENT, tool=TOOL, run_id="run-0", step=0, args={"payee": "acme", "amount_usd": 40}
    )
    return gate.decide(call).to_dict()


def build_batches(records: int, *, batch: int, streams: int) -> tuple[list[list[Record]], int]:
    """`records` decision records in batches of `batch`; also one record's data size (bytes)."""
    template = _decision_template()
    names = [agent_stream(f"bench-{k:02d}") for k in range(streams)]
    start = warden.FixedClock().timestamp()
    batches: list[list[Record]] = []
    for first in range(0, records, batch):
        rows: list[Record] = []
        for n in range(first, min(first + batch, records)):
            run_id = f"run-{n // 100:06d}"
            digest = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
            data = {
                "action_id": f"act_{n:08d}",
                "idempotency_key": "ik_" + digest[:40],  # as `derive_key` makes them
                "state": "executing",
                "step": n % 100,
                "decision": {
                    **template,
                    "run_id": run_id,
                    "args": {**template["args"], "amount_usd": float(1 + n % 100)},
                    "fingerprint": digest[::-1],
                    "latency_ns": 20_000 + n % 997,
                },
            }
            rows.append((names[n % streams], "decision", start + n / 1000, data))
        batches.append(rows)
    return batches, len(canonical_json(batches[0][0][3])) if batches else 0


def measure_append(store: SQLiteStore, batches: Sequence[Sequence[Record]]) -> dict[str, Any]:
    """Append every batch in turn from one caller; each returns once it is on disk."""
    per_batch: list[int] = []
    clock = time.perf_counter_ns
    with gc_paused():
        started = clock()
        for rows in batches:
            t0 = clock()
            store.append_batch(rows)
            per_batch.append(clock() - t0)
        elapsed = (clock() - started) / 1e9
    records = sum(len(rows) for rows in batches)
    sizes = [len(rows) for rows in batches]
    batch_rates = sorted(n / (ns / 1e9) for n, ns in zip(sizes, per_batch, strict=True))
    return {
        "records": records,
        "batches": len(batches),
        "elapsed_s": elapsed,
        "rate_per_s": records / elapsed,
        "batch_ms_median": statistics.median(per_batch) / 1e6,
        "batch_rate_median_per_s": statistics.median(batch_rates),
    }


def measure_verify(store: SQLiteStore, *, repeat: int) -> dict[str, Any]:
    """``verify_rows(store.audit_rows())``, `repeat` times: rows read from SQLite included."""
    from warden.audit.verify import verify_rows

    rates: list[float] = []
    records = streams = 0
    for _ in range(repeat):
        with gc_paused():
            started = time.perf_counter_ns()
            report = verify_rows(store.audit_rows())
            elapsed = (time.perf_counter_ns() - started) / 1e9
        records, streams = report.records, len(report.streams)
        rates.append(records / elapsed)
    return {
        "records": records,
        "streams": streams,
        "repeats": repeat,
        "rate_per_s": statistics.median(rates),
        "per_repeat_per_s": rates,
    }


def measure_export(store: SQLiteStore, path: Path, *, repeat: int) -> dict[str, Any]:
    """Write an export file line by line, then verify the rows `read_export` gives back."""
    from warden.audit.export import export_line, read_export
    from warden.audit.verify import verify_rows

    with gc_paused():
        started = time.perf_counter_ns()
        with path.open("wb") as handle:
            handle.writelines(export_line(*row) for row in store.audit_rows())
        written = (time.perf_counter_ns() - started) / 1e9
    rates: list[float] = []
    records = 0
    for _ in range(repeat):
        with gc_paused():
            started = time.perf_counter_ns()
            report = verify_rows(read_export(path))
            elapsed = (time.perf_counter_ns() - started) / 1e9
        records = report.records
        rates.append(records / elapsed)
    size = path.stat().st_size
    path.unlink()
    return {
        "records": records,
        "bytes": size,
        "write_rate_per_s": records / written,
        "verify_rate_per_s": statistics.median(rates),
        "verify_per_repeat_per_s": rates,
    }
