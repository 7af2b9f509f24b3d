"""The compiled plan decides exactly as the rule-by-rule path does."""

from __future__ import annotations

import pytest
from bench.engine_warden import AGENT, NOW, RUN_ID, load_rules
from bench.workload import generate_requests
from hypothesis import given, settings
from hypothesis import strategies as st

import warden
from warden.history import HistoryView
from warden.policy import AgentView, NowView, RunView
from warden.policy.evaluate import _evaluate_slow  # pyright: ignore[reportPrivateUsage]
from warden.policy.expr import RUN_FIELDS

AGENT_VIEW = AgentView(name=AGENT)


def _both(
    policies: warden.PolicySet, tool: str, args: dict, context: dict, facts: dict, calls: int
):  # type: ignore[type-arg]
    plan = policies.plan(tool, AGENT_VIEW.name)
    run = RunView(id=RUN_ID, calls=calls)
    call = (
        args,
        context,
        facts,
        AGENT_VIEW,
        run,
        NowView(NOW),
        HistoryView((), run_id=RUN_ID, tool=tool, now=NOW),
    )
    return plan.decide(*call), _evaluate_slow(plan.policies, plan.static_redact, call)


def test_the_plan_and_the_rule_by_rule_path_agree_on_the_benchmark_workload() -> None:
    policies = load_rules()
    for r in generate_requests(512):
        fast, slow = _both(policies, r.tool, r.args, r.context, r.facts, r.run_calls)
        assert fast == slow, (r, fast, slow)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.one_of(st.floats(-5, 3000), st.integers(-5, 3000), st.text(max_size=3), st.none()),
    tier=st.sampled_from(["free", "standard", "pro", "enterprise", None]),
    region=st.sampled_from(["US", "EU", "KP", None]),
    score=st.one_of(st.integers(0, 100), st.none()),
    calls=st.integers(0, 12),
)
def test_the_plan_and_the_rule_by_rule_path_agree_on_any_input(
    amount: object, tier: str | None, region: str | None, score: int | None, calls: int
) -> None:
    policies = load_rules()
    args = {
        "order_id": "ord_1",
        "customer_id": "c",
        "amount_usd": amount,
        "currency": "USD",
        "order_total_usd": 100.0,
        "reason": "r",
    }
    context = {
        k: v for k, v in (("customer_tier", tier), ("region", region), ("channel", "web")) if v
    }
    facts = {
        "chargeback_last_180d": False,
        "account_age_days": 400,
        "refunded_last_30d_usd": 0.0,
        "lifetime_value_usd": 1000.0,
    } | ({"fraud_score": score} if score is not None else {})
    for tool in ("create_refund", "issue_credit"):
        fast, slow = _both(policies, tool, args, context, facts, calls)
        assert (fast.outcome, fast.code, fast.rules) == (slow.outcome, slow.code, slow.rules)


def test_run_view_fields_are_the_order_conditions_index() -> None:
    assert RunView._fields == RUN_FIELDS


@pytest.mark.parametrize("condition", ["run.call > 3", "agent.role == 'x'", "now.year == 2026"])
def test_a_view_field_that_does_not_exist_is_refused_at_load(condition: str) -> None:
    with pytest.raises(warden.PolicyError) as exc:
        warden.policy_from_text(f'policy:\n  rules:\n    - if: "{condition}"\n      allow: true\n')
    assert exc.value.code == "W-POL-002"
    assert exc.value.line == 3


def test_a_fact_is_asked_only_when_a_rule_needs_it() -> None:
    policies = warden.policy_from_text(
        "policy:\n  rules:\n"
        '    - if: "amount <= 10"\n      allow: true\n'
        '    - if: "facts.risky"\n      deny: risky\n'
        '    - if: "facts.risky == false"\n      allow: true\n'
    )
    asked: list[str] = []

    class Facts(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: str) -> object:
            asked.append(key)
            return False

    plan = policies.plan("t", "a")
    small = plan.decide({"amount": 5}, {}, Facts(), AgentView(name="a"), None, None, None)
    assert small.outcome is warden.Outcome.ALLOW and asked == []
    big = plan.decide({"amount": 50}, {}, Facts(), AgentView(name="a"), None, None, None)
    assert big.outcome is warden.Outcome.ALLOW and asked == ["risky"], "asked once, memoised"


def test_the_project_plan_reads_its_own_arguments_directly(refunds_project: warden.Project) -> None:
    plan = refunds_project.policies.plan("create_refund", "refund_autopilot")
    assert "args['amount_usd']" in plan.source, "an argument of the tool is read from args"
    assert "'amount_usd', _M" not in plan.source, "and never looked up in context or facts"
    assert "context.get('customer_tier', _M)" in plan.source, "other names come from context"
