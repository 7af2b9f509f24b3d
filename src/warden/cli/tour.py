"""`warden tour`: the seeds' refund examples, walked through the gate and executed.

Each scenario is one proposed tool call (or a short sequence) against the refund example
project, executed with `Gate.execute` on a SQLite store in a temporary folder; the table
shows the decision, the check that settled it, its code, the reason, the rule with its
file:line, and what happened to the action. Then the durable part: an approval granted and
executed exactly once, a retry answered from the store, and the audit log verified,
checkpointed, and caught when a byte of it is changed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.main import cli, console
from warden.cli.policy import outcome_text
from warden.cli.render import bundled_example, command_name, shown_path
from warden.clock import CountingIds, FixedClock
from warden.decision import Decision
from warden.gate import Gate, ToolCall
from warden.project import Project, load_project
from warden.runs import Execution
from warden.store.sqlite import SQLiteStore

__all__ = ["Scenario", "example_project", "run_scenarios"]


def example_project() -> Path:
    """The refund example shipped with Warden."""
    return bundled_example("refunds")


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
            gate.execute(
                ToolCall(
                    agent="refund_autopilot",
                    tool="lookup_customer",
                    run_id=run_id,
                    args={"customer_id": f"cus_{i:03d}"},
                )
            )

    return before


def _tokens(n: int) -> Callable[[Gate, str], None]:
    def before(gate: Gate, run_id: str) -> None:
        gate.record_usage(run_id, tokens=n, usd=0.01)

    return before


def _same_lookup(n: int) -> Callable[[Gate, str], None]:
    def before(gate: Gate, run_id: str) -> None:
        for step in range(n):  # distinct steps: a retry of one step would be replayed
            gate.execute(
                ToolCall(
                    agent="refund_autopilot",
                    tool="lookup_customer",
                    run_id=run_id,
                    args={"customer_id": "cus_042"},
                    step=step,
                )
            )

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


def run_scenarios(
    project_path: Path | None = None,
    *,
    store: SQLiteStore | None = None,
    project: Project | None = None,
) -> list[tuple[Scenario, Decision, Execution]]:
    """Execute every scenario on one gate (fixed clock) over `store` (a temporary SQLite
    store by default); returns each shown call's decision and execution."""
    if project is None:
        project = load_project(project_path or example_project())
    own = store is None
    db = store if store is not None else SQLiteStore.temporary()
    try:
        gate = project.gate(store=db, clock=FixedClock(), ids=CountingIds())
        results: list[tuple[Scenario, Decision, Execution]] = []
        for scenario in SCENARIOS:
            run_id = gate.new_run_id()
            if scenario.before is not None:
                scenario.before(gate, run_id)
            done = gate.execute(
                ToolCall(
                    agent=scenario.agent,
                    tool=scenario.tool,
                    run_id=run_id,
                    args=scenario.args,
                    context=scenario.context,
                )
            )
            results.append((scenario, done.decision, done))
        return results
    finally:
        if own:
            db.close()


@cli.command()
@click.option(
    "--project",
    "-p",
    type=click.Path(path_type=Path),
    default=None,
    help="Run the scenarios against this project instead of the bundled example.",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keep the tour's SQLite database at this path (default: a temporary folder, "
    "removed afterwards). Inspect it with `warden runs list --db PATH`.",
)
def tour(project: Path | None, db: Path | None) -> None:
    """Walk the seeds' refund examples through the gate, execute them durably, and audit.

    Uses the refund example project bundled with Warden (two agents, four tools, the
    seed's manifest and policy). Every call goes through `Gate.execute` on a SQLite
    database with synchronous=FULL; then one approval is granted and executed exactly
    once, a retry is answered from the store, and the audit log is verified, signed and
    tampered with.
    """
    path = project or example_project()
    if db is not None and db.exists():
        raise click.UsageError(f"{db} exists; the tour starts from an empty database")
    store = SQLiteStore(db) if db is not None else SQLiteStore.temporary()
    try:
        loaded = load_project(path)
        results = run_scenarios(store=store, project=loaded)
        out = console()
        out.print(
            f"[bold]Warden tour[/]: the seeds' refund examples through the gate ({path})\n",
            markup=True,
        )
        table = Table(show_lines=False, pad_edge=False, expand=False)
        table.add_column("#", justify="right")
        table.add_column("scenario")
        table.add_column("decision")
        table.add_column("check")
        table.add_column("code")
        table.add_column("why", overflow="fold", max_width=60)
        table.add_column("action")
        for i, (s, d, done) in enumerate(results, 1):
            why = escape(d.reasons[0]) if d.reasons else ""
            if d.rules:
                why += "\n[dim]" + escape(", ".join(f"{r.file}:{r.line}" for r in d.rules)) + "[/]"
            table.add_row(
                str(i),
                escape(s.title),
                outcome_text(d.outcome.value),
                d.stage.value,
                d.code or "",
                why,
                done.state.value,
            )
        out.print(table)
        counts: dict[str, int] = {}
        for _, d, _done in results:
            counts[d.outcome.value] = counts.get(d.outcome.value, 0) + 1
        latencies = [d.latency_ns / 1000 for _, d, _done in results]
        out.print(
            "\n"
            + ", ".join(f"{outcome_text(k)} {v}" for k, v in sorted(counts.items()))
            + f"   median decision time {statistics.median(latencies):.0f} µs (cold, first calls)",
            markup=True,
        )
        out.print(f"[dim]policy revision {results[0][1].policy_revision}[/]", markup=True)
        _durable_part(out, loaded, store, results)
        shown = path if project else shown_path(path)
        exe = command_name()
        out.print("\nNext, try:", markup=True)
        db_hint = f" --db {db}" if db is not None else ""
        for cmd in (
            f"{exe} check -p {shown}",
            f"{exe} policy test -p {shown} -v",
            f"{exe} policy explain -p {shown} -t create_refund --agent support_refund_agent "
            '--args \'{"order_id": "ord_123456", "amount_usd": 75.0, "reason": "late"}\' '
            '--context \'{"customer_tier": "standard", "customer_id": "cus_1"}\' --ask-providers',
            f"{exe} tools schema -p {shown} --format anthropic",
            *(
                (f"{exe} runs list -p {shown}{db_hint}", f"{exe} audit verify -p {shown}{db_hint}")
                if db is not None
                else (f"{exe} tour --db tour.db   (keep the database to inspect it)",)
            ),
        ):
            out.print(f"  [bold]{escape(cmd)}[/]", markup=True)
    finally:
        store.close()


def _durable_part(
    out: Any,
    project: Project,
    store: SQLiteStore,
    results: list[tuple[Scenario, Decision, Execution]],
) -> None:
    """Approve a waiting refund, run it once, replay a retry, then verify and tamper."""
    import sqlite3
    import tempfile

    from warden.audit.checkpoint import SigningKey, make_checkpoint
    from warden.audit.verify import verify_rows
    from warden.errors import AuditError
    from warden.execution import Approvals

    gate = project.gate(store=store, clock=FixedClock(), ids=CountingIds())
    out.print("\n[bold]Durable execution[/] (SQLite, synchronous=FULL)", markup=True)
    waiting = next(
        (done for _, _, done in results if done.approval_id and done.tool == "create_refund"),
        None,
    )
    if waiting is not None and waiting.approval_id is not None:
        approvals = Approvals(store, roles=project.roles, clock=gate.clock)
        request = approvals.get(waiting.approval_id)
        approver = next((p for r in request.roles for p in sorted(project.roles.get(r, ()))), None)
        if approver is not None:
            approvals.approve(waiting.approval_id, approver=approver, reason="checked the order")
            ran = gate.resume(waiting.action_id)
            again = gate.resume(waiting.action_id)
            out.print(
                f"  approval  {waiting.approval_id} ({', '.join(request.roles)}) approved by "
                f"{approver}; the refund ran once: {escape(str(ran.result))}",
                markup=True,
            )
            out.print(
                f"  retry     resuming {waiting.action_id} again: "
                f"{'stored result replayed, nothing re-executed' if again.replayed else 'ran'}",
                markup=True,
            )
    report = verify_rows(store.audit_rows())
    out.print(
        f"  audit log {report.records} records in {len(report.streams)} streams, "
        "hash chain verified",
        markup=True,
    )
    with tempfile.TemporaryDirectory(prefix="warden-tour-") as tmp:
        key = SigningKey.generate()
        checkpoint = make_checkpoint(
            streams=report.streams, last_seq=report.last_seq, at=gate.clock.timestamp(), key=key
        )
        out.print(
            f"  checkpoint signed with Ed25519 key {key.key_id} at record {checkpoint['seq']}",
            markup=True,
        )
        copy = Path(tmp) / "tampered.db"
        with sqlite3.connect(copy) as dst, sqlite3.connect(store.path) as src:
            src.backup(dst)
        victim = max(1, report.last_seq // 2)
        conn = sqlite3.connect(copy)
        body = bytes(conn.execute("SELECT body FROM audit WHERE seq = ?", (victim,)).fetchone()[0])
        tampered = body.replace(b'"at":', b'"at": ', 1)
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (tampered, victim))
        conn.commit()
        rows = conn.execute(
            "SELECT seq, stream, stream_seq, body, hash FROM audit ORDER BY seq"
        ).fetchall()
        conn.close()
        try:
            verify_rows(rows)
        except AuditError as exc:
            out.print(
                f"  tamper    one byte added to record {victim} of a copy: "
                f"[red]{exc.code}[/] {escape(exc.message)}",
                markup=True,
            )
