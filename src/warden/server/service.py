"""What one server process holds, and the blocking work it does off the event loop.

A `Service` owns the loaded project, the store, the `Executor` (whose gate a policy
reload swaps atomically), the key ring and the thread pool every store call runs in. The
HTTP layers (`warden.server.front` and `warden.server.admin`) only parse, check rights
and render; what they ask of the library goes through the methods here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from warden.audit.chain import SYSTEM_STREAM
from warden.clock import Clock, SystemClock
from warden.errors import StoreError, WardenError
from warden.execution import Executor
from warden.gate import Gate, ToolCall
from warden.identity import Principal
from warden.project import Project, load_project
from warden.runs import Execution
from warden.server.agent import Report, decision_json, execution_json, outcome_json
from warden.server.auth import KeyRing, require_agent
from warden.server.problems import encode
from warden.server.settings import ServerSettings
from warden.store.protocol import DurableStore

__all__ = ["Service"]

log = logging.getLogger("warden.server")

T = TypeVar("T")


class Service:
    """A project served over HTTP: its store, executor, keys and worker threads."""

    def __init__(
        self,
        project: Project,
        store: DurableStore,
        settings: ServerSettings | None = None,
        *,
        clock: Clock | None = None,
        database: str = "",
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings()
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.project = project
        self.database = database
        """Where the store is, for people (never a password)."""
        gate = project.gate(store=store, clock=self.clock)
        self.executor = Executor(gate, store, approval_ttl_s=project.approval_ttl_s)
        self.keys = KeyRing(store, self.clock, ttl_s=self.settings.key_cache_s)
        self.pool = ThreadPoolExecutor(
            max_workers=self.settings.threads, thread_name_prefix="warden-api"
        )
        self._reload_lock = threading.Lock()
        self._closed = False
        self.recovered: list[Execution] = self.executor.recover()
        """What startup recovery settled: actions a dead process left executing."""

    @property
    def gate(self) -> Gate:
        """The gate in force (a policy reload replaces it)."""
        return self.executor.gate

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking `fn(*args)` in the worker threads; the event loop goes on."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        """Stop the workers and close the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.executor.close()
        self.store.close()

    # --- the agent API (called in a worker thread) ---------------------------------------

    def propose(
        self, token: str, principal: Principal | None, call: ToolCall, *, run: bool
    ) -> bytes:
        """Authenticate (if the key was not cached), check the key's scope, then decide
        (or execute) `call`; the answer's JSON."""
        who = principal if principal is not None else self.keys.authenticate(token)
        require_agent(who, call.agent, call.tool)
        executor = self.executor
        done = executor.execute(call) if run else executor.decide(call)
        view = self.store.action(done.action_id) if done.decision is None else None
        return encode(execution_json(done, view) if run else decision_json(done, view))

    def decides_on_loop(self) -> bool:
        """Whether a decide may run on the event loop (`decide`): the gate's checks are
        CPU work and reads of the store, unless a fact provider (code of the project's,
        which may call out to other systems) can be asked."""
        facts = self.gate.facts
        return facts is None or not facts.names()

    async def decide(self, principal: Principal, call: ToolCall) -> bytes:
        """`propose` for a decide whose key was cached, on the event loop: the checks and
        the decision run here, and only the commit of the record is awaited (with a
        replay's rarer blocking steps, run in the worker threads)."""
        require_agent(principal, call.agent, call.tool)
        done = await self.executor.decide_async(call, self.run)
        view = await self.run(self.store.action, done.action_id) if done.decision is None else None
        return encode(decision_json(done, view))

    def report(
        self, token: str, principal: Principal | None, action_id: str, report: Report
    ) -> bytes:
        """Authenticate, then record the outcome the agent reports for its action."""
        who = principal if principal is not None else self.keys.authenticate(token)
        require_agent(who, who.name, None)
        done = self.executor.report(
            action_id,
            ok=report.ok,
            result=report.result,
            error=report.error,
            duration_ms=report.duration_ms,
            usd=report.usd,
            agent=who.name,
        )
        return encode(outcome_json(done))

    # --- operations -------------------------------------------------------------------------

    def reload(self, by: str) -> dict[str, Any]:
        """Load the project from disk again and put its gate in force at once.

        A project that does not load (a broken policy file ...) raises its ConfigError
        and changes nothing; either way the attempt is audited (``config.reload``)."""
        with self._reload_lock:
            old = self.gate.policies.revision
            try:
                project = load_project(self.project.file)
            except WardenError as exc:
                self._audit_reload({"ok": False, "by": by, "old_revision": old, "code": exc.code})
                raise
            gate = project.gate(store=self.store, clock=self.clock)
            self.executor.gate = gate  # one assignment: every later call sees the new gate
            self.executor.approval_ttl_s = project.approval_ttl_s
            self.project = project
            new = gate.policies.revision
            self._audit_reload({"ok": True, "by": by, "old_revision": old, "new_revision": new})
            return {
                "changed": new != old,
                "old_revision": old,
                "new_revision": new,
                "policies": len(gate.policies),
            }

    def _audit_reload(self, data: dict[str, Any]) -> None:
        self.store.audit(SYSTEM_STREAM, "config.reload", data, at=self.clock.timestamp())

    def ready(self) -> dict[str, Any]:
        """Raise StoreError unless the store answers; the policy revision in force."""
        self.store.kills()  # a read that reaches the database
        if len(self.gate.policies) == 0:  # pragma: no cover - a gate refuses to start so
            raise StoreError("W-STO-001", "no policy is loaded")
        return {"status": "ready", "policy_revision": self.gate.policies.revision}

    def audit_rejection(
        self,
        *,
        method: str,
        path: str,
        code: str,
        status: int,
        key_id: str | None,
        body_bytes: int | None,
        client: str | None,
    ) -> None:
        """Record a refused request (``api.rejected`` on the system stream); never the
        secret, never the body. A store that cannot take it is logged and let be."""
        data = {
            "method": method[:16],
            "path": path[:256],
            "code": code,
            "status": status,
            "key_id": key_id,
            "body_bytes": body_bytes,
            "client": client,
        }
        try:
            self.store.audit(SYSTEM_STREAM, "api.rejected", data, at=self.clock.timestamp())
        except Exception as exc:
            log.warning("could not audit a rejected request (%s): %s", code, exc)
