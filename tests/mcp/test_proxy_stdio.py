"""`warden mcp proxy` over stdio, between a real MCP client session and a real MCP server.

Every test starts the proxy as a subprocess (which starts the upstream server) and talks
to it with the SDK's ClientSession; what the upstream saw is read from its call log and
what Warden recorded from the project's SQLite store.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import mcp.types as mt
import pytest
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext

from tests.mcp.conftest import WARDEN, McpProject, stdio_proxy, text
from warden.runs import ActionState

pytestmark = pytest.mark.timeout(120)


def run(fn: Any) -> Any:
    async def bounded() -> Any:
        with anyio.fail_after(90):
            return await fn()

    return anyio.run(bounded)


def test_tools_list_shows_the_agents_declared_tools_with_wardens_risk(
    project: McpProject,
) -> None:
    async def body() -> list[mt.Tool]:
        async with stdio_proxy(project) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in run(body)}
    # `extra` is declared but not offered yet, `secret_admin` is offered but not declared,
    # web__read_file's upstream is not in this project's file
    assert set(tools) == {
        "files__read_file",
        "files__write_file",
        "files__delete_file",
        "files__fail",
        "files__crash",
        "files__grow",
    }
    delete = tools["files__delete_file"]
    assert delete.meta is not None and delete.meta["warden/risk"] == "high_risk"
    # the upstream claims read-only; Warden's annotations follow the declared tier
    assert delete.meta["warden/upstream_hints"]["readOnlyHint"] is True
    assert delete.annotations is not None
    assert delete.annotations.read_only_hint is False and delete.annotations.destructive_hint
    read = tools["files__read_file"]
    assert read.annotations is not None and read.annotations.read_only_hint is True
    assert read.input_schema["additionalProperties"] is False
    assert read.input_schema["required"] == ["path"]


def test_an_allowed_call_reaches_the_upstream_once_and_is_recorded(project: McpProject) -> None:
    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project) as client:
            return await client.call_tool("files__read_file", {"path": "notes.txt"})

    result = run(body)
    assert not result.is_error
    assert text(result) == "contents of notes.txt"
    assert [c["args"] for c in project.calls()] == [{"path": "notes.txt"}]
    assert result.meta is not None
    view = project.action(result.meta["warden/action_id"])
    assert view.state is ActionState.SUCCEEDED
    assert view.outcome == "allow" and view.tool == "files__read_file"
    assert view.args == {"path": "notes.txt"}
    assert view.idempotency_key is not None


def test_a_denied_call_never_reaches_the_upstream(project: McpProject) -> None:
    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project) as client:
            return await client.call_tool(
                "files__write_file", {"path": "/etc/passwd", "text": "root::0:0"}
            )

    result = run(body)
    assert result.is_error
    assert text(result).startswith("W-POL-101: Warden denied this call to files__write_file")
    assert "system files are off limits" in text(result)
    assert "policies/writes.yaml:5" in text(result)
    assert project.calls() == []
    assert result.meta is not None
    view = project.action(result.meta["warden/action_id"])
    assert view.state is ActionState.DECIDED and view.outcome == "deny"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"path": 7}, "files__read_file.path"),
        ({}, "files__read_file.path"),
        ({"path": "a", "mode": "rw"}, "files__read_file.mode"),
    ],
    ids=["wrong type", "missing", "unknown field"],
)
def test_arguments_that_break_the_upstream_schema_are_denied_at_the_contract(
    project: McpProject, args: dict[str, Any], field: str
) -> None:
    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project) as client:
            return await client.call_tool("files__read_file", args)

    result = run(body)
    assert result.is_error
    assert text(result).startswith("W-CON-001") and field in text(result)
    assert project.calls() == []


def test_a_tool_the_file_does_not_declare_cannot_be_called(project: McpProject) -> None:
    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project) as client:
            return await client.call_tool("files__secret_admin", {})

    result = run(body)
    assert result.is_error and text(result).startswith("W-IDN-003")
    assert project.calls() == []


def test_an_approval_round_trip_runs_the_call_once_after_approval(project: McpProject) -> None:
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with stdio_proxy(project) as client:
            first = await client.call_tool("files__delete_file", {"path": "old.log"})
            seen["first"] = first
            assert first.meta is not None
            approval = first.meta["warden/approval_id"]
            seen["still"] = await client.call_tool("files__delete_file", {"path": "old.log"})
            await anyio.to_thread.run_sync(project.approve, approval)
            seen["after"] = await client.call_tool("files__delete_file", {"path": "old.log"})
            seen["again"] = await client.call_tool("files__delete_file", {"path": "old.log"})

    run(body)
    first, still, after, again = (seen[k] for k in ("first", "still", "after", "again"))
    assert first.is_error and text(first).startswith("PENDING: files__delete_file waits")
    approval = first.meta["warden/approval_id"]
    assert f"warden approvals approve {approval} --as NAME" in text(first)
    assert still.meta["warden/approval_id"] == approval  # the same request, still pending
    assert not after.is_error and text(after) == "deleted old.log"
    assert after.meta["warden/approval_id"] == approval
    assert [c["args"] for c in project.calls("delete_file")] == [{"path": "old.log"}]
    # a later identical call is a new action: it needs its own approval
    assert again.is_error and again.meta["warden/approval_id"] != approval
    assert project.action(after.meta["warden/action_id"]).state is ActionState.SUCCEEDED


def test_the_person_the_calls_act_for_cannot_approve_them(project: McpProject) -> None:
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with stdio_proxy(project, "--on-behalf-of", "alice") as client:
            first = await client.call_tool("files__delete_file", {"path": "x"})
            approval = first.meta["warden/approval_id"]  # pyright: ignore[reportOptionalSubscript]
            try:
                await anyio.to_thread.run_sync(project.approve, approval, "alice")
            except Exception as exc:
                seen["refused"] = exc
            await anyio.to_thread.run_sync(project.approve, approval, "bob")
            seen["after"] = await client.call_tool("files__delete_file", {"path": "x"})

    run(body)
    assert getattr(seen["refused"], "code", "").startswith("W-APR-")
    assert text(seen["after"]) == "deleted x"


def _approve_soon(
    project: McpProject, params: mt.ElicitRequestParams, seen: dict[str, Any]
) -> None:
    message = params.message
    seen["message"] = message
    approval = message.split("(approval ", 1)[1].split(")", 1)[0]
    threading.Timer(0.3, project.approve, args=(approval,)).start()


def test_a_client_that_elicits_can_wait_for_the_verdict(project: McpProject) -> None:
    seen: dict[str, Any] = {}

    async def elicit(
        context: ClientRequestContext, params: mt.ElicitRequestParams
    ) -> mt.ElicitResult:
        _approve_soon(project, params, seen)
        return mt.ElicitResult(action="accept", content={"wait": True})

    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project, elicitation_callback=elicit) as client:
            return await client.call_tool("files__delete_file", {"path": "a.txt"})

    result = run(body)
    assert not result.is_error and text(result) == "deleted a.txt"
    message = seen["message"]
    assert "agent coder" in message and "files__delete_file" in message and "lead" in message
    assert "not an approval" in message
    assert len(project.calls("delete_file")) == 1


def test_declining_the_elicitation_gives_the_pending_result(project: McpProject) -> None:
    async def elicit(
        context: ClientRequestContext, params: mt.ElicitRequestParams
    ) -> mt.ElicitResult:
        return mt.ElicitResult(action="decline")

    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project, elicitation_callback=elicit) as client:
            return await client.call_tool("files__delete_file", {"path": "b.txt"})

    result = run(body)
    assert result.is_error and text(result).startswith("PENDING")
    assert project.calls() == []


def test_a_2026_client_gets_the_elicitation_as_input_required(project: McpProject) -> None:
    """The high-level Client negotiates 2026-07-28, where the server cannot push an
    elicitation: the proxy answers InputRequiredResult and the client retries."""
    seen: dict[str, Any] = {}

    async def elicit(
        context: ClientRequestContext, params: mt.ElicitRequestParams
    ) -> mt.ElicitResult:
        _approve_soon(project, params, seen)
        return mt.ElicitResult(action="accept", content={"wait": True})

    async def body() -> tuple[str, mt.CallToolResult]:
        params = StdioServerParameters(
            command=str(WARDEN), args=["mcp", "proxy", "-p", str(project.root)]
        )
        async with Client(params, elicitation_callback=elicit, read_timeout_seconds=30) as c:
            return c.protocol_version, await c.call_tool("files__delete_file", {"path": "c"})

    version, result = run(body)
    assert version == "2026-07-28"
    assert not result.is_error and text(result) == "deleted c"
    assert len(project.calls("delete_file")) == 1


def test_an_upstream_error_result_is_recorded_failed_and_passed_on(project: McpProject) -> None:
    async def body() -> mt.CallToolResult:
        async with stdio_proxy(project) as client:
            return await client.call_tool("files__fail", {"reason": "disk full"})

    result = run(body)
    assert result.is_error and text(result) == "Error executing tool fail: cannot: disk full"
    assert result.meta is not None and result.meta["warden/code"] == "W-MCP-005"
    view = project.action(result.meta["warden/action_id"])
    assert view.state is ActionState.FAILED
    assert view.error is not None and view.error["message"].endswith("cannot: disk full")


def test_an_upstream_crash_mid_call_is_recorded_and_the_proxy_reconnects(
    project: McpProject,
) -> None:
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with stdio_proxy(project) as client:
            seen["crash"] = await client.call_tool("files__crash", {"after_s": 0.2})
            for i in range(100):  # the proxy restarts the server; meanwhile calls fail
                result = await client.call_tool("files__read_file", {"path": f"r{i}"})
                if not result.is_error:
                    seen["after"] = result
                    break
                # not connected (nothing sent), or no contract until it lists again
                assert "W-MCP-002" in text(result) or "W-MCP-006" in text(result), result
                await anyio.sleep(0.2)

    run(body)
    crash = seen["crash"]
    assert crash.is_error and "W-MCP-003" in text(crash)
    view = project.action(crash.meta["warden/action_id"])
    assert view.state is ActionState.FAILED
    assert view.error is not None and "W-MCP-003" in view.error["message"]
    assert text(seen["after"]).startswith("contents of r")
    pids = {c["pid"] for c in project.calls()}
    assert len(pids) == 2  # the crashed server and the one the proxy started again


def test_list_changed_from_the_upstream_reaches_the_client(project: McpProject) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, mt.ToolListChangedNotification):
            changed.set()

    async def body() -> tuple[set[str], set[str]]:
        async with stdio_proxy(project, message_handler=on_message) as client:
            before = {t.name for t in (await client.list_tools()).tools}
            await client.call_tool("files__grow", {})
            with anyio.fail_after(20):
                await changed.wait()
            after = {t.name for t in (await client.list_tools()).tools}
            extra = await client.call_tool("files__extra", {"word": "hi"})
            assert text(extra) == "hi", extra
            return before, after

    before, after = run(body)
    assert "files__extra" not in before
    assert after - before == {"files__extra"}
