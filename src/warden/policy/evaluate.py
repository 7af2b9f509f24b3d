"""Evaluate a proposed call against the loaded policy set.

Semantics (DESIGN.md, "Policies"):

- only policies that cover the tool (and agent) take part;
- within one policy, the first matching rule decides; a policy where nothing matched
  abstains;
- across policies the strictest outcome wins: deny > needs_approval > allow;
- nothing matched anywhere, or no policy covers the tool: deny (W-POL-102);
- a condition that cannot be evaluated (a missing name, a type mismatch): deny (W-POL-103);
- a fact provider that fails or times out: deny (W-POL-104).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from warden.decision import Outcome
from warden.facts import FactError, FactView, UnknownName
from warden.history import HistoryView
from warden.policy.model import CompiledPolicy, Rule
from warden.policy.plan import Plan, PolicyResult, build_plan, combine_rules, nothing_matched

__all__ = [
    "AgentView",
    "NowView",
    "Plan",
    "PolicyResult",
    "PolicySet",
    "PolicySource",
    "RunView",
    "Scope",
]


class Scope(dict[str, Any]):
    """Bare names in a condition: an argument, else a context value, else a fact."""

    __slots__ = ("_context", "_facts")

    def __init__(
        self, args: Mapping[str, Any], context: Mapping[str, Any], facts: Mapping[str, Any]
    ) -> None:
        super().__init__(args)
        self._context = context
        self._facts = facts

    def __missing__(self, key: str) -> Any:
        if key in self._context:
            return self._context[key]
        return self._facts[key]


class AgentView:
    """``agent`` in a condition."""

    __slots__ = ("autonomy", "mode", "name", "owner", "tags", "version")

    def __init__(
        self,
        *,
        name: str,
        version: str = "",
        owner: str = "",
        mode: str = "act",
        autonomy: str = "",
        tags: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.version = version
        self.owner = owner
        self.mode = mode
        self.autonomy = autonomy
        self.tags = tuple(tags)


class RunView(NamedTuple):
    """``run`` in a condition: the run's figures when the call was proposed.

    A tuple, so the gate can pass ``(id, calls, spend, tokens, elapsed, tainted)`` without
    building an object; conditions read it by index (``run.calls`` compiles to ``run[1]``).
    """

    id: str
    calls: int = 0
    """Tool calls so far (settled and reserved), not counting this one."""
    spend: float = 0.0
    """USD spent so far."""
    tokens: int = 0
    """Model tokens used so far."""
    elapsed: float = 0.0
    """Seconds since the run's first call."""
    tainted: bool = False
    """True once untrusted content entered the run's context."""


class NowView:
    """``now`` in a condition, from the injected clock: ``now.hour``, ``now.weekday`` ..."""

    __slots__ = ("_dt", "timestamp")

    def __init__(self, timestamp: float) -> None:
        self.timestamp = timestamp
        self._dt: datetime | None = None

    def _at(self) -> datetime:
        if self._dt is None:
            self._dt = datetime.fromtimestamp(self.timestamp, UTC)
        return self._dt

    @property
    def hour(self) -> int:
        return self._at().hour

    @property
    def minute(self) -> int:
        return self._at().minute

    @property
    def weekday(self) -> int:
        """0 is Monday, 6 is Sunday."""
        return self._at().weekday()

    @property
    def date(self) -> str:
        return self._at().date().isoformat()

    @property
    def iso(self) -> str:
        return self._at().isoformat()


class PlanTable(dict[str, Plan]):
    """One agent's compiled plans by tool name; a missing tool is compiled on first read."""

    def __init__(self, policies: PolicySet, agent: str) -> None:
        super().__init__()
        self._policies = policies
        self._agent = agent
        self._lock = threading.Lock()

    def __missing__(self, tool: str) -> Plan:
        with self._lock:
            found = self.get(tool)  # another thread may have built it meanwhile
            if found is None:
                found = self[tool] = self._policies.build(tool, self._agent)
            return found


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicySource:
    """One file a policy set was built from: what its revision hashes, kept so the set can
    be rebuilt later (`warden replay` under a recorded revision)."""

    name: str
    """The file as the project names it (``policies/refunds.yaml``)."""
    text: str
    """Its text, exactly as read."""
    kind: str = "policy"
    """``policy`` (a policy file) or ``manifest`` (an agent manifest whose per-tool
    shorthands became policies)."""


class PolicySet:
    """The loaded policies, identified by `revision` (a content hash).

    `fields` maps tool names to their argument names; with it, plans resolve a bare name
    that is an argument without looking anywhere else. `texts` are the sources the
    revision hashes (empty for a set built by hand).
    """

    def __init__(
        self,
        policies: Sequence[CompiledPolicy],
        *,
        revision: str,
        sources: Sequence[str] = (),
        fields: Mapping[str, frozenset[str]] | None = None,
        texts: Sequence[PolicySource] = (),
    ) -> None:
        self.policies = tuple(policies)
        self.revision = revision
        self.sources = tuple(sources)
        self.texts = tuple(texts)
        self.fields = dict(fields) if fields is not None else None
        self._tables: dict[str, PlanTable] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.policies)

    @property
    def rule_count(self) -> int:
        return sum(len(p.rules) + len(p.redact_rules) for p in self.policies)

    def covering(self, tool: str, agent: str) -> tuple[CompiledPolicy, ...]:
        return self.plan(tool, agent).policies

    def plan(self, tool: str, agent: str) -> Plan:
        """The compiled decision for `tool` called by `agent` (built once, then cached)."""
        return self.plans(agent)[tool]

    def plans(self, agent: str) -> PlanTable:
        """`agent`'s plans by tool: ``table[tool]`` compiles on first use, then is a dict read.

        Hot paths keep the table (the gate keeps one per agent) and index it per call.
        """
        table = self._tables.get(agent)
        if table is None:
            with self._lock:
                table = self._tables.setdefault(agent, PlanTable(self, agent))
        return table

    def build(self, tool: str, agent: str) -> Plan:
        """Compile the plan for (tool, agent) afresh; `plans` caches what this returns."""
        covering = [p for p in self.policies if p.covers(tool, agent)]
        fields = self.fields.get(tool) if self.fields is not None else None
        return build_plan(
            tool,
            covering,
            fields,
            on_error=_evaluate_slow,
            on_fact_error=_fact_failed,
            redact=_add_redactions,
        )

    def evaluate(
        self,
        tool: str,
        *,
        args: Mapping[str, Any],
        agent: AgentView,
        run: RunView | None,
        context: Mapping[str, Any],
        facts: FactView | Mapping[str, Any],
        now: NowView | None,
        history: HistoryView | None,
    ) -> PolicyResult:
        """Decide the policy stage for one call (views the plan does not use may be None).

        Hot paths call ``plan(tool, agent).decide(...)`` directly, as the gate does.
        """
        return self.plan(tool, agent.name).decide(args, context, facts, agent, run, now, history)


def _fact_failed(exc: Exception, redact: frozenset[str]) -> PolicyResult:
    return PolicyResult(
        outcome=Outcome.DENY,
        code="W-POL-104",
        reasons=(f"fact provider failed: {exc}",),
        rules=(),
        redact_fields=redact,
    )


def _add_redactions(
    result: PolicyResult, rules: Sequence[Rule], call: tuple[Any, ...]
) -> PolicyResult:
    args, context, facts, agent, run, now, history = call
    extra = _redactions(
        rules, (Scope(args, context, facts), args, agent, run, context, facts, now, history)
    )
    if extra - result.redact_fields:
        return replace(result, redact_fields=result.redact_fields | extra)
    return result


def _evaluate_slow(
    policies: Sequence[CompiledPolicy], redact: frozenset[str], plan_call: tuple[Any, ...]
) -> PolicyResult:
    """Rule by rule, for a call the plan could not decide: names the rule that failed."""
    args, context, facts, agent, run, now, history = plan_call
    call = (Scope(args, context, facts), args, agent, run, context, facts, now, history)
    fired: list[Rule] = []
    for policy in policies:
        try:
            index: int = policy.match(*call)
        except FactError as exc:
            return _failure("W-POL-104", str(exc), policy, call, redact)
        except Exception as exc:  # any evaluation fault fails closed
            return _failure("W-POL-103", describe_fault(exc), policy, call, redact)
        if index >= 0:
            rule = policy.rules[index]
            if rule.outcome is Outcome.DENY:  # nothing is stricter: stop here
                return combine_rules([rule], redact)
            fired.append(rule)
    if not fired:
        return nothing_matched(policies, redact)
    return combine_rules(fired, redact)


def _redactions(rules: Sequence[Rule], call: tuple[Any, ...]) -> frozenset[str]:
    fields: set[str] = set()
    for rule in rules:
        try:
            hit = rule.test(*call)
        except Exception:
            hit = True  # cannot tell: redact, the safe side for privacy
        if hit:
            fields.update(rule.redact)
    return frozenset(fields)


def _failure(
    code: str, message: str, policy: CompiledPolicy, call: tuple[Any, ...], redact: frozenset[str]
) -> PolicyResult:
    """Find which rule could not be evaluated, for the reason's file:line."""
    culprit: Rule | None = None
    for rule in policy.rules:
        try:
            if rule.test(*call):
                break
        except Exception as exc:
            culprit = rule
            if isinstance(exc, FactError):
                message = str(exc)
            elif code == "W-POL-103":
                message = describe_fault(exc)
            break
    where = f" in rule {culprit.ref}" if culprit else f" in {policy.file}"
    return PolicyResult(
        outcome=Outcome.DENY,
        code=code,
        reasons=(f"condition could not be evaluated{where}: {message}",)
        if code == "W-POL-103"
        else (f"fact provider failed{where}: {message}",),
        rules=(culprit.ref,) if culprit else (),
        redact_fields=redact,
    )


def safe_repr(value: object, limit: int = 80) -> str:
    """repr() that never raises (a 5,000-digit int cannot be printed) and stays short."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_fault(exc: BaseException) -> str:
    """A short, always-printable description of why a condition could not be evaluated."""
    try:
        return _describe_unsafe(exc)
    except Exception:
        return type(exc).__name__


def _describe_unsafe(exc: BaseException) -> str:
    if isinstance(exc, UnknownName):  # explains itself
        return str(exc)
    if isinstance(exc, KeyError):  # a missing key in args, context or nested data
        key = exc.args[0] if exc.args else None
        return f"no value named {safe_repr(key)} (not an argument, context value or fact)"
    return f"{type(exc).__name__}: {exc}"
