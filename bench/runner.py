"""One benchmark run: check agreement, time the engines, time the gate, time the durable
path (SQLite execute, audit appends, verify), durable decisions on PostgreSQL, judge the
targets."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.agent_runner import measure_runner
from bench.durable import DurableConfig, measure_durable
from bench.evals import EvalConfig, measure_evals
from bench.gate_latency import RUN_LENGTH, measure_gate
from bench.mcp import McpConfig, measure_mcp
from bench.pg_store import PgConfig, measure_pg
from bench.policy_engines import DESCRIPTIONS, REQUIRED, build_engines, check_agreement
from bench.replay import ReplayConfig, measure_replay
from bench.server import ServerConfig, measure_server
from bench.timing import latency, measure_interleaved
from bench.workload import generate_requests

__all__ = ["Config", "Target", "run"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """How much to measure."""

    quick: bool
    requests: int = 512
    seed: int = 20_260_101
    policy_repeat: int = 15
    min_sample_ms: float = 20.0
    gate_decisions: int = 10_000
    gate_repeat: int = 5
    gate_warmup: int = 2_000
    policy: bool = True
    """Run the policy engines and the Gate.decide latency."""
    durable: DurableConfig | None = field(default_factory=DurableConfig)
    """The durable section (SQLite execute, audit appends, verify); None to skip it."""
    runner: bool = True
    """The agent runner's overhead per step, and the demo's wall time."""
    runner_runs: int = 30
    pg: PgConfig | None = field(default_factory=PgConfig)
    """Durable decisions on PostgreSQL, group commit against one commit each; None to
    skip it (it is skipped, with a note, when PostgreSQL is not installed)."""
    server: ServerConfig | None = field(default_factory=ServerConfig)
    """`warden serve`'s decide path against a bare ASGI echo endpoint; None to skip it."""
    evals: EvalConfig | None = field(default_factory=EvalConfig)
    """`warden eval run` over many scripted cases in worker processes; None to skip it."""
    mcp: McpConfig | None = field(default_factory=McpConfig)
    """`warden mcp proxy` against calling the upstream MCP server directly; None to
    skip it (it is skipped, with a note, without the mcp extra)."""
    replay: ReplayConfig | None = field(default_factory=ReplayConfig)
    """Recorded decisions re-decided (`warden replay`, `warden policy whatif`); None to
    skip it."""

    @classmethod
    def for_mode(
        cls,
        *,
        quick: bool,
        requests: int = 512,
        seed: int = 20_260_101,
        only: str | None = None,
        tmp_dir: Path | None = None,
    ) -> Config:
        """`only` is ``policy``, ``durable``, ``runner`` or ``pg`` to run one section;
        `tmp_dir` holds the durable section's databases (default: the system's temporary
        directory)."""
        durable = (DurableConfig.quick() if quick else DurableConfig()).in_folder(tmp_dir)
        policy = only in (None, "policy")
        chosen = durable if only in (None, "durable") else None
        agent_runner = only in (None, "runner")
        pg = (PgConfig.quick() if quick else PgConfig()) if only in (None, "pg") else None
        server = (
            (ServerConfig.quick() if quick else ServerConfig())
            if only in (None, "server")
            else None
        )
        evals = (EvalConfig.quick() if quick else EvalConfig()) if only in (None, "evals") else None
        mcp = (
            (McpConfig.quick() if quick else McpConfig()).in_folder(tmp_dir)
            if only in (None, "mcp")
            else None
        )
        replay = (
            replace(ReplayConfig.quick() if quick else ReplayConfig(), folder=tmp_dir)
            if only in (None, "replay")
            else None
        )
        if quick:
            return cls(
                quick=True,
                requests=requests,
                seed=seed,
                policy_repeat=5,
                min_sample_ms=5.0,
                gate_decisions=2_000,
                gate_repeat=3,
                gate_warmup=500,
                policy=policy,
                durable=chosen,
                runner=agent_runner,
                runner_runs=5,
                pg=pg,
                server=server,
                evals=evals,
                mcp=mcp,
                replay=replay,
            )
        return cls(
            quick=False,
            requests=requests,
            seed=seed,
            policy=policy,
            durable=chosen,
            runner=agent_runner,
            pg=pg,
            server=server,
            evals=evals,
            mcp=mcp,
            replay=replay,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """A target and whether the run met it."""

    name: str
    measured: float
    unit: str
    """``us`` for a time, ``x`` for a ratio, ``/s`` for a rate."""
    op: str
    """``<=`` or ``>=``."""
    limit: float
    baseline: str

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.op == "<=" else self.measured >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": "PASS" if self.passed else "MISS"}


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "packages": {
            d: _version(d)
            for d in ("warden", "pydantic", "cedarpy", "common-expression-language", "rich")
        },
    }


def _policy(config: Config) -> tuple[dict[str, Any], dict[str, float]]:
    requests = generate_requests(config.requests, config.seed)
    engines = build_engines()
    agreement = check_agreement(engines, requests)  # raises on any disagreement
    timings = measure_interleaved(
        {name: (lambda e=e: e.decide_all(requests)) for name, e in engines.items()},
        len(requests),
        repeat=config.policy_repeat,
        min_sample_ns=int(config.min_sample_ms * 1e6),
    )
    us = {name: t.median_ns / 1000 for name, t in timings.items()}
    section = {
        "requests": len(requests),
        "seed": config.seed,
        "rules": len(agreement.rules_fired),
        "agreement": {
            "engines": list(agreement.engines),
            "agreed": True,
            "outcomes": agreement.outcomes,
            "default_denies": agreement.default_denies,
            "rules_fired": agreement.rules_fired,
        },
        "per_request": {name: t.to_dict() for name, t in timings.items()},
        "required_engines": list(REQUIRED),
        "engines": {name: DESCRIPTIONS.get(name, "") for name in engines},
    }
    return section, us


def _gate(config: Config) -> dict[str, Any]:
    requests = generate_requests(config.requests, config.seed)
    samples = measure_gate(
        requests,
        decisions=config.gate_decisions,
        warmup=config.gate_warmup,
        repeat=config.gate_repeat,
    )
    per_repeat = [latency(s.latencies_ns) for s in samples]
    pooled = latency([v for s in samples for v in s.latencies_ns])
    return {
        "decisions_per_repeat": config.gate_decisions,
        "repeats": config.gate_repeat,
        "warmup_per_repeat": config.gate_warmup,
        "calls_per_run": RUN_LENGTH,
        "p50_us": statistics.median(x.p50_ns for x in per_repeat) / 1000,
        "p99_us": statistics.median(x.p99_ns for x in per_repeat) / 1000,
        "mean_us": statistics.median(x.mean_ns for x in per_repeat) / 1000,
        "pooled": {
            "decisions": pooled.count,
            "p50_us": pooled.p50_ns / 1000,
            "p99_us": pooled.p99_ns / 1000,
            "mean_us": pooled.mean_ns / 1000,
        },
        "per_repeat": [
            {"p50_us": x.p50_ns / 1000, "p99_us": x.p99_ns / 1000, "mean_us": x.mean_ns / 1000}
            for x in per_repeat
        ],
        "outcomes": samples[-1].outcomes,
        "stages": samples[-1].stages,
    }


def targets(us: dict[str, float], gate: dict[str, Any]) -> list[Target]:
    """The five policy and gate targets, judged on this run's figures."""
    w = us["warden"]
    rows = (
        ("warden / hand-written python", w / us["python"], "x", "<=", 2.0, "python"),
        ("cel / warden", us["cel"] / w, "x", ">=", 5.0, "warden"),
        ("cedar / warden", us["cedar"] / w, "x", ">=", 30.0, "warden"),
        ("Gate.decide p50", gate["p50_us"], "us", "<=", 25.0, "-"),
        ("Gate.decide p99", gate["p99_us"], "us", "<=", 100.0, "-"),
    )
    return [
        Target(name=n, measured=m, unit=u, op=o, limit=limit, baseline=b)
        for n, m, u, o, limit, b in rows
    ]


DURABLE_TARGETS = (
    "Gate.execute on SQLite / one commit per call",
    "Gate.execute on SQLite, calls/s",
    "audit append_batch, records/s",
    "audit verify, records/s",
)


def durable_targets(durable: dict[str, Any]) -> list[Target]:
    """The four durable targets, judged on this run's figures."""
    execute, audit = durable["execute"], durable["audit"]
    rate = execute["group_commit"]["rate_per_s"]
    measured = (
        (execute["ratio"], "x", 4.0, "one commit per call"),
        (rate, "/s", 15_000.0, "-"),
        (audit["append"]["rate_per_s"], "/s", 50_000.0, "-"),
        (audit["verify"]["rate_per_s"], "/s", 300_000.0, "-"),
    )
    return [
        Target(name=name, measured=m, unit=u, op=">=", limit=limit, baseline=b)
        for name, (m, u, limit, b) in zip(DURABLE_TARGETS, measured, strict=True)
    ]


PG_TARGETS = ("durable decisions on PostgreSQL / one commit per decision",)


def pg_targets(section: dict[str, Any]) -> list[Target]:
    """The PostgreSQL target (none when the section was skipped)."""
    if "skipped" in section:
        return []
    return [
        Target(
            name=PG_TARGETS[0],
            measured=section["decide"]["ratio"],
            unit="x",
            op=">=",
            limit=2.0,
            baseline="one commit per decision",
        )
    ]


SERVER_TARGETS = (
    "warden serve: decisions per second, one worker",
    "warden serve decide / bare ASGI echo",
    "warden serve decide p99 at half of saturation",
)


def server_targets(section: dict[str, Any]) -> list[Target]:
    """The HTTP decision path: absolute rate, ratio to the echo endpoint, p99 at half load."""
    return [
        Target(
            name=SERVER_TARGETS[0],
            measured=section["decide_per_s"],
            unit="/s",
            op=">=",
            limit=5_000.0,
            baseline="",
        ),
        Target(
            name=SERVER_TARGETS[1],
            measured=section["ratio"],
            unit="x",
            op=">=",
            limit=0.3,
            baseline="bare ASGI echo, same server options",
        ),
        Target(
            name=SERVER_TARGETS[2],
            measured=section["half_load"]["p99_ms"],
            unit="ms",
            op="<=",
            limit=2.0,
            baseline="",
        ),
    ]


def runner_targets(section: dict[str, Any]) -> list[Target]:
    """Runner overhead per step (p50, no model latency) and the demo's wall time."""
    out = [
        Target(
            name="runner overhead per step p50",
            measured=section["by_model_latency"]["0"]["overhead_ms"]["p50"],
            unit="ms",
            op="<=",
            limit=1.0,
            baseline="-",
        )
    ]
    if "demo_wall_s" in section:
        out.append(
            Target(
                name="demo wall time",
                measured=section["demo_wall_s"],
                unit="s",
                op="<=",
                limit=60.0,
                baseline="-",
            )
        )
    return out


def evals_targets(section: dict[str, Any]) -> list[Target]:
    """Scripted eval cases: the issue's bar is 500 cases in 20 s with 2 workers."""
    scale = section["cases"] / 500.0
    return [
        Target(
            name="eval run: 500 scripted cases, 2 workers",
            measured=section["wall_s"] / scale,
            unit="s",
            op="<=",
            limit=20.0,
            baseline="-" if scale == 1 else f"{section['cases']} cases, scaled to 500",
        )
    ]


REPLAY_TARGET = "replay of 10,000 recorded decisions"


def replay_targets(section: dict[str, Any]) -> list[Target]:
    """Replay under the recorded revision: the issue's bar is 10,000 decisions in 5 s."""
    scale = section["decisions"] / 10_000
    return [
        Target(
            name=REPLAY_TARGET,
            measured=section["replay_s"] / scale,
            unit="s",
            op="<=",
            limit=5.0,
            baseline="-" if scale == 1 else f"{section['decisions']:,} decisions, scaled",
        )
    ]


MCP_TARGET = "warden mcp proxy: added tools/call p50, stdio"


def mcp_targets(section: dict[str, Any]) -> list[Target]:
    """The proxy's added latency per call against the direct call, in the same run."""
    if "skipped" in section:
        return []
    return [
        Target(
            name=MCP_TARGET,
            measured=section["added_p50_ms"],
            unit="ms",
            op="<=",
            limit=1.0,
            baseline="the upstream called directly, same run",
        )
    ]


def run(config: Config) -> dict[str, Any]:
    """Measure everything; returns the results document (see ``bench/results.json``)."""
    started = datetime.now(UTC)
    method = {
        "clock": "time.perf_counter_ns",
        "gc": "gc.collect() then gc.disable() around every timed loop",
    }
    results: dict[str, Any] = {}
    judged: list[Target] = []
    if config.policy:
        policy, us = _policy(config)
        gate = _gate(config)
        gate["ratio_p50_to_policy"] = gate["p50_us"] / us["warden"]
        judged += targets(us, gate)
        results |= {"policy": policy, "gate": gate}
        method |= {
            "policy": f"median of {config.policy_repeat} interleaved repeats, each >= "
            f"{config.min_sample_ms:g} ms of whole passes over the requests",
            "gate": "each decide timed alone; p50/p99 per repeat, median over repeats; "
            "fresh gate and warm-up per repeat",
        }
    if config.durable is not None:
        durable = measure_durable(config.durable)
        judged += durable_targets(durable)
        results["durable"] = durable
        method["durable"] = (
            f"{config.durable.threads} threads call for {config.durable.seconds:g} s per "
            f"repeat, {config.durable.repeat} repeats alternating group commit and one "
            "commit per call, each on a fresh SQLite file; median rate; each call timed "
            "alone, p50/p99 per repeat, median over repeats"
        )
    if config.runner:
        section = measure_runner(runs=config.runner_runs, demo=not config.quick)
        judged += runner_targets(section)
        results["runner"] = section
        method["runner"] = (
            f"{config.runner_runs} runs of {section['steps_per_run']} steps per model latency "
            "(after 2 warm-up runs); a step's overhead is the time from a model turn's "
            "return to the next request minus the tool's own time; the demo is "
            "`warden demo --quiet` in a subprocess"
        )
    if config.pg is not None:
        section = measure_pg(config.pg)
        judged += pg_targets(section)
        results["pg"] = section
        method["pg"] = (
            f"{config.pg.threads} threads call record_decision for {config.pg.seconds:g} s per "
            f"repeat, {config.pg.repeat} repeats alternating group commit and one commit per "
            "decision, each on a fresh database; median rate. Raw inserts: one-row INSERT "
            "in autocommit for the same time"
        )
    if config.server is not None:
        section = measure_server(config.server)
        judged += server_targets(section)
        results["server"] = section
        method["server"] = (
            f"`warden serve` (SQLite, group commit) and a bare ASGI echo app, each one uvicorn "
            f"worker (httptools, uvloop) in its own process; bench.http_load in a third "
            f"process keeps {config.server.connections} keep-alive connections busy for "
            f"{config.server.seconds:g} s ({config.server.repeat} repeats, best rate); every "
            "decide is a new call recorded durably before the answer. Latency: open loop at "
            "half the decide rate, from each request's scheduled time"
        )
    if config.evals is not None:
        section = measure_evals(config.evals)
        judged += evals_targets(section)
        results["evals"] = section
        method["evals"] = (
            f"`run_suite` (what `warden eval run` calls) over the support-desk suite repeated "
            f"to {config.evals.cases} cases, {config.evals.workers} worker processes; wall "
            "time from the call to the last result, worker start-up included"
        )
    if config.replay is not None:
        section = measure_replay(config.replay)
        judged += replay_targets(section)
        results["replay"] = section
        method["replay"] = (
            f"{config.replay.decisions:,} decisions of the gate benchmark recorded by "
            "Gate.execute on SQLite (not timed), then read back and re-decided under the "
            f"recorded revision; median of {config.replay.repeat} repeats, each with a fresh "
            "replayer; live: the same calls through Gate.decide on a fresh in-memory gate"
        )
    if config.mcp is not None:
        section = measure_mcp(config.mcp)
        judged += mcp_targets(section)
        results["mcp"] = section
        method["mcp"] = (
            f"two SDK client sessions over stdio, one to the upstream server, one to `warden "
            f"mcp proxy` in front of a copy of it; {config.mcp.calls} calls each, alternating, "
            f"after {config.mcp.warmup} warm-up calls; each call timed alone, client side"
        )
    return {
        "measured_at": started.isoformat(timespec="seconds"),
        "mode": "quick" if config.quick else "full",
        "machine": machine(),
        "method": method,
        **results,
        "targets": [t.to_dict() for t in judged],
        "elapsed_s": (datetime.now(UTC) - started).total_seconds(),
    }
