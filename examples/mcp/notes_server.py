"""A small MCP server that keeps text notes in a folder: the upstream of this example.

Run by `warden mcp proxy` (see mcp.yaml); it knows nothing of Warden. Notes live in
NOTES_DIR (default: ./notes). `purge_notes` is deliberately not declared in mcp.yaml, so
clients of the proxy never see it.
"""

import os
import re
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")
NAME = re.compile(r"^[a-z0-9-]{1,40}$")


def _folder() -> Path:
    folder = Path(os.environ.get("NOTES_DIR", "notes"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(name: str) -> Path:
    if not NAME.match(name):
        raise ValueError(f"a note name is 1-40 of a-z, 0-9 and '-', not {name!r}")
    return _folder() / f"{name}.txt"


@server.tool()
def list_notes() -> list[str]:
    """The names of all notes."""
    return sorted(p.stem for p in _folder().glob("*.txt"))


@server.tool()
def read_note(name: str) -> str:
    """The text of one note."""
    return _path(name).read_text(encoding="utf-8")


@server.tool()
def write_note(name: str, text: str) -> str:
    """Create or replace a note."""
    _path(name).write_text(text, encoding="utf-8")
    return f"saved {name}"


@server.tool()
def delete_note(name: str) -> str:
    """Delete a note for good."""
    _path(name).unlink()
    return f"deleted {name}"


@server.tool()
def purge_notes() -> str:
    """Delete every note."""
    for path in _folder().glob("*.txt"):
        path.unlink()
    return "purged"


if __name__ == "__main__":
    server.run(transport="stdio")
