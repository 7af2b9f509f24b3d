"""How the store-backed commands (runs, approvals, kill, audit) print times and values."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click

__all__ = [
    "bundled_example",
    "command_name",
    "compact",
    "echo_json",
    "json_option",
    "moment",
    "relative",
    "shown_path",
    "span",
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead.")


def moment(ts: float | None) -> str:
    """A timestamp as ``2026-03-01 09:00:00Z`` (UTC); ``-`` for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def span(seconds: float) -> str:
    """A duration in its coarsest whole unit: ``24h``, ``59m``, ``90s`` (rounded down)."""
    seconds = abs(seconds)
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def relative(ts: float, now: float) -> str:
    """``in 59m`` or ``3h ago``."""
    return f"in {span(ts - now)}" if ts >= now else f"{span(now - ts)} ago"


def compact(value: Any, width: int = 60) -> str:
    """One line of JSON, cut to `width` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def echo_json(value: Any) -> None:
    """Print a JSON document for scripts: indented, keys sorted, UTF-8 as is."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def bundled_example(name: str) -> Path:
    """An example project shipped with Warden (in the wheel, or in a source checkout)."""
    for base in (Path(str(resources.files("warden"))), Path(__file__).resolve().parents[3]):
        found = base / "examples" / name
        if (found / "warden.yaml").is_file():
            return found
    raise click.ClickException(f"the {name} example is missing from this installation")


def shown_path(path: Path) -> Path:
    """`path` relative to the working folder when it is under it, for commands to print."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def command_name() -> str:
    """`warden` when it is on PATH, else the path a user can type (e.g. .venv/bin/warden)."""
    here = Path(sys.argv[0]).resolve()
    found = shutil.which("warden")
    if found is not None and Path(found).resolve() == here:
        return "warden"
    return str(shown_path(here)) if here.name == "warden" else "warden"
