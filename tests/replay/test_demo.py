"""The support-desk demo, replayed under its unchanged policies: zero divergences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import warden
from warden.replay import Replayer, ReplayStatus, replay_run, what_if
from warden.store.sqlite import SQLiteStore

WARDEN = str(Path(sys.executable).with_name("warden"))


def warden_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SUPPORT_DESK_BILLING_DB", None)
    env.pop("WARDEN_DATABASE_URL", None)
    return subprocess.run(
        [WARDEN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    done = warden_cli("demo", "-q", "--model-latency", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield tmp_path / "warden-demo"
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
    for name, module in saved_modules.items():
        sys.modules.setdefault(name, module)


def test_the_demo_replays_under_its_unchanged_policies_with_zero_divergences(
    workspace: Path,
) -> None:
    project = warden.load_project(workspace)
    with SQLiteStore(workspace / ".warden" / "warden.db") as store:
        replayer = Replayer.for_project(store, project)
        runs = store.runs(limit=1000)
        assert len(runs) >= 20
        decisions = 0
        for run in runs:
            for policies in (None, project.policies):  # recorded revision, then current
                report = replay_run(replayer, run.id, policies)
                wrong = [r for r in report.decisions if r.status is not ReplayStatus.SAME]
                assert report.decisions and not wrong, (run.id, wrong)
                assert all(not r.notes and not r.looked_up_now for r in report.decisions)
            decisions += len(report.decisions)
        stages = {d.stage for d in store.recorded_decisions()}
        assert {"policy", "budget"} <= stages  # the queue hits policies and budgets
        everything = what_if(replayer, project.policies, since=0.0, until=4e9)
        assert everything.total == decisions and everything.changed == 0
    escalated = next(r for r in runs if r.status.value == "escalated")
    shown = warden_cli("replay", escalated.id, "-p", "warden-demo", "--json", cwd=workspace.parent)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["reproduced"] is True
