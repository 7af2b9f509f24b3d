"""`warden replay` and `warden policy whatif` on a copy of the payments project."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import PAYMENTS, execute, invoke, pay


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No WARDEN_* variable from the shell; the project copy's modules forgotten after."""
    for name in ("WARDEN_USER", "WARDEN_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
    for name, module in saved_modules.items():
        sys.modules.setdefault(name, module)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The payments project with three payments recorded in run_1: 50 (allowed), 500
    (one approval) and 5000 (two approvals)."""
    root = tmp_path / "payments"
    shutil.copytree(PAYMENTS, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    execute(root / ".warden" / "warden.db", root, pay(50, "run_1"), pay(500, "run_1"))
    execute(root / ".warden" / "warden.db", root, pay(5000, "run_1"))
    return root


def _candidate(tmp_path: Path, limit: str = "10") -> Path:
    """The project's policies with the allowed amount lowered to `limit`."""
    folder = tmp_path / "next"
    shutil.copytree(PAYMENTS / "policies", folder)
    text = (folder / "payments.yaml").read_text()
    (folder / "payments.yaml").write_text(
        text.replace('"amount_usd <= 100"', f'"amount_usd <= {limit}"')
    )
    return folder


def test_replay_under_the_recorded_revision_reproduces_the_run(project: Path) -> None:
    code, out = invoke("replay", "run_1", "-p", str(project))
    assert code == 0, out
    assert "3 recorded decisions, re-decided under the policy revisions that decided them" in out
    assert "3 same, 0 changed" in out
    code, out = invoke("replay", "run_1", "-p", str(project), "--json")
    data = json.loads(out)
    assert code == 0 and data["reproduced"] is True and data["run_id"] == "run_1"
    assert [d["replayed"]["rules"] for d in data["decisions"]] == [
        ["payments#1"],
        ["payments#2"],
        ["payments#3"],
    ]


def test_a_decision_that_does_not_reproduce_exits_1(project: Path) -> None:
    with sqlite3.connect(project / ".warden" / "warden.db") as conn:
        conn.execute("UPDATE actions SET outcome = 'deny' WHERE outcome = 'allow'")
    code, out = invoke("replay", "run_1", "-p", str(project))
    assert code == 1 and "2 same, 1 changed" in out and "changed (outcome)" in out


def test_replay_under_current_or_other_policies_shows_what_diverges(
    project: Path, tmp_path: Path
) -> None:
    code, out = invoke("replay", "run_1", "-p", str(project), "--policies", "current", "--json")
    assert code == 0 and json.loads(out)["reproduced"] is True
    candidate = _candidate(tmp_path)
    code, out = invoke("replay", "run_1", "-p", str(project), "--policies", str(candidate))
    assert code == 0, out  # not the recorded revision: a divergence is what was asked for
    assert "2 same, 1 changed" in out
    shutil.copytree(candidate, project / "policies", dirs_exist_ok=True)
    code, out = invoke("replay", "run_1", "-p", str(project), "--policies", "current")
    assert code == 0 and "2 same, 1 changed" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("replay", "run_9"), "W-RUN-001"),
        (("replay", "run_1", "--policies", "nowhere"), "--policies"),
        (("policy", "whatif", "--policies", "policies", "--since", "last week"), "W-RPL-003"),
        (
            ("policy", "whatif", "--policies", "policies", "--since", "1d", "--until", "2d"),
            "W-RPL-003",
        ),
    ],
    ids=["unknown run", "bad policies", "bad since", "window ends before it starts"],
)
def test_bad_requests_are_refused_with_a_reason(
    project: Path, args: tuple[str, ...], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    code, out = invoke(*args)
    assert code == 2 and expected in out, out


def test_whatif_groups_what_would_change_by_rule(project: Path, tmp_path: Path) -> None:
    candidate = _candidate(tmp_path)
    code, out = invoke("policy", "whatif", "-p", str(project), "--policies", str(candidate))
    assert code == 0, out
    assert "3 decisions recorded from" in out and "1 would change, 2 unchanged" in out
    assert "payments#1" in out and "1 allow → needs_approval" in out
    code, out = invoke(
        "policy", "whatif", "-p", str(project), "--policies", str(candidate), "--json"
    )
    data = json.loads(out)
    (change,) = data["changes"]
    assert (change["rule"], change["now"], change["before"], change["after"]) == (
        "payments#1",
        "payments#2",
        "allow",
        "needs_approval",
    )
    args = change["examples"][0]["args"]
    assert args["amount_usd"] == 50.0 and args["card_number"]["$redacted"] == "field"
    assert data["totals"] == {
        "decisions": 3,
        "changed": 1,
        "unchanged": 2,
        "not_replayable": 0,
        "looked_up_now": 0,
    }


def test_whatif_fails_on_change_only_when_asked(project: Path, tmp_path: Path) -> None:
    same = _candidate(tmp_path, limit="100")
    base = ("policy", "whatif", "-p", str(project), "--fail-on-change", "--policies")
    assert invoke(*base, str(same))[0] == 0
    shutil.rmtree(same)
    code, out = invoke(*base, str(_candidate(tmp_path)))
    assert code == 1 and "1 would change" in out


def test_whatif_outside_the_window_re_decides_nothing(project: Path, tmp_path: Path) -> None:
    code, out = invoke(
        "policy",
        "whatif",
        "-p",
        str(project),
        "--policies",
        str(_candidate(tmp_path)),
        "--since",
        "2020-01-01",
        "--until",
        "2020-01-02T00:00:00Z",
    )
    assert code == 0 and "0 decisions recorded from 2020-01-01 00:00:00Z" in out
