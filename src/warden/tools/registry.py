"""The set of tools one project knows, by name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from warden.errors import ToolDefinitionError
from warden.tools.schema import to_anthropic, to_mcp, to_openai
from warden.tools.spec import Tool

__all__ = ["ToolRegistry"]

SchemaFlavour = Literal["openai", "anthropic", "mcp"]


class ToolRegistry:
    """Tools by name. A second tool with a name already taken fails at registration."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> Tool:
        existing = self._tools.get(tool.name)
        if existing is not None and existing is not tool:
            raise ToolDefinitionError(
                "W-TOOL-002",
                f"tool name {tool.name!r} is registered twice "
                f"({_origin(existing)} and {_origin(tool)})",
            )
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def export(
        self, flavour: SchemaFlavour, names: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Tool definitions in the shape a model API or MCP ``tools/list`` expects."""
        convert = {"openai": to_openai, "anthropic": to_anthropic, "mcp": to_mcp}[flavour]
        chosen = self._tools.values() if names is None else [self._tools[n] for n in names]
        return [convert(t) for t in chosen]


def _origin(tool: Tool) -> str:
    return f"{tool.fn.__module__}.{tool.fn.__qualname__}"
