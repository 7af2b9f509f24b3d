"""Policy files: their YAML schema, and the compiled rules the evaluator runs.

A policy file (seed-compatible)::

    policy:
      tool: create_refund            # or tools: [a, b]; leave out for every tool
      agents: [support_refund_agent] # optional: only these agents
      rules:
        - if: "amount_usd <= 50 and customer_tier in ['standard', 'pro']"
          allow: true
        - if: "amount_usd > 50"
          require_approval: support_manager     # or {roles: [a, b], count: 2}
        - if: "facts.chargeback_last_180d"
          deny: "customer had a chargeback in the last 180 days"
        - if: "amount_usd > 1000"
          redact: [card_number]                 # does not decide; evaluation goes on
      log:
        redact_fields: [card_number, bank_account]
        retain_days: 365

Within one file the first matching rule decides (redact rules only add fields).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warden.decision import ApprovalRequirement, Outcome, RuleRef
from warden.errors import PolicyError
from warden.policy.expr import Condition, compile_condition, evaluator_globals
from warden.yamlsource import YamlDoc, config_error_from_validation

__all__ = [
    "CompiledPolicy",
    "LogSettings",
    "Matcher",
    "Rule",
    "build_policy",
    "compile_policy_doc",
]


# --- the YAML schema --------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _ApprovalSpec(_Strict):
    role: str | None = None
    roles: list[str] | None = None
    count: int = Field(default=1, ge=1, le=10)


class _LogSpec(_Strict):
    redact_fields: list[str] = []
    retain_days: int | None = Field(default=None, ge=1)


class _RuleSpec(_Strict):
    id: str | None = None
    if_: Any = Field(default=None, alias="if")
    allow: bool | None = None
    deny: str | bool | None = None
    require_approval: str | _ApprovalSpec | None = None
    redact: list[str] | None = None
    reason: str | None = None
    description: str | None = None
    log: _LogSpec | None = None  # the seeds also write `- log: {...}` inside rules

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str | None) -> str | None:
        if v is not None and (not v or len(v) > 120 or any(c.isspace() for c in v)):
            raise ValueError("a rule id is 1-120 characters with no spaces")
        return v


class _PolicySpec(_Strict):
    id: str | None = None
    description: str | None = None
    tool: str | None = None
    tools: list[str] | None = None
    agents: list[str] | None = None
    rules: list[_RuleSpec] = Field(min_length=1)
    log: _LogSpec | None = None


class _PolicyFileSpec(_Strict):
    policy: _PolicySpec


# --- compiled form ----------------------------------------------------------------------

Matcher = Callable[..., Any]
"""``(_E, args, agent, run, context, facts, now, history) -> int | bool``"""

_PARAMS = "_E, args, agent, run, context, facts, now, history"


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """One compiled rule."""

    ref: RuleRef
    """Its id and file:line."""
    condition: Condition | None
    """None for a rule that always matches."""
    outcome: Outcome | None
    """allow / deny / needs_approval; None for a redact rule."""
    reason: str
    """What the decision says when this rule fires."""
    approval: ApprovalRequirement | None = None
    redact: tuple[str, ...] = ()
    test: Matcher = field(repr=False, compare=False, default=lambda *a: True)  # pyright: ignore[reportUnknownLambdaType]
    """This rule's condition alone, for explain and for locating a failure."""

    @property
    def source(self) -> str:
        return self.condition.source if self.condition else "(always)"


@dataclass(frozen=True, kw_only=True, slots=True)
class LogSettings:
    redact_fields: frozenset[str] = frozenset()
    retain_days: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledPolicy:
    """One policy: its scope, its decisive rules and its compiled first-match function."""

    id: str
    file: str
    line: int
    tools: frozenset[str] | None
    """Tools it covers; None for every tool."""
    agents: frozenset[str] | None
    """Agents it covers; None for every agent."""
    rules: tuple[Rule, ...]
    """Decisive rules, in order."""
    redact_rules: tuple[Rule, ...]
    log: LogSettings
    match: Matcher = field(repr=False, compare=False)
    """Index of the first decisive rule that matches, or -1."""
    origin: str = "policy"
    """``policy`` for a policy file, ``manifest`` for rules derived from a manifest."""
    tool_lines: Mapping[str, tuple[int, str]] = field(default_factory=dict[str, tuple[int, str]])
    """Where each named tool is written: (line, field), for errors about unknown tools."""

    def covers(self, tool: str, agent: str) -> bool:
        return (self.tools is None or tool in self.tools) and (
            self.agents is None or agent in self.agents
        )


def _compile_function(body: list[str], constants: dict[str, Any], name: str) -> Matcher:
    source = f"def _match({_PARAMS}):\n" + "\n".join(f"    {line}" for line in body)
    namespace = evaluator_globals()
    namespace.update(constants)
    # The body is built only from conditions that passed the safe-subset check and were
    # re-serialised from their checked syntax tree; the function gets no builtins.
    exec(compile(source, name, "exec"), namespace)  # noqa: S102
    return namespace["_match"]


def _matcher(rules: Sequence[Rule], name: str) -> Matcher:
    body: list[str] = []
    constants: dict[str, Any] = {}
    for i, rule in enumerate(rules):
        if rule.condition is None:
            body.append(f"return {i}")
            break
        constants.update(rule.condition.constants)
        body.append(f"if {rule.condition.python}: return {i}")
    else:
        body.append("return -1")
    return _compile_function(body, constants, name)


def _single(condition: Condition | None, name: str) -> Matcher:
    if condition is None:
        return _compile_function(["return True"], {}, name)
    return _compile_function([f"return {condition.python}"], dict(condition.constants), name)


def make_rule(
    *,
    ref: RuleRef,
    condition: Condition | None,
    outcome: Outcome | None,
    reason: str,
    approval: ApprovalRequirement | None = None,
    redact: tuple[str, ...] = (),
) -> Rule:
    return Rule(
        ref=ref,
        condition=condition,
        outcome=outcome,
        reason=reason,
        approval=approval,
        redact=redact,
        test=_single(condition, f"<rule {ref.id} {ref.file}:{ref.line}>"),
    )


def build_policy(
    *,
    id: str,
    file: str,
    line: int,
    tools: frozenset[str] | None,
    agents: frozenset[str] | None,
    rules: Sequence[Rule],
    log: LogSettings | None = None,
    origin: str = "policy",
    tool_lines: Mapping[str, tuple[int, str]] | None = None,
) -> CompiledPolicy:
    decisive = tuple(r for r in rules if r.outcome is not None)
    redacts = tuple(r for r in rules if r.outcome is None)
    return CompiledPolicy(
        id=id,
        file=file,
        line=line,
        tools=tools,
        agents=agents,
        rules=decisive,
        redact_rules=redacts,
        log=log or LogSettings(),
        match=_matcher(decisive, f"<policy {id} {file}>"),
        origin=origin,
        tool_lines=tool_lines or {},
    )


def compile_policy_doc(doc: YamlDoc, *, default_id: str) -> CompiledPolicy:
    """Validate and compile one policy file. Raises PolicyError with file:line:field."""
    data = doc.mapping()
    if data is None or "policy" not in data:
        raise doc.error(
            "W-CFG-004",
            "a policy file needs a top-level `policy:` mapping",
            hint="start the file with `policy:` and give it `rules:`",
            cls=PolicyError,
        )
    try:
        spec = _PolicyFileSpec.model_validate(data).policy
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, cls=PolicyError) from None

    policy_id = spec.id or default_id
    if spec.tool is not None and spec.tools is not None:
        raise doc.error(
            "W-CFG-004", "give `tool` or `tools`, not both", ("policy", "tools"), cls=PolicyError
        )
    tools = [spec.tool] if spec.tool is not None else spec.tools
    redact_fields: set[str] = set(spec.log.redact_fields) if spec.log else set()
    retain = spec.log.retain_days if spec.log else None

    rules: list[Rule] = []
    for n, rs in enumerate(spec.rules, start=1):
        loc = ("policy", "rules", n - 1)
        outcomes = [
            name
            for name, value in (
                ("allow", rs.allow),
                ("deny", rs.deny),
                ("require_approval", rs.require_approval),
                ("redact", rs.redact),
            )
            if value is not None
        ]
        if rs.log is not None and not outcomes and rs.if_ is None:
            redact_fields.update(rs.log.redact_fields)  # the seeds' `- log:` list item
            retain = rs.log.retain_days or retain
            continue
        if len(outcomes) != 1:
            found = ", ".join(outcomes) or "none"
            raise doc.error(
                "W-POL-004",
                f"a rule needs exactly one outcome (found: {found})",
                loc,
                cls=PolicyError,
            )
        if "if_" in rs.model_fields_set and rs.if_ is None:
            raise doc.error(
                "W-POL-001",
                "the condition is empty",
                (*loc, "if"),
                cls=PolicyError,
                hint="write a condition, or leave out `if:` for a rule that always matches",
            )
        if rs.log is not None:
            raise doc.error(
                "W-CFG-004",
                "`log:` on a rule that decides is not applied",
                (*loc, "log"),
                cls=PolicyError,
                hint="put `log:` under `policy:`, or as a list item of its own",
            )
        rule_id = rs.id or f"{policy_id}#{n}"
        cond_line = doc.line_of((*loc, "if")) or doc.line_of(loc) or 0
        condition = (
            None if rs.if_ is None else compile_condition(rs.if_, file=doc.file, line=cond_line)
        )
        ref = RuleRef(id=rule_id, file=doc.file, line=doc.line_of(loc) or 0)
        rules.append(_rule_from_spec(doc, rs, loc, ref, condition))
    decisive = [r for r in rules if r.outcome is not None]
    for earlier in decisive[:-1]:
        if earlier.condition is None:
            # an unconditional decisive rule hides everything after it: say so at load
            raise PolicyError(
                "W-POL-004",
                f"rule {earlier.ref.id} has no `if:` and always matches, "
                "so the rules after it never run",
                file=doc.file,
                line=earlier.ref.line,
                hint="give it an `if:` or move it to the end of the list",
            )
    return build_policy(
        id=policy_id,
        file=doc.file,
        line=doc.line_of(("policy",)) or 1,
        tools=frozenset(tools) if tools is not None and "*" not in tools else None,
        agents=frozenset(spec.agents) if spec.agents is not None else None,
        rules=rules,
        log=LogSettings(redact_fields=frozenset(redact_fields), retain_days=retain),
        tool_lines=_tool_lines(doc, spec),
    )


def _tool_lines(doc: YamlDoc, spec: _PolicySpec) -> dict[str, tuple[int, str]]:
    if spec.tool is not None:
        return {spec.tool: (doc.line_of(("policy", "tool")) or 0, "policy.tool")}
    return {
        name: (doc.line_of(("policy", "tools", i)) or 0, f"policy.tools.{i}")
        for i, name in enumerate(spec.tools or ())
    }


def _rule_from_spec(
    doc: YamlDoc,
    rs: _RuleSpec,
    loc: tuple[str | int, ...],
    ref: RuleRef,
    condition: Condition | None,
) -> Rule:
    if rs.allow is not None:
        if rs.allow is not True:
            raise doc.error(
                "W-POL-004",
                "`allow: false` is not an outcome",
                (*loc, "allow"),
                cls=PolicyError,
                hint="write `deny: REASON` instead",
            )
        return make_rule(
            ref=ref,
            condition=condition,
            outcome=Outcome.ALLOW,
            reason=rs.reason or f"allowed by {ref.id}",
        )
    if rs.deny is not None:
        if rs.deny is False:
            raise doc.error(
                "W-POL-004", "`deny: false` is not an outcome", (*loc, "deny"), cls=PolicyError
            )
        text = rs.deny if isinstance(rs.deny, str) else rs.reason or f"denied by {ref.id}"
        return make_rule(ref=ref, condition=condition, outcome=Outcome.DENY, reason=text)
    if rs.require_approval is not None:
        req = rs.require_approval
        if isinstance(req, str):
            approval = ApprovalRequirement(roles=(req,), count=1)
        else:
            listed: list[str] = [*([req.role] if req.role else []), *(req.roles or [])]
            roles = tuple(dict.fromkeys(listed))
            if not roles:
                raise doc.error(
                    "W-CFG-004",
                    "require_approval needs a role or roles",
                    (*loc, "require_approval"),
                    cls=PolicyError,
                )
            approval = ApprovalRequirement(roles=roles, count=max(req.count, len(roles)))
        return make_rule(
            ref=ref,
            condition=condition,
            outcome=Outcome.NEEDS_APPROVAL,
            reason=rs.reason or f"needs approval by {approval} ({ref.id})",
            approval=approval,
        )
    assert rs.redact is not None
    return make_rule(
        ref=ref,
        condition=condition,
        outcome=None,
        reason=rs.reason or f"redacts {', '.join(rs.redact)}",
        redact=tuple(rs.redact),
    )
