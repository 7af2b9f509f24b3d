"""`warden replay RUN_ID` and `warden policy whatif`: recorded decisions, decided again."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.database import open_workspace, store_options
from warden.cli.main import cli, console
from warden.cli.policy import outcome_text, policy
from warden.cli.render import compact, echo_json, json_option, moment, shown_path
from warden.clock import SystemClock
from warden.durations import parse_duration
from warden.errors import ReplayError, RunError
from warden.policy.evaluate import PolicySet
from warden.project import Project
from warden.replay import (
    Replayed,
    Replayer,
    ReplayReport,
    ReplayStatus,
    Verdict,
    WhatIfReport,
    candidate_policies,
    replay_run,
    what_if,
)

__all__ = ["parse_moment"]


def parse_moment(text: str, now: float) -> float:
    """``7d`` (that long before `now`) or a date and time (UTC unless it says otherwise)
    as seconds since the epoch; W-RPL-003 for anything else."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayError(
            "W-RPL-003",
            f"{text!r} is neither a duration back from now (7d, 12h) nor a date and time "
            "(2026-03-01, 2026-03-01T09:00:00Z)",
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _candidate(project: Project, path: Path) -> PolicySet:
    return candidate_policies(
        path, manifests=project.agents, tools=project.tools, root=project.root
    )


# --- warden replay -------------------------------------------------------------------


@cli.command("replay")
@store_options
@click.argument("run_id")
@click.option(
    "--policies",
    "choice",
    default="recorded",
    show_default=True,
    metavar="recorded|current|PATH",
    help="Which policies decide again (see above).",
)
@json_option
def replay_command(project: Path, db: str | None, run_id: str, choice: str, as_json: bool) -> None:
    """Re-decide every recorded call of a run and compare with what was decided.

    Each decision recorded what it read (context, facts, the run's budget figures, the
    loop count, the breaker, the time); the replay gives the same gate code exactly that,
    and history as recorded, and compares outcome, code, stage and rule ids.

    \b
    --policies recorded   each call under the policy revision that decided it, rebuilt
                          from the texts the database keeps: every decision must come
                          out as recorded; exit 1 if one does not
    --policies current    under the project's policies as they are now: shows what
                          they would decide differently (exit 0)
    --policies PATH       under the policy files in PATH, with the project's manifests

    Calls recorded before Warden kept decision inputs are listed as not replayable. A fact
    the replaying policies read that the recorded decision never consulted is looked up
    now and marked so. Tools are the project's current ones.
    """
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    with ws.open() as store:
        if store.run(run_id) is None:
            raise RunError("W-RUN-001", f"no run {run_id!r} in {ws.database.display}")
        replayer = Replayer.for_project(store, proj)
        if choice == "recorded":
            report = replay_run(replayer, run_id)
        elif choice == "current":
            report = replay_run(replayer, run_id, proj.policies, label="current")
        else:
            path = Path(choice)
            if not path.exists():
                raise click.BadParameter(
                    f"{choice!r} is not recorded, current, or an existing policy file or folder",
                    param_hint="--policies",
                )
            candidate = _candidate(proj, path)
            report = replay_run(replayer, run_id, candidate, label=str(shown_path(path)))
    if as_json:
        echo_json({"run_id": run_id, **report.to_dict()})
    else:
        _print_replay(run_id, report)
    if choice == "recorded" and not report.reproduced:
        sys.exit(1)


def _verdict(v: Verdict | None) -> str:
    if v is None:
        return "-"
    code = f" {escape(v.code)}" if v.code else ""
    by = ", ".join(v.rules) if v.rules else (v.stage or "")
    return f"{outcome_text(v.outcome)}{code} [dim]{escape(by)}[/]"


def _status(r: Replayed) -> str:
    if r.status is ReplayStatus.SAME:
        return "[green]same[/]"
    if r.status is ReplayStatus.CHANGED:
        return f"[bold red]changed[/] [dim]({', '.join(r.differences)})[/]"
    return "[dim]not replayable[/]"


def _print_replay(run_id: str, report: ReplayReport) -> None:
    out = console()
    under = (
        "the policy revisions that decided them"
        if report.policies == "recorded"
        else f"the {report.policies} policies"
        if report.policies == "current"
        else f"the policies in {report.policies}"
    )
    out.print(
        f"[bold]run {escape(run_id)}[/]: {len(report.decisions)} recorded decisions, "
        f"re-decided under {escape(under)}",
        markup=True,
    )
    for revision in report.revisions:
        out.print(f"  [dim]revision {escape(revision)}[/]", markup=True)
    if not report.decisions:
        out.print("no recorded decisions")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("step", "decided", "tool", "recorded", "replayed", "result", "notes"):
        table.add_column(col, overflow="fold")
    for r in report.decisions:
        notes = [*r.notes]
        if r.looked_up_now:
            notes.insert(0, f"looked up now: {', '.join(r.looked_up_now)}")
        table.add_row(
            str(r.step) if r.step is not None else "-",
            moment(r.decided_at),
            escape(r.tool),
            _verdict(r.recorded),
            _verdict(r.replayed),
            _status(r),
            escape("; ".join(notes)) or "-",
        )
    out.print(table)
    same = report.count(ReplayStatus.SAME)
    changed = report.count(ReplayStatus.CHANGED)
    old = report.count(ReplayStatus.NOT_REPLAYABLE)
    colour = "green" if not changed else "red"
    line = f"[{colour}]{same} same, {changed} changed[/]"
    if old:
        line += f", {old} not replayable (recorded before Warden kept decision inputs)"
    out.print(line, markup=True)


# --- warden policy whatif ------------------------------------------------------------


@policy.command("whatif")
@store_options
@click.option(
    "--policies",
    "path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The candidate policy files: a folder (or one file) to load instead of the "
    "project's policies:, with the project's manifests and tools.",
)
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="Start of the window: a duration back from now (7d, 12h) or a date and time.",
)
@click.option(
    "--until", default=None, help="End of the window (excluded), like --since; default: now."
)
@click.option("--agent", "-a", default=None, help="Only this agent's decisions.")
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Example decisions shown per change (arguments redacted).",
)
@click.option(
    "--fail-on-change", is_flag=True, help="Exit 1 when any decision would change (for CI)."
)
@json_option
def whatif_command(
    project: Path,
    db: str | None,
    path: Path,
    since: str,
    until: str | None,
    agent: str | None,
    examples: int,
    fail_on_change: bool,
    as_json: bool,
) -> None:
    """What would candidate policies have decided? Before a policy change ships.

    Re-decides every call recorded in the window (by default the last 7 days) under the
    policy files in --policies, with the inputs each decision recorded, and lists every
    decision that would change, grouped by the rule that decided it, with examples.

    \b
    Example:
      warden policy whatif --policies policies-next/ --since 7d

    Each decision is re-decided against recorded history: a decision that would change
    does not change the history later decisions see. A fact the candidate reads that the
    recorded decision never consulted is looked up now. Exits 0 (with --fail-on-change,
    1 when something would change).
    """
    now = SystemClock().timestamp()
    start = parse_moment(since, now)
    end = parse_moment(until, now) if until is not None else now
    if end <= start:
        raise ReplayError(
            "W-RPL-003", f"the window ends ({moment(end)}) before it starts ({moment(start)})"
        )
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    candidate = _candidate(proj, path)
    current_redactions = frozenset[str]().union(
        *(p.log.redact_fields for p in proj.policies.policies)
    )
    with ws.open() as store:
        report = what_if(
            Replayer.for_project(store, proj),
            candidate,
            since=start,
            until=end,
            agent=agent,
            examples=examples,
            redact_fields=current_redactions,
        )
    if as_json:
        echo_json({"policies": str(shown_path(path)), **report.to_dict()})
    else:
        _print_whatif(report, shown_path(path))
    if fail_on_change and report.changed:
        sys.exit(1)


def _print_whatif(report: WhatIfReport, path: Path) -> None:
    out = console()
    who = f" of {escape(report.agent)}" if report.agent else ""
    out.print(
        f"[bold]{report.total} decisions{who}[/] recorded from {moment(report.since)} to "
        f"{moment(report.until)}, re-decided under the policies in {escape(str(path))}",
        markup=True,
    )
    out.print(f"  [dim]candidate revision {escape(report.revision)}[/]", markup=True)
    if report.changes:
        table = Table(box=None, pad_edge=False)
        for col in ("decided by", "decisions", "change", "now decided by", "examples"):
            table.add_column(
                col, overflow="fold", justify="right" if col == "decisions" else "left"
            )
        for c in report.changes:
            shown = "\n".join(
                f"{escape(e.action_id)} {escape(e.run_id)} {escape(e.tool)} "
                f"{escape(compact(dict(e.args), width=80))}"
                for e in c.examples
            )
            table.add_row(
                escape(c.rule),
                str(c.count),
                f"{outcome_text(c.before)} → {outcome_text(c.after)}",
                escape(c.now),
                shown or "-",
            )
        out.print(table)
    colour = "yellow" if report.changed else "green"
    line = f"[{colour}]{report.changed} would change[/], {report.unchanged} unchanged"
    if report.not_replayable:
        line += (
            f", {report.not_replayable} not replayable (recorded before Warden kept "
            "decision inputs)"
        )
    out.print(line, markup=True)
    for transition, count in report.transitions.items():
        out.print(f"  {count} {escape(transition)}", markup=True)
    if report.looked_up_now:
        out.print(
            f"  [dim]{report.looked_up_now} decisions read a fact the recording lacks: "
            "looked up now[/]",
            markup=True,
        )
