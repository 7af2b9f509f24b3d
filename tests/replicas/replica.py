"""`warden serve` replicas as real processes on loopback, and what they serve.

    root = payments_copy(tmp_path, small_budget=True)
    tokens = create_tokens(root, url)            # `warden keys create --json`, per key
    replica = Replica.start(root, url, backend=tmp_path / "effects.jsonl")
    ...
    replica.stop()

Each replica is ``python -m warden.cli serve --port 0`` with its output in a log
file (never a pipe that could fill up and stall it); the port it printed is read from
that log. The payments tools append one line per effect to the file `backend` names, so
an effect that happened twice, in any process, shows as two lines with one key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

__all__ = [
    "Replica",
    "Tokens",
    "create_tokens",
    "duplicates",
    "effects",
    "environment",
    "payments_copy",
    "warden",
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAYMENTS = FIXTURES / "payments"
SMALL_BUDGET = FIXTURES / "replicas" / "small_budget"
"""Laid over the payments copy: the payer may make ten tool calls per run."""
CLI = [sys.executable, "-m", "warden.cli"]
START_TIMEOUT_S = 60.0


def payments_copy(folder: Path, *, small_budget: bool = False) -> Path:
    """A fresh copy of the payments project in `folder` (with the small budget laid over
    it when asked); its root."""
    root = folder / "payments"
    shutil.copytree(PAYMENTS, root, ignore=shutil.ignore_patterns("__pycache__", ".warden"))
    if small_budget:
        shutil.copytree(SMALL_BUDGET, root, dirs_exist_ok=True)
    return root


def environment(backend: Path | None = None) -> dict[str, str]:
    """The environment of a `warden` child: this one without Warden's or pytest's own
    variables, and the payments backend's file when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "PYTEST_"))}
    env.update(NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", COLUMNS="200")
    if backend is not None:
        env["WARDEN_TEST_BACKEND"] = str(backend)
    return env


def warden(*args: str, cwd: Path, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m warden.cli ARGS`` to the end."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass(frozen=True)
class Tokens:
    """The keys the replica tests use, made by `warden keys create`."""

    payer: str
    """An agent key for ``payer``."""
    fiona: str
    """An operator token with ``approver:finance``."""
    admin: str
    """An operator token with ``admin``."""

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}


def create_tokens(root: Path, url: str) -> Tokens:
    """Create the payer's key and the operators' tokens in the database at `url`."""
    wanted = {
        "payer": ("--agent", "payer"),
        "fiona": ("--operator", "fiona", "--role", "approver:finance"),
        "admin": ("--operator", "ada", "--role", "admin"),
    }

    def create(args: tuple[str, ...]) -> str:
        command = ("keys", "create", *args, "-p", str(root), "--db", url, "--as", "tests")
        done = warden(*command, "--json", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        return str(json.loads(done.stdout)["token"])

    found = {"admin": create(wanted.pop("admin"))}  # it creates the tables; then the rest
    with ThreadPoolExecutor(len(wanted)) as pool:
        found.update(zip(wanted, pool.map(create, wanted.values()), strict=True))
    return Tokens(**found)


def effects(backend: Path) -> list[dict[str, Any]]:
    """Every effect the payments tools wrote to `backend`, in order."""
    if not backend.exists():
        return []
    with backend.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def duplicates(found: list[dict[str, Any]]) -> dict[str, int]:
    """The idempotency keys that took effect more than once, with their counts."""
    return {k: n for k, n in Counter(e["key"] for e in found).items() if n > 1}


_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class Replica:
    """One ``warden serve`` process."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.url = ""

    @classmethod
    def launch(cls, root: Path, url: str, *, backend: Path, name: str = "replica") -> Replica:
        """Start the process; `wait_ready` waits until it answers."""
        log = backend.parent / f"{name}-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *CLI,
                    "serve",
                    "-p",
                    str(root),
                    "--db",
                    url,
                    "--port",
                    "0",
                    "--log-level",
                    "warning",
                ],
                cwd=root,
                env=environment(backend),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(proc, log)

    @classmethod
    def start(cls, root: Path, url: str, *, backend: Path, name: str = "replica") -> Replica:
        """Start a replica and wait until it is ready."""
        replica = cls.launch(root, url, backend=backend, name=name)
        try:
            replica.wait_ready()
        except BaseException:
            replica.stop()
            raise
        return replica

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the process printed its address and ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout_s
        while not self.url:
            found = _LISTENING.search(self.output())
            if found:
                self.url = found.group(1)
                break
            assert self.proc.poll() is None, f"warden serve exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"warden serve did not start:\n{self.output()}"
            time.sleep(0.05)
        with httpx2.Client(base_url=self.url, timeout=10.0) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                assert self.proc.poll() is None, f"warden serve exited:\n{self.output()}"
                assert time.monotonic() < deadline, f"warden serve not ready:\n{self.output()}"
                time.sleep(0.05)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        return self.proc.returncode
