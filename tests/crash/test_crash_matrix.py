"""The crash matrix: SIGKILL a real process at each dangerous point of an execution.

Each run forks a child that makes real `Gate.execute` calls on a SQLite file and is
killed with SIGKILL at one point (after the decision and before its record; after the
record and before the call; during the call; after the call and before the outcome; in
the middle of an audit append), after 0-5 safe passes, on 1-4 threads. A second child
recovers (`Gate.recover`) and retries every call with the same keys. Then the records
alone must show that every effect the backend saw has exactly one decision record,
nothing ran twice, nothing is left executing, an interrupted call without a reconcile
hook is outcome_unknown and escalated (never re-run), and the audit chain verifies.

The runs come from one seed: set ``WARDEN_CRASH_SEED`` to replay or vary them, and
``WARDEN_CRASH_RUNS`` for more.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tests.crash.children import BACKEND, CRASHED_AT, DB, ERRORS
from tests.crash.conftest import ForkServer
from tests.crash.invariants import Evidence, gather, violations
from tests.crash.plan import (
    BLIND_TOOL,
    POINTS,
    RECONCILED_TOOL,
    CallSpec,
    RunSpec,
    make_plan,
)

SEED = int(os.environ.get("WARDEN_CRASH_SEED", "20260301"))
RUNS = int(os.environ.get("WARDEN_CRASH_RUNS", "250"))
PLAN = make_plan(SEED, RUNS)
RECONCILED = frozenset({RECONCILED_TOOL})


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def crash_and_recover(forkserver: ForkServer, spec: RunSpec, run_dir: Path) -> Evidence:
    """Run `spec`; check that the child died at its point and the recovery finished."""
    ended = forkserver.run(spec, run_dir)
    about = (
        f"WARDEN_CRASH_SEED={SEED}, kept in {run_dir}\n{spec.describe()}\n{ended}\n"
        f"{_read(run_dir / 'child.log')}"
    )
    crash, recovery = ended["crash"], ended["recovery"]
    assert not crash["hung"] and not recovery["hung"], f"a child hung\n{about}"
    assert crash["signal"] == signal.SIGKILL, f"the child was not killed\n{about}"
    assert _read(run_dir / CRASHED_AT) == f"{spec.point} {spec.variant}".strip(), about
    assert crash["killed_by_parent"] == (spec.variant == "killed_by_parent"), about
    assert _read(run_dir / ERRORS) == "", f"the crashing child's calls failed\n{about}"
    assert recovery["exit_code"] == 0, f"the recovery failed\n{about}"
    return gather(run_dir)


def test_the_plan_spreads_at_least_200_runs_over_every_crash_point() -> None:
    counts = Counter(spec.point for spec in PLAN)
    assert len(PLAN) >= 200
    assert set(counts) == set(POINTS) and min(counts.values()) >= 30, counts
    assert any(BLIND_TOOL in {c.tool for c in spec.calls} for spec in PLAN)
    assert {spec.threads for spec in PLAN} == {1, 2, 3, 4}
    assert {spec.crash_after for spec in PLAN} == set(range(6))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("spec", PLAN, ids=[spec.id for spec in PLAN])
def test_a_crash_at_any_dangerous_point_executes_nothing_twice(
    spec: RunSpec, forkserver: ForkServer, run_dir: Path
) -> None:
    evidence = crash_and_recover(forkserver, spec, run_dir)
    found = violations(evidence, reconciled_tools=RECONCILED)
    about = f"WARDEN_CRASH_SEED={SEED}, kept in {run_dir}\n{spec.describe()}"
    assert not found, "\n".join([about, *found])


# --- the checker can fail --------------------------------------------------------------------


def _after_the_effect(tool: str) -> RunSpec:
    """One call that crashes right after the backend wrote its effect."""
    call = CallSpec(tool=tool, run_id="run_x", step=1, payee="acme", amount_usd=40.0, key="key_x")
    return RunSpec(
        index=999,
        seed="fixed",
        point="during_call",
        variant="after_effect",
        crash_after=0,
        threads=1,
        calls=(call,),
    )


@pytest.mark.timeout(60)
def test_the_checker_reports_a_duplicated_effect(forkserver: ForkServer, run_dir: Path) -> None:
    evidence = crash_and_recover(forkserver, _after_the_effect(RECONCILED_TOOL), run_dir)
    assert violations(evidence, reconciled_tools=RECONCILED) == []
    lines = (run_dir / BACKEND).read_text()
    (run_dir / BACKEND).write_text(lines + lines)  # the backend saw the payment twice
    found = violations(gather(run_dir), reconciled_tools=RECONCILED)
    assert "key key_x: the backend saw 2 effects" in found
    assert any("has 2 effects, not 1" in f for f in found)


@pytest.mark.timeout(60)
def test_the_checker_catches_a_recovery_that_reruns_blindly(
    forkserver: ForkServer, run_dir: Path
) -> None:
    # the recovering process's reconcile hook wrongly says "no effect": the key is
    # released, the retry pays again, and the checker must see the double execution
    spec = replace(_after_the_effect(RECONCILED_TOOL), sabotage="lying_reconcile")
    found = violations(crash_and_recover(forkserver, spec, run_dir), reconciled_tools=RECONCILED)
    assert "key key_x: the backend saw 2 effects" in found
    assert any("was reconciled as failed W-EXE-004, not succeeded" in f for f in found)


@pytest.mark.timeout(60)
def test_the_checker_reports_an_altered_audit_log_and_an_effect_without_a_decision(
    forkserver: ForkServer, run_dir: Path
) -> None:
    evidence = crash_and_recover(forkserver, _after_the_effect(BLIND_TOOL), run_dir)
    assert violations(evidence, reconciled_tools=RECONCILED) == []
    conn = sqlite3.connect(run_dir / DB)
    with conn:  # someone edits the amount in the decision record
        seq, body = conn.execute("SELECT seq, body FROM audit WHERE kind = 'decision'").fetchone()
        altered = bytes(body).replace(b'"amount_usd":40.0', b'"amount_usd":4.0')
        conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (altered, seq))
    conn.close()
    with (run_dir / BACKEND).open("a") as f:  # and pays behind Warden's back
        f.write(json.dumps({"key": "key_z", "amount_usd": 9.0, "note": ""}) + "\n")
    found = violations(gather(run_dir), reconciled_tools=RECONCILED)
    assert any(f.startswith("the audit chain does not verify: W-AUD-") for f in found), found
    assert "key key_z: the effect has 0 decision records, not 1" in found
    assert "key key_z: the tool ran before its decision record was committed" in found
