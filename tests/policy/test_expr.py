"""Policy conditions: the safe subset is enforced at load, and evaluation fails closed."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.decision import Outcome, RuleRef
from warden.errors import PolicyError
from warden.history import ActionRecord, HistoryView
from warden.policy import (
    AgentView,
    NowView,
    PolicyResult,
    PolicySet,
    RunView,
    Scope,
    compile_condition,
    load_policies,
    make_rule,
    policy_from_text,
    policy_set,
)
from warden.policy.expr import MAX_LENGTH
from warden.yamlsource import parse_yaml

# --- what a condition sees ------------------------------------------------------------------

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC).timestamp()  # a Monday, 14:30 UTC
HOUR = 3600.0

ARGS: dict[str, Any] = {
    "order_id": "ord_100001",
    "amount_usd": 30.0,
    "reason": "damaged",
    "items": [3, 1, 2],
    "customer": {"tier": "pro"},
    "flags": [True, True],
    "note": None,
    "tier": "arg-tier",
}
CONTEXT: dict[str, Any] = {
    "customer_tier": "PRO",
    "region": "us",
    "tier": "context-tier",
    "only_in_context": 1,
}
FACTS: dict[str, Any] = {
    "chargeback_last_180d": False,
    "tier": "fact-tier",
    "only_in_facts": 2,
}
AGENT = AgentView(
    name="support_refund_agent", mode="suggest_then_act", autonomy="L2", tags=["vip", "eu"]
)
RUN = RunView(id="run_1", calls=4, spend=0.015, tokens=1200, elapsed=42.0, tainted=True)
HISTORY = [
    ActionRecord(
        at=NOW - 30 * HOUR,
        run_id="run_0",
        tool="create_refund",
        outcome="allow",
        args={"amount_usd": 100.0},
        approved=True,
    ),
    ActionRecord(
        at=NOW - 5 * HOUR, run_id="run_1", tool="lookup_customer", outcome="allow", args={}
    ),
    ActionRecord(
        at=NOW - 2 * HOUR,
        run_id="run_1",
        tool="create_refund",
        outcome="allow",
        args={"amount_usd": 20.0},
    ),
    ActionRecord(
        at=NOW - 1 * HOUR,
        run_id="run_1",
        tool="create_refund",
        outcome="deny",
        args={"amount_usd": 500.0},
    ),
    ActionRecord(at=NOW - 60, run_id="run_1", tool="list_invoices", outcome="allow", args={}),
]


def _history() -> HistoryView:
    return HistoryView(HISTORY, run_id="run_1", tool="create_refund", now=NOW)


def one_rule_policy(condition: object, outcome: str = "allow: true") -> str:
    """A policy file whose only rule (line 4, condition on line 5) is `condition`."""
    return (
        "policy:\n"
        "  tool: create_refund\n"
        "  rules:\n"
        "    - id: probe\n"
        f"      if: {json.dumps(condition)}\n"
        f"      {outcome}\n"
    )


def evaluate(
    policies: PolicySet,
    *,
    args: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> PolicyResult:
    return policies.evaluate(
        "create_refund",
        args=copy.deepcopy(ARGS) if args is None else args,
        agent=AGENT,
        run=RUN,
        context=CONTEXT if context is None else context,
        facts=FACTS if facts is None else facts,
        now=NowView(NOW),
        history=_history(),
    )


def decide(condition: str, **kw: Any) -> PolicyResult:
    return evaluate(policy_from_text(one_rule_policy(condition), file="inline.yaml"), **kw)


def value_of(condition: str) -> Any:
    """What the condition itself evaluates to (not only whether it matches)."""
    compiled = compile_condition(condition, file="inline.yaml", line=1)
    rule = make_rule(
        ref=RuleRef(id="probe", file="inline.yaml", line=1),
        condition=compiled,
        outcome=Outcome.ALLOW,
        reason="probe",
    )
    args = copy.deepcopy(ARGS)
    scope = Scope(args, CONTEXT, FACTS)
    return rule.test(scope, args, AGENT, RUN, CONTEXT, FACTS, NowView(NOW), _history())


# --- (a) hostile and unsupported conditions are rejected at load ---------------------------

SYNTAX = "W-POL-001"
UNSAFE = "W-POL-002"
TOO_BIG = "W-POL-003"
UNKNOWN_FUNCTION = "W-POL-007"

HOSTILE = [
    # dunder and underscore access
    pytest.param("args.__class__", UNSAFE, id="dunder attribute on args"),
    pytest.param("().__class__.__bases__", UNSAFE, id="dunder chain on a tuple"),
    pytest.param("().__class__.__bases__[0]", UNSAFE, id="dunder chain then index"),
    pytest.param("x.__dict__", UNSAFE, id="dunder dict"),
    pytest.param("context.__class__", UNSAFE, id="dunder attribute on context"),
    pytest.param("args._private", UNSAFE, id="private attribute"),
    pytest.param("history._records", UNSAFE, id="history internals"),
    pytest.param("now._dt", UNSAFE, id="clock internals"),
    pytest.param("facts._registry", UNSAFE, id="fact registry internals"),
    pytest.param("a.b.c.d._e", UNSAFE, id="underscore at the end of a long chain"),
    pytest.param("__builtins__", UNSAFE, id="builtins by name"),
    pytest.param("_E", UNSAFE, id="the evaluator scope by name"),
    pytest.param("_x > 1", UNSAFE, id="name starting with an underscore"),
    pytest.param("_", UNSAFE, id="bare underscore"),
    # constructs outside the subset
    pytest.param("lambda: 1", UNSAFE, id="lambda"),
    pytest.param("(lambda: 0)()", UNSAFE, id="calling a lambda"),
    pytest.param("[x for x in items]", UNSAFE, id="list comprehension"),
    pytest.param("{x for x in items}", UNSAFE, id="set comprehension"),
    pytest.param("{x: 1 for x in items}", UNSAFE, id="dict comprehension"),
    pytest.param("any(x > 1 for x in items)", UNSAFE, id="generator expression"),
    pytest.param("(y := 1) == 1", UNSAFE, id="walrus"),
    pytest.param("f'{order_id}' == 'x'", UNSAFE, id="f-string"),
    pytest.param("2 ** 100000", UNSAFE, id="power operator"),
    pytest.param("a & b", UNSAFE, id="bitwise and"),
    pytest.param("a | b", UNSAFE, id="bitwise or"),
    pytest.param("a ^ b", UNSAFE, id="bitwise xor"),
    pytest.param("a << 64", UNSAFE, id="left shift"),
    pytest.param("a >> 1", UNSAFE, id="right shift"),
    pytest.param("~a", UNSAFE, id="bitwise invert"),
    pytest.param("a @ b", UNSAFE, id="matrix multiply"),
    pytest.param("[*items]", UNSAFE, id="starred list"),
    pytest.param("max(*items)", UNSAFE, id="starred call argument"),
    pytest.param("items[1:2]", UNSAFE, id="slice"),
    pytest.param("order_id[::-1]", UNSAFE, id="reverse slice"),
    pytest.param("{'a': 1}", UNSAFE, id="dict literal"),
    pytest.param("tier in {}", UNSAFE, id="empty dict literal"),
    pytest.param("tier is 'pro'", UNSAFE, id="is against a string"),
    pytest.param("amount_usd is 1", UNSAFE, id="is against a number"),
    pytest.param("tier is not items", UNSAFE, id="is not against a name"),
    pytest.param("b'abc' == order_id", UNSAFE, id="bytes constant"),
    pytest.param("1j == 1", UNSAFE, id="complex constant"),
    pytest.param("... == 1", UNSAFE, id="ellipsis constant"),
    pytest.param("len(**kwargs)", UNSAFE, id="keyword unpacking"),
    pytest.param("len(x)(y)", UNSAFE, id="calling a call result"),
    pytest.param("items[0]()", UNSAFE, id="calling an indexed value"),
    pytest.param("customer.get('k')()", UNSAFE, id="calling a method result"),
    pytest.param("await x", UNSAFE, id="await"),
    # functions and methods that are not provided
    pytest.param("__import__('os')", UNKNOWN_FUNCTION, id="import builtin"),
    pytest.param("eval('1')", UNKNOWN_FUNCTION, id="eval"),
    pytest.param("exec('import os')", UNKNOWN_FUNCTION, id="exec"),
    pytest.param("open('/etc/passwd')", UNKNOWN_FUNCTION, id="open"),
    pytest.param("getattr(args, 'x')", UNKNOWN_FUNCTION, id="getattr"),
    pytest.param("setattr(args, 'x', 1)", UNKNOWN_FUNCTION, id="setattr"),
    pytest.param("type(x)", UNKNOWN_FUNCTION, id="type"),
    pytest.param("compile('1', 'f', 'eval')", UNKNOWN_FUNCTION, id="compile"),
    pytest.param("globals()", UNKNOWN_FUNCTION, id="globals"),
    pytest.param("vars()", UNKNOWN_FUNCTION, id="vars"),
    pytest.param("breakpoint()", UNKNOWN_FUNCTION, id="breakpoint"),
    pytest.param("print(x)", UNKNOWN_FUNCTION, id="print"),
    pytest.param("(x)()", UNKNOWN_FUNCTION, id="calling a parenthesised name"),
    pytest.param("order_id.format()", UNKNOWN_FUNCTION, id="format method"),
    pytest.param("order_id.__len__()", UNKNOWN_FUNCTION, id="dunder method call"),
    pytest.param("x.__class__.__subclasses__()", UNKNOWN_FUNCTION, id="subclasses call"),
    pytest.param("'a'.join(items)", UNKNOWN_FUNCTION, id="join on a string constant"),
    pytest.param("order_id.replace('a', 'b')", UNKNOWN_FUNCTION, id="replace method"),
    pytest.param("order_id.encode()", UNKNOWN_FUNCTION, id="encode method"),
    pytest.param("context.items()", UNKNOWN_FUNCTION, id="items method"),
    pytest.param("customer.pop('tier')", UNKNOWN_FUNCTION, id="mutating pop method"),
    pytest.param("items.append(1)", UNKNOWN_FUNCTION, id="mutating append method"),
    # not an expression at all
    pytest.param("x if", SYNTAX, id="unfinished conditional"),
    pytest.param("amount_usd +", SYNTAX, id="dangling operator"),
    pytest.param("import os", SYNTAX, id="import statement"),
    pytest.param("x = 1", SYNTAX, id="assignment statement"),
    pytest.param("a; b", SYNTAX, id="two statements"),
    pytest.param("(", SYNTAX, id="unclosed parenthesis"),
    pytest.param("", SYNTAX, id="empty string"),
    pytest.param("   ", SYNTAX, id="only blanks"),
    pytest.param("yield x", SYNTAX, id="yield"),
    pytest.param("# only a comment", SYNTAX, id="only a comment"),
    pytest.param("x.\uff3f\uff3fclass\uff3f\uff3f", SYNTAX, id="fullwidth underscores"),
    pytest.param("x\x00", SYNTAX, id="null byte"),
    # too large or too deep
    pytest.param("a" * 3000, TOO_BIG, id="3000 characters"),
    pytest.param("amount_usd > 1" + " " * MAX_LENGTH, TOO_BIG, id="padded past the limit"),
    pytest.param("-" * 30 + "1", TOO_BIG, id="30 nested minus signs"),
    pytest.param("not " * 30 + "x", TOO_BIG, id="30 nested nots"),
    pytest.param("[" * 30 + "]" * 30, TOO_BIG, id="30 nested lists"),
    pytest.param("-" * 1500 + "1", TOO_BIG, id="1500 nested minus signs"),
    pytest.param("[" + ",".join(["1"] * 500) + "]", TOO_BIG, id="500 nodes in a flat list"),
    pytest.param(" or ".join(["a"] * 300), TOO_BIG, id="300 alternatives"),
    pytest.param("+".join(["a"] * 150), TOO_BIG, id="long sum"),
]


@pytest.mark.parametrize(("condition", "code"), HOSTILE)
def test_a_hostile_or_unsupported_condition_is_rejected_at_load_with_its_file_and_line(
    tmp_path: Path, condition: str, code: str
) -> None:
    (tmp_path / "hostile.yaml").write_text(
        "# line 1: a comment, so the rule is not at the top\n"
        "policy:\n"
        "  id: hostile\n"
        "  tool: create_refund\n"
        "  rules:\n"
        "    - id: the-rule\n"
        f"      if: {json.dumps(condition)}\n"
        "      allow: true\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as caught:
        load_policies([tmp_path], root=tmp_path)
    err = caught.value
    assert err.code == code
    assert err.file == "hostile.yaml"
    assert err.line == 7
    assert err.field == "if"
    assert str(err).startswith(f"hostile.yaml:7: {code}: if: ")
    assert "fix: " in str(err)


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        pytest.param(5, SYNTAX, id="a number"),
        pytest.param(1.5, SYNTAX, id="a float"),
        pytest.param(["x"], SYNTAX, id="a list"),
        pytest.param({"x": 1}, SYNTAX, id="a mapping"),
    ],
)
def test_a_condition_that_is_not_a_string_is_rejected(condition: object, code: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_from_text(one_rule_policy(condition), file="inline.yaml")
    assert (caught.value.code, caught.value.file, caught.value.line) == (code, "inline.yaml", 5)
    assert "must be a string" in caught.value.message


def test_a_condition_of_exactly_the_length_limit_is_accepted() -> None:
    condition = "amount_usd > 1" + " " * (MAX_LENGTH - len("amount_usd > 1"))
    assert len(condition) == MAX_LENGTH
    assert compile_condition(condition, file="f.yaml", line=1).names == {"amount_usd"}


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param("'a'.join", id="a method of a string constant, uncalled"),
        pytest.param("order_id.startswith", id="a method of an argument, uncalled"),
        pytest.param("max(['a'], key='{0.__class__}'.format) == 'a'", id="format as a key"),
        pytest.param("max([7], key=items.append) == 7", id="append as a key"),
    ],
)
def test_a_method_reference_that_is_not_a_call_is_rejected_at_load(condition: str) -> None:
    with pytest.raises(PolicyError) as caught:
        compile_condition(condition, file="f.yaml", line=3)
    assert caught.value.code in {UNSAFE, UNKNOWN_FUNCTION}


def test_a_condition_cannot_change_the_arguments_of_the_call() -> None:
    try:
        policies = policy_from_text(one_rule_policy("max([7], key=items.append) == 7"))
    except PolicyError:
        return  # refused at load: nothing can run
    args = copy.deepcopy(ARGS)
    evaluate(policies, args=args)
    assert args["items"] == [3, 1, 2]


# --- (b) accepted conditions and their values -------------------------------------------------

ACCEPTED = [
    # constants
    pytest.param("true", True, id="true"),
    pytest.param("false", False, id="false"),
    pytest.param("null", None, id="null"),
    pytest.param("none", None, id="none"),
    pytest.param("note == null", True, id="equal to null"),
    pytest.param("note is None", True, id="is None"),
    pytest.param("note is not None", False, id="is not None"),
    # comparisons and membership
    pytest.param("amount_usd <= 50 and tier in ['arg-tier', 'pro']", True, id="the seed's shape"),
    pytest.param("customer_tier in ['standard', 'pro']", False, id="in is case-sensitive"),
    pytest.param("lower(customer_tier) in ['standard', 'pro']", True, id="lower then in"),
    pytest.param("customer_tier not in ['standard']", True, id="not in"),
    pytest.param("amount_usd in [30, 'x', true]", True, id="in a mixed list"),
    pytest.param("2 in {1, 2}", True, id="in a set"),
    pytest.param("'dam' in reason", True, id="substring"),
    pytest.param("1 < amount_usd < 100", True, id="chained comparison"),
    pytest.param("amount_usd != 30", False, id="not equal"),
    pytest.param("[1, 2] == [1, 2]", True, id="list equality"),
    pytest.param("(1, 2)", (1, 2), id="tuple"),
    # arithmetic
    pytest.param("amount_usd + 20", 50.0, id="add"),
    pytest.param("amount_usd - 40", -10.0, id="subtract"),
    pytest.param("amount_usd * 2", 60.0, id="multiply"),
    pytest.param("amount_usd / 4", 7.5, id="divide"),
    pytest.param("amount_usd // 4", 7.0, id="floor divide"),
    pytest.param("amount_usd % 7", 2.0, id="modulo"),
    pytest.param("-amount_usd", -30.0, id="negate"),
    pytest.param("+amount_usd", 30.0, id="unary plus"),
    pytest.param("2 + 3 * 4", 14, id="precedence"),
    pytest.param("(2 + 3) * 4", 20, id="parentheses"),
    pytest.param("'a' + 'b'", "ab", id="string concatenation"),
    # conditional expression and boolean logic
    pytest.param("'big' if amount_usd > 100 else 'small'", "small", id="x if c else y"),
    pytest.param("not chargeback_last_180d", True, id="not of a fact"),
    pytest.param("false and no_such_name", False, id="and short-circuits"),
    pytest.param("true or no_such_name", True, id="or short-circuits"),
    # functions
    pytest.param("len(order_id)", 10, id="len of a string"),
    pytest.param("len(items)", 3, id="len of a list"),
    pytest.param("lower('MiXeD')", "mixed", id="lower"),
    pytest.param("min(3, 1, 2)", 1, id="min"),
    pytest.param("max(items)", 3, id="max"),
    pytest.param("abs(-4)", 4, id="abs"),
    pytest.param("round(2.567, 1)", 2.6, id="round"),
    pytest.param("any([false, true])", True, id="any"),
    pytest.param("all(flags)", True, id="all"),
    pytest.param("sum(items)", 6, id="sum"),
    # methods
    pytest.param("order_id.startswith('ord_')", True, id="startswith"),
    pytest.param("order_id.endswith('9')", False, id="endswith"),
    pytest.param("reason.upper()", "DAMAGED", id="upper"),
    pytest.param("customer_tier.casefold()", "pro", id="casefold"),
    pytest.param("'  padded '.strip()", "padded", id="strip on a constant"),
    pytest.param("reason.count('a')", 2, id="count on a string"),
    pytest.param("context.get('region', 'eu')", "us", id="context.get present"),
    pytest.param("context.get('k', 'd')", "d", id="context.get default"),
    pytest.param("args.get('nope')", None, id="args.get missing"),
    pytest.param("customer.get('tier')", "pro", id="get on a nested mapping"),
    pytest.param("facts.get('unknown', 'd')", "d", id="facts.get default"),
    # lookups and name resolution
    pytest.param("args.amount_usd", 30.0, id="args attribute"),
    pytest.param("args.items[0]", 3, id="args attribute then index"),
    pytest.param("args.customer.tier", "pro", id="nested args attributes"),
    pytest.param("customer['tier']", "pro", id="index by key"),
    pytest.param("items[-1]", 2, id="negative index"),
    pytest.param("context.customer_tier", "PRO", id="context attribute"),
    pytest.param("facts.chargeback_last_180d", False, id="facts attribute"),
    pytest.param("tier", "arg-tier", id="an argument wins over context and facts"),
    pytest.param("context.tier", "context-tier", id="context explicitly"),
    pytest.param("facts.tier", "fact-tier", id="facts explicitly"),
    pytest.param("only_in_context", 1, id="a bare name falls back to context"),
    pytest.param("only_in_facts", 2, id="a bare name falls back to facts"),
    # run, now, agent
    pytest.param("run.calls", 4, id="run.calls"),
    pytest.param("run.calls >= 4", True, id="run.calls compared"),
    pytest.param("run.spend", 0.015, id="run.spend"),
    pytest.param("run.tokens", 1200, id="run.tokens"),
    pytest.param("run.elapsed", 42.0, id="run.elapsed"),
    pytest.param("run.tainted", True, id="run.tainted"),
    pytest.param("run.id", "run_1", id="run.id"),
    pytest.param("now.hour", 14, id="now.hour"),
    pytest.param("now.minute", 30, id="now.minute"),
    pytest.param("now.weekday", 0, id="now.weekday"),
    pytest.param("now.date", "2026-01-05", id="now.date"),
    pytest.param("now.iso", "2026-01-05T14:30:00+00:00", id="now.iso"),
    pytest.param("now.hour >= 9 and now.hour < 17", True, id="office hours"),
    pytest.param("agent.name", "support_refund_agent", id="agent.name"),
    pytest.param("agent.mode", "suggest_then_act", id="agent.mode"),
    pytest.param("'vip' in agent.tags", True, id="agent.tags"),
    # history
    pytest.param("history.count(tool='create_refund', within='24h')", 1, id="count in 24h"),
    pytest.param("history.count(tool='create_refund')", 2, id="count ever"),
    pytest.param("history.count(tool='create_refund', outcome='any')", 3, id="count any outcome"),
    pytest.param(
        "history.count(tool='create_refund', within='24h', outcome='deny')", 1, id="denies"
    ),
    pytest.param("history.count(within='6h')", 3, id="count every tool"),
    pytest.param("history.sum_of('amount_usd', tool='create_refund')", 120.0, id="sum_of ever"),
    pytest.param(
        "history.sum_of('amount_usd', tool='create_refund', within='1d')", 20.0, id="sum_of in 1d"
    ),
    pytest.param("history.seen('lookup_customer')", True, id="seen"),
    pytest.param("history.seen('delete_customer')", False, id="not seen"),
    pytest.param("history.happened_before('lookup_customer')", True, id="happened before"),
    pytest.param(
        "history.happened_before('lookup_customer', 'list_invoices')", True, id="in order"
    ),
    pytest.param(
        "history.happened_before('list_invoices', 'lookup_customer')", False, id="out of order"
    ),
    pytest.param(
        "history.approved_before(tool='create_refund', within='30d')",
        True,
        id="approved within 30d",
    ),
    pytest.param(
        "history.approved_before(tool='create_refund', within='1d')", False, id="not within 1d"
    ),
    pytest.param("history.approved_before()", True, id="approved before, this tool"),
]


@pytest.mark.parametrize(("condition", "expected"), ACCEPTED)
def test_an_accepted_condition_evaluates_to_its_value(condition: str, expected: Any) -> None:
    value = value_of(condition)
    if isinstance(expected, float):
        assert value == pytest.approx(expected)
    else:
        assert value == expected
        assert type(value) is type(expected)


@pytest.mark.parametrize(("condition", "expected"), ACCEPTED)
def test_a_rule_matches_exactly_when_its_condition_is_truthy(condition: str, expected: Any) -> None:
    result = decide(condition)
    if expected:
        assert result.outcome is Outcome.ALLOW
        assert result.code is None
        assert result.rules == (RuleRef(id="probe", file="inline.yaml", line=4),)
    else:
        assert result.outcome is Outcome.DENY
        assert result.code == "W-POL-102"
        assert result.rules == ()


def test_a_yaml_boolean_condition_is_read_as_true_or_false() -> None:
    policies = policy_from_text(
        "policy:\n  rules:\n    - if: false\n      deny: never\n    - if: true\n      allow: true\n"
    )
    rules = policies.policies[0].rules
    assert [r.source for r in rules] == ["false", "true"]
    assert evaluate(policies).outcome is Outcome.ALLOW


def test_a_constant_list_in_a_membership_test_is_hoisted_into_a_set() -> None:
    condition = compile_condition("tier in ['a', 'b'] and x not in [1]", file="f.yaml", line=2)
    assert sorted(condition.constants.values(), key=len) == [frozenset({1}), frozenset({"a", "b"})]
    assert condition.names == {"tier", "x"}
    assert "['a', 'b']" not in condition.python


def test_is_null_is_accepted_like_is_none() -> None:
    assert value_of("note is null") is True


# --- (c) a condition that cannot be evaluated fails closed ------------------------------------


@pytest.mark.parametrize(
    ("condition", "args", "says"),
    [
        pytest.param("'a' * 3 == 'aaa'", {}, "only defined for numbers", id="string times int"),
        pytest.param("reason * 3", {"reason": "x"}, "only defined for numbers", id="arg str * int"),
        pytest.param("3 * reason", {"reason": "x"}, "only defined for numbers", id="int * arg str"),
        pytest.param("'%s' % reason", {"reason": "x"}, "only defined for numbers", id="formatting"),
        pytest.param("reason < 1", {"reason": "x"}, "not supported between", id="str < int"),
        pytest.param("amount_usd >= '10'", {"amount_usd": 5}, "not supported", id="int >= str"),
        pytest.param("amount_usd / 0 > 1", {"amount_usd": 5}, "ZeroDivisionError", id="div zero"),
        pytest.param("max(items) > 0", {"items": []}, "empty", id="max of nothing"),
        pytest.param("len(amount_usd) > 0", {"amount_usd": 5}, "has no len", id="len of a number"),
        pytest.param("lower(amount_usd) == 'x'", {"amount_usd": 5}, "takes a string", id="lower"),
        pytest.param("items.startswith('a')", {"items": []}, "AttributeError", id="bad method"),
        pytest.param("tier in ['a']", {"tier": ["a"]}, "unhashable", id="list in constant set"),
        pytest.param("items[5] == 1", {"items": [1]}, "IndexError", id="index out of range"),
        pytest.param("history.count(within='soon') > 0", {}, "not a duration", id="bad duration"),
        pytest.param("customer.tier == 'pro'", {"customer": {}}, "'tier'", id="missing nested key"),
    ],
)
def test_a_runtime_fault_denies_with_w_pol_103_and_names_the_rule(
    condition: str, args: dict[str, Any], says: str
) -> None:
    result = decide(condition, args=args, context={}, facts={})
    assert result.outcome is Outcome.DENY
    assert result.code == "W-POL-103"
    assert result.rules == (RuleRef(id="probe", file="inline.yaml", line=4),)
    (reason,) = result.reasons
    assert reason.startswith("condition could not be evaluated in rule probe (inline.yaml:4): ")
    assert says in reason


@pytest.mark.parametrize(
    ("condition", "name"),
    [
        pytest.param("no_such_name > 1", "no_such_name", id="a bare name"),
        pytest.param("context.region == 'eu'", "region", id="a context key"),
        pytest.param("facts.vip", "vip", id="a fact"),
        pytest.param("args.coupon == 'x'", "coupon", id="an argument"),
    ],
)
def test_a_missing_name_denies_with_w_pol_103_and_a_reason_naming_it(
    condition: str, name: str
) -> None:
    result = decide(condition, args={"amount_usd": 5}, context={}, facts={})
    assert result.outcome is Outcome.DENY
    assert result.code == "W-POL-103"
    assert f"no value named {name!r}" in result.reasons[0]


def test_a_fault_in_one_policy_denies_even_when_another_policy_allows() -> None:
    allow_all = parse_yaml("policy:\n  rules:\n    - allow: true\n", file="allow.yaml")
    faulty = parse_yaml(one_rule_policy("no_such_name > 1"), file="faulty.yaml")
    result = evaluate(policy_set([allow_all, faulty]), args={}, context={}, facts={})
    assert (result.outcome, result.code) == (Outcome.DENY, "W-POL-103")
    assert "faulty.yaml:4" in result.reasons[0]


def test_a_fault_in_a_redact_rule_redacts_its_fields() -> None:
    policies = policy_from_text(
        "policy:\n"
        "  rules:\n"
        "    - if: no_such_name > 1\n"
        "      redact: [card_number]\n"
        "    - allow: true\n"
    )
    result = evaluate(policies, args={}, context={}, facts={})
    assert result.outcome is Outcome.ALLOW
    assert result.redact_fields == {"card_number"}


def test_a_fault_whose_message_cannot_be_rendered_still_fails_closed() -> None:
    result = decide("lookup[key] == 1", args={"lookup": {}, "key": 10**5000}, context={}, facts={})
    assert (result.outcome, result.code) == (Outcome.DENY, "W-POL-103")


# --- (d) evaluation never raises ----------------------------------------------------------------

PROPERTY_CONDITIONS = [
    "amount_usd <= 50 and customer_tier in ['standard', 'pro']",
    "amount_usd * 2 > 10",
    "amount_usd % 3 == 0",
    "amount_usd / n > 1",
    "amount_usd // n == 0",
    "-amount_usd < n",
    "len(items) > 2",
    "max(items) > 1",
    "min(items, default=0) < 0",
    "sum(items) >= 0",
    "any(items) or all(items)",
    "abs(n) > 1",
    "round(n, 1) == n",
    "lower(customer_tier) == 'pro'",
    "order_id.startswith('ord_')",
    "order_id.strip().upper() == 'X'",
    "d.get('k', 0) > 1",
    "items[0] == d",
    "d[order_id] == 1",
    "customer_tier not in [1, 'a', true]",
    "n if items else d",
    "context.get('tier') == customer_tier",
    "facts.missing",
    "history.count(tool=order_id, within=within) >= 1",
    "history.sum_of(order_id, within=within) > n",
    "history.happened_before(order_id, customer_tier)",
    "history.approved_before(tool=order_id, within=within)",
    "run.calls + n > 3",
    "now.hour > n",
    "items + [1] == d",
    "order_id + customer_tier == 'ab'",
    "n is None or n > 0",
    "'x' in order_id",
    "{n, 1} == {1}",
    "args.d.k.j == 1",
    "context.tier.x",
]


@cache
def _property_policy(condition: str) -> PolicySet:
    text = (
        "policy:\n"
        "  tool: create_refund\n"
        "  rules:\n"
        f"    - if: {json.dumps(condition)}\n"
        "      redact: [order_id]\n"
        f"    - if: {json.dumps(condition)}\n"
        "      deny: matched\n"
        f"    - if: {json.dumps(f'not ({condition})')}\n"
        "      require_approval: boss\n"
    )
    return policy_from_text(text, file="property.yaml")


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_names = st.sampled_from(
    ["amount_usd", "customer_tier", "items", "order_id", "n", "d", "within", "tier", "k"]
)
_mappings = st.dictionaries(_names | st.text(max_size=8), _json, max_size=8)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(condition=st.sampled_from(PROPERTY_CONDITIONS), args=_mappings, context=_mappings)
def test_evaluating_any_arguments_always_returns_a_policy_result(
    condition: str, args: dict[str, Any], context: dict[str, Any]
) -> None:
    policies = _property_policy(condition)
    result = policies.evaluate(
        "create_refund",
        args=args,
        agent=AGENT,
        run=RUN,
        context=context,
        facts={},
        now=NowView(NOW),
        history=_history(),
    )
    assert isinstance(result, PolicyResult)
    assert result.outcome in (Outcome.DENY, Outcome.NEEDS_APPROVAL)
    if result.outcome is Outcome.DENY:
        assert result.code in {"W-POL-101", "W-POL-103"}
