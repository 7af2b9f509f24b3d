"""The support desk's eval suite (examples/support_desk/evals/) as a release gate.

The suite passes against its recorded baseline; a copy of the example whose refund policy
was weakened fails with policy violations; the same scripted turns priced as a dearer
model fail on cost. Each run goes through `warden eval run` on a copy of the example in
tmp_path, with two worker processes, as CI runs it.

The p95 threshold is turned off in these runs: latency depends on the machine and its
load, and tests never assert timings (every other figure is deterministic here).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from click.testing import CliRunner

from tests.examples.conftest import EXAMPLE
from warden.cli import cli
from warden.evals.suite import load_suite
from warden.models.scripted import ScriptedModel

EVALS = EXAMPLE / "evals"
SUITE = "evals/support_desk.yaml"
BASELINE = "evals/baseline.json"
NO_TIMINGS = ("--threshold", "max_p95_regression=none")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the support-desk example, with no database and no bytecode."""
    root = tmp_path / "support_desk"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".warden", "__pycache__", "*.pyc"))
    return root


def eval_run(root: Path, *args: str) -> tuple[int, str, str]:
    """`warden eval run` on the copy's suite: the exit code, the output and the RESULT line."""
    done = CliRunner().invoke(
        cli, ["eval", "run", str(root / SUITE), "--workers", "2", *NO_TIMINGS, *args]
    )
    lines = [line for line in done.output.splitlines() if line.startswith("RESULT:")]
    assert len(lines) == 1, done.output
    return done.exit_code, done.output, lines[0]


# --- the gate -------------------------------------------------------------------------------


def test_the_suite_passes_against_its_baseline(example: Path, tmp_path: Path) -> None:
    code, output, result = eval_run(
        example,
        "--baseline",
        str(example / BASELINE),
        "--junit",
        str(tmp_path / "evals.xml"),
        "--markdown",
        str(tmp_path / "evals.md"),
    )

    assert (code, result) == (0, "RESULT: PASS"), output
    assert "Policy violations: 0 (prev 0)" in output
    junit = ElementTree.parse(tmp_path / "evals.xml").getroot()
    names = [t.get("name") for t in junit.iter("testcase")]
    assert names == [c["id"] for c in _cases()] + ["release gate"]
    assert not list(junit.iter("failure"))
    assert "PASS" in (tmp_path / "evals.md").read_text(encoding="utf-8").splitlines()[0]


WEAKENINGS = {
    # id: (the line of policies/refunds.yaml, what it becomes, a case that now breaks a `never`)
    "small refunds up to $500": (
        "if: \"amount_usd <= 50 and customer_tier in ['standard', 'pro']\"",
        "if: \"amount_usd <= 500 and customer_tier in ['standard', 'pro']\"",
        "T-1024",
    ),
    "no approval for large refunds": (
        "require_approval: support_manager",
        "allow: true",
        "one-refund-allowed-one-held",
    ),
    "no chargeback rule": (
        'if: "chargeback_last_180d"',
        'if: "false"',
        "T-1008",
    ),
}


@pytest.mark.parametrize(("line", "weaker", "case"), WEAKENINGS.values(), ids=WEAKENINGS.keys())
def test_a_weakened_refund_policy_fails_the_gate_with_policy_violations(
    example: Path, line: str, weaker: str, case: str
) -> None:
    policy = example / "policies" / "refunds.yaml"
    text = policy.read_text(encoding="utf-8")
    assert text.count(line) == 1
    policy.write_text(text.replace(line, weaker), encoding="utf-8")

    code, output, result = eval_run(example, "--baseline", str(example / BASELINE))

    assert code == 1, output
    assert result.startswith("RESULT: FAIL (") and "policy violations" in result, result
    assert f"{case} " in output and "matching never" in output


def test_the_same_turns_priced_as_a_dearer_model_fail_on_cost(example: Path) -> None:
    script = example / "evals" / "desk_script.yaml"
    dearer = example / "evals" / "desk_script_gpt4o.yaml"
    text = script.read_text(encoding="utf-8")
    mini = "prices_as: {provider: openai, model: gpt-4o-mini}"
    assert text.count(mini) == 1
    dearer.write_text(
        text.replace(mini, "prices_as: {provider: openai, model: gpt-4o}"), encoding="utf-8"
    )

    code, output, result = eval_run(
        example, "--baseline", str(example / BASELINE), "--model", str(dearer)
    )

    assert code == 1, output
    assert "cost regression" in result, result


# --- the suite, its script and its backend --------------------------------------------------


def _cases() -> list[dict[str, Any]]:
    return yaml.safe_load((EVALS / "support_desk.yaml").read_text(encoding="utf-8"))["cases"]


def _scripts(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["scripts"]


def test_the_suite_covers_every_kind_of_ending_and_match() -> None:
    suite = load_suite(EVALS / "support_desk.yaml")
    cases = _cases()

    assert len(suite.cases) >= 50
    assert {c.expect.outcome for c in suite.cases} == {
        "success",
        "deny",
        "needs_approval",
        "escalate",
    }
    assert {c.expect.match for c in suite.cases if c.expect.calls is not None} == {
        "exact",
        "ordered",
        "subset",
    }
    verdicts = {v["approve"] for c in cases for v in c.get("verdicts", [])}
    assert verdicts == {True, False}
    assert sum(1 for c in suite.cases if c.expect.never) >= 30
    assert all(c.key in ScriptedModel.load(EVALS / "desk_script.yaml").tasks() for c in suite.cases)


def test_the_demo_tickets_are_cases_with_the_demo_s_emails_and_turns() -> None:
    tickets = yaml.safe_load((EXAMPLE / "tickets.yaml").read_text(encoding="utf-8"))["tickets"]
    cases = {c["id"]: c for c in _cases()}
    demo, evals = _scripts(EXAMPLE / "model_script.yaml"), _scripts(EVALS / "desk_script.yaml")
    for t in tickets:
        case = cases[t["id"]]
        assert case["task"] == (
            f"Resolve support ticket {t['id']} from customer {t['customer_id']}. "
            f"Subject: {t['subject']}"
        )
        assert case["content"] == [
            {"label": "untrusted", "source": f"ticket {t['id']} email body", "text": t["body"]}
        ]
        assert case["context"] == {
            "ticket_id": t["id"],
            "ticket_customer": t["customer_id"],
            **t.get("context", {}),
        }
        assert case["on_behalf_of"] == t["customer_id"]
        assert evals[t["id"]] == demo[t["id"]], t["id"]


def test_usage_grows_turn_by_turn_in_the_suite_s_own_scripts() -> None:
    demo = _scripts(EXAMPLE / "model_script.yaml")
    for key, turns in _scripts(EVALS / "desk_script.yaml").items():
        if key in demo:
            continue
        usage = [t["usage"] for t in turns if "usage" in t]
        inputs = [u["input_tokens"] for u in usage]
        assert usage and inputs == sorted(inputs) and 1000 < inputs[0] < 12000, key
        assert all(u["cached_input_tokens"] <= u["input_tokens"] for u in usage), key


@pytest.fixture
def desk_eval(desk: Any) -> Iterator[Any]:
    """The example's eval backend module (importable once the project is loaded), with
    the environment variables it sets given back afterwards."""
    import desk_eval as module  # pyright: ignore[reportMissingImports]

    saved = {k: os.environ.get(k) for k in ("SUPPORT_DESK_BILLING_DB", "SUPPORT_DESK_SLOW_SECONDS")}
    yield module
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_each_case_gets_a_fresh_billing_database_of_its_own(desk_eval: Any, tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()

    a = desk_eval.backend(first)
    assert os.environ["SUPPORT_DESK_BILLING_DB"] == str(first / "billing.db")
    conn = sqlite3.connect(first / "billing.db")
    with conn:
        conn.execute(
            "INSERT INTO replies VALUES ('rp_1', 'T-1001', 'Hi', 'sent', 'k1', '2026-01-01')"
        )
    conn.close()
    a.close()
    b = desk_eval.backend(second)

    assert a.state()["replies"] == [{"ticket_id": "T-1001", "status": "sent", "body": "Hi"}]
    assert b.state() == {"refunds": [], "replies": [], "refunded": {}, "refunded_usd": 0.0}
    assert os.environ["SUPPORT_DESK_BILLING_DB"] == str(second / "billing.db")
    b.close()


def test_a_case_can_start_after_an_earlier_ticket_s_refund(desk_eval: Any, tmp_path: Path) -> None:
    backend = desk_eval.backend(
        tmp_path, refunds=[{"order_id": "ord_2010", "amount_usd": 27.99, "ticket": "T-1004"}]
    )
    state = backend.state()
    backend.close()

    assert state["refunded"] == {"ord_2010": 27.99} and state["refunded_usd"] == 27.99
    assert [(r["customer_id"], r["method"], r["reversed"]) for r in state["refunds"]] == [
        ("cus_1007", "original_payment", False)
    ]


def test_closing_the_backend_gives_the_environment_back(desk_eval: Any, tmp_path: Path) -> None:
    os.environ.pop("SUPPORT_DESK_BILLING_DB", None)
    os.environ["SUPPORT_DESK_SLOW_SECONDS"] = "3.0"

    backend = desk_eval.backend(tmp_path)
    assert os.environ["SUPPORT_DESK_SLOW_SECONDS"] == str(desk_eval.SLOW_SECONDS)
    backend.close()

    assert "SUPPORT_DESK_BILLING_DB" not in os.environ
    assert os.environ["SUPPORT_DESK_SLOW_SECONDS"] == "3.0"


def test_the_ci_workflow_in_the_docs_is_the_example_s() -> None:
    root = EXAMPLE.parents[1]
    example = (root / "examples" / "ci" / "warden-evals.yml").read_text(encoding="utf-8")
    shown = (root / "docs" / "snippets" / "ci" / "warden-evals.yml").read_text(encoding="utf-8")

    assert shown == example
    steps = yaml.safe_load(example)["jobs"]["evals"]["steps"]
    run = next(s["run"] for s in steps if "warden eval run" in s.get("run", ""))
    assert all(f" {o} " in f" {run} " for o in ("--baseline", "--junit", "--markdown"))
