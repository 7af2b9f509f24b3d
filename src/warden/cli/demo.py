"""`warden demo`: the seeds' refund examples, walked through the gate.

Each scenario is one proposed tool call (or a short sequence) against the refund example
project; the table shows the decision, the check that settled it, its code, the reason and
the rule with its file:line.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.main import cli, console
from warden.cli.policy import outcome_text
from warden.clock import CountingIds, FixedClock
from warden.decision import Decision
from warden.gate import Gate, ToolCall
from warden.project import load_project
from warden.store.memory import MemoryStore

__all__ = ["Scenario", "example_project", "run_scenarios"]


def example_project() -> Path:
    """The refund example shipped with Warden (in the wheel, or in a source checkout)."""
    packaged = Path(str(resources.files("warden"))) / "examples" / "refunds"
    if (packaged / "warden.yaml").is_file():
        return packaged
    source = Path(__file__).resolve().parents[3] / "examples" / "refunds"
    if (source / "warden.yaml").is_file():
        return source
    raise click.ClickException("the refund example project is missing from this installation")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    title: str
    agent: str
    tool: str
    args: dict[str, Any]
    context: dict[str, Any]
    before: Callable[[Gate, str], None] | None = None
    """Set-up run against the same gate and run id before the shown call."""


def _refund(order: str, amount: Any, reason: str = "damaged item") -> dict[str, Any]:
    return {"order_id": order, "amount_usd": amount, "reason": reason}


def _lookups(n: int) -> Callable[[Gate, str], None]:
    def before(gate: Gate, run_id: str) -> None:
        for i in range(n):
            d = gate.decide(
                ToolCall(
                    agent="refund_autopilot",
                    tool="lookup_customer",
                    run_id=run_id,
                    args={"customer_id": f"cus_{i:03d}"},
                )
            )
            if d.allowed:
                gate.settle(d, ok=True)

    return before


def _tokens(n: int) -> Callable[[Gate, str], None]:
    def before(gate: Gate, run_id: str) -> None:
        gate.record_usage(run_id, tokens=n, usd=0.01)

    return before


def _same_lookup(n: int) -> Callable[[Gate, str], None]:
    def before(gate: Gate, run_id: str) -> None:
        for _ in range(n):
            d = gate.decide(
                ToolCall(
                    agent="refund_autopilot",
                    tool="lookup_customer",
                    run_id=run_id,
                    args={"customer_id": "cus_042"},
                )
            )
            if d.allowed:
                gate.settle(d, ok=True)

    return before


def _kill(gate: Gate, run_id: str) -> None:
    gate.kill(
        "agent:refund_autopilot", by="oncall@example.com", reason="refund spike under investigation"
    )


def _failing_refunds(gate: Gate, run_id: str) -> None:
    gate.unkill("agent:refund_autopilot", by="oncall@example.com")
    for i in range(5):  # five backend errors in a row trip the 20% breaker (min_calls 5)
        d = gate.decide(
            ToolCall(
                agent="refund_autopilot",
                tool="create_refund",
                run_id=f"{run_id}-{i}",
                args=_refund(f"ord_9000{i:02d}", 10.0),
                context={"customer_tier": "pro"},
            )
        )
        if d.allowed:
            gate.settle(d, ok=False)


PRO = {"customer_tier": "pro", "customer_id": "cus_100"}
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        title="$30 refund, pro customer",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100001", 30.0),
        context=PRO,
    ),
    Scenario(
        title="$180 refund, enterprise customer",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100002", 180.0, "duplicate charge"),
        context={"customer_tier": "enterprise", "customer_id": "cus_200"},
    ),
    Scenario(
        title="$75 refund, standard customer",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100003", 75.0, "late delivery"),
        context={"customer_tier": "standard", "customer_id": "cus_300"},
    ),
    Scenario(
        title="$30 refund, chargeback in last 180 days",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100004", 30.0),
        context={"customer_tier": "pro", "customer_id": "cus_chargeback"},
    ),
    Scenario(
        title="$20 refund, trial tier (no rule covers it)",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100005", 20.0),
        context={"customer_tier": "trial", "customer_id": "cus_500"},
    ),
    Scenario(
        title='amount sent as the string "30"',
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100006", "30"),
        context=PRO,
    ),
    Scenario(
        title="$650 refund (over the contract's $500 cap)",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100007", 650.0),
        context=PRO,
    ),
    Scenario(
        title="unknown field smuggled into the arguments",
        agent="refund_autopilot",
        tool="create_refund",
        args={**_refund("ord_100008", 30.0), "payout_iban": "DE89..."},
        context=PRO,
    ),
    Scenario(
        title="seed agent (suggest_then_act): $30, pro",
        agent="support_refund_agent",
        tool="create_refund",
        args=_refund("ord_100009", 30.0),
        context=PRO,
    ),
    Scenario(
        title="seed agent: $120 (manifest max_amount_usd 100)",
        agent="support_refund_agent",
        tool="create_refund",
        args=_refund("ord_100010", 120.0),
        context={"customer_tier": "enterprise", "customer_id": "cus_200"},
    ),
    Scenario(
        title="seed agent calls a tool it was not given",
        agent="support_refund_agent",
        tool="delete_customer",
        args={"customer_id": "cus_100"},
        context={},
    ),
    Scenario(
        title="9th tool call (budget guard: 8 calls)",
        agent="refund_autopilot",
        tool="lookup_customer",
        args={"customer_id": "cus_999"},
        context={},
        before=_lookups(8),
    ),
    Scenario(
        title="after 12,500 tokens (budget guard: 12,000)",
        agent="refund_autopilot",
        tool="lookup_customer",
        args={"customer_id": "cus_998"},
        context={},
        before=_tokens(12_500),
    ),
    Scenario(
        title="same lookup a third time (loop)",
        agent="refund_autopilot",
        tool="lookup_customer",
        args={"customer_id": "cus_042"},
        context={},
        before=_same_lookup(2),
    ),
    Scenario(
        title="kill switch on the agent",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100011", 30.0),
        context=PRO,
        before=_kill,
    ),
    Scenario(
        title="after 5 failed refunds (breaker 20%)",
        agent="refund_autopilot",
        tool="create_refund",
        args=_refund("ord_100012", 30.0),
        context=PRO,
        before=_failing_refunds,
    ),
)


def run_scenarios(project_path: Path | None = None) -> list[tuple[Scenario, Decision]]:
    """Run every scenario on one gate (in memory, fixed clock); returns the shown decisions."""
    project = load_project(project_path or example_project())
    gate = project.gate(store=MemoryStore(), clock=FixedClock(), ids=CountingIds())
    results: list[tuple[Scenario, Decision]] = []
    for scenario in SCENARIOS:
        run_id = gate.new_run_id()
        if scenario.before is not None:
            scenario.before(gate, run_id)
        d = gate.decide(
            ToolCall(
                agent=scenario.agent,
                tool=scenario.tool,
                run_id=run_id,
                args=scenario.args,
                context=scenario.context,
            )
        )
        if d.allowed:
            gate.settle(d, ok=True)
        results.append((scenario, d))
    return results


@cli.command()
@click.option(
    "--project",
    "-p",
    type=click.Path(path_type=Path),
    default=None,
    help="Run the scenarios against this project instead of the bundled example.",
)
def demo(project: Path | None) -> None:
    """Walk the seeds' refund examples through the gate and show every decision.

    Uses the refund example project bundled with Warden (two agents, four tools, the
    seed's manifest and policy). Nothing is written anywhere.
    """
    path = project or example_project()
    results = run_scenarios(path)
    out = console()
    out.print(
        f"[bold]Warden demo[/]: the seeds' refund examples through the gate ({path})\n", markup=True
    )
    table = Table(show_lines=False, pad_edge=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("scenario")
    table.add_column("decision")
    table.add_column("check")
    table.add_column("code")
    table.add_column("why", overflow="fold", max_width=70)
    for i, (s, d) in enumerate(results, 1):
        why = escape(d.reasons[0]) if d.reasons else ""
        if d.rules:
            why += "\n[dim]" + escape(", ".join(f"{r.file}:{r.line}" for r in d.rules)) + "[/]"
        table.add_row(
            str(i), escape(s.title), outcome_text(d.outcome.value), d.stage.value, d.code or "", why
        )
    out.print(table)
    counts: dict[str, int] = {}
    for _, d in results:
        counts[d.outcome.value] = counts.get(d.outcome.value, 0) + 1
    latencies = [d.latency_ns / 1000 for _, d in results]
    out.print(
        "\n"
        + ", ".join(f"{outcome_text(k)} {v}" for k, v in sorted(counts.items()))
        + f"   median decision time {statistics.median(latencies):.0f} µs (cold, first calls)",
        markup=True,
    )
    first_rev = results[0][1].policy_revision
    out.print(f"[dim]policy revision {first_rev}[/]", markup=True)
    out.print("\nNext, try:", markup=True)
    shown = path if project else _relative(path)
    exe = _command_name()
    for cmd in (
        f"{exe} check -p {shown}",
        f"{exe} policy test -p {shown} -v",
        f"{exe} policy explain -p {shown} -t create_refund --agent support_refund_agent "
        '--args \'{"order_id": "ord_123456", "amount_usd": 75.0, "reason": "late"}\' '
        '--context \'{"customer_tier": "standard", "customer_id": "cus_1"}\' --ask-providers',
        f"{exe} tools schema -p {shown} --format anthropic",
    ):
        out.print(f"  [bold]{escape(cmd)}[/]", markup=True)


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _command_name() -> str:
    """`warden` when it is on PATH, else the path a user can type (e.g. .venv/bin/warden)."""
    here = Path(sys.argv[0]).resolve()
    found = shutil.which("warden")
    if found is not None and Path(found).resolve() == here:
        return "warden"
    return str(_relative(here)) if here.name == "warden" else "warden"
