"""Explain one call: every rule considered, and why it matched or not.

For each policy covering the call, in order, each rule is evaluated on its own. A rule's
condition is shown with the value of every clause of its top-level ``and`` / ``or`` and
of every bare name it reads, so a reader sees exactly which part failed. The combined
result is the same one `PolicySet.evaluate` returns.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.facts import FactError
from warden.history import HistoryView
from warden.policy.evaluate import (
    AgentView,
    NowView,
    PolicyResult,
    PolicySet,
    RunView,
    Scope,
    describe_fault,
    safe_repr,
)
from warden.policy.expr import compile_condition
from warden.policy.model import Rule, make_rule

__all__ = ["ClauseTrace", "PolicyTrace", "RuleTrace", "explain"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ClauseTrace:
    source: str
    value: str
    """The clause's value, or ``error: ...``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleTrace:
    id: str
    location: str
    condition: str
    outcome: str
    """What the rule says when it matches (allow, deny, needs_approval, redact)."""
    status: str
    """``matched``, ``not matched``, ``error: ...`` or ``not reached``."""
    decided: bool
    """True for the rule that decided its policy (the first match)."""
    clauses: tuple[ClauseTrace, ...]
    names: tuple[tuple[str, str], ...]
    """Bare names the condition reads, with their values (or where they were missing)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyTrace:
    id: str
    file: str
    origin: str
    rules: tuple[RuleTrace, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    policies: tuple[PolicyTrace, ...]
    result: PolicyResult


def explain(
    policies: PolicySet,
    tool: str,
    *,
    args: Mapping[str, Any],
    agent: AgentView,
    run: RunView,
    context: Mapping[str, Any],
    facts: Mapping[str, Any],
    now: NowView,
    history: HistoryView,
) -> Explanation:
    scope = Scope(args, context, facts)
    call = (scope, args, agent, run, context, facts, now, history)
    traces: list[PolicyTrace] = []
    for policy in policies.covering(tool, agent.name):
        decided = False
        rules: list[RuleTrace] = []
        for rule in (*policy.rules, *policy.redact_rules):
            is_redact = rule.outcome is None
            if decided and not is_redact:
                rules.append(_trace(rule, "not reached", False, (), ()))
                continue
            status = _status(rule, call)
            decides = status == "matched" and not is_redact
            decided = decided or decides or status.startswith("error")
            rules.append(_trace(rule, status, decides, _clauses(rule, call), _names(rule, scope)))
        traces.append(
            PolicyTrace(id=policy.id, file=policy.file, origin=policy.origin, rules=tuple(rules))
        )
    result = policies.evaluate(
        tool,
        args=args,
        agent=agent,
        run=run,
        context=context,
        facts=facts,
        now=now,
        history=history,
    )
    return Explanation(policies=tuple(traces), result=result)


def _status(rule: Rule, call: tuple[Any, ...]) -> str:
    try:
        return "matched" if rule.test(*call) else "not matched"
    except FactError as exc:
        return f"error: {exc}"
    except Exception as exc:
        return f"error: {describe_fault(exc)}"


def _trace(
    rule: Rule,
    status: str,
    decided: bool,
    clauses: tuple[ClauseTrace, ...],
    names: tuple[tuple[str, str], ...],
) -> RuleTrace:
    outcome = rule.outcome.value if rule.outcome is not None else "redact " + ", ".join(rule.redact)
    if rule.approval is not None:
        outcome += f" ({rule.approval})"
    return RuleTrace(
        id=rule.ref.id,
        location=f"{rule.ref.file}:{rule.ref.line}",
        condition=rule.source,
        outcome=outcome,
        status=status,
        decided=decided,
        clauses=clauses,
        names=names,
    )


def _clauses(rule: Rule, call: tuple[Any, ...]) -> tuple[ClauseTrace, ...]:
    if rule.condition is None:
        return ()
    tree = ast.parse(rule.condition.source.strip(), mode="eval").body
    if not isinstance(tree, ast.BoolOp):
        return ()
    out: list[ClauseTrace] = []
    for part in tree.values:
        source = ast.unparse(part)
        cond = compile_condition(source, file=rule.ref.file, line=rule.ref.line)
        probe = make_rule(ref=rule.ref, condition=cond, outcome=rule.outcome, reason="")
        try:
            value = safe_repr(probe.test(*call))
        except Exception as exc:
            value = f"error: {describe_fault(exc)}"
        out.append(ClauseTrace(source=source, value=value))
    return tuple(out)


def _names(rule: Rule, scope: Scope) -> tuple[tuple[str, str], ...]:
    if rule.condition is None:
        return ()
    shown: list[tuple[str, str]] = []
    for name in sorted(rule.condition.names):
        try:
            shown.append((name, safe_repr(scope[name])))
        except Exception as exc:
            shown.append((name, f"missing ({describe_fault(exc)})"))
    return tuple(shown)
