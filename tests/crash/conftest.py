"""The fork server, started once per test session (once per xdist worker), and the
folders the runs write to.

Runs write to tmpfs (``/dev/shm``) when there is one. A SIGKILL loses no written data
(the page cache outlives the process, fsync or not), so the crashes mean the same there,
and the matrix does not wait on a disk other jobs are busy with. A run's folder is
removed after its test unless the test failed: then it stays, under the path the
failure prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crash.plan import RunSpec

ROOT = Path(__file__).resolve().parents[2]


class ForkServer:
    """The client side of `tests.crash.forkserver`: one request, one answer."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.forkserver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        ready = self._out.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the fork server did not start (said {ready!r})")

    def run(self, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
        """Crash a child as `spec` says, then recover in another; say how both ended."""
        try:
            self._in.write(json.dumps({"spec": spec.to_json(), "dir": str(run_dir)}) + "\n")
            self._in.flush()
            answer = self._out.readline()
        except BaseException:  # a timeout mid-request: the next run needs a fresh server
            self.proc.kill()
            with contextlib.suppress(OSError):
                self.close()
            self._start()
            raise
        if not answer:
            raise RuntimeError(f"the fork server died (exit code {self.proc.poll()})")
        return json.loads(answer)

    def close(self) -> None:
        self._in.close()
        self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture(scope="session")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def crash_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="warden-crash-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("crash")
    yield root
    with contextlib.suppress(OSError):
        root.rmdir()  # only when empty: a failed run's folder stays


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Keep each phase's report on the test item, for `run_dir` to see how the test ended."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture
def run_dir(crash_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder for one run: removed afterwards unless the test failed."""
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=crash_root))
    yield folder
    reports = request.node.stash.get(_REPORTS, {})
    if not any(r.failed for r in reports.values()):
        shutil.rmtree(folder, ignore_errors=True)
