"""The durable benchmark runs end to end at a tiny size and fills every row of its report.
No timing is asserted here."""

from __future__ import annotations

from pathlib import Path

import bench.runner
import pytest
from bench.durable import DurableConfig, measure_durable
from bench.report import render
from bench.runner import DURABLE_TARGETS, durable_targets
from rich.console import Console


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("durable")
    result = measure_durable(DurableConfig.tiny().in_folder(folder))
    assert list(folder.iterdir()) == []  # the databases and the export are removed
    return result


def test_every_call_path_made_calls(durable: dict[str, object]) -> None:
    execute = durable["execute"]
    assert isinstance(execute, dict)
    for store in ("group_commit", "one_commit_per_call"):
        assert all(n >= 4 for n in execute[store]["calls"])  # one per caller at least
        assert execute[store]["writer"]["requests"] >= execute[store]["writer"]["batches"] > 0
    assert execute["one_commit_per_call"]["writer"]["requests_per_batch"] == 1.0
    assert execute["raw_sqlite"]["commits"] > 0
    assert set(execute["latency"]) == {"one_caller", "concurrent"}


def test_every_audit_record_is_appended_and_verified(durable: dict[str, object]) -> None:
    audit = durable["audit"]
    assert isinstance(audit, dict)
    assert audit["append"]["records"] == 2_000
    assert audit["verify"]["records"] == audit["export"]["records"] == 2_000
    assert audit["verify"]["streams"] == 3


def test_the_durable_targets_are_judged_and_rendered(durable: dict[str, object]) -> None:
    judged = durable_targets(durable)
    assert [t.name for t in judged] == list(DURABLE_TARGETS)
    results = {
        "machine": bench.runner.machine(),
        "mode": "quick",
        "elapsed_s": 0.0,
        "durable": durable,
        "targets": [t.to_dict() for t in judged],
    }
    console = Console(width=200, record=True)
    render(results, console)
    text = console.export_text()
    assert "execute, 4 callers, group commit" in text
    assert "verify_rows, export file" in text


def test_the_bench_runs_the_durable_section_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench.__main__ import main

    monkeypatch.setattr(DurableConfig, "quick", DurableConfig.tiny)
    output = tmp_path / "results.json"
    assert (
        main(["--quick", "--only", "durable", "--tmp-dir", str(tmp_path), "--output", str(output)])
        == 0
    )
    text = output.read_text(encoding="utf-8")
    assert '"durable"' in text and '"policy"' not in text
