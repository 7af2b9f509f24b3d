"""Warden in front of MCP servers: `warden mcp proxy`.

    from warden.mcp import declared_tools   # the tools a proxy file (mcp.yaml) declares

The proxy file names the upstream MCP servers and how each of their tools is governed;
`declared_tools` turns it into Warden tools so a project's manifests and policies can
name them (``files__read_file``), and `warden.mcp.proxy.Proxy` serves them to MCP
clients with every call through `Gate.execute`. This package's root and `config`,
`contract` import no MCP SDK; `proxy`, `upstream` and `serve` need the ``mcp`` extra
(``pip install 'warden[mcp]'``). See docs/how-to/mcp-proxy.md.
"""

from warden.mcp.config import ProxyConfig, ToolDeclaration, Upstream, load_proxy_config
from warden.mcp.contract import UpstreamCall, declared_tools

__all__ = [
    "ProxyConfig",
    "ToolDeclaration",
    "Upstream",
    "UpstreamCall",
    "declared_tools",
    "load_proxy_config",
]
