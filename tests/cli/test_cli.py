"""The `warden` command: exit codes, coded errors without tracebacks, and each command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import REFUNDS
from warden.cli import cli

WARDEN = Path(sys.executable).with_name("warden")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_check_summarises_a_valid_project() -> None:
    code, out = run("check", "-p", str(REFUNDS))
    assert code == 0, out
    assert "support_refund_agent" in out and "suggest_then_act" in out
    assert "policy revision sha256:" in out


def test_a_broken_manifest_is_reported_with_file_line_and_fix_and_no_traceback(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    shutil.copytree(REFUNDS, project)
    manifest = project / "agents" / "support_refund_agent.yaml"
    manifest.write_text(manifest.read_text().replace("max_tool_calls: 6", "max_tool_calls: six"))
    proc = subprocess.run(
        [str(WARDEN), "check", "-p", str(project)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "agents/support_refund_agent.yaml:7" in proc.stderr
    assert "W-CFG-004" in proc.stderr and "agent.budgets.max_tool_calls" in proc.stderr
    assert "fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_no_project_here_says_so(tmp_path: Path) -> None:
    code, out = run("check", "-p", str(tmp_path))
    assert code == 2 and "W-PRJ-001" in out


def test_policy_test_passes_on_the_example() -> None:
    code, out = run("policy", "test", "-p", str(REFUNDS), "-v")
    assert code == 0, out
    assert "6 passed, 0 failed" in out


def test_policy_test_fails_with_exit_1_when_a_case_fails(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(REFUNDS, project)
    tests = project / "policies" / "refunds_test.yaml"
    tests.write_text(
        tests.read_text().replace("expect: allow\n    rule: refunds#1", "expect: deny", 1)
    )
    code, out = run("policy", "test", "-p", str(project))
    assert code == 1
    assert "FAIL" in out and "expected deny, got allow" in out and "1 failed" in out


def test_policy_test_fails_when_no_case_ran(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(REFUNDS, project)
    (project / "policies" / "refunds_test.yaml").unlink()
    code, out = run("policy", "test", "-p", str(project))
    assert code == 2 and "W-PTS-002" in out


def test_policy_explain_shows_every_rule_and_the_failing_clause() -> None:
    code, out = run(
        "policy",
        "explain",
        "-p",
        str(REFUNDS),
        "-t",
        "create_refund",
        "--args",
        '{"order_id": "ord_123456", "amount_usd": 75.0, "reason": "late"}',
        "--context",
        '{"customer_tier": "standard"}',
    )
    assert code == 0, out
    for expected in (
        "refunds#1",
        "refunds#2",
        "refunds#3",
        "amount_usd <= 50  = False",
        "customer_tier = 'standard'",
        "result: needs_approval",
    ):
        assert expected in out, expected


def test_policy_explain_includes_the_agents_manifest_rules_and_asks_providers() -> None:
    code, out = run(
        "policy",
        "explain",
        "-p",
        str(REFUNDS),
        "-t",
        "create_refund",
        "--agent",
        "support_refund_agent",
        "--args",
        '{"order_id": "ord_123456", "amount_usd": 30.0, "reason": "x"}',
        "--context",
        '{"customer_tier": "pro", "customer_id": "cus_chargeback"}',
        "--ask-providers",
    )
    assert code == 0, out
    assert "deny_if_chargeback_last_180d" in out and "result: deny" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--args", "{not json"), "not valid JSON"), (("-t", "nope"), "no tool named")],
)
def test_policy_explain_rejects_bad_input_clearly(args: tuple[str, ...], message: str) -> None:
    base = ["policy", "explain", "-p", str(REFUNDS)]
    if "-t" not in args:
        base += ["-t", "create_refund"]
    code, out = run(*base, *args)
    assert code == 2 and message in out


def test_tools_schema_exports_each_flavour() -> None:
    for flavour, key in (
        ("openai", "function"),
        ("anthropic", "input_schema"),
        ("mcp", "inputSchema"),
    ):
        code, out = run(
            "tools",
            "schema",
            "-p",
            str(REFUNDS),
            "--format",
            flavour,
            "--agent",
            "support_refund_agent",
        )
        assert code == 0, out
        specs = json.loads(out)
        assert len(specs) == 3 and all(key in s for s in specs)


def test_the_tour_walks_every_scenario() -> None:
    from warden.cli.tour import SCENARIOS

    code, out = run("tour")
    assert code == 0, out
    assert out.count("W-") >= 10
    for expected in (
        "W-BUD-001",
        "W-BUD-003",
        "W-LOOP-001",
        "W-KIL-001",
        "W-BRK-001",
        "W-CON-001",
        "W-IDN-003",
        "W-MODE-002",
        "W-POL-102",
    ):
        assert expected in out, expected
    assert len(SCENARIOS) >= 15


def test_the_tour_scenarios_each_reach_their_check() -> None:
    from warden.cli.tour import run_scenarios

    stages = [d.stage.value for _, d, _done in run_scenarios()]
    assert set(stages) >= {
        "kill_switch",
        "identity",
        "contract",
        "loop",
        "budget",
        "breaker",
        "policy",
        "mode",
    }


def test_version_and_help_work() -> None:
    assert run("--version")[1].startswith("warden, version")
    code, out = run("--help")
    assert code == 0 and "policy" in out and "demo" in out
