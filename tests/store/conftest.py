"""PostgreSQL databases for the store tests: a fresh one per test, dropped at the end.

Each test gets its own database (creating one takes a few tens of milliseconds), so tests
running in parallel never see each other's rows; `postgres_database` skips the test when
PostgreSQL is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warden.testing.postgres import drop_database, fresh_database

_CREATED: list[str] = []


def postgres_database() -> str:
    """The URL of a new, empty database, dropped when the test session ends."""
    url = fresh_database(prefix="warden_store")
    _CREATED.append(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_databases() -> Iterator[None]:
    yield
    while _CREATED:
        drop_database(_CREATED.pop())
