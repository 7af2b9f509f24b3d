"""The PostgreSQL benchmark runs end to end at a tiny size and fills every row of its report.
No timing is asserted here."""

from __future__ import annotations

from pathlib import Path

import bench.runner
import pytest
from bench.pg_store import PgConfig, measure_pg
from bench.report import render
from bench.runner import PG_TARGETS, pg_targets
from rich.console import Console

from warden.testing.postgres import ensure_server


@pytest.fixture(scope="module")
def pg() -> dict[str, object]:
    ensure_server()  # skips when PostgreSQL is not installed
    return measure_pg(PgConfig.tiny())


def test_both_stores_made_decisions_and_the_raw_rate_was_taken(pg: dict[str, object]) -> None:
    decide = pg["decide"]
    assert isinstance(decide, dict)
    for store in ("group_commit", "one_commit_per_decision"):
        assert all(n >= 4 for n in decide[store]["calls"])  # one per caller at least
        writer = decide[store]["writer"]
        assert writer["requests"] >= writer["transactions"] > 0
    assert decide["one_commit_per_decision"]["writer"]["requests_per_transaction"] == 1.0
    raw = pg["raw_insert"]
    assert isinstance(raw, dict) and raw["one_caller"]["commits"] > 0
    assert raw["concurrent"]["threads"] == 4


def test_the_pg_target_is_judged_and_rendered(pg: dict[str, object]) -> None:
    judged = pg_targets(pg)
    assert [t.name for t in judged] == list(PG_TARGETS)
    results = {
        "machine": bench.runner.machine(),
        "mode": "quick",
        "elapsed_s": 0.0,
        "pg": pg,
        "targets": [t.to_dict() for t in judged],
    }
    console = Console(width=200, record=True)
    render(results, console)
    text = console.export_text()
    assert "record_decision, 4 callers, group commit" in text
    assert "raw 1-row INSERT+COMMIT, 1 caller" in text
    assert "Gate.execute, 4 callers, group commit" in text


def test_the_bench_runs_the_pg_section_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench.__main__ import main

    ensure_server()
    monkeypatch.setattr(PgConfig, "quick", PgConfig.tiny)
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "pg", "--output", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert '"pg"' in text and '"durable"' not in text
