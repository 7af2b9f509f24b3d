"""Agent manifests: the seed's manifest as written, coded errors at the offending key, and the
per-tool shorthands that become policy rules."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import warden
from warden.budgets import BudgetLimits
from warden.decision import Outcome, RuleRef
from warden.errors import ConfigError, ManifestError
from warden.manifest import AgentManifest, parse_manifest, shorthand_policies
from warden.modes import Mode
from warden.yamlsource import load_yaml, parse_yaml

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "refunds" / "agents" / "support_refund_agent.yaml"


def manifest_from(tmp_path: Path, text: str, name: str = "bad.yaml") -> AgentManifest:
    folder = tmp_path / "agents"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return parse_manifest(load_yaml(folder / name, display=f"agents/{name}"))


# --- the seed's manifest ------------------------------------------------------------------------


def test_the_seed_manifest_is_accepted_as_written() -> None:
    m = parse_manifest(load_yaml(SEED, display="agents/support_refund_agent.yaml"))
    assert m.name == "support_refund_agent"
    assert m.mode is Mode.SUGGEST_THEN_ACT
    assert m.autonomy is None
    assert m.budgets == BudgetLimits(max_usd=0.02, max_tool_calls=6)
    assert m.allowed_tools == {"lookup_customer", "list_invoices", "create_refund"}
    assert dict(m.shorthands) == {
        "create_refund": {
            "max_amount_usd": 100,
            "require_human_approval_over_usd": 50,
            "deny_if_chargeback_last_180d": True,
        }
    }
    assert m.breaker is not None
    assert m.breaker.error_rate_max == pytest.approx(0.005)
    assert m.breaker.window_s == 300.0
    assert m.breaker.on_trigger == "downgrade_to_suggest_only"
    assert m.max_identical_calls == 3
    assert m.approver_role == "approver"
    assert m.file == "agents/support_refund_agent.yaml"


def test_the_seed_manifest_shorthands_become_rules_at_their_lines() -> None:
    m = parse_manifest(load_yaml(SEED, display="agents/support_refund_agent.yaml"))
    fields = {"create_refund": frozenset({"order_id", "amount_usd", "reason"})}
    (policy,) = shorthand_policies(m, fields=fields)
    assert policy.origin == "manifest"
    assert policy.tools == {"create_refund"}
    assert policy.agents == {"support_refund_agent"}
    refs = [r.ref for r in policy.rules]
    file = "agents/support_refund_agent.yaml"
    assert refs == [
        RuleRef(id="support_refund_agent.create_refund.max_amount_usd", file=file, line=14),
        RuleRef(
            id="support_refund_agent.create_refund.deny_if_chargeback_last_180d",
            file=file,
            line=16,
        ),
        RuleRef(
            id="support_refund_agent.create_refund.require_human_approval_over_usd",
            file=file,
            line=15,
        ),
    ]
    assert [r.outcome for r in policy.rules] == [Outcome.DENY, Outcome.DENY, Outcome.NEEDS_APPROVAL]


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        pytest.param("0.5%", 0.005, id="a percentage"),
        pytest.param("'20 %'", 0.2, id="a percentage with a space"),
        pytest.param("0.005", 0.005, id="a fraction"),
        pytest.param("'0.25'", 0.25, id="a fraction as a string"),
        pytest.param("1", 1.0, id="one"),
        pytest.param("0", 0.0, id="zero"),
    ],
)
def test_a_breaker_rate_is_read_as_a_fraction(tmp_path: Path, text: str, rate: float) -> None:
    m = manifest_from(
        tmp_path, f"agent:\n  name: a\n  circuit_breakers:\n    action_error_rate_max: {text}\n"
    )
    assert m.breaker is not None
    assert m.breaker.error_rate_max == pytest.approx(rate)


def test_breaker_durations_are_read_from_duration_text(tmp_path: Path) -> None:
    m = manifest_from(
        tmp_path,
        "agent:\n"
        "  name: a\n"
        "  circuit_breakers:\n"
        "    action_error_rate_max: 1%\n"
        "    window: 10m\n"
        "    cooldown: 90s\n"
        "    min_calls: 4\n",
    )
    assert m.breaker is not None
    assert (m.breaker.window_s, m.breaker.cooldown_s, m.breaker.min_calls) == (600.0, 90.0, 4)


def test_a_manifest_without_breakers_or_mode_gets_the_defaults(tmp_path: Path) -> None:
    m = manifest_from(tmp_path, "agent:\n  name: minimal\n")
    assert m.mode is Mode.SUGGEST_THEN_ACT
    assert m.breaker is None
    assert m.allowed_tools == frozenset()
    assert m.budgets == BudgetLimits()


# --- autonomy and mode ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "mode"),
    [
        pytest.param("L0", Mode.DRAFT_ONLY, id="L0"),
        pytest.param("L1", Mode.SUGGEST_ONLY, id="L1"),
        pytest.param("L2", Mode.SUGGEST_THEN_ACT, id="L2"),
        pytest.param("L3", Mode.ACT, id="L3"),
        pytest.param("L4", Mode.ACT, id="L4"),
        pytest.param("l3", Mode.ACT, id="lower case"),
    ],
)
def test_an_autonomy_level_maps_to_a_mode(tmp_path: Path, level: str, mode: Mode) -> None:
    m = manifest_from(tmp_path, f"agent:\n  name: a\n  autonomy: {level}\n")
    assert m.mode is mode
    assert m.autonomy == level.upper()


@pytest.mark.parametrize(
    ("mode", "level"),
    [
        pytest.param("draft_only", "L0", id="L0"),
        pytest.param("suggest_only", "L1", id="L1"),
        pytest.param("suggest_then_act", "L2", id="L2"),
        pytest.param("act", "L3", id="L3"),
        pytest.param("act", "L4", id="L4"),
    ],
)
def test_a_mode_that_agrees_with_the_autonomy_level_is_accepted(
    tmp_path: Path, mode: str, level: str
) -> None:
    m = manifest_from(tmp_path, f"agent:\n  name: a\n  mode: {mode}\n  autonomy: {level}\n")
    assert m.mode.value == mode


@pytest.mark.parametrize(
    ("mode", "level"),
    [
        pytest.param("act", "L0", id="act at L0"),
        pytest.param("act", "L2", id="act at L2"),
        pytest.param("draft_only", "L4", id="draft_only at L4"),
        pytest.param("suggest_then_act", "L1", id="suggest_then_act at L1"),
    ],
)
def test_a_mode_that_disagrees_with_the_autonomy_level_is_w_man_001(
    tmp_path: Path, mode: str, level: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from(tmp_path, f"agent:\n  name: a\n  mode: {mode}\n  autonomy: {level}\n")
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (
        "W-MAN-001",
        "agents/bad.yaml",
        4,
        "agent.autonomy",
    )
    assert f"mode {mode} disagrees with autonomy {level}" in err.message
    assert "fix: Set only one of them" in str(err)


# --- malformed manifests --------------------------------------------------------------------------

HEAD = "# a manifest with one mistake\nagent:\n  name: a\n"  # `agent:` is line 2
PERMS = HEAD + "  permissions:\n    allowed_tools: [pay]\n    pay:\n"  # shorthands from line 7
CHANGE = "Change the field named in the message"

MALFORMED = [
    pytest.param(
        "# no agent here\nname: a\n",
        "W-CFG-004", 2, None, "start the file with `agent:`",
        id="no agent key",
    ),
    pytest.param(
        "# comment\nagent:\n  mode: act\n",
        "W-CFG-004", 2, "agent.name", "add the field",
        id="no name",
    ),
    pytest.param(
        "# comment\nagent:\n  name: has space\n",
        "W-CFG-004", 3, "agent.name", CHANGE,
        id="a name with a space",
    ),
    pytest.param(
        "# comment\nagent:\n  name: 5\n",
        "W-CFG-004", 3, "agent.name", CHANGE,
        id="a name that is a number",
    ),
    pytest.param(
        HEAD + "  colour: red\n",
        "W-CFG-004", 4, "agent.colour", "remove the field, or check its spelling",
        id="an unknown field",
    ),
    pytest.param(
        HEAD + "  mode: yolo\n",
        "W-CFG-004", 4, "agent.mode", CHANGE,
        id="an unknown mode",
    ),
    pytest.param(
        HEAD + "  autonomy: L9\n",
        "W-CFG-004", 4, "agent.autonomy", CHANGE,
        id="an unknown autonomy level",
    ),
    pytest.param(
        HEAD + "  mode: act\n  autonomy: L1\n",
        "W-MAN-001", 5, "agent.autonomy", "Set only one of them",
        id="mode and autonomy disagree",
    ),
    pytest.param(
        HEAD + "  budgets:\n    max_usd_per_task: -1\n",
        "W-CFG-004", 5, "agent.budgets.max_usd_per_task", CHANGE,
        id="a negative budget",
    ),
    pytest.param(
        HEAD + "  budgets:\n    max_tool_calls: 6\n    max_dollars: 1\n",
        "W-CFG-004", 6, "agent.budgets.max_dollars", "remove the field",
        id="an unknown budget",
    ),
    pytest.param(
        HEAD + "  budgets:\n    max_tool_calls: many\n",
        "W-CFG-004", 5, "agent.budgets.max_tool_calls", CHANGE,
        id="a budget that is not a number",
    ),
    pytest.param(
        HEAD + "  budgets:\n    max_wall_seconds: 0\n",
        "W-CFG-004", 5, "agent.budgets.max_wall_seconds", CHANGE,
        id="a zero wall-time budget",
    ),
    pytest.param(
        HEAD + "  permissions: [pay]\n",
        "W-CFG-004", 4, "agent.permissions", CHANGE,
        id="permissions as a list",
    ),
    pytest.param(
        HEAD + "  permissions:\n    allowed_tools: pay\n",
        "W-CFG-004", 5, "agent.permissions.allowed_tools", CHANGE,
        id="allowed_tools as a string",
    ),
    pytest.param(
        HEAD + "  permissions:\n    allowed_tools: [1, 2]\n",
        "W-CFG-004", 5, "agent.permissions.allowed_tools", CHANGE,
        id="allowed_tools of numbers",
    ),
    pytest.param(
        HEAD + "  permissions:\n    allowed_tools: [pay]\n    refund:\n      max_amount: 5\n",
        "W-MAN-002", 6, "agent.permissions.refund", "add refund to allowed_tools",
        id="permissions for a tool that is not allowed",
    ),
    pytest.param(
        HEAD + "  permissions:\n    allowed_tools: [pay]\n    pay: 5\n",
        "W-MAN-002", 6, "agent.permissions.pay", "Use max_<argument>",
        id="per-tool permissions that are not a mapping",
    ),
    pytest.param(
        PERMS + "      maximum_amount: 5\n",
        "W-MAN-002", 7, "agent.permissions.pay.maximum_amount", "use max_<argument>, min_",
        id="an unknown shorthand",
    ),
    pytest.param(
        PERMS + "      max_amount: 1\n      max_amount_usd: lots\n",
        "W-MAN-002", 8, "agent.permissions.pay.max_amount_usd", "Use max_<argument>",
        id="max_ with a string",
    ),
    pytest.param(
        PERMS + "      min_priority: true\n",
        "W-MAN-002", 7, "agent.permissions.pay.min_priority", "Use max_<argument>",
        id="min_ with a boolean",
    ),
    pytest.param(
        PERMS + "      max_a-b: 3\n",
        "W-MAN-002", 7, "agent.permissions.pay.max_a-b", "Use max_<argument>",
        id="max_ of something that is not an argument name",
    ),
    pytest.param(
        PERMS + "      require_human_approval_over_usd: fifty\n",
        "W-MAN-002", 7, "agent.permissions.pay.require_human_approval_over_usd", "Use max_",
        id="approval threshold that is not a number",
    ),
    pytest.param(
        PERMS + "      deny_if_flagged: false\n",
        "W-MAN-002", 7, "agent.permissions.pay.deny_if_flagged", "Use max_<argument>",
        id="deny_if_ with false",
    ),
    pytest.param(
        PERMS + "      deny_if_is-flagged: true\n",
        "W-MAN-002", 7, "agent.permissions.pay.deny_if_is-flagged", "Use max_<argument>",
        id="deny_if_ of something that is not a name",
    ),
    pytest.param(
        PERMS + "      require_approval: ''\n",
        "W-MAN-002", 7, "agent.permissions.pay.require_approval", "Use max_<argument>",
        id="require_approval with an empty role",
    ),
    pytest.param(
        PERMS + "      require_approval: [a, b]\n",
        "W-MAN-002", 7, "agent.permissions.pay.require_approval", "Use max_<argument>",
        id="require_approval with a list",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: 5\n",
        "W-CFG-004", 5, "agent.circuit_breakers.action_error_rate_max", CHANGE,
        id="a breaker rate above one without a percent sign",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: 150%\n",
        "W-CFG-004", 5, "agent.circuit_breakers.action_error_rate_max", CHANGE,
        id="a breaker rate over 100 percent",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: lots\n",
        "W-CFG-004", 5, "agent.circuit_breakers.action_error_rate_max", CHANGE,
        id="a breaker rate that is not a number",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    window: 5m\n",
        "W-CFG-004", 4, "agent.circuit_breakers.action_error_rate_max", "add the field",
        id="a breaker without a rate",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: 1%\n    window: soon\n",
        "W-CFG-004", 6, "agent.circuit_breakers.window", CHANGE,
        id="a breaker window that is not a duration",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: 1%\n    cooldown: -5\n",
        "W-CFG-004", 6, "agent.circuit_breakers.cooldown", CHANGE,
        id="a negative cooldown",
    ),
    pytest.param(
        HEAD + "  circuit_breakers:\n    action_error_rate_max: 1%\n    on_trigger: explode\n",
        "W-CFG-004", 6, "agent.circuit_breakers.on_trigger", CHANGE,
        id="an unknown breaker trigger",
    ),
    pytest.param(
        HEAD + "  loop_detection:\n    max_identical_calls: 0\n",
        "W-CFG-004", 5, "agent.loop_detection.max_identical_calls", CHANGE,
        id="loop detection at zero",
    ),
    pytest.param(
        HEAD + "  approvals:\n    role: lead\n",
        "W-CFG-004", 5, "agent.approvals.role", "remove the field",
        id="approvals with a misspelt field",
    ),
    pytest.param(
        HEAD + "  tags: urgent\n",
        "W-CFG-004", 4, "agent.tags", CHANGE,
        id="tags as a string",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "code", "line", "field", "fix"), MALFORMED)
def test_a_malformed_manifest_is_a_coded_error_at_the_offending_key(
    tmp_path: Path, text: str, code: str, line: int, field: str | None, fix: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from(tmp_path, text)
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (code, "agents/bad.yaml", line, field)
    rendered = str(err)
    assert rendered.startswith(f"agents/bad.yaml:{line}: {code}: ")
    assert "\n  fix: " in rendered
    assert fix in rendered.split("\n  fix: ", 1)[1]


def test_a_duplicate_key_in_a_manifest_is_w_cfg_003_at_the_second_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        manifest_from(tmp_path, HEAD + "  mode: act\n  name: b\n")
    assert (caught.value.code, caught.value.line, caught.value.field) == (
        "W-CFG-003",
        5,
        "agent.name",
    )


@pytest.mark.parametrize(
    "value",
    [pytest.param("[1]", id="a list"), pytest.param("{s: 1}", id="a mapping")],
)
def test_a_breaker_duration_of_the_wrong_type_is_w_cfg_004(tmp_path: Path, value: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from(
            tmp_path,
            HEAD + f"  circuit_breakers:\n    action_error_rate_max: 1%\n    cooldown: {value}\n",
        )
    assert (caught.value.code, caught.value.line) == ("W-CFG-004", 6)


@pytest.mark.parametrize(
    "value",
    [pytest.param(".inf", id="infinity"), pytest.param(".nan", id="not a number")],
)
def test_a_non_finite_shorthand_limit_is_w_man_002(tmp_path: Path, value: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest_from(tmp_path, PERMS + f"      max_amount_usd: {value}\n")
    assert (caught.value.code, caught.value.line) == ("W-MAN-002", 7)


# --- shorthands through a gate ------------------------------------------------------------------

TOOLS = '''\
from pydantic import BaseModel

import warden


class PayArgs(BaseModel):
    amount_usd: float
    priority: int = 1
    note: str = ""


@warden.tool(risk="write")
def pay(args: PayArgs) -> None:
    """Pay someone."""
'''

ALLOW_ALL = "policy:\n  tool: pay\n  rules:\n    - allow: true\n"


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for a throwaway project; its modules and sys.path entry are removed after."""
    before = set(sys.modules)
    yield tmp_path
    sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if origin.startswith(str(tmp_path)):
            del sys.modules[name]


def write_project(root: Path, manifest: str, *, tools: str = TOOLS) -> Path:
    """A tiny project: one tool module (named uniquely), one manifest, one allow-all policy."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", root.name)
    module = f"wm_tools_{stem}_{digest}"
    (root / f"{module}.py").write_text(tools, encoding="utf-8")
    (root / "agents").mkdir()
    (root / "agents" / "payer.yaml").write_text(manifest, encoding="utf-8")
    (root / "policies").mkdir()
    (root / "policies" / "pay.yaml").write_text(ALLOW_ALL, encoding="utf-8")
    (root / "warden.yaml").write_text(
        f"project: tiny\nagents: [agents]\ntools: [{module}]\npolicies: [policies]\n",
        encoding="utf-8",
    )
    return root


def payer(*shorthands: str) -> str:
    """A manifest whose shorthands for `pay` start on line 9."""
    return (
        "agent:\n"
        "  name: payer\n"
        "  mode: act\n"
        "  approvals:\n"
        "    default_role: finance_lead\n"
        "  permissions:\n"
        "    allowed_tools: [pay]\n"
        "    pay:\n" + "".join(f"      {s}\n" for s in shorthands)
    )


def decide(
    root: Path,
    amount: float,
    *,
    priority: int = 1,
    context: dict[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
) -> warden.Decision:
    project = warden.load_project(root)
    gate = project.gate(
        store=warden.MemoryStore(), clock=warden.FixedClock(), ids=warden.CountingIds()
    )
    return gate.decide(
        warden.ToolCall(
            agent="payer",
            tool="pay",
            run_id="run_1",
            args={"amount_usd": amount, "priority": priority},
            context=context or {},
            facts=facts,
        )
    )


def ref(key: str, line: int = 9) -> RuleRef:
    return RuleRef(id=f"payer.pay.{key}", file="agents/payer.yaml", line=line)


SHORTHANDS = [
    pytest.param(
        ["max_amount_usd: 100"], 100.0, {}, Outcome.ALLOW, None, (), (),
        id="max_: at the limit is allowed",
    ),
    pytest.param(
        ["max_amount_usd: 100"], 100.5, {}, Outcome.DENY, "W-POL-101", (),
        (ref("max_amount_usd"),),
        id="max_: above the limit is denied",
    ),
    pytest.param(
        ["min_priority: 2"], 10.0, {"priority": 1}, Outcome.DENY, "W-POL-101", (),
        (ref("min_priority"),),
        id="min_: below the limit is denied",
    ),
    pytest.param(
        ["min_priority: 2"], 10.0, {"priority": 2}, Outcome.ALLOW, None, (), (),
        id="min_: at the limit is allowed",
    ),
    pytest.param(
        ["require_human_approval_over_usd: 50"], 50.0, {}, Outcome.ALLOW, None, (), (),
        id="approval threshold: at it is allowed",
    ),
    pytest.param(
        ["require_human_approval_over_usd: 50"], 75.0, {}, Outcome.NEEDS_APPROVAL, None,
        ("finance_lead",), (ref("require_human_approval_over_usd"),),
        id="approval threshold: over it needs the default role",
    ),
    pytest.param(
        ["deny_if_flagged: true"], 10.0, {"context": {"flagged": True}}, Outcome.DENY,
        "W-POL-101", (), (ref("deny_if_flagged"),),
        id="deny_if_: a true context value denies",
    ),
    pytest.param(
        ["deny_if_flagged: true"], 10.0, {"context": {"flagged": False}}, Outcome.ALLOW, None,
        (), (),
        id="deny_if_: a false context value allows",
    ),
    pytest.param(
        ["deny_if_flagged: true"], 10.0, {"facts": {"flagged": True}}, Outcome.DENY,
        "W-POL-101", (), (ref("deny_if_flagged"),),
        id="deny_if_: a true fact denies",
    ),
    pytest.param(
        ["deny_if_flagged: true"], 10.0, {}, Outcome.DENY, "W-POL-103", (),
        (ref("deny_if_flagged"),),
        id="deny_if_: an unknown name fails closed",
    ),
    pytest.param(
        ["require_approval: security"], 1.0, {}, Outcome.NEEDS_APPROVAL, None, ("security",),
        (ref("require_approval"),),
        id="require_approval: every call needs the role",
    ),
    pytest.param(
        ["max_amount_usd: 100", "require_human_approval_over_usd: 50"], 120.0, {},
        Outcome.DENY, "W-POL-101", (), (ref("max_amount_usd"),),
        id="seed: over the maximum is denied, not sent for approval",
    ),
    pytest.param(
        ["max_amount_usd: 100", "require_human_approval_over_usd: 50"], 75.0, {},
        Outcome.NEEDS_APPROVAL, None, ("finance_lead",),
        (ref("require_human_approval_over_usd", 10),),
        id="seed: between the two limits needs approval",
    ),
    pytest.param(
        ["max_amount_usd: 100", "require_human_approval_over_usd: 50"], 30.0, {},
        Outcome.ALLOW, None, (), (),
        id="seed: under both limits is allowed",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("shorthands", "amount", "call", "outcome", "code", "approvers", "rules"), SHORTHANDS
)
def test_a_shorthand_restricts_what_the_policy_allows(
    project_dir: Path,
    shorthands: list[str],
    amount: float,
    call: dict[str, Any],
    outcome: Outcome,
    code: str | None,
    approvers: tuple[str, ...],
    rules: tuple[RuleRef, ...],
) -> None:
    root = write_project(project_dir, payer(*shorthands))
    d = decide(root, amount, **call)
    assert (d.outcome, d.code) == (outcome, code)
    if approvers:
        assert d.approval is not None
        assert d.approval.roles == approvers
    else:
        assert d.approval is None
    if rules:
        assert d.rules == rules
    if outcome is Outcome.ALLOW:
        assert d.rules == (RuleRef(id="pay#1", file="policies/pay.yaml", line=4),)


def test_a_shorthand_deny_says_which_limit_was_passed(project_dir: Path) -> None:
    root = write_project(project_dir, payer("max_amount_usd: 100"))
    d = decide(root, 150.0)
    assert d.reasons == ("amount_usd is above the agent's max_amount_usd of 100",)


def test_an_approval_threshold_uses_the_argument_named_by_its_unit(project_dir: Path) -> None:
    tools = TOOLS.replace("amount_usd: float", "amount_usd: float\n    eur: float = 0")
    root = write_project(project_dir, payer("require_human_approval_over_eur: 10"), tools=tools)
    project = warden.load_project(root)
    rule = next(p for p in project.policies.policies if p.origin == "manifest").rules[0]
    assert rule.source == "args.eur > 10.0"


@pytest.mark.parametrize(
    ("shorthand", "argument"),
    [
        pytest.param("max_amount: 5", "amount", id="max_"),
        pytest.param("min_urgency: 1", "urgency", id="min_"),
        pytest.param("require_human_approval_over_eur: 10", "eur", id="approval threshold"),
    ],
)
def test_a_shorthand_naming_a_missing_argument_is_w_man_002_at_project_load(
    project_dir: Path, shorthand: str, argument: str
) -> None:
    root = write_project(project_dir, payer("max_amount_usd: 100", shorthand))
    with pytest.raises(ManifestError) as caught:
        warden.load_project(root)
    err = caught.value
    key = shorthand.split(":")[0]
    assert (err.code, err.file, err.line, err.field) == (
        "W-MAN-002",
        "agents/payer.yaml",
        10,
        f"agent.permissions.pay.{key}",
    )
    assert f"tool 'pay' has no argument {argument!r}" in err.message
    assert "(it has: amount_usd, note, priority)" in err.message
    assert str(err).startswith("agents/payer.yaml:10: W-MAN-002: ")


def test_a_shorthand_is_checked_without_the_tools_when_the_manifest_is_parsed() -> None:
    doc = parse_yaml(payer("max_amount: 5"), file="agents/payer.yaml")
    m = parse_manifest(doc)  # no tool fields known yet: accepted
    (policy,) = shorthand_policies(m, fields={})
    assert policy.rules[0].source == "args.amount > 5.0"
