"""Policy tests: ``*_test.yaml`` files beside the policies they test.

    # refunds_test.yaml, beside refunds.yaml
    tests:
      - name: small refund for a pro customer is allowed
        tool: create_refund
        args: {order_id: ord_100001, amount_usd: 30.0, reason: damaged}
        context: {customer_tier: pro}
        expect: allow              # allow | deny | needs_approval | suggest_only
        rule: refunds#1            # optional: the rule that must decide
        code: W-POL-102            # optional: the decision's code
        approvers: [support_manager]   # optional: roles the approval needs
        reason_contains: "..."     # optional

A case without ``agent:`` tests the policy file alone (the file named by ``policy:`` at
the top, by default the one whose name is the test file's without ``_test``). Optional
``facts``, ``run`` (``calls spend tokens elapsed tainted``), ``now`` (ISO time) and
``history`` (earlier actions) set up the rest of what conditions can read. A case *with*
``agent:`` goes through the project's whole gate (manifest shorthands, mode, budgets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warden.decision import Outcome
from warden.durations import parse_duration
from warden.errors import ConfigError, PolicyTestError
from warden.history import ActionRecord, HistoryView
from warden.policy.evaluate import AgentView, NowView, PolicyResult, PolicySet, RunView
from warden.policy.load import policy_set
from warden.tools.spec import describe_validation_error
from warden.yamlsource import config_error_from_validation, load_yaml

__all__ = [
    "CaseResult",
    "PolicyCase",
    "discover_test_files",
    "evaluate_case",
    "load_cases",
    "run_cases",
]

DEFAULT_NOW = "2026-01-01T09:00:00+00:00"


class _History(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str
    ago: str = "1h"
    outcome: str = "allow"
    args: dict[str, Any] = {}
    approved: bool = False
    same_run: bool = True


class _Run(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: int = 0
    spend: float = 0.0
    tokens: int = 0
    elapsed: float = 0.0
    tainted: bool = False


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    tool: str
    agent: str | None = None
    as_agent: str = "test-agent"
    args: dict[str, Any] = {}
    context: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    run: _Run = _Run()
    now: str = DEFAULT_NOW
    history: list[_History] = []
    expect: Outcome
    rule: str | None = None
    code: str | None = None
    approvers: list[str] | None = None
    reason_contains: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str | None = None
    tests: list[_Case] = Field(min_length=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyCase:
    """One test case, with where it is written."""

    spec: _Case
    file: str
    line: int
    policy_file: Path
    """The policy file a policy-level case evaluates."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseResult:
    case: PolicyCase
    passed: bool
    outcome: str
    """What the decision said."""
    problems: tuple[str, ...] = ()
    """Why it failed."""
    reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    code: str | None = None


def discover_test_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(p.rglob("*_test.yaml")) + sorted(p.rglob("*_test.yml")))
        elif p.is_file():
            found.append(p)
    return found


def load_cases(path: Path, *, display: str | None = None) -> list[PolicyCase]:
    doc = load_yaml(path, display=display)
    data = doc.mapping()
    if data is None:
        raise doc.error(
            "W-PTS-001", "a policy test file holds `tests:`, a list of cases", cls=PolicyTestError
        )
    try:
        spec = _File.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(
            doc, exc, cls=PolicyTestError, code="W-PTS-001"
        ) from None
    stem = path.stem.removesuffix("_test")
    target = path.parent / (spec.policy or f"{stem}{path.suffix}")
    needs_target = any(c.agent is None for c in spec.tests)
    if needs_target and not target.is_file():
        raise doc.error(
            "W-PTS-001",
            f"no policy file {target.name} beside this test file",
            ("policy",) if spec.policy else (),
            cls=PolicyTestError,
            hint="name the policy under test with `policy: FILE` at the top",
        )
    return [
        PolicyCase(spec=c, file=doc.file, line=doc.line_of(("tests", i)) or 0, policy_file=target)
        for i, c in enumerate(spec.tests)
    ]


def _timestamp(doc_file: str, line: int, text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyTestError(
            "W-PTS-001", f"now: {text!r} is not an ISO time", file=doc_file, line=line
        ) from None
    if when.tzinfo is None:
        raise PolicyTestError(
            "W-PTS-001",
            f"now: {text!r} has no timezone",
            file=doc_file,
            line=line,
            hint="write it like 2026-01-01T09:00:00+00:00",
        )
    return when.timestamp()


def _history(spec: _Case, now: float) -> list[ActionRecord]:
    """The case's earlier actions, oldest first, as history records."""
    records = [
        ActionRecord(
            at=now - parse_duration(h.ago),
            run_id="test-run" if h.same_run else "earlier-run",
            tool=h.tool,
            outcome=h.outcome,
            args=h.args,
            approved=h.approved,
        )
        for h in spec.history
    ]
    return sorted(records, key=lambda r: r.at)


def evaluate_case(
    policies: PolicySet, case: PolicyCase, *, args: Mapping[str, Any] | None = None
) -> PolicyResult:
    """Evaluate a policy-level case (no agent) against `policies`."""
    spec = case.spec
    now = _timestamp(case.file, case.line, spec.now)
    records = _history(spec, now)
    r = spec.run
    return policies.evaluate(
        spec.tool,
        args=args if args is not None else spec.args,
        agent=AgentView(name=spec.agent or spec.as_agent),
        run=RunView(
            id="test-run",
            calls=r.calls,
            spend=r.spend,
            tokens=r.tokens,
            elapsed=r.elapsed,
            tainted=r.tainted,
        ),
        context=spec.context,
        facts=spec.facts,
        now=NowView(now),
        history=HistoryView(records, run_id="test-run", tool=spec.tool, now=now),
    )


@dataclass(kw_only=True)
class _Runner:
    gate_factory: Any = None
    """``(case) -> Gate``: builds a fresh gate for a case that names an agent."""
    validate_args: Any = None
    """``(tool, args) -> dict``: validates args against the tool's contract, if known."""
    sets: dict[Path, PolicySet] = field(default_factory=dict[Path, PolicySet])


def run_cases(
    cases: Sequence[PolicyCase],
    *,
    gate_factory: Any = None,
    validate_args: Any = None,
    display: Any = None,
) -> list[CaseResult]:
    """Run every case. Raises PolicyTestError (W-PTS-002) when there is none."""
    if not cases:
        raise PolicyTestError("W-PTS-002", "no policy test case was found")
    runner = _Runner(gate_factory=gate_factory, validate_args=validate_args)
    return [_run_one(runner, c, display) for c in cases]


def _run_one(runner: _Runner, case: PolicyCase, display: Any) -> CaseResult:
    spec = case.spec
    try:
        if spec.agent is not None:
            if runner.gate_factory is None:
                raise PolicyTestError(
                    "W-PTS-001",
                    "a case with `agent:` needs a project (run inside one)",
                    file=case.file,
                    line=case.line,
                )
            return _check(case, _via_gate(runner.gate_factory(case), case))
        pset = runner.sets.get(case.policy_file)
        if pset is None:
            shown = display(case.policy_file) if display else str(case.policy_file)
            pset = runner.sets[case.policy_file] = policy_set(
                [load_yaml(case.policy_file, display=shown)]
            )
        args: Mapping[str, Any] = spec.args
        if runner.validate_args is not None:
            try:
                args = runner.validate_args(spec.tool, spec.args)
            except ValidationError as exc:
                path, message = describe_validation_error(exc)
                return CaseResult(
                    case=case,
                    passed=False,
                    outcome="error",
                    problems=(f"args break the {spec.tool} contract: {path}: {message}",),
                )
        result = evaluate_case(pset, case, args=args)
        return _check(
            case,
            (
                result.outcome.value,
                result.code,
                result.reasons,
                tuple(r.id for r in result.rules),
                tuple(result.approval.roles) if result.approval else (),
            ),
        )
    except ConfigError:
        raise
    except Exception as exc:  # a case that cannot run is a failed case, not a crash
        return CaseResult(
            case=case, passed=False, outcome="error", problems=(f"{type(exc).__name__}: {exc}",)
        )


def _via_gate(
    gate: Any, case: PolicyCase
) -> tuple[str, str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    from warden.budgets import Amounts  # the gate imports policies; import it only when needed
    from warden.gate import ToolCall

    spec = case.spec
    now = _timestamp(case.file, case.line, spec.now)
    gate.clock.set(spec.now)
    store = gate.store
    r = spec.run
    if r.calls or r.spend or r.tokens or r.elapsed:  # the run so far, as the store would hold it
        store.add_usage(
            "test-run", Amounts(calls=r.calls, usd=r.spend, tokens=r.tokens), now - r.elapsed
        )
    for record in _history(spec, now):
        store.record_action(spec.agent or "", record)
    d = gate.decide(
        ToolCall(
            agent=spec.agent or "",
            tool=spec.tool,
            run_id="test-run",
            args=spec.args,
            context=spec.context,
            facts=spec.facts,
        )
    )
    roles = tuple(d.approval.roles) if d.approval else ()
    return d.outcome.value, d.code, d.reasons, tuple(r.id for r in d.rules), roles


def _check(
    case: PolicyCase, got: tuple[str, str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
) -> CaseResult:
    outcome, code, reasons, rules, roles = got
    spec = case.spec
    problems: list[str] = []
    if outcome != spec.expect.value:
        problems.append(f"expected {spec.expect.value}, got {outcome}")
    if spec.code is not None and code != spec.code:
        problems.append(f"expected code {spec.code}, got {code}")
    if spec.rule is not None and spec.rule not in rules:
        problems.append(f"expected rule {spec.rule} to decide, got {', '.join(rules) or 'none'}")
    if spec.approvers is not None and sorted(spec.approvers) != sorted(roles):
        problems.append(f"expected approvers {spec.approvers}, got {list(roles)}")
    if spec.reason_contains is not None and not any(spec.reason_contains in r for r in reasons):
        problems.append(f"no reason contains {spec.reason_contains!r}")
    return CaseResult(
        case=case,
        passed=not problems,
        outcome=outcome,
        problems=tuple(problems),
        reasons=reasons,
        rules=rules,
        code=code,
    )
