"""The evals benchmark, in miniature: it runs the scaled suite and its table renders."""

from __future__ import annotations

from bench.evals import EvalConfig, measure_evals
from bench.report import _render_evals  # pyright: ignore[reportPrivateUsage]
from bench.runner import evals_targets
from rich.console import Console


def test_the_evals_benchmark_runs_every_case_and_renders() -> None:
    section = measure_evals(EvalConfig(cases=8, workers=2))
    assert section["cases"] == 8
    assert section["passed"] == 8 and section["errors"] == 0
    assert section["wall_s"] > 0
    (target,) = evals_targets(section)
    assert target.measured == section["wall_s"] * 500 / 8  # scaled to the 500
    console = Console(record=True, width=200)
    _render_evals({"evals": section, "targets": [target.to_dict()]}, console)
    assert "8 cases, 2 workers" in console.export_text()
