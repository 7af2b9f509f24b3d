"""The durable section of the benchmark: governed calls on SQLite, audit appends, verify.

Everything lives in a temporary folder (``--tmp-dir`` picks the disk), removed at the end.
The execute measurements alternate group commit and one commit per call, `repeat` times,
each on a fresh database, and report the median rate; latencies are p50 / p99 of each
repeat, median over repeats.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.audit_log import build_batches, measure_append, measure_export, measure_verify
from bench.durable_calls import (
    RUN_LENGTH,
    CallSample,
    measure_execute,
    measure_in_memory,
    raw_commit_rate,
)
from bench.timing import latency
from warden.store.sqlite import SQLiteStore

__all__ = ["DurableConfig", "measure_durable"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DurableConfig:
    """How much to measure."""

    threads: int = 32
    """Concurrent callers of ``gate.execute``."""
    seconds: float = 3.0
    """Timed calling per repeat, per store."""
    repeat: int = 3
    warmup: int = 10
    """Untimed calls per caller before each timed stretch."""
    latency_seconds: float = 2.0
    """Timed calling for the single-caller and in-memory latencies."""
    raw_seconds: float = 1.0
    audit_records: int = 200_000
    audit_batch: int = 1_000
    audit_streams: int = 8
    verify_repeat: int = 3
    folder: Path | None = None
    """Where the temporary folder goes (None: the system's temporary directory)."""

    @classmethod
    def quick(cls) -> DurableConfig:
        return cls(
            seconds=1.0,
            repeat=1,
            warmup=5,
            latency_seconds=0.5,
            raw_seconds=0.3,
            audit_records=40_000,
            verify_repeat=1,
        )

    @classmethod
    def tiny(cls) -> DurableConfig:
        """A smoke test: a few calls from a few threads, a few thousand records."""
        return cls(
            threads=4,
            seconds=0.05,
            repeat=1,
            warmup=2,
            latency_seconds=0.02,
            raw_seconds=0.02,
            audit_records=2_000,
            audit_batch=500,
            audit_streams=3,
            verify_repeat=1,
        )

    def in_folder(self, folder: Path | None) -> DurableConfig:
        return replace(self, folder=folder)


def _latency(samples: list[CallSample]) -> dict[str, float]:
    per = [latency(s.latencies_ns) for s in samples]
    return {
        "p50_us": statistics.median(x.p50_ns for x in per) / 1000,
        "p99_us": statistics.median(x.p99_ns for x in per) / 1000,
        "mean_us": statistics.median(x.mean_ns for x in per) / 1000,
    }


def _execute_summary(samples: list[CallSample]) -> dict[str, Any]:
    batches = sum(s.writer[0] for s in samples if s.writer)
    requests = sum(s.writer[1] for s in samples if s.writer)
    return {
        "rate_per_s": statistics.median(s.rate for s in samples),
        "per_repeat_per_s": [s.rate for s in samples],
        "calls": [s.calls for s in samples],
        **_latency(samples),
        "writer": {
            "batches": batches,
            "requests": requests,
            "requests_per_batch": requests / batches if batches else 0.0,
        },
    }


def _added(durable: dict[str, float], memory: dict[str, float]) -> dict[str, Any]:
    return {
        "sqlite": durable,
        "memory": memory,
        "added_p50_us": durable["p50_us"] - memory["p50_us"],
        "added_p99_us": durable["p99_us"] - memory["p99_us"],
    }


def _calls(config: DurableConfig, folder: Path) -> dict[str, Any]:
    group: list[CallSample] = []
    single: list[CallSample] = []
    threads, seconds, warmup = config.threads, config.seconds, config.warmup
    for _ in range(config.repeat):
        for commits_grouped, samples in ((True, group), (False, single)):
            samples.append(
                measure_execute(
                    folder,
                    group_commit=commits_grouped,
                    threads=threads,
                    seconds=seconds,
                    warmup=warmup,
                )
            )
    short = config.latency_seconds
    alone = measure_execute(folder, group_commit=True, threads=1, seconds=short, warmup=warmup)
    memory_one = measure_in_memory(threads=1, seconds=short, warmup=warmup)
    memory_all = measure_in_memory(threads=threads, seconds=short, warmup=warmup)
    group_summary = _execute_summary(group)
    single_summary = _execute_summary(single)
    return {
        "threads": config.threads,
        "seconds_per_repeat": config.seconds,
        "repeats": config.repeat,
        "calls_per_run": RUN_LENGTH,
        "group_commit": group_summary,
        "one_commit_per_call": single_summary,
        "ratio": group_summary["rate_per_s"] / single_summary["rate_per_s"],
        "raw_sqlite": raw_commit_rate(folder, seconds=config.raw_seconds),
        "latency": {
            "one_caller": _added(_latency([alone]), _latency([memory_one])),
            "concurrent": _added(
                {k: group_summary[k] for k in ("p50_us", "p99_us", "mean_us")},
                _latency([memory_all]),
            ),
        },
        "in_memory_rate_per_s": {"one_caller": memory_one.rate, "concurrent": memory_all.rate},
        "one_caller_sqlite_rate_per_s": alone.rate,
    }


def _audit(config: DurableConfig, folder: Path) -> dict[str, Any]:
    batches, size = build_batches(
        config.audit_records, batch=config.audit_batch, streams=config.audit_streams
    )
    with SQLiteStore(folder / "audit.db") as store:
        append = measure_append(store, batches)
        del batches
        verify = measure_verify(store, repeat=config.verify_repeat)
        export = measure_export(store, folder / "audit.jsonl", repeat=config.verify_repeat)
    return {
        "batch": config.audit_batch,
        "streams": config.audit_streams,
        "data_bytes": size,
        "append": append,
        "verify": verify,
        "export": export,
    }


def measure_durable(config: DurableConfig) -> dict[str, Any]:
    """Run the durable section; returns its part of the results document."""
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-", dir=config.folder))
    load = os.getloadavg()[0]  # other work on the machine shows in these figures
    try:
        execute = _calls(config, folder)
        audit = _audit(config, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "folder": str(folder.parent),
        "load_average_1min": {"start": load, "end": os.getloadavg()[0]},
        "synchronous": "FULL",
        "journal_mode": "WAL",
        "execute": execute,
        "audit": audit,
    }
