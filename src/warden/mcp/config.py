"""The MCP proxy's file: which upstream MCP servers it fronts and how their tools are governed.

    proxy:
      agent: coder                 # who stdio callers act as (or `--agent`)
      approval_wait: 2m            # how long a caller may wait for a verdict
    upstreams:
      files:                       # the namespace: tools become files__<tool>
        command: [python, files_server.py]
        tools:
          read_file: {risk: read}
          write_file: {risk: write, sensitive: [path], timeout: 10s}
      tracker:
        url: http://127.0.0.1:9000/mcp
        headers_env: {Authorization: TRACKER_AUTH}
        tools:
          create_issue: {risk: write}

Only declared tools exist for Warden: a tool an upstream offers but the file does not
name is hidden and cannot be called. An upstream's own annotations (``readOnlyHint`` ...)
are shown to clients as hints and never decide a risk tier. Parsing needs no MCP SDK, so
`warden check` and `warden approvals` work without the ``mcp`` extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warden.durations import parse_duration
from warden.errors import McpConfigError
from warden.tools.spec import RiskTier
from warden.yamlsource import YamlDoc, config_error_from_validation, load_yaml

__all__ = [
    "SEPARATOR",
    "ProxyConfig",
    "ProxySettings",
    "ToolDeclaration",
    "Upstream",
    "load_proxy_config",
    "warden_name",
]

SEPARATOR = "__"
"""Between an upstream's namespace and its tool's name: ``files__read_file``."""

_NAMESPACE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_MCP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
"""The tool names MCP clients accept (SEP-986)."""


def warden_name(namespace: str, tool: str) -> str:
    """The name a client and Warden's manifests and policies use for an upstream tool."""
    return f"{namespace}{SEPARATOR}{tool}"


def _seconds(value: str | float) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("the duration must be positive")
    return seconds


class _ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    risk: RiskTier
    description: str | None = None
    sensitive: list[str] = []
    timeout: str | float = "30s"
    retries: int = Field(default=0, ge=0, le=10)
    trusted_output: bool = False
    input_schema: dict[str, Any] | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | float) -> str | float:
        _seconds(value)
        return value


class _UpstreamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] | None = Field(default=None, min_length=1)
    cwd: str | None = None
    env: dict[str, str] = {}
    pass_env: list[str] = []
    url: str | None = None
    headers: dict[str, str] = {}
    headers_env: dict[str, str] = {}
    connect_timeout: str | float = "20s"
    tools: dict[str, _ToolSpec | None] = Field(min_length=1)

    @field_validator("connect_timeout")
    @classmethod
    def _connect(cls, value: str | float) -> str | float:
        _seconds(value)
        return value


class _ProxySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str | None = None
    on_behalf_of: str | None = None
    approval_wait: str | float = "2m"
    health_interval: str | float = "5s"

    @field_validator("approval_wait", "health_interval")
    @classmethod
    def _durations(cls, value: str | float) -> str | float:
        _seconds(value)
        return value


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proxy: _ProxySpec = _ProxySpec()
    upstreams: dict[str, _UpstreamSpec] = Field(min_length=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolDeclaration:
    """How Warden governs one upstream tool."""

    namespace: str
    """The upstream it belongs to."""
    remote: str
    """Its name on the upstream server."""
    name: str
    """Its name for clients, manifests and policies (``namespace__remote``)."""
    risk: RiskTier
    """Its risk tier, as the operator declared it (never the upstream's hints)."""
    description: str | None = None
    """Replaces the upstream's description when set (upstream text is untrusted)."""
    sensitive: frozenset[str] = frozenset()
    """Arguments that must come from trusted input."""
    timeout_s: float = 30.0
    retries: int = 0
    trusted_output: bool = False
    """Whether its output may be treated as trusted content (default: untrusted)."""
    input_schema: dict[str, Any] | None = None
    """A pinned JSON Schema for the arguments, used instead of the upstream's."""
    line: int | None = None
    """Where it is declared, for messages."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Upstream:
    """One upstream MCP server: how to reach it and which of its tools are declared."""

    namespace: str
    command: tuple[str, ...] | None = None
    """stdio: the program and its arguments."""
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict[str, str])
    """stdio: variables set for the program (besides a minimal safe environment)."""
    pass_env: tuple[str, ...] = ()
    """stdio: variables passed through from the proxy's environment."""
    url: str | None = None
    """Streamable HTTP: the endpoint."""
    headers: dict[str, str] = field(default_factory=dict[str, str])
    headers_env: dict[str, str] = field(default_factory=dict[str, str])
    """Streamable HTTP: header name -> the environment variable holding its value."""
    connect_timeout_s: float = 20.0
    tools: dict[str, ToolDeclaration] = field(default_factory=dict[str, ToolDeclaration])
    """By the upstream's own tool name."""

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def target(self) -> str:
        """What it runs or reaches, for people (never a header value)."""
        if self.command is not None:
            return " ".join(self.command)
        return self.url or ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProxySettings:
    """``proxy:``: the proxy's own settings."""

    agent: str | None = None
    """The agent stdio callers act as (``--agent`` overrides it)."""
    on_behalf_of: str | None = None
    """The person stdio callers act for: they may not approve the calls they cause."""
    approval_wait_s: float = 120.0
    """How long a caller who chose to wait (elicitation) is held for a verdict."""
    health_interval_s: float = 5.0
    """How often a connected upstream is pinged, to notice that it went away."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProxyConfig:
    """A parsed proxy file."""

    file: Path
    settings: ProxySettings
    upstreams: dict[str, Upstream]
    """By namespace."""

    def declarations(self) -> list[ToolDeclaration]:
        return [t for u in self.upstreams.values() for t in u.tools.values()]


def load_proxy_config(path: Path | str, *, display: str | None = None) -> ProxyConfig:
    """Read and check a proxy file; errors name the file and line (W-MCP-001)."""
    file = Path(path)
    doc = load_yaml(file, display=display or file.name)
    data = doc.mapping()
    if data is None:
        raise doc.error("W-MCP-001", "the MCP proxy file must be a mapping", cls=McpConfigError)
    try:
        spec = _FileSpec.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc, cls=McpConfigError, code="W-MCP-001") from None
    root = file.resolve().parent
    upstreams = {ns: _upstream(doc, root, ns, u) for ns, u in spec.upstreams.items()}
    names: dict[str, str] = {}
    for u in upstreams.values():
        for t in u.tools.values():
            if t.name in names:
                raise doc.error(
                    "W-MCP-001",
                    f"two tools are both named {t.name!r} for clients ({names[t.name]} and "
                    f"{u.namespace})",
                    ("upstreams", u.namespace, "tools", t.remote),
                    cls=McpConfigError,
                )
            names[t.name] = u.namespace
    p = spec.proxy
    settings = ProxySettings(
        agent=p.agent,
        on_behalf_of=p.on_behalf_of,
        approval_wait_s=_seconds(p.approval_wait),
        health_interval_s=_seconds(p.health_interval),
    )
    return ProxyConfig(file=file.resolve(), settings=settings, upstreams=upstreams)


def _upstream(doc: YamlDoc, root: Path, namespace: str, spec: _UpstreamSpec) -> Upstream:
    loc = ("upstreams", namespace)
    if not _NAMESPACE.match(namespace) or SEPARATOR in namespace:
        raise doc.error(
            "W-MCP-001",
            f"namespace {namespace!r} must be lower-case letters, digits and '-', starting "
            "with a letter, at most 32 characters",
            loc,
            cls=McpConfigError,
        )
    if (spec.command is None) == (spec.url is None):
        raise doc.error(
            "W-MCP-001",
            "an upstream has either `command` (stdio) or `url` (Streamable HTTP)",
            loc,
            cls=McpConfigError,
        )
    if spec.url is not None and not spec.url.startswith(("http://", "https://")):
        raise doc.error(
            "W-MCP-001",
            "`url` must be an http:// or https:// URL",
            (*loc, "url"),
            cls=McpConfigError,
        )
    tools: dict[str, ToolDeclaration] = {}
    for remote, tool in spec.tools.items():
        tool_loc = (*loc, "tools", remote)
        if tool is None:
            raise doc.error(
                "W-MCP-001",
                "declare at least the tool's risk tier, e.g. `{risk: read}`",
                tool_loc,
                cls=McpConfigError,
            )
        name = warden_name(namespace, remote)
        if not _MCP_NAME.match(name):
            raise doc.error(
                "W-MCP-001",
                f"{name!r} is not a tool name MCP clients accept (letters, digits, '_', '-', "
                "'.'; at most 128 characters)",
                tool_loc,
                cls=McpConfigError,
            )
        if tool.input_schema is not None:
            _check_pinned(doc, tool_loc, tool)
        tools[remote] = ToolDeclaration(
            namespace=namespace,
            remote=remote,
            name=name,
            risk=tool.risk,
            description=tool.description,
            sensitive=frozenset(tool.sensitive),
            timeout_s=_seconds(tool.timeout),
            retries=tool.retries,
            trusted_output=tool.trusted_output,
            input_schema=tool.input_schema,
            line=doc.line_of(tool_loc),
        )
    cwd = root / spec.cwd if spec.cwd is not None else root
    return Upstream(
        namespace=namespace,
        command=tuple(spec.command) if spec.command is not None else None,
        cwd=cwd if spec.command is not None else None,
        env=dict(spec.env),
        pass_env=tuple(spec.pass_env),
        url=spec.url,
        headers=dict(spec.headers),
        headers_env=dict(spec.headers_env),
        connect_timeout_s=_seconds(spec.connect_timeout),
        tools=tools,
    )


def _check_pinned(doc: YamlDoc, loc: tuple[str, ...], tool: _ToolSpec) -> None:
    schema = tool.input_schema or {}
    if schema.get("type") != "object":
        raise doc.error(
            "W-MCP-001",
            "a pinned input_schema describes an object (`type: object`)",
            (*loc, "input_schema"),
            cls=McpConfigError,
        )
    props: Any = schema.get("properties")
    known = {str(k) for k in cast(dict[str, Any], props)} if isinstance(props, dict) else set[str]()
    unknown = sorted(set(tool.sensitive) - known)
    if unknown:
        raise doc.error(
            "W-MCP-001",
            f"sensitive argument(s) {unknown} are not properties of the pinned input_schema",
            (*loc, "sensitive"),
            cls=McpConfigError,
        )
