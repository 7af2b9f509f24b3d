"""Agent manifests: who an agent is and what it may do, in YAML.

The seed's example is accepted as written::

    agent:
      name: support_refund_agent
      mode: suggest_then_act
      budgets:
        max_usd_per_task: 0.02
        max_tool_calls: 6
      permissions:
        allowed_tools: [lookup_customer, list_invoices, create_refund]
        create_refund:
          max_amount_usd: 100
          require_human_approval_over_usd: 50
          deny_if_chargeback_last_180d: true
      circuit_breakers:
        action_error_rate_max: 0.5%   # over 5 minutes
        on_trigger: downgrade_to_suggest_only

Per-tool shorthands under ``permissions.<tool>`` become policy rules that keep the
manifest's file:line (see `shorthand_policies`):

- ``max_<arg>: N`` / ``min_<arg>: N``  -> deny when the argument is above / below N;
- ``require_human_approval_over_<unit>: N`` -> approval when ``amount_<unit>`` (or
  ``<unit>``) is above N, by ``approvals.default_role``;
- ``deny_if_<name>: true`` -> deny when ``<name>`` (an argument, context value or fact) is
  true;
- ``require_approval: ROLE`` -> every call needs approval.

They only restrict: the policy files still have to allow the call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warden.breakers import BreakerConfig
from warden.budgets import BudgetLimits
from warden.canonical import content_hash
from warden.decision import ApprovalRequirement, Outcome, RuleRef
from warden.durations import parse_duration
from warden.errors import ManifestError
from warden.modes import AUTONOMY_MODES, Mode
from warden.policy.expr import compile_condition
from warden.policy.model import CompiledPolicy, Rule, build_policy, make_rule
from warden.yamlsource import YamlDoc, config_error_from_validation

__all__ = ["AgentManifest", "parse_manifest", "shorthand_policies"]


def _percent(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                return float(text[:-1]) / 100.0
            except ValueError:
                raise ValueError(f"not a percentage: {value!r}") from None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a rate: {value!r} (write e.g. 0.5% or 0.005)") from None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1:
        raise ValueError(f"{value} is above 1; write a percentage as '{value}%'")
    return value


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(
            f"not a duration: {value!r} (write e.g. 30s, 5m, 24h or a number of seconds)"
        )
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Budgets(_Strict):
    max_usd_per_task: float | None = Field(default=None, ge=0)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_wall_seconds: float | None = Field(default=None, gt=0)


class _Breakers(_Strict):
    action_error_rate_max: float = Field(ge=0, le=1)
    window: float = 300.0
    min_calls: int = Field(default=10, ge=1)
    cooldown: float = 60.0
    on_trigger: str = "downgrade_to_suggest_only"

    _rate = field_validator("action_error_rate_max", mode="before")(_percent)

    @field_validator("window", "cooldown", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> float:
        return _duration(v)

    @field_validator("on_trigger")
    @classmethod
    def _trigger(cls, v: str) -> str:
        if v != "downgrade_to_suggest_only":
            raise ValueError("the only trigger is downgrade_to_suggest_only")
        return v


class _Loops(_Strict):
    max_identical_calls: int = Field(default=3, ge=1)


class _Approvals(_Strict):
    default_role: str = "approver"


class _Agent(_Strict):
    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:-]+$")
    version: str = "0"
    owner: str = ""
    description: str = ""
    mode: Mode | None = None
    autonomy: str | None = None
    tags: list[str] = []
    budgets: _Budgets = _Budgets()
    permissions: dict[str, Any] = {}
    circuit_breakers: _Breakers | None = None
    loop_detection: _Loops = _Loops()
    approvals: _Approvals = _Approvals()
    model: dict[str, Any] | None = None

    @field_validator("autonomy")
    @classmethod
    def _level(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in AUTONOMY_MODES:
            raise ValueError("autonomy is one of L0, L1, L2, L3, L4")
        return v.upper() if v is not None else None


class _File(_Strict):
    agent: _Agent


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentManifest:
    """A validated agent manifest."""

    name: str
    version: str
    owner: str
    description: str
    mode: Mode
    """Effective mode (from `mode`, or mapped from `autonomy`; default suggest_then_act)."""
    autonomy: str | None
    tags: tuple[str, ...]
    allowed_tools: frozenset[str]
    budgets: BudgetLimits
    breaker: BreakerConfig | None
    max_identical_calls: int
    approver_role: str
    shorthands: Mapping[str, Mapping[str, Any]]
    """``permissions.<tool>`` mappings, by tool."""
    model: Mapping[str, Any] | None
    file: str
    doc: YamlDoc = field(repr=False)

    @property
    def revision(self) -> str:
        """Content hash of the manifest file as written."""
        return content_hash(self.doc.text)


def parse_manifest(doc: YamlDoc) -> AgentManifest:
    """Validate a manifest document. Raises ManifestError naming file, line and field."""
    data = doc.mapping()
    if data is None or "agent" not in data:
        raise doc.error(
            "W-CFG-004",
            "a manifest needs a top-level `agent:` mapping",
            cls=ManifestError,
            hint="start the file with `agent:` and give the agent a `name:`",
        )
    try:
        spec = _File.model_validate(data).agent
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, cls=ManifestError) from None

    mode = spec.mode
    if spec.autonomy is not None:
        mapped = AUTONOMY_MODES[spec.autonomy]
        if mode is not None and mode is not mapped:
            raise doc.error(
                "W-MAN-001",
                f"mode {mode.value} disagrees with autonomy {spec.autonomy} ({mapped.value})",
                ("agent", "autonomy"),
                cls=ManifestError,
            )
        mode = mapped
    mode = mode or Mode.SUGGEST_THEN_ACT

    perms = dict(spec.permissions)
    allowed_raw: Any = perms.pop("allowed_tools", [])
    names = cast(list[Any], allowed_raw) if isinstance(allowed_raw, list) else None
    if names is None or not all(isinstance(t, str) for t in names):
        raise doc.error(
            "W-CFG-004",
            "allowed_tools must be a list of tool names",
            ("agent", "permissions", "allowed_tools"),
            cls=ManifestError,
        )
    allowed = frozenset(cast(list[str], names))
    shorthands: dict[str, Mapping[str, Any]] = {}
    for tool_name, options in perms.items():
        loc = ("agent", "permissions", tool_name)
        if tool_name not in allowed:
            raise doc.error(
                "W-MAN-002",
                f"permissions for {tool_name!r}, which is not in allowed_tools",
                loc,
                cls=ManifestError,
                hint=f"add {tool_name} to allowed_tools, or remove this block",
            )
        if not isinstance(options, dict):
            raise doc.error(
                "W-MAN-002", "per-tool permissions must be a mapping", loc, cls=ManifestError
            )
        shorthands[tool_name] = options  # pyright: ignore[reportUnknownArgumentType]

    b = spec.budgets
    breaker = None
    if spec.circuit_breakers is not None:
        cb = spec.circuit_breakers
        breaker = BreakerConfig(
            error_rate_max=cb.action_error_rate_max,
            window_s=cb.window,
            min_calls=cb.min_calls,
            cooldown_s=cb.cooldown,
            on_trigger=cb.on_trigger,
        )
    manifest = AgentManifest(
        name=spec.name,
        version=spec.version,
        owner=spec.owner,
        description=spec.description,
        mode=mode,
        autonomy=spec.autonomy,
        tags=tuple(spec.tags),
        allowed_tools=allowed,
        budgets=BudgetLimits(
            max_usd=b.max_usd_per_task,
            max_tool_calls=b.max_tool_calls,
            max_tokens=b.max_tokens,
            max_wall_seconds=b.max_wall_seconds,
        ),
        breaker=breaker,
        max_identical_calls=spec.loop_detection.max_identical_calls,
        approver_role=spec.approvals.default_role,
        shorthands=shorthands,
        model=spec.model,
        file=doc.file,
        doc=doc,
    )
    # compile shorthands now (without tool fields) so a bad one fails at load
    shorthand_policies(manifest, fields={})
    return manifest


def _number(doc: YamlDoc, value: Any, loc: Sequence[str | int], key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise doc.error(
            "W-MAN-002", f"{key} takes a finite number, got {value!r}", loc, cls=ManifestError
        )
    return float(value)


def _check_arg(
    doc: YamlDoc,
    key: str,
    loc: Sequence[str | int],
    arg: str,
    tool_name: str,
    known: frozenset[str] | None,
) -> None:
    if not arg.isidentifier():
        raise doc.error(
            "W-MAN-002", f"{key}: {arg!r} is not an argument name", loc, cls=ManifestError
        )
    if known is not None and arg not in known:
        raise doc.error(
            "W-MAN-002",
            f"{key}: tool {tool_name!r} has no argument {arg!r} "
            f"(it has: {', '.join(sorted(known)) or 'none'})",
            loc,
            cls=ManifestError,
        )


def shorthand_policies(
    manifest: AgentManifest, *, fields: Mapping[str, frozenset[str]]
) -> list[CompiledPolicy]:
    """Compile a manifest's per-tool shorthands into one policy per tool, scoped to the agent.

    `fields` maps tool names to their argument names, to check that ``max_<arg>`` names a
    real argument; a tool missing from it is not checked.
    """
    doc = manifest.doc
    policies: list[CompiledPolicy] = []
    for tool_name, options in manifest.shorthands.items():
        known = fields.get(tool_name)
        denies: list[Rule] = []
        approvals: list[Rule] = []
        for key, value in options.items():
            loc = ("agent", "permissions", tool_name, key)
            line = doc.line_of(loc) or 0
            ref = RuleRef(id=f"{manifest.name}.{tool_name}.{key}", file=doc.file, line=line)

            def cond(source: str, _line: int = line) -> Any:
                return compile_condition(source, file=doc.file, line=_line)

            if key.startswith("require_human_approval_over_"):
                unit = key.removeprefix("require_human_approval_over_")
                limit = _number(doc, value, loc, key)
                arg = f"amount_{unit}" if known is None or f"amount_{unit}" in known else unit
                _check_arg(doc, key, loc, arg, tool_name, known)
                approval = ApprovalRequirement(roles=(manifest.approver_role,), count=1)
                approvals.append(
                    make_rule(
                        ref=ref,
                        condition=cond(f"args.{arg} > {limit!r}"),
                        outcome=Outcome.NEEDS_APPROVAL,
                        approval=approval,
                        reason=f"{arg} over {limit:g} needs approval by {manifest.approver_role}",
                    )
                )
            elif key.startswith(("max_", "min_")):
                arg = key[4:]
                limit = _number(doc, value, loc, key)
                _check_arg(doc, key, loc, arg, tool_name, known)
                op, word = (">", "above") if key.startswith("max_") else ("<", "below")
                denies.append(
                    make_rule(
                        ref=ref,
                        condition=cond(f"args.{arg} {op} {limit!r}"),
                        outcome=Outcome.DENY,
                        reason=f"{arg} is {word} the agent's {key} of {limit:g}",
                    )
                )
            elif key.startswith("deny_if_"):
                name = key.removeprefix("deny_if_")
                if value is not True:
                    raise doc.error("W-MAN-002", f"{key} takes `true`", loc, cls=ManifestError)
                if not name.isidentifier():
                    raise doc.error(
                        "W-MAN-002", f"{key}: {name!r} is not a name", loc, cls=ManifestError
                    )
                denies.append(
                    make_rule(
                        ref=ref,
                        condition=cond(name),
                        outcome=Outcome.DENY,
                        reason=f"{name} is true, and the agent's manifest denies it",
                    )
                )
            elif key == "require_approval":
                if not isinstance(value, str) or not value:
                    raise doc.error(
                        "W-MAN-002", "require_approval takes a role name", loc, cls=ManifestError
                    )
                approvals.append(
                    make_rule(
                        ref=ref,
                        condition=None,
                        outcome=Outcome.NEEDS_APPROVAL,
                        approval=ApprovalRequirement(roles=(value,), count=1),
                        reason=f"every {tool_name} call needs approval by {value}",
                    )
                )
            else:
                raise doc.error(
                    "W-MAN-002",
                    f"unknown shorthand {key!r}",
                    loc,
                    cls=ManifestError,
                    hint="use max_<argument>, min_<argument>, require_human_approval_over_<unit>, "
                    "deny_if_<fact>: true or require_approval: ROLE",
                )
        rules = [*denies, *approvals]
        if rules:
            policies.append(
                build_policy(
                    id=f"manifest:{manifest.name}:{tool_name}",
                    file=doc.file,
                    line=doc.line_of(("agent", "permissions", tool_name)) or 1,
                    tools=frozenset({tool_name}),
                    agents=frozenset({manifest.name}),
                    rules=rules,
                    origin="manifest",
                )
            )
    return policies
