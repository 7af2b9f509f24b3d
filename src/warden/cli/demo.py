"""`warden demo`: a support desk's ticket queue, worked by an agent under Warden.

Makes a fresh workspace from the support-desk example (a billing backend with its own
SQLite database, four tools, the seed's manifest and policies, 20+ tickets), runs every
ticket through the runner — a scripted model plays the agent, every tool call goes
through `Gate.execute` on the workspace's SQLite store — with a live progress bar, then
prints the fleet summary and the commands to try next. The workspace stays for
`warden runs`, `warden approvals` and `warden audit`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warden.cli.main import cli, console
from warden.cli.render import bundled_example, command_name
from warden.fleet import FleetSummary
from warden.models.config import build_runner
from warden.models.scripted import ScriptedModel
from warden.project import Project, load_project
from warden.provenance import Content, Label
from warden.runner import RunResult, Task
from warden.runs import RunStatus
from warden.store.sqlite import SQLiteStore
from warden.yamlsource import load_yaml

__all__ = ["example_folder", "load_tickets", "make_workspace", "run_queue"]

MARKER = ".warden-demo"
_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.WAITING: "yellow",
    RunStatus.ESCALATED: "magenta",
    RunStatus.KILLED: "bold red",
    RunStatus.FAILED: "red",
    RunStatus.RUNNING: "cyan",
}


def example_folder() -> Path:
    """The support-desk example shipped with Warden."""
    return bundled_example("support_desk")


def make_workspace(target: Path, source: Path | None = None) -> Path:
    """Copy the example into `target`, replacing an earlier demo workspace (never
    anything else)."""
    if target.exists():
        if not (target / MARKER).is_file():
            raise click.UsageError(
                f"{target} exists and is not a Warden demo workspace; pass --workspace "
                "with another folder"
            )
        shutil.rmtree(target)
    shutil.copytree(
        source or example_folder(),
        target,
        ignore=shutil.ignore_patterns(".warden", "__pycache__", "*.pyc", ".pytest_cache"),
    )
    (target / MARKER).write_text("made by `warden demo`; it replaces this folder on its next run\n")
    return target


def load_tickets(path: Path) -> list[Task]:
    """The example's tickets as runner tasks: the email body is untrusted content, the
    ticket's customer goes into the context policies read (``context.ticket_customer``)."""
    doc = load_yaml(path)
    data = doc.mapping() or {}
    tasks: list[Task] = []
    for i, raw in enumerate(cast(Sequence[Mapping[str, Any]], data.get("tickets", ()))):
        try:
            key, customer = str(raw["id"]), str(raw["customer_id"])
            subject, body = str(raw.get("subject", "")), str(raw["body"])
        except KeyError as exc:
            raise doc.error(
                "W-CFG-004",
                f"a ticket needs id, customer_id and body; {exc} is missing",
                ("tickets", i),
            ) from None
        tasks.append(
            Task(
                agent=str(raw.get("agent", "support_agent")),
                key=key,
                goal=f"Resolve support ticket {key} from customer {customer}. Subject: {subject}",
                content=(
                    Content(text=body, label=Label.UNTRUSTED, source=f"ticket {key} email body"),
                ),
                context={
                    "ticket_id": key,
                    "ticket_customer": customer,
                    **cast(Mapping[str, Any], raw.get("context", {})),
                },
                on_behalf_of=customer,
            )
        )
    return tasks


def run_queue(
    project: Project,
    store: SQLiteStore,
    tasks: Sequence[Task],
    *,
    progress: Progress | None = None,
    model_latency_ms: float | None = None,
) -> list[RunResult]:
    """Run every task, in order, through one runner; returns their results.

    `model_latency_ms` makes scripted models take that long per turn (really: they sleep)."""
    runner = build_runner(project, store)
    if model_latency_ms is not None:
        for model in runner.route.models:
            if isinstance(model, ScriptedModel):
                model.latency_s = model_latency_ms / 1000.0
    results: list[RunResult] = []
    job = progress.add_task("tickets", total=len(tasks)) if progress else None
    for task in tasks:
        if progress is not None and job is not None:
            progress.update(job, description=f"{task.key}")
        results.append(runner.run(task))
        if progress is not None and job is not None:
            progress.advance(job)
    return results


@cli.command()
@click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("warden-demo"),
    show_default=True,
    help="Where to make the workspace (an earlier demo workspace there is replaced).",
)
@click.option(
    "--model-latency",
    type=click.FloatRange(min=0, max=5_000),
    default=40.0,
    show_default=True,
    metavar="MS",
    help="How long the scripted model takes per turn (it really waits), so the timings "
    "split like a real agent's; 0 for none.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no per-ticket table.")
def demo(workspace: Path, model_latency: float, quiet: bool) -> None:
    """Run a support desk's ticket queue through Warden, end to end, on SQLite.

    A scripted model plays a support agent working 20+ tickets: small and large refunds,
    an enterprise customer, a chargeback, a duplicate request, an email carrying an
    injected instruction, a backend that times out. Every tool call is decided,
    recorded durably and executed at most once; large refunds wait for a manager. Then
    the fleet summary, and the commands to approve a waiting refund, resume its run and
    verify the audit log. The workspace stays for `warden runs` and `warden audit`.
    """
    started = time.perf_counter()
    out = console()
    ws = make_workspace(workspace)
    project = load_project(ws)
    path = project.store_path or ws / ".warden" / "warden.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = load_tickets(ws / "tickets.yaml")
    out.print(
        f"[bold]Warden demo[/]: {len(tasks)} support tickets, one agent, every tool call "
        f"through the gate (workspace {escape(str(ws))})\n",
        markup=True,
    )
    with SQLiteStore(
        path,
        idempotency_retention_s=project.idempotency_retention_s,
        retain_days=project.retain_days,
    ) as store:
        if quiet:
            results = run_queue(project, store, tasks, model_latency_ms=model_latency)
        else:
            with Progress(
                TextColumn("[bold]{task.description:<8}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            ) as bar:
                results = run_queue(
                    project, store, tasks, progress=bar, model_latency_ms=model_latency
                )
        summary = FleetSummary.of(store, [r.run_id for r in results])
        if not quiet:
            _print_table(out, tasks, results)
        _print_summary(out, summary, time.perf_counter() - started, model_latency)
        _print_next(out, ws, project, results)


def _print_table(out: Any, tasks: Sequence[Task], results: Sequence[RunResult]) -> None:
    table = Table(pad_edge=False, box=None, show_edge=False)
    for col in ("ticket", "status", "code", "what happened", "cost", "tools"):
        table.add_column(
            col, overflow="fold", justify="right" if col in ("cost", "tools") else "left"
        )
    for task, r in zip(tasks, results, strict=True):
        what = r.reason or r.answer or ""
        table.add_row(
            task.key,
            f"[{_STYLE[r.status]}]{r.status.value}[/]",
            r.code or "",
            escape(what if len(what) <= 70 else what[:69] + "…"),
            f"${r.usd:.4f}",
            str(r.tool_calls),
        )
    out.print(table)


def _print_summary(out: Any, s: FleetSummary, wall_s: float, latency_ms: float) -> None:
    cps = f"${s.cost_per_success:.4f}" if s.cost_per_success is not None else "-"
    codes = ", ".join(f"{k} ×{v}" for k, v in sorted(s.escalation_codes.items()))
    rows = [
        ("tickets", f"{s.runs}"),
        ("succeeded", f"{s.succeeded} ({s.success_rate:.0%})"),
        ("escalated", f"{s.escalated + s.killed}" + (f"  ({codes})" if codes else "")),
        ("approvals waiting", f"{s.approvals_waiting}"),
        ("policy blocks", f"{s.policy_blocks} tool calls denied"),
        ("spend", f"${s.usd:.4f} for {s.tokens:,} tokens and {s.tool_calls} tool calls"),
        ("cost per successful outcome", cps),
        *(
            (
                f"  {agent}",
                f"{a.runs} runs, {a.succeeded} succeeded, ${a.usd:.4f}, "
                + (f"${a.cost_per_success:.4f} per success" if a.cost_per_success else "-"),
            )
            for agent, a in s.by_agent.items()
        ),
        (
            "p95 run latency",
            f"{s.p95_ms:,.0f} ms  (model {s.p95_model_ms:,.0f} ms, tools {s.p95_tool_ms:,.0f} ms, "
            f"Warden {s.p95_overhead_ms:,.0f} ms; p95 of each; the scripted model waits "
            f"{latency_ms:g} ms a turn)",
        ),
        (
            "caches",
            f"{s.tool_cache_hits} tool results reused ({s.tool_saved_ms:,.0f} ms saved), "
            f"{s.model_cache_hits} model answers reused (${s.model_saved_usd:.4f} saved)",
        ),
        ("wall time", f"{wall_s:.1f} s"),
    ]
    out.print("\n[bold]Fleet summary[/]", markup=True)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(k, escape(v))
    out.print(table)


def _print_next(out: Any, ws: Path, project: Project, results: Sequence[RunResult]) -> None:
    exe = command_name()
    p = f"-p {ws}"
    lines: list[str] = []
    waiting = next((r for r in results if r.status is RunStatus.WAITING and r.escalation), None)
    if waiting is not None and waiting.escalation is not None:
        proposed = cast(Mapping[str, Any], waiting.escalation.get("proposed") or {})
        approval = proposed.get("approval_id")
        roles = project.roles.get("support_manager") or next(iter(project.roles.values()), ())
        who = sorted(roles)[0] if roles else "NAME"
        lines += [
            f"{exe} approvals list {p}",
            f"{exe} runs escalation {waiting.run_id} {p}",
            f"{exe} approvals approve {approval} --as {who} {p}",
            f"{exe} runs resume {waiting.run_id} {p}",
        ]
    stopped = next((r for r in results if r.status is RunStatus.ESCALATED), None)
    if stopped is not None:
        lines.append(f"{exe} runs escalation {stopped.run_id} {p}")
    lines += [f"{exe} runs list {p}", f"{exe} audit verify {p}"]
    out.print("\n[bold]Next, try[/] (in this order):", markup=True)
    for line in lines:
        out.print(f"  {escape(line)}", markup=True)
