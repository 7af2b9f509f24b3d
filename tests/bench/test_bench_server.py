"""The server benchmark runs end to end at a tiny size: both servers start, the load
generator gets answers from both, and the report renders. No timing is asserted here."""

from __future__ import annotations

import bench.runner
import pytest
from bench.report import render
from bench.runner import SERVER_TARGETS, server_targets
from bench.server import ServerConfig, measure_server
from rich.console import Console


@pytest.fixture(scope="module")
def server() -> dict[str, object]:
    return measure_server(ServerConfig.tiny())


def test_both_servers_answered_and_every_decide_was_a_real_decision(
    server: dict[str, object],
) -> None:
    echo_runs, decide_runs = server["echo_runs"], server["decide_runs"]
    assert isinstance(echo_runs, list) and isinstance(decide_runs, list)
    assert all(set(run["statuses"]) == {"200"} for run in echo_runs)
    # 200 with an allow decision for every call: no 401, no 422, no 503 in the sample
    assert all(set(run["statuses"]) == {"200"} for run in decide_runs)
    assert all(run["requests"] > 0 for run in decide_runs)
    half = server["half_load"]
    assert isinstance(half, dict) and half["requests"] > 0


def test_the_server_targets_are_judged_and_rendered(server: dict[str, object]) -> None:
    judged = server_targets(server)
    assert [t.name for t in judged] == list(SERVER_TARGETS)
    results = {
        "machine": bench.runner.machine(),
        "mode": "quick",
        "elapsed_s": 0.0,
        "server": server,
        "targets": [t.to_dict() for t in judged],
    }
    console = Console(width=200, record=True)
    render(results, console)
    text = console.export_text()
    assert "POST /v1/decide, saturated" in text
    assert "bare ASGI echo" in text
    assert "(half of saturation)" in text
