"""The notes server's tools, as Warden tools: mcp.yaml declares them."""

from pathlib import Path

from warden.mcp import declared_tools

globals().update(declared_tools(Path(__file__).with_name("mcp.yaml")))
