"""The HTTP client examples (curl and TypeScript) against a real `warden serve`.

The server is the `warden serve` command in its own process, on the refunds example and a
fresh SQLite file; the key comes from `warden keys create`, as the example's README says.
The TypeScript client is compiled with the pinned TypeScript from npm and run with Node;
without Node or npm on the machine that test is skipped, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "http_client"
REFUNDS = ROOT / "examples" / "refunds"
WARDEN = [sys.executable, "-m", "warden.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    db = tmp_path / "warden.db"
    env = {**os.environ, "WARDEN_USER": "ops-lead"}
    env.pop("WARDEN_DATABASE_URL", None)
    created = subprocess.run(
        [
            *WARDEN,
            "keys",
            "create",
            "-p",
            str(REFUNDS),
            "--db",
            str(db),
            "--agent",
            "refund_autopilot",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    token = re.search(r"wdn_ag_\S+", created.stdout)
    assert token is not None, created.stdout
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WARDEN, "serve", "-p", str(REFUNDS), "--db", str(db), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "warden serve did not start"
            time.sleep(0.1)
    try:
        yield {**env, "WARDEN_URL": url, "WARDEN_KEY": token.group(0)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_example_decides_and_reports(served: dict[str, str]) -> None:
    out = subprocess.run(
        ["sh", str(EXAMPLE / "decide.sh")], check=True, capture_output=True, text=True, env=served
    ).stdout
    decision, outcome = out.strip().splitlines()
    assert '"outcome":"allow"' in decision and '"state":"executing"' in decision
    assert '"state":"succeeded"' in outcome


def test_typescript_client_runs_the_allowed_refund_and_waits_on_the_large_one(
    served: dict[str, str], tmp_path: Path
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to compile and run the TypeScript example")
    work = tmp_path / "client"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "tsconfig.json", "client.ts"):
        shutil.copy(EXAMPLE / name, work / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=work, check=True, timeout=300
    )
    subprocess.run([npm, "run", "--silent", "build"], cwd=work, check=True, timeout=120)
    first = subprocess.run(
        [node, "dist/client.js"], cwd=work, check=True, capture_output=True, text=True, env=served
    ).stdout
    assert "30 USD: allow (executing)" in first and "re_ord_123456" in first
    assert "120 USD: needs_approval (awaiting_approval)" in first
    again = subprocess.run(
        [node, "dist/client.js"], cwd=work, check=True, capture_output=True, text=True, env=served
    ).stdout
    # the same run and steps again: Warden answers from the record, the tool does not run
    assert "30 USD: allow (succeeded)" in again
