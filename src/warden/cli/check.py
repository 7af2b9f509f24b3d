"""`warden check`: load and validate a whole project."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from warden.cli.main import cli, console, project_option
from warden.project import load_project


@cli.command()
@project_option
def check(project: Path) -> None:
    """Validate a project: warden.yaml, manifests, tools and policies, all together.

    Exits 0 when everything loads, 2 with the file, line and fix of the first problem.
    """
    p = load_project(project)
    out = console()
    out.print(f"[bold green]ok[/] project [bold]{p.name}[/] ({p.file})", markup=True)
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column("agent")
    table.add_column("mode")
    table.add_column("tools")
    table.add_column("budgets")
    for a in p.agents:
        b = a.budgets
        limits = ", ".join(
            f"{k} {v:g}"
            for k, v in (
                ("usd", b.max_usd),
                ("calls", b.max_tool_calls),
                ("tokens", b.max_tokens),
                ("wall s", b.max_wall_seconds),
            )
            if v is not None
        )
        table.add_row(
            a.name,
            a.mode.value + (f" ({a.autonomy})" if a.autonomy else ""),
            ", ".join(sorted(a.allowed_tools)),
            limits or "none",
        )
    out.print(table)
    out.print(
        f"{len(p.tools)} tools, {len(p.policies)} policies with {p.policies.rule_count} rules, "
        f"{len(p.facts.names())} fact providers"
    )
    out.print(f"policy revision {p.policies.revision}")
