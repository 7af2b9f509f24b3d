"""The HTTP decision path: `warden serve` against a bare ASGI echo endpoint, same machine.

Both servers run as one uvicorn worker (httptools, uvloop) in a process of their own, and
the same load generator (`bench.http_load`, in a third process) drives both with the
same connections and bodies, so the ratio compares like with like:

- saturation: closed loop, `connections` keep-alive connections; the rate is requests
  answered per second. Every decide body is a new call (its own run and step), so each
  request is a full durable decision: contract, budgets, policy, and the decision record
  committed to SQLite (group commit) before the answer.
- latency: open loop at half of the decide saturation rate, measured from each request's
  scheduled time (no coordinated omission); p50 and p99.

The project is the payments fixture (agent ``payer``, tool ``pay``, allowed up to 100).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServerConfig", "measure_server"]

ROOT = Path(__file__).resolve().parents[1]
PAYMENTS = ROOT / "tests" / "fixtures" / "payments"
ECHO_APP = "bench.echo_app:app"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    seconds: float = 4.0
    connections: int = 32
    bodies: int = 60_000
    repeat: int = 2

    @classmethod
    def quick(cls) -> ServerConfig:
        return cls(seconds=1.0, connections=16, bodies=10_000, repeat=1)

    @classmethod
    def tiny(cls) -> ServerConfig:
        """A smoke test: both servers answer, every row of the report fills."""
        return cls(seconds=0.3, connections=4, bodies=2_000, repeat=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} not ready after {timeout} s")


@contextlib.contextmanager
def _process(
    command: list[str], port: int, ready: str, env: dict[str, str], log: Path
) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        try:
            _wait_ready(port, ready, proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {log.read_text(errors='replace')[-2000:]}") from None
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load(
    port: int,
    path: str,
    bodies: Path,
    headers: list[str],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.http_load",
        "--port",
        str(port),
        "--path",
        path,
        "--bodies",
        str(bodies),
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
    ]
    for h in headers:
        command += ["--header", h]
    if rate is not None:
        command += ["--rate", str(rate)]
    out = subprocess.run(command, check=True, capture_output=True, cwd=ROOT, timeout=300)
    return json.loads(out.stdout)


def _agent_key(db: Path) -> str:
    from warden.identity import KeyKind, new_key
    from warden.store.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        record, token = new_key(
            KeyKind.AGENT, "payer", created_at=time.time(), created_by="operator:bench"
        )
        store.add_key(record)
    return token


def measure_server(config: ServerConfig) -> dict[str, Any]:
    """Saturation of echo and decide, decide latency at half of saturation."""
    folder = Path(tempfile.mkdtemp(prefix="warden-bench-server-"))
    try:
        project = folder / "payments"
        shutil.copytree(PAYMENTS, project)
        db = folder / "warden.db"
        token = _agent_key(db)
        bodies = folder / "bodies.jsonl"
        with bodies.open("w", encoding="utf-8") as f:
            for i in range(config.bodies):
                body = {
                    "agent": "payer",
                    "tool": "pay",
                    "args": {"payee": "acme", "amount_usd": 5.0, "note": "bench"},
                    "run_id": f"run_{i // 50}",
                    "step": i % 50,
                }
                f.write(json.dumps(body) + "\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("WARDEN_DATABASE_URL", None)
        headers = [f"authorization: Bearer {token}"]
        echo_port, warden_port = _free_port(), _free_port()
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            ECHO_APP,
            "--port",
            str(echo_port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        serve = [
            sys.executable,
            "-m",
            "warden.cli",
            "serve",
            "-p",
            str(project),
            "--db",
            str(db),
            "--port",
            str(warden_port),
            "--log-level",
            "warning",
        ]
        echo_runs: list[dict[str, Any]] = []
        decide_runs: list[dict[str, Any]] = []
        with (
            _process(uvicorn, echo_port, "/ready", env, folder / "echo.log"),
            _process(serve, warden_port, "/readyz", env, folder / "serve.log"),
        ):
            for _ in range(config.repeat):
                echo_runs.append(
                    _load(
                        echo_port,
                        "/echo",
                        bodies,
                        headers,
                        connections=config.connections,
                        seconds=config.seconds,
                    )
                )
                decide_runs.append(
                    _load(
                        warden_port,
                        "/v1/decide",
                        bodies,
                        headers,
                        connections=config.connections,
                        seconds=config.seconds,
                    )
                )
            saturation = max(r["rate"] for r in decide_runs)
            half = _load(
                warden_port,
                "/v1/decide",
                bodies,
                headers,
                connections=config.connections,
                seconds=config.seconds,
                rate=saturation / 2,
            )
        echo = max(r["rate"] for r in echo_runs)
        return {
            "echo_per_s": echo,
            "decide_per_s": saturation,
            "ratio": saturation / echo if echo else 0.0,
            "echo_runs": echo_runs,
            "decide_runs": decide_runs,
            "half_load": half,
            "connections": config.connections,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
