"""The pytest plugin, run by pytest itself (pytester) as a user's project would."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REFUNDS


def test_policy_test_files_become_pytest_items(pytester: pytest.Pytester) -> None:
    shutil.copytree(REFUNDS, pytester.path / "proj")
    result = pytester.runpytest("--warden-policy-tests", "proj/policies", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_a_failing_policy_case_shows_its_file_line_and_problem(pytester: pytest.Pytester) -> None:
    shutil.copytree(REFUNDS, pytester.path / "proj")
    tests = pytester.path / "proj" / "policies" / "refunds_test.yaml"
    tests.write_text(
        tests.read_text().replace(
            "expect: needs_approval\n    approvers", "expect: allow\n    approvers", 1
        )
    )
    result = pytester.runpytest("--warden-policy-tests", "proj/policies", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*refunds_test.yaml:15*", "*expected allow, got needs_approval*"])


def test_fixtures_give_a_capturing_gate_over_the_project(pytester: pytest.Pytester) -> None:
    shutil.copytree(REFUNDS, pytester.path / "proj")
    pytester.makepyfile(
        test_mine="""
        import warden

        def test_small_refund(warden_gate, warden_decisions, warden_clock):
            d = warden_gate.decide(warden.ToolCall(
                agent="refund_autopilot", tool="create_refund", run_id="r",
                args={"order_id": "ord_123456", "amount_usd": 30.0, "reason": "x"},
                context={"customer_tier": "pro", "customer_id": "cus_1"}))
            assert d.outcome is warden.Outcome.ALLOW
            assert warden_decisions == [d]
            assert d.decided_at == warden_clock.timestamp()
        """
    )
    result = pytester.runpytest("--warden-project", "proj", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
