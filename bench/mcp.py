"""MCP proxy: what `warden mcp proxy` adds to a ``tools/call`` over stdio.

Two real MCP client sessions (the official SDK) run side by side: one talks to an
upstream MCP server directly, the other to `warden mcp proxy` in front of a second copy
of the same server. Calls alternate between them, so both see the same machine; each
call is timed alone, client side. The proxied call passes the whole gate and records its
decision durably before the upstream is called (SQLite, ``synchronous=FULL``, in a
fresh folder), so the raw commit on the same disk is shown as the floor. The upstream's
one tool echoes a number; every call has a new one (no loop detection, no cache).

``python -m bench.mcp --upstream`` is that upstream server.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["McpConfig", "measure_mcp"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, kw_only=True, slots=True)
class McpConfig:
    calls: int = 400
    """Timed calls per side."""
    warmup: int = 40
    folder: Path | None = None
    """Where the proxy's SQLite file goes (default: the system temp dir)."""

    @classmethod
    def quick(cls) -> McpConfig:
        return cls(calls=60, warmup=10)

    def in_folder(self, folder: Path | None) -> McpConfig:
        return replace(self, folder=folder)


_PROJECT = {
    "warden.yaml": (
        "project: bench-mcp\nagents: [agents]\ntools: [mcp_tools]\npolicies: [policies]\n"
    ),
    "mcp_tools.py": (
        "from pathlib import Path\n\nfrom warden.mcp import declared_tools\n\n"
        'globals().update(declared_tools(Path(__file__).with_name("mcp.yaml")))\n'
    ),
    "agents/bench.yaml": (
        "agent:\n  name: bench\n  mode: act\n  permissions:\n    allowed_tools: [echo__echo]\n"
    ),
    "policies/echo.yaml": (
        'policy:\n  tool: echo__echo\n  rules:\n    - if: "args.n >= 0"\n      allow: true\n'
    ),
}


def _project(folder: Path) -> Path:
    project = folder / "project"
    for name, text in _PROJECT.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (project / "mcp.yaml").write_text(
        "upstreams:\n"
        "  echo:\n"
        f"    command: [{sys.executable}, -m, bench.mcp, --upstream]\n"
        f"    cwd: {ROOT}\n"
        "    tools:\n"
        "      echo: {risk: read}\n",
        encoding="utf-8",
    )
    return project


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p90": _pct(values, 0.90),
        "p99": _pct(values, 0.99),
        "mean": statistics.fmean(values),
    }


async def _measure(project: Path, config: McpConfig) -> tuple[list[float], list[float]]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    upstream = StdioServerParameters(
        command=sys.executable, args=["-m", "bench.mcp", "--upstream"], cwd=ROOT
    )
    proxy = StdioServerParameters(
        command=str(Path(sys.executable).with_name("warden")),
        args=["mcp", "proxy", "-p", str(project), "--agent", "bench"],
    )
    direct: list[float] = []
    proxied: list[float] = []
    async with (
        stdio_client(upstream) as (r1, w1),
        ClientSession(r1, w1) as one,
        stdio_client(proxy) as (r2, w2),
        ClientSession(r2, w2) as two,
    ):
        await one.initialize()
        await two.initialize()
        listed = await two.list_tools()
        assert [t.name for t in listed.tools] == ["echo__echo"], listed
        for i in range(config.warmup + config.calls):
            started = time.perf_counter()
            a = await one.call_tool("echo", {"n": i})
            middle = time.perf_counter()
            b = await two.call_tool("echo__echo", {"n": i})
            ended = time.perf_counter()
            assert not a.is_error, a
            assert not b.is_error, b
            if i >= config.warmup:
                direct.append((middle - started) * 1000.0)
                proxied.append((ended - middle) * 1000.0)
    return direct, proxied


def _raw_commit(folder: Path, n: int = 60) -> float:
    """p50 of a one-row INSERT + COMMIT in WAL with synchronous=FULL in `folder`: the
    floor under the durable decision record every proxied call waits for."""
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (x INTEGER)")
        took: list[float] = []
        for i in range(n):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")
            took.append((time.perf_counter() - started) * 1000.0)
        return statistics.median(took)
    finally:
        conn.close()


def measure_mcp(config: McpConfig) -> dict[str, Any]:
    """Time direct and proxied calls in one run; the added p50 is the target's figure."""
    if importlib.util.find_spec("mcp") is None:
        return {"skipped": "the mcp extra is not installed (pip install 'warden[mcp]')"}
    import anyio

    folder = Path(tempfile.mkdtemp(prefix="warden-bench-mcp-", dir=config.folder))
    try:
        project = _project(folder)
        direct, proxied = anyio.run(_measure, project, config)
        d, p = _summary(direct), _summary(proxied)
        return {
            "calls": config.calls,
            "warmup": config.warmup,
            "folder": str(config.folder or Path(tempfile.gettempdir())),
            "direct_ms": d,
            "proxied_ms": p,
            "added_p50_ms": p["p50"] - d["p50"],
            "added_p99_ms": p["p99"] - d["p99"],
            "ratio_p50": p["p50"] / d["p50"],
            "raw_commit_ms": _raw_commit(folder),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _upstream() -> None:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("echo")

    @server.tool()
    def echo(n: int) -> int:  # pyright: ignore[reportUnusedFunction]
        """Return n."""
        return n

    server.run(transport="stdio")


if __name__ == "__main__":
    if sys.argv[1:] == ["--upstream"]:
        _upstream()
    else:
        import json

        print(json.dumps(measure_mcp(McpConfig.quick()), indent=2))
