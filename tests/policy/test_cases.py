"""Policy tests: *_test.yaml cases, their setups (history, now, run) and their failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from warden.errors import PolicyTestError
from warden.policy.cases import CaseResult, discover_test_files, load_cases, run_cases

ROOT = Path(__file__).resolve().parents[2]
REFUNDS = ROOT / "examples" / "refunds"
REFUNDS_TESTS = REFUNDS / "policies" / "refunds_test.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_file(path: Path) -> list[CaseResult]:
    return run_cases(load_cases(path, display=path.name))


def only(results: list[CaseResult]) -> CaseResult:
    (result,) = results
    return result


@pytest.fixture
def refunds_project() -> Iterator[warden.Project]:
    project = warden.load_project(REFUNDS)
    yield project
    project.facts.close()


# --- the example's policy tests ------------------------------------------------------------------


def test_the_refunds_example_policy_tests_pass_on_the_policy_file_alone() -> None:
    results = run_file(REFUNDS_TESTS)
    assert len(results) == 6
    assert all(r.passed for r in results), [(r.case.name, r.problems) for r in results]
    assert [r.outcome for r in results] == [
        "allow",
        "allow",
        "needs_approval",
        "needs_approval",
        "deny",
        "deny",
    ]


def test_the_refunds_example_policy_tests_pass_with_the_project_contracts(
    refunds_project: warden.Project,
) -> None:
    cases = [c for f in discover_test_files([REFUNDS]) for c in load_cases(f)]
    assert {c.file for c in cases} == {str(REFUNDS_TESTS)}
    results = refunds_project.run_policy_cases(cases)
    assert all(r.passed for r in results), [(r.case.name, r.problems) for r in results]
    assert results[0].rules == ("refunds#1",)


def test_each_case_knows_its_line_and_policy_file() -> None:
    cases = load_cases(REFUNDS_TESTS, display="policies/refunds_test.yaml")
    assert [c.line for c in cases] == [3, 9, 15, 21, 26, 32]
    assert {c.policy_file for c in cases} == {REFUNDS / "policies" / "refunds.yaml"}
    assert cases[0].name == "small refund for a pro customer is allowed"
    assert cases[0].file == "policies/refunds_test.yaml"


# --- a failing case -------------------------------------------------------------------------------

POLICY = """\
policy:
  tool: create_refund
  rules:
    - if: amount_usd > 100
      deny: too much
    - if: amount_usd > 50
      require_approval: support_manager
    - if: amount_usd > 0
      allow: true
"""


def test_a_failing_case_reports_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "refunds.yaml", POLICY)
    path = write(
        tmp_path,
        "refunds_test.yaml",
        "tests:\n"
        "  - name: a wrong expectation\n"
        "    tool: create_refund\n"
        "    args: {amount_usd: 500}\n"
        "    expect: allow\n"
        "    code: W-POL-102\n"
        "    rule: refunds#3\n"
        "    approvers: [cfo]\n"
        "    reason_contains: small enough\n",
    )
    result = only(run_file(path))
    assert not result.passed
    assert result.outcome == "deny"
    assert result.code == "W-POL-101"
    assert result.rules == ("refunds#1",)
    assert result.problems == (
        "expected allow, got deny",
        "expected code W-POL-102, got W-POL-101",
        "expected rule refunds#3 to decide, got refunds#1",
        "expected approvers ['cfo'], got []",
        "no reason contains 'small enough'",
    )
    assert (result.case.file, result.case.line) == ("refunds_test.yaml", 2)


@pytest.mark.parametrize(
    ("amount", "expect", "extra", "passed"),
    [
        pytest.param(500, "deny", "    reason_contains: too much\n", True, id="deny with reason"),
        pytest.param(
            75, "needs_approval", "    approvers: [support_manager]\n", True, id="approvers"
        ),
        pytest.param(10, "allow", "    rule: refunds#3\n", True, id="the deciding rule"),
        pytest.param(-1, "deny", "    code: W-POL-102\n", True, id="no rule matched"),
        pytest.param(75, "allow", "", False, id="the wrong outcome"),
        pytest.param(10, "allow", "    rule: refunds#1\n", False, id="the wrong rule"),
    ],
)
def test_a_case_passes_only_when_every_expectation_holds(
    tmp_path: Path, amount: int, expect: str, extra: str, passed: bool
) -> None:
    write(tmp_path, "refunds.yaml", POLICY)
    path = write(
        tmp_path,
        "refunds_test.yaml",
        "tests:\n"
        "  - name: one case\n"
        "    tool: create_refund\n"
        f"    args: {{amount_usd: {amount}}}\n"
        f"    expect: {expect}\n" + extra,
    )
    assert only(run_file(path)).passed is passed


def test_a_case_that_cannot_run_is_a_failed_case_not_a_crash(
    tmp_path: Path, refunds_project: warden.Project
) -> None:
    path = write(
        tmp_path,
        "refunds_test.yaml",
        "policy: " + str(REFUNDS / "policies" / "refunds.yaml") + "\ntests:\n"
        "  - name: an amount that breaks the tool contract\n"
        "    tool: create_refund\n"
        "    args: {order_id: ord_100001, amount_usd: '30', reason: r}\n"
        "    expect: allow\n",
    )
    result = only(refunds_project.run_policy_cases(load_cases(path)))
    assert not result.passed
    assert result.outcome == "error"
    assert result.problems[0].startswith("args break the create_refund contract: amount_usd")


def test_a_case_naming_an_agent_goes_through_the_project_gate(
    tmp_path: Path, refunds_project: warden.Project
) -> None:
    path = write(
        tmp_path,
        "agents_test.yaml",
        "tests:\n"
        "  - name: a suggest_then_act agent waits for a person\n"
        "    tool: create_refund\n"
        "    agent: support_refund_agent\n"
        "    args: {order_id: ord_100001, amount_usd: 30.0, reason: damaged}\n"
        "    context: {customer_tier: pro, customer_id: cus_1}\n"
        "    expect: needs_approval\n"
        "    code: W-MODE-002\n"
        "  - name: a chargeback denies through the manifest\n"
        "    tool: create_refund\n"
        "    agent: refund_autopilot\n"
        "    args: {order_id: ord_100001, amount_usd: 30.0, reason: damaged}\n"
        "    context: {customer_tier: pro}\n"
        "    facts: {chargeback_last_180d: true}\n"
        "    expect: deny\n"
        "    rule: refund_autopilot.create_refund.deny_if_chargeback_last_180d\n",
    )
    results = refunds_project.run_policy_cases(load_cases(path))
    assert [r.passed for r in results] == [True, True], [r.problems for r in results]


def test_a_case_naming_an_agent_without_a_project_is_w_pts_001(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "agents_test.yaml",
        "tests:\n  - name: needs a gate\n    tool: t\n    agent: someone\n    expect: allow\n",
    )
    with pytest.raises(PolicyTestError) as caught:
        run_file(path)
    assert (caught.value.code, caught.value.line) == ("W-PTS-001", 2)


# --- files that are wrong -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "line", "field"),
    [
        pytest.param("tests: []\n", "W-PTS-001", 1, "tests", id="an empty list of cases"),
        pytest.param("# nothing\n", "W-PTS-001", None, None, id="an empty file"),
        pytest.param("- name: a\n", "W-PTS-001", 1, None, id="a list, not a mapping"),
        pytest.param("cases:\n  - name: a\n", "W-PTS-001", 1, "tests", id="cases, not tests"),
        pytest.param(
            "tests:\n  - name: a\n    tool: t\n    expect: allow\n    colour: red\n",
            "W-PTS-001", 5, "tests.0.colour",
            id="an unknown field in a case",
        ),
        pytest.param(
            "policy: missing.yaml\ntests:\n  - name: a\n    tool: t\n    expect: allow\n",
            "W-PTS-001", 1, "policy",
            id="a named policy file that does not exist",
        ),
        pytest.param(
            "tests:\n  - name: a\n    tool: t\n    expect: allow\n    history:\n"
            "      - tool: t\n        when: yesterday\n",
            "W-PTS-001", 7, "tests.0.history.0.when",
            id="an unknown field in a history item",
        ),
    ],
)  # fmt: skip
def test_a_wrong_policy_test_file_is_a_coded_error(
    tmp_path: Path, text: str, code: str, line: int | None, field: str | None
) -> None:
    write(tmp_path, "refunds.yaml", POLICY)
    path = write(tmp_path, "refunds_test.yaml", text)
    with pytest.raises(PolicyTestError) as caught:
        load_cases(path, display="refunds_test.yaml")
    err = caught.value
    assert (err.code, err.file, err.line, err.field) == (code, "refunds_test.yaml", line, field)


def test_a_test_file_without_a_policy_beside_it_is_w_pts_001(tmp_path: Path) -> None:
    path = write(
        tmp_path, "orphans_test.yaml", "tests:\n  - name: a\n    tool: t\n    expect: allow\n"
    )
    with pytest.raises(PolicyTestError) as caught:
        load_cases(path, display="orphans_test.yaml")
    assert caught.value.code == "W-PTS-001"
    assert "no policy file orphans.yaml beside this test file" in caught.value.message


@pytest.mark.parametrize(
    "expect",
    [pytest.param("", id="no expect"), pytest.param("    expect: maybe\n", id="unknown outcome")],
)
def test_a_case_without_a_valid_expect_is_w_pts_001(tmp_path: Path, expect: str) -> None:
    write(tmp_path, "refunds.yaml", POLICY)
    path = write(tmp_path, "refunds_test.yaml", "tests:\n  - name: a\n    tool: t\n" + expect)
    with pytest.raises(PolicyTestError) as caught:
        load_cases(path)
    assert caught.value.code == "W-PTS-001"


@pytest.mark.parametrize(
    ("now", "message"),
    [
        pytest.param("yesterday", "is not an ISO time", id="not a time"),
        pytest.param("'2026-01-01T09:00:00'", "has no timezone", id="no timezone"),
    ],
)
def test_a_bad_now_is_w_pts_001_at_the_case(tmp_path: Path, now: str, message: str) -> None:
    write(tmp_path, "refunds.yaml", POLICY)
    path = write(
        tmp_path,
        "refunds_test.yaml",
        "tests:\n  - name: ok\n    tool: create_refund\n    expect: deny\n"
        f"  - name: bad time\n    tool: create_refund\n    expect: deny\n    now: {now}\n",
    )
    with pytest.raises(PolicyTestError) as caught:
        run_file(path)
    assert (caught.value.code, caught.value.line) == ("W-PTS-001", 5)
    assert message in caught.value.message


def test_no_case_at_all_is_w_pts_002() -> None:
    with pytest.raises(PolicyTestError) as caught:
        run_cases([])
    assert caught.value.code == "W-PTS-002"


def test_a_folder_with_no_test_files_gives_no_cases_and_w_pts_002(tmp_path: Path) -> None:
    write(tmp_path, "policies/refunds.yaml", POLICY)
    write(tmp_path, "policies/notes_test.txt", "tests: []\n")
    files = discover_test_files([tmp_path / "policies"])
    assert files == []
    with pytest.raises(PolicyTestError) as caught:
        run_cases([c for f in files for c in load_cases(f)])
    assert caught.value.code == "W-PTS-002"


def test_test_files_are_discovered_below_a_folder(tmp_path: Path) -> None:
    a = write(tmp_path, "a/one_test.yaml", "")
    b = write(tmp_path, "b/two_test.yml", "")
    write(tmp_path, "a/one.yaml", POLICY)
    assert discover_test_files([tmp_path]) == [a, b]
    assert discover_test_files([a, tmp_path / "missing_test.yaml"]) == [a]


# --- history, now and run setups ------------------------------------------------------------------

SETUP_POLICY = """\
policy:
  tool: create_refund
  rules:
    - id: refund-velocity
      if: "history.count(tool='create_refund', within='24h') >= 3"
      deny: too many refunds in a day
    - id: after-hours
      if: "now.hour >= 18 or now.weekday >= 5"
      deny: refunds wait for office hours
    - id: long-run
      if: "run.calls >= 5 or run.tainted"
      deny: the run has gone on too long
    - id: ordered
      if: "history.happened_before('lookup_customer')"
      allow: true
    - id: approved-earlier
      if: "history.approved_before(within='30d')"
      allow: true
"""


def refund_before(ago: str, **more: str) -> str:
    extra = "".join(f"        {k}: {v}\n" for k, v in more.items())
    return f"      - tool: create_refund\n        ago: {ago}\n" + extra


LOOKUP = "      - tool: lookup_customer\n        ago: 5m\n"

SETUPS = [
    pytest.param(
        "    history:\n" + refund_before("1h") + refund_before("2h") + refund_before("3h") + LOOKUP,
        "deny", "refund-velocity",
        id="history: three refunds in a day deny",
    ),
    pytest.param(
        "    history:\n" + refund_before("1h") + refund_before("2h") + refund_before("30h")
        + LOOKUP,
        "allow", "ordered",
        id="history: a refund outside the window does not count",
    ),
    pytest.param(
        "    history:\n" + refund_before("1h") + refund_before("2h")
        + refund_before("3h", outcome="deny") + LOOKUP,
        "allow", "ordered",
        id="history: a denied refund does not count",
    ),
    pytest.param(
        "    history:\n" + LOOKUP + "        same_run: false\n", "deny", None,
        id="history: a lookup in another run does not count",
    ),
    pytest.param(
        "    history:\n" + refund_before("10d", approved="true", same_run="false"),
        "allow", "approved-earlier",
        id="history: an approval within 30 days",
    ),
    pytest.param(
        "    now: '2026-01-01T20:00:00+00:00'\n    history:\n" + LOOKUP,
        "deny", "after-hours",
        id="now: in the evening",
    ),
    pytest.param(
        "    now: '2026-01-01T20:00:00+02:00'\n    history:\n" + LOOKUP,
        "deny", "after-hours",
        id="now: an offset is read as UTC",
    ),
    pytest.param(
        "    now: '2026-01-03T10:00:00+00:00'\n    history:\n" + LOOKUP,
        "deny", "after-hours",
        id="now: on a Saturday",
    ),
    pytest.param(
        "    now: '2026-01-02T10:00:00+00:00'\n    history:\n" + LOOKUP,
        "allow", "ordered",
        id="now: a Friday morning",
    ),
    pytest.param(
        "    run: {calls: 5}\n    history:\n" + LOOKUP,
        "deny", "long-run",
        id="run: many calls",
    ),
    pytest.param(
        "    run: {tainted: true}\n    history:\n" + LOOKUP,
        "deny", "long-run",
        id="run: tainted",
    ),
    pytest.param(
        "    run: {calls: 4, spend: 0.5, tokens: 100, elapsed: 30}\n    history:\n" + LOOKUP,
        "allow", "ordered",
        id="run: within limits",
    ),
    pytest.param("", "deny", None, id="nothing set up: no rule matches"),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "expect", "rule"), SETUPS)
def test_history_now_and_run_setups_reach_the_conditions(
    tmp_path: Path, setup: str, expect: str, rule: str | None
) -> None:
    write(tmp_path, "velocity.yaml", SETUP_POLICY)
    path = write(
        tmp_path,
        "velocity_test.yaml",
        "tests:\n"
        "  - name: a refund with some past\n"
        "    tool: create_refund\n"
        "    args: {amount_usd: 10}\n"
        f"    expect: {expect}\n" + (f"    rule: {rule}\n" if rule else "") + setup,
    )
    result = only(run_file(path))
    assert result.passed, result.problems
    if rule is None:
        assert result.code == "W-POL-102"


def test_an_agent_case_runs_with_its_run_now_and_history(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import REFUNDS
    from warden.project import load_project

    project = tmp_path / "p"
    shutil.copytree(REFUNDS, project)
    (project / "policies" / "agent_test.yaml").write_text(
        "policy: refunds.yaml\n"
        "tests:\n"
        "  - name: the ninth call of a run is over the budget\n"
        "    agent: refund_autopilot\n    tool: lookup_customer\n    args: {customer_id: cus_1}\n"
        "    run: {calls: 8}\n    expect: deny\n    code: W-BUD-001\n"
        "  - name: a run older than its wall time stops\n"
        "    agent: refund_autopilot\n    tool: lookup_customer\n    args: {customer_id: cus_1}\n"
        "    run: {elapsed: 500}\n    expect: deny\n    code: W-BUD-004\n"
        "  - name: a fresh run may look up\n"
        "    agent: refund_autopilot\n    tool: lookup_customer\n    args: {customer_id: cus_1}\n"
        "    expect: allow\n"
    )
    loaded = load_project(project)
    cases = load_cases(project / "policies" / "agent_test.yaml")
    results = loaded.run_policy_cases(cases)
    assert [r.passed for r in results] == [True, True, True], [r.problems for r in results]


def test_as_agent_lets_a_policy_level_case_reach_an_agent_scoped_policy(tmp_path: Path) -> None:
    write(tmp_path, "scoped.yaml", "policy:\n  agents: [bot]\n  rules:\n    - allow: true\n")
    path = write(
        tmp_path,
        "scoped_test.yaml",
        "tests:\n  - name: as the bot\n    tool: t\n    as_agent: bot\n    expect: allow\n"
        "  - name: as anyone else\n    tool: t\n    expect: deny\n    code: W-POL-102\n",
    )
    results = run_cases(load_cases(path))
    assert [r.passed for r in results] == [True, True], [r.problems for r in results]
