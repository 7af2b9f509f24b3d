"""Open the durable store a setting names: a SQLite file or a PostgreSQL URL.

    open_store(".warden/warden.db")                      # SQLite, a plain path
    open_store("sqlite:////var/lib/warden/warden.db")    # SQLite, as a URL
    open_store("postgresql://warden@db.internal/warden") # PostgreSQL, shared by replicas

psycopg is imported only when a PostgreSQL URL is opened, so a project on SQLite needs
no driver. No message here ever shows a URL's password (see `display_url`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warden.errors import StoreError

if TYPE_CHECKING:
    from warden.store.postgres import PostgresStore
    from warden.store.protocol import DurableStore
    from warden.store.sqlite import SQLiteStore

__all__ = ["database_target", "display_url", "is_postgres_url", "open_store"]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def is_postgres_url(text: str) -> bool:
    """Whether `text` is a ``postgresql://`` (or ``postgres://``) URL."""
    scheme, sep, _ = text.strip().partition("://")
    return bool(sep) and scheme.lower() in _POSTGRES_SCHEMES


def display_url(url: str) -> str:
    """A PostgreSQL URL as people may see it: ``postgresql://user@host:port/name``,
    without the password or the query."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "postgresql://(a URL that does not parse)"
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{host}:{port}{parts.path}"


def database_target(text: str, *, name: str = "the database URL") -> Path | str:
    """What a database setting names: a SQLite file (a `Path`) or a PostgreSQL URL (a
    `str`, with its scheme written ``postgresql://``).

    ``sqlite:///rel/path`` is relative, ``sqlite:////abs/path`` absolute (as in
    SQLAlchemy); a value without ``://`` is a plain path. `name` says where the value
    came from, in errors; the value itself never appears in one (it may hold a password).
    """
    value = text.strip()
    if not value:
        raise StoreError("W-STO-001", f"{name} is set but empty")
    scheme, sep, rest = value.partition("://")
    if not sep:
        return Path(value)
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return f"postgresql://{rest}"
    if scheme != "sqlite":
        raise StoreError(
            "W-STO-001",
            f"{name} has the scheme {scheme!r}; Warden reads SQLite or PostgreSQL",
            hint="Write sqlite:///PATH, a plain file path, or postgresql://USER@HOST/DATABASE.",
        )
    path = rest.partition("?")[0]
    if not path.startswith("/") or path in ("/", "/:memory:"):
        raise StoreError(
            "W-STO-001",
            f"{name} must name a database file",
            hint="Write sqlite:///relative/path.db or sqlite:////absolute/path.db.",
        )
    return Path(path[1:])


def open_store(url_or_path: str | Path, **options: Any) -> DurableStore:
    """The durable store `url_or_path` names (see `database_target`), opened with
    `options` (those of `SQLiteStore` or `PostgresStore`). Close it when done."""
    return open_either(url_or_path, **options)


def open_either(url_or_path: str | Path, **options: Any) -> SQLiteStore | PostgresStore:
    """`open_store`, typed as the two concrete stores (both are context managers)."""
    target = url_or_path if isinstance(url_or_path, Path) else database_target(url_or_path)
    if isinstance(target, str):
        from warden.store.postgres import PostgresStore

        return PostgresStore(target, **options)
    from warden.store.sqlite import SQLiteStore

    return SQLiteStore(target, **options)
