"""A child process for the SIGKILL tests: works one support-desk ticket and stops dead at
the point it is told to, after writing a marker file so the parent knows when to kill.

    python -m tests.examples.crash_child DB RUN_ID TICKET POINT MARKER

POINT is ``after_refund_write`` (the backend has written the refund, the tool has not
returned: Warden's outcome record is not on disk) or ``before_turn:N`` (the N-th model
turn is asked for: every earlier action's outcome is recorded).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import warden
from warden.cli.demo import load_tickets
from warden.models.base import ModelRequest, ModelTurn
from warden.models.config import build_route
from warden.runner import Runner
from warden.store.sqlite import SQLiteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_desk"


def _hang(marker: Path) -> None:
    marker.write_text("ready")
    time.sleep(60)  # the parent kills us here


class _Stopping:
    def __init__(self, inner: Any, turn: int, marker: Path) -> None:
        self.inner, self.turn, self.marker, self.asked = inner, turn, marker, 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def prices_as(self) -> str | None:
        return self.inner.prices_as

    def complete(self, request: ModelRequest) -> ModelTurn:
        self.asked += 1
        if self.asked == self.turn:
            _hang(self.marker)
        return self.inner.complete(request)


def main(db: str, run_id: str, ticket: str, point: str, marker: str) -> None:
    project = warden.load_project(EXAMPLE)
    import billing  # the example's module, importable once the project is loaded

    model: Any = build_route(project).models[0]
    if point == "after_refund_write":
        real = billing.Billing.create_refund

        def create_refund(self: Any, *args: Any, **kwargs: Any) -> Any:
            done = real(self, *args, **kwargs)
            _hang(Path(marker))
            return done

        billing.Billing.create_refund = create_refund
    else:
        model = _Stopping(model, int(point.split(":")[1]), Path(marker))
    task = next(t for t in load_tickets(EXAMPLE / "tickets.yaml") if t.key == ticket)
    store = SQLiteStore(db)
    runner = Runner(project.gate(store=store), model, **_settings(project))
    runner.run(task.__class__(**{**_fields(task), "run_id": run_id}))


def _settings(project: warden.Project) -> dict[str, Any]:
    settings = project.runner
    return {"system": settings.system} if settings and settings.system else {}


def _fields(task: Any) -> dict[str, Any]:
    return {name: getattr(task, name) for name in task.__slots__}


if __name__ == "__main__":
    main(*sys.argv[1:6])
