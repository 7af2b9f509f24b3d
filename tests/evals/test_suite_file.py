"""The suite file: what loads, and what is refused with its code, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.errors import ConfigError, EvalError
from warden.evals.suite import Thresholds, load_suite, parse_model_option

from .conftest import TILL

HEAD = """\
suite: t
project: {project}
agent: clerk
model: {{script: {script}}}
"""

ONE_CASE = """\
cases:
  - id: a
    task: do it
    expect: {outcome: success}
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(
        HEAD.format(project=TILL, script=TILL / "till_script.yaml") + body, encoding="utf-8"
    )
    return path


def test_the_fixture_suite_loads_with_defaults_applied() -> None:
    suite = load_suite(TILL / "suite.yaml")
    assert suite.name == "till"
    assert suite.project == TILL.resolve()
    by_id = {c.id: c for c in suite.cases}
    assert by_id["pay-medium-waits"].key == "pay-medium"
    assert by_id["pay-small"].key == "pay-small"
    assert by_id["pay-medium"].verdicts[0].by == "fiona"  # from the suite's approver
    assert by_id["pay-medium-denied"].verdicts[0].by == "frank"
    assert by_id["inline-turns"].model is not None and by_id["inline-turns"].model.kind == "turns"
    assert by_id["pay-small"].expect.match == "exact"
    assert [str(p) for p in by_id["pay-small"].expect.calls or ()] == [
        "balance",
        "pay(payee='acct_bob', amount_usd=40)",
    ]


def one(expect: str = "{outcome: success}", extra: str = "") -> str:
    """A suite's ``cases:`` with one case (its expectation and extra keys given)."""
    return f"cases:\n  - id: a\n    task: x\n{extra}    expect: {expect}\n"


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        (ONE_CASE + "  - id: a\n    task: again\n    expect: {outcome: success}\n", 9, "twice"),
        (one("{outcome: maybe}"), 8, "needs_approval"),
        (one(extra="    colour: red\n"), 8, "colour"),
        (one("\n      outcome: success\n      state: ['import os']"), 10, "state check"),
        (one("\n      outcome: success\n      never: [{a: 1, b: 2}]"), 10, "one `tool"),
        (one(extra="    model: {script: x.yaml, turns: []}\n"), 8, "exactly one"),
        (one(extra="    model: {script: missing.yaml}\n"), 8, "no script file"),
        ("cases: []\n", 5, "at least 1"),
    ],
    ids=[
        "duplicate-id",
        "bad-outcome",
        "unknown-key",
        "unsafe-check",
        "bad-pattern",
        "two-models",
        "missing-script",
        "no-cases",
    ],
)
def test_bad_suites_name_file_line_and_code(
    tmp_path: Path, body: str, line: int, says: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_suite(path, display="suite.yaml")
    err = caught.value
    assert err.code == "W-EVL-001"
    assert err.file == "suite.yaml"
    assert err.line == line
    assert says in str(err)


def test_a_case_without_an_agent_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"suite: t\nproject: {TILL}\n" + ONE_CASE, encoding="utf-8")
    with pytest.raises(ConfigError, match="no agent"):
        load_suite(path)


def test_a_suite_far_from_any_project_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("suite: t\nagent: clerk\n" + ONE_CASE, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no warden\.yaml") as caught:
        load_suite(path)
    assert caught.value.hint is not None and "project:" in caught.value.hint


def test_only_selects_by_id_and_tag_and_refuses_nothing() -> None:
    suite = load_suite(TILL / "suite.yaml")
    assert [c.id for c in suite.only(["approvals"]).cases] == [
        "pay-medium",
        "pay-medium-waits",
        "pay-medium-denied",
    ]
    assert [c.id for c in suite.only(["looping"]).cases] == ["looping"]
    with pytest.raises(EvalError) as caught:
        suite.only(["nope"])
    assert caught.value.code == "W-EVL-006"


@pytest.mark.parametrize(
    ("pairs", "field", "value"),
    [
        (["max_cost_regression=5%"], "max_cost_regression", 0.05),
        (["max-cost-regression=0.5"], "max_cost_regression", 0.5),
        (["max_p95_regression=none"], "max_p95_regression", None),
        (["min_success_rate=90%"], "min_success_rate", 0.9),
        (["max_new_violations=2"], "max_new_violations", 2),
    ],
)
def test_threshold_overrides(pairs: list[str], field: str, value: object) -> None:
    assert getattr(Thresholds().override(pairs), field) == value


@pytest.mark.parametrize("pair", ["max_cost=5%", "max_cost_regression", "min_success_rate=150%"])
def test_bad_threshold_overrides_are_w_evl_005(pair: str) -> None:
    with pytest.raises(EvalError) as caught:
        Thresholds().override([pair])
    assert caught.value.code == "W-EVL-005"


def test_model_options(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("scripts: {}\n", encoding="utf-8")
    assert parse_model_option(["default"]).kind == "default"
    assert parse_model_option([str(script)]).path == script.resolve()
    route = parse_model_option(["openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5"])
    assert [(s.provider, s.name) for s in route.settings] == [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
    ]
    for bad in (["gpt-4o"], ["mystery:x"], ["missing.yaml"]):
        with pytest.raises(EvalError) as caught:
            parse_model_option(bad, tmp_path)
        assert caught.value.code == "W-EVL-002"
