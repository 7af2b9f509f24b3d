"""The `warden` commands on a PostgreSQL database, named by --db or WARDEN_DATABASE_URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import warden
from tests.cli.conftest import invoke, pay
from warden.store.postgres import PostgresStore
from warden.testing.postgres import drop_database, fresh_database


@dataclass(frozen=True)
class Shared:
    """A project copy whose agent wrote to a PostgreSQL database."""

    root: Path
    url: str
    approval_id: str


@pytest.fixture
def shared(project: Path) -> Iterator[Shared]:
    url = fresh_database(prefix="warden_cli")
    try:
        with PostgresStore(url) as store:
            gate = warden.load_project(project).gate(store=store)
            try:
                _, waiting = gate.execute(pay(50, "run_1")), gate.execute(pay(500, "run_1"))
            finally:
                gate.executor.close()
        assert waiting.approval_id is not None
        yield Shared(root=project, url=url, approval_id=waiting.approval_id)
    finally:
        drop_database(url)


def test_runs_and_approvals_read_from_postgresql(shared: Shared) -> None:
    code, out = invoke("runs", "list", "-p", str(shared.root), "--db", shared.url)
    assert code == 0 and "run_1" in out, out
    env = {"WARDEN_DATABASE_URL": shared.url}
    code, out = invoke("approvals", "list", "--json", "-p", str(shared.root), env=env)
    assert code == 0, out
    assert [r["id"] for r in json.loads(out)] == [shared.approval_id]
    code, out = invoke(
        "approvals", "approve", shared.approval_id, "--as", "fiona", "-p", str(shared.root), env=env
    )
    assert code == 0 and "approved" in out, out
    code, out = invoke("approvals", "list", "-p", str(shared.root), env=env)
    assert code == 0 and shared.approval_id not in out


def test_kill_engages_a_switch_agents_on_postgresql_obey(shared: Shared) -> None:
    args = ("-p", str(shared.root), "--db", shared.url)
    code, out = invoke("kill", "--agent", "payer", "--reason", "drill", "--as", "olga", *args)
    assert code == 0, out
    code, out = invoke("kill", "--list", *args)
    assert code == 0 and "agent:payer" in out
    with PostgresStore(shared.url) as store:
        gate = warden.load_project(shared.root).gate(store=store)
        assert gate.decide(pay(5, "run_9")).code == "W-KIL-001"
    code, out = invoke("unkill", "--agent", "payer", "--as", "olga", *args)
    assert code == 0, out


def test_the_log_verifies_and_exports_from_postgresql(shared: Shared, tmp_path: Path) -> None:
    args = ("-p", str(shared.root), "--db", shared.url)
    code, out = invoke("audit", "verify", *args)
    assert code == 0 and "ok" in out and "s3cret" not in out, out
    export = tmp_path / "log.jsonl"
    code, out = invoke("audit", "export", "--out", str(export), *args)
    assert code == 0, out
    code, out = invoke("audit", "verify", "--file", str(export), "--allow-gaps")
    assert code == 0, out
    code, out = invoke("audit", "purge", *args)
    assert code == 0 and "postgresql://postgres@" in out, out


def test_reading_commands_refuse_a_database_without_warden_tables(project: Path) -> None:
    url = fresh_database(prefix="warden_cli")
    try:
        code, out = invoke("runs", "list", "-p", str(project), "--db", url)
        assert code == 2 and "W-STO-001" in out and "no Warden schema" in out, out
    finally:
        drop_database(url)
