"""The gate: every tool call an agent proposes passes through `Gate.decide`, in this order.

1. kill switch        all / agent / tool engaged                    -> deny, stop the run
2. identity, scope    known agent, the caller is it, tool allowed  -> deny
3. contract           strict argument model, size limits           -> deny (an action error)
4. loop detection     same tool + same arguments too often in a run -> deny, stop the run
5. budgets            reserve calls, USD, tokens; check wall time  -> deny, stop the run
6. circuit breaker    error rate over the window too high           -> demote to suggest-only
7. policy             first match per file, strictest across files  -> allow / deny / approval
8. mode and autonomy  draft_only / suggest_only / suggest_then_act  -> proposal or approval

The result is a `Decision` value; a deny is the system working, never an exception. An
allowed decision holds a budget reservation: after running the tool, call `settle` (with
the outcome, which also feeds the breaker); if the tool never runs, call `release`. The
decision carries what its checks read (`Decision.inputs`), so `warden.replay` can hand the
same inputs to this same code later and get the same decision.

`Gate.execute` goes on from there (steps 9-11): it records the decision durably, runs the
tool exactly once under an idempotency key, records the outcome, settles the budget and
feeds the breaker. It needs a durable store (`warden.store.sqlite.SQLiteStore`); see
`warden.execution`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from pydantic import ValidationError

from warden.audit.chain import SYSTEM_STREAM
from warden.breakers import Phase
from warden.budgets import Amounts, BudgetBreach, Reservation
from warden.canonical import canonical_json
from warden.clock import Clock, IdSource, RandomIds, SystemClock
from warden.decision import ApprovalRequirement, Decision, Outcome, Stage
from warden.errors import GateError, PolicyError
from warden.execution import Executor
from warden.facts import FactRegistry, FactView
from warden.history import ActionRecord, HistoryView
from warden.killswitch import parse_scope
from warden.manifest import AgentManifest
from warden.modes import Mode
from warden.policy.evaluate import AgentView, NowView, PlanTable, PolicySet
from warden.provenance import Content, tainted
from warden.runs import Execution, RunStatus
from warden.store.memory import MemoryStore
from warden.store.protocol import DurableStore, StateStore
from warden.tools.registry import ToolRegistry
from warden.tools.spec import Limits, Tool, describe_validation_error

__all__ = ["Gate", "ToolCall"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCall:
    """One tool call an agent proposes."""

    agent: str
    """The agent proposing the call (as declared in its manifest)."""
    tool: str
    """The tool's registered name."""
    args: Mapping[str, Any]
    """The arguments as the model produced them (JSON values)."""
    run_id: str
    """The run it belongs to; budgets, loops and history are kept per run."""
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Facts the caller supplies: customer tier, environment, incident status ..."""
    principal: str | None = None
    """The authenticated caller, when an edge (HTTP, MCP) checked credentials."""
    estimated_usd: float = 0.0
    """Expected cost of the call, reserved against the run's USD budget."""
    estimated_tokens: int = 0
    """Expected tokens, reserved against the run's token budget."""
    facts: Mapping[str, Any] | None = None
    """Fact values given outright (tests, replays); they take precedence over providers."""
    step: int | None = None
    """The call's step in its run; part of the derived idempotency key."""
    idempotency_key: str | None = None
    """The caller's own key; by default one is derived from run, step, tool and arguments."""
    on_behalf_of: str | None = None
    """The person the run acts for; they may not approve its actions."""
    content: tuple[Content, ...] = ()
    """The labelled context the call was proposed in (the runner fills it): a context
    holding untrusted content makes ``run.tainted`` true for policies."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Agent:
    manifest: AgentManifest
    view: AgentView
    plans: PlanTable


class Gate:
    """Decides every proposed tool call. Thread-safe; holds no state of its own."""

    def __init__(
        self,
        *,
        policies: PolicySet,
        agents: Iterable[AgentManifest],
        tools: ToolRegistry | Iterable[Tool],
        store: StateStore | None = None,
        facts: FactRegistry | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        approval_ttl_s: float = 86_400.0,
        retry_backoff_s: float = 0.05,
    ) -> None:
        if not isinstance(policies, PolicySet) or len(policies) == 0:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise PolicyError("W-POL-005", "a gate needs a policy set with at least one policy")
        self.policies = policies
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.store: StateStore = store if store is not None else MemoryStore()
        self.facts = facts
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ids: IdSource = ids if ids is not None else RandomIds()
        self._agents: dict[str, _Agent] = {}
        for m in agents:
            self._agents[m.name] = _Agent(
                manifest=m,
                plans=policies.plans(m.name),
                view=AgentView(
                    name=m.name,
                    version=m.version,
                    owner=m.owner,
                    mode=m.mode.value,
                    autonomy=m.autonomy or "",
                    tags=m.tags,
                ),
            )
        self._executor: Executor | None = None
        self._approval_ttl_s = approval_ttl_s
        self._retry_backoff_s = retry_backoff_s
        durable = self._durable()
        if durable is not None:
            durable.audit(
                SYSTEM_STREAM,
                "config.load",
                {
                    "policy_revision": policies.revision,
                    "policies": [
                        {"id": p.id, "file": p.file, "origin": p.origin} for p in policies.policies
                    ],
                    "agents": {
                        m.name: {"version": m.version, "file": m.file, "revision": m.revision}
                        for m in self.agents
                    },
                    "tools": sorted(t.name for t in self.tools),
                },
                at=self.clock.timestamp(),
            )
            if policies.texts:  # what `warden replay` rebuilds this revision from
                durable.save_policy_revision(
                    policies.revision, policies.texts, at=self.clock.timestamp()
                )

    # --- the decision -------------------------------------------------------------------

    def decide(self, call: ToolCall) -> Decision:
        """Decide one proposed call. Never raises for a deny; see the module docstring."""
        started = time.perf_counter_ns()
        now = self.clock.timestamp()
        store = self.store
        # what the decision reads, for a replay (Decision.inputs); filled as checks pass
        inputs: dict[str, Any] = {
            "now": now,
            "context": call.context,
            "estimated_usd": call.estimated_usd,
            "estimated_tokens": call.estimated_tokens,
        }
        if call.principal is not None:
            inputs["principal"] = call.principal

        def deny(stage: Stage, code: str, reason: str, **more: Any) -> Decision:
            return self._deny(call, started, now, stage, code, reason, inputs=inputs, **more)

        # 1. kill switch
        kill = store.killed(call.agent, call.tool)
        if kill is not None:
            inputs["kill"] = {"scope": kill.scope, "by": kill.by, "reason": kill.reason}
            return deny(
                Stage.KILL_SWITCH,
                "W-KIL-001",
                f"kill switch '{kill.scope}' engaged by {kill.by}: {kill.reason}",
                stop_run=True,
            )

        # 2. identity and scope
        agent = self._agents.get(call.agent)
        if agent is None:
            return deny(Stage.IDENTITY, "W-IDN-001", f"unknown agent {call.agent!r}")
        if call.principal is not None and call.principal != call.agent:
            return deny(
                Stage.IDENTITY,
                "W-IDN-002",
                f"caller {call.principal!r} may not act as agent {call.agent!r}",
            )
        manifest = agent.manifest
        tool = self.tools.get(call.tool)
        if tool is None or call.tool not in manifest.allowed_tools:
            return deny(
                Stage.IDENTITY,
                "W-IDN-003",
                f"tool {call.tool!r} is not in {call.agent}'s allowed_tools"
                if tool is not None
                else f"no tool named {call.tool!r} is registered",
            )

        # 3. contract
        oversize = _oversize(call.args, tool.limits)
        if oversize is not None:
            self._action_error(manifest, now)
            return deny(Stage.CONTRACT, "W-CON-002", oversize)
        try:
            args: dict[str, Any] = tool.model.model_validate(call.args).model_dump(mode="json")
        except ValidationError as exc:
            self._action_error(manifest, now)
            field_path, message = describe_validation_error(exc)
            return deny(
                Stage.CONTRACT,
                "W-CON-001",
                f"{call.tool}.{field_path}: {message}",
                extra={"field": field_path, "errors": exc.error_count()},
            )
        fingerprint = _fingerprint(call.tool, args)

        # 4. loop detection
        repeats = inputs["repeats"] = store.note_call(call.run_id, fingerprint)
        if repeats > manifest.max_identical_calls:
            return deny(
                Stage.LOOP,
                "W-LOOP-001",
                f"{call.tool} with the same arguments proposed {repeats} times in this run "
                f"(max_identical_calls {manifest.max_identical_calls})",
                stop_run=True,
                args=args,
                fingerprint=fingerprint,
            )

        # 5. budgets
        held = store.reserve(
            call.run_id,
            manifest.budgets,
            Amounts(calls=1, usd=call.estimated_usd, tokens=call.estimated_tokens),
            now,
        )
        if isinstance(held, BudgetBreach):
            inputs["budget"] = {
                "code": held.code,
                "reason": held.reason,
                "limit": held.limit,
                "would_be": held.would_be,
            }
            return deny(
                Stage.BUDGET,
                held.code,
                held.reason,
                stop_run=True,
                extra={"limit": held.limit, "would_be": held.would_be},
                args=args,
                fingerprint=fingerprint,
            )
        reservation: Reservation = held

        # 6. circuit breaker: an open breaker demotes writes; half-open lets one probe through
        mode, probe, breaker_note = manifest.mode, False, None
        if manifest.breaker is not None and tool.risk.writes:
            phase, probe = store.breaker_check(call.agent, manifest.breaker, now, want_probe=True)
            inputs["breaker"] = (phase, probe)
            if phase is not Phase.CLOSED and not probe:
                mode = Mode.SUGGEST_ONLY
                breaker_note = f"circuit breaker {phase.value}: writes are demoted to suggestions"

        # 7. policy (the views a plan's conditions never read are not built). The run's
        # ledger is recorded for a replay even when this plan does not read `run`, unless
        # reading it costs a round trip (budgets shared in a database).
        plan = agent.plans[call.tool]
        run = None
        if plan.uses_run or not store.shared_budgets:
            ledger = store.ledger(call.run_id)
            taint = tainted(call.content) if call.content else False
            if taint:
                inputs["tainted"] = True
            if ledger is None:
                inputs["ledger"] = None
                run = (call.run_id, 0, 0.0, 0, 0.0, taint)
            else:
                calls, usd, tokens = ledger.calls, ledger.usd, ledger.tokens
                inputs["ledger"] = (calls, usd, tokens, ledger.started_at)
                run = (  # a RunView's fields, as a plain tuple
                    call.run_id,
                    calls - 1,
                    usd - call.estimated_usd,
                    tokens - call.estimated_tokens,
                    now - ledger.started_at,
                    taint,
                )
        view = FactView(self.facts, call, args, store, call.facts) if plan.uses_facts else None
        history = (
            HistoryView(store.history(call.agent), run_id=call.run_id, tool=call.tool, now=now)
            if plan.uses_history
            else None
        )
        result = plan.decide(
            args,
            call.context,
            view if view is not None else _EMPTY,
            agent.view,
            run,
            NowView(now) if plan.uses_now else None,
            history,
        )
        if view is not None:
            if view.served:
                inputs["facts"] = view.served
            if view.failed:
                inputs["fact_errors"] = view.failed

        # 8. mode and autonomy
        outcome, stage, code = result.outcome, Stage.POLICY, result.code
        reasons, approval = result.reasons, result.approval
        if tool.risk.writes and outcome is not Outcome.DENY:
            if mode in (Mode.DRAFT_ONLY, Mode.SUGGEST_ONLY):
                outcome = Outcome.SUGGEST_ONLY
                stage, code = (
                    (Stage.BREAKER, "W-BRK-001") if breaker_note else (Stage.MODE, "W-MODE-001")
                )
                reasons = (
                    breaker_note or f"mode {mode.value}: the write is recorded as a proposal",
                    *reasons,
                )
            elif mode is Mode.SUGGEST_THEN_ACT and outcome is Outcome.ALLOW:
                outcome, stage, code = Outcome.NEEDS_APPROVAL, Stage.MODE, "W-MODE-002"
                approval = ApprovalRequirement(roles=(manifest.approver_role,), count=1)
                reasons = (
                    f"mode suggest_then_act: every write waits for {manifest.approver_role}",
                    *reasons,
                )

        if outcome is not Outcome.ALLOW:
            store.release(reservation)
            if probe:
                store.breaker_return_probe(call.agent)
            probe = False
        store.record_action(
            call.agent,
            ActionRecord(
                at=now,
                run_id=call.run_id,
                tool=call.tool,
                outcome=outcome.value,
                args=args,
            ),
        )
        return Decision(
            outcome=outcome,
            stage=stage,
            code=code,
            reasons=reasons,
            rules=result.rules,
            policy_revision=self.policies.revision,
            agent=call.agent,
            tool=call.tool,
            run_id=call.run_id,
            mode=mode.value,
            args=args,
            fingerprint=fingerprint,
            approval=approval,
            redact_fields=result.redact_fields,
            stop_run=False,
            breaker_probe=probe,
            reservation=reservation if outcome is Outcome.ALLOW else None,
            decided_at=now,
            latency_ns=time.perf_counter_ns() - started,
            inputs=inputs,
        )

    # --- execution (steps 9-11) --------------------------------------------------------------

    def _durable(self) -> DurableStore | None:
        return cast(DurableStore, self.store) if hasattr(self.store, "record_decision") else None

    @property
    def executor(self) -> Executor:
        """The execution layer (needs a durable store)."""
        if self._executor is None:
            durable = self._durable()
            if durable is None:
                raise GateError(
                    "W-GATE-001",
                    "Gate.execute needs a durable store: pass store=SQLiteStore(...) "
                    "(or SQLiteStore.temporary() in tests)",
                )
            self._executor = Executor(
                self,
                durable,
                approval_ttl_s=self._approval_ttl_s,
                retry_backoff_s=self._retry_backoff_s,
            )
        return self._executor

    def execute(
        self, call: ToolCall, *, approval_id: str | None = None, wait_outcome: bool = True
    ) -> Execution:
        """Decide, record the decision durably, run the tool exactly once, record the outcome.

        Returns an `Execution`; a deny, a suggestion and an approval request are values
        too. Raises IdempotencyError when the key is busy or was used for another call,
        and ApprovalError when `approval_id` does not let this exact call run.

        With ``wait_outcome=False`` the outcome record rides with the store's next commit
        (the next decision's), or is committed in the background a moment later, while the
        caller goes on (the runner asks its model meanwhile); the decision record is always
        on disk before the tool runs. Until the outcome lands, a crash leaves the action
        executing, for `recover` to settle."""
        return self.executor.execute(call, approval_id=approval_id, wait_outcome=wait_outcome)

    def resume(self, action_id: str) -> Execution:
        """Run an action whose approval is complete (exactly once), else report its state."""
        return self.executor.resume(action_id)

    def wait(self, action_id: str, *, timeout_s: float, poll_s: float = 0.5) -> Execution:
        """Wait durably for an action's approval, then run it."""
        return self.executor.wait(action_id, timeout_s=timeout_s, poll_s=poll_s)

    def recover(self, *, force: bool = False) -> list[Execution]:
        """Settle actions a crashed process left executing (see `Executor.recover`)."""
        return self.executor.recover(force=force)

    def compensate(self, action_id: str, *, by: str, reason: str) -> Execution:
        """Undo a succeeded action with its tool's compensate hook."""
        return self.executor.compensate(action_id, by=by, reason=reason)

    # --- after the decision ---------------------------------------------------------------

    def settle(self, decision: Decision, *, ok: bool, usd: float = 0.0, tokens: int = 0) -> None:
        """Record what an allowed, executed call cost and whether it succeeded.

        Commits the real cost in place of the reservation and feeds the agent's breaker.
        """
        reservation = _reservation_of(decision)
        self.store.settle(reservation, Amounts(calls=1, usd=usd, tokens=tokens))
        agent = self._agents.get(decision.agent)
        if agent is not None and agent.manifest.breaker is not None:
            self.store.breaker_record(
                decision.agent,
                agent.manifest.breaker,
                ok=ok,
                now=self.clock.timestamp(),
                probe=decision.breaker_probe,
            )

    def release(self, decision: Decision) -> None:
        """Give back the budget of an allowed call that did not run."""
        self.store.release(_reservation_of(decision))
        if decision.breaker_probe:
            self.store.breaker_return_probe(decision.agent)

    def record_usage(self, run_id: str, *, tokens: int = 0, usd: float = 0.0) -> None:
        """Count model usage (tokens, cost) against a run's budgets."""
        self.store.add_usage(run_id, Amounts(tokens=tokens, usd=usd), self.clock.timestamp())

    def kill(self, scope: str = "all", *, by: str, reason: str) -> None:
        """Engage a kill switch: ``all``, ``agent:NAME`` or ``tool:NAME``."""
        self.store.set_kill(
            _scope(scope), engaged=True, by=by, reason=reason, at=self.clock.timestamp()
        )

    def unkill(self, scope: str = "all", *, by: str, reason: str = "") -> None:
        """Lift a kill switch."""
        self.store.set_kill(
            _scope(scope), engaged=False, by=by, reason=reason, at=self.clock.timestamp()
        )

    def end_run(
        self,
        run_id: str,
        *,
        status: RunStatus = RunStatus.SUCCEEDED,
        outcome: str | None = None,
        reason: str | None = None,
    ) -> None:
        """End a run: a durable store records its status and outcome (audited); then the
        run's budget ledger, loop counts and fact cache are forgotten (the agent's history
        stays). Decisions for the same run id afterwards start a fresh ledger."""
        durable = self._durable()
        if durable is not None:
            durable.end_run(
                run_id, status, at=self.clock.timestamp(), outcome=outcome, reason=reason
            )
        self.store.forget_run(run_id)

    def new_run_id(self) -> str:
        return self.ids.new_id("run")

    def agent(self, name: str) -> AgentManifest | None:
        found = self._agents.get(name)
        return found.manifest if found else None

    @property
    def agents(self) -> list[AgentManifest]:
        return [a.manifest for a in self._agents.values()]

    def _deny(
        self,
        call: ToolCall,
        started: int,
        now: float,
        stage: Stage,
        code: str,
        reason: str,
        *,
        stop_run: bool = False,
        extra: Mapping[str, Any] | None = None,
        args: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Decision:
        """The decision for a check that stops the call before the policy stage."""
        if args is None and inputs is not None:  # stopped before the contract validated them
            inputs = {**inputs, "raw_args": call.args}
        agent = self.agent(call.agent)
        if agent is not None:
            self.store.record_action(
                call.agent,
                ActionRecord(
                    at=now,
                    run_id=call.run_id,
                    tool=call.tool,
                    outcome="deny",
                    args=args or {},
                ),
            )
        return Decision(
            outcome=Outcome.DENY,
            stage=stage,
            code=code,
            reasons=(reason,),
            rules=(),
            policy_revision=self.policies.revision,
            agent=call.agent,
            tool=call.tool,
            run_id=call.run_id,
            mode=agent.mode.value if agent else "",
            args=args,
            fingerprint=fingerprint,
            stop_run=stop_run,
            decided_at=now,
            latency_ns=time.perf_counter_ns() - started,
            extra=extra or {},
            inputs=inputs,
        )

    def _action_error(self, manifest: AgentManifest, now: float) -> None:
        if manifest.breaker is not None:
            self.store.breaker_record(
                manifest.name, manifest.breaker, ok=False, now=now, probe=False
            )


def _scope(scope: str) -> str:
    try:
        return parse_scope(scope)
    except ValueError as exc:
        raise GateError("W-GATE-001", str(exc)) from None


def _reservation_of(decision: Decision) -> Reservation:
    if not decision.allowed or not isinstance(decision.reservation, Reservation):
        raise GateError("W-GATE-001", "only an allowed decision holds a budget reservation")
    return decision.reservation


def _fingerprint(tool: str, args: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json([tool, args])).hexdigest()


def _oversize(args: Mapping[str, Any], limits: Limits) -> str | None:
    """The first size limit the raw arguments break, or None. Iterative: no recursion."""
    max_str, max_items = limits.max_string_length, limits.max_list_length
    if type(args) is dict:  # the common case: a flat object of scalars, checked inline
        flat = cast(dict[str, Any], args)
        if len(flat) > max_items:
            return f"an object of {len(flat)} fields exceeds the limit of {max_items}"
        nested = False
        value: Any
        for value in flat.values():
            if isinstance(value, str):
                if len(value) > max_str:
                    return f"a string of {len(value)} characters exceeds the limit of {max_str}"
            elif value.__class__ not in _SCALARS:
                nested = True
        if not nested:
            return None
    elif not isinstance(args, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        return None  # the contract check reports the wrong type
    stack: list[tuple[Any, int]] = [(args, 1)]
    max_depth = limits.max_depth
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > max_str:
                return f"a string of {len(value)} characters exceeds the limit of {max_str}"
        elif isinstance(value, Mapping | list | tuple):
            if depth > max_depth:
                return f"arguments nest deeper than {max_depth}"
            items: Iterable[Any] = (
                cast(Mapping[str, Any], value).values()
                if isinstance(value, Mapping)
                else cast(list[Any], value)
            )
            size = len(cast(Any, value))
            if size > max_items:
                return f"a list or object of {size} items exceeds the limit of {max_items}"
            item: Any
            for item in items:
                if isinstance(item, str | Mapping | list | tuple):
                    stack.append((cast(Any, item), depth + 1))
    return None


_SCALARS = frozenset({int, float, bool, type(None)})
