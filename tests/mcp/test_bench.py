"""`python -m bench --only mcp` measures real calls and renders; no timing is asserted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from bench.mcp import McpConfig, measure_mcp
from bench.report import render
from bench.runner import Config, mcp_targets, run
from rich.console import Console

pytestmark = pytest.mark.timeout(180)


def test_the_mcp_section_times_direct_and_proxied_calls(tmp_path: Path) -> None:
    section = measure_mcp(McpConfig(calls=5, warmup=2, folder=tmp_path))
    assert section["calls"] == 5
    assert section["direct_ms"]["p50"] > 0 and section["proxied_ms"]["p50"] > 0
    assert section["added_p50_ms"] == section["proxied_ms"]["p50"] - section["direct_ms"]["p50"]
    [target] = mcp_targets(section)
    assert target.unit == "ms" and target.limit == 1.0


def test_only_mcp_runs_the_section_and_renders_it(tmp_path: Path) -> None:
    config = Config.for_mode(quick=True, only="mcp", tmp_dir=tmp_path)
    assert config.mcp is not None and config.durable is None and not config.policy
    config = replace(config, mcp=McpConfig(calls=3, warmup=1, folder=tmp_path))
    results = run(config)
    console = Console(width=140, record=True)
    render(results, console)
    shown = console.export_text()
    assert "warden mcp proxy" in shown and "upstream directly" in shown
