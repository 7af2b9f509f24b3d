"""The kill switch: stop every agent, one agent, or one tool, at once.

Scopes are written ``all``, ``agent:NAME`` and ``tool:NAME``. An engaged scope denies
every decision it covers (W-KIL-001) before any other check runs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KillRecord", "kill_scopes", "parse_scope"]


@dataclass(frozen=True, kw_only=True, slots=True)
class KillRecord:
    """An engaged kill switch."""

    scope: str
    """``all``, ``agent:NAME`` or ``tool:NAME``."""
    by: str
    """Who flipped it."""
    reason: str
    """Why."""
    at: float
    """When (seconds since the epoch)."""


def parse_scope(scope: str) -> str:
    """Check a scope's spelling; returns it unchanged."""
    if scope == "all":
        return scope
    kind, _, name = scope.partition(":")
    if kind not in ("agent", "tool") or not name:
        raise ValueError(f"kill switch scope {scope!r} is not 'all', 'agent:NAME' or 'tool:NAME'")
    return scope


def kill_scopes(agent: str, tool: str) -> tuple[str, str, str]:
    """The scopes that cover a call of `tool` by `agent`, broadest first."""
    return ("all", f"agent:{agent}", f"tool:{tool}")
