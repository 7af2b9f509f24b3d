"""Policy files: their schema, coded errors at file:line, scope, logging and revisions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from warden.decision import ApprovalRequirement, Outcome, RuleRef
from warden.errors import ConfigError, PolicyError
from warden.history import HistoryView
from warden.policy import (
    AgentView,
    NowView,
    PolicyResult,
    PolicySet,
    RunView,
    load_policies,
    policy_from_text,
)

ROOT = Path(__file__).resolve().parents[2]
REFUNDS_POLICY = ROOT / "examples" / "refunds" / "policies" / "refunds.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str, name: str = "p.yaml") -> PolicySet:
    write(tmp_path, name, text)
    return load_policies([tmp_path], root=tmp_path)


def evaluate(
    policies: PolicySet,
    tool: str = "create_refund",
    *,
    agent: str = "support_refund_agent",
    args: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> PolicyResult:
    return policies.evaluate(
        tool,
        args=args or {},
        agent=AgentView(name=agent),
        run=RunView(id="run_1"),
        context=context or {},
        facts={},
        now=NowView(0.0),
        history=HistoryView([], run_id="run_1", tool=tool, now=0.0),
    )


# --- malformed policy files ----------------------------------------------------------------------

TOP = "# a policy with one mistake\npolicy:\n  tool: create_refund\n  rules:\n"  # rules: line 4

MALFORMED = [
    pytest.param(
        "# rules but no policy\nrules:\n  - allow: true\n",
        "W-CFG-004", 2, None,
        id="no policy key",
    ),
    pytest.param(
        "# a list, not a mapping\n- allow: true\n",
        "W-CFG-004", 2, None,
        id="a list at the top",
    ),
    pytest.param(
        "# nothing under policy\npolicy:\n",
        "W-CFG-004", 2, "policy",
        id="an empty policy",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      allow: true\n      deny: too much\n",
        "W-POL-004", 5, "policy.rules.0",
        id="a rule with two outcomes",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      deny: big\n"
        "    - if: amount_usd > 2\n      require_approval: lead\n      redact: [card]\n",
        "W-POL-004", 7, "policy.rules.1",
        id="a second rule with two outcomes",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      reason: no outcome here\n",
        "W-POL-004", 5, "policy.rules.0",
        id="a rule with no outcome",
    ),
    pytest.param(
        TOP + "    - id: lonely\n",
        "W-POL-004", 5, "policy.rules.0",
        id="a rule with only an id",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      log:\n        redact_fields: [card]\n",
        "W-POL-004", 5, "policy.rules.0",
        id="a conditional log item",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      allow: false\n",
        "W-POL-004", 6, "policy.rules.0.allow",
        id="allow false",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      deny: false\n",
        "W-POL-004", 6, "policy.rules.0.deny",
        id="deny false",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      deny: no\n",
        "W-POL-004", 6, "policy.rules.0.deny",
        id="deny no is YAML false",
    ),
    pytest.param(
        TOP + "    - allow: true\n    - if: amount_usd > 100\n      deny: too much\n",
        "W-POL-004", 5, None,
        id="an unconditional rule that is not last",
    ),
    pytest.param(
        TOP + "    - if: amount_usd < 1\n      deny: tiny\n    - id: catch-all\n      deny: no\n"
        "      reason: r\n    - allow: true\n",
        "W-POL-004", 8, "policy.rules.1.deny",
        id="deny no in a later rule",
    ),
    pytest.param(
        TOP.replace("  rules:\n", "  rules: []\n"),
        "W-CFG-004", 4, "policy.rules",
        id="empty rules",
    ),
    pytest.param(
        "# no rules\npolicy:\n  tool: create_refund\n",
        "W-CFG-004", 2, "policy.rules",
        id="no rules",
    ),
    pytest.param(
        TOP.replace("  rules:\n", "  rules:\n    allow: true\n"),
        "W-CFG-004", 4, "policy.rules",
        id="rules as a mapping",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      allow: true\n      colour: red\n",
        "W-CFG-004", 7, "policy.rules.0.colour",
        id="an unknown field in a rule",
    ),
    pytest.param(
        TOP + "    - allow: true\n  owner: me\n",
        "W-CFG-004", 6, "policy.owner",
        id="an unknown field in the policy",
    ),
    pytest.param(
        TOP + "    - allow: true\n  tools: [create_refund]\n",
        "W-CFG-004", 6, "policy.tools",
        id="tool and tools",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      require_approval: {count: 2}\n",
        "W-CFG-004", 6, "policy.rules.0.require_approval",
        id="an approval without a role",
    ),
    pytest.param(
        TOP + "    - id: has space\n      allow: true\n",
        "W-CFG-004", 5, "policy.rules.0.id",
        id="a rule id with a space",
    ),
    pytest.param(
        TOP + "    - if: amount_usd > 1\n      redact: card_number\n",
        "W-CFG-004", 6, "policy.rules.0.redact",
        id="redact as a string",
    ),
    pytest.param(
        TOP + "    - allow: true\n  log:\n    retain_days: 0\n",
        "W-CFG-004", 7, "policy.log.retain_days",
        id="retain zero days",
    ),
    pytest.param(
        TOP + "    - if: amount_usd ===\n      allow: true\n",
        "W-POL-001", 5, "if",
        id="a condition that does not parse",
    ),
    pytest.param(
        TOP + "    - id: folded\n      allow: true\n      if: >\n        amount_usd ===\n",
        "W-POL-001", 7, "if",
        id="a folded condition that does not parse",
    ),
    pytest.param(
        TOP + "    - if: open('x')\n      allow: true\n",
        "W-POL-007", 5, "if",
        id="a condition calling an unknown function",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "code", "line", "field"), MALFORMED)
def test_a_malformed_policy_file_is_a_coded_error_at_its_line(
    tmp_path: Path, text: str, code: str, line: int, field: str | None
) -> None:
    write(tmp_path, "policies/bad.yaml", text)
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path / "policies"], root=tmp_path)
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (code, "policies/bad.yaml", line, field)
    assert str(err).startswith(f"policies/bad.yaml:{line}: {code}: ")
    assert "\n  fix: " in str(err)


def test_an_empty_policy_file_is_w_cfg_004_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "# nothing here yet\n")
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path], root=tmp_path)
    assert (caught.value.code, caught.value.file, caught.value.line) == (
        "W-CFG-004",
        "empty.yaml",
        None,
    )


def test_a_duplicate_key_in_a_policy_file_is_w_cfg_003(tmp_path: Path) -> None:
    write(tmp_path, "dup.yaml", TOP + "    - if: amount_usd > 1\n      if: amount_usd > 2\n")
    with pytest.raises(ConfigError) as caught:
        load_policies([tmp_path], root=tmp_path)
    assert (caught.value.code, caught.value.file, caught.value.line) == ("W-CFG-003", "dup.yaml", 6)


@pytest.mark.parametrize(
    "condition",
    [pytest.param("", id="nothing after if"), pytest.param(" null", id="if null")],
)
def test_an_empty_if_is_w_pol_001_not_an_unconditional_rule(tmp_path: Path, condition: str) -> None:
    write(
        tmp_path,
        "p.yaml",
        TOP + "    - if: amount_usd > 100\n      deny: too much\n"
        f"    - if:{condition}\n      allow: true\n",
    )
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path], root=tmp_path)
    assert (caught.value.code, caught.value.line) == ("W-POL-001", 7)


# --- rule ids -------------------------------------------------------------------------------------


def test_duplicate_rule_ids_across_files_are_w_pol_006_at_the_second(tmp_path: Path) -> None:
    write(
        tmp_path, "a.yaml", "policy:\n  rules:\n    - id: shared\n      if: x > 1\n      deny: d\n"
    )
    write(
        tmp_path,
        "b.yaml",
        "# second file\npolicy:\n  tool: t\n  rules:\n    - if: x > 2\n      deny: e\n"
        "    - id: shared\n      allow: true\n",
    )
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path], root=tmp_path)
    err = caught.value
    assert (err.code, err.file, err.line) == ("W-POL-006", "b.yaml", 7)
    assert "rule id 'shared' is used twice (first at a.yaml:3)" in err.message


def test_duplicate_rule_ids_in_one_file_are_w_pol_006(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_one(
            tmp_path,
            TOP + "    - id: r\n      if: x > 1\n      deny: d\n    - id: r\n      allow: true\n",
        )
    assert (caught.value.code, caught.value.line) == ("W-POL-006", 8)


def test_policy_ids_default_to_the_file_name_and_rule_ids_to_their_position(
    tmp_path: Path,
) -> None:
    write(tmp_path, "refunds.yaml", TOP + "    - if: x > 1\n      deny: d\n    - allow: true\n")
    write(
        tmp_path,
        "other.yaml",
        "policy:\n  id: named\n  rules:\n    - id: explicit\n      if: y\n      deny: d\n"
        "    - if: z\n      allow: true\n",
    )
    policies = load_policies([tmp_path], root=tmp_path)
    refs = {p.id: [r.ref for r in p.rules] for p in policies.policies}
    assert refs == {
        "named": [
            RuleRef(id="explicit", file="other.yaml", line=4),
            RuleRef(id="named#2", file="other.yaml", line=7),
        ],
        "refunds": [
            RuleRef(id="refunds#1", file="refunds.yaml", line=5),
            RuleRef(id="refunds#2", file="refunds.yaml", line=7),
        ],
    }


# --- outcomes and approvals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "roles", "count"),
    [
        pytest.param("lead", ("lead",), 1, id="a role name"),
        pytest.param("{role: lead}", ("lead",), 1, id="a role mapping"),
        pytest.param("{role: lead, count: 2}", ("lead",), 2, id="two people of one role"),
        pytest.param("{roles: [a, b]}", ("a", "b"), 2, id="two roles"),
        pytest.param("{roles: [a, b], count: 1}", ("a", "b"), 2, id="count raised to the roles"),
        pytest.param("{roles: [a, b], count: 3}", ("a", "b"), 3, id="count above the roles"),
    ],
)
def test_require_approval_names_roles_and_a_count(
    tmp_path: Path, spec: str, roles: tuple[str, ...], count: int
) -> None:
    policies = load_one(tmp_path, TOP + f"    - if: x > 1\n      require_approval: {spec}\n")
    (rule,) = policies.policies[0].rules
    assert rule.outcome is Outcome.NEEDS_APPROVAL
    assert rule.approval == ApprovalRequirement(roles=roles, count=count)
    result = evaluate(policies, args={"x": 2})
    assert result.outcome is Outcome.NEEDS_APPROVAL
    assert result.approval == ApprovalRequirement(roles=roles, count=count)


def test_require_approval_with_role_and_roles_keeps_every_role_or_is_refused(
    tmp_path: Path,
) -> None:
    text = TOP + "    - if: x > 1\n      require_approval: {role: c, roles: [a, b]}\n"
    roles: tuple[str, ...] = ()
    refused: str | None = None
    try:
        policies = load_one(tmp_path, text)
    except PolicyError as err:
        refused = err.code
    else:
        approval = policies.policies[0].rules[0].approval
        roles = approval.roles if approval else ()
    assert refused == "W-CFG-004" or "c" in roles


def test_a_bad_approval_count_names_the_count_field(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_one(tmp_path, TOP + "    - if: x > 1\n      require_approval: {role: a, count: 0}\n")
    err = caught.value
    assert err.field == "policy.rules.0.require_approval.count"
    assert "greater than or equal to 1" in err.message


def test_deny_true_takes_its_reason_from_reason(tmp_path: Path) -> None:
    policies = load_one(tmp_path, TOP + "    - if: x > 1\n      deny: true\n      reason: big\n")
    result = evaluate(policies, args={"x": 2})
    assert (result.outcome, result.code, result.reasons) == (Outcome.DENY, "W-POL-101", ("big",))


def test_within_a_file_the_first_matching_rule_decides(tmp_path: Path) -> None:
    policies = load_one(
        tmp_path,
        TOP + "    - if: x > 10\n      deny: big\n    - if: x > 5\n      require_approval: lead\n"
        "    - allow: true\n",
    )
    outcomes = [evaluate(policies, args={"x": x}).outcome for x in (11, 6, 1)]
    assert outcomes == [Outcome.DENY, Outcome.NEEDS_APPROVAL, Outcome.ALLOW]


def test_across_files_the_strictest_outcome_wins(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "policy:\n  rules:\n    - allow: true\n")
    write(tmp_path, "b.yaml", "policy:\n  rules:\n    - if: x > 5\n      require_approval: lead\n")
    write(tmp_path, "c.yaml", "policy:\n  rules:\n    - if: x > 10\n      deny: big\n")
    policies = load_policies([tmp_path], root=tmp_path)
    outcomes = [evaluate(policies, args={"x": x}).outcome for x in (11, 6, 1)]
    assert outcomes == [Outcome.DENY, Outcome.NEEDS_APPROVAL, Outcome.ALLOW]


# --- logging and redaction ------------------------------------------------------------------------


def test_the_seed_policy_with_a_log_item_inside_rules_gives_redact_fields() -> None:
    policies = load_policies([REFUNDS_POLICY], root=REFUNDS_POLICY.parent)
    (policy,) = policies.policies
    assert policy.log.redact_fields == {"card_number", "bank_account"}
    assert policy.log.retain_days == 365
    assert len(policy.rules) == 3
    result = evaluate(policies, args={"amount_usd": 10}, context={"customer_tier": "pro"})
    assert result.outcome is Outcome.ALLOW
    assert result.redact_fields == {"card_number", "bank_account"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            TOP + "    - allow: true\n    - log:\n        redact_fields: [card_number, iban]\n"
            "        retain_days: 30\n",
            id="log inside rules",
        ),
        pytest.param(
            TOP + "    - allow: true\n  log:\n    redact_fields: [card_number, iban]\n"
            "    retain_days: 30\n",
            id="log at policy level",
        ),
        pytest.param(
            TOP + "    - allow: true\n    - log:\n        redact_fields: [iban]\n"
            "        retain_days: 30\n  log:\n    redact_fields: [card_number]\n",
            id="both, merged",
        ),
    ],
)
def test_log_settings_give_redact_fields_wherever_they_are_written(
    tmp_path: Path, text: str
) -> None:
    policies = load_one(tmp_path, text)
    (policy,) = policies.policies
    assert policy.log.redact_fields == {"card_number", "iban"}
    assert policy.log.retain_days == 30
    assert evaluate(policies).redact_fields == {"card_number", "iban"}


def test_log_on_a_rule_with_an_outcome_is_not_silently_dropped(tmp_path: Path) -> None:
    try:
        policies = load_one(
            tmp_path, TOP + "    - allow: true\n      log:\n        redact_fields: [card_number]\n"
        )
    except PolicyError:
        return  # refused at load: also fine
    assert evaluate(policies).redact_fields == {"card_number"}


def test_a_redact_rule_adds_fields_without_deciding(tmp_path: Path) -> None:
    policies = load_one(
        tmp_path,
        TOP
        + "    - if: x > 100\n      redact: [card_number]\n    - if: x > 0\n      allow: true\n",
    )
    big, small = evaluate(policies, args={"x": 500}), evaluate(policies, args={"x": 5})
    assert (big.outcome, big.redact_fields) == (Outcome.ALLOW, {"card_number"})
    assert (small.outcome, small.redact_fields) == (Outcome.ALLOW, frozenset())
    assert evaluate(policies, args={"x": -1}).code == "W-POL-102"


# --- scope: tools and agents ----------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["create_refund", "delete_customer", "anything_at_all"])
def test_tools_star_covers_every_tool(tmp_path: Path, tool: str) -> None:
    policies = load_one(tmp_path, "policy:\n  tools: ['*']\n  rules:\n    - allow: true\n")
    (policy,) = policies.policies
    assert policy.tools is None
    assert policy.covers(tool, "any-agent")
    assert evaluate(policies, tool).outcome is Outcome.ALLOW


@pytest.mark.parametrize(
    ("scope", "tool", "covered"),
    [
        pytest.param("tool: create_refund", "create_refund", True, id="tool: the tool"),
        pytest.param("tool: create_refund", "lookup_customer", False, id="tool: another"),
        pytest.param("tools: [a, b]", "b", True, id="tools: listed"),
        pytest.param("tools: [a, b]", "c", False, id="tools: not listed"),
        pytest.param("id: everything", "c", True, id="no tool at all"),
    ],
)
def test_a_policy_covers_only_its_tools(
    tmp_path: Path, scope: str, tool: str, covered: bool
) -> None:
    policies = load_one(tmp_path, f"policy:\n  {scope}\n  rules:\n    - allow: true\n")
    result = evaluate(policies, tool)
    if covered:
        assert result.outcome is Outcome.ALLOW
    else:
        assert (result.outcome, result.code) == (Outcome.DENY, "W-POL-102")
        (reason,) = result.reasons
        assert reason.startswith(f"no policy covers tool {tool!r}")


@pytest.mark.parametrize(
    ("agent", "covered"),
    [
        pytest.param("support_refund_agent", True, id="a listed agent"),
        pytest.param("refund_autopilot", True, id="another listed agent"),
        pytest.param("intruder", False, id="an agent not listed"),
    ],
)
def test_agents_scope_a_policy_to_the_named_agents(
    tmp_path: Path, agent: str, covered: bool
) -> None:
    policies = load_one(
        tmp_path,
        "policy:\n  tool: create_refund\n  agents: [support_refund_agent, refund_autopilot]\n"
        "  rules:\n    - allow: true\n",
    )
    assert policies.policies[0].agents == {"support_refund_agent", "refund_autopilot"}
    result = evaluate(policies, agent=agent)
    assert (result.outcome is Outcome.ALLOW) is covered
    if not covered:
        assert result.code == "W-POL-102"


# --- revisions ------------------------------------------------------------------------------------


def test_the_revision_is_the_same_for_the_same_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "policy:\n  rules:\n    - allow: true\n")
    write(tmp_path, "b.yaml", "policy:\n  rules:\n    - if: x\n      deny: d\n")
    first = load_policies([tmp_path], root=tmp_path).revision
    second = load_policies([tmp_path], root=tmp_path).revision
    swapped = load_policies([tmp_path / "b.yaml", tmp_path / "a.yaml"], root=tmp_path).revision
    assert first == second == swapped
    assert len(first) >= 16


def test_the_revision_changes_when_a_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "policy:\n  rules:\n    - if: x > 1\n      allow: true\n")
    before = load_policies([tmp_path], root=tmp_path).revision
    path.write_text("policy:\n  rules:\n    - if: x > 2\n      allow: true\n", encoding="utf-8")
    changed = load_policies([tmp_path], root=tmp_path).revision
    write(tmp_path, "b.yaml", "policy:\n  rules:\n    - allow: true\n")
    added = load_policies([tmp_path], root=tmp_path).revision
    assert len({before, changed, added}) == 3


def test_the_revision_does_not_depend_on_where_the_project_lives(tmp_path: Path) -> None:
    text = "policy:\n  rules:\n    - allow: true\n"
    write(tmp_path / "one", "p.yaml", text)
    write(tmp_path / "two", "p.yaml", text)
    one = load_policies([tmp_path / "one"], root=tmp_path / "one")
    two = load_policies([tmp_path / "two"], root=tmp_path / "two")
    assert one.revision == two.revision
    assert one.sources == two.sources == ("p.yaml",)


def test_policy_from_text_gives_the_same_revision_for_the_same_text() -> None:
    text = "policy:\n  rules:\n    - allow: true\n"
    assert policy_from_text(text).revision == policy_from_text(text).revision
    assert policy_from_text(text).revision != policy_from_text(text + "# edit\n").revision


# --- no policy at all -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({}, id="an empty folder"),
        pytest.param({"refunds_test.yaml": "tests: []\n"}, id="only a policy test file"),
        pytest.param({"notes.txt": "policy: no\n"}, id="only a file that is not yaml"),
    ],
)
def test_no_policy_file_is_w_pol_005(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path], root=tmp_path)
    assert caught.value.code == "W-POL-005"


def test_a_policy_path_that_does_not_exist_is_w_cfg_001(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path / "nowhere"], root=tmp_path)
    assert caught.value.code == "W-CFG-001"
    assert caught.value.file == "nowhere", "shown relative to the project, like every other error"


def test_policy_files_are_found_below_a_folder_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "policy:\n  rules:\n    - allow: true\n")
    write(tmp_path, "a/z.yaml", "policy:\n  rules:\n    - allow: true\n")
    write(tmp_path, "a/refunds_test.yaml", "tests: []\n")
    policies = load_policies([tmp_path], root=tmp_path)
    assert [p.file for p in policies.policies] == ["a/z.yaml", "b.yml"]
