"""`warden runs list | show | resume | escalation`: what agents did, from the durable store,
and going on with runs that waited for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from warden.cli.database import open_workspace, store_options
from warden.cli.main import cli, console
from warden.cli.policy import outcome_text
from warden.cli.render import compact, echo_json, json_option, moment
from warden.errors import RunError
from warden.models.config import build_runner
from warden.runner import RunResult, render_escalation
from warden.runs import ActionState, ActionView, RunStatus

_RUN_STYLE = {
    RunStatus.RUNNING: "cyan",
    RunStatus.WAITING: "yellow",
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.ESCALATED: "magenta",
    RunStatus.KILLED: "bold red",
}
_STATE_STYLE = {
    ActionState.SUCCEEDED: "green",
    ActionState.FAILED: "red",
    ActionState.OUTCOME_UNKNOWN: "bold magenta",
    ActionState.REJECTED: "red",
    ActionState.AWAITING_APPROVAL: "yellow",
    ActionState.EXECUTING: "cyan",
}


def action_dict(action: ActionView) -> dict[str, Any]:
    """An action as `warden runs show --json` prints it."""
    return {
        "id": action.id,
        "step": action.step,
        "tool": action.tool,
        "state": action.state.value,
        "outcome": action.outcome,
        "code": action.code,
        "reasons": list(action.reasons),
        "args": dict(action.args),
        "idempotency_key": action.idempotency_key,
        "approval_id": action.approval_id,
        "decided_at": action.decided_at,
        "finished_at": action.finished_at,
        "attempts": action.attempts,
        "result": action.result,
        "error": dict(action.error) if action.error is not None else None,
    }


def _status(status: RunStatus) -> str:
    return f"[{_RUN_STYLE[status]}]{status.value}[/]"


def _state(state: ActionState) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state.value}[/]" if style else state.value


@cli.group()
def runs() -> None:
    """Inspect runs and the timeline of their actions."""


@runs.command("list")
@store_options
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    default=None,
    help="Only runs in this status.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N runs."
)
@json_option
def list_runs(project: Path, db: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    with open_workspace(project, db).open() as store:
        found = store.runs(limit=limit, status=RunStatus(status) if status else None)
    if as_json:
        echo_json([r.summary() for r in found])
        return
    out = console()
    if not found:
        out.print("no runs" + (f" with status {status}" if status else ""))
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("run", no_wrap=True, min_width=max(len(r.id) for r in found))
    for col in ("agent", "task", "status", "started", "calls", "cost"):
        right = col in ("calls", "cost")
        table.add_column(col, overflow="fold", justify="right" if right else "left")
    table.add_column("reason", overflow="fold")
    for r in found:
        table.add_row(
            escape(r.id),
            escape(r.agent),
            escape(r.task or "-"),
            _status(r.status),
            moment(r.started_at),
            str(r.calls),
            f"${r.usd:.4f}",
            escape(r.reason or "-"),
        )
    out.print(table)


def _decision(action: ActionView) -> str:
    text = outcome_text(action.outcome)
    return f"{text} {action.code}" if action.code else text


def _result(action: ActionView) -> str:
    if action.error is not None:
        code = action.error.get("code") or "error"
        return f"[red]{escape(str(code))}[/] {escape(str(action.error.get('message') or ''))}"
    if action.result is not None:
        return escape(compact(action.result, width=100))
    return "-"


def _time_of_day(ts: float, day_of: float) -> str:
    """``09:00:00.123``, with the date in front when it is not `day_of`'s date."""
    when = datetime.fromtimestamp(ts, tz=UTC)
    text = when.strftime("%H:%M:%S.%f")[:-3]
    if when.date() != datetime.fromtimestamp(day_of, tz=UTC).date():
        text = when.strftime("%Y-%m-%d ") + text
    return text


def _print_action(out: Console, a: ActionView, day_of: float) -> None:
    """One action of the timeline: a headline, then its reason, approval and result."""
    at = _time_of_day(a.decided_at, day_of)
    step = f" [dim]step {a.step}[/]" if a.step is not None else ""
    out.print(
        f"  {at}  [bold]{escape(a.tool)}[/]  {_state(a.state)}  {_decision(a)}{step}",
        markup=True,
    )
    indent = " " * (len(at) + 4)
    if a.reasons:
        out.print(f"{indent}{escape(a.reasons[0])}", markup=True)
    if a.approval_id:
        out.print(f"{indent}approval {escape(a.approval_id)}", markup=True)
    if a.error is not None or a.result is not None:
        out.print(f"{indent}→ {_result(a)}", markup=True)


@runs.command("show")
@store_options
@click.argument("run_id")
@json_option
def show_run(project: Path, db: str | None, run_id: str, as_json: bool) -> None:
    """Show a run and the timeline of its actions: when, which tool, its state, the
    decision and its first reason, the approval, and the result or error."""
    ws = open_workspace(project, db)
    with ws.open() as store:
        run = store.run(run_id)
        saved = store.run_state(run_id)
    if run is None:
        raise RunError("W-RUN-001", f"no run {run_id!r} in {ws.database.display}")
    if as_json:
        echo_json(
            {
                **run.summary(),
                "actions": [action_dict(a) for a in run.actions],
                "timeline": saved[0].get("timeline", []) if saved is not None else [],
            }
        )
        return
    out = console()
    out.print(
        f"[bold]run {escape(run.id)}[/] {escape(run.agent)} {_status(run.status)}", markup=True
    )
    ended = f", ended {moment(run.ended_at)}" if run.ended_at is not None else ""
    by = f" for {escape(run.started_by)}" if run.started_by else ""
    out.print(f"  started {moment(run.started_at)}{by}{ended}", markup=True)
    calls = f"{run.calls} call{'s' if run.calls != 1 else ''}"
    out.print(f"  {calls}, ${run.usd:.4f}, {run.tokens} tokens", markup=True)
    if run.reason:
        out.print(f"  {escape(run.outcome or run.status.value)}: {escape(run.reason)}")
    elif run.outcome:
        out.print(f"  {escape(run.outcome)}")
    out.print(f"  [dim]policy {escape(run.policy_revision)}[/]", markup=True)
    if not run.actions:
        out.print("no actions")
    else:
        out.print("timeline", markup=True)
        for a in run.actions:
            _print_action(out, a, run.started_at)
    if saved is not None:
        _print_runner_timeline(out, saved[0], run.started_at)


def _print_runner_timeline(out: Console, state: dict[str, Any], day_of: float) -> None:
    """The runner's own events: model turns (time, tokens, cost, cache, cascade) and
    tool calls (time, cache), with what caches saved."""
    out.print("runner", markup=True)
    for e in state.get("timeline", ()):
        at = _time_of_day(float(e.get("at", day_of)), day_of)
        kind = e.get("kind")
        if kind == "model":
            usage = cast(dict[str, int], e.get("usage") or {})
            tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
            text = f"model {e.get('model')}  {float(e.get('ms', 0)):.0f} ms  {tokens} tokens"
            text += f"  ${float(e.get('usd', 0)):.5f}"
            if e.get("cached"):
                text += f"  cached (saved ${float(e.get('saved_usd', 0)):.5f})"
            if e.get("error"):
                text += f"  failed {e['error']}"
            if e.get("escalated"):
                text += f"  → next model: {e['escalated']}"
        elif kind == "tool":
            text = f"tool {e.get('tool')}  {e.get('state')}  {float(e.get('ms', 0)):.1f} ms"
            if e.get("cached"):
                text += f"  cached result (saved {float(e.get('saved_ms', 0)):.1f} ms)"
            if e.get("replayed"):
                text += "  replayed from the store"
        else:
            text = str(kind) + (f"  {e['reason']}" if e.get("reason") else "")
        out.print(f"  {at}  {escape(text)}", markup=True)


def _print_result(out: Console, r: RunResult) -> None:
    what = r.reason or r.answer or ""
    code = f" [{escape(r.code)}]" if r.code else ""
    out.print(
        f"[bold]run {escape(r.run_id)}[/] {_status(r.status)}{code}  {escape(what)}", markup=True
    )
    out.print(
        f"  ${r.usd:.4f}, {r.tokens} tokens, {r.tool_calls} tool calls, {r.turns} turns",
        markup=True,
    )
    if r.status is RunStatus.WAITING and r.escalation is not None:
        proposed = cast(dict[str, Any], r.escalation.get("proposed") or {})
        out.print(
            f"  waits for approval {escape(str(proposed.get('approval_id')))} "
            f"({escape(str(proposed.get('needs') or ''))}): "
            f"`warden runs escalation {escape(r.run_id)}` shows it",
            markup=True,
        )


def _result_dict(r: RunResult) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "agent": r.agent,
        "task": r.task,
        "status": r.status.value,
        "answer": r.answer,
        "code": r.code,
        "reason": r.reason,
        "usd": r.usd,
        "tokens": r.tokens,
        "tool_calls": r.tool_calls,
        "turns": r.turns,
        "escalation": r.escalation,
    }


@runs.command("resume")
@store_options
@click.argument("run_id", required=False)
@click.option(
    "--ready",
    is_flag=True,
    help="Resume every waiting run whose approval has been decided (instead of one RUN_ID).",
)
@click.option(
    "--watch",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="SECONDS",
    help="With --ready: keep resuming ready runs every SECONDS until interrupted.",
)
@json_option
def resume_run(
    project: Path,
    db: str | None,
    run_id: str | None,
    ready: bool,
    watch: float | None,
    as_json: bool,
) -> None:
    """Go on with a run that waits for an approval, or was interrupted.

    The run continues from its saved conversation; actions it completed are not run
    again (their results come back from the store by idempotency key). An approved
    action runs exactly once; a denied one is reported to the model, which goes on. A
    run whose approval is still pending stays waiting. Uses the model route of
    `runner:` in warden.yaml.

    \b
    Examples:
      warden runs resume run_4f1c...
      warden runs resume --ready --watch 2     (what a server does by itself)
    """
    if (run_id is None) == (not ready):
        raise click.UsageError("give one RUN_ID, or --ready")
    if watch is not None and not ready:
        raise click.UsageError("--watch goes with --ready")
    ws = open_workspace(project, db, need_project=True)
    out = console()
    with ws.open() as store:
        runner = build_runner(ws.need_project(), store)
        while True:
            results = [runner.resume(run_id)] if run_id is not None else runner.resume_ready()
            if as_json:
                echo_json([_result_dict(r) for r in results])
            else:
                if not results and watch is None:
                    out.print("no waiting run has a decided approval")
                for r in results:
                    _print_result(out, r)
            if watch is None:
                return
            time.sleep(watch)


@runs.command("escalation")
@store_options
@click.argument("run_id")
@json_option
def escalation(project: Path, db: str | None, run_id: str, as_json: bool) -> None:
    """Show a run's escalation packet: the goal, the steps attempted with their (redacted)
    outputs, what stopped the run with the file:line that set it, the proposed action
    with its dry run, and the options with their commands."""
    ws = open_workspace(project, db)
    with ws.open() as store:
        run = store.run(run_id)
        saved = store.run_state(run_id)
    if run is None:
        raise RunError("W-RUN-001", f"no run {run_id!r} in {ws.database.display}")
    packet = saved[1] if saved is not None else None
    if as_json:
        echo_json(packet)
        return
    if packet is None:
        console().print(f"run {run_id} has no escalation packet (it is {run.status.value})")
        return
    click.echo(render_escalation(packet))
