"""Where the `warden` commands find the database, in one place for every command.

The database is, in order of precedence:

1. ``--db PATH_OR_URL``;
2. the environment variable ``WARDEN_DATABASE_URL``;
3. ``store:`` in the project's warden.yaml (default ``.warden/warden.db`` in the project
   folder).

A value is a SQLite file (``sqlite:///relative/path``, ``sqlite:////absolute/path`` or a
plain path; relative paths are relative to the current folder) or a PostgreSQL database
(``postgresql://user@host:port/name``, also ``postgres://``), which many Warden
processes may share. A URL is never printed with its password.

Commands that only read (runs, approvals, audit) refuse a database that does not exist
rather than create an empty one (a SQLite file that is not there, a PostgreSQL database
without Warden's tables), so a wrong folder or a typo never reads as "no runs";
`warden kill` creates it, because a switch must be in place before agents start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from warden.cli.main import project_option
from warden.errors import StoreError
from warden.project import Project, load_project
from warden.store.open import database_target, display_url, open_either
from warden.store.sqlite import DEFAULT_PATH

if TYPE_CHECKING:
    from warden.store.postgres import PostgresStore
    from warden.store.sqlite import SQLiteStore

__all__ = [
    "DATABASE_URL_ENV",
    "Database",
    "Workspace",
    "actor_option",
    "database_from_url",
    "open_workspace",
    "require_actor",
    "store_options",
]

DATABASE_URL_ENV = "WARDEN_DATABASE_URL"

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True, slots=True)
class Database:
    """The database a command works on, and where that choice came from."""

    path: Path | None = None
    """The SQLite file; None for PostgreSQL."""
    url: str | None = None
    """The PostgreSQL URL (password included: never print it); None for SQLite."""
    source: str
    """What named it: ``--db``, ``WARDEN_DATABASE_URL`` or ``warden.yaml store:``."""

    @property
    def is_postgres(self) -> bool:
        """Whether it is a PostgreSQL database (shared by replicas; its audit log's
        global numbers may skip, see `warden.audit.verify.verify_rows`)."""
        return self.url is not None

    @property
    def display(self) -> str:
        """The file's path, or the URL without its password: for messages."""
        return display_url(self.url) if self.url is not None else str(self.path)

    @property
    def folder(self) -> Path:
        """Where files that go with the database live by default (the audit signing key,
        checkpoints): the SQLite file's folder; the current folder for PostgreSQL."""
        return self.path.parent if self.path is not None else Path()

    @classmethod
    def named(cls, value: Path | str, source: str) -> Database:
        """The database a ``--db`` value or a URL names."""
        target = value if isinstance(value, Path) else database_target(value, name=source)
        if isinstance(target, Path):
            return cls(path=target, source=source)
        return cls(url=target, source=source)


def database_from_url(url: str) -> Path | str:
    """The SQLite file (a `Path`) or PostgreSQL URL (a `str`) a ``WARDEN_DATABASE_URL``
    value names; see `warden.store.open.database_target`."""
    return database_target(url, name=DATABASE_URL_ENV)


@dataclass(frozen=True, kw_only=True, slots=True)
class Workspace:
    """The project a command was pointed at (when it needed one) and its database."""

    project: Project | None
    """The loaded project; None when ``--db`` or the environment named the database and
    the command needs nothing else from warden.yaml."""
    database: Database

    def open(self, *, create: bool = False) -> SQLiteStore | PostgresStore:
        """Open the store with the project's retention settings; close it when done.

        Without `create`, a missing SQLite file (or a PostgreSQL database without Warden's
        tables) is W-STO-001 naming the database and its source.
        """
        db = self.database
        if not create and db.path is not None and not db.path.is_file():
            raise StoreError(
                "W-STO-001",
                f"no Warden database at {db.path} (from {db.source})",
                hint=(
                    "Nothing has been recorded there yet. Point --db or "
                    f"{DATABASE_URL_ENV} at the database your agents write, or run from "
                    "the project folder (-p)."
                ),
            )
        options: dict[str, Any] = {}
        if db.url is not None:
            options["create"] = create
        p = self.project
        if p is not None:
            options |= {
                "idempotency_retention_s": p.idempotency_retention_s,
                "retain_days": p.retain_days,
            }
        target = db.url if db.url is not None else db.path
        assert target is not None
        return open_either(target, **options)

    def need_project(self) -> Project:
        """The project; callers only ask after `open_workspace(..., need_project=True)`."""
        if self.project is None:  # pragma: no cover - a bug in a command
            raise click.UsageError("this command needs a project (-p)")
        return self.project


def open_workspace(
    project: Path,
    db: Path | str | None,
    *,
    need_project: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Workspace:
    """Resolve the database for a command (see the module docstring for the order).

    The project is loaded when the command needs it (roles, the gate, retention), or
    when neither ``--db`` nor the environment names the database.
    """
    env = os.environ if environ is None else environ
    database: Database | None = None
    if db is not None:
        database = Database.named(db, "--db")
    elif env.get(DATABASE_URL_ENV) is not None:
        database = Database.named(env[DATABASE_URL_ENV], DATABASE_URL_ENV)
    loaded = load_project(project) if need_project or database is None else None
    if database is None:
        assert loaded is not None
        path = loaded.store_path or loaded.root / DEFAULT_PATH
        database = Database(path=path, source="warden.yaml store:")
    return Workspace(project=loaded, database=database)


_db_option = click.option(
    "--db",
    metavar="PATH_OR_URL",
    default=None,
    help=f"The database: a SQLite file or a postgresql:// URL (default: {DATABASE_URL_ENV}, "
    "else warden.yaml's store:).",
)


def store_options(fn: _F) -> _F:
    """``--project`` and ``--db``, for every command that reads or writes the database."""
    return project_option(_db_option(fn))


def actor_option(help: str) -> Callable[[_F], _F]:
    """``--as WHO``, defaulting to ``WARDEN_USER``; see `require_actor`."""
    return click.option(
        "--as", "actor", envvar="WARDEN_USER", show_envvar=True, default=None, help=help
    )


def require_actor(actor: str | None) -> str:
    """Who is acting; a usage error when nobody said (no anonymous flips or verdicts)."""
    if actor is None or not actor.strip():
        raise click.UsageError(
            "say who you are with --as NAME (or set WARDEN_USER): Warden records a name "
            "with every switch and every verdict, and acts for nobody anonymous"
        )
    return actor.strip()
