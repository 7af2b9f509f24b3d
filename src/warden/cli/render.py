"""How the store-backed commands (runs, approvals, kill, audit) print times and values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["compact", "echo_json", "json_option", "moment", "relative", "span"]

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
