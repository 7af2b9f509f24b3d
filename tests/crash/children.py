"""What the forked processes do: the agent that crashes, and the process that recovers.

Both run in a child of the fork server, open their own `SQLiteStore` (so the writer
thread starts after the fork) and call the real `Gate.execute`. The crash is injected by
wrapping real methods of this process's gate, store and backend; production code is
unchanged. The backend's ``charge`` is also wrapped by a witness, which asks the database
(on a connection of its own) whether the call's decision is committed before the effect
is written.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import warden
from tests.crash.plan import RECONCILED_TOOL, CallSpec, RunSpec
from warden.decision import Outcome
from warden.errors import IdempotencyError, WardenError
from warden.execution import derive_key
from warden.runs import ActionState
from warden.store.protocol import ActionOutcome, NewAction
from warden.store.sqlite import SQLiteStore

__all__ = ["Loaded", "crash", "recover"]

PAYMENTS = Path(__file__).resolve().parents[1] / "fixtures" / "payments"

DB = "warden.db"
BACKEND = "backend.jsonl"
WITNESS = "witness.jsonl"
CRASHED_AT = "crashed_at"
ERRORS = "errors.txt"
RECOVERY = "recovery.json"


class Loaded:
    """What the fork server loads once, before any fork: the project and its tools."""

    def __init__(self) -> None:
        self.project = warden.load_project(PAYMENTS)
        import payment_tools  # the fixture project's module, importable once loaded

        self.tools: ModuleType = payment_tools


def _open(run_dir: Path, loaded: Loaded) -> tuple[SQLiteStore, warden.Gate, Any]:
    os.environ["WARDEN_TEST_BACKEND"] = str(run_dir / BACKEND)
    store = SQLiteStore(run_dir / DB)
    gate = loaded.project.gate(store=store)
    backend = loaded.tools.BACKEND
    _witness(backend, run_dir)
    return store, gate, backend


def _call(c: CallSpec) -> warden.ToolCall:
    return warden.ToolCall(**c.as_call_kwargs())


def _key(c: CallSpec) -> str:
    return c.key or derive_key(c.run_id, c.step, c.tool, c.as_call_kwargs()["args"])


# --- the crashing process ------------------------------------------------------------------


class Trigger:
    """Counts passes of the crash point; the pass after `crash_after` safe ones crashes."""

    def __init__(self, spec: RunSpec, run_dir: Path, parent_fd: int) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.parent_fd = parent_fd
        self._lock = threading.Lock()
        self._passes = 0

    def crashes_now(self) -> bool:
        with self._lock:
            self._passes += 1
            return self._passes == self.spec.crash_after + 1

    def _mark(self) -> None:
        # a plain write: the page cache outlives the process, no fsync needed
        (self.run_dir / CRASHED_AT).write_text(f"{self.spec.point} {self.spec.variant}".strip())

    def kill(self) -> None:
        self._mark()
        os.kill(os.getpid(), signal.SIGKILL)

    def ask_parent_to_kill(self) -> None:
        self._mark()
        os.write(self.parent_fd, b"T")


def crash(spec: RunSpec, run_dir: Path, parent_fd: int, loaded: Loaded) -> int:
    """Make the spec's calls until the armed point kills this process."""
    store, gate, backend = _open(run_dir, loaded)
    trigger = Trigger(spec, run_dir, parent_fd)
    _arm(spec, trigger, gate, store, backend)
    _make_calls(gate, spec.calls, spec.threads, run_dir / ERRORS)
    (run_dir / CRASHED_AT).write_text("never")
    store.close()
    return 0


def _arm(
    spec: RunSpec, trigger: Trigger, gate: warden.Gate, store: SQLiteStore, backend: Any
) -> None:
    """Wrap the real method that ends at the spec's point, in this process only."""
    if spec.point == "after_decide":
        decide = gate.decide

        def decide_then_crash(call: warden.ToolCall) -> Any:
            decision = decide(call)
            if decision.outcome is Outcome.ALLOW and trigger.crashes_now():
                trigger.kill()
            return decision

        gate.decide = decide_then_crash  # type: ignore[method-assign]
    elif spec.point == "after_record":
        record_decision = store.record_decision

        def record_then_crash(action: NewAction) -> Any:
            existing = record_decision(action)
            claimed = existing is None and action.state is ActionState.EXECUTING
            if claimed and trigger.crashes_now():
                trigger.kill()
            return existing

        store.record_decision = record_then_crash  # type: ignore[method-assign]
    elif spec.point == "during_call":
        backend.charge = _charge_and_crash(backend.charge, spec, trigger)
    elif spec.point == "before_outcome":
        record_outcome = store.record_outcome

        def crash_then_record(outcome: ActionOutcome, *, wait: bool = True) -> bool:
            if trigger.crashes_now():
                trigger.kill()
            return record_outcome(outcome, wait=wait)

        store.record_outcome = crash_then_record  # type: ignore[method-assign]
    elif spec.point == "audit_append":
        append = store._append  # pyright: ignore[reportPrivateUsage]

        def append_then_crash(conn: sqlite3.Connection, stream: str, kind: str, *rest: Any) -> int:
            seq = append(conn, stream, kind, *rest)  # the INSERT is done, the COMMIT is not
            if kind == spec.variant and trigger.crashes_now():
                trigger.kill()
            return seq

        store._append = append_then_crash  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown crash point {spec.point!r}")


def _charge_and_crash(charge: Callable[..., Any], spec: RunSpec, trigger: Trigger) -> Any:
    def charge_then_crash(key: str, amount: float, note: str = "") -> Any:
        result = charge(key, amount, note)  # fsynced: the effect outlives the process
        if trigger.crashes_now():
            trigger.kill()
        return result

    def slow_charge(key: str, amount: float, note: str = "") -> Any:
        if not trigger.crashes_now():
            return charge(key, amount, note)
        trigger.ask_parent_to_kill()  # the kill lands before or after the effect
        time.sleep(spec.pause_s)
        charge(key, amount, note)
        time.sleep(60.0)
        raise AssertionError("the fork server did not kill this process")

    return charge_then_crash if spec.variant == "after_effect" else slow_charge


def _make_calls(gate: warden.Gate, calls: tuple[CallSpec, ...], threads: int, errors: Path) -> None:
    """Make the calls on `threads` threads; note unexpected errors as they happen (the
    process may be killed at any moment)."""
    pending = list(reversed(calls))
    lock = threading.Lock()

    def note(text: str) -> None:
        with lock, errors.open("a", encoding="utf-8") as f:
            f.write(text)

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                c = pending.pop()
            try:
                gate.execute(_call(c))
            except IdempotencyError as exc:
                if exc.code != "W-IDM-002":  # a repeat racing its original is fine
                    note(traceback.format_exc())
            except Exception:
                note(traceback.format_exc())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


# --- the recovering process ------------------------------------------------------------------


def recover(spec: RunSpec, run_dir: Path, loaded: Loaded) -> int:
    """Recover what the crash left, then retry every call with the same keys."""
    store, gate, backend = _open(run_dir, loaded)
    if spec.sabotage == "lying_reconcile":
        gate.tools[RECONCILED_TOOL].reconcile_fn = lambda _args, _ctx: None
    interrupted = [
        {"action_id": v.id, "tool": v.tool, "key": v.idempotency_key, "run_id": v.run_id}
        for v in store.open_actions(ActionState.EXECUTING)
    ]
    settled = [
        {"action_id": e.action_id, "state": e.state.value, "code": _code(e.error)}
        for e in gate.recover()
    ]
    effects_at_recovery = [e["key"] for e in backend.all()]
    retries: list[dict[str, Any]] = []
    for c in spec.calls:
        try:
            e = gate.execute(_call(c))
        except WardenError as exc:
            retries.append({"key": _key(c), "tool": c.tool, "raised": f"{exc.code}: {exc}"})
            continue
        retries.append(
            {
                "key": e.idempotency_key,
                "tool": c.tool,
                "action_id": e.action_id,
                "state": e.state.value,
                "replayed": e.replayed,
                "code": _code(e.error),
            }
        )
    recovered_again = len(gate.recover())
    store.close()
    report = {
        "interrupted": interrupted,
        "settled": settled,
        "effects_at_recovery": effects_at_recovery,
        "retries": retries,
        "recovered_again": recovered_again,
    }
    (run_dir / RECOVERY).write_text(json.dumps(report))
    return 0


def _code(error: Any) -> str | None:
    return error.get("code") if error else None


# --- the witness ---------------------------------------------------------------------------


def _witness(backend: Any, run_dir: Path) -> None:
    """Before each effect, note whether its decision is committed (state ``executing``)."""
    charge = backend.charge
    path = run_dir / WITNESS
    lock = threading.Lock()

    def witnessed(key: str, amount: float, note: str = "") -> Any:
        conn = sqlite3.connect(run_dir / DB)
        try:
            row = conn.execute(
                "SELECT state FROM actions WHERE agent = 'payer' AND idem_key = ?", (key,)
            ).fetchone()
        finally:
            conn.close()
        line = json.dumps({"key": key, "recorded": row is not None and row[0] == "executing"})
        with lock, path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        return charge(key, amount, note)

    backend.charge = witnessed
