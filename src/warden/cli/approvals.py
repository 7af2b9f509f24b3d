"""`warden approvals`: list, show, approve and deny approval requests.

A verdict is checked by `warden.execution.Approvals` against the roles in warden.yaml,
inside the store's transaction. Approving never runs the action: the agent's own process
does, when it resumes (`Gate.resume` / `Gate.wait`), so the tool runs where its
credentials are, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from warden.approvals import ApprovalRequest, ApprovalStatus
from warden.cli.database import actor_option, open_workspace, require_actor, store_options
from warden.cli.main import cli, console
from warden.cli.render import echo_json, json_option, moment, relative
from warden.clock import SystemClock
from warden.execution import Approvals

_STATUS_STYLE = {
    ApprovalStatus.PENDING: "yellow",
    ApprovalStatus.APPROVED: "green",
    ApprovalStatus.USED: "green",
    ApprovalStatus.DENIED: "red",
    ApprovalStatus.EXPIRED: "dim",
}
_OPEN = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
_NO_ROLES: Mapping[str, frozenset[str]] = {}
_RESUMES = (
    "the action runs when its run resumes (`warden runs resume RUN`, or Gate.resume / "
    "Gate.wait in code)"
)


@cli.group()
def approvals() -> None:
    """Review approval requests, and approve or deny them."""


def _status(status: ApprovalStatus) -> str:
    return f"[{_STATUS_STYLE[status]}]{status.value}[/]"


def _needs(request: ApprovalRequest) -> str:
    """What the request still needs: roles not yet covered and approvers still missing."""
    if request.status is not ApprovalStatus.PENDING:
        return "-"
    roles, people = request.missing()
    parts = [", ".join(roles)] if roles else []
    if people > len(roles):
        parts.append(f"{people} more approver{'s' if people != 1 else ''}")
    return "; ".join(parts) or "-"


@approvals.command("list")
@store_options
@click.option("--all", "everything", is_flag=True, help="Every request, not only pending ones.")
@json_option
def list_approvals(project: Path, db: str | None, everything: bool, as_json: bool) -> None:
    """List pending approval requests, newest first (expired ones are marked first)."""
    clock = SystemClock()
    ws = open_workspace(project, db)
    with ws.open() as store:
        roles = ws.project.roles if ws.project is not None else _NO_ROLES
        found = Approvals(store, roles=roles, clock=clock).list(
            None if everything else ApprovalStatus.PENDING
        )
    if as_json:
        echo_json([r.to_dict() for r in found])
        return
    out = console()
    if not found:
        out.print("no approval requests" if everything else "no pending approval requests")
        return
    now = clock.timestamp()
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=max(len(r.id) for r in found))
    for col in ("call", "run", "expires", "needs", *(("status",) if everything else ())):
        table.add_column(col, overflow="fold")
    for r in found:
        table.add_row(
            escape(r.id),
            f"{escape(r.agent)} → {escape(r.tool)}",
            escape(r.run_id),
            relative(r.expires_at, now) if r.status in _OPEN else "-",
            escape(_needs(r)),
            *((_status(r.status),) if everything else ()),
        )
    out.print(table)


@approvals.command("show")
@store_options
@click.argument("approval_id")
@json_option
def show_approval(project: Path, db: str | None, approval_id: str, as_json: bool) -> None:
    """Show one request: the call, its arguments, why it needs approval, who may approve,
    what is still needed, when it expires, and the verdicts so far."""
    clock = SystemClock()
    ws = open_workspace(project, db)
    with ws.open() as store:
        roles = ws.project.roles if ws.project is not None else _NO_ROLES
        request = Approvals(store, roles=roles, clock=clock).get(approval_id)
    if as_json:
        echo_json(request.to_dict())
        return
    now = clock.timestamp()
    out = console()

    def row(label: str, text: str) -> None:
        out.print(f"  [dim]{label:<10}[/] {text}", markup=True)

    out.print(f"[bold]approval {escape(request.id)}[/] {_status(request.status)}", markup=True)
    row("call", f"{escape(request.agent)} → [bold]{escape(request.tool)}[/]")
    row("run", f"{escape(request.run_id)}, action {escape(request.action_id)}")
    args = json.dumps(dict(request.args), indent=2, sort_keys=True, ensure_ascii=False)
    row("arguments", escape(args).replace("\n", "\n" + " " * 13))
    for i, reason in enumerate(request.reasons or ("(no reason recorded)",)):
        row("why" if i == 0 else "", escape(reason))
    people = f"{request.count} approver{'s' if request.count != 1 else ''}"
    row("approvers", f"roles {escape(', '.join(request.roles))}; {people} in all")
    if request.status is ApprovalStatus.PENDING:
        row("needs", escape(_needs(request)))
    row("not by", escape(", ".join(request.requested_by)) + " [dim](requested it)[/]")
    row("requested", moment(request.requested_at))
    row("expires", f"{moment(request.expires_at)} ({relative(request.expires_at, now)})")
    row("binding", escape(request.binding))
    row("policy", escape(request.policy_revision))
    if not request.verdicts:
        row("verdicts", "none yet")
    for i, v in enumerate(request.verdicts):
        verdict = "[green]approve[/]" if v.approve else "[red]deny[/]"
        why = f": {escape(v.reason)}" if v.reason else ""
        row(
            "verdicts" if i == 0 else "",
            f"{verdict} by {escape(v.approver)} as {escape(v.role)}, {moment(v.at)}{why}",
        )
    if request.status is ApprovalStatus.APPROVED:
        out.print(f"approved; {_RESUMES}")


def _decide(
    project: Path,
    db: str | None,
    approval_id: str,
    *,
    approve: bool,
    actor: str | None,
    role: str | None,
    reason: str,
) -> None:
    who = require_actor(actor)
    ws = open_workspace(project, db, need_project=True)
    with ws.open() as store:
        desk = Approvals(store, roles=ws.need_project().roles, clock=SystemClock())
        if approve:
            request = desk.approve(approval_id, approver=who, reason=reason, role=role)
        else:
            request = desk.deny(approval_id, approver=who, reason=reason, role=role)
    mine = next(v for v in reversed(request.verdicts) if v.approver == who)
    out = console()
    call = f"{escape(request.agent)} → {escape(request.tool)} (run {escape(request.run_id)})"
    if not approve:
        out.print(
            f"[red]denied[/] by {escape(who)} as {escape(mine.role)}: {call}; "
            f"action {escape(request.action_id)} is rejected and will not run",
            markup=True,
        )
    elif request.status is ApprovalStatus.APPROVED:
        out.print(
            f"[green]approved[/] by {escape(who)} as {escape(mine.role)}: {call}", markup=True
        )
        out.print(f"approved; {_RESUMES}")
    else:
        out.print(
            f"verdict recorded: {escape(who)} approves as {escape(mine.role)}; "
            f"{escape(request.id)} still needs {escape(_needs(request))}",
            markup=True,
        )


@approvals.command("approve")
@store_options
@click.argument("approval_id")
@actor_option("Who approves (must hold a required role under roles: in warden.yaml).")
@click.option("--role", default=None, help="The role to approve as (default: one still needed).")
@click.option("--reason", default="", help="Why (recorded with the verdict).")
def approve(
    project: Path,
    db: str | None,
    approval_id: str,
    actor: str | None,
    role: str | None,
    reason: str,
) -> None:
    """Approve a request. This records a verdict; it does not run the action.

    The action runs when its agent resumes it, exactly once, and only if the call still
    hashes to the approved binding (same arguments, run and policy revision).
    """
    _decide(project, db, approval_id, approve=True, actor=actor, role=role, reason=reason)


@approvals.command("deny")
@store_options
@click.argument("approval_id")
@actor_option("Who denies (must hold a required role under roles: in warden.yaml).")
@click.option("--role", default=None, help="The role to deny as (default: one still needed).")
@click.option("--reason", required=True, help="Why (recorded with the verdict).")
def deny(
    project: Path,
    db: str | None,
    approval_id: str,
    actor: str | None,
    role: str | None,
    reason: str,
) -> None:
    """Deny a request: its action is rejected and never runs."""
    _decide(project, db, approval_id, approve=False, actor=actor, role=role, reason=reason)
