"""`warden tools`: list tools and export their schemas."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from warden.cli.main import cli, console, project_option
from warden.project import load_project


@cli.group()
def tools() -> None:
    """Inspect the project's tools."""


@tools.command("list")
@project_option
def list_tools(project: Path) -> None:
    """List tools with their risk tier and sensitive arguments."""
    p = load_project(project)
    table = Table(box=None, pad_edge=False)
    for col in ("tool", "risk", "arguments", "sensitive", "hooks"):
        table.add_column(col)
    for t in p.tools:
        hooks = [
            n
            for n, f in (
                ("dry_run", t.dry_run_fn),
                ("compensate", t.compensate_fn),
                ("reconcile", t.reconcile_fn),
            )
            if f is not None
        ]
        table.add_row(
            t.name,
            t.risk.value,
            ", ".join(sorted(t.field_names)),
            ", ".join(sorted(t.sensitive)) or "-",
            ", ".join(hooks) or "-",
        )
    console().print(table)


@tools.command("schema")
@project_option
@click.option(
    "--format",
    "flavour",
    type=click.Choice(["openai", "anthropic", "mcp"]),
    default="openai",
    show_default=True,
    help="The shape to export.",
)
@click.option("--agent", help="Only the tools this agent may use.")
def schema(project: Path, flavour: str, agent: str | None) -> None:
    """Print tool definitions as JSON, in the shape a model API or MCP tools/list expects."""
    p = load_project(project)
    names = None
    if agent is not None:
        m = p.agent(agent)
        if m is None:
            raise click.BadParameter(f"no agent named {agent!r}", param_hint="--agent")
        names = [t.name for t in p.tools if t.name in m.allowed_tools]
    click.echo(json.dumps(p.tools.export(flavour, names), indent=2))  # type: ignore[arg-type]
