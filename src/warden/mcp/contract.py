"""Upstream MCP tools as Warden tools: a JSON Schema contract and a function that calls out.

Each tool declared in the proxy file becomes a `warden.tools.spec.Tool` whose argument
model checks the upstream's JSON Schema (or one pinned in the file) with the maintained
`jsonschema` library, inside pydantic, so the gate validates it like any other contract
(``model_validate(args).model_dump(mode="json")``). Warden's strictness holds: a schema
that does not say otherwise gets ``additionalProperties: false``. Until the upstream has
listed the tool (and nothing is pinned) the contract is unknown and every call is denied
at the contract stage (W-MCP-006): fail closed.

The tool's function, an `UpstreamCall`, runs the call over the proxy's client session;
outside `warden mcp proxy` it has no session and refuses (W-MCP-002). A project lists a
module that registers these tools, so every `warden` command sees them::

    # mcp_tools.py, beside warden.yaml (tools: [mcp_tools])
    from pathlib import Path
    from warden.mcp import declared_tools

    globals().update(declared_tools(Path(__file__).with_name("mcp.yaml")))
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, LiteralString, Protocol, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from warden.errors import McpError
from warden.mcp.config import ProxyConfig, ToolDeclaration, load_proxy_config
from warden.tools.spec import Tool, ToolContext

__all__ = [
    "Contract",
    "UpstreamArguments",
    "UpstreamCall",
    "UpstreamLink",
    "declared_tools",
    "upstream_call",
]


class Contract:
    """The JSON Schema one upstream tool's arguments must match.

    Set from the upstream's listing (`offer`), or pinned in the proxy file; replaced
    whole, so a thread validating sees one schema or the other, never a mix."""

    def __init__(self, name: str, pinned: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.pinned = dict(pinned) if pinned is not None else None
        self._state: tuple[dict[str, Any], Any] | None = None
        self._lock = threading.Lock()
        if self.pinned is not None:
            self._state = _compile(self.pinned)

    @property
    def schema(self) -> dict[str, Any] | None:
        """The schema Warden enforces (what clients are shown), or None when unknown."""
        state = self._state
        return copy.deepcopy(state[0]) if state is not None else None

    @property
    def known(self) -> bool:
        return self._state is not None

    def offer(self, schema: Mapping[str, Any] | None) -> str | None:
        """Take the upstream's schema (a pinned one wins); None when usable, else why not.

        ``offer(None)`` forgets it: the upstream no longer lists the tool."""
        if self.pinned is not None:
            return None
        if schema is None:
            with self._lock:
                self._state = None
            return None
        try:
            state = _compile(schema)
        except Exception as exc:  # a schema jsonschema cannot use: the tool stays hidden
            with self._lock:
                self._state = None
            return f"its input schema is not a valid JSON Schema: {exc}"
        with self._lock:
            self._state = state
        return None

    def check(self, data: Any) -> None:
        """Raise pydantic's ValidationError (with the failing path) unless `data` fits."""
        state = self._state
        if state is None:
            raise _invalid(
                (),
                "unknown_contract",
                f"W-MCP-006: {self.name} is not offered by its upstream now (not connected, or "
                "no tool of that name), so its arguments cannot be checked",
                data,
            )
        if not isinstance(data, Mapping):
            raise _invalid((), "dict_type", "the arguments must be an object", data)
        validator = state[1]
        first = next(iter(validator.iter_errors(data)), None)
        if first is None:
            return
        from jsonschema import exceptions

        best: Any = cast(Any, exceptions).best_match(validator.iter_errors(data))
        raise _from_schema_error(best)


def _compile(schema: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    from jsonschema.validators import Draft202012Validator, validator_for

    enforced = _strict(dict(schema))
    cls = validator_for(enforced, default=Draft202012Validator)
    cls.check_schema(enforced)
    return enforced, cls(enforced)


_COMBINERS = ("allOf", "anyOf", "oneOf", "$ref", "if", "unevaluatedProperties")


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Warden's rule for arguments (no unknown fields) unless the schema says otherwise."""
    if (
        schema.get("type") == "object"
        and isinstance(schema.get("properties"), dict)
        and "additionalProperties" not in schema
        and "patternProperties" not in schema
        and not any(k in schema for k in _COMBINERS)
    ):
        return {**schema, "additionalProperties": False}
    return schema


def _invalid(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> ValidationError:
    return ValidationError.from_exception_data(
        "arguments",
        [
            InitErrorDetails(
                type=PydanticCustomError(cast(LiteralString, kind), cast(LiteralString, message)),
                loc=loc,
                input=value,
            )
        ],
    )


def _from_schema_error(error: Any) -> ValidationError:
    """A jsonschema error as pydantic's, pointing at the argument that fails."""
    loc = tuple(cast(list[str | int], list(error.absolute_path)))
    instance: Any = error.instance
    validator: str = error.validator
    if validator == "required" and isinstance(instance, Mapping):
        wanted = cast(list[str], error.validator_value)
        missing = next((n for n in wanted if n not in instance), None)
        if missing is not None:
            return _invalid((*loc, missing), "missing", "required field is missing", None)
    if validator == "additionalProperties" and isinstance(instance, Mapping):
        props = cast(Mapping[str, Any], error.schema.get("properties") or {})
        extra = next((k for k in cast(Mapping[str, Any], instance) if k not in props), None)
        if extra is not None:
            return _invalid((*loc, extra), "extra_forbidden", "unknown field", instance[extra])
    if validator == "type":
        return _invalid(loc, "json_schema", f"should be of type {error.validator_value}", instance)
    message = str(error.message)
    if len(message) > 200:
        message = message[:197] + "..."
    return _invalid(loc, "json_schema", message, instance)


class UpstreamArguments(BaseModel):
    """Arguments of an upstream MCP tool, checked against its JSON Schema. Each tool gets
    a subclass holding its `Contract`; the values are kept as given (JSON)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    contract: ClassVar[Contract]

    @model_validator(mode="wrap")
    @classmethod
    def _json_schema(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, cls):
            cls.contract.check(data)
        return handler(data)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The enforced JSON Schema (an empty object schema until it is known)."""
        return cls.contract.schema or {"type": "object", "properties": {}}


class UpstreamLink(Protocol):
    """What runs an `UpstreamCall` (the proxy's connection to the upstream)."""

    def call(self, tool: UpstreamCall, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Call the upstream tool from a worker thread; returns the result as JSON."""
        ...


class UpstreamCall:
    """The function of an upstream tool's Warden `Tool`: hands the call to the link the
    proxy set, else refuses."""

    def __init__(self, declaration: ToolDeclaration, contract: Contract, config: Path) -> None:
        self.declaration = declaration
        self.contract = contract
        self.config = config
        """The proxy file that declared it."""
        self.link: UpstreamLink | None = None
        self.__name__ = declaration.name
        self.__qualname__ = declaration.name
        self.__module__ = __name__

    def __call__(self, args: BaseModel, context: ToolContext) -> Any:
        link = self.link
        if link is None:
            raise McpError(
                "W-MCP-002",
                f"{self.declaration.name}: upstream {self.declaration.namespace!r} is not "
                "connected (its tools run only inside `warden mcp proxy`)",
            )
        return link.call(self, args.model_dump(mode="json"), context)


def upstream_call(tool: Tool) -> UpstreamCall | None:
    """The `UpstreamCall` behind `tool`, or None for a tool of another kind."""
    fn = tool.fn
    return fn if isinstance(fn, UpstreamCall) else None


_CACHE: dict[tuple[Path, float], dict[str, Tool]] = {}
_CACHE_LOCK = threading.Lock()


def declared_tools(path: Path | str) -> dict[str, Tool]:
    """The tools a proxy file declares, as Warden tools by name (``namespace__tool``).

    Loading the same unchanged file again returns the same `Tool` objects, so the proxy
    and the project it loads share them."""
    file = Path(path).resolve()
    key = (file, file.stat().st_mtime if file.is_file() else 0.0)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _build(load_proxy_config(file))
            _CACHE[key] = found
        return dict(found)


def _build(config: ProxyConfig) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for decl in config.declarations():
        contract = Contract(decl.name, decl.input_schema)
        model = cast(
            type[UpstreamArguments],
            type(
                decl.name,
                (UpstreamArguments,),
                {"contract": contract, "__module__": __name__},
            ),
        )
        tools[decl.name] = Tool(
            name=decl.name,
            description=decl.description or "",
            fn=UpstreamCall(decl, contract, config.file),
            model=model,
            user_model=model,
            risk=decl.risk,
            sensitive=decl.sensitive,
            timeout_s=decl.timeout_s,
            retries=decl.retries,
            trusted_output=decl.trusted_output,
            takes_context=True,
        )
    return tools
