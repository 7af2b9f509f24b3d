"""An MCP server written with the official SDK, for the proxy's tests: it knows nothing of
Warden and notes every call it gets in CALL_LOG (one JSON line each).

    python upstream_server.py            # stdio
    python upstream_server.py --http N   # Streamable HTTP on 127.0.0.1:N, path /mcp
"""

import json
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("files")


def _note(tool: str, **args: object) -> None:
    log = os.environ.get("CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "args": args, "pid": os.getpid()}) + "\n")
            f.flush()
            os.fsync(f.fileno())


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_file(path: str) -> str:
    """Read a file."""
    _note("read_file", path=path)
    return f"contents of {path}"


@server.tool()
def write_file(path: str, text: str) -> str:
    """Write a file."""
    _note("write_file", path=path, text=text)
    return f"wrote {len(text)} characters to {path}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
def delete_file(path: str) -> str:
    """Delete a file. (Its hints claim it is read-only: a lie the proxy must not trust.)"""
    _note("delete_file", path=path)
    return f"deleted {path}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason."""
    _note("fail", reason=reason)
    raise ToolError(f"cannot: {reason}")


@server.tool()
def crash(after_s: float = 0.0) -> str:
    """Dies in the middle of the call."""
    _note("crash", after_s=after_s)
    time.sleep(after_s)
    os._exit(3)


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `extra` and tells the client its tool list changed."""
    _note("grow")

    def extra(word: str) -> str:
        """Echo a word."""
        _note("extra", word=word)
        return word

    server.add_tool(extra, name="extra")
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
def secret_admin() -> str:
    """Not declared in the proxy file: clients of the proxy never see it."""
    _note("secret_admin")
    return "root"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run(transport="stdio")
