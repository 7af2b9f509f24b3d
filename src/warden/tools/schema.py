"""A tool's contract as the JSON shapes that model APIs and MCP expect."""

from __future__ import annotations

from typing import Any

from warden.tools.spec import RiskTier, Tool

__all__ = ["to_anthropic", "to_mcp", "to_openai"]


def _parameters(tool: Tool) -> dict[str, Any]:
    schema = tool.json_schema()
    schema.pop("title", None)
    schema["additionalProperties"] = False
    return schema


def _all_required(schema: dict[str, Any]) -> bool:
    props: dict[str, Any] = schema.get("properties", {})
    return set(props) == set(schema.get("required", []))


def to_openai(tool: Tool) -> dict[str, Any]:
    """OpenAI chat-completions ``tools`` entry. ``strict`` is set when the schema allows it
    (OpenAI's strict mode needs every property required)."""
    params = _parameters(tool)
    function: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "parameters": params,
    }
    if _all_required(params) and "$defs" not in params:
        function["strict"] = True
    return {"type": "function", "function": function}


def to_anthropic(tool: Tool) -> dict[str, Any]:
    """Anthropic messages ``tools`` entry."""
    return {"name": tool.name, "description": tool.description, "input_schema": _parameters(tool)}


def to_mcp(tool: Tool) -> dict[str, Any]:
    """MCP ``tools/list`` entry with annotations derived from the risk tier."""
    return {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": _parameters(tool),
        "annotations": {
            "title": tool.name.replace("_", " ").capitalize(),
            "readOnlyHint": tool.risk is RiskTier.READ,
            "destructiveHint": tool.risk in (RiskTier.HIGH_RISK, RiskTier.PROD_CONTROL),
            "idempotentHint": tool.risk is RiskTier.READ,
            "openWorldHint": not tool.trusted_output,
        },
        "_meta": {"warden/risk": tool.risk.value, "warden/sensitive": sorted(tool.sensitive)},
    }
