"""`warden serve`: the project's decision API and admin API over HTTP.

One process, one uvicorn worker (httptools, uvloop); replicas are more processes on the
same database. The server settles what a dead process left executing before it listens,
and closes its store on SIGTERM or SIGINT after the requests in progress are answered.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.markup import escape

from warden.cli.database import Workspace, open_workspace, store_options
from warden.cli.main import cli, console
from warden.cli.render import shown_path

_LEVELS = ("critical", "error", "warning", "info", "debug")
_EXTRA = "pip install 'warden[server]'"


def _server_modules() -> tuple[Any, Any]:
    """uvicorn and `warden.server`, or a clear error when the server extra is missing."""
    try:
        import uvicorn

        import warden.server as server
    except ImportError as exc:
        raise click.ClickException(
            f"warden serve needs the server extra (FastAPI, uvicorn): {_EXTRA} "
            f"({exc.name or exc} is not installed)"
        ) from None
    return uvicorn, server


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: one the system picks), bound before anything is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _database(ws: Workspace) -> str:
    """Which database, for people: a path or a URL without its password, and where it
    was named."""
    return f"{ws.database.display} (from {ws.database.source})"


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    """uvicorn stops on SIGTERM, then raises it again: exit 0 then, not by the signal."""
    raise SystemExit(0)


@cli.command("serve")
@store_options
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="The port to listen on (0: any free port, printed).",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Requests handled at once; more are answered 503 W-API-005 with Retry-After.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="Largest request body in bytes (413 W-API-002 beyond).",
)
@click.option(
    "--max-depth",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Deepest JSON nesting of a body (400 W-API-003 beyond).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Worker threads for store calls and tools, off the event loop.",
)
@click.option(
    "--log-level", type=click.Choice(_LEVELS), default="info", show_default=True, help="Log level."
)
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
def serve(
    project: Path,
    db: str | None,
    host: str,
    port: int,
    max_inflight: int,
    max_body: int,
    max_depth: int,
    threads: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Serve the decision API and the admin API over HTTP.

    Agents call POST /v1/decide (Warden decides and records; the agent runs the tool and
    reports the outcome) or POST /v1/execute (Warden runs the project's tool), with a key
    from `warden keys create --agent`. Operators use the admin API (runs, approvals,
    kill switch, policy reload, audit log) with tokens from `warden keys create
    --operator`. GET /openapi.json describes every endpoint; see
    docs/reference/http-api.md.

    Before listening, actions a dead process left executing are settled (reconcile hook,
    else outcome_unknown) and expired approvals are marked. SIGTERM or Ctrl-C stops the
    server after the requests in progress, and closes the database.

    \b
    Examples:
      warden serve -p examples/refunds
      warden serve --host 0.0.0.0 --port 8080 --max-inflight 512
    """
    uvicorn, server = _server_modules()
    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    settings = server.ServerSettings(
        host=host,
        port=port,
        max_inflight=max_inflight,
        max_body=max_body,
        max_depth=max_depth,
        threads=threads,
        log_level=log_level,
        access_log=access_log,
    )
    sock = _listen(host, port)
    store = ws.open(create=True)
    try:
        service = server.Service(proj, store, settings, database=_database(ws))
    except BaseException:
        store.close()
        sock.close()
        raise
    try:
        bound = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        out = console()
        out.print(f"warden serve: listening on http://{shown_host}:{bound}", markup=False)
        out.print(f"  project   {escape(proj.name)} ({escape(str(shown_path(proj.root)))})")
        out.print(f"  policies  {proj.policies.revision}", markup=False)
        out.print(f"  database  {escape(service.database)}")
        if service.recovered:
            count = len(service.recovered)
            out.print(f"  recovered {count} actions a dead process left executing", markup=False)
        stored = store.keys()
        active = [k for k in stored if k.status(service.clock.timestamp()) == "active"]
        if not active:
            out.print(
                "  no active key yet: every request is refused until you run "
                "`warden keys create --agent NAME --as YOU`",
                markup=False,
            )
        out.print("  SIGTERM or Ctrl-C stops it", markup=False)
        sys.stdout.flush()
        config = uvicorn.Config(
            server.create_app(service, owns_service=True),
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            lifespan="on",
            log_level=log_level,
            access_log=access_log,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
        previous = signal.signal(signal.SIGTERM, _exit_cleanly)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        service.close()
        sock.close()
