"""A Warden project in front of a real MCP server (tests/mcp/upstream_server.py), and real
MCP client sessions (the official SDK) to `warden mcp proxy` over stdio and HTTP."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from warden.clock import SystemClock
from warden.execution import Approvals
from warden.identity import KeyKind, new_key
from warden.runs import ActionState, ActionView
from warden.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream_server.py"
WARDEN = Path(sys.executable).with_name("warden")

TOOLS = """\
      read_file: {risk: read}
      write_file: {risk: write, sensitive: [path]}
      delete_file: {risk: high_risk}
      fail: {risk: write}
      crash: {risk: write}
      grow: {risk: write}
      extra: {risk: read}
"""

POLICIES = {
    "reads.yaml": "policy:\n  id: reads\n  tools: [files__read_file, files__extra]\n"
    "  rules:\n    - allow: true\n",
    "writes.yaml": "policy:\n  id: writes\n  tools: [files__write_file]\n  rules:\n"
    "    - if: \"args.path.startswith('/etc')\"\n      deny: system files are off limits\n"
    "    - allow: true\n",
    "risky.yaml": "policy:\n  id: risky\n  tools: [files__fail, files__crash, files__grow]\n"
    "  rules:\n    - allow: true\n",
    "deletes.yaml": "policy:\n  id: deletes\n  tools: [files__delete_file]\n  rules:\n"
    "    - require_approval: lead\n",
}

ALLOWED = [
    "files__read_file",
    "files__write_file",
    "files__delete_file",
    "files__fail",
    "files__crash",
    "files__grow",
    "files__extra",
]


@dataclass
class McpProject:
    root: Path
    call_log: Path

    @property
    def db(self) -> Path:
        return self.root / "warden.db"

    @property
    def proxy_log(self) -> Path:
        return self.root / "proxy.log"

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """What the upstream server saw, in order."""
        if not self.call_log.is_file():
            return []
        found = [json.loads(line) for line in self.call_log.read_text().splitlines() if line]
        return [c for c in found if tool is None or c["tool"] == tool]

    @contextlib.contextmanager
    def store(self) -> Iterator[SQLiteStore]:
        store = SQLiteStore(self.db)
        try:
            yield store
        finally:
            store.close()

    def action(self, action_id: str, *, settled: bool = True) -> ActionView:
        """The stored action; with `settled`, once its outcome is recorded (the proxy
        records it just after answering)."""
        deadline = time.monotonic() + 10
        with self.store() as store:
            while True:
                view = store.action(action_id)
                assert view is not None, action_id
                if not settled or view.state is not ActionState.EXECUTING:
                    return view
                assert time.monotonic() < deadline, f"{action_id} stays executing"
                time.sleep(0.05)

    def approve(self, approval_id: str, approver: str = "alice") -> None:
        with self.store() as store:
            roles = {"lead": frozenset({"alice", "bob"})}
            Approvals(store, roles=roles, clock=SystemClock()).approve(
                approval_id, approver=approver
            )

    def agent_key(self, agent: str = "coder", tools: list[str] | None = None) -> str:
        record, token = new_key(
            KeyKind.AGENT,
            agent,
            created_at=SystemClock().timestamp(),
            created_by="tests",
            tools=tools,
        )
        with self.store() as store:
            store.add_key(record)
        return token

    def operator_token(self) -> str:
        record, token = new_key(
            KeyKind.OPERATOR,
            "olga",
            created_at=SystemClock().timestamp(),
            created_by="tests",
            roles=["admin"],
        )
        with self.store() as store:
            store.add_key(record)
        return token


def make_project(
    root: Path,
    *,
    web_port: int | None = None,
    agent: str | None = "coder",
    extra_upstream: str = "",
) -> McpProject:
    root.mkdir(parents=True, exist_ok=True)
    log = root / "calls.jsonl"
    (root / "warden.yaml").write_text(
        "project: mcp-test\nagents: [agents]\ntools: [mcp_tools]\npolicies: [policies]\n"
        "store: warden.db\nroles:\n  lead: [alice, bob]\n"
    )
    (root / "mcp_tools.py").write_text(
        "from pathlib import Path\n\nfrom warden.mcp import declared_tools\n\n"
        'globals().update(declared_tools(Path(__file__).with_name("mcp.yaml")))\n'
    )
    proxy = "proxy:\n  approval_wait: 20s\n  health_interval: 1s\n"
    if agent is not None:
        proxy += f"  agent: {agent}\n"
    upstreams = (
        "upstreams:\n  files:\n"
        f"    command: [{json.dumps(sys.executable)}, {json.dumps(str(UPSTREAM))}]\n"
        f"    env: {{CALL_LOG: {json.dumps(str(log))}}}\n"
        "    tools:\n" + TOOLS
    )
    if web_port is not None:
        upstreams += (
            f"  web:\n    url: http://127.0.0.1:{web_port}/mcp\n"
            "    tools:\n      read_file: {risk: read}\n"
        )
    (root / "mcp.yaml").write_text(proxy + upstreams + extra_upstream)
    (root / "agents").mkdir(exist_ok=True)
    allowed = ", ".join(ALLOWED + (["web__read_file"] if web_port is not None else []))
    (root / "agents" / "coder.yaml").write_text(
        "agent:\n  name: coder\n  mode: act\n  loop_detection:\n    max_identical_calls: 5\n"
        f"  permissions:\n    allowed_tools: [{allowed}]\n"
    )
    (root / "policies").mkdir(exist_ok=True)
    for name, text in POLICIES.items():
        (root / "policies" / name).write_text(text)
    if web_port is not None:
        (root / "policies" / "web.yaml").write_text(
            "policy:\n  id: web\n  tools: [web__read_file]\n  rules:\n    - allow: true\n"
        )
    return McpProject(root=root, call_log=log)


@pytest.fixture
def project(tmp_path: Path) -> McpProject:
    return make_project(tmp_path / "project")


@contextlib.asynccontextmanager
async def stdio_proxy(
    project: McpProject, *args: str, **session: Any
) -> AsyncGenerator[ClientSession]:
    """A client session to `warden mcp proxy` (a subprocess) over stdio."""
    params = StdioServerParameters(
        command=str(WARDEN), args=["mcp", "proxy", "-p", str(project.root), *args]
    )
    with project.proxy_log.open("a") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=30, **session) as client,
        ):
            with anyio.fail_after(30):
                await client.initialize()
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(argv: list[str], log: Path, *, ready: str, timeout_s: float = 30) -> Iterator[str]:
    """Run `argv` until the block ends; wait for a stdout line matching `ready` (a regex)
    and yield its first group (or the line)."""
    with log.open("a") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout_s
            while True:
                assert time.monotonic() < deadline, f"{argv[:3]} did not start; see {log}"
                line = proc.stdout.readline()
                assert line or proc.poll() is None, f"{argv[:3]} exited; see {log}"
                found = re.search(ready, line)
                if found:
                    yield found.group(1) if found.groups() else line
                    return
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)
