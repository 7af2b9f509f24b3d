"""Where the `warden` commands find the database, in one place for every command.

The SQLite file is, in order of precedence:

1. ``--db PATH``;
2. the environment variable ``WARDEN_DATABASE_URL``: ``sqlite:///relative/path``,
   ``sqlite:////absolute/path`` or a plain path (relative paths are relative to the
   current folder);
3. ``store:`` in the project's warden.yaml (default ``.warden/warden.db`` in the project
   folder).

A PostgreSQL URL is refused with W-STO-001: PostgreSQL support arrives with the server.
Commands that only read (runs, approvals, audit) refuse a database that does not exist
rather than create an empty one, so a wrong folder or a typo in a path never reads as "no
runs"; `warden kill` creates it, because a switch must be in place before agents start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from warden.cli.main import project_option
from warden.errors import StoreError
from warden.project import Project, load_project
from warden.store.sqlite import DEFAULT_PATH, SQLiteStore

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
    """The SQLite file a command works on, and where that choice came from."""

    path: Path
    """The file."""
    source: str
    """What named it: ``--db``, ``WARDEN_DATABASE_URL`` or ``warden.yaml store:``."""


def database_from_url(url: str) -> Path:
    """The SQLite file a ``WARDEN_DATABASE_URL`` value names.

    ``sqlite:///rel/path`` is relative, ``sqlite:////abs/path`` absolute (as in
    SQLAlchemy); a value without ``://`` is a plain path. The URL itself never appears in
    an error message: a database URL may hold a password.
    """
    text = url.strip()
    if not text:
        raise StoreError("W-STO-001", f"{DATABASE_URL_ENV} is set but empty")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Path(text)
    scheme = scheme.lower()
    if scheme.startswith("postgres"):
        raise StoreError(
            "W-STO-001",
            f"{DATABASE_URL_ENV} names a PostgreSQL database; PostgreSQL support arrives "
            "with the Warden server",
            hint=(
                f"Use SQLite for now: unset {DATABASE_URL_ENV} to use warden.yaml's `store:`, "
                f"or set it to sqlite:///.warden/warden.db."
            ),
        )
    if scheme != "sqlite":
        raise StoreError(
            "W-STO-001",
            f"{DATABASE_URL_ENV} has the scheme {scheme!r}; the warden command reads SQLite",
            hint=f"Set {DATABASE_URL_ENV} to sqlite:///PATH or to a plain file path.",
        )
    path = rest.partition("?")[0]
    if not path.startswith("/") or path in ("/", "/:memory:"):
        raise StoreError(
            "W-STO-001",
            f"{DATABASE_URL_ENV} must name a database file",
            hint="Write sqlite:///relative/path.db or sqlite:////absolute/path.db.",
        )
    return Path(path[1:])


@dataclass(frozen=True, kw_only=True, slots=True)
class Workspace:
    """The project a command was pointed at (when it needed one) and its database."""

    project: Project | None
    """The loaded project; None when ``--db`` or the environment named the database and
    the command needs nothing else from warden.yaml."""
    database: Database

    def open(self, *, create: bool = False) -> SQLiteStore:
        """Open the store with the project's retention settings; close it when done.

        Without `create`, a missing file is W-STO-001 naming the path and its source.
        """
        path = self.database.path
        if not create and not path.is_file():
            raise StoreError(
                "W-STO-001",
                f"no Warden database at {path} (from {self.database.source})",
                hint=(
                    "Nothing has been recorded there yet. Point --db or "
                    f"{DATABASE_URL_ENV} at the database your agents write, or run from "
                    "the project folder (-p)."
                ),
            )
        p = self.project
        if p is None:
            return SQLiteStore(path)
        return SQLiteStore(
            path, idempotency_retention_s=p.idempotency_retention_s, retain_days=p.retain_days
        )

    def need_project(self) -> Project:
        """The project; callers only ask after `open_workspace(..., need_project=True)`."""
        if self.project is None:  # pragma: no cover - a bug in a command
            raise click.UsageError("this command needs a project (-p)")
        return self.project


def open_workspace(
    project: Path,
    db: Path | None,
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
        database = Database(path=db, source="--db")
    elif env.get(DATABASE_URL_ENV) is not None:
        database = Database(path=database_from_url(env[DATABASE_URL_ENV]), source=DATABASE_URL_ENV)
    loaded = load_project(project) if need_project or database is None else None
    if database is None:
        assert loaded is not None
        path = loaded.store_path or loaded.root / DEFAULT_PATH
        database = Database(path=path, source="warden.yaml store:")
    return Workspace(project=loaded, database=database)


_db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The SQLite database (default: {DATABASE_URL_ENV}, else warden.yaml's store:).",
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
