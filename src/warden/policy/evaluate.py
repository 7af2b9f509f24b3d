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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from warden.decision import ApprovalRequirement, Outcome, RuleRef
from warden.facts import FactError, FactView
from warden.history import HistoryView
from warden.policy.model import CompiledPolicy, Rule

__all__ = [
    "AgentView",
    "NowView",
    "PolicyResult",
    "PolicySet",
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


class RunView:
    """``run`` in a condition: the run's figures when the call was proposed."""

    __slots__ = ("calls", "elapsed", "id", "spend", "tainted", "tokens")

    def __init__(
        self,
        *,
        id: str,
        calls: int = 0,
        spend: float = 0.0,
        tokens: int = 0,
        elapsed: float = 0.0,
        tainted: bool = False,
    ) -> None:
        self.id = id
        self.calls = calls
        """Tool calls so far (settled and reserved), not counting this one."""
        self.spend = spend
        """USD spent so far."""
        self.tokens = tokens
        """Model tokens used so far."""
        self.elapsed = elapsed
        """Seconds since the run's first call."""
        self.tainted = tainted
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


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyResult:
    """What the policy stage says about one call."""

    outcome: Outcome
    code: str | None
    reasons: tuple[str, ...]
    rules: tuple[RuleRef, ...]
    approval: ApprovalRequirement | None = None
    redact_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Covering:
    policies: tuple[CompiledPolicy, ...]
    static_redact: frozenset[str]
    has_redact_rules: bool


class PolicySet:
    """The loaded policies, identified by `revision` (a content hash)."""

    def __init__(
        self, policies: Sequence[CompiledPolicy], *, revision: str, sources: Sequence[str] = ()
    ) -> None:
        self.policies = tuple(policies)
        self.revision = revision
        self.sources = tuple(sources)
        self._covering: dict[tuple[str, str], _Covering] = {}

    def __len__(self) -> int:
        return len(self.policies)

    @property
    def rule_count(self) -> int:
        return sum(len(p.rules) + len(p.redact_rules) for p in self.policies)

    def covering(self, tool: str, agent: str) -> tuple[CompiledPolicy, ...]:
        return self._cover(tool, agent).policies

    def _cover(self, tool: str, agent: str) -> _Covering:
        key = (tool, agent)
        found = self._covering.get(key)
        if found is None:
            ps = tuple(p for p in self.policies if p.covers(tool, agent))
            found = _Covering(
                policies=ps,
                static_redact=frozenset[str]().union(*(p.log.redact_fields for p in ps)),
                has_redact_rules=any(p.redact_rules for p in ps),
            )
            self._covering[key] = found
        return found

    def evaluate(
        self,
        tool: str,
        *,
        args: Mapping[str, Any],
        agent: AgentView,
        run: RunView,
        context: Mapping[str, Any],
        facts: FactView | Mapping[str, Any],
        now: NowView,
        history: HistoryView,
    ) -> PolicyResult:
        cover = self._cover(tool, agent.name)
        if not cover.policies:
            return PolicyResult(
                outcome=Outcome.DENY,
                code="W-POL-102",
                reasons=(f"no policy covers tool {tool!r} for agent {agent.name!r}",),
                rules=(),
            )
        scope = Scope(args, context, facts)
        call = (scope, args, agent, run, context, facts, now, history)
        redact = cover.static_redact
        if cover.has_redact_rules:
            redact = redact | _redactions(cover.policies, call)

        best: Outcome | None = None
        fired: list[Rule] = []
        for policy in cover.policies:
            try:
                index: int = policy.match(*call)
            except FactError as exc:
                return _failure("W-POL-104", str(exc), policy, call, redact)
            except Exception as exc:  # any evaluation fault fails closed
                return _failure("W-POL-103", _describe(exc), policy, call, redact)
            if index < 0:
                continue
            rule = policy.rules[index]
            assert rule.outcome is not None
            if rule.outcome is Outcome.DENY:  # nothing is stricter: stop here
                return PolicyResult(
                    outcome=Outcome.DENY,
                    code="W-POL-101",
                    reasons=(rule.reason,),
                    rules=(rule.ref,),
                    redact_fields=redact,
                )
            fired.append(rule)
            if best is None or rule.outcome.strictness > best.strictness:
                best = rule.outcome

        if best is None:
            considered = sum(len(p.rules) for p in cover.policies)
            files = ", ".join(sorted({p.file for p in cover.policies}))
            return PolicyResult(
                outcome=Outcome.DENY,
                code="W-POL-102",
                reasons=(f"no rule matched ({considered} rules considered in {files})",),
                rules=(),
                redact_fields=redact,
            )
        deciding = [r for r in fired if r.outcome is best]
        approval: ApprovalRequirement | None = None
        if best is Outcome.NEEDS_APPROVAL:
            for r in deciding:
                if r.approval is not None:
                    approval = r.approval if approval is None else approval.merge(r.approval)
        return PolicyResult(
            outcome=best,
            code=None,
            reasons=tuple(r.reason for r in deciding),
            rules=tuple(r.ref for r in deciding),
            approval=approval,
            redact_fields=redact,
        )


def _redactions(policies: Sequence[CompiledPolicy], call: tuple[Any, ...]) -> frozenset[str]:
    fields: set[str] = set()
    for policy in policies:
        for rule in policy.redact_rules:
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
                message = _describe(exc)
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        # UnknownName explains itself; a plain KeyError is a missing key in args/context
        text = str(exc)
        return (
            text
            if text.startswith("no ")
            else (f"no value named {exc.args[0]!r} (not an argument, context value or fact)")
        )
    return f"{type(exc).__name__}: {exc}"
