"""Exactly-once execution around `Gate.decide` (steps 9-11 of the gate's path).

`Gate.execute(call)` is::

    idempotency key ─> stored action? ─ yes ─> its stored result (or "in progress",
          │                                    or W-IDM-001 for other arguments)
          no
          ▼
    decide ─> record the decision durably ─> run the tool with the key ─> record the
              (and claim the key, in one      (timeout, retries)          outcome, settle
               committed transaction)                                     the budget, feed
                                                                          the breaker

Nothing runs before its decision record is on disk; a key is claimed in the same
transaction, so of any number of callers (threads or processes) with one key exactly one
executes. After a crash, `recover` settles the actions a dead process left executing
through the tool's ``reconcile`` hook, or marks them ``outcome_unknown`` for a person:
never a blind re-run.

`Executor.decide` stops after the durable decision record, for a caller that runs the
tool itself (an agent behind the HTTP decision API): an allowed action is left
``executing`` with its budget reserved, and `Executor.report` records the outcome the
caller reports, settles the budget and feeds the breaker, exactly once::

    decide ─> record the decision ─> (the caller runs the tool) ─> report ─> record the
              and claim the key                                             outcome, settle
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from warden.approvals import (
    ApprovalRequest,
    ApprovalStatus,
    binding_hash,
    check_usable,
    check_verdict,
)
from warden.budgets import Amounts, Reservation
from warden.canonical import canonical_json, canonical_text
from warden.decision import Decision, Outcome
from warden.errors import ApprovalError, AuthError, ExecutionError, IdempotencyError
from warden.history import ActionRecord
from warden.owner import is_orphaned
from warden.runs import ActionState, ActionView, Execution, RunStatus
from warden.store.protocol import ActionOutcome, DurableStore, NewAction
from warden.tools.spec import Tool, ToolContext

if TYPE_CHECKING:
    from warden.gate import Gate, ToolCall

__all__ = ["Approvals", "Executor", "ResultCache", "derive_key", "request_hash"]


def request_hash(tool: str, args: Mapping[str, Any]) -> str:
    """What one idempotency key stands for: the tool and its canonical arguments."""
    return hashlib.sha256(canonical_json([tool, args])).hexdigest()


def derive_key(run_id: str, step: int | None, tool: str, args: Mapping[str, Any]) -> str:
    """The key used when the caller gives none: run, step, tool and canonical arguments."""
    digest = hashlib.sha256(canonical_json([run_id, step, tool, args])).hexdigest()
    return "ik_" + digest[:40]


def _hash_and_key(call: ToolCall) -> tuple[str, str]:
    """``request_hash`` and the key of `call` (``derive_key`` when it brings none), with
    its arguments encoded once: canonical JSON of a list is its items' joined by commas."""
    args = canonical_text(call.args)
    tool = canonical_text(call.tool)
    rhash = hashlib.sha256(f"[{tool},{args}]".encode()).hexdigest()
    if call.idempotency_key:
        return rhash, call.idempotency_key
    head = canonical_text([call.run_id, call.step])[:-1]
    digest = hashlib.sha256(f"{head},{tool},{args}]".encode()).hexdigest()
    return rhash, "ik_" + digest[:40]


class _Blocking:
    """A step of a proposal that may block (run a tool, read and write the store): the
    thread driver calls it, the event-loop driver hands it to a worker thread."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Execution]) -> None:
        self.fn = fn


_Steps = Generator["NewAction | _Blocking", Any, Execution]
"""A proposal, step by step: it yields a decision record to commit (and is sent the
existing action that took its key, or None) or a blocking step (and is sent its answer)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return to_jsonable_python(value, fallback=repr)


def _error(
    code: str, exc: BaseException | None = None, message: str | None = None
) -> dict[str, Any]:
    text = message if message is not None else (str(exc) if exc is not None else "")
    return {
        "code": code,
        "type": type(exc).__name__ if exc is not None else None,
        "message": text[:2000],
    }


class _Timeout(Exception):
    pass


class ResultCache:
    """Results of read tools with a ``cache_ttl_s``, reused for the same arguments.

    A hit still goes through the gate and is recorded as an action (``how: cache``); only
    the backend call is saved. Per process, in memory, bounded."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._entries: dict[tuple[str, str], tuple[float, Any, str, float]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, tool: str, rhash: str, now: float) -> tuple[Any, str, float] | None:
        """(result, the action it came from, the milliseconds the call took), or None."""
        with self._lock:
            entry = self._entries.get((tool, rhash))
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[(tool, rhash)]
                return None
            return entry[1], entry[2], entry[3]

    def put(
        self, tool: str, rhash: str, result: Any, *, action_id: str, ms: float, expires_at: float
    ) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))
            self._entries[(tool, rhash)] = (expires_at, result, action_id, ms)


class Executor:
    """Runs a gate's allowed calls exactly once, recording every step in `store`."""

    def __init__(
        self,
        gate: Gate,
        store: DurableStore,
        *,
        approval_ttl_s: float = 86_400.0,
        retry_backoff_s: float = 0.05,
        tool_threads: int = 32,
        max_held: int = 100_000,
    ) -> None:
        self.gate = gate
        self.store = store
        self.approval_ttl_s = approval_ttl_s
        self.retry_backoff_s = retry_backoff_s
        self._inflight: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=tool_threads, thread_name_prefix="warden-tool")
        self.results = ResultCache()
        self._held: dict[str, Decision] = {}
        """Allowed decisions `decide` handed to callers, by action id, until `report`: they
        hold the budget reservations (in insertion order, oldest first)."""
        self._running: set[str] = set()
        """Actions this executor is running itself: no caller may report their outcome."""
        self._reporting: set[str] = set()
        self._report_done = threading.Condition(self._lock)
        self.max_held = max_held
        self._local_budgets = not store.shared_budgets
        """Whether reservations are held in this process's memory: it decides who gives
        back a reservation that another process settled."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- execute -----------------------------------------------------------------------

    def execute(
        self, call: ToolCall, *, approval_id: str | None = None, wait_outcome: bool = True
    ) -> Execution:
        if approval_id is not None:
            return self._execute_with_approval(call, approval_id)
        return self._propose(call, run=True, wait_outcome=wait_outcome)

    def decide(self, call: ToolCall) -> Execution:
        """Everything `execute` does up to and including the durable decision record, but
        without running the tool: the caller runs it and then calls `report`.

        The same key and arguments replay the stored action (``replayed``), the same key
        with other arguments is W-IDM-001, a needs-approval decision opens its request. An
        allowed action is left ``executing``, owned by this store, with its budget
        reserved; so is an action whose approval has become complete, when the same call
        is decided again. A replay in state ``executing`` means someone already holds the
        action: only the caller that got ``replayed=False`` runs the tool."""
        return self._propose(call, run=False)

    async def decide_async(
        self, call: ToolCall, offload: Callable[[Callable[[], Any]], Awaitable[Any]]
    ) -> Execution:
        """`decide` for a caller on an event loop: the checks and the decision run here,
        the commit of the record is awaited (`DurableStore.record_decision_async`, or
        `offload`, which runs a blocking function in a worker thread), and so is every
        rarer step that blocks (a replay's approval lookup ...).

        If the caller is cancelled while a step is under way, the rest of the proposal
        finishes in a worker thread, as `decide` would have: a committed decision keeps
        its reservation for `report`, one that did not commit gives it back."""
        steps = self._propose_steps(call, run=False)
        record: Callable[[NewAction], Awaitable[Any]] | None = getattr(
            self.store, "record_decision_async", None
        )
        ok, sent = True, cast(Any, None)
        while True:
            try:
                step = steps.send(sent) if ok else steps.throw(cast(BaseException, sent))
            except StopIteration as stop:
                return cast(Execution, stop.value)
            if isinstance(step, _Blocking):
                pending = asyncio.ensure_future(offload(step.fn))
            elif record is not None:
                pending = asyncio.ensure_future(record(step))
            else:
                pending = asyncio.ensure_future(
                    offload(functools.partial(self.store.record_decision, step))
                )
            try:
                ok, sent = True, await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    pending.add_done_callback(lambda done: self._finish_elsewhere(steps, done))
                raise
            except Exception as exc:
                ok, sent = False, exc

    def _finish_elsewhere(self, steps: _Steps, done: asyncio.Future[Any]) -> None:
        """Go on with a proposal whose async caller went away, in a worker thread."""
        if done.cancelled():
            steps.close()
            return
        error = done.exception()
        self._pool.submit(
            self._drive, steps, error is None, done.result() if error is None else error
        )

    def _propose(self, call: ToolCall, *, run: bool, wait_outcome: bool = True) -> Execution:
        return self._drive(self._propose_steps(call, run=run, wait_outcome=wait_outcome))

    def _drive(self, steps: _Steps, ok: bool = True, sent: Any = None) -> Execution:
        """Run a proposal's steps in this thread: commit each record, run each blocking
        step, and send back what came of it."""
        record = self.store.record_decision
        while True:
            try:
                step = steps.send(sent) if ok else steps.throw(cast(BaseException, sent))
            except StopIteration as stop:
                return cast(Execution, stop.value)
            try:
                ok, sent = True, step.fn() if isinstance(step, _Blocking) else record(step)
            except BaseException as exc:  # the step sees it (and gives back a reservation)
                ok, sent = False, exc

    def _propose_steps(self, call: ToolCall, *, run: bool, wait_outcome: bool = True) -> _Steps:
        try:
            rhash, key = _hash_and_key(call)
        except (TypeError, ValueError):  # not JSON: the contract check denies it
            return (yield from self._record_only(call, self.gate.decide(call), None, ""))
        token = (call.agent, key)
        with self._lock:
            if token in self._inflight:
                raise IdempotencyError(
                    "W-IDM-002", f"a call with idempotency key {key!r} is in progress"
                )
            self._inflight.add(token)
        try:
            existing = self.store.action_by_key(call.agent, key)
            if existing is not None:
                return (yield _Blocking(lambda: self._existing(existing, rhash, run=run)))
            decision = self.gate.decide(call)
            if decision.outcome is Outcome.ALLOW:
                return (
                    yield from self._allowed(
                        call, decision, key, rhash, run=run, wait_outcome=wait_outcome
                    )
                )
            if decision.outcome is Outcome.NEEDS_APPROVAL:
                return (yield from self._needs_approval(call, decision, key, rhash))
            return (yield from self._record_only(call, decision, None, rhash))
        finally:
            with self._lock:
                self._inflight.discard(token)

    def _new_action(
        self,
        call: ToolCall,
        decision: Decision,
        *,
        state: ActionState,
        key: str | None,
        rhash: str,
        approval: ApprovalRequest | None = None,
        run_status: RunStatus | None = None,
        run_reason: str | None = None,
    ) -> NewAction:
        return NewAction(
            id=self.gate.ids.new_id("act"),
            run_id=call.run_id,
            agent=call.agent,
            tool=call.tool,
            step=call.step,
            state=state,
            outcome=decision.outcome.value,
            code=decision.code,
            reasons=decision.reasons,
            args=decision.args if decision.args is not None else dict[str, Any](),
            idem_key=key,
            request_hash=rhash,
            owner=self.store.owner,
            decided_at=decision.decided_at,
            policy_revision=decision.policy_revision,
            started_by=call.on_behalf_of or call.principal,
            decision=decision.to_dict(),
            redact_fields=decision.redact_fields,
            approval=approval,
            run_status=run_status,
            run_reason=run_reason,
            est_usd=call.estimated_usd,
            est_tokens=call.estimated_tokens,
        )

    def _record_only(
        self, call: ToolCall, decision: Decision, key: str | None, rhash: str
    ) -> _Steps:
        """A deny or a suggestion: recorded, never executed, no key claimed."""
        status = None
        if decision.stop_run:
            status = RunStatus.KILLED if decision.code == "W-KIL-001" else RunStatus.ESCALATED
        action = self._new_action(
            call,
            decision,
            state=ActionState.DECIDED,
            key=key,
            rhash=rhash,
            run_status=status,
            run_reason=decision.reasons[0] if status and decision.reasons else None,
        )
        yield action
        return Execution(
            action_id=action.id,
            state=ActionState.DECIDED,
            run_id=call.run_id,
            agent=call.agent,
            tool=call.tool,
            decision=decision,
        )

    def _needs_approval(self, call: ToolCall, decision: Decision, key: str, rhash: str) -> _Steps:
        requirement = decision.approval
        roles = requirement.roles if requirement is not None else ()
        count = requirement.count if requirement is not None else 1
        args: Mapping[str, Any] = decision.args if decision.args is not None else {}
        requested_by = tuple(
            dict.fromkeys(p for p in (call.agent, call.principal, call.on_behalf_of) if p)
        )
        request = ApprovalRequest(
            id=self.gate.ids.new_id("apr"),
            action_id="",
            run_id=call.run_id,
            agent=call.agent,
            tool=call.tool,
            args=args,
            binding=binding_hash(
                agent=call.agent,
                tool=call.tool,
                args=args,
                policy_revision=decision.policy_revision,
                run_id=call.run_id,
            ),
            policy_revision=decision.policy_revision,
            roles=roles,
            count=max(count, 1),
            requested_by=requested_by,
            requested_at=decision.decided_at,
            expires_at=decision.decided_at + self.approval_ttl_s,
            status=ApprovalStatus.PENDING,
            reasons=decision.reasons,
        )
        action = self._new_action(
            call,
            decision,
            state=ActionState.AWAITING_APPROVAL,
            key=key,
            rhash=rhash,
            approval=request,
            run_status=RunStatus.WAITING,
        )
        existing: ActionView | None = yield action
        if existing is not None:
            return (yield _Blocking(lambda: self._existing(existing, rhash, run=False)))
        return Execution(
            action_id=action.id,
            state=ActionState.AWAITING_APPROVAL,
            run_id=call.run_id,
            agent=call.agent,
            tool=call.tool,
            decision=decision,
            idempotency_key=key,
            approval_id=request.id,
        )

    def _allowed(
        self,
        call: ToolCall,
        decision: Decision,
        key: str,
        rhash: str,
        *,
        run: bool = True,
        wait_outcome: bool = True,
    ) -> _Steps:
        action = self._new_action(call, decision, state=ActionState.EXECUTING, key=key, rhash=rhash)
        try:
            existing: ActionView | None = yield action
        except BaseException:
            self.gate.release(decision)  # not recorded: it must not run
            raise
        if existing is not None:  # another process claimed the key first
            self.gate.release(decision)
            return (yield _Blocking(lambda: self._existing(existing, rhash, run=run)))
        if not run:  # the caller runs the tool and reports; the decision keeps the budget
            self._hold(action.id, decision)
            return Execution(
                action_id=action.id,
                state=ActionState.EXECUTING,
                run_id=call.run_id,
                agent=call.agent,
                tool=call.tool,
                decision=decision,
                idempotency_key=key,
            )
        tool = self.gate.tools[call.tool]
        args: Mapping[str, Any] = decision.args if decision.args is not None else {}
        return (
            yield _Blocking(
                lambda: self._run(
                    action.id,
                    call.run_id,
                    call.agent,
                    tool,
                    args,
                    key,
                    decision=decision,
                    wait_outcome=wait_outcome,
                )
            )
        )

    # --- running the tool ----------------------------------------------------------------

    def _run(
        self,
        action_id: str,
        run_id: str,
        agent: str,
        tool: Tool,
        args: Mapping[str, Any],
        key: str,
        *,
        decision: Decision | None,
        approval_id: str | None = None,
        wait_outcome: bool = True,
    ) -> Execution:
        with self._lock:
            self._running.add(action_id)
        try:
            return self._run_tool(
                action_id,
                run_id,
                agent,
                tool,
                args,
                key,
                decision=decision,
                approval_id=approval_id,
                wait_outcome=wait_outcome,
            )
        finally:
            with self._lock:
                self._running.discard(action_id)

    def _run_tool(
        self,
        action_id: str,
        run_id: str,
        agent: str,
        tool: Tool,
        args: Mapping[str, Any],
        key: str,
        *,
        decision: Decision | None,
        approval_id: str | None,
        wait_outcome: bool,
    ) -> Execution:
        ctx = ToolContext(run_id=run_id, agent=agent, idempotency_key=key)
        started = time.perf_counter()
        attempts, result, error = 0, None, None
        state = ActionState.SUCCEEDED
        cacheable = tool.cache_ttl_s is not None and not tool.risk.writes
        rhash = request_hash(tool.name, args) if cacheable else ""
        hit = self.results.get(tool.name, rhash, self.gate.clock.timestamp()) if cacheable else None
        while hit is None:
            attempts += 1
            try:
                result = _jsonable(self._invoke(tool, args, ctx, action_id))
                break
            except _Timeout:
                state = ActionState.OUTCOME_UNKNOWN
                error = _error(
                    "W-EXE-002", message=f"{tool.name} did not return within {tool.timeout_s} s"
                )
                break
            except Exception as exc:
                if attempts <= tool.retries:
                    time.sleep(self.retry_backoff_s * (2 ** (attempts - 1)))
                    continue
                state, error = ActionState.FAILED, _error("W-EXE-001", exc)
                break
        duration_ms = (time.perf_counter() - started) * 1000.0
        ok = state is ActionState.SUCCEEDED
        if hit is not None:
            result, cached_from, saved_ms = hit
        else:
            cached_from, saved_ms = None, 0.0
            if cacheable and ok and tool.cache_ttl_s is not None:
                self.results.put(
                    tool.name,
                    rhash,
                    result,
                    action_id=action_id,
                    ms=duration_ms,
                    expires_at=self.gate.clock.timestamp() + tool.cache_ttl_s,
                )
        if decision is not None:
            self.gate.settle(decision, ok=ok, usd=decision_usd(decision))
        else:  # an approved action: count it, and feed the breaker
            self.store.add_usage(run_id, Amounts(calls=1), self.gate.clock.timestamp())
            self._feed_breaker(agent, ok)
        ledger = self.store.ledger(run_id)
        unknown = state is ActionState.OUTCOME_UNKNOWN
        self.store.record_outcome(
            ActionOutcome(
                action_id=action_id,
                run_id=run_id,
                agent=agent,
                tool=tool.name,
                state=state,
                at=self.gate.clock.timestamp(),
                result=result,
                error=error,
                attempts=attempts,
                duration_ms=duration_ms,
                redact_fields=decision.redact_fields if decision is not None else frozenset(),
                ledger=ledger.committed if ledger is not None else None,
                run_status=RunStatus.ESCALATED if unknown else None,
                run_reason=error["message"] if unknown and error else None,
                how="cache" if hit is not None else "executed",
            ),
            wait=wait_outcome or unknown,
        )
        return Execution(
            action_id=action_id,
            state=state,
            run_id=run_id,
            agent=agent,
            tool=tool.name,
            decision=decision,
            result=result,
            error=error,
            idempotency_key=key,
            approval_id=approval_id,
            attempts=attempts,
            duration_ms=duration_ms,
            cached_from=cached_from,
            saved_ms=saved_ms,
        )

    def _invoke(self, tool: Tool, args: Mapping[str, Any], ctx: ToolContext, action_id: str) -> Any:
        future: Future[Any] = self._pool.submit(tool.run, args, ctx)
        try:
            return future.result(timeout=tool.timeout_s)
        except FutureTimeout:
            future.add_done_callback(lambda f: self._late(f, action_id, ctx, tool))
            raise _Timeout from None

    def _late(self, future: Future[Any], action_id: str, ctx: ToolContext, tool: Tool) -> None:
        """A timed-out call returned after all: record what it did."""
        if future.cancelled():
            return
        exc = future.exception()
        state = ActionState.FAILED if exc is not None else ActionState.SUCCEEDED
        try:
            self.store.record_outcome(
                ActionOutcome(
                    action_id=action_id,
                    run_id=ctx.run_id,
                    agent=ctx.agent,
                    tool=tool.name,
                    state=state,
                    at=self.gate.clock.timestamp(),
                    result=_jsonable(future.result()) if exc is None else None,
                    error=_error("W-EXE-001", exc) if exc is not None else None,
                    attempts=1,
                    how="late",
                    expect=ActionState.OUTCOME_UNKNOWN,
                )
            )
        except Exception:  # the store is gone; the action stays outcome_unknown
            return

    def _feed_breaker(self, agent: str, ok: bool) -> None:
        manifest = self.gate.agent(agent)
        if manifest is not None and manifest.breaker is not None:
            self.store.breaker_record(
                agent, manifest.breaker, ok=ok, now=self.gate.clock.timestamp(), probe=False
            )

    # --- an existing action under the same key --------------------------------------------

    def _existing(self, view: ActionView, rhash: str, *, run: bool = True) -> Execution:
        """The answer for a call whose key is taken: `run` says whether Warden runs the
        tool (`execute`) or the caller does (`decide`)."""
        if view.request_hash != rhash:
            raise IdempotencyError(
                "W-IDM-001",
                f"idempotency key {view.idempotency_key!r} was used for another call "
                f"(action {view.id}, tool {view.tool})",
            )
        if view.state is ActionState.EXECUTING and run:
            raise IdempotencyError(
                "W-IDM-002",
                f"the call with idempotency key {view.idempotency_key!r} is in progress "
                f"(action {view.id})",
            )
        if view.state is ActionState.AWAITING_APPROVAL and view.approval_id is not None:
            request = self.store.approval(view.approval_id)
            if request is not None and request.status is ApprovalStatus.APPROVED:
                if not run:
                    self._claim_approved(view, request)
                    return Execution(
                        action_id=view.id,
                        state=ActionState.EXECUTING,
                        run_id=view.run_id,
                        agent=view.agent,
                        tool=view.tool,
                        idempotency_key=view.idempotency_key,
                        approval_id=request.id,
                    )
                return self._run_approved(view, request)
            if request is not None and request.status is ApprovalStatus.PENDING:
                now = self.gate.clock.timestamp()
                if now >= request.expires_at:
                    self.store.expire_approvals(now)
                    found = self.store.action(view.id)
                    view = found if found is not None else view
        return _replay(view)

    # --- approvals -------------------------------------------------------------------------

    def _execute_with_approval(self, call: ToolCall, approval_id: str) -> Execution:
        request = self.store.approval(approval_id)
        if request is None:
            raise ApprovalError("W-APR-008", f"no approval request {approval_id!r}")
        tool = self.gate.tools.get(call.tool)
        try:
            args = (
                tool.model.model_validate(call.args).model_dump(mode="json")
                if tool is not None
                else dict(call.args)
            )
            binding = binding_hash(
                agent=call.agent,
                tool=call.tool,
                args=args,
                policy_revision=self.gate.policies.revision,
                run_id=call.run_id,
            )
        except (ValueError, TypeError):
            binding = ""
        check_usable(request, binding=binding, now=self.gate.clock.timestamp())
        view = self.store.action(request.action_id)
        if view is None:
            raise ExecutionError("W-EXE-005", f"approval {approval_id} has no action")
        return self._run_approved(view, request)

    def resume(self, action_id: str) -> Execution:
        """Execute an action whose approval is complete (exactly once), else say where it is."""
        view = self.store.action(action_id)
        if view is None:
            raise ExecutionError("W-EXE-005", f"no action {action_id!r}")
        if view.state is not ActionState.AWAITING_APPROVAL or view.approval_id is None:
            return _replay(view)
        request = self.store.approval(view.approval_id)
        if request is None:
            raise ApprovalError("W-APR-008", f"no approval request {view.approval_id!r}")
        return self._run_approved(view, request)

    def _run_approved(self, view: ActionView, request: ApprovalRequest) -> Execution:
        tool, key = self._claim_approved(view, request)
        return self._run(
            view.id,
            view.run_id,
            view.agent,
            tool,
            view.args,
            key,
            decision=None,
            approval_id=request.id,
        )

    def _claim_approved(self, view: ActionView, request: ApprovalRequest) -> tuple[Tool, str]:
        """Spend a complete approval and move its action to executing (exactly once);
        returns the tool and the key it runs with."""
        now = self.gate.clock.timestamp()
        kill = self.store.killed(view.agent, view.tool)
        if kill is not None:
            raise ExecutionError(
                "W-EXE-005",
                f"kill switch '{kill.scope}' is engaged; approved action {view.id} waits",
            )
        binding = binding_hash(
            agent=view.agent,
            tool=view.tool,
            args=view.args,
            policy_revision=self.gate.policies.revision,
            run_id=view.run_id,
        )
        check_usable(request, binding=binding, now=now)
        tool = self.gate.tools.get(view.tool)
        if tool is None:
            raise ExecutionError("W-EXE-005", f"tool {view.tool!r} is not registered")
        self.store.start_approved(request.id, view.id, owner=self.store.owner, at=now)
        self.store.record_action(
            view.agent,
            ActionRecord(
                at=now,
                run_id=view.run_id,
                tool=view.tool,
                outcome=Outcome.ALLOW.value,
                args=dict(view.args),
                approved=True,
            ),
        )
        return tool, view.idempotency_key or derive_key(
            view.run_id, view.step, view.tool, view.args
        )

    def wait(self, action_id: str, *, timeout_s: float, poll_s: float = 0.5) -> Execution:
        """Wait (polling the store) until an action's approval is decided, then run it.

        Returns the action once it is no longer waiting (run, or rejected by people), or,
        after `timeout_s`, still ``awaiting_approval``; an approval that can no longer be
        used (expired, bound to other arguments) raises its code."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                result = self.resume(action_id)
            except ApprovalError as exc:
                if exc.code != "W-APR-009":  # not "still pending": denied, expired ...
                    raise
            else:
                if result.state is not ActionState.AWAITING_APPROVAL:
                    return result
            if time.monotonic() >= deadline:
                view = self.store.action(action_id)
                assert view is not None  # resume found it
                return _replay(view)
            time.sleep(poll_s)

    # --- outcomes a caller reports (after `decide`) --------------------------------------

    def _hold(self, action_id: str, decision: Decision) -> None:
        """Keep an allowed decision (and its reservation) until its outcome is reported.

        Past `max_held` the oldest is let go, and its report, when it comes, settles the
        reservation as one made elsewhere: by its amounts in a shared ledger, so it stays
        held there until then; a reservation in this process's memory is given back now
        (that settle then only commits the actual usage)."""
        evicted: list[Decision] = []
        with self._lock:
            self._held[action_id] = decision
            while len(self._held) > self.max_held:
                oldest = next(iter(self._held))
                evicted.append(self._held.pop(oldest))
        if self._local_budgets:
            for old in evicted:
                self.gate.release(old)

    def report(
        self,
        action_id: str,
        *,
        ok: bool,
        result: Any = None,
        error: Mapping[str, Any] | str | None = None,
        duration_ms: float = 0.0,
        usd: float | None = None,
        agent: str | None = None,
    ) -> Execution:
        """Record the outcome of an action `decide` left executing, which the caller ran.

        The outcome is written with a compare-and-set (only an executing action takes
        one), then the budget is settled (the actual `usd`, else the estimate the call
        reserved) and the breaker fed. The same report again returns the stored outcome
        (``replayed``); another outcome for an action that has one is W-EXE-006; an action
        that was never allowed, or that Warden runs itself, is W-EXE-005. An action that
        recovery marked outcome_unknown (this server restarted while the caller ran the
        tool) takes a late report; its budget was charged by recovery. `agent`, when
        given, must be the action's agent (W-AUTH-005).

        The reservation may have been made by another process (a replica, or this server
        before a restart): it is then settled from the action's recorded estimate, as a
        reservation with id 0, which a shared ledger (PostgreSQL) takes back by its
        amounts and a process's own memory (`MemoryStore`, SQLite) counts as already
        released. Whoever records the outcome settles the reservation, exactly once;
        reports of one action in this process take turns."""
        view = self.store.action(action_id)
        if view is None:
            raise ExecutionError("W-EXE-005", f"no action {action_id!r}")
        if agent is not None and view.agent != agent:
            raise AuthError(
                "W-AUTH-005", f"action {action_id} belongs to another agent than {agent}"
            )
        state = ActionState.SUCCEEDED if ok else ActionState.FAILED
        value = _jsonable(result) if ok and result is not None else None
        failure = None if ok else _reported_error(error)
        if view.state is ActionState.EXECUTING:
            with self._lock:
                running = action_id in self._running
            if running:
                raise ExecutionError(
                    "W-EXE-005",
                    f"Warden runs action {action_id} itself; its outcome is recorded when "
                    "the tool returns",
                )
            with self._report_done:  # one report of an action at a time in this process
                while action_id in self._reporting:
                    self._report_done.wait()
                self._reporting.add(action_id)
            try:
                return self._settle_report(view, state, value, failure, duration_ms, usd)
            finally:
                with self._report_done:
                    self._reporting.discard(action_id)
                    self._report_done.notify_all()
        if view.state is ActionState.OUTCOME_UNKNOWN:
            written = self.store.record_outcome(
                ActionOutcome(
                    action_id=view.id,
                    run_id=view.run_id,
                    agent=view.agent,
                    tool=view.tool,
                    state=state,
                    at=self.gate.clock.timestamp(),
                    result=value,
                    error=failure,
                    attempts=max(view.attempts, 1),
                    duration_ms=duration_ms,
                    redact_fields=self._redactions(view),
                    how="reported-late",
                    expect=ActionState.OUTCOME_UNKNOWN,
                )
            )
            if written:
                return self._reported(view, state, value, failure, duration_ms)
            found = self.store.action(action_id)
            view = found if found is not None else view
        return self._same_report(view, state, value, failure)

    def _settle_report(
        self,
        view: ActionView,
        state: ActionState,
        value: Any,
        failure: dict[str, Any] | None,
        duration_ms: float,
        usd: float | None,
    ) -> Execution:
        with self._lock:
            decision = self._held.pop(view.id, None)
        ok = state is ActionState.SUCCEEDED
        now = self.gate.clock.timestamp()
        actual = Amounts(
            calls=1, usd=usd if usd is not None else view.est_usd, tokens=view.est_tokens
        )
        ledger = self.store.ledger(view.run_id)
        if ledger is None:  # a run this process has not seen: open its ledger
            self.store.add_usage(view.run_id, Amounts(), view.decided_at)
            ledger = self.store.ledger(view.run_id)
        calls, spent, tokens = ledger.committed if ledger is not None else (0, 0.0, 0)
        written = self.store.record_outcome(
            ActionOutcome(
                action_id=view.id,
                run_id=view.run_id,
                agent=view.agent,
                tool=view.tool,
                state=state,
                at=now,
                result=value,
                error=failure,
                attempts=1,
                duration_ms=duration_ms,
                redact_fields=(
                    decision.redact_fields if decision is not None else self._redactions(view)
                ),
                ledger=(calls + actual.calls, spent + actual.usd, tokens + actual.tokens),
                how="reported",
                expect=ActionState.EXECUTING,
            )
        )
        if not written:  # another report won: it settled the reservation
            if decision is not None and self._local_budgets:
                self.gate.release(decision)  # in another process's memory: ours is here
            found = self.store.action(view.id)
            return self._same_report(found if found is not None else view, state, value, failure)
        if decision is not None:  # decided here: the reservation is in this process
            self.gate.settle(decision, ok=ok, usd=actual.usd, tokens=actual.tokens)
            return self._reported(view, state, value, failure, duration_ms)
        if view.approval_id is not None:  # approved actions hold no reservation
            self.store.add_usage(view.run_id, actual, now)
        else:  # reserved by another process, or before a restart
            made_elsewhere = Reservation(
                run_id=view.run_id,
                amounts=Amounts(calls=1, usd=view.est_usd, tokens=view.est_tokens),
                id=0,
            )
            self.store.settle(made_elsewhere, actual)
        self._feed_breaker(view.agent, ok)
        return self._reported(view, state, value, failure, duration_ms)

    def _same_report(
        self, view: ActionView, state: ActionState, value: Any, failure: dict[str, Any] | None
    ) -> Execution:
        """A report for an action that already has an outcome: the stored one if they agree."""
        if view.state not in (ActionState.SUCCEEDED, ActionState.FAILED):
            raise ExecutionError(
                "W-EXE-005",
                f"action {view.id} is {view.state.value}; only an executing action takes a "
                "reported outcome",
            )
        stored = view.error or {}
        same = view.state is state and (
            view.result == value
            if state is ActionState.SUCCEEDED
            else (stored.get("message"), stored.get("type"))
            == ((failure or {}).get("message"), (failure or {}).get("type"))
        )
        if not same:
            raise ExecutionError(
                "W-EXE-006",
                f"action {view.id} already has the outcome {view.state.value}"
                + (" with another result" if view.state is state else ""),
            )
        return _replay(view)

    def _reported(
        self,
        view: ActionView,
        state: ActionState,
        value: Any,
        failure: dict[str, Any] | None,
        duration_ms: float,
    ) -> Execution:
        return Execution(
            action_id=view.id,
            state=state,
            run_id=view.run_id,
            agent=view.agent,
            tool=view.tool,
            result=value,
            error=failure,
            idempotency_key=view.idempotency_key,
            approval_id=view.approval_id,
            attempts=1,
            duration_ms=duration_ms,
        )

    def _redactions(self, view: ActionView) -> frozenset[str]:
        """Every field a policy covering the action's tool may redact (its decision is not
        in this process): the safe side for privacy."""
        fields: set[str] = set()
        for policy in self.gate.policies.covering(view.tool, view.agent):
            fields.update(policy.log.redact_fields)
            for rule in policy.redact_rules:
                fields.update(rule.redact)
        return frozenset(fields)

    # --- after a crash ----------------------------------------------------------------------

    def recover(self, *, force: bool = False) -> list[Execution]:
        """Settle actions a dead process left executing; expire stale approvals.

        An action is recovered when the process that owned it is gone (same host, pid
        not running), or always with `force`. Its tool's ``reconcile`` hook says whether
        the effect happened (a result) or not (None); without a hook, or if the hook
        fails, the action becomes ``outcome_unknown`` and its run escalates."""
        now = self.gate.clock.timestamp()
        self.store.expire_approvals(now)
        settled: list[Execution] = []
        for view in self.store.open_actions(ActionState.EXECUTING):
            if not force and not is_orphaned(view.owner, self.store.owner):
                continue
            settled.append(self._reconcile(view))
        return settled

    def reconcile_unknown(self, action_id: str) -> Execution:
        """Ask the tool's ``reconcile`` hook about an action whose outcome is unknown (a
        timeout): found → succeeded, not found → failed with its key released. Without a
        hook the action stays as it is. Its budget was settled when it timed out."""
        view = self.store.action(action_id)
        if view is None:
            raise ExecutionError("W-EXE-005", f"no action {action_id!r}")
        tool = self.gate.tools.get(view.tool)
        if (
            view.state is not ActionState.OUTCOME_UNKNOWN
            or tool is None
            or tool.reconcile_fn is None
        ):
            return _replay(view)
        return self._reconcile(view, expect=ActionState.OUTCOME_UNKNOWN)

    def _reconcile(
        self, view: ActionView, *, expect: ActionState = ActionState.EXECUTING
    ) -> Execution:
        tool = self.gate.tools.get(view.tool)
        key = view.idempotency_key or ""
        ctx = ToolContext(run_id=view.run_id, agent=view.agent, idempotency_key=key)
        state, result, error, release = ActionState.OUTCOME_UNKNOWN, None, None, False
        if tool is not None and tool.reconcile_fn is not None:
            try:
                found = tool.run_hook(tool.reconcile_fn, view.args, ctx)
            except Exception as exc:
                error = _error("W-EXE-003", exc, f"reconcile hook failed: {exc}")
            else:
                if found is None:
                    state, release = ActionState.FAILED, True
                    error = _error(
                        "W-EXE-004", message="interrupted before it took effect (reconciled)"
                    )
                else:
                    state, result = ActionState.SUCCEEDED, _jsonable(found)
        else:
            error = _error(
                "W-EXE-003",
                message=f"interrupted while executing; {view.tool} has no reconcile hook",
            )
        unknown = state is ActionState.OUTCOME_UNKNOWN
        now = self.gate.clock.timestamp()
        ledger = None
        settled = expect is ActionState.OUTCOME_UNKNOWN  # its budget was settled already
        if not release and not settled:  # it took effect, or may have: it counts
            found = self.store.ledger(view.run_id)
            calls, usd, tokens = found.committed if found is not None else (0, 0.0, 0)
            ledger = (calls + 1, usd + view.est_usd, tokens + view.est_tokens)
        written = self.store.record_outcome(
            ActionOutcome(
                action_id=view.id,
                run_id=view.run_id,
                agent=view.agent,
                tool=view.tool,
                state=state,
                at=now,
                result=result,
                error=error,
                attempts=view.attempts,
                release_key=release,
                ledger=ledger,
                run_status=RunStatus.ESCALATED if unknown and not settled else None,
                run_reason=error["message"] if unknown and error and not settled else None,
                how="reconciled",
                expect=expect,
            )
        )
        if not written:  # another recoverer settled it first
            current = self.store.action(view.id)
            return _replay(current if current is not None else view)
        if not release and not settled:
            self.store.add_usage(
                view.run_id, Amounts(calls=1, usd=view.est_usd, tokens=view.est_tokens), now
            )
        return Execution(
            action_id=view.id,
            state=state,
            run_id=view.run_id,
            agent=view.agent,
            tool=view.tool,
            result=result,
            error=error,
            idempotency_key=view.idempotency_key,
        )

    def compensate(self, action_id: str, *, by: str, reason: str) -> Execution:
        """Undo a succeeded action with its tool's ``compensate`` hook."""
        view = self.store.action(action_id)
        if view is None:
            raise ExecutionError("W-EXE-005", f"no action {action_id!r}")
        tool = self.gate.tools.get(view.tool)
        if view.state is not ActionState.SUCCEEDED or tool is None or tool.compensate_fn is None:
            raise ExecutionError(
                "W-EXE-005",
                f"action {action_id} is {view.state.value}; only a succeeded action of a tool "
                "with a compensate hook can be compensated",
            )
        ctx = ToolContext(
            run_id=view.run_id, agent=view.agent, idempotency_key=view.idempotency_key or ""
        )
        undone = _jsonable(tool.run_hook(tool.compensate_fn, view.args, ctx, view.result))
        self.store.record_outcome(
            ActionOutcome(
                action_id=view.id,
                run_id=view.run_id,
                agent=view.agent,
                tool=view.tool,
                state=ActionState.COMPENSATED,
                at=self.gate.clock.timestamp(),
                result={
                    "original": view.result,
                    "compensation": undone,
                    "by": by,
                    "reason": reason,
                },
                attempts=view.attempts,
                how="compensated",
                expect=ActionState.SUCCEEDED,
            )
        )
        found = self.store.action(action_id)
        return _replay(found) if found is not None else _replay(view)


def decision_usd(decision: Decision) -> float:
    """The USD an allowed call reserved (its estimate), settled as its cost."""
    res = decision.reservation
    amounts = getattr(res, "amounts", None)
    return float(getattr(amounts, "usd", 0.0))


def _reported_error(error: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A caller's ``{"message", "type"}`` (or a message) as an action's error."""
    if isinstance(error, Mapping):
        message, kind = error.get("message"), error.get("type")
    else:
        message, kind = error, None
    text = str(message) if message is not None else "the caller reported a failure"
    return {
        "code": "W-EXE-001",
        "type": str(kind) if kind is not None else None,
        "message": text[:2000],
    }


def _replay(view: ActionView) -> Execution:
    return Execution(
        action_id=view.id,
        state=view.state,
        run_id=view.run_id,
        agent=view.agent,
        tool=view.tool,
        result=view.result,
        error=view.error,
        idempotency_key=view.idempotency_key,
        approval_id=view.approval_id,
        replayed=True,
        attempts=view.attempts,
    )


class Approvals:
    """People's verdicts on approval requests, checked against the roles in warden.yaml."""

    def __init__(
        self, store: DurableStore, *, roles: Mapping[str, frozenset[str]], clock: Any
    ) -> None:
        self.store = store
        self.roles = roles
        """Role name -> the people who hold it."""
        self.clock = clock

    def roles_of(self, person: str) -> frozenset[str]:
        return frozenset(r for r, members in self.roles.items() if person in members)

    def get(self, approval_id: str) -> ApprovalRequest:
        found = self.store.approval(approval_id)
        if found is None:
            raise ApprovalError("W-APR-008", f"no approval request {approval_id!r}")
        return found

    def list(self, status: ApprovalStatus | None = ApprovalStatus.PENDING) -> list[ApprovalRequest]:
        self.store.expire_approvals(self.clock.timestamp())
        return list(self.store.approvals(status))

    def _verdict(
        self, approval_id: str, approver: str, approve: bool, role: str | None, reason: str
    ) -> ApprovalRequest:
        held = self.roles_of(approver)
        now = self.clock.timestamp()
        return self.store.add_verdict(
            approval_id,
            lambda request: check_verdict(
                request,
                approver=approver,
                approver_roles=held,
                approve=approve,
                role=role,
                reason=reason,
                now=now,
            ),
        )

    def approve(
        self, approval_id: str, *, approver: str, reason: str = "", role: str | None = None
    ) -> ApprovalRequest:
        return self._verdict(approval_id, approver, True, role, reason)

    def deny(
        self, approval_id: str, *, approver: str, reason: str, role: str | None = None
    ) -> ApprovalRequest:
        return self._verdict(approval_id, approver, False, role, reason)
