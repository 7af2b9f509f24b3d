"""`warden kill` and `warden unkill`: the kill switch, from a terminal.

Both go through the project's gate (`Gate.kill` / `Gate.unkill`), so every flip lands in
the database, where running agents poll it, and in the audit log with who and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.database import actor_option, open_workspace, require_actor, store_options
from warden.cli.main import cli, console
from warden.cli.render import moment
from warden.killswitch import KillRecord
from warden.project import Project

_F = TypeVar("_F", bound=Callable[..., Any])


def _scope_options(fn: _F) -> _F:
    for option in reversed(
        (
            click.option("--all", "everything", is_flag=True, help="Every agent and tool."),
            click.option("--agent", default=None, help="One agent, by its manifest name."),
            click.option("--tool", default=None, help="One tool, by its registered name."),
        )
    ):
        fn = option(fn)
    return fn


def _scope(everything: bool, agent: str | None, tool: str | None) -> str:
    chosen = [s for s in ("all" if everything else None, agent, tool) if s is not None]
    if len(chosen) != 1:
        raise click.UsageError("name exactly one scope: --all, --agent NAME or --tool NAME")
    if everything:
        return "all"
    return f"agent:{agent}" if agent is not None else f"tool:{tool}"


def _check_known(project: Project, scope: str) -> None:
    """Refuse a switch for a name the project does not know: a typo would stop nothing."""
    kind, _, name = scope.partition(":")
    if kind == "agent" and project.agent(name) is None:
        known = ", ".join(a.name for a in project.agents)
        raise click.BadParameter(f"no agent named {name!r} (known: {known})", param_hint="--agent")
    if kind == "tool" and name not in project.tools:
        known = ", ".join(project.tools.names())
        raise click.BadParameter(f"no tool named {name!r} (known: {known})", param_hint="--tool")


def _flags(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return "--all" if scope == "all" else f"--{kind} {name}"


def _print_kills(kills: list[KillRecord]) -> None:
    out = console()
    if not kills:
        out.print("no kill switch is engaged")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("scope", "engaged", "by"):
        table.add_column(col, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for k in kills:
        table.add_row(escape(k.scope), moment(k.at), escape(k.by), escape(k.reason))
    out.print(table)


@cli.command("kill")
@store_options
@_scope_options
@click.option("--reason", default=None, help="Why; required to engage a switch.")
@actor_option("Who engages it (recorded in the audit log).")
@click.option("--list", "show", is_flag=True, help="Show the engaged switches; change nothing.")
def kill_command(
    project: Path,
    db: str | None,
    everything: bool,
    agent: str | None,
    tool: str | None,
    reason: str | None,
    actor: str | None,
    show: bool,
) -> None:
    """Engage a kill switch: deny every call of all agents, one agent or one tool.

    The switch is stored in the database; agents using it stop within their poll
    interval. Every call it covers is denied with W-KIL-001 before any other check, and
    approved actions it covers wait. `warden unkill` lifts it.

    \b
    Examples:
      warden kill --agent refund_bot --reason "refund spike" --as alice
      warden kill --list
    """
    if show:
        if everything or agent or tool or reason:
            raise click.UsageError("--list takes no scope and no reason")
        with open_workspace(project, db).open() as store:
            _print_kills(sorted(store.kills(), key=lambda k: k.scope))
        return
    scope = _scope(everything, agent, tool)
    if reason is None or not reason.strip():
        raise click.UsageError("say why with --reason TEXT: it is recorded with the switch")
    who = require_actor(actor)
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    _check_known(proj, scope)
    with ws.open(create=True) as store:
        proj.gate(store=store).kill(scope, by=who, reason=reason.strip())
    out = console()
    out.print(
        f"[bold red]kill switch {escape(scope)} engaged[/] by {escape(who)}: {escape(reason)}",
        markup=True,
    )
    out.print("  every call it covers is denied (W-KIL-001); approved actions it covers wait")
    out.print(f"  lift it with: warden unkill {_flags(scope)} --as NAME")


@cli.command("unkill")
@store_options
@_scope_options
@click.option("--reason", default="", help="Why it is safe again (recorded).")
@actor_option("Who lifts it (recorded in the audit log).")
def unkill_command(
    project: Path,
    db: str | None,
    everything: bool,
    agent: str | None,
    tool: str | None,
    reason: str,
    actor: str | None,
) -> None:
    """Lift a kill switch engaged with `warden kill`.

    Exits 1, changing nothing, when no switch is engaged for that scope. Lifting one
    scope leaves the others engaged (`--all` does not lift `--agent` switches).
    """
    scope = _scope(everything, agent, tool)
    who = require_actor(actor)
    ws = open_workspace(project, db, need_project=True)
    with ws.open() as store:
        engaged = {k.scope for k in store.kills()}
        if scope not in engaged:
            others = ", ".join(sorted(engaged)) or "none"
            raise click.ClickException(
                f"no kill switch is engaged for {scope} (engaged: {others}); nothing changed"
            )
        ws.need_project().gate(store=store).unkill(scope, by=who, reason=reason.strip())
        remaining = sorted(k.scope for k in store.kills())
    out = console()
    out.print(f"[green]kill switch {escape(scope)} lifted[/] by {escape(who)}", markup=True)
    if remaining:
        out.print(f"  still engaged: {escape(', '.join(remaining))}", markup=True)
