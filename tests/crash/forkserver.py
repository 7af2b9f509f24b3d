"""A fork server for the crash matrix: pay the interpreter start once, fork per run.

Run as ``python -m tests.crash.forkserver``. It imports Warden and loads the payments
project, then reads one request per line on stdin (a run spec and a folder) and answers
one JSON line on stdout. For each request it forks a child that makes the calls until the
armed point kills it with SIGKILL (or, for ``killed_by_parent``, kills it itself at a
random moment while the tool runs), reaps it, then forks a second child that recovers and
retries. Reaping first matters: recovery only touches actions whose owner is dead, and
an unreaped zombie still answers ``os.kill(pid, 0)``.

The server stays single-threaded and never opens a store, so every child starts with no
threads and no open database, as a fresh process would.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.crash import children
from tests.crash.plan import RunSpec

CHILD_DEADLINE_S = 20.0
"""A child still running after this long is killed and reported as hung."""


def main() -> None:
    loaded = children.Loaded()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while line := sys.stdin.readline():
        request = json.loads(line)
        answer = serve(RunSpec.from_json(request["spec"]), Path(request["dir"]), loaded)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def serve(spec: RunSpec, run_dir: Path, loaded: children.Loaded) -> dict[str, Any]:
    """Crash one child at the spec's point, reap it, then recover in a second child."""
    crashed = _fork(
        run_dir,
        lambda fd: children.crash(spec, run_dir, fd, loaded),
        kill_delay_s=spec.kill_delay_s,
    )
    recovered = None
    if spec.recover:
        recovered = _fork(run_dir, lambda _fd: children.recover(spec, run_dir, loaded))
    return {"crash": crashed, "recovery": recovered}


def _fork(
    run_dir: Path, body: Callable[[int], int], *, kill_delay_s: float = 0.0
) -> dict[str, Any]:
    """Run `body` in a child; kill it when it writes to the pipe; reap it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.close(r)
            log = os.open(run_dir / "child.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = body(w)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(w)
    killed_by_parent = hung = False
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while True:  # the pipe reads EOF once the child is gone
        ready, _, _ = select.select([r], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            hung = True
            break
        data = os.read(r, 64)
        if not data:
            break
        if not killed_by_parent:  # the child is inside the tool call
            time.sleep(kill_delay_s)
            os.kill(pid, signal.SIGKILL)
            killed_by_parent = True
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return {
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "killed_by_parent": killed_by_parent,
        "hung": hung,
    }


if __name__ == "__main__":
    main()
