"""examples/mcp works end to end, and the how-to's snippets are its files."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as mt
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.mcp.conftest import WARDEN, text
from warden.mcp import config

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp"
SNIPPETS = ROOT / "docs" / "snippets" / "mcp"
HOW_TO = ROOT / "docs" / "how-to" / "mcp-proxy.md"


@pytest.mark.parametrize(
    "name",
    sorted(
        str(p.relative_to(SNIPPETS))
        for p in SNIPPETS.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".py")
    ),
)
def test_the_snippet_is_the_examples_file(name: str) -> None:
    assert (SNIPPETS / name).read_text() == (EXAMPLE / name).read_text()


def test_every_key_of_the_proxy_file_is_documented() -> None:
    keys: set[str] = set()
    for spec in (config._FileSpec, config._ProxySpec, config._UpstreamSpec, config._ToolSpec):  # pyright: ignore[reportPrivateUsage]
        keys |= set(spec.model_fields)
    page = HOW_TO.read_text()
    missing = sorted(k for k in keys if not re.search(rf"`(proxy\.)?{re.escape(k)}[`.]", page))
    assert not missing, f"not in docs/how-to/mcp-proxy.md: {missing}"


def test_the_example_serves_its_notes_through_warden(tmp_path: Path) -> None:
    project = tmp_path / "mcp"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".warden", "notes", "__pycache__")
    )
    venv = str(Path(sys.executable).parent)
    params = StdioServerParameters(
        command=str(WARDEN),
        args=["mcp", "proxy", "-p", str(project)],
        env={"PATH": venv + os.pathsep + os.environ.get("PATH", "")},
    )
    seen: dict[str, Any] = {}

    async def body() -> None:
        with (tmp_path / "proxy.log").open("a") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, read_timeout_seconds=30) as client,
            ):
                with anyio.fail_after(60):
                    await client.initialize()
                    seen["tools"] = [t.name for t in (await client.list_tools()).tools]
                    seen["write"] = await client.call_tool(
                        "notes__write_note", {"name": "todo", "text": "ship it"}
                    )
                    seen["read"] = await client.call_tool("notes__read_note", {"name": "todo"})
                    seen["long"] = await client.call_tool(
                        "notes__write_note", {"name": "essay", "text": "x" * 2001}
                    )
                    seen["delete"] = await client.call_tool("notes__delete_note", {"name": "todo"})

    anyio.run(body)
    assert seen["tools"] == [
        "notes__list_notes",
        "notes__read_note",
        "notes__write_note",
        "notes__delete_note",
    ]
    assert text(seen["write"]) == "saved todo" and text(seen["read"]) == "ship it"
    long: mt.CallToolResult = seen["long"]
    assert long.is_error and "notes are at most 2000 characters" in text(long)
    assert text(seen["delete"]).startswith("PENDING: notes__delete_note waits")
    assert (project / "notes" / "todo.txt").is_file()  # not deleted: nobody approved
