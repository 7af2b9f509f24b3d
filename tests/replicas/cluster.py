"""A private PostgreSQL cluster for tests that stop and start the database.

The shared server on 127.0.0.1:5432 serves every other test, so a test that takes the
database away under load gets a cluster of its own: ``initdb`` into a temporary folder,
``pg_ctl`` on a free port, run as the ``postgres`` user when the tests run as root
(PostgreSQL refuses to run as root). The folder must then be one the ``postgres`` user
can reach: a `tempfile.mkdtemp` folder, not pytest's ``tmp_path`` (whose parents only
root may enter).

    cluster = PrivateCluster(Path(tempfile.mkdtemp(prefix="warden-pg-")))
    cluster.start()
    url = cluster.create_database("warden_x")   # a database of its own on the cluster
    cluster.set_read_only(url, True)            # as a failover to a standby would
    cluster.stop()                              # as a crash would: immediate
    cluster.close()                             # stopped, and its folder removed
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from warden.testing.postgres import database_url

__all__ = ["PrivateCluster", "free_port", "postgres_bin"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), reverse=True):
            if (version / "bin" / "initdb").is_file():
                return version / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivateCluster:
    """One throwaway PostgreSQL cluster; `start` and `stop` it as often as a test likes."""

    def __init__(self, folder: Path) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (no initdb)")
        self.bin = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        folder.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Stop at once, without a checkpoint (as a crash or a pulled plug would)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @property
    def running(self) -> bool:
        """Whether the cluster is up (``pg_ctl status``)."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- databases on it, and the drills ------------------------------------------------

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def create_database(self, name: str) -> str:
        """Create the database `name`; its URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return database_url(self.url, name)

    def drop_database(self, url: str) -> None:
        """Drop the database `url` names, ending its sessions first."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(_name(url))
                )
            )

    def terminate_sessions(self, url: str) -> int:
        """End every session on the database `url` names (as a restart would); how many."""
        with self._admin() as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (_name(url),),
            ).fetchone()
        return int(str(row[0])) if row else 0

    def set_read_only(self, url: str, read_only: bool) -> None:
        """Make the database refuse writes in new sessions (as a standby does), or take
        them again; then end its sessions, so that every client reconnects and notices."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                    sql.Identifier(_name(url)), sql.Literal("on" if read_only else "off")
                )
            )
        self.terminate_sessions(url)


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1].partition("?")[0]
