"""`warden mcp proxy` and `warden mcp tools`: Warden in front of MCP servers.

The commands need the ``mcp`` extra; without it they say how to install it and exit 2
(`warden --help` and every other command work regardless). See docs/how-to/mcp-proxy.md.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape
from rich.table import Table

from warden.cli.database import open_workspace, store_options
from warden.cli.main import cli, console, err_console, project_option
from warden.errors import McpError
from warden.mcp.config import ProxyConfig, load_proxy_config
from warden.mcp.contract import upstream_call
from warden.project import Project, load_project

_EXTRA = "pip install 'warden[mcp]'"
_LEVELS = ("critical", "error", "warning", "info", "debug")


def _need_sdk(*, http: bool = False) -> None:
    """Exit 2 with the install command when the MCP SDK (or, for HTTP, the server extra
    whose key checks the proxy reuses) is missing."""
    missing = [m for m in ("mcp",) if importlib.util.find_spec(m) is None]
    if http and importlib.util.find_spec("fastapi") is None:
        missing.append("fastapi")
    if missing:
        extra = "pip install 'warden[mcp,server]'" if "fastapi" in missing else _EXTRA
        err_console.print(
            f"warden mcp needs the mcp extra (the MCP SDK): {extra} "
            f"({', '.join(missing)} not installed)",
            markup=False,
        )
        sys.exit(2)


def _config(project: Project) -> ProxyConfig:
    """The proxy file the project's upstream tools were declared in."""
    files = sorted({c.config for t in project.tools if (c := upstream_call(t)) is not None})
    if not files:
        err_console.print(
            f"{project.name} registers no MCP upstream tools: list a module that calls "
            "warden.mcp.declared_tools('mcp.yaml') under tools: in warden.yaml "
            "(see docs/how-to/mcp-proxy.md)",
            markup=False,
        )
        sys.exit(2)
    if len(files) > 1:
        names = ", ".join(str(f) for f in files)
        err_console.print(f"one proxy file per project, found {names}", markup=False)
        sys.exit(2)
    return load_proxy_config(files[0])


@cli.group("mcp")
def mcp_group() -> None:
    """Put Warden between MCP clients and MCP servers (needs the mcp extra)."""


@mcp_group.command("proxy")
@store_options
@click.option("--agent", help="stdio: the agent every call acts as (default: proxy.agent).")
@click.option(
    "--on-behalf-of",
    "on_behalf_of",
    help="stdio: the person the calls act for; they may not approve them.",
)
@click.option(
    "--http", "http", is_flag=True, help="Serve Streamable HTTP (agent keys) instead of stdio."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="HTTP: the address to listen on."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8788,
    show_default=True,
    help="HTTP: the port (0: any free port, printed).",
)
@click.option(
    "--log-level",
    type=click.Choice(_LEVELS),
    default="warning",
    show_default=True,
    help="Log level (stderr).",
)
def proxy(
    project: Path,
    db: str | None,
    agent: str | None,
    on_behalf_of: str | None,
    http: bool,
    host: str,
    port: int,
    log_level: str,
) -> None:
    """Serve the project's upstream MCP tools to MCP clients, every call through Warden.

    The upstream servers and how their tools are governed come from the proxy file
    (mcp.yaml) the project's tools module declares. Over stdio (the default) every call
    acts as one agent (--agent or proxy.agent); with --http each request carries an agent
    key (`warden keys create --agent NAME`), which names the agent and its tool scope.
    Calls a policy holds for approval come back pending, with the approval id; approve
    with `warden approvals approve ID --as NAME` and call again.

    \b
    Examples:
      warden mcp proxy -p examples/mcp --agent assistant
      warden mcp proxy -p examples/mcp --http --port 8788
    """
    _need_sdk(http=http)
    import anyio

    from warden.mcp.proxy import Proxy
    from warden.mcp.serve import serve_http, serve_stdio

    ws = open_workspace(project, db, need_project=True)
    proj = ws.need_project()
    config = _config(proj)
    settings = config.settings
    speaker = None if http else (agent or settings.agent)
    if not http:
        if speaker is None:
            raise McpError("W-MCP-004", "no agent to act as: pass --agent or set proxy.agent")
        if proj.agent(speaker) is None:
            raise McpError("W-MCP-004", f"{speaker!r} is not an agent of project {proj.name}")
    _log_to_stderr(log_level)
    sock = _listen(host, port) if http else None
    store = ws.open(create=True)
    gate = proj.gate(store=store)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        recovered = gate.recover()
        if recovered:
            logging.getLogger("warden.mcp").warning(
                "settled %d actions a dead process left executing", len(recovered)
            )
        proxy_ = Proxy(
            gate=gate,
            config=config,
            agent=speaker,
            on_behalf_of=(on_behalf_of or settings.on_behalf_of) if not http else None,
        )
        if sock is None:
            anyio.run(serve_stdio, proxy_)
            return
        from warden.clock import SystemClock
        from warden.server.auth import KeyRing

        keys = KeyRing(store, SystemClock())
        bound = sock.getsockname()[1]
        out = console()
        shown = f"[{host}]" if ":" in host else host
        out.print(f"warden mcp proxy: listening on http://{shown}:{bound}/mcp", markup=False)
        out.print(f"  project   {escape(proj.name)}")
        for ns, up in config.upstreams.items():
            out.print(f"  upstream  {escape(ns)}: {escape(up.target)}")
        out.print(
            "  every request needs an agent key: Authorization: Bearer wdn_ag_...", markup=False
        )
        sys.stdout.flush()
        anyio.run(functools.partial(serve_http, proxy_, sock, keys, host=host, log_level=log_level))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        gate.executor.close()
        store.close()
        if sock is not None:
            sock.close()


def _log_to_stderr(level: str) -> None:
    """The proxy's own log on stderr (over stdio, stdout is the protocol)."""
    log = logging.getLogger("warden.mcp")
    log.setLevel(level.upper())
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warden mcp: %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.propagate = False


def _stop(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM stops the proxy like Ctrl-C: upstream processes are stopped, the store closed."""
    raise KeyboardInterrupt


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(256)
    return sock


@mcp_group.command("tools")
@project_option
def tools(project: Path) -> None:
    """List what each upstream offers, and how Warden governs it.

    Connects to every upstream in the proxy file once. A tool the file does not declare
    is hidden from clients; the upstream's own hints (read-only, destructive) are shown
    for what they are, hints: the risk tier is the one the file declares.
    """
    _need_sdk()
    import anyio

    proj = load_project(project)
    config = _config(proj)
    rows = anyio.run(_offers, config)
    table = Table(box=None, pad_edge=False)
    for col in ("tool", "upstream tool", "declared risk", "upstream hints", "state"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    console().print(table)


async def _offers(config: ProxyConfig) -> list[tuple[str, str, str, str, str]]:
    from warden.mcp.config import warden_name
    from warden.mcp.upstream import UpstreamServer

    async def nothing() -> None:
        return None

    rows: list[tuple[str, str, str, str, str]] = []
    for ns, up in config.upstreams.items():
        server = UpstreamServer(up, {}, on_change=nothing)
        try:
            offered = await server.probe()
        except Exception as exc:
            rows.append((f"{ns}__*", "-", "-", "-", f"W-MCP-002 unreachable: {exc}"))
            continue
        names = {t.name for t in offered}
        for t in offered:
            decl = up.tools.get(t.name)
            hints = ""
            if t.annotations is not None:
                a = t.annotations
                hints = ", ".join(
                    k
                    for k, v in (
                        ("read-only", a.read_only_hint),
                        ("destructive", a.destructive_hint),
                        ("idempotent", a.idempotent_hint),
                        ("open-world", a.open_world_hint),
                    )
                    if v
                )
            rows.append(
                (
                    warden_name(ns, t.name),
                    t.name,
                    decl.risk.value if decl is not None else "-",
                    hints or "-",
                    "declared" if decl is not None else "hidden (not declared)",
                )
            )
        for remote, decl in up.tools.items():
            if remote not in names:
                rows.append((decl.name, remote, decl.risk.value, "-", "declared, not offered"))
    return rows
