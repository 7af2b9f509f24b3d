"""The crash matrix's runs, drawn from one seed: where to crash, after how many passes,
which calls, how many threads.

Everything random is decided here, in the test process, so a run replays from its seed:
``WARDEN_CRASH_SEED=<seed> pytest tests/crash -k run042``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["POINTS", "VARIANTS", "CallSpec", "RunSpec", "make_plan"]

POINTS = (
    "after_decide",  # gate.decide returned; store.record_decision has not run
    "after_record",  # the decision is committed; the tool has not been called
    "during_call",  # the tool is running (its effect may or may not be written)
    "before_outcome",  # the tool returned; store.record_outcome has not run
    "audit_append",  # inside the writer transaction: the audit INSERT done, no COMMIT
)
"""The dangerous points, in the order a call passes them."""

VARIANTS: dict[str, tuple[str, ...]] = {
    "after_decide": ("",),
    "after_record": ("",),
    # the process kills itself right after the backend's fsync, or the fork server kills
    # it at a random moment while the tool sleeps around the effect
    "during_call": ("after_effect", "killed_by_parent"),
    "before_outcome": ("",),
    # the append of the decision record, or of the outcome record
    "audit_append": ("decision", "outcome"),
}

RECONCILED_TOOL = "pay"
BLIND_TOOL = "blind_pay"
"""A tool without a reconcile hook: interrupted, it can only become outcome_unknown."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CallSpec:
    """One call the agent makes (and, after the crash, makes again)."""

    tool: str
    run_id: str
    step: int
    payee: str
    amount_usd: float
    key: str | None
    """An explicit idempotency key, or None for the key derived from run, step and args."""

    def as_call_kwargs(self) -> dict[str, Any]:
        return {
            "agent": "payer",
            "tool": self.tool,
            "run_id": self.run_id,
            "step": self.step,
            "args": {"payee": self.payee, "amount_usd": self.amount_usd},
            "estimated_usd": self.amount_usd,
            "idempotency_key": self.key,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSpec:
    """One run of the matrix: a child process that crashes, then a recovery."""

    index: int
    seed: str
    point: str
    variant: str
    crash_after: int
    """How many times the point is passed safely before the pass that crashes."""
    threads: int
    """Threads making the calls in the crashing process (1 = sequential)."""
    calls: tuple[CallSpec, ...]
    pause_s: float = 0.0
    """killed_by_parent: how long the tool sleeps before writing its effect."""
    kill_delay_s: float = 0.0
    """killed_by_parent: how long after the tool starts the fork server kills."""
    recover: bool = True
    """False: the fork server leaves the crashed database for the test to recover."""
    sabotage: str | None = None
    """Only for the tests that prove the checker can fail: ``lying_reconcile`` makes the
    recovering process's reconcile hook say no effect happened."""

    @property
    def id(self) -> str:
        variant = f"-{self.variant}" if self.variant else ""
        return f"run{self.index:03d}-{self.point}{variant}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        raw = json.loads(text)
        raw["calls"] = tuple(CallSpec(**c) for c in raw["calls"])
        return cls(**raw)

    def describe(self) -> str:
        """What a failure message shows: enough to replay the run."""
        lines = [
            f"{self.id}: seed {self.seed!r}, crash at {self.point} {self.variant} after "
            f"{self.crash_after} safe passes, {self.threads} thread(s)",
            *(
                f"  {c.tool}(run={c.run_id}, step={c.step}, {c.amount_usd} USD, key={c.key})"
                for c in self.calls
            ),
        ]
        return "\n".join(lines)


def make_plan(master_seed: int, runs: int) -> list[RunSpec]:
    """`runs` runs spread evenly over the points, in a shuffled order."""
    order = random.Random(f"{master_seed}:order")
    points = [POINTS[i % len(POINTS)] for i in range(runs)]
    order.shuffle(points)
    return [_run(i, f"{master_seed}:{i}", point) for i, point in enumerate(points)]


def _run(index: int, seed: str, point: str) -> RunSpec:
    rng = random.Random(seed)
    crash_after = rng.randint(0, 5)
    blind_share = rng.choice((0.0, 0.0, 0.3, 0.6))
    run_ids = [f"run_{index:03d}_{n}" for n in range(rng.randint(1, 2))]
    steps = dict.fromkeys(run_ids, 0)
    distinct = crash_after + 1 + rng.randint(0, 3)  # enough passes to reach the crash
    calls: list[CallSpec] = []
    for i in range(distinct):
        run_id = rng.choice(run_ids)
        steps[run_id] += 1
        calls.append(
            CallSpec(
                tool=BLIND_TOOL if rng.random() < blind_share else RECONCILED_TOOL,
                run_id=run_id,
                step=steps[run_id],
                payee=rng.choice(("acme", "globex", "initech")),
                amount_usd=round(rng.uniform(1.0, 100.0), 2),
                key=f"key_{index:03d}_{i}" if rng.random() < 0.5 else None,
            )
        )
    for _ in range(rng.choice((0, 0, 1, 2))):  # the agent repeats a call it already made
        calls.insert(rng.randint(1, len(calls)), rng.choice(calls))
    variant = rng.choice(VARIANTS[point])
    return RunSpec(
        index=index,
        seed=seed,
        point=point,
        variant=variant,
        crash_after=crash_after,
        threads=rng.choice((1, 1, 2, 3, 4)),
        calls=tuple(calls),
        pause_s=round(rng.uniform(0.0, 0.01), 4),
        kill_delay_s=round(rng.uniform(0.0, 0.02), 4),
    )
