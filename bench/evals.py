"""Evals: how long `warden eval run` takes for many scripted cases in worker processes.

The workload is the support-desk example's suite (its cases, scripted model and billing
backend), repeated until it holds the asked number of cases; every copy is a separate
case with its own Warden store and billing database, exactly as `warden eval run` runs
it. The timing covers the whole run: starting the worker processes, loading the project
in each, every case, and collecting the results.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from warden.evals.report import Figures
from warden.evals.run import run_suite
from warden.evals.suite import load_suite

__all__ = ["EvalConfig", "measure_evals"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support_desk"
SUITE = EXAMPLE / "evals" / "support_desk.yaml"


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalConfig:
    cases: int = 500
    workers: int = 2

    @classmethod
    def quick(cls) -> EvalConfig:
        return cls(cases=60)


def _scaled_suite(folder: Path, cases: int) -> Path:
    """The example's suite repeated to `cases` cases, written into a copy of the example
    (so its relative paths hold). Every case stays as the real suite has it, the one that
    waits on the slow payment processor included."""
    project = folder / "support_desk"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".warden", "__pycache__", "*.pyc")
    )
    path = project / "evals" / "support_desk.yaml"
    doc = cast(dict[str, Any], yaml.safe_load(path.read_text(encoding="utf-8")))
    base = cast(list[dict[str, Any]], doc["cases"])
    scaled: list[dict[str, Any]] = []
    for i in range(cases):
        case = dict(base[i % len(base)])
        case["key"] = case.get("key") or case["id"]
        case["id"] = f"{case['id']}#{i // len(base)}"
        scaled.append(case)
    doc["cases"] = scaled
    out = project / "evals" / "scaled.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def measure_evals(config: EvalConfig) -> dict[str, Any]:
    """Run the scaled suite once; the wall time, cases per second and the figures."""
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-evals-"))
    try:
        suite_file = _scaled_suite(folder, config.cases)
        suite = load_suite(suite_file)
        started = time.perf_counter()
        results = run_suite(suite, workers=config.workers)
        wall_s = time.perf_counter() - started
        figures = Figures.of(results)
        return {
            "cases": len(results),
            "suite_cases": len(load_suite(SUITE).cases),
            "workers": config.workers,
            "cpu_count": os.cpu_count(),
            "wall_s": wall_s,
            "cases_per_s": len(results) / wall_s,
            "mean_case_ms": sum(r.wall_ms for r in results) / len(results),
            "passed": figures.passed,
            "errors": figures.errors,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
