"""Time and ids, injected.

The decision core never reads the wall clock or makes random ids itself: it asks a `Clock`
and an `IdSource` it was given. A replay of the same inputs with the same clock gives the
same decision. This module is the only one allowed to call ``time.time`` and ``uuid4``
(ruff's banned-api enforces it).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "CountingIds", "FixedClock", "IdSource", "RandomIds", "SystemClock"]


class Clock(Protocol):
    """Where the decision core reads time from."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def timestamp(self) -> float:
        """The current time in seconds since the epoch (cheaper than `now`)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class FixedClock:
    """A clock that only moves when told to: for tests, replays and demos."""

    def __init__(self, start: datetime | str = "2026-01-01T09:00:00+00:00") -> None:
        if isinstance(start, str):
            start = datetime.fromisoformat(start)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move the clock forward by `seconds` (plus any `timedelta` keywords)."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)
            return self._now

    def set(self, when: datetime | str) -> None:
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        self._now = when if when.tzinfo else when.replace(tzinfo=UTC)


class IdSource(Protocol):
    """Where the decision core takes new ids from."""

    def new_id(self, prefix: str) -> str: ...


class RandomIds:
    """Random, unguessable ids: ``run_3f2a...``."""

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex}"


class CountingIds:
    """Deterministic ids for tests and replays: ``run_000001``, ``run_000002`` ..."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._counter):06d}"
