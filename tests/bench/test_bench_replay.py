"""The replay benchmark, in miniature: it records, replays (every decision reproduces),
runs a what-if, and its table renders."""

from __future__ import annotations

import pytest
from bench.replay import ReplayConfig, measure_replay
from bench.report import _render_replay  # pyright: ignore[reportPrivateUsage]
from bench.runner import REPLAY_TARGET, replay_targets
from rich.console import Console


def test_the_replay_benchmark_reproduces_every_decision_and_renders() -> None:
    section = measure_replay(ReplayConfig(decisions=240, repeat=1))
    assert section["decisions"] == 240 and sum(section["recorded"].values()) == 240
    assert section["replay_s"] > 0 and section["live_s"] > 0 and section["whatif_changed"] > 0
    targets = replay_targets(section)
    assert [t.name for t in targets] == [REPLAY_TARGET]
    assert targets[0].measured == pytest.approx(section["replay_s"] * 10_000 / 240)
    console = Console(record=True, width=200)
    _render_replay({"replay": section, "targets": [t.to_dict() for t in targets]}, console)
    text = console.export_text()
    assert "replay 10,000 decisions, recorded revision (240 replayed, scaled)" in text
    assert "what-if 240 decisions, candidate policies" in text
