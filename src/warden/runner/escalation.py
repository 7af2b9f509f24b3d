"""The escalation packet: what a person gets when a run stops or waits for them.

It holds the goal, every step attempted with its (redacted) tool output, what stopped
the run — the rule, budget, breaker or switch, with the file:line that set it — the
proposed action with its dry-run diff, and the options, each with the command to take
it. `render` prints it for people; the dict form is JSON (`warden runs escalation ID`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

__all__ = ["options_for", "render"]

_KINDS = {
    "approval": "waits for approval",
    "budget": "stopped by a budget",
    "loop": "stopped by loop detection",
    "kill_switch": "stopped by a kill switch",
    "breaker": "stopped by a circuit breaker",
    "outcome_unknown": "stopped: an action's outcome is unknown",
    "model": "stopped: no model could answer",
    "turn_limit": "stopped by the turn limit",
    "in_progress": "stopped: an action is in progress elsewhere",
    "blocked": "stopped: an approved action cannot run",
}


def options_for(
    kind: str,
    *,
    run_id: str,
    approval_id: str | None = None,
    scope: str | None = None,
    where: str | None = None,
    key: str | None = None,
    action_id: str | None = None,
) -> list[dict[str, str]]:
    """What a person can do about a stop of `kind`, each with its command."""
    resume = f"warden runs resume {run_id}"
    out: list[dict[str, str]] = []
    if kind == "approval" and approval_id:
        out += [
            {
                "do": "approve",
                "command": f"warden approvals approve {approval_id} --as NAME && {resume}",
            },
            {
                "do": "deny",
                "command": f"warden approvals deny {approval_id} --as NAME --reason WHY "
                f"&& {resume}",
            },
        ]
    elif kind == "budget":
        out.append(
            {"do": "raise the budget, then resume", "command": f"edit {where}; {resume}"}
            if where and not where.startswith("runner limit")
            else {"do": "raise the runner's limit, then resume", "command": f"{where}; {resume}"}
            if where
            else {"do": "raise the budget, then resume", "command": resume}
        )
    elif kind == "kill_switch" and scope:
        out.append(
            {
                "do": "lift the switch when it is safe, then resume",
                "command": f"warden unkill {_scope_flag(scope)} --as NAME && {resume}",
            }
        )
    elif kind == "outcome_unknown":
        out.append(
            {
                "do": "check the backend for the effect",
                "command": f"look up idempotency key {key} in the backend"
                if key
                else f"warden runs show {run_id}",
            }
        )
        if action_id:
            out.append(
                {
                    "do": "undo it if it happened and should not have",
                    "command": f"warden runs show {run_id}  (then compensate {action_id})",
                }
            )
        out.append({"do": "resume once it is settled", "command": resume})
    elif kind == "loop" and where:
        out.append(
            {
                "do": "if the repeats are legitimate, raise max_identical_calls, then resume",
                "command": f"edit {where}; {resume}",
            }
        )
    elif kind in ("model", "in_progress", "blocked"):
        out.append({"do": "resume when it is back", "command": resume})
    elif kind == "breaker":
        out.append(
            {
                "do": "find why the agent's actions fail, then resume once the breaker closes "
                "(its cooldown, then one probe)",
                "command": f"warden runs show {run_id}; {resume}",
            }
        )
    out.append({"do": "take the task over by hand", "command": f"warden runs show {run_id}"})
    return out


def _scope_flag(scope: str) -> str:
    if scope.startswith("agent:"):
        return f"--agent {scope.removeprefix('agent:')}"
    if scope.startswith("tool:"):
        return f"--tool {scope.removeprefix('tool:')}"
    return "--all"


def render(packet: Mapping[str, Any]) -> str:
    """The packet as text for a person (a terminal, a ticket, a chat message)."""
    lines: list[str] = []
    task = cast(Mapping[str, Any], packet.get("task", {}))
    stop = cast(Mapping[str, Any], packet.get("stopped_by", {}))
    kind = str(stop.get("kind", ""))
    head = f"Run {packet.get('run_id')} ({packet.get('agent')}) {_KINDS.get(kind, kind)}"
    lines += [head, "=" * len(head), ""]
    lines.append(f"Goal: {task.get('goal', '')}")
    if task.get("key"):
        lines.append(f"Task: {task['key']}")
    lines.append("")
    code = stop.get("code")
    lines.append(f"Why: {stop.get('reason', '')}" + (f"  [{code}]" if code else ""))
    for where in cast(Sequence[str], stop.get("where", ())):
        lines.append(f"  set at {where}")
    lines.append("")
    steps = cast(Sequence[Mapping[str, Any]], packet.get("steps", ()))
    lines.append(f"Steps attempted ({len(steps)}):")
    for s in steps:
        mark = {"succeeded": "ok", "decided": "--", "failed": "!!"}.get(str(s.get("state")), "..")
        tail = f" [{s['code']}]" if s.get("code") else ""
        lines.append(f"  {mark} {s.get('step')}: {s.get('tool')}({_short(s.get('args'))}){tail}")
        if s.get("output") not in (None, ""):
            lines.append(f"       -> {_short(s.get('output'), 160)}")
    if not steps:
        lines.append("  (none)")
    proposed = cast(Mapping[str, Any] | None, packet.get("proposed"))
    if proposed:
        lines += ["", f"Proposed action: {proposed.get('tool')}({_short(proposed.get('args'))})"]
        if proposed.get("action_id"):
            lines.append(f"  action {proposed['action_id']}")
        if proposed.get("needs"):
            lines.append(f"  needs {proposed['needs']}")
        diff = proposed.get("dry_run")
        if diff is not None:
            lines.append("  dry run:")
            text = json.dumps(diff, indent=2, ensure_ascii=False, default=str)
            lines += ["    " + line for line in text.splitlines()]
    cost = cast(Mapping[str, Any], packet.get("cost", {}))
    if cost:
        lines += [
            "",
            f"Spent: ${float(cost.get('usd', 0)):.4f}, {cost.get('tokens', 0)} tokens, "
            f"{_plural(int(cost.get('tool_calls', 0)), 'tool call')}",
        ]
    lines += ["", "Options:"]
    for opt in cast(Sequence[Mapping[str, str]], packet.get("options", ())):
        lines.append(f"  - {opt['do']}: {opt['command']}")
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _short(value: Any, width: int = 100) -> str:
    if isinstance(value, Mapping):
        mapping = cast(Mapping[str, Any], value)
        text = ", ".join(f"{k}={_value(v)}" for k, v in mapping.items())
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(v: Any) -> str:
    if isinstance(v, Mapping) and "$redacted" in v:
        return f"[redacted {cast(Mapping[str, Any], v)['$redacted']}]"
    return json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v
