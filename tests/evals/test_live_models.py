"""Live models in evals: the official SDKs against protocol servers on loopback, the
server's answers coming from the till's script (keyed by the case's task key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.evals.run import run_suite
from warden.evals.suite import load_suite, parse_model_option
from warden.models.scripted import ScriptedModel
from warden.testing.loopback import AnthropicServer, OpenAIServer


def test_the_model_option_plays_every_case_with_a_live_openai_model(
    till: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    brain = ScriptedModel.load(till / "till_script.yaml")
    with OpenAIServer(brain) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
        suite = load_suite(till / "suite.yaml").only(["payments"])
        results = run_suite(suite, model=parse_model_option(["openai:gpt-4o-mini"]))
        tasks = {r.headers.get("warden-task") for r in server.requests}
    assert {r.id: r.passed for r in results} == {
        "pay-small": True,
        "pay-medium": True,
        "pay-large": True,
    }
    assert tasks == {"pay-small", "pay-medium", "pay-large"}
    assert all(r.usd > 0 for r in results)  # priced as gpt-4o-mini from the usage


def test_a_suite_names_a_live_model_with_its_settings(
    till: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    brain = ScriptedModel.load(till / "till_script.yaml")
    with AnthropicServer(brain) as server:
        monkeypatch.setenv("TILL_ANTHROPIC_KEY", "sk-ant-test")
        suite = till / "live.yaml"
        suite.write_text(
            "suite: live\nagent: clerk\nbackend: till_eval:backend\n"
            "model:\n  live:\n    provider: anthropic\n    name: claude-haiku-4-5\n"
            f"    base_url: {server.base_url}\n    api_key_env: TILL_ANTHROPIC_KEY\n"
            "cases:\n  - id: pay-small\n    task: Pay Bob 40 USD.\n"
            "    expect: {outcome: success, state: [len(payments) == 1]}\n",
            encoding="utf-8",
        )
        (result,) = run_suite(load_suite(suite))
    assert result.passed, result.problems
    assert result.tool_calls == 2
