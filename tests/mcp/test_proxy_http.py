"""`warden mcp proxy --http`: agent keys name the caller; upstreams over stdio and HTTP.

One proxy process serves the module: in front of the test server over stdio (`files`)
and a second copy of it over Streamable HTTP (`web`). Each test opens its own MCP
session (a run of its own) with the SDK's Streamable HTTP client.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
import httpx2
import mcp.types as mt
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.conftest import (
    UPSTREAM,
    WARDEN,
    McpProject,
    free_port,
    make_project,
    process,
    text,
    wait_for_port,
)
from warden.runs import ActionState

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[McpProject, str]]:
    root = tmp_path_factory.mktemp("http") / "project"
    port = free_port()
    project = make_project(root, web_port=port, agent=None)
    upstream = [sys.executable, str(UPSTREAM), "--http", str(port)]
    log = root / "web.log"
    with contextlib.ExitStack() as stack:
        env = {**os.environ, "CALL_LOG": str(root / "web_calls.jsonl")}
        err = stack.enter_context(log.open("a"))
        web = subprocess.Popen(upstream, stdout=subprocess.DEVNULL, stderr=err, env=env)
        stack.callback(lambda: (web.terminate(), web.wait(10)))
        wait_for_port(port)
        project.agent_key()  # the store exists before the proxy starts
        argv = [str(WARDEN), "mcp", "proxy", "-p", str(root), "--http", "--port", "0"]
        url = stack.enter_context(
            process(argv, project.proxy_log, ready=r"listening on (http://\S+/mcp)")
        )
        yield project, url


@contextlib.asynccontextmanager
async def session(url: str, token: str | None) -> AsyncGenerator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, read_timeout_seconds=30) as mcp_session,
    ):
        with anyio.fail_after(30):
            await mcp_session.initialize()
        yield mcp_session


def run(fn: Any) -> Any:
    async def bounded() -> Any:
        with anyio.fail_after(90):
            return await fn()

    return anyio.run(bounded)


@pytest.mark.parametrize(
    "token",
    [None, "wdn_ag_aaaaaaaaaaaa_" + "x" * 43, "not-a-key", "operator"],
    ids=["no key", "unknown key", "not a warden key", "operator token"],
)
def test_a_request_without_a_valid_agent_key_is_refused(
    served: tuple[McpProject, str], token: str | None
) -> None:
    project, url = served
    if token == "operator":
        token = project.operator_token()

    async def body() -> None:
        async with session(url, token) as client:
            await client.list_tools()

    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the SDK wraps it in groups
        run(body)
    assert not isinstance(caught.value, TimeoutError)
    with httpx2.Client() as plain:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = plain.post(url, headers=headers, json={})
    assert answer.status_code in (401, 403)
    assert answer.json()["code"].startswith("W-AUTH-")


def test_an_agent_key_names_the_agent_and_both_upstream_transports_work(
    served: tuple[McpProject, str],
) -> None:
    project, url = served
    token = project.agent_key()

    async def body() -> tuple[set[str], mt.CallToolResult, mt.CallToolResult]:
        async with session(url, token) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            web = await client.call_tool("web__read_file", {"path": "w.txt"})
            files = await client.call_tool("files__read_file", {"path": "f.txt"})
            return names, web, files

    names, web, files = run(body)
    assert {"web__read_file", "files__read_file", "files__delete_file"} <= names
    assert text(web) == "contents of w.txt" and text(files) == "contents of f.txt"
    assert web.meta is not None and files.meta is not None
    assert web.meta["warden/run_id"] == files.meta["warden/run_id"]  # one session, one run
    view = project.action(web.meta["warden/action_id"])
    assert view.state is ActionState.SUCCEEDED
    with project.store() as store:
        run_view = store.run(view.run_id)
    assert run_view is not None and run_view.started_by == "coder"


def test_a_scoped_key_sees_and_calls_only_its_tools(served: tuple[McpProject, str]) -> None:
    project, url = served
    token = project.agent_key(tools=["files__read_file"])

    async def body() -> tuple[list[str], mt.CallToolResult]:
        async with session(url, token) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            refused = await client.call_tool("files__write_file", {"path": "a", "text": "b"})
            return names, refused

    names, refused = run(body)
    assert names == ["files__read_file"]
    assert refused.is_error and text(refused).startswith("W-AUTH-005")
    assert project.calls("write_file") == []


def test_an_approval_round_trip_over_http(served: tuple[McpProject, str]) -> None:
    project, url = served
    token = project.agent_key()
    seen: dict[str, Any] = {}

    async def body() -> None:
        async with session(url, token) as client:
            first = await client.call_tool("files__delete_file", {"path": "h.txt"})
            seen["first"] = first
            approval = first.meta["warden/approval_id"]  # pyright: ignore[reportOptionalSubscript]
            await anyio.to_thread.run_sync(project.approve, approval)
            seen["after"] = await client.call_tool("files__delete_file", {"path": "h.txt"})

    run(body)
    assert text(seen["first"]).startswith("PENDING")
    assert text(seen["after"]) == "deleted h.txt"
    assert [c["args"] for c in project.calls("delete_file")] == [{"path": "h.txt"}]


def test_two_sessions_are_two_runs(served: tuple[McpProject, str]) -> None:
    project, url = served
    token = project.agent_key()

    async def one() -> str:
        async with session(url, token) as client:
            result = await client.call_tool("files__read_file", {"path": "s"})
            return str(result.meta["warden/run_id"])  # pyright: ignore[reportOptionalSubscript]

    assert run(one) != run(one)
