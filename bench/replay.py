"""Replay: how fast recorded decisions are re-decided (`warden replay`, `warden policy whatif`).

The decisions are the Gate.decide benchmark's (`bench.gate_latency`: 21 rules, facts given
with the call, context, budgets, a breaker, loop detection), recorded by `Gate.execute`
on a SQLite file: each one with what it read. Then, in the same run:

- replay: read every recorded decision from the store and re-decide it under the
  revision it was recorded under, rebuilt from the stored sources; every one must come
  out as recorded (else the benchmark fails);
- what-if: the same decisions under a candidate (R06, small refunds, lowered from $50
  to $25): information only;
- live: the same calls decided by `Gate.decide` on a fresh in-memory gate, the floor a
  replay cannot beat (it runs the same code, plus reading the store).

The recording is set up, not timed: callers in `RECORDERS` threads, each with its own
runs, so the SQLite writer group-commits.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import warden
from bench.engine_warden import FIELDS, load_rules
from bench.gate_latency import MANIFEST, _calls, build_gate, create_refund, issue_credit
from bench.timing import gc_paused
from bench.workload import generate_requests
from warden.manifest import parse_manifest
from warden.policy.load import load_policies
from warden.replay import Replayer, ReplayStatus
from warden.store.sqlite import SQLiteStore
from warden.yamlsource import parse_yaml

__all__ = ["ReplayConfig", "measure_replay"]

RECORDERS = 8
RULES = Path(__file__).resolve().parent / "rules21"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayConfig:
    decisions: int = 10_000
    repeat: int = 3
    requests: int = 512
    seed: int = 20_260_101
    folder: Path | None = None
    """Where the SQLite file goes (default: the system's temporary directory)."""

    @classmethod
    def quick(cls) -> ReplayConfig:
        return cls(decisions=2_000, repeat=2)


def _record(store: SQLiteStore, calls: list[warden.ToolCall]) -> dict[str, int]:
    """Run `calls` through `Gate.execute` from `RECORDERS` threads (a run stays with one)."""
    manifest = parse_manifest(parse_yaml(MANIFEST, file="bench/agent.yaml"))
    clock = warden.FixedClock()
    gate = warden.Gate(
        policies=load_rules(),
        agents=[manifest],
        tools=[create_refund, issue_credit],
        store=store,
        clock=clock,
    )
    states: dict[str, int] = {}
    lock = threading.Lock()
    runs: dict[str, list[warden.ToolCall]] = {}
    for c in calls:
        runs.setdefault(c.run_id, []).append(c)
    batches = [list(runs.values())[t::RECORDERS] for t in range(RECORDERS)]

    def work(batch: list[list[warden.ToolCall]]) -> None:
        for run in batch:
            for step, c in enumerate(run):
                clock.advance(0.001)
                done = gate.execute(
                    warden.ToolCall(**{**_fields(c), "step": step}), wait_outcome=False
                )
                with lock:
                    states[done.state.value] = states.get(done.state.value, 0) + 1

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gate.executor.close()
    store.flush()
    return states


def _fields(call: warden.ToolCall) -> dict[str, Any]:
    return {name: getattr(call, name) for name in call.__slots__}


def _candidate(folder: Path) -> warden.PolicySet:
    """The benchmark's rules with R06 (small refunds) lowered from $50 to $25."""
    target = folder / "rules"
    shutil.copytree(RULES, target)
    refunds = target / "refunds.yaml"
    text = refunds.read_text(encoding="utf-8")
    refunds.write_text(text.replace('"amount_usd <= 50"', '"amount_usd <= 25"'), "utf-8")
    return load_policies([target], root=folder, fields=FIELDS)


def measure_replay(config: ReplayConfig) -> dict[str, Any]:
    """Record, then time replay, what-if and live decisions; see the module docstring."""
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-replay-", dir=config.folder))
    try:
        requests = generate_requests(config.requests, config.seed)
        calls = _calls(requests, config.decisions, "replay")
        store = SQLiteStore(folder / "replay.db")
        try:
            states = _record(store, calls)
            manifest = parse_manifest(parse_yaml(MANIFEST, file="bench/agent.yaml"))
            candidate = _candidate(folder)
            tools = [create_refund, issue_credit]
            replay_s: list[float] = []
            whatif_s: list[float] = []
            changed = 0
            for _ in range(config.repeat):
                with gc_paused():
                    started = time.perf_counter()
                    replayer = Replayer(store, tools=tools, agents=[manifest])
                    recorded = store.recorded_decisions()
                    replayed = replayer.replay(recorded)
                    replay_s.append(time.perf_counter() - started)
                wrong = [r for r in replayed if r.status is not ReplayStatus.SAME]
                if len(replayed) != config.decisions or wrong:
                    raise RuntimeError(
                        f"replay did not reproduce {len(wrong)} of {len(replayed)} decisions"
                    )
                with gc_paused():
                    started = time.perf_counter()
                    replayer = Replayer(store, tools=tools, agents=[manifest])
                    again = replayer.replay(store.recorded_decisions(), candidate)
                    whatif_s.append(time.perf_counter() - started)
                changed = sum(1 for r in again if r.status is ReplayStatus.CHANGED)
        finally:
            store.close()
        live_s: list[float] = []
        for _ in range(config.repeat):
            gate = build_gate()
            decide = gate.decide
            with gc_paused():
                started = time.perf_counter()
                for c in calls:
                    decide(c)
                live_s.append(time.perf_counter() - started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    replay = statistics.median(replay_s)
    live = statistics.median(live_s)
    return {
        "decisions": config.decisions,
        "repeats": config.repeat,
        "recorded": states,
        "replay_s": replay,
        "replay_per_s": config.decisions / replay,
        "whatif_s": statistics.median(whatif_s),
        "whatif_changed": changed,
        "live_s": live,
        "ratio_to_live": replay / live,
        "per_repeat": {"replay_s": replay_s, "whatif_s": whatif_s, "live_s": live_s},
    }
