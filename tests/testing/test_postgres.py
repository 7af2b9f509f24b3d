"""`warden.testing.postgres`: a server for the tests, a fresh database each, and the
failure drills."""

from __future__ import annotations

import psycopg
import pytest

from warden.testing import postgres
from warden.testing.postgres import (
    ADMIN_URL_ENV,
    PostgresMissing,
    database_url,
    drop_database,
    ensure_server,
    fresh_database,
    set_read_only,
    terminate_sessions,
)


def test_a_fresh_database_is_empty_and_dropped_after() -> None:
    url = fresh_database(prefix="warden_kit")
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT current_database(), count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
        assert row is not None and row[0].startswith("warden_kit_") and row[1] == 0
    finally:
        drop_database(url)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url).close()


def test_the_drills_end_sessions_and_make_a_database_refuse_writes() -> None:
    url = fresh_database(prefix="warden_kit")
    try:
        conn = psycopg.connect(url, autocommit=True)
        assert terminate_sessions(url) == 1
        assert conn.closed or conn.broken or _dead(conn)
        set_read_only(url, True)
        with (
            psycopg.connect(url, autocommit=True) as fresh,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            fresh.execute("CREATE TABLE t (x int)")
        set_read_only(url, False)
        with psycopg.connect(url, autocommit=True) as fresh:
            fresh.execute("CREATE TABLE t (x int)")
    finally:
        drop_database(url)


def _dead(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_without_postgresql_installed_a_test_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ADMIN_URL_ENV, "postgresql://nobody@127.0.0.1:1/postgres")
    monkeypatch.setattr(postgres, "_start_local", lambda: None)
    with pytest.raises(PostgresMissing) as caught:
        ensure_server(skip=False)
    assert "PostgreSQL is not installed" in str(caught.value) and ADMIN_URL_ENV in str(caught.value)
    with pytest.raises(pytest.skip.Exception):
        ensure_server()


def test_a_database_url_keeps_everything_but_the_name() -> None:
    url = "postgresql://warden:pw@db.internal:6543/postgres?sslmode=require"
    assert (
        database_url(url, "other")
        == "postgresql://warden:pw@db.internal:6543/other?sslmode=require"
    )
