"""Tools: typed capabilities with strict argument contracts and risk tiers."""

from warden.tools.registry import ToolRegistry
from warden.tools.schema import to_anthropic, to_mcp, to_openai
from warden.tools.spec import Limits, RiskTier, Tool, ToolContext, tool

__all__ = [
    "Limits",
    "RiskTier",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "to_anthropic",
    "to_mcp",
    "to_openai",
    "tool",
]
