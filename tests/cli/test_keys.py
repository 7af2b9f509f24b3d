"""`warden keys`: a key is printed once, stored as a hash, audited, revocable, rotatable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import invoke, rows
from warden.clock import SystemClock
from warden.identity import authenticate
from warden.store.sqlite import SQLiteStore


def _db(project: Path) -> Path:
    return project / ".warden" / "warden.db"


def _create(project: Path, *args: str) -> dict[str, Any]:
    code, out = invoke("keys", "create", "-p", str(project), "--as", "alice", "--json", *args)
    assert code == 0, out
    return json.loads(out)


def _listed(project: Path) -> dict[str, dict[str, Any]]:
    code, out = invoke("keys", "list", "-p", str(project), "--json")
    assert code == 0, out
    return {k["id"]: k for k in json.loads(out)}


def _proves(project: Path, token: str) -> str:
    """What the stored record says of `token`: its principal's label, or the refusal code."""
    with SQLiteStore(_db(project)) as store:
        try:
            return authenticate(
                token, store.key(token.split("_")[2]), SystemClock().timestamp()
            ).label
        except Exception as exc:
            return str(getattr(exc, "code", exc))


def test_an_agent_key_is_printed_once_and_stored_as_a_hash(project: Path) -> None:
    code, out = invoke(
        "keys", "create", "-p", str(project), "--agent", "payer", "--tool", "pay", "--as", "alice"
    )
    assert code == 0, out
    token = next(w for w in out.split() if w.startswith("wdn_ag_"))
    assert "for payer (pay); expires never" in out
    assert "the only time it is shown" in out
    stored = rows(_db(project), "SELECT id, kind, name, tools, secret_hash FROM api_keys")
    assert len(stored) == 1
    key_id, kind, name, tools, secret_hash = stored[0]
    assert (kind, name, json.loads(tools)) == ("agent", "payer", ["pay"])
    assert token.split("_")[2] == key_id and token.split("_", 3)[3] not in secret_hash
    dump = b"".join(bytes(b) for (b,) in rows(_db(project), "SELECT body FROM audit"))
    assert token.split("_", 3)[3].encode() not in dump and secret_hash.encode() not in dump
    assert b'"by":"alice"' in dump and b'"key_id":"' + key_id.encode() in dump
    assert _proves(project, token) == "agent:payer"


def test_an_operator_token_carries_its_roles_and_an_expiry(project: Path) -> None:
    made = _create(
        project, "--operator", "fiona", "--role", "approver:finance", "--role", "viewer",
        "--expires", "90d",
    )  # fmt: skip
    key = made["key"]
    assert (key["kind"], key["name"], key["roles"]) == (
        "operator",
        "fiona",
        ["approver:finance", "viewer"],
    )
    assert key["expires_at"] - key["created_at"] == pytest.approx(90 * 86_400)
    assert _proves(project, made["token"]) == "operator:fiona"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agent", "ghost"), "W-AUTH-006 the project declares no agent 'ghost'"),
        (("--agent", "payer", "--tool", "refund"), "W-AUTH-006 agent 'payer' has no tool 'refund'"),
        (("--operator", "bob", "--role", "root"), "W-AUTH-006 unknown role 'root'"),
        (("--operator", "bob"), "W-AUTH-006 an operator token needs at least one role"),
        (("--agent", "payer", "--operator", "bob"), "exactly one of --agent NAME or --operator"),
        ((), "exactly one of --agent NAME or --operator"),
        (("--agent", "payer", "--role", "admin"), "--role goes with --operator"),
        (("--operator", "bob", "--role", "admin", "--tool", "pay"), "--tool goes with --agent"),
        (("--agent", "payer", "--expires", "soon"), "not a duration"),
        (("--agent", "payer", "--expires", "0s"), "must be longer than 0s"),
    ],
    ids=[
        "unknown-agent",
        "tool-the-agent-lacks",
        "unknown-role",
        "operator-without-role",
        "both-kinds",
        "no-kind",
        "agent-with-role",
        "operator-with-tool",
        "bad-expiry",
        "zero-expiry",
    ],
)
def test_a_key_that_cannot_be_made_as_asked_is_refused(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = invoke("keys", "create", "-p", str(project), "--as", "alice", *args)
    assert code == 2, out
    assert message in " ".join(out.split())
    assert not _db(project).exists() or rows(_db(project), "SELECT * FROM api_keys") == []


def test_creating_a_key_needs_to_know_who(project: Path) -> None:
    code, out = invoke("keys", "create", "-p", str(project), "--agent", "payer")
    assert code == 2 and "--as NAME" in out


def test_list_shows_scope_and_status_never_a_hash(project: Path) -> None:
    agent = _create(project, "--agent", "payer")
    operator = _create(project, "--operator", "olga", "--role", "approver:ops")
    invoke("keys", "revoke", agent["id"], "-p", str(project), "--as", "alice")
    code, out = invoke("keys", "list", "-p", str(project))
    assert code == 0, out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "all its tools" in lines[agent["id"]] and lines[agent["id"]].split()[-1] == "revoked"
    assert "approver:ops" in lines[operator["id"]] and lines[operator["id"]].split()[-1] == "active"
    listed = _listed(project)
    assert listed[agent["id"]]["status"] == "revoked"
    assert listed[agent["id"]]["revoked_by"] == "alice"
    assert "secret_hash" not in listed[agent["id"]]
    (hash_,) = rows(_db(project), "SELECT secret_hash FROM api_keys WHERE id = ?", agent["id"])[0]
    assert hash_ not in out


def test_revoke_refuses_the_key_at_once_and_is_audited(project: Path) -> None:
    made = _create(project, "--agent", "payer")
    code, out = invoke("keys", "revoke", made["id"], "-p", str(project), "--as", "bob")
    assert code == 0, out
    assert f"revoked {made['id']} (agent payer) by bob" in out
    assert _proves(project, made["token"]) == "W-AUTH-004"
    bodies = rows(_db(project), "SELECT body FROM audit WHERE kind = 'key.revoke'")
    assert len(bodies) == 1 and b'"by":"bob"' in bytes(bodies[0][0])


def test_revoking_an_unknown_key_says_so(project: Path) -> None:
    _create(project, "--agent", "payer")
    code, out = invoke("keys", "revoke", "nosuchkey123", "-p", str(project), "--as", "bob")
    assert code == 2 and "W-AUTH-002" in out


def test_rotate_gives_a_new_key_with_the_same_scope_and_a_grace_for_the_old(
    project: Path,
) -> None:
    old = _create(project, "--agent", "payer", "--tool", "pay", "--expires", "30d")
    code, out = invoke(
        "keys", "rotate", old["id"], "-p", str(project), "--grace", "1h", "--as", "alice", "--json"
    )
    assert code == 0, out
    new = json.loads(out)
    key = new["key"]
    assert (key["kind"], key["name"], key["tools"], key["replaces"]) == (
        "agent",
        "payer",
        ["pay"],
        old["id"],
    )
    assert key["expires_at"] - key["created_at"] == pytest.approx(30 * 86_400)
    listed = _listed(project)
    assert listed[old["id"]]["expires_at"] == pytest.approx(key["created_at"] + 3600, abs=5)
    assert _proves(project, old["token"]) == "agent:payer"  # within its grace
    assert _proves(project, new["token"]) == "agent:payer"


def test_rotate_without_grace_retires_the_old_key_now(project: Path) -> None:
    old = _create(project, "--operator", "ada", "--role", "admin")
    code, out = invoke(
        "keys", "rotate", old["id"], "-p", str(project), "--grace", "0s", "--as", "a"
    )
    assert code == 0, out
    assert f"the old key {old['id']} works until" in out
    assert _proves(project, old["token"]) == "W-AUTH-003"
    again = invoke("keys", "rotate", old["id"], "-p", str(project), "--as", "a")
    assert again[0] == 2 and "only an active key rotates" in again[1]


def test_keys_work_on_the_database_named_by_db(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    code, out = invoke(
        "keys", "create", "--db", str(db), "--operator", "vera", "--role", "viewer", "--as", "a"
    )
    assert code == 0, out
    code, out = invoke("keys", "list", "--db", str(db))
    assert code == 0 and "vera" in out


def test_list_refuses_a_database_that_does_not_exist(project: Path) -> None:
    code, out = invoke("keys", "list", "-p", str(project))
    assert code == 2 and "W-STO-001" in out
