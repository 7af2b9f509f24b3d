"""`warden eval run` and `warden eval add-run`, as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from warden.evals.suite import load_suite
from warden.execution import Approvals
from warden.models.config import build_runner
from warden.project import load_project
from warden.provenance import Content, Label
from warden.runner import Task
from warden.store.sqlite import SQLiteStore

from .conftest import warden_cli


def test_a_passing_suite_exits_0_and_writes_every_report(till: Path) -> None:
    out = till / "out"
    result = warden_cli(
        "eval", "run", till / "suite.yaml", "-w", "2",
        "--save-baseline", out / "baseline.json",
        "--json", out / "r.json", "--junit", out / "r.xml", "--markdown", out / "r.md",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Cases: 7" in result.output
    assert "Success rate: 100.0% (7/7)" in result.output
    assert "RESULT: PASS" in result.output
    assert json.loads((out / "r.json").read_text())["result"] == "pass"
    assert (out / "r.xml").read_text().startswith("<?xml")
    assert "✅ PASS" in (out / "r.md").read_text()
    again = warden_cli("eval", "run", till / "suite.yaml", "--baseline", out / "baseline.json")
    assert again.exit_code == 0, again.output
    assert "Policy violations: 0 (prev 0)" in again.output


def test_a_weakened_policy_fails_with_the_violation(till: Path) -> None:
    baseline = till / "baseline.json"
    assert (
        warden_cli("eval", "run", till / "suite.yaml", "--save-baseline", baseline).exit_code == 0
    )
    policy = till / "policies" / "payments.yaml"
    policy.write_text(
        policy.read_text().replace('if: "amount_usd <= 100"', 'if: "amount_usd <= 500"'),
        encoding="utf-8",
    )
    result = warden_cli("eval", "run", till / "suite.yaml", "--baseline", baseline)
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("RESULT:"))
    assert line.startswith("RESULT: FAIL (policy violations 1 > allowed 0")
    assert "pay-medium-waits" in result.output
    assert "pay executed, matching never: pay" in result.output


def test_a_more_expensive_model_fails_with_a_cost_regression(till: Path) -> None:
    baseline = till / "baseline.json"
    assert (
        warden_cli("eval", "run", till / "suite.yaml", "--save-baseline", baseline).exit_code == 0
    )
    script = till / "till_script.yaml"
    pricey = till / "pricey.yaml"
    pricey.write_text(script.read_text().replace("gpt-4o-mini", "gpt-4o"), encoding="utf-8")
    result = warden_cli(
        "eval", "run", till / "suite.yaml", "--baseline", baseline, "--model", pricey,
        "--only", "payments",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "RESULT: FAIL (cost regression " in result.output
    assert "> budget 7.0%" in result.output
    # the same route passes when the team raises the budget on purpose
    ok = warden_cli(
        "eval", "run", till / "suite.yaml", "--baseline", baseline, "--model", pricey,
        "--only", "payments", "--threshold", "max_cost_regression=none",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_a_bad_suite_exits_2_naming_file_and_line(till: Path) -> None:
    bad = till / "bad.yaml"
    bad.write_text("suite: x\nagent: clerk\ncases:\n  - id: a\n    task: t\n", encoding="utf-8")
    result = warden_cli("eval", "run", bad)
    assert result.exit_code == 2
    assert "W-EVL-001" in result.output and ":4" in result.output
    missing = warden_cli("eval", "run", till / "suite.yaml", "--baseline", till / "suite.yaml")
    assert missing.exit_code == 2 and "W-EVL-007" in missing.output


def record_a_run(till: Path, goal: str, key: str) -> tuple[Path, str]:
    project = load_project(till)
    db = till / ".warden" / "warden.db"
    db.parent.mkdir(exist_ok=True)
    os.environ["TILL_LEDGER"] = str(till / "ledger.jsonl")
    with SQLiteStore(db) as store:
        result = build_runner(project, store).run(
            Task(
                agent="clerk",
                key=key,
                goal=goal,
                content=(
                    Content(
                        text="From ann@example.com: please pay Bob",
                        label=Label.UNTRUSTED,
                        source="email",
                    ),
                ),
                context={"desk": "north"},
            )
        )
    return db, result.run_id


def test_a_recorded_run_becomes_a_case_that_passes(till: Path) -> None:
    db, run_id = record_a_run(till, "Pay Bob 40 USD from the main account.", "pay-small")
    suite = till / "suite.yaml"
    result = warden_cli("eval", "add-run", run_id, "--suite", suite, "--db", db, "-p", till)
    assert result.exit_code == 0, result.output
    assert f"added case run-{run_id} (success, 3 recorded turns)" in result.output
    text = suite.read_text()
    assert text.startswith("# The eval tests' suite")  # comments are kept
    added = load_suite(suite).cases[-1]
    assert added.id == f"run-{run_id}"
    assert added.model is not None and added.model.recorded_run == run_id
    assert added.model.prices_as == ("openai", "gpt-4o-mini")  # costs what the run did
    assert [str(p) for p in added.expect.calls or ()] == [
        "balance(account='acct_main')",
        "pay(amount_usd=40.0, payee='acct_bob')",
    ]
    raw = yaml.safe_load(text)["cases"][-1]
    assert raw["content"][0]["text"] == "From [redacted email]: please pay Bob"
    assert raw["context"] == {"desk": "north"}
    run = warden_cli("eval", "run", suite, "--only", f"run-{run_id}")
    assert run.exit_code == 0, run.output
    twice = warden_cli("eval", "add-run", run_id, "--suite", suite, "--db", db, "-p", till)
    assert twice.exit_code == 2 and "W-EVL-008" in twice.output


def test_a_waiting_run_becomes_a_case_with_its_verdicts(till: Path) -> None:
    db, run_id = record_a_run(till, "Pay Bob 400 USD.", "pay-medium")
    fresh = till / "evals" / "recorded.yaml"
    fresh.parent.mkdir()
    result = warden_cli(
        "eval", "add-run", run_id, "--suite", fresh, "--db", db, "-p", till, "--id", "waits"
    )
    assert result.exit_code == 0, result.output
    suite = load_suite(fresh)
    assert suite.name == "recorded"
    (case,) = suite.cases
    assert case.expect.outcome == "needs_approval"
    assert case.expect.code == "W-APR-009"
    assert case.verdicts == ()
    run = warden_cli("eval", "run", fresh)
    assert run.exit_code == 0, run.output


def test_the_pytest_fixture_runs_a_suite(warden_eval, till: Path) -> None:  # type: ignore[no-untyped-def]
    run = warden_eval(till / "suite.yaml", only=["payments"])
    run.assert_passed()
    assert run.result("pay-large").outcome == "deny"


def test_a_backend_that_cannot_load_is_reported_once_at_its_line(till: Path) -> None:
    suite = till / "suite.yaml"
    suite.write_text(
        suite.read_text().replace("backend: till_eval:backend", "backend: nosuch:backend"),
        encoding="utf-8",
    )
    result = warden_cli("eval", "run", suite, "-w", "2")
    assert result.exit_code == 2
    assert "suite.yaml:6: W-PRJ-002" in result.output
    assert "No module named 'nosuch'" in result.output


def test_an_approved_run_becomes_a_case_with_the_verdicts_people_gave(till: Path) -> None:
    db, run_id = record_a_run(till, "Pay Bob 400 USD.", "pay-medium")
    project = load_project(till)
    with SQLiteStore(db) as store:
        runner = build_runner(project, store)
        run = store.run(run_id)
        assert run is not None
        (waiting,) = [a for a in run.actions if a.approval_id]
        Approvals(store, roles=project.roles, clock=runner.gate.clock).approve(
            waiting.approval_id or "", approver="fiona", role="finance", reason="invoice seen"
        )
        assert runner.resume(run_id).answer == "Paid Bob 400 USD after approval."
    suite = till / "approved.yaml"
    result = warden_cli("eval", "add-run", run_id, "--suite", suite, "--db", db, "-p", till)
    assert result.exit_code == 0, result.output
    (case,) = load_suite(suite).cases
    assert case.expect.outcome == "success"
    assert [(v.approve, v.by, v.role, v.reason) for v in case.verdicts] == [
        (True, "fiona", "finance", "invoice seen")
    ]
    run_again = warden_cli("eval", "run", suite)
    assert run_again.exit_code == 0, run_again.output
