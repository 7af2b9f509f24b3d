"""Databases written before Warden kept decision inputs migrate, and their actions are
reported as not replayable (never a crash), on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import PAYMENTS, invoke
from warden.replay import NOT_RECORDED, Replayer, ReplayStatus, replay_run
from warden.store import migrations, pg_schema
from warden.store.protocol import DurableStore
from warden.store.sqlite import SQLiteStore

_OLD_ACTION = (
    "INSERT INTO actions (id, run_id, agent, tool, step, state, outcome, code, reasons, args, "
    "idem_key, request_hash, approval_id, owner, decided_at) VALUES ('act_old', 'run_old', "
    "'payer', 'pay', 0, 'succeeded', 'allow', NULL, '[\"ok\"]', '{\"amount_usd\":5.0}', "
    "'ik_old', 'h', NULL, 'host:1:1', 1000.0)"
)
_OLD_RUN = (
    "INSERT INTO runs (id, agent, status, policy_revision, started_at) "
    "VALUES ('run_old', 'payer', 'succeeded', 'sha256:old', 1000.0)"
)


@pytest.fixture(autouse=True)
def forget_project_modules(tmp_path: Path) -> Iterator[None]:
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
    for name, module in saved_modules.items():
        sys.modules.setdefault(name, module)


def _assert_not_replayable(store: DurableStore) -> None:
    (old,) = store.recorded_decisions(run_id="run_old")
    assert old.inputs is None and old.stage is None and old.rule_ids == ()
    report = replay_run(Replayer(store, tools=[], agents=[]), "run_old")
    (r,) = report.decisions
    assert r.status is ReplayStatus.NOT_REPLAYABLE and r.notes == (NOT_RECORDED,)


def test_an_old_sqlite_database_migrates_and_says_what_it_cannot_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "payments"
    shutil.copytree(PAYMENTS, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    db = root / ".warden" / "warden.db"
    with monkeypatch.context() as m:  # a database as Warden wrote it before schema 4
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
        SQLiteStore(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        conn.execute(_OLD_RUN)
        conn.execute(_OLD_ACTION)
    with SQLiteStore(db) as store:
        _assert_not_replayable(store)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    code, out = invoke("replay", "run_old", "-p", str(root))
    assert code == 0, out
    assert (
        "0 same, 0 changed, 1 not replayable (recorded before Warden kept decision inputs)" in out
    )


def test_an_old_postgresql_database_migrates_and_says_what_it_cannot_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    psycopg = pytest.importorskip("psycopg")
    from warden.store.postgres import PostgresStore
    from warden.testing.postgres import drop_database, fresh_database

    url = fresh_database(prefix="warden_replay")
    try:
        with monkeypatch.context() as m:  # a database as Warden wrote it before schema 2
            m.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:1])
            PostgresStore(url).close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_OLD_RUN)
            conn.execute(_OLD_ACTION)
        with PostgresStore(url) as store:
            _assert_not_replayable(store)
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT version FROM warden_schema ORDER BY 1").fetchall()
        assert [v for (v,) in found] == [1, 2]
    finally:
        drop_database(url)
