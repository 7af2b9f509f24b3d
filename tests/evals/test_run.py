"""Running suites: every case governed on a fresh workspace, judged against its
expectations, the same in one process and in several."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warden.evals.run import CaseResult, run_suite
from warden.evals.suite import load_suite, parse_model_option

from .conftest import TILL


def by_id(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {r.id: r for r in results}


@pytest.fixture(scope="module")
def fixture_results() -> list[CaseResult]:
    before = os.environ.get("TILL_LEDGER")
    try:
        return run_suite(load_suite(TILL / "suite.yaml"))
    finally:
        if before is None:
            os.environ.pop("TILL_LEDGER", None)


def test_every_case_of_the_fixture_passes(fixture_results: list[CaseResult]) -> None:
    failing = {r.id: r.problems for r in fixture_results if not r.passed}
    assert failing == {}
    got = {r.id: r.outcome for r in fixture_results}
    assert got == {
        "pay-small": "success",
        "pay-medium": "success",
        "pay-medium-waits": "needs_approval",
        "pay-medium-denied": "deny",
        "pay-large": "deny",
        "looping": "escalate",
        "inline-turns": "success",
    }


def test_results_carry_the_runs_figures(fixture_results: list[CaseResult]) -> None:
    r = by_id(fixture_results)
    small = r["pay-small"]
    assert small.tool_calls == 2 and small.turns == 3
    assert small.usd > 0 and small.wall_ms > 0
    assert [c["tool"] for c in small.calls] == ["balance", "pay"]
    assert r["pay-medium"].approvals == 1
    assert r["pay-medium-waits"].approvals == 1
    assert r["pay-large"].denials == 1 and r["pay-large"].code == "W-POL-101"
    assert r["looping"].code == "W-LOOP-001"
    assert r["inline-turns"].usd == 0.0  # inline turns are priced as nobody's model


def test_many_workers_give_the_same_results_in_suite_order(
    fixture_results: list[CaseResult],
) -> None:
    seen: list[str] = []
    parallel = run_suite(
        load_suite(TILL / "suite.yaml"), workers=2, on_result=lambda r: seen.append(r.id)
    )
    assert [r.id for r in parallel] == [r.id for r in fixture_results]
    assert sorted(seen) == sorted(r.id for r in fixture_results)
    for a, b in zip(parallel, fixture_results, strict=True):
        assert (a.passed, a.outcome, a.code, a.tool_calls) == (
            b.passed,
            b.outcome,
            b.code,
            b.tool_calls,
        )
        assert a.usd == pytest.approx(b.usd)


def suite_with(till: Path, case: str) -> Path:
    path = till / "one.yaml"
    path.write_text(
        "suite: one\nagent: clerk\nmodel: {script: till_script.yaml}\n"
        "backend: till_eval:backend\napprover: {by: fiona}\ncases:\n" + case,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("case", "problems"),
    [
        (
            "  - id: pay-small\n    task: t\n    expect: {outcome: deny}\n",
            ["outcome success, expected deny"],
        ),
        (
            "  - id: pay-large\n    task: t\n    expect: {outcome: deny, code: W-POL-102}\n",
            ["code W-POL-101, expected W-POL-102"],
        ),
        (
            "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
            "      calls: {match: exact, calls: [pay]}\n",
            ["calls balance, pay; expected exactly pay"],
        ),
        (
            "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
            "      calls: [pay, balance]\n",
            ["calls balance, pay; expected in order pay, balance (missing from balance)"],
        ),
        (
            "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
            "      calls: {match: subset, calls: [{pay: {amount_usd: 41}}]}\n",
            ["calls balance, pay; expected also pay(amount_usd=41)"],
        ),
        (
            "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
            "      never: [{pay: {payee: acct_bob}}]\n",
            ["pay executed, matching never: pay(payee='acct_bob')"],
        ),
        (
            "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
            "      state: ['len(payments) == 2', 'refunds == 1', 'payments[5] == 1']\n",
            [
                "state check 'len(payments) == 2' (line 11) is false",
                "state check 'refunds == 1' (line 11): no 'refunds' in the state",
                "state check 'payments[5] == 1' (line 11) failed: IndexError: list index "
                "out of range",
            ],
        ),
        (
            "  - id: pay-small\n    task: t\n"
            "    expect: {outcome: success, answer_contains: Carol}\n",
            ["the answer does not contain 'Carol'"],
        ),
        (
            "  - id: pay-medium\n    task: t\n"
            "    verdicts: [{approve: true, by: frank, role: ops}]\n"
            "    expect: {outcome: success}\n",
            ["the case could not run: W-APR-006"],
        ),
    ],
    ids=[
        "outcome",
        "code",
        "exact",
        "ordered",
        "subset",
        "never",
        "state",
        "answer",
        "bad-verdict",
    ],
)
def test_a_run_that_misses_its_expectations_says_which(
    till: Path, case: str, problems: list[str]
) -> None:
    (result,) = run_suite(load_suite(suite_with(till, case)))
    assert not result.passed
    for expected, got in zip(problems, result.problems, strict=False):
        assert got.startswith(expected), got
    assert len(result.problems) == len(problems)


def test_a_violation_is_counted_and_fails_the_case(till: Path) -> None:
    (result,) = run_suite(
        load_suite(
            suite_with(
                till,
                "  - id: pay-small\n    task: t\n    expect:\n      outcome: success\n"
                "      never: [pay, {pay: {amount_usd: 40}}]\n",
            )
        )
    )
    assert len(result.violations) == 2 and not result.passed


def test_a_case_whose_backend_fails_fails_alone(till: Path) -> None:
    (till / "till_eval.py").write_text(
        "def backend(workdir):\n    raise RuntimeError('no ledger today')\n", encoding="utf-8"
    )
    results = run_suite(load_suite(till / "suite.yaml").only(["pay-small", "pay-large"]))
    assert [r.outcome for r in results] == ["error", "error"]
    assert results[0].error == "RuntimeError: no ledger today"


def test_the_model_option_replaces_every_cases_model(till: Path) -> None:
    other = till / "other.yaml"
    other.write_text("scripts:\n  default:\n    - text: I will not pay anyone.\n", encoding="utf-8")
    results = run_suite(
        load_suite(till / "suite.yaml").only(["pay-small", "inline-turns"]),
        model=parse_model_option([str(other)]),
    )
    assert [r.tool_calls for r in results] == [0, 0]
    assert all(r.answer == "I will not pay anyone." for r in results)


@pytest.mark.parametrize(("fsync", "level"), [(True, 2), (False, 0)])
def test_an_eval_store_skips_fsync_and_a_default_store_does_not(
    tmp_path: Path, fsync: bool, level: int
) -> None:
    from warden.store.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "w.db", fsync=fsync) as store:
        conn = store._reader()  # pyright: ignore[reportPrivateUsage]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
