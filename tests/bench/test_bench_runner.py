"""The runner benchmark, in miniature: it measures real steps and its table renders."""

from __future__ import annotations

from bench.agent_runner import measure_runner
from bench.report import _render_runner  # pyright: ignore[reportPrivateUsage]
from bench.runner import runner_targets
from rich.console import Console


def test_the_runner_benchmark_measures_steps_and_renders() -> None:
    section = measure_runner(runs=2, steps=3, demo=False, latencies=(0.0, 5.0))
    for row in section["by_model_latency"].values():
        assert 0 < row["overhead_ms"]["p50"] <= row["overhead_ms"]["p99"]
        assert row["gate_execute_ms"]["p50"] > 0
    targets = runner_targets(section)
    assert [t.name for t in targets] == ["runner overhead per step p50"]
    console = Console(record=True, width=200)
    _render_runner({"runner": section, "targets": [t.to_dict() for t in targets]}, console)
    text = console.export_text()
    assert "runner overhead, model answering in 5 ms" in text
