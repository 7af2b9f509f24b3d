"""`warden serve` as a process: what it prints, serving, a clean stop, the server extra."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

WARDEN = [sys.executable, "-c", "from warden.cli.main import main; main()"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "PYTEST_"))}
    env.update(NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _warden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WARDEN, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60
    )


class Serving:
    def __init__(self, proc: subprocess.Popen[str], url: str, head: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.head = head


@pytest.fixture
def serving(project: Path) -> Iterator[Serving]:
    created = _warden("keys", "create", "--agent", "payer", "--as", "tests", "--json", cwd=project)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    proc = subprocess.Popen(
        [*WARDEN, "serve", "--port", "0", "--log-level", "warning"],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    head: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        head.append(line)
        if "Ctrl-C" in line:
            break
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", "".join(head))
    assert found, "".join(head)
    running = Serving(proc, found.group(1), head)
    running.head.append(token)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_serve_says_where_it_listens_serves_and_stops_cleanly_on_sigterm(
    serving: Serving, project: Path
) -> None:
    text = "".join(serving.head[:-1])
    assert "project   payments" in text
    assert re.search(r"database  \S*\.warden/warden\.db \(from warden\.yaml store:\)", text)
    token = serving.head[-1]
    with httpx2.Client(base_url=serving.url, timeout=30) as c:
        assert c.get("/readyz").status_code == 200
        answer = c.post(
            "/v1/decide",
            headers={"authorization": f"Bearer {token}"},
            json={
                "agent": "payer",
                "tool": "pay",
                "run_id": "r",
                "args": {"payee": "a", "amount_usd": 5},
            },
        )
        assert answer.status_code == 200 and answer.json()["state"] == "executing"
    serving.proc.send_signal(signal.SIGTERM)
    assert serving.proc.wait(timeout=30) == 0
    wal = project / ".warden" / "warden.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # the store checkpointed and closed


def test_serve_recovers_what_a_dead_server_left_executing(serving: Serving, project: Path) -> None:
    token = serving.head[-1]
    with httpx2.Client(base_url=serving.url, timeout=30) as c:
        body = {
            "agent": "payer",
            "tool": "blind_pay",
            "run_id": "r",
            "args": {"payee": "a", "amount_usd": 5},
        }
        held = c.post("/v1/decide", headers={"authorization": f"Bearer {token}"}, json=body)
        action = held.json()["action_id"]
    serving.proc.kill()  # no clean stop: the action stays executing, owned by a dead process
    serving.proc.wait()
    proc = subprocess.Popen(
        [*WARDEN, "serve", "--port", "0"],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        assert "recovered 1 actions a dead process left executing" in "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    shown = _warden("runs", "show", "r", "--json", cwd=project)
    states = {a["id"]: a["state"] for a in json.loads(shown.stdout)["actions"]}
    assert states[action] == "outcome_unknown"


def test_serve_refuses_a_port_it_cannot_take(serving: Serving, project: Path) -> None:
    port = serving.url.rsplit(":", 1)[1]
    taken = _warden("serve", "--port", port, cwd=project)
    assert taken.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr


def test_serve_without_the_server_extra_says_what_to_install(project: Path) -> None:
    code = "import sys; sys.modules['uvicorn'] = None\nfrom warden.cli.main import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "serve"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "pip install 'warden[server]'" in done.stderr


def test_serve_refuses_a_project_that_does_not_load(tmp_path: Path) -> None:
    done = _warden("serve", "-p", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "W-PRJ-001" in done.stderr
