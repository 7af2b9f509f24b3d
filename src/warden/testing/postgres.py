"""PostgreSQL for tests and benchmarks: a running server, and a fresh database each.

    url = fresh_database()          # CREATE DATABASE warden_test_<random>
    try:
        with PostgresStore(url) as store:
            ...
    finally:
        drop_database(url)

The server is the one `WARDEN_TEST_POSTGRES_URL` names (default
``postgresql://postgres@127.0.0.1:5432/postgres``; its user must be allowed to create
databases). `ensure_server` starts a local cluster when that server does not answer, and
skips the test (or, outside pytest, raises `PostgresMissing`) only when PostgreSQL is not
installed at all. Tests running in parallel (pytest-xdist) each make their own database,
so they never see each other's rows.

`terminate_sessions` and `set_read_only` are the failure drills: they end every session
on a database, or make it refuse writes, as a restart or a failover to a standby would.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

__all__ = [
    "ADMIN_URL_ENV",
    "PostgresMissing",
    "admin_url",
    "database_url",
    "drop_database",
    "ensure_server",
    "fresh_database",
    "set_read_only",
    "terminate_sessions",
]

ADMIN_URL_ENV = "WARDEN_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresMissing(RuntimeError):
    """PostgreSQL is not installed here: tests that need it cannot run."""


def admin_url(environ: Mapping[str, str] | None = None) -> str:
    """The server's maintenance database, from `ADMIN_URL_ENV` or the default."""
    env = os.environ if environ is None else environ
    return env.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def database_url(url: str, name: str) -> str:
    """`url` with its database name replaced by `name`."""
    parts = urlsplit(url)
    return parts._replace(path=f"/{name}").geturl()


def _name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise ValueError("the URL names no database")
    return name


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _start_local() -> list[str] | None:
    """Start the local cluster(s); the command used, or None when nothing is installed."""
    if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in sorted(p.name for p in Path("/etc/postgresql").iterdir()):
            for cluster in sorted(p.name for p in (Path("/etc/postgresql") / version).iterdir()):
                command = [
                    "pg_ctlcluster",
                    "--skip-systemctl-redirect",
                    version,
                    cluster,
                    "start",
                ]
                subprocess.run(command, capture_output=True, check=False, timeout=60)  # noqa: S603
                return command
    data = os.environ.get("PGDATA")
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and data:
        command = [pg_ctl, "-D", data, "-w", "start"]
        subprocess.run(command, capture_output=True, check=False, timeout=60)  # noqa: S603
        return command
    if pg_ctl or shutil.which("postgres") or shutil.which("psql"):
        return []  # installed, but this helper does not know how to start it
    return None


def ensure_server(*, skip: bool = True, timeout_s: float = 30.0) -> str:
    """The admin URL of a server that answers; starts the local one if it does not.

    When PostgreSQL is not installed, `pytest.skip` the caller with a clear message (or
    raise `PostgresMissing` when `skip` is False). A server that is installed but cannot
    be started is a `RuntimeError`: a broken setup, not a reason to skip.
    """
    url = admin_url()
    if _answers(url):
        return url
    started = _start_local()
    if started is None:
        message = (
            f"PostgreSQL is not installed (no server answers at {_name(url)!r} on "
            f"{urlsplit(url).hostname}, and no pg_ctlcluster, pg_ctl or postgres is on PATH); "
            f"install it or set {ADMIN_URL_ENV}"
        )
        if skip:
            import pytest

            pytest.skip(message)
        raise PostgresMissing(message)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _answers(url):
            return url
        time.sleep(0.2)
    how = " ".join(started) if started else "nothing (set PGDATA for pg_ctl)"
    raise RuntimeError(
        f"PostgreSQL is installed but does not answer at {urlsplit(url).hostname}; "
        f"tried to start it with: {how}"
    )


def fresh_database(prefix: str = "warden_test", *, skip: bool = True) -> str:
    """Create an empty database with a random name; its URL."""
    admin = ensure_server(skip=skip)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin, name)


def drop_database(url: str) -> None:
    """Drop the database `url` names, ending its sessions first."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_name(url)))
        )


def terminate_sessions(url: str, *, timeout_s: float = 10.0) -> int:
    """End every session on the database `url` names (as a server restart would), and
    wait until they are gone; how many were ended."""
    name = _name(url)
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
            if not left or not left[0]:
                break
            time.sleep(0.02)
    return int(row[0]) if row else 0


def set_read_only(url: str, read_only: bool) -> None:
    """Make the database refuse writes from new sessions (as a standby does), or accept
    them again; end its sessions so that every client reconnects and notices."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(_name(url)), sql.Literal("on" if read_only else "off")
            )
        )
    terminate_sessions(url)
