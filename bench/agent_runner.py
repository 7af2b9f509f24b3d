"""The agent runner's own cost per step, model time excluded, and the demo's wall time.

A scripted model (no latency) proposes one ``pay`` call of at most $100 per turn against
the payments fixture, so every step is: the turn saved durably, `Gate.execute` (decide,
decision record, tool, outcome record, settle), the tool result appended. The model is
wrapped to note when each turn is asked for and returned; a step's overhead is the time
from a turn's return to the next request, minus the tool's own execution time. The
store is SQLite with ``synchronous=FULL`` in a fresh folder. For scale, `Gate.execute`
alone on the same kind of store, and the demo (`warden demo --quiet`) run end to end in
a subprocess.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import warden
from bench.durable_calls import PAYMENTS
from warden.models.base import ModelRequest, ModelTurn
from warden.models.scripted import ScriptedModel
from warden.runner import Runner, Task
from warden.store.sqlite import SQLiteStore

__all__ = ["measure_runner"]


class _Timed:
    """A model that notes when each turn was asked for and when it came back."""

    def __init__(self, inner: ScriptedModel) -> None:
        self.inner = inner
        self.asked: list[float] = []
        self.answered: list[float] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def provider(self) -> str:
        return self.inner.provider

    def complete(self, request: ModelRequest) -> ModelTurn:
        self.asked.append(time.perf_counter())
        turn = self.inner.complete(request)
        self.answered.append(time.perf_counter())
        return turn


def _script(steps: int, latency_ms: float) -> ScriptedModel:
    turns: list[dict[str, Any]] = [
        {"calls": [{"pay": {"payee": f"vendor-{i}", "amount_usd": 10 + i % 50}}]}
        for i in range(steps)
    ]
    turns.append({"text": "done"})
    model = ScriptedModel({"bench": turns}, name="bench", prices_as=("openai", "gpt-4o-mini"))
    model.latency_s = latency_ms / 1000.0
    return model


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_runner(
    *,
    runs: int = 30,
    steps: int = 10,
    demo: bool = True,
    latencies: tuple[float, ...] = (0.0, 20.0),
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-runner-"))
    try:
        out: dict[str, Any] = {"runs": runs, "steps_per_run": steps, "by_model_latency": {}}
        for latency in latencies:
            out["by_model_latency"][f"{latency:g}"] = _steps(folder, runs, steps, latency)
            out.setdefault("raw_commit_ms", {})[f"{latency:g}"] = _raw_commit(folder, latency)
        if demo:
            out["demo_wall_s"] = _demo_wall(folder / "demo")
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _steps(folder: Path, runs: int, steps: int, latency_ms: float) -> dict[str, Any]:
    project = warden.load_project(PAYMENTS)
    overheads: list[float] = []
    executes: list[float] = []
    store = SQLiteStore(folder / f"warden-{latency_ms:g}.db")
    try:
        gate = project.gate(store=store)
        for r in range(runs + 2):  # two warm-up runs
            model = _Timed(_script(steps, latency_ms))
            runner = Runner(gate, model)
            result = runner.run(Task(agent="payer", goal="pay the vendors", key="bench"))
            assert result.status.value == "succeeded", result
            tools = [float(e["ms"]) for e in result.timeline if e["kind"] == "tool"]
            gates = [
                float(e["ms"]) + float(e["gate_ms"]) for e in result.timeline if e["kind"] == "tool"
            ]
            if r < 2:
                continue
            for i, tool_ms in enumerate(tools):
                between = (model.asked[i + 1] - model.answered[i]) * 1000.0
                overheads.append(between - tool_ms)
            executes += gates
    finally:
        store.close()
    return {
        "model_latency_ms": latency_ms,
        "overhead_ms": {
            "p50": statistics.median(overheads),
            "p90": _pct(overheads, 0.90),
            "p99": _pct(overheads, 0.99),
        },
        "gate_execute_ms": {
            "p50": statistics.median(executes),
            "p99": _pct(executes, 0.99),
        },
    }


def _raw_commit(folder: Path, idle_ms: float, n: int = 60) -> float:
    """p50 of one-row INSERT + COMMIT in WAL with synchronous=FULL, `idle_ms` apart: the
    floor any durable decision record stands on, on this disk."""
    conn = sqlite3.connect(folder / f"raw-{idle_ms:g}.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (x INTEGER)")
        took: list[float] = []
        for i in range(n):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")
            took.append((time.perf_counter() - started) * 1000.0)
            if idle_ms:
                time.sleep(idle_ms / 1000.0)
        return statistics.median(took)
    finally:
        conn.close()


def _demo_wall(workspace: Path) -> float:
    exe = Path(sys.executable).with_name("warden")
    started = time.perf_counter()
    subprocess.run(
        [str(exe), "demo", "--quiet", "--workspace", str(workspace)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started
