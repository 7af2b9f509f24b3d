"""Entry point of the `warden` command.

Every command parses its options, calls the library and renders the result. A
`WardenError` is printed with its code, file:line and fix, and exits 2; a failed check
(a policy test case) exits 1; anything unexpected is
reported as an internal error without a traceback unless --debug is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from warden import __version__
from warden.errors import ConfigError, WardenError

__all__ = ["cli", "main"]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def console() -> Console:
    """Where commands print: no syntax highlighting, long lines kept whole, and a wide
    layout when the output is not a terminal (a pipe, a file, CI logs)."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def render_error(exc: WardenError) -> None:
    where = f"[bold]{exc.location}[/]: " if isinstance(exc, ConfigError) and exc.file else ""
    field = f"[cyan]{exc.field}[/]: " if isinstance(exc, ConfigError) and exc.field else ""
    err_console.print(f"{where}[bold red]{exc.code}[/] {field}{exc.message}", markup=True)
    err_console.print(f"  [dim]fix:[/] {exc.hint}", markup=True)
    err_console.print(f"  [dim]docs:[/] docs/errors/{exc.code}.md", markup=True)


class WardenGroup(click.Group):
    """Turns Warden's coded errors into readable messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WardenError as exc:
            render_error(exc)
            sys.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            err_console.print(
                f"[bold red]internal error[/]: {type(exc).__name__}: {exc}", markup=True
            )
            err_console.print(
                "  run again with --debug for the traceback, and report it", markup=True
            )
            sys.exit(3)


project_option = click.option(
    "--project",
    "-p",
    "project",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project folder (or its warden.yaml); searched upwards.",
)


@click.group(cls=WardenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="warden")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def cli(debug: bool) -> None:
    """Warden: the deterministic control plane around AI agents.

    Agents propose tool calls; Warden checks each one against typed contracts, policies,
    budgets, breakers and modes, and explains every decision.

    \b
    Start here:
      warden demo                       a support desk's ticket queue, governed end to end
      warden tour                       the seed's refund examples, one decision at a time
      warden check                      validate the project in this folder
      warden policy test                run the *_test.yaml cases beside your policies
      warden policy explain --help      why one call gets the decision it gets
    """


def main() -> None:
    cli(prog_name="warden")


# commands register themselves on import
from warden.cli import approvals as _approvals  # noqa: E402
from warden.cli import audit as _audit  # noqa: E402
from warden.cli import check as _check  # noqa: E402
from warden.cli import demo as _demo  # noqa: E402
from warden.cli import evals as _evals  # noqa: E402
from warden.cli import keys as _keys  # noqa: E402
from warden.cli import killswitch as _killswitch  # noqa: E402
from warden.cli import mcp as _mcp  # noqa: E402
from warden.cli import policy as _policy  # noqa: E402
from warden.cli import replay as _replay  # noqa: E402
from warden.cli import runs as _runs  # noqa: E402
from warden.cli import serve as _serve  # noqa: E402
from warden.cli import tools as _tools  # noqa: E402
from warden.cli import tour as _tour  # noqa: E402

__commands__ = (
    _approvals,
    _audit,
    _check,
    _demo,
    _evals,
    _keys,
    _killswitch,
    _mcp,
    _policy,
    _replay,
    _runs,
    _serve,
    _tools,
    _tour,
)
