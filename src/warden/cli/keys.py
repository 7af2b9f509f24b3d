"""`warden keys`: the agent keys and operator tokens `warden serve` accepts.

A key is printed once, when it is created; the database keeps only its hash. Creating,
revoking and rotating are audited with who did it (``--as``). A server reads a key's
record at most a second old, so a revocation takes effect on every replica within that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.database import actor_option, open_workspace, require_actor, store_options
from warden.cli.main import cli, console
from warden.cli.render import echo_json, json_option, moment
from warden.clock import SystemClock
from warden.durations import parse_duration
from warden.errors import AuthError
from warden.identity import ApiKey, KeyKind, new_key
from warden.project import Project

_STATUS_STYLE = {"active": "green", "expired": "dim", "revoked": "red"}
_ONCE = (
    "this is the only time it is shown: Warden stores only its hash. Keep it in a secret "
    "store; `warden keys rotate` replaces it."
)


@cli.group()
def keys() -> None:
    """Create, list, revoke and rotate the keys `warden serve` accepts."""


def _seconds(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0s", param_hint=option)
    return seconds


def _check_agent(project: Project, agent: str, tools: tuple[str, ...]) -> None:
    """W-AUTH-006 unless the project declares `agent` and it has every tool in `tools`."""
    manifest = project.agent(agent)
    if manifest is None:
        known = ", ".join(a.name for a in project.agents)
        raise AuthError("W-AUTH-006", f"the project declares no agent {agent!r} (known: {known})")
    missing = [t for t in tools if t not in manifest.allowed_tools]
    if missing:
        allowed = ", ".join(sorted(manifest.allowed_tools))
        raise AuthError(
            "W-AUTH-006",
            f"agent {agent!r} has no tool {missing[0]!r} (its allowed_tools: {allowed})",
        )


def _scope(key: ApiKey) -> str:
    if key.kind is KeyKind.OPERATOR:
        return ", ".join(sorted(key.roles))
    return ", ".join(sorted(key.tools)) if key.tools is not None else "all its tools"


def key_dict(key: ApiKey, now: float) -> dict[str, Any]:
    """A key as `warden keys list --json` prints it: never its hash."""
    return {
        "id": key.id,
        "kind": key.kind.value,
        "name": key.name,
        "tools": sorted(key.tools) if key.tools is not None else None,
        "roles": sorted(key.roles),
        "created_at": key.created_at,
        "created_by": key.created_by,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
        "replaces": key.replaces,
        "status": key.status(now),
    }


def _print_created(key: ApiKey, token: str, *, as_json: bool, retired: str | None = None) -> None:
    if as_json:
        echo_json({"id": key.id, "token": token, "key": key_dict(key, key.created_at)})
        return
    out = console()
    what = "agent key" if key.kind is KeyKind.AGENT else "operator token"
    expires = moment(key.expires_at) if key.expires_at is not None else "never"
    out.print(
        f"[green]created {what} {escape(key.id)}[/] for {escape(key.name)} "
        f"({escape(_scope(key))}); expires {expires}",
        markup=True,
    )
    out.print(f"  {token}", markup=False, soft_wrap=True)
    out.print(f"  {_ONCE}", markup=False)
    if retired is not None:
        out.print(f"  {retired}", markup=False)


@keys.command("create")
@store_options
@click.option("--agent", default=None, help="An agent key for this agent (manifest name).")
@click.option(
    "--tool",
    "tools",
    multiple=True,
    help="With --agent: only this tool (repeat for more; default: all the agent's tools).",
)
@click.option("--operator", default=None, help="An operator token for this person.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="With --operator: viewer, admin or approver:<approval role> (repeat for more).",
)
@click.option("--expires", default=None, help="Expire after this long (90d, 12h ...).")
@actor_option("Who creates it (recorded in the audit log).")
@json_option
def create(
    project: Path,
    db: str | None,
    agent: str | None,
    tools: tuple[str, ...],
    operator: str | None,
    roles: tuple[str, ...],
    expires: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Create an agent key or an operator token, and print it once.

    An agent key proposes calls for one agent the project declares (POST /v1/decide,
    /v1/execute, outcomes), optionally for some of its tools only. An operator token
    carries roles: viewer reads, approver:<role> also approves or denies requests
    needing that role, admin does everything (kill switch, policy reload).

    \b
    Examples:
      warden keys create --agent refund_autopilot --expires 90d --as alice
      warden keys create --operator bob --role approver:support_manager --as alice
    """
    if (agent is None) == (operator is None):
        raise click.UsageError("name exactly one of --agent NAME or --operator NAME")
    if agent is not None and roles:
        raise click.UsageError("--role goes with --operator; scope an agent key with --tool")
    if operator is not None and tools:
        raise click.UsageError("--tool goes with --agent; give an operator --role")
    who = require_actor(actor)
    lifetime = _seconds(expires, "--expires")
    ws = open_workspace(project, db, need_project=agent is not None)
    if agent is not None:
        _check_agent(ws.need_project(), agent, tools)
    now = SystemClock().timestamp()
    record, token = new_key(
        KeyKind.AGENT if agent is not None else KeyKind.OPERATOR,
        agent if agent is not None else str(operator),
        created_at=now,
        created_by=who,
        tools=tools or None,
        roles=roles,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    with ws.open(create=True) as store:
        store.add_key(record)
    _print_created(record, token, as_json=as_json)


@keys.command("list")
@store_options
@json_option
def list_keys(project: Path, db: str | None, as_json: bool) -> None:
    """List every key, newest first, with its scope or roles and its status (active,
    expired, revoked). Hashes are never shown."""
    now = SystemClock().timestamp()
    with open_workspace(project, db).open() as store:
        found = list(store.keys())
    if as_json:
        echo_json([key_dict(k, now) for k in found])
        return
    out = console()
    if not found:
        out.print("no keys; create one with `warden keys create`", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "kind", "name", "scope", "created", "expires", "status"):
        table.add_column(col, no_wrap=col != "scope", overflow="fold")
    for k in found:
        status = k.status(now)
        table.add_row(
            escape(k.id),
            k.kind.value,
            escape(k.name),
            escape(_scope(k)),
            moment(k.created_at),
            moment(k.expires_at) if k.expires_at is not None else "never",
            f"[{_STATUS_STYLE[status]}]{status}[/]",
        )
    out.print(table)


@keys.command("revoke")
@store_options
@click.argument("key_id")
@actor_option("Who revokes it (recorded in the audit log).")
def revoke(project: Path, db: str | None, key_id: str, actor: str | None) -> None:
    """Revoke a key at once: servers refuse it within a second (W-AUTH-004)."""
    who = require_actor(actor)
    with open_workspace(project, db).open() as store:
        key = store.revoke_key(key_id, at=SystemClock().timestamp(), by=who)
    console().print(
        f"[red]revoked[/] {escape(key.id)} ({key.kind.value} {escape(key.name)}) by {escape(who)}",
        markup=True,
    )


@keys.command("rotate")
@store_options
@click.argument("key_id")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="How long the old key keeps working (0s: not at all).",
)
@click.option(
    "--expires", default=None, help="The new key's lifetime (default: the old key's lifetime)."
)
@actor_option("Who rotates it (recorded in the audit log).")
@json_option
def rotate(
    project: Path,
    db: str | None,
    key_id: str,
    grace: str,
    expires: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Replace a key by a new one with the same scope; the old one expires after the
    grace period, so callers can switch without an outage."""
    who = require_actor(actor)
    try:
        grace_s = parse_duration(grace)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from None
    lifetime = _seconds(expires, "--expires")
    now = SystemClock().timestamp()
    with open_workspace(project, db).open() as store:
        old = store.key(key_id)
        if old is None:
            raise AuthError("W-AUTH-002", f"no key {key_id!r}")
        status = old.status(now)
        if status != "active":
            raise AuthError("W-AUTH-006", f"key {key_id} is {status}; only an active key rotates")
        if lifetime is None and old.expires_at is not None:
            lifetime = old.expires_at - old.created_at
        record, token = new_key(
            old.kind,
            old.name,
            created_at=now,
            created_by=who,
            tools=old.tools,
            roles=old.roles,
            expires_at=now + lifetime if lifetime is not None else None,
            replaces=old.id,
        )
        retire_at = now + grace_s
        store.add_key(record, retire_at=retire_at)
    _print_created(
        record,
        token,
        as_json=as_json,
        retired=f"the old key {old.id} works until {moment(retire_at)}, then expires",
    )
