"""`warden demo` as a new user runs it: a fresh workspace, the queue, the summary, and
the next commands it prints actually work. Each command runs in its own process (the
example's modules are imported from the workspace, as a user's would be)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

WARDEN = str(Path(sys.executable).with_name("warden"))


def warden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SUPPORT_DESK_BILLING_DB", None)
    return subprocess.run(
        [WARDEN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_demo_runs_the_queue_and_its_next_commands_work(tmp_path: Path) -> None:
    done = warden("demo", "--model-latency", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    ws = tmp_path / "warden-demo"
    assert (ws / ".warden" / "warden.db").is_file() and (ws / ".warden" / "billing.db").is_file()
    for line in ("tickets", "succeeded", "approvals waiting", "policy blocks"):
        assert line in out, line
    assert "cost per successful outcome" in out and "p95 run latency" in out
    assert re.search(r"tickets\s+24\b", out), out
    assert re.search(r"approvals waiting\s+3\b", out), out

    # the printed commands, in order: approve the waiting refund, resume its run
    commands = [line.strip() for line in out.splitlines() if " -p warden-demo" in line]
    approve = next(c for c in commands if " approvals approve " in c)
    resume = next(c for c in commands if " runs resume " in c)
    run_id = resume.split()[3]
    shown = warden(*approve.split()[1:], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    resumed = warden(*resume.split()[1:], "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)[0]["status"] == "succeeded"
    again = warden("runs", "resume", run_id, "-p", "warden-demo", cwd=tmp_path)
    assert again.returncode != 0 and "W-RUN-002" in again.stderr + again.stdout
    show = warden("runs", "show", run_id, "-p", "warden-demo", "--json", cwd=tmp_path)
    refunds = [a for a in json.loads(show.stdout)["actions"] if a["tool"] == "create_refund"]
    assert [a["state"] for a in refunds] == ["succeeded"]  # ran once, after the approval
    verified = warden("audit", "verify", "-p", "warden-demo", cwd=tmp_path)
    assert verified.returncode == 0 and verified.stdout.startswith("ok"), verified.stdout

    # a second demo replaces its own workspace, and never anything else
    assert warden("demo", "-q", "--model-latency", "0", cwd=tmp_path).returncode == 0
    (tmp_path / "mine").mkdir()
    refused = warden("demo", "-q", "-w", "mine", cwd=tmp_path)
    assert refused.returncode != 0 and "not a Warden demo workspace" in refused.stderr


def test_the_escalation_packet_of_a_stopped_ticket_reads_well(tmp_path: Path) -> None:
    assert warden("demo", "-q", "--model-latency", "0", cwd=tmp_path).returncode == 0
    listed = warden(
        "runs", "list", "-p", "warden-demo", "--status", "escalated", "--json", cwd=tmp_path
    )
    runs = json.loads(listed.stdout)
    assert len(runs) == 3
    for run in runs:
        text = warden("runs", "escalation", run["id"], "-p", "warden-demo", cwd=tmp_path).stdout
        assert "Goal: Resolve support ticket" in text and "Options:" in text
        packet = json.loads(
            warden(
                "runs", "escalation", run["id"], "-p", "warden-demo", "--json", cwd=tmp_path
            ).stdout
        )
        assert packet["stopped_by"]["code"] in {"W-BUD-001", "W-EXE-002", "W-LOOP-001"}
        if packet["stopped_by"]["kind"] in ("budget", "loop"):
            assert re.match(r"agents/support_agent\.yaml:\d+$", packet["stopped_by"]["where"][0])
