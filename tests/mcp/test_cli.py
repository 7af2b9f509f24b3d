"""`warden mcp`: without the extra it says how to install it; it refuses to start without
an agent; an unreachable upstream does not stop the others."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import mcp.types as mt
import pytest
from click.testing import CliRunner

from tests.mcp.conftest import McpProject, make_project, stdio_proxy, text
from warden.cli.main import cli

pytestmark = pytest.mark.timeout(120)

WITHOUT_SDK = "import sys; sys.modules['mcp'] = None; from warden.cli.main import main; "


def _without_sdk(*argv: str) -> subprocess.CompletedProcess[str]:
    code = WITHOUT_SDK + f"sys.argv = ['warden', *{list(argv)!r}]; main()"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_without_the_extra_the_proxy_says_how_to_install_it(project: McpProject) -> None:
    done = _without_sdk("mcp", "proxy", "-p", str(project.root), "--agent", "coder")
    assert done.returncode == 2
    assert "pip install 'warden[mcp]'" in done.stderr


def test_without_the_extra_warden_help_still_works() -> None:
    done = _without_sdk("--help")
    assert done.returncode == 0 and " mcp " in done.stdout


def test_the_stdio_proxy_refuses_to_start_without_an_agent(tmp_path: Any) -> None:
    project = make_project(tmp_path / "p", agent=None)
    result = CliRunner().invoke(cli, ["mcp", "proxy", "-p", str(project.root)])
    assert result.exit_code == 2
    assert "W-MCP-004" in result.output


def test_the_stdio_proxy_refuses_an_agent_the_project_does_not_have(project: McpProject) -> None:
    result = CliRunner().invoke(
        cli, ["mcp", "proxy", "-p", str(project.root), "--agent", "stranger"]
    )
    assert result.exit_code == 2
    assert "W-MCP-004" in result.output and "stranger" in result.output


BROKEN = """\
  broken:
    command: [/nonexistent/mcp-server]
    connect_timeout: 2s
    tools:
      thing: {risk: read}
"""


def test_an_unreachable_upstream_is_reported_and_the_others_keep_serving(tmp_path: Any) -> None:
    project = make_project(tmp_path / "p", extra_upstream=BROKEN)

    async def body() -> tuple[list[str], mt.CallToolResult]:
        with anyio.fail_after(60):
            async with stdio_proxy(project) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                return names, await client.call_tool("files__read_file", {"path": "p"})

    names, result = anyio.run(body)
    assert "files__read_file" in names and not any(n.startswith("broken__") for n in names)
    assert text(result) == "contents of p"
    assert "W-MCP-002" in project.proxy_log.read_text()


def test_mcp_tools_lists_declared_and_hidden_tools(project: McpProject) -> None:
    result = CliRunner().invoke(cli, ["mcp", "tools", "-p", str(project.root)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert "declared" in lines["files__read_file"]
    assert "hidden (not declared)" in lines["files__secret_admin"]
    assert "read-only" in lines["files__delete_file"]  # the upstream's hint, shown as one
    assert "high_risk" in lines["files__delete_file"]
    assert "declared, not offered" in lines["files__extra"]
