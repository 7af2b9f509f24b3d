"""A copy of the payments project per test, with a database some calls have gone through.

The project is copied to tmp_path so its database (``.warden/warden.db``) lands there.
The calls are executed in this process with the real clock, as an agent would, before
the `warden` commands under test read and change the same file.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import warden
from warden.cli import cli
from warden.store.sqlite import SQLiteStore

PAYMENTS = Path(__file__).resolve().parents[1] / "fixtures" / "payments"


@dataclass(frozen=True)
class Seeded:
    """A project copy and what was recorded in its database."""

    root: Path
    db: Path
    run_id: str
    approval_id: str
    """Pay 500 in run_1: needs one approval by finance; frank asked for the run."""
    action_id: str
    """The action waiting for `approval_id`."""
    two_person_id: str
    """Pay 5000 in run_2: needs finance and ops, two people."""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No WARDEN_* variable from the developer's shell, and no module of a project copy
    left behind for the next test (loading a project imports its tool modules)."""
    for name in ("WARDEN_USER", "WARDEN_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
    for name, module in saved_modules.items():
        sys.modules.setdefault(name, module)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `warden ARGS`; the exit code and everything it printed (stdout and stderr)."""
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(db: Path, project: Path, *calls: warden.ToolCall) -> list[Any]:
    """Run calls through a durable gate on `db`, as an agent's process would."""
    proj = warden.load_project(project)
    with SQLiteStore(db) as store:
        gate = proj.gate(store=store)
        try:
            return [gate.execute(c) for c in calls]
        finally:
            gate.executor.close()


def resume(db: Path, project: Path, action_id: str) -> Any:
    proj = warden.load_project(project)
    with SQLiteStore(db) as store:
        gate = proj.gate(store=store)
        try:
            return gate.resume(action_id)
        finally:
            gate.executor.close()


def pay(amount: float, run: str, **more: Any) -> warden.ToolCall:
    args = {"payee": "acme", "amount_usd": amount}
    return warden.ToolCall(agent="payer", tool="pay", run_id=run, args=args, **more)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the payments project, with no database yet."""
    root = tmp_path / "payments"
    shutil.copytree(PAYMENTS, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    return root


@pytest.fixture
def seeded(project: Path) -> Seeded:
    db = project / ".warden" / "warden.db"
    _, waiting, two = execute(
        db,
        project,
        pay(50, "run_1"),
        pay(500, "run_1", on_behalf_of="frank"),
        pay(5000, "run_2"),
    )
    return Seeded(
        root=project,
        db=db,
        run_id="run_1",
        approval_id=waiting.approval_id,
        action_id=waiting.action_id,
        two_person_id=two.approval_id,
    )
