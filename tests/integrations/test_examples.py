"""The framework examples (examples/integrations/) run offline and tell the same story."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SHOP

EXAMPLES = SHOP.parent

STORY = (
    "1. the agent asks for three refunds",
    "-> Denied [W-POL-101]: refunds over $500 go through the finance team",
    "alex (the run acts for alex) cannot approve: W-APR-003",
    "sam (support_lead) approves",
    "Two refunds are done; the $900 one goes to finance.",
    "refund_order ran 2 times",
)


@pytest.mark.parametrize(
    ("folder", "framework"),
    [("langchain", "langchain"), ("openai_agents", "agents"), ("pydantic_ai", "pydantic_ai")],
    ids=["langchain", "openai-agents", "pydantic-ai"],
)
def test_the_example_runs_offline_and_tells_the_story(folder: str, framework: str) -> None:
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    script: Path = EXAMPLES / folder / "agent.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_"))}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    for line in STORY:
        assert line in done.stdout, f"{folder}: {line!r} not in:\n{done.stdout}"
    assert done.stderr == ""
