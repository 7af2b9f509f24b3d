"""warden policy explain's traces."""

from __future__ import annotations

from warden.history import HistoryView
from warden.policy import AgentView, NowView, RunView, policy_from_text
from warden.policy.explain import explain


def _explain(condition: str, args: dict[str, object]):  # type: ignore[no-untyped-def]
    policies = policy_from_text(
        f'policy:\n  rules:\n    - if: "{condition}"\n      allow: true\n', file="p.yaml"
    )
    return explain(
        policies,
        "t",
        args=args,
        agent=AgentView(name="a"),
        run=RunView(id="r"),
        context={},
        facts={},
        now=NowView(0.0),
        history=HistoryView((), run_id="r", tool="t", now=0.0),
    )


def test_each_clause_of_a_condition_is_shown_with_its_value() -> None:
    (policy,) = _explain("x > 1 and y == 2", {"x": 5, "y": 3}).policies
    (rule,) = policy.rules
    assert rule.status == "not matched"
    assert [(c.source, c.value) for c in rule.clauses] == [("x > 1", "True"), ("y == 2", "False")]
    assert dict(rule.names) == {"x": "5", "y": "3"}


def test_a_fault_whose_key_cannot_be_printed_is_explained_not_raised() -> None:
    result = _explain("lookup[key] == 1", {"lookup": {}, "key": 10**5000})
    (rule,) = result.policies[0].rules
    assert rule.status.startswith("error: no value named <int>"), rule.status
    assert dict(rule.names)["key"] == "<int>"
    assert (result.result.outcome.value, result.result.code) == ("deny", "W-POL-103")
